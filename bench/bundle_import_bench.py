"""Bundle import throughput vs plain `sha256sum` + `cp` of the same bytes on the same disk.

    .venv/bin/python bench/bundle_import_bench.py [--size-mib 1024] [--files 4] [--dir DIR] [--repeat 3]

Writes model files of random bytes, exports them as a bundle (uncompressed and zstd), then
times, each best of --repeat runs with a warm page cache for both sides:
  baseline  `sha256sum FILES` then `cp FILES DEST/`  (and the same followed by `sync`)
  import    `import_bundle` into a fresh CORTEX home (one pass: hash + write + fsync)
and prints MiB/s and the ratio import/baseline (target ≥ 0.80).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from cortexctl.bundles.export import export_bundle
from cortexctl.bundles.install import import_bundle
from cortexctl.core.settings import load_settings


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--files", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir in /var/tmp)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cortex-bundle-bench-", dir=args.dir or "/var/tmp"))
    try:
        src = work / "src"
        src.mkdir()
        per_file = args.size_mib * 1024 * 1024 // args.files
        files = []
        for n in range(args.files):
            path = src / f"model-{n}.gguf"
            with path.open("wb") as fh:
                for _ in range(per_file >> 20):
                    fh.write(os.urandom(1 << 20))  # incompressible, like quantized weights
            files.append(path)
        total = sum(p.stat().st_size for p in files)
        definition = src / "bench.yaml"
        definition.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "cortex/v1",
                    "kind": "BundleDefinition",
                    "metadata": {"name": "bench"},
                    "spec": {"models": [{"name": p.name, "path": p.name} for p in files]},
                }
            )
        )
        bundles = {}
        for compression in ("none", "zstd"):
            out = work / f"bench-{compression}.tar"
            export_bundle(
                definition, output=out, engine_cache_dir=work / "cache", compression=compression, level=1
            )
            bundles[compression] = out

        def baseline(sync: bool) -> float:
            dest = work / "cp-dest"
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir()
            names = [str(p) for p in files]
            t = _timed(
                lambda: (
                    subprocess.run(["sha256sum", *names], check=True, stdout=subprocess.DEVNULL),
                    subprocess.run(["cp", *names, str(dest)], check=True),
                    subprocess.run(["sync"], check=True) if sync else None,
                )
            )
            shutil.rmtree(dest)
            return t

        def imported(bundle: Path) -> float:
            home = work / "home"
            shutil.rmtree(home, ignore_errors=True)
            settings = load_settings(home=home)
            t = _timed(
                lambda: import_bundle(
                    bundle, settings=settings, engine_cache_dir=work / "cache", allow_unsigned=True
                )
            )
            shutil.rmtree(home)
            return t

        results = {
            "sha256sum + cp": min(baseline(False) for _ in range(args.repeat)),
            "sha256sum + cp + sync": min(baseline(True) for _ in range(args.repeat)),
            "import (uncompressed)": min(imported(bundles["none"]) for _ in range(args.repeat)),
            "import (zstd)": min(imported(bundles["zstd"]) for _ in range(args.repeat)),
        }
        mib = total / (1 << 20)
        print(f"{mib:.0f} MiB in {args.files} files, best of {args.repeat}, work dir {work}")
        for name, seconds in results.items():
            print(f"  {name:<24} {seconds:7.2f} s  {mib / seconds:8.1f} MiB/s")
        base, base_sync = results["sha256sum + cp"], results["sha256sum + cp + sync"]
        for name in ("import (uncompressed)", "import (zstd)"):
            print(
                f"  {name}: {base / results[name]:.0%} of sha256sum+cp throughput, "
                f"{base_sync / results[name]:.0%} of sha256sum+cp+sync (target ≥ 80%)"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
