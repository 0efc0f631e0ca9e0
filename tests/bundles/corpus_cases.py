"""The hostile-bundle corpus itself: every case, its category, and the refusal it must get.

The pieces these are built from are in tests/bundles/corpus.py.
"""

from __future__ import annotations

import tarfile

from tests.bundles.corpus import (
    BLOCK,
    Case,
    _add_item,
    _altered_after_signing,
    _big_window,
    _bytes,
    _copy,
    _corrupt_deflate,
    _corrupt_gzip_sdist,
    _cut,
    _deep,
    _dirty_padding,
    _edit,
    _end_of_items,
    _end_of_items_bytes,
    _flip_late,
    _forged,
    _huge_central_directory,
    _item,
    _manifest_bytes,
    _manifest_edit,
    _many_items,
    _members,
    _metadata_bomb,
    _pax_slip,
    _prefix,
    _renamed,
    _replace_recipe,
    _replace_wheel,
    _rle_zeros_frame,
    _sig_edit,
    _swap_wheel,
    _typed,
    _zstd_pax_bomb,
    header,
    pad,
    pax_data,
    pax_entry,
)
from tests.bundles.helpers import RECIPE, manifest_of, sdist_bytes, special, wheel_bytes, with_manifest

RECIPE_LOG_FILE = RECIPE.format(name="demo", model="model.gguf").replace(
    "context_length: 512", "context_length: 512\n    extra_args: [--log-file, /etc/cron.d/cortex]"
)
RECIPE_EVIL = RECIPE.format(name="demo", model="model.gguf").replace(
    "context_length: 512", "context_length: 512\n    extra_args: [--tools, exec_shell_command]"
)


