"""dtype / quantization vs GPU compute capability, as vLLM enforces it.

Minimums follow vLLM's quantization configs (`get_min_capability`) and docs:
FP8 W8A8 runs natively on Ada (8.9) and Hopper (9.0); Ampere (8.0–8.6) runs FP8
checkpoints weight-only through Marlin (W8A16, slower); below 8.0 FP8 is refused.
AWQ/GPTQ Marlin kernels need 8.0; plain AWQ 7.5; plain GPTQ 6.0; bitsandbytes 7.0;
bf16 needs 8.0 (vLLM refuses an explicit --dtype bfloat16 below it).
"""

from __future__ import annotations

from cortexctl.engines.vllm.args import VllmArgs
from cortexctl.validation.checks import Check, fail, ok, warn
from cortexctl.validation.gpus import GpuInfo
from cortexctl.validation.modelinfo import ModelInfo

# method → (minimum capability, capability below which a faster kernel is missing, note)
QUANT_MIN_CC: dict[str, tuple[float, float | None, str]] = {
    "fp8": (8.0, 8.9, "FP8 W8A8 needs Ada/Hopper (8.9+); Ampere runs it weight-only via Marlin (W8A16)"),
    "fbgemm_fp8": (8.0, 8.9, "FP8 needs 8.9+ for W8A8"),
    "modelopt": (8.9, None, "ModelOpt FP8 needs 8.9+"),
    "awq_marlin": (8.0, None, "AWQ Marlin kernels need 8.0+"),
    "gptq_marlin": (8.0, None, "GPTQ Marlin kernels need 8.0+"),
    "marlin": (8.0, None, "Marlin kernels need 8.0+"),
    "awq": (7.5, 8.0, "plain AWQ needs 7.5+; 8.0+ uses the faster AWQ Marlin kernels"),
    "gptq": (6.0, 8.0, "plain GPTQ needs 6.0+; 8.0+ uses GPTQ Marlin kernels"),
    "bitsandbytes": (7.0, None, "bitsandbytes needs 7.0+"),
    "compressed-tensors": (7.0, None, "compressed-tensors schemes need 7.0+ (FP8 schemes 8.9+)"),
    "gguf": (6.0, None, "GGUF in vLLM needs 6.0+"),
    "nvfp4": (10.0, None, "NVFP4 needs Blackwell (10.0+)"),
    "modelopt_fp4": (10.0, None, "NVFP4 needs Blackwell (10.0+)"),
    "mxfp4": (8.0, 9.0, "MXFP4 runs natively on Hopper+; Ampere uses Marlin"),
}


def _quant_method(model: ModelInfo, args: VllmArgs) -> str | None:
    if args.quantization:
        return args.quantization.lower()
    if model.quantization and model.format == "hf":
        return model.quantization.method
    return None


def check_capability(model: ModelInfo, args: VllmArgs, selected: list[GpuInfo]) -> list[Check]:
    name = "gpu_capability"
    if not selected:
        return []
    known = [g for g in selected if g.cc is not None]
    if not known:
        return [
            warn(
                name,
                "GPU compute capability unknown (generic --vram GPU); dtype/quantization not checked",
                "Validate with --gpu-profile NAME to check kernels for a specific card.",
            )
        ]
    low = min(known, key=lambda g: g.cc or 0)
    cc = low.cc or 0.0
    where = f"GPU {low.index} ({low.name}, compute capability {cc:.1f})"
    out: list[Check] = []

    ckpt = (model.torch_dtype or "").lower()
    if args.dtype == "bfloat16" and cc < 8.0:
        out.append(
            fail(
                f"{name}_dtype",
                f"--dtype bfloat16 needs compute capability 8.0+, {where}",
                "Set args.dtype: half (float16).",
            )
        )
    elif args.dtype == "auto" and ckpt == "bfloat16" and cc < 8.0:
        out.append(
            warn(
                f"{name}_dtype",
                f"bf16 checkpoint on {where}: vLLM casts it to float16",
                "Set args.dtype: half to make that explicit.",
            )
        )
    else:
        out.append(
            ok(f"{name}_dtype", f"dtype {args.dtype}{f' ({ckpt} checkpoint)' if ckpt else ''} on {where}")
        )

    method = _quant_method(model, args)
    if method:
        rule = QUANT_MIN_CC.get(method)
        if rule is None:
            out.append(warn(f"{name}_quant", f"quantization {method}: no capability rule known", None))
        else:
            minimum, fast, note = rule
            if cc < minimum:
                out.append(
                    fail(f"{name}_quant", f"quantization {method} on {where}: {note}", _quant_fix(method))
                )
            elif fast is not None and cc < fast:
                out.append(
                    warn(
                        f"{name}_quant",
                        f"quantization {method} on {where}: {note}",
                        "Expect lower throughput, or use a GPU of capability "
                        f"{fast:.1f}+ (--gpu-profile h100-80g / l40s-48g).",
                    )
                )
            else:
                out.append(ok(f"{name}_quant", f"quantization {method} supported on {where}"))

    if args.kv_cache_dtype.startswith("fp8"):
        if cc < 8.0:
            out.append(
                fail(
                    f"{name}_kv",
                    f"kv_cache_dtype {args.kv_cache_dtype} on {where}",
                    "Set kv_cache_dtype: auto.",
                )
            )
        elif cc < 8.9:
            out.append(
                warn(
                    f"{name}_kv",
                    f"kv_cache_dtype {args.kv_cache_dtype} on {where}: no native FP8; "
                    "only some attention backends support it",
                    "Set kv_cache_dtype: auto if start fails.",
                )
            )
    return out


def _quant_fix(method: str) -> str:
    if method in ("fp8", "fbgemm_fp8", "modelopt", "compressed-tensors"):
        return (
            "Use an Ada/Hopper GPU (L4, L40S, RTX 4090, H100: compute capability 8.9+), or an AWQ/GPTQ "
            "checkpoint of the model on this GPU."
        )
    if method in ("nvfp4", "modelopt_fp4"):
        return "Use a Blackwell GPU, or an FP8/AWQ checkpoint."
    if method.endswith("marlin"):
        return f"Use --quantization {method.removesuffix('_marlin')} (slower kernels), or an Ampere+ GPU."
    return "Use a newer GPU, or an unquantized / differently quantized checkpoint."
