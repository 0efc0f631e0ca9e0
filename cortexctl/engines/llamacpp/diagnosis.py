# ruff: noqa: E501  (a table of log patterns and messages reads best unwrapped)
"""llama.cpp's startup diagnosis: its own log rules and its order of the shared ones."""

from __future__ import annotations

from cortexctl.engines import diagnosis

# -- arguments and ports: the engine never got to the model ------------------------
UNKNOWN_ARGUMENT = diagnosis.rule(
    "unknown-argument",
    r"error: (invalid argument|unknown value for [-\w]+): ",
    "llama-server rejected a command-line argument.",
    "Remove or correct the flag in the recipe's spec.args.extra_args (see `llama-server --help` for this "
    "version), then start the model again.",
)

CONTEXT_TOO_LARGE = diagnosis.rule(
    "context-too-large",
    r"slot context \(\d+\) exceeds the training context of the model|n_ctx_seq \(\d+\) > n_ctx_train",
    "The recipe's context length is larger than the model's training context.",
    "Lower spec.args.context_length (per slot: context_length / parallel) to the model's n_ctx_train.",
)

RULES: tuple[diagnosis.Rule, ...] = (
    UNKNOWN_ARGUMENT,
    diagnosis.PORT_IN_USE,
    diagnosis.MODEL_FILE_MISSING,
    diagnosis.MODEL_FILE_UNREADABLE,
    diagnosis.MODEL_FILE_CORRUPT,
    diagnosis.UNSUPPORTED_ARCHITECTURE,
    diagnosis.OFFLINE_DOWNLOAD,
    diagnosis.CUDA_DRIVER_MISMATCH,
    diagnosis.NO_GPU,
    diagnosis.OOM_CUDA,
    diagnosis.OOM_HOST,
    diagnosis.CHAT_TEMPLATE_MISSING,
    CONTEXT_TOO_LARGE,
)
