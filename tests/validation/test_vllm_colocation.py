"""Validation of placement and GPU sharing for vLLM recipes (pretend GPUs, real model folder).

Two vLLM models may share a GPU only when their gpu_memory_utilization shares plus each
process's memory outside its share (CUDA context, NCCL) fit CUDA's total of that GPU.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cortexctl.core.settings import Settings
from cortexctl.recipes.placement import GpuTenant, colocation_fits
from cortexctl.validation import validate
from cortexctl.validation.breakdown import GiB
from cortexctl.validation.checks import Status, tenant_of
from cortexctl.validation.gpus import pretend_gpus
from tests.support.engine_fixtures import make_recipe
from tests.validation.hfmodels import LLAMA_31_8B_INSTRUCT, dense_tensors, write_hf_folder


@pytest.fixture
def store(tmp_path: Path) -> tuple[Settings, Path]:
    models = tmp_path / "models"
    folder = models / "llama8b"
    folder.mkdir(parents=True)
    write_hf_folder(folder, LLAMA_31_8B_INSTRUCT, dense_tensors(LLAMA_31_8B_INSTRUCT, "BF16"), shards=4)
    return Settings(home=tmp_path / "home", model_roots=[models]), folder


def _checks(report) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {c.name: c for c in report.checks}


def _recipe(folder: Path, **spec):  # type: ignore[no-untyped-def]
    args = spec.pop("args", {})
    return make_recipe("vllm", str(folder), args={"max_model_len": 8192, **args}, **spec)


def test_replicas_sharing_gpus_are_refused_by_validation(store) -> None:  # type: ignore[no-untyped-def]
    settings, folder = store
    report = validate(
        _recipe(folder, gpus=[0], replicas=2),
        settings=settings,
        gpus=pretend_gpus(profile="h100-80g", count=2),
        verify_sha256=False,
    )
    c = _checks(report)["placement"]
    assert c.status == Status.FAIL and "need 2 GPUs" in c.detail
    assert not report.ok


def test_replica_placement_reported(store) -> None:  # type: ignore[no-untyped-def]
    settings, folder = store
    report = validate(
        _recipe(folder, gpus=[2, 3], replicas=2),
        settings=settings,
        gpus=pretend_gpus(profile="h100-80g", count=4),
        verify_sha256=False,
    )
    c = _checks(report)
    assert (
        c["placement"].status == Status.OK and c["placement"].detail == "replica 0: GPU 2; replica 1: GPU 3"
    )
    assert c["tensor_parallel"].status == Status.OK  # one GPU per replica, tp 1: no "only 1 of 2 used"


def test_own_other_replica_counts_as_in_use(store) -> None:  # type: ignore[no-untyped-def]
    settings, folder = store
    recipe = _recipe(folder, gpus=[0, 1], replicas=2)
    gpus = pretend_gpus(profile="h100-80g", count=2)
    # replica 0 runs on GPU 0 (the supervisor's view, own replicas included); replica 1 starts on GPU 1
    used = {0: [tenant_of("test-vllm replica 0", recipe.spec)]}
    ok = validate(recipe, settings=settings, gpus=gpus, used_gpus=used, replica_index=1, verify_sha256=False)
    assert _checks(ok)["gpus_free"].status == Status.OK
    # had placement put replica 1 on GPU 0 too, 0.9 + 0.9 would not fit
    clash = validate(
        recipe, settings=settings, gpus=gpus, used_gpus=used, replica_index=0, verify_sha256=False
    )
    assert _checks(clash)["gpus_free"].status == Status.FAIL


def test_colocation_accepted_when_shares_and_contexts_fit(store) -> None:  # type: ignore[no-untyped-def]
    settings, folder = store
    chat = make_recipe("vllm", "chat", gpus=[0], args={"gpu_memory_utilization": 0.70})
    embed = _recipe(folder, gpus=[0], args={"gpu_memory_utilization": 0.20})
    gpus = pretend_gpus(profile="h100-80g")
    report = validate(
        embed,
        settings=settings,
        gpus=gpus,
        used_gpus={0: [tenant_of("chat", chat.spec)]},
        verify_sha256=False,
    )
    c = _checks(report)["gpus_free"]
    assert c.status == Status.OK and "chat 0.70" in c.detail


def test_colocation_refused_when_shares_exceed_the_gpu(store) -> None:  # type: ignore[no-untyped-def]
    # the old shipped promise: a chat model at 0.90 and bge-m3 at 0.25 on GPU 0
    settings, folder = store
    chat = make_recipe("vllm", "chat", gpus=[0], args={"gpu_memory_utilization": 0.90})
    embed = _recipe(folder, gpus=[0], args={"gpu_memory_utilization": 0.25})
    report = validate(
        embed,
        settings=settings,
        gpus=pretend_gpus(profile="l4-24g"),
        used_gpus={0: [tenant_of("chat", chat.spec)]},
        verify_sha256=False,
    )
    c = _checks(report)["gpus_free"]
    assert c.status == Status.FAIL and "does not fit" in c.detail
    assert "gpu_memory_utilization" in (c.fix or "")


def test_colocation_counts_contexts_not_only_shares() -> None:
    total = 20 * GiB
    a = GpuTenant("a", 0.5, 512 * 1024**2)
    b = GpuTenant("b", 0.49, 512 * 1024**2)
    # 0.99 of the GPU "fits" by shares alone; with two 0.5 GiB contexts it does not
    assert not colocation_fits(a, [b], total_bytes=total).fits
    assert colocation_fits(GpuTenant("a", 0.45, 512 * 1024**2), [b], total_bytes=total).fits


def test_a_model_without_a_fixed_share_holds_its_gpu(store) -> None:  # type: ignore[no-untyped-def]
    settings, folder = store
    llama = make_recipe("llamacpp", "m.gguf", gpus=[0])
    report = validate(
        _recipe(folder, gpus=[0], args={"gpu_memory_utilization": 0.2}),
        settings=settings,
        gpus=pretend_gpus(profile="h100-80g"),
        used_gpus={0: [tenant_of("gguf-model", llama.spec)]},
        verify_sha256=False,
    )
    c = _checks(report)["gpus_free"]
    assert c.status == Status.FAIL and "cannot share" in c.detail
    named = validate(
        _recipe(folder, gpus=[0]),
        settings=settings,
        gpus=pretend_gpus(profile="h100-80g"),
        used_gpus={0: "other-model"},
        verify_sha256=False,
    )
    assert _checks(named)["gpus_free"].status == Status.FAIL
