"""extra_args are checked against the pinned engine's real flags and its recipe allow-list."""

from __future__ import annotations

import pytest

from cortexctl.recipes.extra_args import check_extra_args


def problems(engine: str, args: list[str]) -> list[tuple[int, str]]:
    return [(p.index, p.problem) for p in check_extra_args(engine, args)]


@pytest.mark.parametrize(
    ("engine", "args"),
    [
        ("llamacpp", ["--cache-reuse", "256", "--no-warmup", "--rope-scaling", "yarn", "-ts", "3,1"]),
        ("llamacpp", ["--cache_reuse", "256"]),  # llama.cpp reads _ as - in long flags
        ("vllm", ["--enable-auto-tool-choice", "--tool-call-parser", "hermes", "--seed=3"]),
        ("vllm", ["--override-generation-config.temperature", "0.2", "--cudagraph-capture-sizes", "1", "2"]),
    ],
)
def test_real_flags_pass(engine: str, args: list[str]) -> None:
    assert problems(engine, args) == []


def test_flags_this_version_dropped_are_unknown() -> None:
    # llama.cpp 0.3.36 replaced --mlock/--no-mmap by --load-mode; vLLM 0.33 has no --swap-space.
    assert problems("llamacpp", ["--no-mmap"])[0][1].startswith("unknown flag --no-mmap")
    assert problems("vllm", ["--swap-space", "4"])[0][1].startswith("unknown flag --swap-space")


def test_unknown_flag_lists_close_matches_and_where_the_list_lives() -> None:
    ((index, problem),) = problems("llamacpp", ["--no-warmup", "--ctx-sise", "4096"])
    assert index == 1
    assert problem.startswith(
        "unknown flag --ctx-sise for llama-server (llamacpp 0.3.36); close matches: --ctx-size"
    )
    assert problem.endswith(
        "full list: `cortexctl recipe flags llamacpp` "
        "(data: cortexctl/engines/llamacpp/data/llamacpp-0.3.36.json)"
    )
    ((_, vllm_problem),) = problems("vllm", ["--max-num-seq", "8"])
    assert "close matches: --max-num-seqs" in vllm_problem and "vllm-0.33.0.json" in vllm_problem


@pytest.mark.parametrize(
    ("engine", "flag", "field"),
    [
        ("llamacpp", "-c", "context_length"),
        ("llamacpp", "--ctx-size", "context_length"),
        ("llamacpp", "--ctx_size", "context_length"),
        ("llamacpp", "-ngl", "gpu_layers"),
        ("llamacpp", "-np", "parallel"),
        ("vllm", "-tp", "tensor_parallel_size"),
        ("vllm", "--max-model-len", "max_model_len"),
        ("vllm", "-q", "quantization"),
    ],
)
def test_flags_of_typed_fields_are_refused(engine: str, flag: str, field: str) -> None:
    expected = f"{flag.replace('_', '-')} duplicates a typed field: use args.{field} instead"
    assert problems(engine, [flag, "8"]) == [(0, expected)]


@pytest.mark.parametrize(
    ("engine", "flag"),
    [("vllm", "--no-enforce-eager"), ("vllm", "--disable-prefix-caching"), ("llamacpp", "--embeddings")],
)
def test_every_spelling_of_a_typed_switch_is_refused(engine: str, flag: str) -> None:
    ((_, problem),) = problems(engine, [flag])
    assert "duplicates a typed field" in problem


@pytest.mark.parametrize(
    ("engine", "flag", "reason"),
    [
        ("llamacpp", "--port", "CORTEX sets this"),
        ("llamacpp", "--host", "CORTEX sets this"),
        ("llamacpp", "-m", "CORTEX sets this from spec.model.path"),
        ("llamacpp", "--model", "CORTEX sets this from spec.model.path"),
        ("llamacpp", "-a", "CORTEX sets this from spec.served_name"),
        ("llamacpp", "-hf", "CORTEX runs offline"),
        ("vllm", "--port", "CORTEX sets this"),
        ("vllm", "--served-model-name", "CORTEX sets this from spec.served_name"),
        ("vllm", "--model", "CORTEX sets this from spec.model.path"),
    ],
)
def test_flags_cortex_sets_are_refused(engine: str, flag: str, reason: str) -> None:
    ((index, problem),) = problems(engine, [flag, "x"])
    assert index == 0 and problem.startswith(f"{flag}: {reason}")


