#!/usr/bin/env python3
"""Take the wheelhouse out of a CORTEX bundle, verified, before CORTEX is installed.

Standard library only (it runs before any wheel is installed). Used by
scripts/install-bundle.sh for `install.sh --bundle FILE`:

    python3 scripts/bundle_bootstrap.py BUNDLE --dest DIR [--trusted-keys DIR] [--allow-unsigned]

It reads the bundle with the same stream reader as `cortexctl` (cortexctl/bundles/
tarstream.py, zstdframes.py and trustdir.py, loaded by path from this checkout), so both
refuse the same bundles for the same reasons: the zstd frames are checked first, then the
manifest (bounded, format version), the ed25519 signature against the `*.pub` keys in
--trusted-keys (with the system `openssl`, since `cryptography` is not installed yet), then
every entry streams through sha256 and each wheelhouse item lands in DIR, where its own
metadata must name the distribution on the manifest's signed list (wheelfiles.py). Compressed
bundles are read through `zstd -dc`, which is killed on any refusal. Nothing else is
installed here: `cortexctl bundle import` verifies everything again.
Exit 0 on success; 1 with one `error:` line otherwise (files written to DIR are removed).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

BUNDLES = Path(__file__).resolve().parent.parent / "cortexctl" / "bundles"
OPENSSL_TIMEOUT = 30


def _load(name: str) -> ModuleType:
    """A stdlib-only module of cortexctl/bundles, by path (the package needs its wheels)."""
    spec = importlib.util.spec_from_file_location(f"_cortex_bootstrap_{name}", BUNDLES / f"{name}.py")
    assert spec is not None and spec.loader is not None, f"{BUNDLES / name}.py is missing"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


tarstream = _load("tarstream")
zstdframes = _load("zstdframes")
trustdir = _load("trustdir")
wheelfiles = _load("wheelfiles")
Refused = tarstream.Refused


def _openssl(*args: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["openssl", *args], capture_output=True, check=False, timeout=OPENSSL_TIMEOUT)
    except FileNotFoundError:
        raise Refused("signature", "the `openssl` tool is needed to check signatures; install it") from None
    except subprocess.TimeoutExpired:
        raise Refused("signature", f"openssl did not answer within {OPENSSL_TIMEOUT} s") from None


def check_signature(manifest: bytes, sig: bytes | None, keys_dir: Path, allow_unsigned: bool) -> str:
    """The same policy as cortexctl.bundles.signing.verify_signature (bundles/FORMAT.md)."""
    if sig is None:
        if allow_unsigned:
            return "unsigned"
        raise Refused(
            "signature", "the bundle is unsigned; pass --allow-unsigned to accept it without proof of origin"
        )
    body = tarstream.load_signature_json(sig)
    try:
        raw_sig = base64.b64decode(body["signature"], validate=True)
    except binascii.Error:
        raise Refused(tarstream.SIGNATURE_NAME, "malformed signature (not base64)") from None
    key_id = body["key_id"]
    try:
        files, warnings = trustdir.key_files(keys_dir)
    except trustdir.UnsafeTrustDir as exc:
        raise Refused("trusted keys", f"{exc}; fix: {exc.fix}") from None
    for pub in files:
        der = _openssl("pkey", "-pubin", "-in", str(pub), "-outform", "DER")
        if der.returncode != 0 or len(der.stdout) != 44:  # SubjectPublicKeyInfo of an ed25519 key
            warnings.append(f"skipped trusted key {pub}: not an ed25519 public key")
            continue
        if hashlib.sha256(der.stdout[-32:]).hexdigest()[:16] != key_id:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "m").write_bytes(manifest)
            (Path(tmp) / "s").write_bytes(raw_sig)
            ok = _openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
                          "-in", f"{tmp}/m", "-sigfile", f"{tmp}/s").returncode == 0  # fmt: skip
        if not ok:
            raise Refused(
                "signature", f"bad signature: the manifest does not match trusted key {key_id} ({pub.name})"
            )
        return f"trusted ({key_id})"
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if allow_unsigned:
        return f"untrusted key {key_id}"
    raise Refused(
        "signature",
        f"signed by key {key_id}, which is not trusted on this host (not in {keys_dir}); "
        "add its .pub there or pass --allow-unsigned",
    )


class Source:
    """The decompressed bundle: the file itself, or `zstd -dc` (killed on close unless done)."""

    def __init__(self, bundle: Path) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self.raw: BinaryIO = bundle.open("rb")
        if self.raw.read(4) != zstdframes.MAGIC:
            self.raw.seek(0)
            self.stream: Any = self.raw
            return
        try:
            zstdframes.check_frames(self.raw)
        except zstdframes.ZstdRefused as exc:
            self.raw.close()
            raise Refused(str(bundle), str(exc)) from None
        if shutil.which("zstd") is None:
            self.raw.close()
            raise Refused(
                str(bundle),
                "the bundle is zstd-compressed and the `zstd` tool is not installed; install it "
                "(Debian: the zstd package) or export the bundle with --compression none",
            )
        memory = f"--memory={zstdframes.MAX_WINDOW // (1 << 20)}MB"
        self.proc = subprocess.Popen(
            ["zstd", "-q", "-dc", memory, "--", str(bundle)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.stream = self.proc.stdout

    def finish(self) -> None:
        """Everything was read: zstd must have ended cleanly (checksums verified)."""
        if self.proc is None:
            return
        if self.proc.stdout.read(1):  # type: ignore[union-attr]
            raise Refused("end of bundle", "trailing data after the end-of-archive marker")
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise Refused("compressed stream", "zstd did not finish") from None
        if rc != 0:
            err = self.proc.stderr.read(2000).decode(errors="replace").strip()  # type: ignore[union-attr]
            raise Refused("compressed stream", f"corrupt zstd data ({err or f'zstd exited {rc}'})")

    def failed(self) -> Exception | None:  # a Refused (loaded by path: not a type to mypy)
        """After a short read: zstd's own error (bad data, bad checksum) explains it better."""
        if self.proc is None:
            return None
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None
        if rc == 0:
            return None
        err = self.proc.stderr.read(2000).decode(errors="replace").strip()  # type: ignore[union-attr]
        refusal: Exception = Refused("compressed stream", f"corrupt zstd data ({err or f'zstd exited {rc}'})")
        return refusal

    def close(self) -> None:
        """On every path: close the pipe, kill zstd if it still runs, reap it."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
            self.proc.wait()
        self.raw.close()


def extract_wheelhouse(bundle: Path, dest: Path, keys_dir: Path, allow_unsigned: bool) -> int:
    source = Source(bundle)
    written: list[Path] = []
    try:
        reader = tarstream.BundleStream(tarstream.TarStream(source.stream))
        head = reader.head()
        state = check_signature(head.manifest_bytes, head.signature, keys_dir, allow_unsigned)
        print(f"signature: {state}", file=sys.stderr)
        items = head.manifest["items"]
        for item in items:
            if item["kind"] == "wheelhouse":
                tarstream.check_relative_path(item["name"], what=tarstream.label(item))
                if "/" in item["name"]:
                    raise Refused(tarstream.label(item), "must be a single file name")
        tarstream.check_wheelhouse([i["name"] for i in items if i["kind"] == "wheelhouse"])
        need = sum(i["size"] for i in items if i["kind"] == "wheelhouse")
        free = shutil.disk_usage(dest).free
        if need + (16 << 20) > free:
            raise Refused("wheelhouse", f"{need} bytes declared, only {free} free in {dest}")
        outputs: list[BinaryIO] = []

        def sink(item: dict[str, Any]) -> BinaryIO | None:
            for fh in outputs:
                fh.close()
            outputs.clear()
            if item["kind"] != "wheelhouse":
                return None
            path = dest / item["name"]
            out: BinaryIO = path.open("xb")
            written.append(path)
            outputs.append(out)
            return out

        try:
            reader.read_items(sink)
        except Refused as exc:
            short = "truncated" in exc.problem or "missing" in exc.problem
            raise (source.failed() if short else None) or exc from None
        finally:
            for fh in outputs:
                fh.close()
        source.finish()
        for item in items:  # a file's own metadata must name what its file name (and the list) says
            if item["kind"] == "wheelhouse":
                try:
                    wheelfiles.check_file(dest / item["name"], item["name"], tarstream)
                except wheelfiles.WheelFileError as exc:
                    raise Refused(tarstream.label(item), str(exc)) from None
        return sum(1 for i in items if i["kind"] == "wheelhouse")
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    finally:
        source.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--dest", type=Path, required=True)
    ap.add_argument("--trusted-keys", type=Path, default=Path(os.devnull))
    ap.add_argument("--allow-unsigned", action="store_true")
    args = ap.parse_args()
    args.dest.mkdir(parents=True, exist_ok=True)
    try:
        n = extract_wheelhouse(args.bundle, args.dest, args.trusted_keys, args.allow_unsigned)
    except Refused as exc:
        print(f"error: bundle refused: {exc}; nothing was installed", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot read the bundle or write {args.dest}: {exc}", file=sys.stderr)
        return 1
    if n == 0:
        print(
            "error: the bundle holds no wheelhouse; export it from a definition with spec.wheelhouse",
            file=sys.stderr,
        )
        return 1
    print(f"{n} wheelhouse files verified into {args.dest}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
