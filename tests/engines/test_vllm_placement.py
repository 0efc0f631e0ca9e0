"""Each vLLM replica gets its own GPUs (replicas × tensor_parallel × pipeline_parallel).

vLLM reserves gpu_memory_utilization × total of every GPU it sees and refuses to start when
that much is not free ("Free memory on device … on startup is less than desired GPU memory
utilization", vllm/v1/worker/utils.py `request_memory`): two replicas on one GPU would kill
the second. These tests render real launch specs for the placement matrix.
"""

from __future__ import annotations

import pytest

from cortexctl.core.errors import RecipeError
from cortexctl.core.settings import Settings
from cortexctl.engines.llamacpp import LlamaCppEngine
from cortexctl.engines.vllm import VllmEngine
from cortexctl.recipes.placement import placement
from tests.support.engine_fixtures import make_recipe


def _recipe(gpus, replicas: int, tp: int = 1, pp: int = 1):  # type: ignore[no-untyped-def]
    return make_recipe(
        "vllm", "m", gpus=gpus, replicas=replicas,
        args={"tensor_parallel_size": tp, "pipeline_parallel_size": pp},
    )  # fmt: skip


# (gpus, replicas, tp, pp) → each replica's GPUs
MATRIX = [
    ([0], 1, 1, 1, [(0,)]),
    ([2, 3], 2, 1, 1, [(2,), (3,)]),  # the case: no longer both on "2,3"
    ([0, 1, 2, 3], 2, 2, 1, [(0, 1), (2, 3)]),
    ([0, 1, 2, 3], 4, 1, 1, [(0,), (1,), (2,), (3,)]),
    ([0, 1, 2, 3], 1, 2, 2, [(0, 1, 2, 3)]),
    ([4, 5, 6, 7, 0, 1, 2, 3], 2, 2, 2, [(4, 5, 6, 7), (0, 1, 2, 3)]),  # spec order, not sorted
    ([0, 1, 2], 1, 2, 1, [(0, 1)]),  # one GPU more than needed: unused (validation warns)
    ("all", 1, 4, 1, ["all"]),
]


@pytest.mark.parametrize(("gpus", "replicas", "tp", "pp", "expected"), MATRIX)
def test_placement_matrix(  # type: ignore[no-untyped-def]
    engine_settings: Settings, gpus, replicas, tp, pp, expected
) -> None:
    recipe = _recipe(gpus, replicas, tp, pp)
    assert placement(recipe.spec, per_replica=tp * pp) == expected
    seen: list[int] = []
    for i, want in enumerate(expected):
        spec = VllmEngine().launch_spec(
            recipe, model_id=9, replica_index=i, port=18000 + i, settings=engine_settings
        )
        assert spec.gpus == want
        if want != "all":
            assert spec.env["CUDA_VISIBLE_DEVICES"] == ",".join(map(str, want))
            assert spec.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
            seen += list(want)
    assert len(seen) == len(set(seen)), "two replicas share a GPU"


@pytest.mark.parametrize(
    ("gpus", "replicas", "tp", "pp", "says"),
    [
        ([0], 2, 1, 1, "need 2 GPUs"),
        ([0, 1, 2], 2, 2, 1, "need 4 GPUs"),
        ([0, 1], 1, 2, 2, "need 4 GPUs"),
        ("all", 2, 1, 1, "same GPUs"),
    ],
)
def test_unsplittable_placements_are_refused(  # type: ignore[no-untyped-def]
    engine_settings: Settings, gpus, replicas, tp, pp, says
) -> None:
    recipe = _recipe(gpus, replicas, tp, pp)
    with pytest.raises(RecipeError, match=says) as info:
        VllmEngine().launch_spec(recipe, model_id=9, replica_index=0, port=18000, settings=engine_settings)
    assert info.value.fix and "spec.gpus" in info.value.fix


def test_llamacpp_replicas_still_see_the_whole_list(engine_settings: Settings) -> None:
    recipe = make_recipe("llamacpp", "m.gguf", gpus=[0, 1], replicas=2)
    for i in range(2):
        spec = LlamaCppEngine().launch_spec(
            recipe, model_id=3, replica_index=i, port=18100 + i, settings=engine_settings
        )
        assert spec.gpus == (0, 1)
        assert spec.env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_docker_gets_each_replicas_own_devices(engine_settings: Settings) -> None:
    from cortexctl.runtimes.docker import container_kwargs

    recipe = _recipe([2, 3], 2)
    spec = VllmEngine().launch_spec(recipe, model_id=9, replica_index=1, port=18001, settings=engine_settings)
    kwargs = container_kwargs(spec)
    assert [r["DeviceIDs"] for r in kwargs["device_requests"]] == [["3"]]
    # the device request renumbers from 0 inside the container; the order rule still travels
    assert "CUDA_VISIBLE_DEVICES" not in kwargs["environment"]
    assert kwargs["environment"]["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"
