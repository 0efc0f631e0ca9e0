# ruff: noqa: E501  (a check script: step tables read best unwrapped)
"""The vLLM path on a real GPU host, in one run (< 10 minutes), written to one report file.

Run it through scripts/gpu-check.sh. Nothing here has run on hardware yet: the README's
"vLLM: verified on hardware vs on paper" section lists what each step would verify. Steps:

  inventory   NVML GPUs (nvidia-smi) and CUDA's totals inside the image: our CUDA-total rule
  flags       regenerate the flag + capability data inside the pinned image and diff it
  models      chat, AWQ and embedding recipes started through the adapter and the runtime,
              sharing GPU 0 (co-location); our estimate vs vLLM's "Model loading took /
              Available KV cache memory / GPU KV cache size / Graph capturing … took" lines
              and nvidia-smi; one request each
  failures    provoked start failures, each checked against the diagnosis it should get
  replicas    a two-replica recipe: each replica on its own GPU (needs 2 GPUs)

`--self-test` runs the same flow on this machine with VllmTestDouble as `vllm` (process
runtime, pretend GPUs), so the script itself is tested where there is no GPU
(tests/engines/test_gpu_check_selftest.py); its figures are the double's, not vLLM's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from cortexctl.core.settings import Settings
from cortexctl.engines.base import LaunchSpec, new_engine_key
from cortexctl.engines.vllm.adapter import VllmEngine
from cortexctl.engines.vllm.capability import QUANT_MIN_CC
from cortexctl.engines.vllm.pin import DEFAULT_IMAGE
from cortexctl.recipes.flags import flag_data
from cortexctl.recipes.schema import Recipe
from cortexctl.runtimes.base import Runtime
from cortexctl.validation import validate
from cortexctl.validation.breakdown import GiB
from cortexctl.validation.gpus import GpuInfo, detect_gpus, pretend_gpus

REPO = Path(__file__).resolve().parents[1]
DOUBLE = REPO / "tests" / "doubles" / "vllm-test-double"
# vLLM V1's start-up memory lines (vllm/v1/worker/gpu_model_runner.py, gpu_worker.py, kv_cache_utils.py)
LINES = {
    "weights_gib": re.compile(r"Model loading took ([\d.]+) GiB"),
    "kv_available_gib": re.compile(r"Available KV cache memory: ([\d.]+) GiB"),
    "kv_tokens": re.compile(r"GPU KV cache size: ([\d,]+) tokens"),
    "graphs_gib": re.compile(r"Graph capturing finished in [\d.]+ secs?, took ([\d.]+) GiB"),
}
# Model folders the host's model store should hold (names overridable by environment)
MODELS = {
    "chat": os.environ.get("GPU_CHECK_CHAT", "Qwen2.5-0.5B-Instruct"),
    "awq": os.environ.get("GPU_CHECK_AWQ", "Qwen2.5-0.5B-Instruct-AWQ"),
    "embed": os.environ.get("GPU_CHECK_EMBED", "bge-small-en-v1.5"),
}


@dataclass
class Report:
    path: Path
    deadline: float
    results: list[tuple[str, str, str]] = field(default_factory=list)  # (step, PASS/FAIL/SKIP/INFO, detail)

    def add(self, step: str, status: str, detail: str) -> None:
        self.results.append((step, status, detail))
        line = f"[{status}] {step}: {detail}"
        print(line, flush=True)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def left_s(self) -> float:
        return self.deadline - time.monotonic()


def recipe(name: str, model: str, *, gpus: list[int], replicas: int = 1, **args: Any) -> Recipe:
    return Recipe.model_validate(
        {
            "apiVersion": "cortex/v1",
            "kind": "Recipe",
            "metadata": {"name": name},
            "spec": {
                "engine": "vllm",
                "served_name": name,
                "model": {"path": model},
                "gpus": gpus,
                "replicas": replicas,
                "args": args,
            },
        }
    )


def nvidia_smi(query: str) -> list[list[str]]:
    try:
        out = subprocess.run(  # noqa: S603 - fixed argv
            ["nvidia-smi", f"--query-{query}", "--format=csv,noheader,nounits"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [[c.strip() for c in line.split(",")] for line in out.splitlines() if line.strip()]


class Host:
    """The real host (docker runtime, pinned image, NVML) or the self-test stand-in."""

    def __init__(self, *, self_test: bool, models_dir: Path, home: Path, image: str) -> None:
        self.self_test = self_test
        self.image = image
        self.settings = Settings(
            home=home,
            model_roots=[models_dir],
            vllm_bin=DOUBLE if self_test else None,
            runtime="process" if self_test else "docker",
        )
        self.models_dir = models_dir
        self.engine = VllmEngine()
        self.gpus: list[GpuInfo] = pretend_gpus(profile="2xh100-80g") if self_test else detect_gpus()

    def runtime(self) -> Runtime:
        from cortexctl.runtimes.base import make_runtime

        return make_runtime("process" if self.self_test else "docker", self.settings)

    def spec(
        self, r: Recipe, *, model_id: int, replica: int = 0, extra: list[str] | None = None
    ) -> LaunchSpec:
        port = _free_port()
        spec = self.engine.launch_spec(
            r,
            model_id=model_id,
            replica_index=replica,
            port=port,
            settings=self.settings,
            api_key=new_engine_key(),
        )
        if extra:
            spec = LaunchSpec(
                **{
                    **spec.__dict__,
                    "argv": [*spec.argv, *extra],
                    "container_argv": [*spec.container_argv, *extra],
                }
            )
        if not self.self_test:
            spec = LaunchSpec(**{**spec.__dict__, "image": self.image})
        return spec


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_ready(host: Host, spec: LaunchSpec, rt: Runtime, handle: Any, timeout_s: float) -> str:
    """'ready', 'exited' or 'timeout'."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() < deadline:
            if not rt.status(handle).alive:
                return "exited"
            p = await host.engine.probe(
                client,
                f"http://127.0.0.1:{spec.port}",
                served_name=spec.labels["cortex.served-name"],
                api_key=spec.api_key,
            )
            if p.state.value == "ready":
                return "ready"
            await asyncio.sleep(1)
    return "timeout"


