"""The one way CORTEX reads a size written by a person: binary units, whatever the spelling.

`8G`, `8GB`, `8GiB` and `8 gib` are all 8 × 1024³ bytes, as Docker reads `--memory 8g` and as
GPU data sheets mean "80GB". A bare number is bytes. Recipes (`spec.resources.memory`) and
`--vram` read sizes this way (recipes/README.md, "Sizes").
"""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(?:i?b)?|b)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'8GiB' / '8G' / '8gb' / '512m' / '1000000' → bytes; ValueError for anything else or ≤ 0."""
    m = _SIZE.fullmatch(text)
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"cannot read {text!r} as a size; write e.g. 8GiB, 512MiB or 24G")
    return int(float(m.group(1)) * _UNITS[(m.group(2) or "").lower()])
