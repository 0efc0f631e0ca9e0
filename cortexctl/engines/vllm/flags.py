"""vllm serve's flags as CORTEX treats them in recipes: pure data, no imports.

The generators (scripts/gen_vllm_flags.py) load this file by path to write each
allow-listed option's category into the flag data (data/vllm-<version>.json); the
shared machinery that reads these tables is cortexctl/recipes/extra_args.py and
cortexctl/recipes/flags/allowlist.py.
"""

# ruff: noqa: E501

# The typed `spec.args` field that owns each flag; every spelling of the flag's option
# is covered through the data file. The adapter renders these fields.
TYPED_FLAGS: dict[str, str] = {
    "--max-model-len": "max_model_len",
    "--tensor-parallel-size": "tensor_parallel_size",
    "--pipeline-parallel-size": "pipeline_parallel_size",
    "--gpu-memory-utilization": "gpu_memory_utilization",
    "--max-num-seqs": "max_num_seqs",
    "--max-num-batched-tokens": "max_num_batched_tokens",
    "--dtype": "dtype",
    "--quantization": "quantization",
    "--kv-cache-dtype": "kv_cache_dtype",
    "--enforce-eager": "enforce_eager",
    "--enable-prefix-caching": "enable_prefix_caching",
    "--trust-remote-code": "trust_remote_code",
    "--chat-template": "chat_template",
    "--runner": "task",
    "--convert": "task",
    "--swap-space": "swap_space_gib",
}

# Flags CORTEX derives from other parts of the recipe or from the host; the reason says which.
CORTEX_FLAGS: dict[str, str] = {
    "--host": "CORTEX sets this (engines listen on 127.0.0.1 only)",
    "--port": "CORTEX sets this (it picks a free port per replica)",
    "--model": "CORTEX sets this from spec.model.path",
    "--served-model-name": "CORTEX sets this from spec.served_name",
    "--api-key": "CORTEX sets a fresh engine key per launch (the gateway checks client API keys)",
    "--uds": "CORTEX sets this (engines listen on 127.0.0.1 TCP)",
    "--headless": "CORTEX runs the API server itself; headless mode is not supported",
}

# The allow-list: category → flags (any spelling of the option) a recipe's extra_args may set.
ALLOWED: dict[str, tuple[str, ...]] = {
    "performance": (
        "--async-scheduling", "--enable-chunked-prefill", "--long-prefill-token-threshold",
        "--stream-interval", "--scheduling-policy", "--performance-mode", "--optimization-level",
        "--cudagraph-capture-sizes", "--max-cudagraph-capture-size", "--block-size",
        "--attention-backend",
        "--disable-cascade-attn", "--prefix-caching-hash-algo", "--enable-dbo",
        "--dbo-decode-token-threshold", "--dbo-prefill-token-threshold", "--max-num-active-seqs",
        "--disable-log-stats", "--disable-uvicorn-access-log",
    ),
    "memory": (
        "--kv-cache-memory-bytes", "--cpu-offload-gb", "--num-gpu-blocks-override", "--mamba-cache-dtype",
        "--mamba-ssm-cache-dtype", "--mamba-block-size", "--disable-hybrid-kv-cache-manager",
        "--disable-sliding-window", "--mm-processor-cache-gb", "--limit-mm-per-prompt",
        "--skip-mm-profiling", "--kv-cache-dtype-skip-layers",
    ),
    "parallelism": (
        "--data-parallel-size", "--enable-expert-parallel", "--enable-eplb",
        "--decode-context-parallel-size", "--prefill-context-parallel-size",
        "--max-parallel-loading-workers", "--disable-custom-all-reduce", "--all2all-backend",
    ),
    "sampling": ("--max-logprobs", "--logprobs-mode", "--seed", "--override-generation-config"),
    "template": (
        "--chat-template-content-format", "--response-role", "--enable-auto-tool-choice",
        "--tool-call-parser", "--reasoning-parser", "--default-chat-template-kwargs",
        "--enable-prompt-tokens-details", "--exclude-tools-when-tool-choice-none", "--tokenizer-mode",
    ),
    "logging": ("--uvicorn-log-level", "--max-log-len"),
}  # fmt: skip

