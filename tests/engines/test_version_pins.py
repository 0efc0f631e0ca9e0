"""The llama.cpp version is pinned once (`cortexctl/engines/llamacpp/pin.py`): every script,
bundle definition, document and test that writes the version out must agree with it.

A version bump is then: change pin.py, regenerate the data files, and let this test list
every other place to update.
"""

from __future__ import annotations

import re
from pathlib import Path

from cortexctl.engines.llamacpp.pin import VERSION as LLAMA_CPP_VERSION

ROOT = Path(__file__).resolve().parents[2]
# Ways the llama.cpp version is written out next to what it names.
MENTIONS = re.compile(
    r"(?:llama-cpp-python==|llama_cpp_python-|llama-server/|llamacpp-(?:arch-)?|cortex/llamacpp[-\w]*:"
    r"|LLAMA_CPP_PYTHON_VERSION:-|llama-server |llama\.cpp |llama-cpp-python |\(llamacpp |LLAMA_VERSION = \""
    r"|\"llama-server\" / \"|\"llama-server\", \"version\": \"|version: \")(\d+\.\d+\.\d+)"
)
WHERE = ("scripts", "bundles", "recipes", "docs", "tests", "cortexctl", "server/cortex_server")
SUFFIXES = {".py", ".sh", ".yaml", ".yml", ".md", ".json"}
SKIP_PARTS = {"node_modules", "static", "__pycache__"}


def mentions() -> list[tuple[str, int, str]]:
    found = []
    files = [ROOT / "README.md", ROOT / "SECURITY.md", ROOT / "install.sh"]
    for top in WHERE:
        files += [p for p in (ROOT / top).rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    for path in files:
        if SKIP_PARTS & set(path.parts) or path.name == Path(__file__).name:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for m in MENTIONS.finditer(line):
                found.append((f"{path.relative_to(ROOT)}:{n}", m.group(0), m.group(1)))
    return found


def test_every_written_llama_cpp_version_is_the_pin() -> None:
    found = mentions()
    assert len(found) >= 20, "the scan found too few mentions: is the pattern still right?"
    wrong = [f"{where}: {text}" for where, text, version in found if version != LLAMA_CPP_VERSION]
    assert not wrong, (
        f"these name another llama.cpp version than the pin, {LLAMA_CPP_VERSION}:\n" + "\n".join(wrong)
    )


def test_the_scan_would_see_a_stale_version() -> None:
    line = "    - name: llama-server  # <cache>/cortex/llama-server/0.3.35/bin/"
    assert [m.group(1) for m in MENTIONS.finditer(line)] == ["0.3.35"]
