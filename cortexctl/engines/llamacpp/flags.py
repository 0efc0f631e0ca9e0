"""llama-server's flags as CORTEX treats them in recipes: pure data, no imports.

The generators (scripts/gen_llamacpp_flags.py) load this file by path to write each
allow-listed option's category into the flag data (data/llamacpp-<version>.json); the
shared machinery that reads these tables is cortexctl/recipes/extra_args.py and
cortexctl/recipes/flags/allowlist.py.
"""

# ruff: noqa: E501

# The typed `spec.args` field that owns each flag; every spelling of the flag's option
# is covered through the data file. The adapter renders these fields.
TYPED_FLAGS: dict[str, str] = {
    "--ctx-size": "context_length",
    "--parallel": "parallel",
    "--n-gpu-layers": "gpu_layers",
    "--threads": "threads",
    "--batch-size": "batch_size",
    "--ubatch-size": "ubatch_size",
    "--cache-type-k": "cache_type_k",
    "--cache-type-v": "cache_type_v",
    "--flash-attn": "flash_attn",
    "--chat-template": "chat_template",
    "--chat-template-file": "chat_template_file",
    "--embedding": "embeddings",
    "--pooling": "pooling",
    "--mmproj": "mmproj",
    # args.mlock has no flag of its own in this llama.cpp: the adapter renders it as
    # `--load-mode mmap+mlock` (semantic.py refuses --load-mode next to mlock: true).
}

# Flags CORTEX derives from other parts of the recipe or from the host; the reason says which.
CORTEX_FLAGS: dict[str, str] = {
    "--host": "CORTEX sets this (engines listen on 127.0.0.1 only)",
    "--port": "CORTEX sets this (it picks a free port per replica)",
    "--model": "CORTEX sets this from spec.model.path",
    "--alias": "CORTEX sets this from spec.served_name",
    "--metrics": "CORTEX sets this (the gateway reads the engine's metrics)",
    "--api-key": "CORTEX sets a fresh engine key per launch (the gateway checks client API keys)",
    "--api-key-file": "CORTEX sets a fresh engine key per launch (the gateway checks client API keys)",
    "--model-url": "CORTEX runs offline: put the file in the model store and use spec.model.path",
    "--hf-repo": "CORTEX runs offline: put the file in the model store and use spec.model.path",
    "--hf-file": "CORTEX runs offline: put the file in the model store and use spec.model.path",
    "--docker-repo": "CORTEX runs offline: put the file in the model store and use spec.model.path",
    "--help": "prints help and exits; not for a served model",
    "--version": "prints the version and exits; not for a served model",
    "--completion-bash": "prints a script and exits; not for a served model",
    "--cache-list": "lists the download cache and exits; not for a served model",
    "--list-devices": "lists devices and exits; not for a served model",
}

# The allow-list: category → flags (any spelling of the option) a recipe's extra_args may set.
ALLOWED: dict[str, tuple[str, ...]] = {
    "performance": (
        "--threads-batch", "--threads-http", "--cpu-mask", "--cpu-mask-batch", "--cpu-range",
        "--cpu-range-batch", "--cpu-strict", "--cpu-strict-batch", "--prio", "--prio-batch", "--poll",
        "--poll-batch", "--numa", "--cont-batching", "--cache-prompt", "--cache-reuse", "--warmup",
        "--op-offload", "--repack", "--no-host", "--perf", "--timeout", "--sse-ping-interval",
        "--slot-prompt-similarity", "--check-tensors",
    ),
    "memory": (
        "--cache-ram", "--load-mode", "--lazy-mode", "--swa-full", "--kv-unified",
        "--kv-unified-per-slot",
        "--kv-offload", "--ctx-checkpoints", "--checkpoint-min-step", "--cache-idle-slots", "--fit",
        "--fit-ctx", "--fit-target", "--context-shift", "--keep", "--override-tensor", "--cpu-moe",
        "--n-cpu-moe", "--n-cpu-ffn", "--image-min-tokens", "--image-max-tokens",
        "--mtmd-batch-max-tokens", "--mmproj-offload",
    ),
    "context": (
        "--rope-scaling", "--rope-scale", "--rope-freq-base", "--rope-freq-scale", "--yarn-orig-ctx",
        "--yarn-ext-factor", "--yarn-attn-factor", "--yarn-beta-slow", "--yarn-beta-fast",
        "--override-kv",
    ),
    "parallelism": ("--device", "--split-mode", "--tensor-split", "--main-gpu", "--mmproj-device"),
    "sampling": (
        "--temp", "--top-k", "--top-p", "--min-p", "--typical", "--top-nsigma", "--xtc-probability",
        "--xtc-threshold", "--repeat-last-n", "--repeat-penalty", "--presence-penalty",
        "--frequency-penalty", "--dry-multiplier", "--dry-base", "--dry-allowed-length",
        "--dry-penalty-last-n", "--dry-sequence-breaker", "--dynatemp-range", "--dynatemp-exp",
        "--mirostat", "--mirostat-lr", "--mirostat-ent", "--samplers", "--sampling-seq", "--seed",
        "--ignore-eos", "--logit-bias", "--adaptive-target", "--adaptive-decay", "--backend-sampling",
        "--grammar", "--json-schema", "--n-predict", "--spec-type", "--spec-ngram-mod-n-match",
        "--spec-ngram-mod-n-max", "--spec-ngram-mod-n-min", "--spec-ngram-simple-min-hits",
        "--spec-ngram-simple-size-m", "--spec-ngram-simple-size-n", "--spec-ngram-map-k-min-hits",
        "--spec-ngram-map-k-size-m", "--spec-ngram-map-k-size-n", "--spec-ngram-map-k4v-min-hits",
        "--spec-ngram-map-k4v-size-m", "--spec-ngram-map-k4v-size-n",
    ),
    "template": (
        "--jinja", "--chat-template-kwargs", "--reasoning-format", "--reasoning-budget",
        "--reasoning-budget-message", "--reasoning-effort", "--reasoning", "--prefill-assistant",
        "--skip-chat-parsing", "--reasoning-preserve", "--spm-infill", "--escape", "--special",
    ),
    "embeddings": ("--embd-normalize", "--rerank"),
    "logging": ("--log-verbosity", "--log-timestamps", "--log-prefix", "--log-colors"),
}  # fmt: skip