_LOGS = "the daemon manages engine logs ($CORTEX_HOME/logs/engines/, `cortexctl model logs NAME`)"
_OFFLINE = "CORTEX runs offline: put the file in the model store and use spec.model.path"
_NO_TOOLS = "built-in agent tools run commands and read or write files on the host; CORTEX serves models only"
_GATEWAY = "engines answer only the gateway, which does TLS, keys and CORS for them"

# Why a flag is refused and what to use instead, where more can be said than the general reason.
REFUSED: dict[str, str] = {
    "--tool-parser-plugin": (
        "a plugin is Python code the engine would import; use a built-in --tool-call-parser"
    ),
    "--reasoning-parser-plugin": (
        "a plugin is Python code the engine would import; use a built-in --reasoning-parser"
    ),
    "--io-processor-plugin": "a plugin is Python code the engine would import",
    "--worker-cls": "names Python code the engine would import",
    "--worker-extension-cls": "names Python code the engine would import",
    "--scheduler-cls": "names Python code the engine would import",
    "--logits-processors": "names Python code the engine would import",
    "--middleware": "names Python code the engine would import",
    "--model-class-overrides": "names Python code the engine would import",
    "--tool-server": "tool servers are programs outside CORTEX's control",
    "--enable-prompt-embeds": "clients would send tensors the engine deserializes; not safe for tenants",
    "--trust-request-chat-template": ("clients would send templates the engine runs; set args.chat_template"),
    "--config": "a config file is read from the host: put its settings in the recipe",
    "--log-config-file": _LOGS,
    "--logging-config": _LOGS,
    "--enable-log-requests": "logs every prompt; usage is metered by the gateway",
    "--enable-log-outputs": "logs every answer; usage is metered by the gateway",
    "--profiler-config": "profiles are written to host paths; profile outside a served model",
    "--otlp-traces-endpoint": "engines send nothing off the host",
    "--kv-events-config": "engines publish nothing off the host",
    "--kv-transfer-config": "engines connect to nothing off the host",
    "--ec-transfer-config": "engines connect to nothing off the host",
    "--download-dir": _OFFLINE,
    "--hf-token": _OFFLINE,
    "--revision": _OFFLINE,
    "--code-revision": _OFFLINE,
    "--tokenizer-revision": _OFFLINE,
    "--tokenizer": "the tokenizer comes from the model folder (spec.model.path)",
    "--hf-config-path": "the config comes from the model folder (spec.model.path)",
    "--generation-config": "the generation config comes from the model folder; use spec.request_defaults",
    "--lora-modules": "LoRA adapters are not supported in vLLM recipes yet",
    "--enable-lora": "LoRA adapters are not supported in vLLM recipes yet",
    "--allowed-local-media-path": "requests may not read files of the host",
    "--allowed-media-domains": "engines fetch nothing off the host",
    "--ssl-keyfile": _GATEWAY,
    "--ssl-certfile": _GATEWAY,
    "--ssl-ca-certs": _GATEWAY,
    "--ssl-cert-reqs": _GATEWAY,
    "--ssl-ciphers": _GATEWAY,
    "--enable-ssl-refresh": _GATEWAY,
    "--allowed-origins": _GATEWAY,
    "--allowed-methods": _GATEWAY,
    "--allowed-headers": _GATEWAY,
    "--allow-credentials": _GATEWAY,
    "--root-path": "the gateway routes /v1 to the engine; it cannot follow another prefix",
    "--grpc": "the gateway speaks HTTP to engines",
    "--grpc-port": "the gateway speaks HTTP to engines",
    "--api-server-count": "one API server per replica: use spec.replicas",
    "--data-parallel-address": "replicas run on this host: use spec.replicas",
    "--data-parallel-rpc-port": "replicas run on this host: use spec.replicas",
    "--master-addr": "replicas run on this host: use spec.replicas",
    "--master-port": "replicas run on this host: use spec.replicas",
    "--distributed-executor-backend": "multi-node execution is outside CORTEX's control",
    "--compilation-config": "it can name dump and cache paths on the host; use -O / --optimization-level",
    "--load-format": "weights load from the model folder in its own format",
    "--model-loader-extra-config": "weights load from the model folder in its own format",
}
