#!/usr/bin/env python3
"""Take the wheelhouse out of a CORTEX bundle, verified, before CORTEX is installed.

Standard library only (it runs before any wheel is installed). Used by
scripts/install-bundle.sh for `install.sh --bundle FILE`:

    python3 scripts/bundle_bootstrap.py BUNDLE --dest DIR [--trusted-keys DIR] [--allow-unsigned]

Checks, in order: the manifest (format version), the ed25519 signature against the
`*.pub` keys in --trusted-keys (with the system `openssl`, since `cryptography` is not
installed yet), then streams the bundle and writes each wheelhouse item to DIR only if
its size and sha256 match the manifest. Compressed bundles are read through `zstd -dc`.
Nothing else is installed here: `cortexctl bundle import` verifies everything again.
Exit 0 on success; 1 with one `error:` line otherwise.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

FORMAT_VERSION = 1
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHEEL_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._+=-]{0,199}$")


class Refused(Exception):
    pass


def open_stream(bundle: Path) -> tuple[object, subprocess.Popen[bytes] | None]:
    with bundle.open("rb") as fh:
        magic = fh.read(4)
    if magic != ZSTD_MAGIC:
        return bundle.open("rb"), None
    if shutil.which("zstd") is None:
        raise Refused(
            "the bundle is zstd-compressed and the `zstd` tool is not installed; install it "
            "(Debian: the zstd package) or export the bundle with --compression none"
        )
    proc = subprocess.Popen(["zstd", "-dc", "--", str(bundle)], stdout=subprocess.PIPE)
    return proc.stdout, proc


def check_signature(manifest: bytes, sig: bytes | None, keys_dir: Path, allow_unsigned: bool) -> str:
    if sig is None:
        if allow_unsigned:
            return "unsigned"
        raise Refused("the bundle is unsigned; pass --allow-unsigned to accept it without proof of origin")
    body = json.loads(sig)
    if body.get("algorithm") != "ed25519":
        raise Refused(f"manifest.sig: unsupported algorithm {body.get('algorithm')!r}")
    raw_sig = base64.b64decode(body["signature"], validate=True)
    key_id = str(body["key_id"])
    for pub in sorted(keys_dir.glob("*.pub")) if keys_dir.is_dir() else []:
        der = subprocess.run(
            ["openssl", "pkey", "-pubin", "-in", str(pub), "-outform", "DER"],
            capture_output=True,
            check=False,
        ).stdout
        if hashlib.sha256(der[-32:]).hexdigest()[:16] != key_id:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "m").write_bytes(manifest)
            (Path(tmp) / "s").write_bytes(raw_sig)
            ok = subprocess.run(
                ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin",
                 "-in", f"{tmp}/m", "-sigfile", f"{tmp}/s"],
                capture_output=True, check=False,
            ).returncode == 0  # fmt: skip
        if not ok:
            raise Refused(f"bad signature: the manifest does not match trusted key {key_id} ({pub.name})")
        return f"trusted ({key_id})"
    if allow_unsigned:
        return f"untrusted key {key_id}"
    raise Refused(
        f"signed by key {key_id}, which is not in {keys_dir}; add its .pub there or pass --allow-unsigned"
    )


def extract_wheelhouse(bundle: Path, dest: Path, keys_dir: Path, allow_unsigned: bool) -> int:
    stream, proc = open_stream(bundle)
    count = 0
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            member = tar.next()
            if member is None or member.name != "manifest.json" or not member.isreg():
                raise Refused("the bundle must start with manifest.json")
            manifest_bytes = tar.extractfile(member).read()  # type: ignore[union-attr]
            manifest = json.loads(manifest_bytes)
            if manifest.get("format") != "cortex-bundle" or manifest.get("format_version") != FORMAT_VERSION:
                raise Refused(
                    f"unsupported bundle format {manifest.get('format')!r} v{manifest.get('format_version')}"
                )
            member = tar.next()
            sig = None
            if member is not None and member.name == "manifest.sig" and member.isreg():
                sig = tar.extractfile(member).read()  # type: ignore[union-attr]
                member = tar.next()
            print(
                f"signature: {check_signature(manifest_bytes, sig, keys_dir, allow_unsigned)}",
                file=sys.stderr,
            )
            for item in manifest["items"]:
                if member is None:
                    raise Refused(f"{item['path']}: missing (truncated bundle?)")
                if member.name != item["path"] or not member.isreg() or member.size != item["size"]:
                    raise Refused(f"entry {member.name!r}: does not match the manifest ({item['path']})")
                fh = tar.extractfile(member)
                assert fh is not None
                wanted = item["kind"] == "wheelhouse"
                if wanted and not WHEEL_NAME.match(item["name"]):
                    raise Refused(f"wheelhouse {item['name']!r}: not a plain file name")
                out = (dest / item["name"]).open("xb") if wanted else None
                digest = hashlib.sha256()
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                    if out is not None:
                        out.write(chunk)
                if out is not None:
                    out.close()
                if digest.hexdigest() != item["sha256"]:
                    raise Refused(f"{item['kind']} {item['name']!r}: sha256 mismatch")
                count += wanted
                member = tar.next()
            if member is not None:
                raise Refused(f"entry {member.name!r}: not in the manifest")
    finally:
        if proc is not None:
            proc.wait()
    if proc is not None and proc.returncode != 0:
        raise Refused("zstd could not decompress the bundle (corrupt or truncated)")
    return count


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
    except (Refused, tarfile.TarError, KeyError, ValueError, OSError) as exc:
        print(f"error: bundle refused: {exc}", file=sys.stderr)
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
