"""Validation before start: model inspection, memory estimates, GPU and config checks.

Public surface (what the CLI, the admin route and the supervisor call):

    validate(recipe, *, settings, gpus=None, gpu_profile=None, vram=None, used_gpus=None,
             command=None, port=None, runtime=None, images=None, verify_sha256=True) -> ValidationReport
    ValidationReport.ok / .to_dict() / .to_json() / .require_ok()   (raises ValidationFailed)
    print_report(report, console) / render(report)                  (rich)
    inspect_model(path) -> ModelInfo                                (raises ModelInspectionError)
    (memory estimates are each engine's: cortexctl/engines/<name>/estimate.py, through the registry)
    detect_gpus() / pretend_gpus(profile=…, vram=…) / GPU_PROFILES
"""

from cortexctl.validation.breakdown import Breakdown, Component
from cortexctl.validation.checks import Check, Status
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
    "inspect_model",
    "pretend_gpus",
    "print_report",
    "render",
    "validate",
]