def parse_lines(logs: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, rx in LINES.items():
        if m := rx.search(logs):
            out[key] = float(m.group(1).replace(",", ""))
    return out


# ---- steps ----------------------------------------------------------------------------------


def step_inventory(host: Host, report: Report) -> None:
    if not host.gpus:
        report.add("inventory", "FAIL", "NVML found no GPU (driver? nvidia-ml-py in the venv?)")
        return
    for g in host.gpus:
        report.add(
            "inventory",
            "INFO",
            f"GPU {g.index} {g.name}: NVML total {g.total_bytes / GiB:.2f} GiB, free {g.free_bytes / GiB:.2f} GiB, "
            f"cc {g.cc}, CUDA total {'measured' if g.cuda_total else 'guessed'} {g.cuda_total_bytes / GiB:.2f} GiB",
        )
    if host.self_test:
        return
    code = "import json,torch;print(json.dumps([torch.cuda.mem_get_info(i) for i in range(torch.cuda.device_count())]))"
    done = subprocess.run(  # noqa: S603
        ["docker", "run", "--rm", "--gpus", "all", "-e", "CUDA_DEVICE_ORDER=PCI_BUS_ID", "--entrypoint", "python3",  # noqa: S607
         host.image, "-c", code],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        report.add("inventory", "FAIL", f"torch in {host.image}: {done.stderr.strip()[-300:]}")
        return
    for g, (_free, total) in zip(host.gpus, json.loads(done.stdout.strip().splitlines()[-1]), strict=False):
        diff = (g.cuda_total_bytes - total) / 2**20
        status = "PASS" if abs(diff) < 64 else "FAIL"
        report.add(
            "inventory",
            status,
            f"GPU {g.index}: CUDA total {total / GiB:.2f} GiB (torch), ours {g.cuda_total_bytes / GiB:.2f} GiB "
            f"({diff:+.0f} MiB); NVML total − CUDA total = {(g.total_bytes - total) / 2**20:.0f} MiB",
        )


def step_flags(host: Host, report: Report) -> None:
    if host.self_test:
        report.add("flags", "SKIP", "self-test: needs the vLLM image")
        return
    done = subprocess.run(  # noqa: S603
        ["docker", "run", "--rm", "-v", f"{REPO}:/cortex:ro", "--entrypoint", "python3", host.image,  # noqa: S607
         "/cortex/scripts/gen_vllm_flags.py"],
        capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        report.add("flags", "FAIL", f"gen_vllm_flags.py in the image: {done.stderr.strip()[-400:]}")
        return
    fresh = json.loads(done.stdout)
    ours = flag_data("vllm")
    names = {n for o in ours["options"] for n in o["names"]}
    new = {n for o in fresh["options"] for n in o["names"]}
    same = fresh["version"] == ours["version"] and names == new
    report.add(
        "flags",
        "PASS" if same else "FAIL",
        f"image vLLM {fresh['version']} (pinned {ours['version']}); options only in the image: "
        f"{sorted(new - names)[:20]}; only in our data: {sorted(names - new)[:20]}",
    )
    caps = fresh.get("quantization_min_capability") or {}
    differ = {
        m: (cc, QUANT_MIN_CC[m][0])
        for m, cc in caps.items()
        if cc is not None and m in QUANT_MIN_CC and abs(cc / 10 - QUANT_MIN_CC[m][0]) > 1e-6
    }
    report.add(
        "flags",
        "PASS" if not differ else "FAIL",
        f"capability minimums (vLLM's get_min_capability vs capability.py): differ {differ}",
    )
    out = REPO / "gpu-check-flags.json"
    out.write_text(done.stdout)
    report.add("flags", "INFO", f"regenerated data written to {out} (commit it as cortexctl/recipes/flags/)")


def _run_model(
    host: Host, report: Report, name: str, r: Recipe, model_id: int, check: Callable[[str, LaunchSpec], None]
) -> tuple[Runtime, Any, LaunchSpec] | None:
    folder = Path(r.spec.model.path)
    if not folder.is_dir():
        report.add(f"models/{name}", "SKIP", f"{folder} not in the model store")
        return None
    val = validate(r, settings=host.settings, gpus=host.gpus, verify_sha256=False)
    if not val.ok:
        report.add(f"models/{name}", "FAIL", f"validation refused it: {[c.detail for c in val.failures]}")
        return None
    rt = host.runtime()
    spec = host.spec(r, model_id=model_id)
    handle = rt.start(spec)
    state = asyncio.run(_wait_ready(host, spec, rt, handle, timeout_s=min(300, report.left_s() - 60)))
    logs = rt.logs(handle, tail=2000)
    if state != "ready":
        d = host.engine.diagnose(logs)
        report.add(
            f"models/{name}", "FAIL", f"{state}; diagnosis {d.rule if d else None}; log tail: {logs[-600:]}"
        )
        rt.stop(handle)
        return None
    seen = parse_lines(logs)
    b = val.breakdown
    assert b is not None
    est = {
        "weights_gib": b.get("weights") / GiB,
        "kv_available_gib": int(b.facts.get("kv_cache_bytes", 0)) / GiB,
        "graphs_gib": b.get("cuda_graphs") / GiB,
    }
    parts = [f"{k}: vLLM {seen.get(k)} vs ours {est[k]:.2f}" for k in est]
    if "kv_tokens" in seen and b.facts.get("kv_bytes_per_token"):
        ours_tokens = int(seen.get("kv_available_gib", 0) * GiB) // int(b.facts["kv_bytes_per_token"])
        parts.append(f"kv tokens: vLLM {int(seen['kv_tokens'])} vs ours-from-vLLM-bytes {ours_tokens}")
    weights_ok = (
        "weights_gib" in seen
        and abs(seen["weights_gib"] - est["weights_gib"]) < 0.1 + 0.03 * est["weights_gib"]
    )
    report.add(f"models/{name}", "PASS" if weights_ok else "FAIL", "; ".join(parts))
    check(logs, spec)
    return rt, handle, spec


def _request(spec: LaunchSpec, path: str, body: dict[str, Any]) -> int:
    r = httpx.post(
        f"http://127.0.0.1:{spec.port}{path}",
        json=body,
        headers={"Authorization": f"Bearer {spec.api_key}"},
        timeout=60,
    )
    return r.status_code


def step_models(host: Host, report: Report) -> None:
    running: list[tuple[Runtime, Any, LaunchSpec]] = []
    try:
        plan = [
            ("chat", recipe("chat", str(host.models_dir / MODELS["chat"]), gpus=[0], gpu_memory_utilization=0.3, max_model_len=4096), 901,
             lambda logs, s: report.add("models/chat", "PASS" if _request(s, "/v1/chat/completions", {"model": "chat", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}) == 200 else "FAIL", "one chat completion")),
            ("awq", recipe("awq", str(host.models_dir / MODELS["awq"]), gpus=[0], gpu_memory_utilization=0.25, max_model_len=4096, quantization="awq_marlin"), 902,
             lambda logs, s: report.add("models/awq", "PASS" if _request(s, "/v1/completions", {"model": "awq", "prompt": "Hi", "max_tokens": 8}) == 200 else "FAIL", "one completion")),
            ("embed", recipe("embed", str(host.models_dir / MODELS["embed"]), gpus=[0], gpu_memory_utilization=0.15, task="embed"), 903,
             lambda logs, s: report.add("models/embed", "PASS" if _request(s, "/v1/embeddings", {"model": "embed", "input": "Hi"}) == 200 else "FAIL", "one embedding")),
        ]  # fmt: skip
        used: dict[int, list[Any]] = {}
        from cortexctl.validation.checks import tenant_of

        for name, r, model_id, check in plan:
            if report.left_s() < 120:
                report.add(f"models/{name}", "SKIP", "out of time")
                continue
            # co-location: the models share GPU 0; validation sees the ones already running
            val = validate(r, settings=host.settings, gpus=host.gpus, used_gpus=used, verify_sha256=False)
            gpus_free = next(c for c in val.checks if c.name == "gpus_free")
            report.add(f"models/{name}", "INFO", f"co-location check: {gpus_free.status} {gpus_free.detail}")
            got = _run_model(host, report, name, r, model_id, check)
            if got is not None:
                running.append(got)
                used.setdefault(0, []).append(tenant_of(name, r.spec))
        if not host.self_test:
            smi = nvidia_smi("gpu=index,memory.used")
            report.add(
                "models", "INFO", f"nvidia-smi memory.used MiB while {len(running)} run on GPU 0: {smi}"
            )
    finally:
        for rt, handle, _ in running:
            rt.stop(handle, timeout_s=30)


def step_failures(host: Host, report: Report) -> None:
    chat = str(host.models_dir / MODELS["chat"])
    if not Path(chat).is_dir():
        report.add("failures", "SKIP", f"{chat} not in the model store")
        return
    cases: list[tuple[str, Recipe, list[str] | None, str]] = [
        ("missing model", recipe("f-missing", "no-such-model", gpus=[0], enforce_eager=True), None, "model-file-missing"),
        ("context too large", recipe("f-ctx", chat, gpus=[0], max_model_len=10_000_000, enforce_eager=True), None, "context-too-large"),
        ("unknown flag", recipe("f-flag", chat, gpus=[0], enforce_eager=True), ["--max-model-length", "4096"], "unknown-argument"),
    ]  # fmt: skip
    if not host.self_test:
        cases.append(("KV cache too small", recipe("f-kv", chat, gpus=[0], gpu_memory_utilization=0.05, max_model_len=32768, enforce_eager=True), None, "oom-kv-cache"))  # fmt: skip
    for i, (what, r, extra, rule) in enumerate(cases):
        if report.left_s() < 60:
            report.add(f"failures/{what}", "SKIP", "out of time")
            continue
        rt = host.runtime()
        spec = host.spec(r, model_id=910 + i, extra=extra)
        handle = rt.start(spec)
        state = asyncio.run(_wait_ready(host, spec, rt, handle, timeout_s=min(180, report.left_s() - 30)))
        d = host.engine.diagnose(rt.logs(handle, tail=2000))
        rt.stop(handle)
        got = d.rule if d else None
        report.add(
            f"failures/{what}",
            "PASS" if state == "exited" and got == rule else "FAIL",
            f"{state}, diagnosis {got} (want {rule})",
        )
    # the free-memory start check: a second model asking 0.9 of a GPU another model holds
    if report.left_s() < 120:
        report.add("failures/gpu shared", "SKIP", "out of time")
        return
    rt = host.runtime()
    holder = host.spec(
        recipe(
            "f-holder", chat, gpus=[0], gpu_memory_utilization=0.5, max_model_len=2048, enforce_eager=True
        ),
        model_id=920,
    )
    h1 = rt.start(holder)
    try:
        if (
            asyncio.run(_wait_ready(host, holder, rt, h1, timeout_s=min(240, report.left_s() - 60)))
            != "ready"
        ):
            report.add("failures/gpu shared", "FAIL", "the first model did not start")
            return
        late = host.spec(
            recipe(
                "f-late", chat, gpus=[0], gpu_memory_utilization=0.9, max_model_len=2048, enforce_eager=True
            ),
            model_id=921,
        )
        h2 = rt.start(late)
        state = asyncio.run(_wait_ready(host, late, rt, h2, timeout_s=min(180, report.left_s() - 30)))
        d = host.engine.diagnose(rt.logs(h2, tail=2000))
        rt.stop(h2)
        got = d.rule if d else None
        report.add(
            "failures/gpu shared",
            "PASS" if state == "exited" and got == "gpu-memory-in-use" else "FAIL",
            f"{state}, diagnosis {got}",
        )
    finally:
        rt.stop(h1)


def step_replicas(host: Host, report: Report) -> None:
    if len(host.gpus) < 2:
        report.add("replicas", "SKIP", "needs 2 GPUs")
        return
    chat = str(host.models_dir / MODELS["chat"])
    if not Path(chat).is_dir() or report.left_s() < 120:
        report.add("replicas", "SKIP", f"{chat} not in the model store, or out of time")
        return
    r = recipe(
        "pair",
        chat,
        gpus=[0, 1],
        replicas=2,
        gpu_memory_utilization=0.5,
        max_model_len=2048,
        enforce_eager=True,
    )
    rt = host.runtime()
    specs = [host.spec(r, model_id=930, replica=i) for i in range(2)]
    handles = [rt.start(s) for s in specs]
    try:
        states = [
            asyncio.run(_wait_ready(host, s, rt, h, timeout_s=min(240, report.left_s() - 30)))
            for s, h in zip(specs, handles, strict=True)
        ]
        placed = [s.gpus for s in specs]
        smi = [] if host.self_test else nvidia_smi("gpu=index,memory.used")
        ok = states == ["ready", "ready"] and placed[0] != placed[1]
        report.add("replicas", "PASS" if ok else "FAIL", f"states {states}, GPUs {placed}, nvidia-smi {smi}")
    finally:
        for h in handles:
            rt.stop(h, timeout_s=30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=Path, help="the model store holding the check's model folders")
    ap.add_argument("--image", default=DEFAULT_IMAGE)
    ap.add_argument("--report", type=Path, default=Path("gpu-check-report.txt"))
    ap.add_argument("--budget-s", type=float, default=570.0)
    ap.add_argument("--self-test", action="store_true", help="VllmTestDouble as vllm, pretend GPUs")
    ap.add_argument("--steps", default="inventory,flags,models,failures,replicas")
    args = ap.parse_args()
    args.report.write_text(
        f"CORTEX gpu-check {time.strftime('%Y-%m-%dT%H:%M:%S%z')} image {args.image}"
        f"{' (SELF-TEST: VllmTestDouble, figures are not vLLM' + chr(39) + 's)' if args.self_test else ''}\n",
        encoding="utf-8",
    )
    report = Report(args.report, time.monotonic() + args.budget_s)
    with tempfile.TemporaryDirectory(prefix="cortex-gpu-check-") as tmp:
        models = args.models
        if args.self_test:
            models = Path(tmp) / "models"
            for name in MODELS.values():
                (models / name).mkdir(parents=True)
                (models / name / "config.json").write_text(
                    json.dumps(
                        {
                            "architectures": ["LlamaForCausalLM"],
                            "max_position_embeddings": 32768,
                            "num_hidden_layers": 2,
                            "hidden_size": 64,
                            "num_attention_heads": 4,
                            "vocab_size": 1000,
                            "torch_dtype": "bfloat16",
                        }
                    )  # fmt: skip
                )
                _tiny_safetensors(models / name / "model.safetensors")
            os.environ.setdefault("VLLM_TEST_DOUBLE_LOAD_S", "1")
            os.environ.setdefault("VLLM_TEST_DOUBLE_GPUS", "2")
            os.environ["VLLM_TEST_DOUBLE_GPU_LEDGER"] = str(Path(tmp) / "ledger")
            os.environ.setdefault("VLLM_TEST_DOUBLE_PYTHON", sys.executable)
        if models is None:
            ap.error("--models DIR is required (the folder holding the check's models)")
        host = Host(
            self_test=args.self_test, models_dir=models.resolve(), home=Path(tmp) / "home", image=args.image
        )
        steps = {"inventory": step_inventory, "flags": step_flags, "models": step_models,
                 "failures": step_failures, "replicas": step_replicas}  # fmt: skip
        for name in args.steps.split(","):
            try:
                steps[name](host, report)
            except Exception as exc:  # noqa: BLE001 - one broken step must not hide the others' results
                report.add(name, "FAIL", f"step crashed: {type(exc).__name__}: {exc}")
    failed = sum(1 for _, s, _ in report.results if s == "FAIL")
    summary = f"summary: {failed} FAIL, {sum(1 for _, s, _ in report.results if s == 'PASS')} PASS, " + (
        f"{sum(1 for _, s, _ in report.results if s == 'SKIP')} SKIP"
    )
    report.add("summary", "INFO", summary)
    return 1 if failed else 0


def _tiny_safetensors(path: Path) -> None:
    header = json.dumps(
        {"model.embed_tokens.weight": {"dtype": "BF16", "shape": [1000, 64], "data_offsets": [0, 128000]}}
    ).encode()
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 128000)


if __name__ == "__main__":
    raise SystemExit(main())
