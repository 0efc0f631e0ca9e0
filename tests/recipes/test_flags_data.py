"""The generated flag data: consistent with the pins, regenerable, and parsed right."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from cortexctl.engines.llamacpp.binary import built_llama_server
from cortexctl.engines.llamacpp.pin import VERSION as LLAMACPP_VERSION
from cortexctl.engines.registry import engine_names, get_engine
from cortexctl.engines.vllm.pin import VERSION as VLLM_VERSION
from cortexctl.recipes.flags import accepted_flags, flag_data, flags_file

# Each engine's tables, from its package through the registry.
TYPED_FLAGS = {name: get_engine(name).typed_flags for name in engine_names()}
CORTEX_FLAGS = {name: get_engine(name).cortex_flags for name in engine_names()}

REPO = Path(__file__).resolve().parents[2]
LLAMA_SERVER = built_llama_server()
# Typed fields the pinned engine has no flag for; the semantic check refuses them when set.
NO_FLAG_IN_PINNED_VERSION = {("vllm", "--swap-space")}


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("engine", "version", "at_least"), [("llamacpp", LLAMACPP_VERSION, 200), ("vllm", VLLM_VERSION, 250)]
)
def test_data_files_match_the_pinned_versions(engine: str, version: str, at_least: int) -> None:
    assert flags_file(engine).name == f"{engine}-{version}.json"
    data = flag_data(engine)
    assert data["engine"] == engine and data["version"] == version
    assert data["generated"]["script"] == f"scripts/gen_{engine}_flags.py"
    assert (REPO / data["generated"]["script"]).is_file()
    assert data["generated"]["method"]
    assert len(data["options"]) >= at_least
    spellings = [n for o in data["options"] for n in o["names"]]
    assert len(spellings) == len(set(spellings)), "a spelling belongs to two options"


def test_typed_and_cortex_flags_exist_in_the_data() -> None:
    for table in (TYPED_FLAGS, CORTEX_FLAGS):
        for engine, flags in table.items():
            for flag in flags:
                if (engine, flag) not in NO_FLAG_IN_PINNED_VERSION:
                    assert flag in accepted_flags(engine), f"{engine} {flag}"


def test_known_options_are_described_right() -> None:
    llama = accepted_flags("llamacpp")
    assert llama["-c"] is llama["--ctx-size"] and llama["-c"].nargs == 1
    assert llama["--embeddings"].names == ("--embedding", "--embeddings") and llama["--embeddings"].nargs == 0
    assert llama["--control-vector-layer-range"].nargs == 2
    assert llama["--pooling"].choices == ("none", "mean", "cls", "last", "rank")
    assert "q8_0" in (llama["-ctk"].choices or ())
    assert {"chatml", "gemma", "llama3"} <= set(flag_data("llamacpp")["chat_templates"])
    vllm = accepted_flags("vllm")
    assert vllm["-tp"] is vllm["--tensor-parallel-size"]
    assert vllm["--enforce-eager"].nargs == 0 and "--no-enforce-eager" in vllm["--enforce-eager"].names
    assert (
        vllm["--no-enable-prefix-caching"] is vllm["--enable-prefix-caching"]
    )  # hidden from help, still read
    assert vllm["--lora-modules"].nargs == "+"
    assert "awq_marlin" in (vllm["--quantization"].choices or ())
    assert vllm["--compilation-config"].dict_keys


HELP_SAMPLE = """\
----- common params -----

-h,    --help, --usage                  print usage and exit
-c,    --ctx-size N                     size of the prompt context (default: 0, 0 = loaded from model)
                                        (env: LLAMA_ARG_CTX_SIZE)
--repack, -nr, --no-repack              whether to enable weight repacking (default: enabled)
-ncmoe, --n-cpu-moe N                   keep the Mixture of Experts (MoE) weights of the first N layers in the
                                        CPU
-ot,   --override-tensor <tensor name pattern>=<buffer type>,...
                                        override tensor buffer type
--control-vector-layer-range START END
                                        layer range to apply the control vector(s) to, start and end inclusive
-dev,  --device <dev1,dev2,..>          comma-separated list of devices to use for offloading
-lm,   --load-mode MODE                 model loading mode (default: auto)
                                        - mmap: memory-map model
                                        
                                        (env: LLAMA_ARG_LOAD_MODE)
-ctk,  --cache-type-k TYPE              KV cache data type for K
                                        allowed values: f32, f16, q8_0
--pooling {none,mean,cls}               pooling type for embeddings
--chat-template JINJA_TEMPLATE          set custom jinja chat template
                                        list of built-in templates:
                                        chatml, gemma,
                                        llama3
                                        (env: LLAMA_ARG_CHAT_TEMPLATE)
"""


def test_llamacpp_help_parser_on_a_sample() -> None:
    gen = load_script("gen_llamacpp_flags")
    options = {tuple(o["names"]): o for o in gen.parse_help(HELP_SAMPLE)}
    assert options[("-h", "--help", "--usage")]["nargs"] == 0
    assert options[("-c", "--ctx-size")] | {"help": ""} == {
        "names": ["-c", "--ctx-size"],
        "nargs": 1,
        "value_hint": "N",
        "help": "",
        "env": "LLAMA_ARG_CTX_SIZE",
    }
    assert options[("--repack", "-nr", "--no-repack")]["nargs"] == 0
    assert options[("-ncmoe", "--n-cpu-moe")]["nargs"] == 1
    assert options[("-ot", "--override-tensor")]["value_hint"] == "<tensor name pattern>=<buffer type>,..."
    assert options[("--control-vector-layer-range",)]["nargs"] == 2
    assert "choices" not in options[("-dev", "--device")]
    assert options[("-lm", "--load-mode")]["env"] == "LLAMA_ARG_LOAD_MODE"
    assert options[("-ctk", "--cache-type-k")]["choices"] == ["f32", "f16", "q8_0"]
    assert options[("--pooling",)]["choices"] == ["none", "mean", "cls"]
    assert gen.builtin_chat_templates(list(options.values())) == ["chatml", "gemma", "llama3"]


@pytest.mark.llama
@pytest.mark.skipif(not LLAMA_SERVER.is_file(), reason=f"needs the real llama-server at {LLAMA_SERVER}")
def test_llamacpp_data_regenerates_from_the_real_binary() -> None:
    gen = load_script("gen_llamacpp_flags")
    regenerated = gen.dump(gen.with_allow_list(gen.generate(LLAMA_SERVER)))
    assert regenerated == flags_file("llamacpp").read_text(encoding="utf-8")


def test_data_files_are_what_the_scripts_dump() -> None:
    """Hand edits would be lost on the next regeneration: the files must be the scripts' format."""
    for engine in ("llamacpp", "vllm"):
        gen = load_script(f"gen_{engine}_flags")
        text = flags_file(engine).read_text(encoding="utf-8")
        assert gen.dump(json.loads(text)) == text
