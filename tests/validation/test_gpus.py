"""GPU discovery and pretend profiles."""

from __future__ import annotations

import pytest

from cortexctl.core.errors import InvalidRequest
from cortexctl.core.sizes import parse_size
from cortexctl.validation import GPU_PROFILES, detect_gpus, pretend_gpus
from cortexctl.validation.breakdown import GiB, MiB
from cortexctl.validation.gpus import host_memory


def test_detect_gpus_without_driver_is_empty() -> None:
    import shutil

    if shutil.which("nvidia-smi"):
        pytest.skip("this host has an NVIDIA driver")
    assert detect_gpus() == []


@pytest.mark.parametrize(
    ("profile", "mib", "cc"),
    [
        ("a100-80g", 81920, (8, 0)),
        ("a100-40g", 40960, (8, 0)),
        ("h100-80g", 81559, (9, 0)),
        ("h200-141g", 143771, (9, 0)),
        ("l4-24g", 23034, (8, 9)),
        ("l40s-48g", 46068, (8, 9)),
        ("a10g-24g", 23028, (8, 6)),
        ("t4-16g", 15360, (7, 5)),
        ("rtx4090-24g", 24564, (8, 9)),
        ("rtx3090-24g", 24576, (8, 6)),
    ],
)
def test_profiles(profile: str, mib: int, cc: tuple[int, int]) -> None:
    (g,) = pretend_gpus(profile=profile)
    assert (g.total_bytes, g.free_bytes, g.compute_capability, g.pretend) == (mib * MiB, mib * MiB, cc, True)


def test_profile_count_and_vram() -> None:
    gpus = pretend_gpus(profile="4xh100-80g")
    assert [g.index for g in gpus] == [0, 1, 2, 3]
    (g,) = pretend_gpus(vram="24GiB")
    assert g.total_bytes == 24 * GiB and g.compute_capability is None
    assert len(GPU_PROFILES) >= 10


def test_bad_profile_and_vram() -> None:
    with pytest.raises(InvalidRequest):
        pretend_gpus(profile="b300-999g")
    with pytest.raises(InvalidRequest):
        pretend_gpus(vram="lots")
    with pytest.raises(InvalidRequest):
        pretend_gpus(profile="h100-80g", vram="24GiB")


def test_parse_size() -> None:
    assert parse_size("24GiB") == parse_size("24 GB") == parse_size("24g") == 24 * GiB
    assert parse_size("512MiB") == 512 * MiB
    with pytest.raises(ValueError):
        parse_size("-1GiB")


def test_host_memory() -> None:
    h = host_memory()
    assert 0 < h.available_bytes <= h.total_bytes