def test_llamacpp_needs_flag_and_value_as_separate_items() -> None:
    assert problems("llamacpp", ["--cache-reuse=256"]) == [
        (0, "llama-server does not read 'flag=value': give '--cache-reuse' and '256' as two list items")
    ]


def test_values_are_counted_and_checked() -> None:
    assert problems("llamacpp", ["--cache-reuse"]) == [
        (0, "--cache-reuse needs a value N: add it as the next list item")
    ]
    assert problems("llamacpp", ["256"]) == [
        (0, "'256' is not a flag; a value must follow the flag it belongs to")
    ]
    assert problems("llamacpp", ["--no-warmup", "yes"]) == [
        (1, "'yes' is not a flag; a value must follow the flag it belongs to")
    ]
    assert problems("vllm", ["--disable-log-stats=1"]) == [(0, "--disable-log-stats takes no value")]
    ((index, problem),) = problems("llamacpp", ["--split-mode", "diagonal"])
    assert (
        index == 1
        and problem
        == "'diagonal' is not a valid value for --split-mode; choose one of: none, layer, row, tensor"
    )
    ((_, problem),) = problems("vllm", ["--all2all-backend=magic"])
    assert problem.startswith("'magic' is not a valid value for --all2all-backend")


def test_vllm_optimization_shorthand() -> None:
    assert problems("vllm", ["-O3", "-O=2", "-O", "1"]) == []
    assert problems("llamacpp", ["-O3"])[0][1].startswith("unknown flag -O3")


def test_dotted_keys_only_for_json_options() -> None:
    assert problems("vllm", ["--limit-mm-per-prompt.image", "3"]) == []
    ((_, problem),) = problems("vllm", ["--tool-call-parser.x", "3"])
    assert problem.startswith("unknown flag --tool-call-parser.x")
    # a key of a refused JSON option is refused with the option's reason
    ((_, problem),) = problems("vllm", ["--compilation-config.debug_dump_path", "/tmp/x"])
    assert problem.startswith(
        "--compilation-config is not allowed in a recipe: it can name dump and cache paths"
    )


DANGEROUS = [
    ("llamacpp", ["--tools", "exec_shell_command"], "built-in agent tools run commands"),
    ("llamacpp", ["--log-file", "/tmp/x.log"], "the daemon manages engine logs"),
    ("llamacpp", ["--mcp-servers-json", "{}"], "MCP servers are programs"),
    ("llamacpp", ["--path", "/"], "the engine serves no static files"),
    ("llamacpp", ["--slot-save-path", "/tmp"], "slot state is never written to disk"),
    ("llamacpp", ["--log-prompts-dir", "/tmp"], "prompts are never written to disk"),
    ("llamacpp", ["--media-path", "/"], "requests may not read files of the host"),
    ("llamacpp", ["--ssl-key-file", "/etc/ssl/k.pem"], "engines answer only the gateway"),
    ("llamacpp", ["--grammar-file", "/etc/shadow"], "it names a file or folder on the host"),
    ("llamacpp", ["--lora", "/etc/shadow"], "a LoRA adapter is a second model file"),
    ("llamacpp", ["--video-ffmpeg-dir", "/tmp"], "the engine would run ffmpeg"),
    ("vllm", ["--tool-parser-plugin", "/tmp/p.py"], "a plugin is Python code"),
    ("vllm", ["--worker-cls", "evil.Worker"], "names Python code"),
    ("vllm", ["--ssl-keyfile", "/k"], "engines answer only the gateway"),
    ("vllm", ["--enable-prompt-embeds"], "clients would send tensors"),
]


@pytest.mark.parametrize(("engine", "args", "why"), DANGEROUS, ids=[a[0] for _, a, _ in DANGEROUS])
def test_dangerous_flags_are_refused_with_why_and_what_instead(
    engine: str, args: list[str], why: str
) -> None:
    ((index, problem),) = problems(engine, args)
    assert index == 0
    assert problem.startswith(f"{args[0]} is not allowed in a recipe: {why}")
    assert f"`cortexctl recipe flags {engine} --allowed`" in problem


@pytest.mark.parametrize(
    ("engine", "flag"),
    [("llamacpp", "--api-key"), ("llamacpp", "--api-key-file"), ("vllm", "--api-key")],
)
def test_engine_key_flags_are_cortex_s(engine: str, flag: str) -> None:
    ((_, problem),) = problems(engine, [flag, "k"])
    assert (
        problem == f"{flag}: CORTEX sets a fresh engine key per launch (the gateway checks client API keys)"
    )
