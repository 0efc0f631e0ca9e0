"""Validation before start: model inspection, memory estimates, GPU and config checks.

Public surface (what the CLI, the admin route and the supervisor call):

    validate(recipe, *, settings, gpus=None, gpu_profile=None, vram=None, used_gpus=None,
             command=None, port=None, runtime=None, images=None, verify_sha256=True) -> ValidationReport
    ValidationReport.ok / .to_dict() / .to_json() / .require_ok()   (raises ValidationFailed)
    print_report(report, console) / render(report)                  (rich)
    inspect_model(path) -> ModelInfo                                (raises ModelInspectionError)
    estimate_llamacpp(model, args) / estimate_vllm(model, args, gpu_total_bytes=…) -> Breakdown
    detect_gpus() / pretend_gpus(profile=…, vram=…) / GPU_PROFILES
"""

from cortexctl.validation.breakdown import Breakdown, Component
from cortexctl.validation.checks import Check, Status
from cortexctl.validation.estimate_llamacpp import estimate_llamacpp
from cortexctl.validation.estimate_vllm import estimate_vllm
from cortexctl.validation.gpus import GPU_PROFILES, GpuInfo, detect_gpus, pretend_gpus
from cortexctl.validation.inspect import inspect_model
from cortexctl.validation.modelinfo import ModelInfo, ModelInspectionError
from cortexctl.validation.render import print_report, render
from cortexctl.validation.report import ValidationFailed, ValidationReport, validate

__all__ = [
    "GPU_PROFILES",
    "Breakdown",
    "Check",
    "Component",
    "GpuInfo",
    "ModelInfo",
    "ModelInspectionError",
    "Status",
    "ValidationFailed",
    "ValidationReport",
    "detect_gpus",
    "estimate_llamacpp",
    "estimate_vllm",
    "inspect_model",
    "pretend_gpus",
    "print_report",
    "render",
    "validate",
]
