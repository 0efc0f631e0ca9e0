"""A fast, read-only GGUF header parser (key/values + tensor table).

`gguf.GGUFReader` builds numpy views for every array item, which takes tens of
seconds on a 262k-token vocabulary; a pre-start check must answer in well under
a second. This walks the header with `struct` and skips arrays it does not need,
using the `gguf` package's own type tables (value types, quant block sizes), loaded without
the rest of the package (gguf_constants.py: `import gguf` would load numpy).
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cortexctl.validation.gguf_constants import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

_SCALAR = {
    GGUFValueType.UINT8: "<B",
    GGUFValueType.INT8: "<b",
    GGUFValueType.UINT16: "<H",
    GGUFValueType.INT16: "<h",
    GGUFValueType.UINT32: "<I",
    GGUFValueType.INT32: "<i",
    GGUFValueType.FLOAT32: "<f",
    GGUFValueType.BOOL: "<?",
    GGUFValueType.UINT64: "<Q",
    GGUFValueType.INT64: "<q",
    GGUFValueType.FLOAT64: "<d",
}
MAX_ARRAY_KEEP = 4096  # longer arrays (token lists) are skipped; only their length is kept


class GGUFFormatError(ValueError):
    pass


@dataclass(frozen=True)
class ArrayInfo:
    """An array too long to keep (e.g. tokenizer.ggml.tokens): its length only."""

    length: int


@dataclass(frozen=True)
class RawTensor:
    name: str
    shape: tuple[int, ...]
    ggml_type: str
    offset: int  # absolute file offset of the data
    nbytes: int


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    fields: dict[str, Any]
    tensors: list[RawTensor]
    data_offset: int


class _Cursor:
    def __init__(self, buf: mmap.mmap) -> None:
        self.buf = buf
        self.pos = 0

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise GGUFFormatError(f"header ends early at byte {self.pos} (file has {len(self.buf)})")
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        n = self.unpack("<Q")
        if self.pos + n > len(self.buf):
            raise GGUFFormatError(f"string of {n} bytes runs past the end of the file at byte {self.pos}")
        raw = self.buf[self.pos : self.pos + n]
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        n = self.unpack("<Q")
        self.pos += n

    def value(self, vtype: int) -> Any:
        if vtype == GGUFValueType.STRING:
            return self.string()
        if vtype == GGUFValueType.ARRAY:
            sub = self.unpack("<I")
            count = self.unpack("<Q")
            if count > MAX_ARRAY_KEEP:
                self._skip_array(sub, count)
                return ArrayInfo(count)
            return [self.value(sub) for _ in range(count)]
        fmt = _SCALAR.get(GGUFValueType(vtype)) if vtype in GGUFValueType._value2member_map_ else None
        if fmt is None:
            raise GGUFFormatError(f"unknown GGUF value type {vtype} at byte {self.pos}")
        return self.unpack(fmt)

    def _skip_array(self, sub: int, count: int) -> None:
        if sub == GGUFValueType.STRING:
            for _ in range(count):
                self.skip_string()
            if self.pos > len(self.buf):
                raise GGUFFormatError("string array runs past the end of the file")
        elif sub == GGUFValueType.ARRAY:
            for _ in range(count):
                self.value(sub)
        else:
            fmt = _SCALAR.get(GGUFValueType(sub))
            if fmt is None:
                raise GGUFFormatError(f"unknown GGUF array item type {sub}")
            self.pos += struct.calcsize(fmt) * count


def _tensor_nbytes(shape: tuple[int, ...], type_id: int) -> tuple[str, int]:
    try:
        qtype = GGMLQuantizationType(type_id)
    except ValueError:
        raise GGUFFormatError(f"unknown tensor type {type_id}") from None
    block, type_size = GGML_QUANT_SIZES[qtype]
    n = 1
    for s in shape:
        n *= s
    return qtype.name, n // block * type_size


def read_gguf_header(path: Path) -> GGUFHeader:
    """Parse the header; raises GGUFFormatError (not a GGUF, truncated, damaged)."""
    with path.open("rb") as fh:
        try:
            buf = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:
            raise GGUFFormatError("empty file") from None
    try:
        cur = _Cursor(buf)
        if buf[:4] != b"GGUF":
            raise GGUFFormatError("no GGUF magic bytes")
        cur.pos = 4
        version = cur.unpack("<I")
        if version not in (2, 3):
            raise GGUFFormatError(f"unsupported GGUF version {version}")
        n_tensors = cur.unpack("<Q")
        n_kv = cur.unpack("<Q")
        fields: dict[str, Any] = {}
        for _ in range(n_kv):
            key = cur.string()
            fields[key] = cur.value(cur.unpack("<I"))
        infos = []
        for _ in range(n_tensors):
            name = cur.string()
            n_dims = cur.unpack("<I")
            if n_dims > 8:
                raise GGUFFormatError(f"tensor {name} has {n_dims} dimensions")
            shape = tuple(cur.unpack("<Q") for _ in range(n_dims))
            type_id = cur.unpack("<I")
            offset = cur.unpack("<Q")
            infos.append((name, shape, type_id, offset))
        align = int(fields.get("general.alignment", 32))
        data_offset = (cur.pos + align - 1) // align * align
        tensors = []
        for name, shape, type_id, offset in infos:
            type_name, nbytes = _tensor_nbytes(shape, type_id)
            tensors.append(RawTensor(name, shape, type_name, data_offset + offset, nbytes))
        return GGUFHeader(version=version, fields=fields, tensors=tensors, data_offset=data_offset)
    finally:
        buf.close()
