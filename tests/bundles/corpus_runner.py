"""Runs the hostile-bundle corpus in a child process, so its memory can be measured alone.

    python -m tests.bundles.corpus_runner import SPEC.json     # cortexctl's import_bundle, in-process
    python -m tests.bundles.corpus_runner bootstrap SPEC.json  # scripts/bundle_bootstrap.py per case

Prints one JSON object: per-case results (error message, seconds, whether anything
changed in the case's folder or the database) and the peak RSS in KiB — of this process
for `import`, of the children (the bootstrap and its zstd) for `bootstrap`. An address-
space limit keeps a regression from taking the host's memory down with it.
"""

from __future__ import annotations

import hashlib
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ADDRESS_SPACE_LIMIT = 4 << 30
# The DB files are compared by their rows; `home/bundles/` (the ledger's folder) and its lock
# file are the importer's own bookkeeping, made by every run.
VOLATILE = {
    "home/cortex.db",
    "home/cortex.db-wal",
    "home/cortex.db-shm",
    "home/bundles",
    "home/bundles/.lock",
}


def tree_state(root: Path) -> dict[str, str]:
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        if rel in VOLATILE:
            continue
        if p.is_symlink():
            out[rel] = "link:" + str(p.readlink())
        elif p.is_file():
            out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
        else:
            out[rel] = "dir"
    return out


def db_rows(home: Path) -> list[tuple[str, str, str]]:
    from sqlalchemy import create_engine, text

    db = home / "cortex.db"
    if not db.exists():
        return []
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("select name, yaml_text, source from recipes order by name"))
            return [tuple(r) for r in rows]
    finally:
        engine.dispose()


def run_import(spec: dict[str, Any]) -> dict[str, Any]:
    from cortexctl.bundles.install import import_bundle
    from cortexctl.core.errors import CortexError
    from cortexctl.core.settings import load_settings

    work = Path(spec["work"])
    results = []
    for n, case in enumerate(spec["cases"]):
        ws = work / f"case-{n}"
        shutil.copytree(spec["homes"][case["setup"] or "default"], ws)
        before = tree_state(ws), db_rows(ws / "home"), sorted(p.name for p in work.iterdir())
        started = time.monotonic()
        error = None
        try:
            import_bundle(
                Path(case["bundle"]),
                settings=load_settings(home=ws / "home"),
                engine_cache_dir=ws / "cache" / "cortex",
                allow_unsigned=case["allow_unsigned"],
                replace=case["replace"],
            )
        except CortexError as exc:
            error = exc.message
        except BaseException as exc:  # noqa: BLE001 - reported: an internal error is a finding
            error = f"internal error: {type(exc).__name__}: {exc}"
        seconds = time.monotonic() - started
        after = tree_state(ws), db_rows(ws / "home"), sorted(p.name for p in work.iterdir())
        results.append(
            {
                "name": case["name"],
                "error": error,
                "seconds": seconds,
                "files_unchanged": before[0] == after[0],
                "db_unchanged": before[1] == after[1],
                "outside_unchanged": before[2] == after[2],
                "changed": sorted(set(before[0].items()) ^ set(after[0].items()))[:6],
            }
        )
        shutil.rmtree(ws)
    return {"results": results, "peak_rss_kib": own_peak_rss_kib()}


def own_peak_rss_kib() -> int:
    """This process's own high-water RSS. Not getrusage(RUSAGE_SELF): Linux carries the maximum
    across fork and exec, so a runner started by a big pytest process would report the parent."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_bootstrap(spec: dict[str, Any]) -> dict[str, Any]:
    script = Path(__file__).resolve().parents[2] / "scripts" / "bundle_bootstrap.py"
    work = Path(spec["work"])
    results = []
    for n, case in enumerate(spec["cases"]):
        dest = work / f"wheels-{n}"
        cmd = [sys.executable, str(script), case["bundle"], "--dest", str(dest)]
        cmd += ["--trusted-keys", spec["trusted"]]
        if case["allow_unsigned"]:
            cmd.append("--allow-unsigned")
        started = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
            rc, err = proc.returncode, proc.stderr
        except subprocess.TimeoutExpired:
            rc, err = None, "timed out after 60 s"
        seconds = time.monotonic() - started
        left = sorted(p.name for p in dest.iterdir()) if dest.is_dir() else []
        results.append({"name": case["name"], "rc": rc, "stderr": err, "seconds": seconds, "left": left})
        shutil.rmtree(dest, ignore_errors=True)
    return {"results": results, "peak_rss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}


def main() -> None:
    mode, spec_path = sys.argv[1], sys.argv[2]
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))
    spec = json.loads(Path(spec_path).read_text())
    out = run_import(spec) if mode == "import" else run_bootstrap(spec)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