_LOGS = "the daemon manages engine logs ($CORTEX_HOME/logs/engines/, `cortexctl model logs NAME`)"
_OFFLINE = "CORTEX runs offline: put the file in the model store and use spec.model.path"
_NO_TOOLS = "built-in agent tools run commands and read or write files on the host; CORTEX serves models only"
_GATEWAY = "engines answer only the gateway, which does TLS, keys and CORS for them"

# Why a flag is refused and what to use instead, where more can be said than the general reason.
REFUSED: dict[str, str] = {
    "--tools": _NO_TOOLS,
    "--tools-runtime": _NO_TOOLS,
    "--agent": _NO_TOOLS,
    "--mcp-servers-json": "MCP servers are programs the engine would start; CORTEX serves models only",
    "--mcp-servers-config": "MCP servers are programs the engine would start; CORTEX serves models only",
    "--ui-mcp-proxy": "the engine's web UI and its MCP proxy are off: use the CORTEX playground (/chat)",
    "--ui": "the engine's web UI is off: use the CORTEX playground (/chat)",
    "--ui-config": "the engine's web UI is off: use the CORTEX playground (/chat)",
    "--ui-config-file": "the engine's web UI is off: use the CORTEX playground (/chat)",
    "--log-file": _LOGS,
    "--log-disable": _LOGS + "; the diagnosis of failed starts reads them",
    "--log-prompts-dir": "prompts are never written to disk; usage is metered by the gateway",
    "--path": "the engine serves no static files; the daemon serves the console",
    "--media-path": "requests may not read files of the host",
    "--slot-save-path": ("slot state is never written to disk (it holds prompts); raise --cache-ram instead"),
    "--slots": "the slots endpoint shows other users' prompts; the daemon's /metrics covers monitoring",
    "--props": "POST /props would change a served model's settings at run time; change the recipe",
    "--api-prefix": "the gateway routes /v1 to the engine; it cannot follow another prefix",
    "--ssl-key-file": _GATEWAY,
    "--ssl-cert-file": _GATEWAY,
    "--cors-origins": _GATEWAY,
    "--cors-headers": _GATEWAY,
    "--cors-methods": _GATEWAY,
    "--cors-credentials": _GATEWAY,
    "--reuse-port": "each replica owns its port; another process could share it",
    "--rpc": "engines use this host's devices only; remote RPC servers are outside CORTEX's control",
    "--models-dir": "CORTEX runs one model per engine: give each its own recipe",
    "--models-preset": "CORTEX runs one model per engine: give each its own recipe",
    "--models-max": "CORTEX runs one model per engine: give each its own recipe",
    "--models-autoload": "CORTEX runs one model per engine: give each its own recipe",
    "--lora": "a LoRA adapter is a second model file; recipes serve spec.model.path only (yet)",
    "--lora-scaled": "a LoRA adapter is a second model file; recipes serve spec.model.path only (yet)",
    "--model-draft": "a draft model is a file outside the recipe's model; not supported in recipes yet",
    "--video-ffmpeg-dir": "the engine would run ffmpeg from that folder",
    "--hf-token": _OFFLINE,
    "--mmproj-url": _OFFLINE,
    "--hf-repo-draft": _OFFLINE,
    "--offline": "engines always run offline",
    "--log-verbose": "logs every prompt in full; use --log-verbosity N for more detail",
}
