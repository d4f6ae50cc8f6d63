"""Qt resource bundles (restorekit.data.rcc): files come back by path, raw or zlib, from
every bundle version, and a file that is not a bundle, or cannot be decoded, is an error
naming it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from restorekit.data.rcc import RccError, read_rcc

FILES = {
    "top.txt": b"at the root",
    "pics/a.webp": b"RIFF....WEBP" * 50,  # compressible: stored with zlib below
    "pics/deep/b.png": bytes(range(256)),
}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_files_by_path_raw_and_zlib(tmp_path: Path, write_rcc: Callable, version: int) -> None:
    bundle = write_rcc(tmp_path / "x.rcc", FILES, zlib_files=("pics/a.webp",), version=version)
    assert read_rcc(bundle) == dict(sorted(FILES.items()))


def test_a_real_qt_bundle_header_is_checked(tmp_path: Path, write_rcc: Callable) -> None:
    """qres magic; a version Qt never wrote; a bundle cut short."""
    (tmp_path / "not.rcc").write_bytes(b"PK\x03\x04 a zip")
    with pytest.raises(RccError, match=r"not\.rcc: not a Qt resource bundle"):
        read_rcc(tmp_path / "not.rcc")
    good = write_rcc(tmp_path / "good.rcc", FILES).read_bytes()
    (tmp_path / "v9.rcc").write_bytes(good[:4] + b"\x00\x00\x00\x09" + good[8:])
    with pytest.raises(RccError, match="version 9 is not supported"):
        read_rcc(tmp_path / "v9.rcc")
    (tmp_path / "cut.rcc").write_bytes(good[: len(good) // 2])
    with pytest.raises(RccError, match=r"cut\.rcc: damaged Qt resource bundle|is cut short"):
        read_rcc(tmp_path / "cut.rcc")


def test_zstd_files_are_named_not_misread(tmp_path: Path, write_rcc: Callable) -> None:
    bundle = write_rcc(tmp_path / "z.rcc", FILES, zstd_files=("pics/deep/b.png",))
    with pytest.raises(RccError, match=r"pics/deep/b\.png is zstd-compressed"):
        read_rcc(bundle)


def test_a_tree_that_loops_is_an_error(tmp_path: Path, write_rcc: Callable) -> None:
    """A folder listing the root as its child (a damaged bundle) ends in an error."""
    blob = bytearray(write_rcc(tmp_path / "x.rcc", {"d/f.txt": b"x"}).read_bytes())
    # Node 1 is folder d (breadth first): its first child, at offset 10 of the node, -> 0.
    at = 20 + 22 + 10
    blob[at : at + 4] = (0).to_bytes(4, "big")
    (tmp_path / "loop.rcc").write_bytes(bytes(blob))
    with pytest.raises(RccError, match=r"loop\.rcc: damaged .*node 0 twice"):
        read_rcc(tmp_path / "loop.rcc")