def cases() -> list[Case]:
    c: list[Case] = []
    add = c.append
    # ---- headers: every metadata record bounded before it is read -------------------------
    huge_pax = header("PaxHeader/m", 1 << 31, b"x") + b"\0" * 2048
    add(
        Case(
            "PAX header of 2 GiB before the manifest",
            "headers",
            _prefix("plain", huge_pax),
            r"manifest.json: extended \(PAX\) header of 2147483648 bytes",
        )
    )
    big = pax_data({"comment": "x" * 70_000})
    add(
        Case(
            "PAX header of 70 KB (present) before the manifest",
            "headers",
            _prefix("plain", header("PaxHeader/m", len(big), b"x") + pad(big)),
            r"extended \(PAX\) header of 7\d{4} bytes",
        )
    )
    add(
        Case(
            "GNU long name of 1 GiB",
            "headers",
            _prefix("plain", header("././@LongLink", 1 << 30, b"L")),
            r"GNU long-name record of 1073741824 bytes",
        )
    )
    add(
        Case(
            "GNU long link of 1 GiB",
            "headers",
            _prefix("plain", header("././@LongLink", 1 << 30, b"K")),
            r"GNU long-name record of 1073741824 bytes",
        )
    )
    add(
        Case(
            "PAX path of 5000 characters",
            "headers",
            _prefix("plain", pax_entry({"path": "a" * 5000})),
            r"entry name of 5000 characters",
        )
    )
    add(
        Case(
            "six PAX headers in a row",
            "headers",
            _prefix("plain", pax_entry({"comment": "c"}) * 6),
            r"more than 4 metadata headers in a row",
        )
    )
    add(
        Case(
            "global PAX header",
            "headers",
            _prefix("plain", pax_entry({"comment": "c"}, b"g")),
            r"global extended \(PAX\) header",
        )
    )
    add(
        Case(
            "PAX record length lies",
            "headers",
            _prefix("plain", header("PaxHeader/m", 20, b"x") + pad(b"99 path=manifest.json\n")),
            r"corrupt extended \(PAX\) header record",
        )
    )
    add(
        Case(
            "PAX size not a number",
            "headers",
            _prefix("plain", pax_entry({"size": "12abc"})),
            r"corrupt extended \(PAX\) header: size",
        )
    )
    add(
        Case(
            "PAX GNU sparse keys",
            "headers",
            _prefix("plain", pax_entry({"GNU.sparse.major": "1"})),
            r"sparse file",
        )
    )
    add(
        Case(
            "bad header checksum",
            "headers",
            _bytes(lambda d: header("manifest.json", 10, bad_checksum=True) + d),
            r"checksum mismatch",
        )
    )
    add(
        Case(
            "V7 header without magic",
            "headers",
            _bytes(lambda d: header("manifest.json", 0, magic=b"\0" * 8) + d),
            r"not a POSIX \(ustar/pax\) tar header",
        )
    )
    add(
        Case(
            "negative base-256 size",
            "headers",
            _bytes(lambda d: header("manifest.json", 0, size_field=b"\xff" * 12) + d),
            r"negative number",
        )
    )
    add(
        Case(
            "garbage in the size field",
            "headers",
            _bytes(lambda d: header("manifest.json", 0, size_field=b"12z4\0       ") + d),
            r"corrupt tar header",
        )
    )
    add(
        Case(
            "manifest entry of 8 GiB declared",
            "headers",
            _bytes(lambda d: header("manifest.json", 8 << 30) + d[BLOCK:]),
            r"entry is 8589934592 bytes, more than",
        )
    )
    add(
        Case(
            "PAX path renames an item to ../evil.gguf",
            "headers",
            _bytes(_pax_slip),
            r"entry '\.\./evil.gguf'.*not a plain relative path",
        )
    )
    add(
        Case(
            "sparse member type",
            "headers",
            _edit(
                "plain",
                lambda e: [(_typed(m, b"S"), d) if m.name.startswith("models/") else (m, d) for m, d in e],
            ),
            r"model 'model.gguf'.*not a plain regular file",
        )
    )
    add(
        Case(
            "contiguous member type",
            "headers",
            _edit(
                "plain",
                lambda e: [(_typed(m, b"7"), d) if m.name.startswith("models/") else (m, d) for m, d in e],
            ),
            r"model 'model.gguf'.*not a plain regular file",
        )
    )
    # ---- structure -------------------------------------------------------------------------
    add(
        Case(
            "non-zero data after end-of-archive",
            "structure",
            _bytes(lambda d: d + b"evil" + b"\0" * 508),
            r"end of bundle: trailing data after the end-of-archive marker",
        )
    )
    add(
        Case(
            "2 MiB of zero padding after end-of-archive",
            "structure",
            _bytes(lambda d: d + b"\0" * (2 << 20)),
            r"more than 1048576 bytes of padding",
        )
    )
    add(Case("end-of-archive missing", "structure", _cut("plain", _end_of_items), r"end of bundle: missing"))
    add(
        Case(
            "half an end-of-archive",
            "structure",
            _cut("plain", lambda p: _end_of_items(p) + BLOCK),
            r"end-of-archive marker.*truncated|truncated.*end-of-archive",
        )
    )
    add(
        Case(
            "one zero block then data",
            "structure",
            _bytes(lambda d: d[: _end_of_items_bytes(d)] + b"\0" * BLOCK + header("x", 0) + b"\0" * 1024),
            r"a zero block followed by data",
        )
    )
    add(Case("non-zero padding after an entry", "structure", _bytes(_dirty_padding), r"non-zero padding"))
    add(Case("empty file", "structure", _bytes(lambda d: b""), r"manifest.json: missing"))
    add(
        Case(
            "manifest is a symlink",
            "structure",
            _edit("plain", lambda e: [special("manifest.json", tarfile.SYMTYPE, "/etc/passwd")] + e[1:]),
            r"manifest.json: is a symbolic link",
        )
    )
    add(
        Case(
            "signature is a hard link",
            "structure",
            _edit(
                "signed", lambda e: [e[0], special("manifest.sig", tarfile.LNKTYPE, "manifest.json")] + e[2:]
            ),
            r"manifest.sig: is a hard link",
        )
    )
    add(
        Case(
            "entry name ending in a newline",
            "structure",
            _edit(
                "plain",
                lambda e: [
                    (_renamed(m, m.name + "\n"), d) if m.name.startswith("models/") else (m, d) for m, d in e
                ],
            ),
            r"entry 'models/model.gguf\\n'",
        )
    )
    # ---- manifest --------------------------------------------------------------------------
    add(
        Case(
            "manifest nested 100000 deep",
            "manifest",
            _edit("plain", _manifest_bytes(_deep(100_000))),
            r"nested more than 8 levels deep",
        )
    )
    add(
        Case(
            "list-shaped manifest",
            "manifest",
            _edit("plain", _manifest_bytes(b"[1, 2, 3]")),
            r"not a CORTEX bundle manifest",
        )
    )
    add(
        Case(
            "manifest not UTF-8",
            "manifest",
            _edit("plain", _manifest_bytes(b'{"format": "\xff\xfe"}')),
            r"not valid JSON",
        )
    )
    add(Case("10001 items", "manifest", _many_items, r"10001 items, more than the 10000 allowed"))
    add(
        Case(
            "items not a list",
            "manifest",
            _edit("plain", lambda e: with_manifest(e, {**manifest_of(e), "items": {"a": 1}})),
            r"items: must be a list",
        )
    )
    add(
        Case(
            "negative size", "manifest", _edit("plain", _item("model", size=-1)), r"bad kind, size or sha256"
        )
    )
    add(
        Case(
            "boolean size",
            "manifest",
            _edit("plain", _item("model", size=True)),
            r"items.\d+.size: missing or not",
        )
    )
    add(
        Case(
            "model name ending in a newline",
            "manifest",
            _edit("plain", _item("model", name="model.gguf\n")),
            r"model 'model.gguf\\n'",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "engine name ending in a newline",
            "manifest",
            _edit("plain", _item("engine-binary", name="llama-server/0.3.36\n")),
            r"engine binaries are named",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "item path ending in a newline",
            "manifest",
            _edit("plain", _item("model", path="models/model.gguf\n")),
            r"has characters outside",
        )
    )
    add(
        Case(
            "declares a 1 PiB model (disk bound)",
            "manifest",
            _edit("plain", _item("model", size=1 << 50)),
            r"not enough free space",
            bootstrap=r"size mismatch",
        )
    )
    # ---- signature (no --allow-unsigned) -------------------------------------------------
    add(
        Case(
            "unsigned",
            "signature",
            lambda b, o: _copy(b.plain, o),
            r"the bundle is unsigned",
            allow_unsigned=False,
        )
    )
    add(
        Case(
            "untrusted key",
            "signature",
            lambda b, o: _copy(b.rogue, o),
            r"not trusted on this host",
            allow_unsigned=False,
        )
    )
    add(
        Case(
            "manifest altered after signing",
            "signature",
            _altered_after_signing,
            r"bad signature",
            allow_unsigned=False,
        )
    )
    add(Case("forged trusted key id", "signature", _forged, r"bad signature", allow_unsigned=False))
    add(
        Case("list-shaped manifest.sig", "signature", _sig_edit(lambda s: [s]), r"a JSON list, not an object")
    )
    add(
        Case(
            "manifest.sig not JSON", "signature", _sig_edit(lambda s: b"\x00garbage"), r"malformed signature"
        )
    )
    add(
        Case(
            "manifest.sig not base64",
            "signature",
            _sig_edit(lambda s: {**s, "signature": "!!"}),
            r"not base64",
        )
    )
    add(
        Case(
            "manifest.sig of 5000 bytes",
            "signature",
            _sig_edit(lambda s: {**s, "pad": "x" * 5000}),
            r"manifest.sig: entry is \d+ bytes, more than the 4096",
        )
    )
    add(
        Case(
            "manifest.sig other algorithm",
            "signature",
            _sig_edit(lambda s: {**s, "algorithm": "rsa"}),
            r"unsupported algorithm 'rsa'",
        )
    )
    add(
        Case(
            "manifest.sig key id a number",
            "signature",
            _sig_edit(lambda s: {**s, "key_id": 7}),
            r"key_id is missing or not a string",
        )
    )
    add(
        Case(
            "signature before manifest",
            "signature",
            _edit("signed", lambda e: [e[1], e[0]] + e[2:]),
            r"must start with manifest.json, found 'manifest.sig'",
        )
    )
    # ---- content: judged like an operator's -------------------------------------------------
    add(
        Case(
            "recipe model path /etc/hostname",
            "content",
            _edit("plain", _replace_recipe(RECIPE.format(name="demo", model="/etc/hostname"))),
            r"outside the model store",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "recipe model path ../../../x",
            "content",
            _edit("plain", _replace_recipe(RECIPE.format(name="demo", model="../../../x"))),
            r"outside the model store",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "recipe with --tools exec_shell_command",
            "content",
            _edit("plain", _replace_recipe(RECIPE_EVIL)),
            r"recipe 'demo.yaml'.*invalid recipe.*--tools is not allowed",
            bootstrap_accepts=True,
            extra={"needs": "allow-list"},
        )
    )
    add(
        Case(
            "recipe with --log-file outside the home",
            "content",
            _edit("plain", _replace_recipe(RECIPE_LOG_FILE)),
            r"recipe 'demo.yaml'.*invalid recipe.*--log-file is not allowed",
            bootstrap_accepts=True,
            extra={"needs": "allow-list"},
        )
    )
    add(
        Case(
            "recipe of 2 MiB",
            "content",
            _edit("plain", _replace_recipe("# padding\n" * 200_000)),
            r"recipe 'demo.yaml'.*a recipe may have at most 1048576",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "recipe not YAML",
            "content",
            _edit("plain", _replace_recipe("{{{: [")),
            r"invalid recipe",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "recipe pin does not match the bundled model",
            "content",
            _edit(
                "plain",
                _replace_recipe(
                    RECIPE.format(name="demo", model="model.gguf").replace(
                        "path: model.gguf", "path: model.gguf\n    sha256: " + "a" * 64
                    )
                ),
            ),
            r"does not match the bundled model",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "wheel shadowing cortex-appliance",
            "content",
            _edit(
                "plain",
                _add_item(
                    "wheelhouse",
                    "cortex_appliance-99.0-py3-none-any.whl",
                    wheel_bytes("cortex_appliance-99.0-py3-none-any.whl"),
                    listed=True,
                ),
            ),
            r"would shadow the installed cortex-appliance",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "wheel shadowing pydantic",
            "content",
            _edit(
                "plain",
                _add_item(
                    "wheelhouse",
                    "pydantic-1.0-py3-none-any.whl",
                    wheel_bytes("pydantic-1.0-py3-none-any.whl"),
                    listed=True,
                ),
            ),
            r"would shadow the installed pydantic",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "two versions of one distribution",
            "content",
            _edit("plain", _add_item("wheelhouse", "alpha-2.0-py3-none-any.whl", b"PK")),
            r"a second version of alpha",
        )
    )
    add(
        Case(
            "wheel with no version",
            "content",
            _edit("plain", _add_item("wheelhouse", "evil.whl", b"PK")),
            r"not a wheel or sdist file name",
        )
    )
    # Wheels only for the distributions on the manifest's signed list (format version 2).
    add(
        Case(
            "extra wheel not on the signed list",
            "wheels",
            _edit(
                "plain", _add_item("wheelhouse", "gamma-1.0-py3-none-any.whl", wheel_bytes("gamma-1.0-x.whl"))
            ),
            r"gamma is not on the bundle's signed list of distributions",
        )
    )
    add(
        Case(
            "renamed wheel (holds cortex_appliance)",
            "wheels",
            _edit(
                "plain",
                _add_item(
                    "wheelhouse",
                    "gamma-1.0-py3-none-any.whl",
                    wheel_bytes("gamma-1.0-x.whl", name="cortex_appliance", version="99.0"),
                    listed=True,
                ),
            ),
            r"named for gamma 1.0 but holds cortex-appliance 99.0 \(renamed\?\)",
        )
    )
    add(
        Case(
            "renamed sdist (holds another distribution)",
            "wheels",
            _edit(
                "plain",
                _add_item(
                    "wheelhouse", "delta-3.0.tar.gz", sdist_bytes("delta-3.0.tar.gz", name="pip"), listed=True
                ),
            ),
            r"named for delta 3.0 but holds pip 3.0",
        )
    )
    add(
        Case(
            "wheel at another version than the signed list",
            "wheels",
            _edit("plain", _manifest_edit(lambda m: m["distributions"][0].update(version="9.9"))),
            r"alpha 1.0, but the bundle's signed list of distributions says 9.9",
        )
    )
    add(
        Case(
            "listed distribution with no file",
            "wheels",
            _edit(
                "plain", _manifest_edit(lambda m: m["distributions"].append({"name": "zeta", "version": "1"}))
            ),
            r"zeta listed, but the bundle holds no wheelhouse file",
        )
    )
    add(
        Case(
            "distribution list tampered after signing",
            "wheels",
            _edit("signed", _swap_wheel("alpha-1.0-py3-none-any.whl", "alpha-1.1-py3-none-any.whl")),
            r"bad signature",
            allow_unsigned=True,  # a trusted key's signature that does not verify is refused even so
        )
    )
    add(
        Case(
            "wheel added and listed after signing",
            "wheels",
            _edit(
                "signed",
                _add_item(
                    "wheelhouse", "gamma-1.0-py3-none-any.whl", wheel_bytes("gamma-1.0-x.whl"), listed=True
                ),
            ),
            r"bad signature",
        )
    )
    add(
        Case(
            "format version 1 bundle with a wheelhouse",
            "wheels",
            _edit("plain", _manifest_edit(lambda m: (m.update(format_version=1), m.pop("distributions")))),
            r"format version 1 bundle carries no signed list of distributions",
        )
    )
    add(
        Case(
            "format version 1 manifest with a distributions field",
            "wheels",
            _edit("plain", _manifest_edit(lambda m: m.update(format_version=1))),
            r"distributions: not a field of format version 1",
        )
    )
    add(
        Case(
            "distribution listed twice",
            "wheels",
            _edit("plain", _manifest_edit(lambda m: m["distributions"].append(dict(m["distributions"][0])))),
            r"alpha is listed twice",
        )
    )
    add(
        Case(
            "wheel whose METADATA inflates to 64 MiB",
            "wheels",
            _edit("plain", _replace_wheel("alpha-1.0-py3-none-any.whl", _metadata_bomb)),
            r"METADATA is 67108864 bytes, more than the 1048576 allowed",
        )
    )
    add(
        Case(
            "wheel declaring a 2 GiB central directory",
            "wheels",
            _edit("plain", _replace_wheel("alpha-1.0-py3-none-any.whl", _huge_central_directory)),
            r"zip central directory of 2147483647 bytes",
        )
    )
    add(
        Case(
            "wheel with a damaged deflate stream",
            "wheels",
            _edit("plain", _replace_wheel("alpha-1.0-py3-none-any.whl", _corrupt_deflate)),
            r"not a readable zip file",
        )
    )
    add(
        Case(
            "sdist with a damaged gzip stream",
            "wheels",
            _edit("plain", _replace_wheel("beta-2.0.tar.gz", _corrupt_gzip_sdist)),
            r"not a readable (gzip file|sdist)",
        )
    )
    add(
        Case(
            "wheel that is not a zip",
            "wheels",
            _edit("plain", _replace_wheel("alpha-1.0-py3-none-any.whl", lambda: b"PK" + b"\0" * 600)),
            r"not a zip file",
        )
    )
    add(
        Case(
            "engine binary replaced from an unsigned bundle",
            "content",
            lambda b, o: _copy(b.plain, o),
            r"only a bundle signed by a trusted key",
            setup="engine-present",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "engine binary replaced from an untrusted key",
            "content",
            lambda b, o: _copy(b.rogue, o),
            r"only a bundle signed by a trusted key",
            setup="engine-present",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "model overwrites a different file",
            "content",
            lambda b, o: _copy(b.plain, o),
            r"different file with this name is already in the model store",
            setup="model-present",
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "model replace breaks another recipe's pin",
            "content",
            lambda b, o: _copy(b.plain, o),
            r"would break recipe pinned, which pins model.gguf",
            setup="pinned",
            replace=True,
            bootstrap_accepts=True,
        )
    )
    add(
        Case(
            "recipe replaces the operator's recipe",
            "content",
            lambda b, o: _copy(b.plain, o),
            r"recipe demo already exists with different content",
            setup="recipe-present",
            bootstrap_accepts=True,
        )
    )
    # ---- truncation (plain) and the zstd layer ---------------------------------------------
    for label, where in (
        ("in the manifest header", lambda p: 100),
        ("in the manifest data", lambda p: BLOCK + 50),
        ("in an item header", lambda p: _members(p)[2].offset + 200),
        ("in an item's data", lambda p: _members(p)[2].offset_data + 100),
        ("in the last item's padding", lambda p: _end_of_items(p) - 3),
    ):
        add(Case(f"cut {label}", "truncation", _cut("plain", where), r"truncated|missing"))
    for label, cut in (
        ("half", 0.5),
        ("last byte (checksum)", -1),
        ("last 4 bytes (checksum)", -4),
        ("last 5 bytes", -5),
    ):
        add(
            Case(
                f"zstd cut: {label}",
                "zstd",
                _bytes(lambda d, cut=cut: d[: int(len(d) * cut)] if cut > 0 else d[:cut], "zstd"),
                r"truncated compressed stream",
            )
        )
    add(
        Case(
            "zstd garbage after the last frame",
            "zstd",
            _bytes(lambda d: d + b"garbage!", "zstd"),
            r"is not a zstd frame",
        )
    )
    add(Case("zstd byte flipped", "zstd", _bytes(_flip_late, "zstd"), r"corrupt|sha256 mismatch|truncated"))
    add(
        Case(
            "zstd: 256 MiB PAX header in a few hundred KB",
            "zstd",
            _zstd_pax_bomb,
            r"manifest.json: extended \(PAX\) header of 268435456 bytes",
        )
    )
    add(Case("zstd frame needing a 128 MiB window", "zstd", _bytes(_big_window, "zstd"), r"window"))
    add(
        Case(
            "8 GiB of zero padding after a signed zstd bundle",
            "zstd",
            _bytes(lambda d: d + _rle_zeros_frame(8 << 30), "signed_zstd"),
            r"more than 1048576 bytes of padding",
            allow_unsigned=False,
        )
    )
    return c
