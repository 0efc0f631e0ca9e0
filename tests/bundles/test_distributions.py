"""Format version 2: the manifest's signed list of distributions, and each wheelhouse file's own metadata.

The hostile cases (extra, renamed, swapped-after-signing wheels, metadata bombs) are in the
corpus (tests/bundles/corpus_cases.py, category "wheels"), run through both readers.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from cortexctl.bundles import tarstream, wheelfiles
from cortexctl.bundles.container import read_head
from cortexctl.bundles.errors import BundleError
from cortexctl.bundles.install import import_bundle
from cortexctl.core.settings import Settings
from tests.bundles.helpers import (
    manifest_of,
    read_entries,
    with_manifest,
    write_entries,
    write_sdist,
    write_wheel,
)


def test_export_writes_version_2_with_the_list_read_from_each_files_metadata(make_bundle: Any) -> None:
    manifest = read_head(make_bundle().path).manifest
    assert manifest.format_version == 2
    assert [(d.name, d.version) for d in manifest.distributions or []] == [("alpha", "1.0"), ("beta", "2.0")]


def test_export_refuses_a_renamed_wheel_in_the_wheelhouse(
    make_bundle: Any, sources: Path, tmp_path: Path
) -> None:
    write_wheel(sources / "wheels" / "gamma-1.0-py3-none-any.whl", name="pydantic", version="1.0")
    with pytest.raises(BundleError, match=r"named for gamma 1.0 but holds pydantic 1.0 \(renamed\?\)"):
        make_bundle()
    assert not list((tmp_path / "out").iterdir())


def test_export_refuses_random_bytes_named_like_a_wheel(make_bundle: Any, sources: Path) -> None:
    (sources / "wheels" / "gamma-1.0-py3-none-any.whl").write_bytes(b"\x00" * 4000)
    with pytest.raises(BundleError, match="not a zip file"):
        make_bundle()


def _as_version_1(src: Path, out: Path, *, keep_wheels: bool) -> Path:
    entries = read_entries(src)
    m = manifest_of(entries)
    m["format_version"] = 1
    del m["distributions"]
    dropped = set()
    if not keep_wheels:
        dropped = {i["path"] for i in m["items"] if i["kind"] == "wheelhouse"}
        m["items"] = [i for i in m["items"] if i["kind"] != "wheelhouse"]
    entries = [(i, d) for i, d in with_manifest(entries, m) if i.name not in dropped]
    return write_entries(out, entries)


def test_a_version_1_bundle_without_wheels_still_imports(
    make_bundle: Any, settings: Settings, engine_cache: Path, tmp_path: Path
) -> None:
    v1 = _as_version_1(make_bundle(compression="none").path, tmp_path / "v1.tar", keep_wheels=False)
    result = import_bundle(v1, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert result.status == "imported"
    assert (settings.models_dir / "model.gguf").exists()
    assert "distributions" not in json.loads(read_head(v1).manifest_bytes)


def test_a_version_1_bundle_with_wheels_is_refused_saying_to_re_export(
    make_bundle: Any, settings: Settings, engine_cache: Path, tmp_path: Path
) -> None:
    v1 = _as_version_1(make_bundle(compression="none").path, tmp_path / "v1.tar", keep_wheels=True)
    with pytest.raises(BundleError, match="format version 1 bundle carries no signed list.*re-export"):
        import_bundle(v1, settings=settings, engine_cache_dir=engine_cache, allow_unsigned=True)
    assert not (settings.home / "wheelhouse").exists() or not any((settings.home / "wheelhouse").iterdir())


def test_sdist_and_zip_metadata_are_read_and_compared(tmp_path: Path) -> None:
    good = write_sdist(tmp_path / "beta-2.0.tar.gz")
    assert wheelfiles.check_file(good, good.name, tarstream) == ("beta", "2.0")
    other = write_sdist(tmp_path / "beta-2.1.tar.gz", version="2.0")
    with pytest.raises(wheelfiles.WheelFileError, match="named for beta 2.1 but holds beta 2.0"):
        wheelfiles.check_file(other, other.name, tarstream)
    zipped = tmp_path / "Zeta_Pkg-0.1.zip"
    with zipfile.ZipFile(zipped, "w") as zf:
        zf.writestr("Zeta_Pkg-0.1/PKG-INFO", "Name: zeta.pkg\nVersion: 0.1\n\n")
    assert wheelfiles.check_file(zipped, zipped.name, tarstream) == ("zeta-pkg", "0.1")


def test_a_wheel_with_two_dist_info_folders_is_refused(tmp_path: Path) -> None:
    path = write_wheel(tmp_path / "alpha-1.0-py3-none-any.whl")
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("cortex_appliance-9.dist-info/METADATA", "Name: cortex-appliance\nVersion: 9\n\n")
    with pytest.raises(wheelfiles.WheelFileError, match="holds 2 \\*.dist-info/METADATA records"):
        wheelfiles.check_file(path, path.name, tarstream)


def test_dist_info_folder_must_match_the_metadata_name(tmp_path: Path) -> None:
    path = tmp_path / "alpha-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("pydantic-1.0.dist-info/METADATA", "Name: alpha\nVersion: 1.0\n\n")
    with pytest.raises(wheelfiles.WheelFileError, match="folder does not match the metadata name 'alpha'"):
        wheelfiles.check_file(path, path.name, tarstream)
