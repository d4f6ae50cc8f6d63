"""Read the files inside a Qt binary resource bundle (``.rcc``), without Qt.

Some apt packages ship their images only inside such bundles (GCompris's activity
photos, for one). A bundle is a header, a tree of nodes, a table of names and a data
area; a file's bytes may be stored as they are or zlib-compressed. Layout (all integers
big-endian), as Qt's ``rcc`` writes it and ``QResource`` reads it:

- header: ``b"qres"``, version (1-3), tree offset, data offset, names offset, and from
  version 3 a flags word (4 bytes each);
- tree: fixed-size nodes (14 bytes; 22 from version 2, which appends an 8-byte
  modification time), node 0 the root. Each node starts with its name's offset in the
  names table (4) and its flags (2: 1 zlib, 2 directory, 4 zstd). A directory then holds
  its child count and first child's node index (4 + 4); a file its territory and
  language (2 + 2) and its data's offset in the data area (4);
- names: a length in UTF-16 code units (2), a hash (4), the name in UTF-16BE;
- data: a length (4) and that many bytes; compressed with zlib, those bytes are the
  uncompressed length (4) and a zlib stream (``qCompress``'s format).

Reference: Qt's ``src/tools/rcc/rcc.cpp`` and ``src/corelib/io/qresource.cpp``.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

__all__ = ["RccError", "read_rcc"]

_ZLIB, _DIRECTORY, _ZSTD = 0x01, 0x02, 0x04


class RccError(ValueError):
    """A file that is not a Qt resource bundle, or one this reader cannot decode."""


def read_rcc(path: str | Path) -> dict[str, bytes]:
    """Every file in the bundle at ``path``, by its path inside it (``"a/b.webp"``).

    Raises:
        RccError: not a bundle, a truncated one, or a file stored with zstd (named).
    """
    path = Path(path)
    blob = path.read_bytes()
    if blob[:4] != b"qres":
        raise RccError(f"{path}: not a Qt resource bundle (no 'qres' header)")
    try:
        version, tree, data, names = struct.unpack_from(">4I", blob, 4)
        if not 1 <= version <= 3:
            raise RccError(f"{path}: Qt resource bundle version {version} is not supported")
        node_size = 14 if version == 1 else 22
        out: dict[str, bytes] = {}
        stack, seen = [(0, "")], set()
        while stack:
            index, prefix = stack.pop()
            if index in seen:  # a damaged tree could loop
                raise RccError(f"{path}: damaged Qt resource bundle (node {index} twice)")
            seen.add(index)
            at = tree + index * node_size
            name_at, flags = struct.unpack_from(">IH", blob, at)
            name = "" if index == 0 else _name(blob, names + name_at)
            full = f"{prefix}/{name}" if prefix else name
            if flags & _DIRECTORY:
                count, first = struct.unpack_from(">II", blob, at + 6)
                stack.extend((first + k, full) for k in range(count))
                continue
            (offset,) = struct.unpack_from(">I", blob, at + 10)
            (size,) = struct.unpack_from(">I", blob, data + offset)
            payload = blob[data + offset + 4 : data + offset + 4 + size]
            if len(payload) != size:
                raise RccError(f"{path}: {full} is cut short")
            if flags & _ZSTD:
                raise RccError(f"{path}: {full} is zstd-compressed, which this reader lacks")
            out[full] = zlib.decompress(payload[4:]) if flags & _ZLIB else payload
        return dict(sorted(out.items()))
    except (struct.error, zlib.error, UnicodeDecodeError) as e:
        raise RccError(f"{path}: damaged Qt resource bundle ({e})") from None


def _name(blob: bytes, at: int) -> str:
    (length,) = struct.unpack_from(">H", blob, at)
    return blob[at + 6 : at + 6 + 2 * length].decode("utf-16-be")
