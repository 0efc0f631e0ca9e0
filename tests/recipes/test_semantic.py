"""Cross-field checks that need no hardware."""

from __future__ import annotations

from pathlib import Path

import pytest

from cortexctl.recipes.loader import check_recipe_text
from tests.recipes.recipe_samples import LLAMACPP_RECIPE, VLLM_RECIPE


def llama(args: str = "") -> str:
    return LLAMACPP_RECIPE.format(args=args)


def found(text: str, store: Path | None = None) -> list[str]:
    """`field: problem` of each problem (lines are the loader tests' business)."""
    roots = (store,) if store is not None else None
    return [f"{p.field}: {p.problem}" for p in check_recipe_text(text, source="r.yaml", roots=roots).problems]


def vllm(args: str = "", gpus: str = "[0, 1]", tail: str = "") -> str:
    return VLLM_RECIPE.format(args=args).replace("gpus: [0, 1]", f"gpus: {gpus}") + tail


def test_valid_samples_have_no_problems() -> None:
    assert found(llama()) == [] and found(vllm()) == []


def test_vllm_needs_a_gpu() -> None:
    assert found(vllm(gpus="none")) == [
        "spec.gpus: vLLM needs a GPU: set gpus to 'all' or a list of indices (or use engine llamacpp on CPU)"
    ]


def test_tensor_parallel_against_the_gpu_list() -> None:
    assert found(vllm(gpus="[0]")) == [
        "spec.args.tensor_parallel_size: tensor_parallel_size = 2 needs 2 GPUs but spec.gpus lists 1"
    ]
    assert found(vllm("    pipeline_parallel_size: 2", gpus="[0, 1, 2]")) == [
        "spec.args.tensor_parallel_size: tensor_parallel_size × pipeline_parallel_size = 4 needs 4 GPUs "
        "but spec.gpus lists 3"
    ]
    assert found(vllm(tail="  replicas: 2\n")) == [
        "spec.replicas: 2 replicas × 2 GPUs each need 4 GPUs but spec.gpus lists 2"
    ]
    assert found(vllm(gpus="all")) == []  # how many "all" is, only the host knows


def test_gpu_list_sanity() -> None:
    assert found(vllm(gpus="[0, 0]")) == ["spec.gpus: GPU index listed twice: 0"]
    assert found(llama() + "  gpus: []\n") == [
        "spec.gpus: an empty list selects no GPU; write gpus: none for CPU"
    ]


def test_gpu_layers_without_gpus() -> None:
    assert found(llama("    gpu_layers: all")) == [
        "spec.args.gpu_layers: offloads layers to a GPU but spec.gpus is 'none': "
        "select GPUs or set gpu_layers: 0"
    ]


def test_chat_template_names(tmp_path: Path) -> None:
    assert found(llama("    chat_template: chatml")) == []
    assert found(llama("    chat_template: gemma")) == []
    (jinja,) = found(llama("    chat_template: gemma\n    extra_args: ['--jinja']"))
    assert jinja.startswith(
        "spec.args.extra_args[0]: --jinja: CORTEX runs a named chat_template with --no-jinja"
    )
    assert found(llama("    extra_args: ['--no-jinja']")) == []  # no named template: the operator's choice
    (typo,) = found(llama("    chat_template: chatlm"))
    assert typo.startswith("spec.args.chat_template: 'chatlm' is not a built-in template of llama.cpp 0.3.36")
    assert "(did you mean " in typo and "chatml" in typo
    assert found(llama('    chat_template: "{% for m in messages %}{{ m.content }}{% endfor %}"')) == []


def test_chat_template_file_is_in_the_model_store(tmp_path: Path) -> None:
    text = llama("    chat_template_file: templates/chat.jinja")
    assert found(text, store=tmp_path) == [
        "spec.args.chat_template_file: file not found in the model store: templates/chat.jinja "
        f"(relative paths start in {tmp_path})"
    ]
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "chat.jinja").write_text("{{ messages }}")
    assert found(text, store=tmp_path) == []
    assert found(text) == []  # no roots: a stored recipe re-read; its files are checked at launch
    both = llama(f"    chat_template: chatml\n    chat_template_file: {tmp_path}/templates/chat.jinja")
    assert found(both) == ["spec.args.chat_template_file: give chat_template or chat_template_file, not both"]


def test_vllm_chat_template_path_is_checked_but_inline_jinja_is_not(tmp_path: Path) -> None:
    assert found(vllm("    chat_template: tpl.jinja"), store=tmp_path)[0].startswith(
        "spec.args.chat_template: file not found in the model store"
    )
    assert found(vllm('    chat_template: "{{ messages }}"'), store=tmp_path) == []


def test_llamacpp_field_combinations() -> None:
    assert found(llama("    pooling: mean")) == [
        "spec.args.pooling: pooling applies to embeddings: also set embeddings: true"
    ]
    assert found(llama('    cache_type_v: q8_0\n    flash_attn: "off"')) == [
        "spec.args.cache_type_v: a quantized V cache needs flash attention: set flash_attn: on or auto"
    ]
    assert found(llama().replace("parallel: 2", "parallel: 200").replace("2048", "128")) == [
        "spec.args.parallel: 200 slots cannot share a context of 128 tokens"
    ]


def test_mlock_and_load_mode_conflict() -> None:
    assert found(llama("    mlock: true")) == []
    assert found(llama("    extra_args: [--load-mode, dio]")) == []
    assert found(llama("    mlock: true\n    extra_args: [--load-mode, dio]")) == [
        "spec.args.mlock: mlock is --load-mode mmap+mlock in this llama.cpp: drop --load-mode from extra_args"
    ]


def test_max_tokens_must_leave_room_for_the_prompt() -> None:
    text = llama() + "  request_defaults:\n    max_tokens: 1024\n"
    assert found(text) == [
        "spec.request_defaults.max_tokens: 1024 leaves no room for the prompt: "
        "args.context_length / args.parallel (tokens per slot) is 1024"
    ]
    assert found(vllm("    max_model_len: 4096", tail="  request_defaults:\n    max_tokens: 1000\n")) == []


def test_typed_values_checked_against_the_engine() -> None:
    (quant,) = found(vllm("    quantization: awk"))
    assert quant.startswith("spec.args.quantization: 'awk' is not accepted by vllm 0.33.0 (did you mean awq")
    assert found(vllm("    quantization: awq_marlin")) == []
    assert found(vllm("    swap_space_gib: 4")) == [
        "spec.args.swap_space_gib: vllm 0.33.0 has no --swap-space flag; remove args.swap_space_gib"
    ]


@pytest.mark.parametrize(
    ("image", "ok"),
    [
        ("vllm/vllm-openai:v0.33.0", True),
        ("vllm/vllm-openai:v0.10.0", False),
        ("registry.local/my-vllm:1", True),
    ],
)
def test_vllm_image_must_match_the_pinned_flags(image: str, ok: bool) -> None:
    problems = found(vllm(tail=f"  image: {image}\n"))
    assert (problems == []) is ok
    if not ok:
        assert problems[0].startswith(
            "spec.image: CORTEX checks flags for vLLM 0.33.0 but this image is v0.10.0"
        )


def test_memory_limit_must_be_a_size() -> None:
    assert found(llama() + "  resources:\n    memory: 8GiB\n") == []
    assert found(llama() + "  resources:\n    memory: lots\n") == [
        "spec.resources.memory: 'lots' is not a size; write e.g. 8GiB or 512m"
    ]
