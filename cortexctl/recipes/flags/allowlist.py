"""Which engine flags a recipe's `extra_args` may set: an allow-list per engine, by purpose.

A recipe decides what runs on the host, and many engine flags reach far beyond
serving a model: llama-server's `--tools exec_shell_command` runs commands,
`--log-file`, `--slot-save-path`, `--log-prompts-dir` write files, `--path` and
`--media-path` serve or read them, `--mcp-servers-json` starts programs; vLLM
loads Python plugins (`--tool-parser-plugin`, `--worker-cls`) and writes
profiles. A deny-list would miss the next one a version adds, so this is the
other way round: only flags listed here (performance, memory, context,
parallelism, sampling, template, embeddings and log-verbosity flags, none of
which takes a file path or an address) may be set, everything else is refused
with a reason and what to use instead.

The generators (`scripts/gen_llamacpp_flags.py`, `scripts/gen_vllm_flags.py`)
write each option's category from `ALLOWED` into the flag data file next to the
option itself (`"allowed": "<category>"`), so the allow-list is regenerated with
the flag data and a test checks the committed files against this module
(`--allow-list-only` re-applies it without the engine). Names may be any
spelling of an option; a name the engine does not have fails the generator.
"""

from __future__ import annotations

from typing import Any

# engine → category → flags (any spelling of the option)
ALLOWED: dict[str, dict[str, tuple[str, ...]]] = {
    "llamacpp": {
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
    },
    "vllm": {
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
    },
}  # fmt: skip

_LOGS = "the daemon manages engine logs ($CORTEX_HOME/logs/engines/, `cortexctl model logs NAME`)"
_OFFLINE = "CORTEX runs offline: put the file in the model store and use spec.model.path"
_NO_TOOLS = "built-in agent tools run commands and read or write files on the host; CORTEX serves models only"
_GATEWAY = "engines answer only the gateway, which does TLS, keys and CORS for them"

# Why a flag is refused and what to use instead, where more can be said than the general reason.
REFUSED: dict[str, dict[str, str]] = {
    "llamacpp": {
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
        "--slot-save-path": (
            "slot state is never written to disk (it holds prompts); raise --cache-ram instead"
        ),
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
    },
    "vllm": {
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
        "--trust-request-chat-template": (
            "clients would send templates the engine runs; set args.chat_template"
        ),
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
    },
}

PATH_HINTS = ("FNAME", "FILE", "PATH", "DIR")
PATH_WORDS = ("path", "file", "directory", "folder", "dir ")


def categories_by_name(engine: str) -> dict[str, str]:
    """Every flag name listed for `engine` → its category (a name listed twice is a mistake)."""
    out: dict[str, str] = {}
    for category, flags in ALLOWED[engine].items():
        for flag in flags:
            if flag in out:
                raise ValueError(f"{engine}: {flag} is listed under both {out[flag]} and {category}")
            out[flag] = category
    return out


def apply_allow_list(engine: str, options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`options` (generator output) with `"allowed": category` on each listed option.

    Raises ValueError for a listed name no option has, so the list cannot rot silently
    when a version bump removes or renames a flag.
    """
    wanted = categories_by_name(engine)
    seen: set[str] = set()
    out = []
    for opt in options:
        opt = {k: v for k, v in opt.items() if k != "allowed"}
        hits = {wanted[n] for n in opt["names"] if n in wanted}
        seen.update(n for n in opt["names"] if n in wanted)
        if len(hits) > 1:
            raise ValueError(f"{engine}: spellings of {opt['names'][0]} are listed under {sorted(hits)}")
        if hits:
            opt["allowed"] = hits.pop()
        out.append(opt)
    missing = sorted(set(wanted) - seen)
    if missing:
        raise ValueError(f"{engine}: the allow-list names flags the engine does not have: {missing}")
    return out


def takes_path(value_hint: str | None, help_text: str, nargs: object) -> bool:
    """Whether an option's value looks like a host path (for the reason given when refusing it)."""
    if nargs == 0:
        return False
    if value_hint and any(h in value_hint.upper() for h in PATH_HINTS):
        return True
    head = help_text.lower()[:80]
    return any(w in head for w in PATH_WORDS)
