"""Tests for restorekit.io: image round trips, error cases, atomic writes and volumes."""

from __future__ import annotations

import importlib.util
import logging
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import png
import pytest
import tifffile
import torch
from PIL import Image, ImageFile

import restorekit.io.images as rio
from restorekit.io import (
    IMAGE_SUFFIXES,
    ImageInfo,
    ImageReadError,
    decode_image,
    list_images,
    read_image,
    read_image_info,
    read_volume,
    write_image,
)

RNG_SEED = 1234
H, W = 7, 9  # odd sizes catch row/column mix-ups


def _ints(channels: int, depth: int, seed: int = RNG_SEED) -> np.ndarray:
    """(H, W, C) random integer image; 16-bit values are mostly not multiples of 257."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(
        0, 2**depth, size=(H, W, channels), dtype=np.uint8 if depth == 8 else np.uint16
    )
    arr[0, 0] = 0  # both extremes present
    arr[-1, -1] = 2**depth - 1
    return arr


def _as_tensor(arr: np.ndarray) -> torch.Tensor:
    scale = 255.0 if arr.dtype == np.uint8 else 65535.0
    return torch.from_numpy(arr.astype(np.float64) / scale).permute(2, 0, 1)


def _to_ints(x: torch.Tensor, depth: int) -> np.ndarray:
    return (x.double() * (2**depth - 1)).round().permute(1, 2, 0).numpy().astype(np.int64)


def _independent_read(path: Path) -> np.ndarray:
    """Integer pixels (H, W, C) decoded by a library other than restorekit."""
    if path.suffix == ".png":
        width, height, rows, meta = png.Reader(filename=str(path)).read()
        return np.array([list(r) for r in rows]).reshape(height, width, meta["planes"])
    arr = tifffile.imread(path) if path.suffix == ".tif" else np.array(Image.open(path))
    return arr[..., None] if arr.ndim == 2 else arr


# --------------------------------------------------------------------------- round trips

LOSSLESS = [
    (suffix, channels, depth)
    for suffix, depths, channel_counts in (
        (".png", (8, 16), (1, 2, 3, 4)),
        (".tif", (8, 16), (1, 2, 3, 4)),
        (".bmp", (8,), (1, 3)),
    )
    for depth in depths
    for channels in channel_counts
]


@pytest.mark.parametrize(("suffix", "channels", "depth"), LOSSLESS)
def test_lossless_round_trip_is_exact(
    tmp_path: Path, suffix: str, channels: int, depth: int
) -> None:
    ints = _ints(channels, depth)
    if depth == 16:  # real 16-bit data, not 8-bit values scaled by 257
        assert np.mean(ints % 257 != 0) > 0.9
    path = tmp_path / f"x{suffix}"
    write_image(path, _as_tensor(ints), bit_depth=depth)
    x = read_image(path)
    assert x.dtype == torch.float32 and x.shape == (channels, H, W)
    assert x.min() >= 0 and x.max() <= 1
    np.testing.assert_array_equal(_to_ints(x, depth), ints)
    # Another decoder sees the same integers, so the file itself holds full depth.
    np.testing.assert_array_equal(_independent_read(path), ints)
    assert read_image_info(path) == ImageInfo(W, H, channels, depth, rio._FORMAT_BY_SUFFIX[suffix])


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_float32_tiff_round_trip_is_exact(tmp_path: Path, channels: int) -> None:
    x = torch.rand(channels, H, W, generator=torch.Generator().manual_seed(0))
    path = tmp_path / "f.tif"
    write_image(path, x, bit_depth=32)
    assert tifffile.imread(path).dtype == np.float32
    assert torch.equal(read_image(path), x)
    assert read_image_info(path).bit_depth == 32


@pytest.mark.parametrize("channels", [1, 3])
def test_jpeg_round_trip_within_tolerance(tmp_path: Path, channels: int) -> None:
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 32), torch.linspace(0, 1, 40), indexing="ij")
    x = torch.stack([yy, xx, (yy + xx) / 2])[:channels]  # smooth: JPEG's easy case
    path = tmp_path / "x.jpg"
    write_image(path, x)
    y = read_image(path)
    assert y.shape == x.shape
    assert (y - x).abs().mean() < 2 / 255
    assert (y - x).abs().max() < 12 / 255
    assert read_image_info(path) == ImageInfo(40, 32, channels, 8, "JPEG")


def test_jpeg_quality_keyword_changes_the_file(tmp_path: Path) -> None:
    x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    write_image(tmp_path / "hi.jpg", x)  # default 95
    write_image(tmp_path / "lo.jpeg", x, quality=30)
    assert (tmp_path / "lo.jpeg").stat().st_size < (tmp_path / "hi.jpg").stat().st_size


def test_real_photo_round_trips(tmp_path: Path) -> None:
    data = pytest.importorskip("skimage.data")
    photo = data.astronaut()  # (512, 512, 3) uint8
    write_image(tmp_path / "a.png", _as_tensor(photo))
    np.testing.assert_array_equal(_to_ints(read_image(tmp_path / "a.png"), 8), photo)
    write_image(tmp_path / "a.jpg", _as_tensor(photo))
    err = read_image(tmp_path / "a.jpg").double() - _as_tensor(photo)
    assert 10 * torch.log10(1 / err.pow(2).mean()) > 35  # PSNR in dB at quality 95


def test_batch_of_one_and_upper_case_suffix_are_accepted(tmp_path: Path) -> None:
    ints = _ints(3, 8)
    write_image(tmp_path / "x.PNG", _as_tensor(ints)[None])
    np.testing.assert_array_equal(_to_ints(read_image(tmp_path / "x.PNG"), 8), ints)


def test_write_clips_and_rounds_half_to_even(tmp_path: Path) -> None:
    # float64 makes k + 0.5 exact after scaling, so the tie rule is what is tested.
    x = torch.tensor([[[0.5, 1.5, 2.5, 3.5, -0.2, 1.3]]], dtype=torch.float64)
    x[..., :4] /= 255
    write_image(tmp_path / "x.png", x)
    assert _to_ints(read_image(tmp_path / "x.png"), 8).ravel().tolist() == [0, 2, 2, 4, 0, 255]


def test_misnamed_file_is_read_by_content(tmp_path: Path) -> None:
    ints = _ints(3, 8)
    write_image(tmp_path / "x.png", _as_tensor(ints))
    (tmp_path / "x.png").rename(tmp_path / "x.jpg")
    np.testing.assert_array_equal(_to_ints(read_image(tmp_path / "x.jpg"), 8), ints)
    assert read_image_info(tmp_path / "x.jpg").format == "PNG"


# --------------------------------------------------------- files written by other tools


@pytest.mark.parametrize(
    ("suffix", "transparent"), [(".png", False), (".png", True), (".bmp", False), (".tif", False)]
)
def test_palette_images_become_rgb_or_rgba(tmp_path: Path, suffix: str, transparent: bool) -> None:
    rgb = _ints(3, 8)
    pal = Image.fromarray(rgb).quantize(colors=6)
    path = tmp_path / f"p{suffix}"
    pal.save(path, **({"transparency": 2} if transparent else {}))
    channels = 4 if transparent else 3
    expected = np.array(Image.open(path).convert("RGBA" if transparent else "RGB"))
    x = read_image(path)
    assert x.shape == (channels, H, W)
    np.testing.assert_array_equal(_to_ints(x, 8), expected)
    assert read_image_info(path) == ImageInfo(W, H, channels, 8, _fmt(suffix))
    if transparent:
        index = np.array(pal)
        assert (_to_ints(x, 8)[..., 3] == np.where(index == 2, 0, 255)).all()


def _fmt(suffix: str) -> str:
    return rio._FORMAT_BY_SUFFIX[suffix]


def test_tiff_palette_with_16_bit_colormap_keeps_16_bits(tmp_path: Path) -> None:
    index = _ints(1, 8)[..., 0] % 4
    cmap = np.zeros((3, 256), dtype=np.uint16)  # uint8 indices need 256 entries
    cmap[:, :4] = [[0, 1000, 40000, 65535], [65535, 40000, 1000, 0], [7, 300, 30001, 65000]]
    tifffile.imwrite(tmp_path / "p.tif", index, photometric="palette", colormap=cmap)
    x = read_image(tmp_path / "p.tif")
    np.testing.assert_array_equal(_to_ints(x, 16), np.moveaxis(cmap[:, index], 0, -1))
    assert read_image_info(tmp_path / "p.tif") == ImageInfo(W, H, 3, 16, "TIFF")


def test_pypng_16_bit_colour_png_is_read_at_16_bits(tmp_path: Path) -> None:
    ints = _ints(3, 16)
    with open(tmp_path / "c.png", "wb") as f:
        png.Writer(W, H, greyscale=False, bitdepth=16).write(f, ints.reshape(H, -1).tolist())
    np.testing.assert_array_equal(_to_ints(read_image(tmp_path / "c.png"), 16), ints)


def test_pillow_16_bit_gray_png_is_read_at_16_bits(tmp_path: Path) -> None:
    ints = _ints(1, 16)
    Image.fromarray(ints[..., 0]).save(tmp_path / "g.png")  # mode I;16
    np.testing.assert_array_equal(_to_ints(read_image(tmp_path / "g.png"), 16), ints)
    assert read_image_info(tmp_path / "g.png") == ImageInfo(W, H, 1, 16, "PNG")


@pytest.mark.parametrize(("channels", "depth"), [(1, 8), (3, 8), (1, 16), (3, 16)])
def test_png_colour_key_transparency_adds_alpha(tmp_path: Path, channels: int, depth: int) -> None:
    ints = _ints(channels, depth)
    key = tuple(int(v) for v in ints[0, 0])
    path = tmp_path / "t.png"
    writer = png.Writer(W, H, greyscale=channels == 1, bitdepth=depth, transparent=key)
    with open(path, "wb") as f:
        writer.write(f, ints.reshape(H, -1).tolist())
    x = read_image(path)
    assert x.shape == (channels + 1, H, W)
    assert read_image_info(path).channels == channels + 1
    np.testing.assert_array_equal(_to_ints(x[:channels], depth), ints)
    alpha = np.where(np.all(ints == key, axis=-1), 0, 2**depth - 1)
    np.testing.assert_array_equal(_to_ints(x[channels:], depth)[..., 0], alpha)


@pytest.mark.parametrize(("bits", "expected"), [(1, [0, 255, 0, 255]), (2, [0, 85, 170, 255])])
def test_low_bit_depth_gray_png(tmp_path: Path, bits: int, expected: list[int]) -> None:
    values = [0, 1, 0, 1] if bits == 1 else [0, 1, 2, 3]
    with open(tmp_path / "g.png", "wb") as f:
        png.Writer(4, 2, greyscale=True, bitdepth=bits).write(f, [values, values])
    x = read_image(tmp_path / "g.png")
    assert x.shape == (1, 2, 4)
    assert _to_ints(x, 8)[0, :, 0].tolist() == expected


def test_rgba_bmp_with_alpha_mask_is_read(tmp_path: Path) -> None:
    # A 32-bit BITMAPV4HEADER BMP with BI_BITFIELDS masks, the form that stores alpha.
    rgba = _ints(4, 8)
    pixels = rgba[::-1, :, [2, 1, 0, 3]].tobytes()  # bottom-up rows, BGRA
    header = (
        struct.pack(
            "<IiiHHIIiiII4I",
            108,
            W,
            H,
            1,
            32,
            3,
            len(pixels),
            2835,
            2835,
            0,
            0,
            0x00FF0000,
            0x0000FF00,
            0x000000FF,
            0xFF000000,
        )
        + b"\0" * 52
    )  # colour space and gamma: unused
    offset = 14 + len(header)
    data = b"BM" + struct.pack("<IHHI", offset + len(pixels), 0, 0, offset) + header + pixels
    (tmp_path / "a.bmp").write_bytes(data)
    np.testing.assert_array_equal(_to_ints(read_image(tmp_path / "a.bmp"), 8), rgba)
    assert read_image_info(tmp_path / "a.bmp") == ImageInfo(W, H, 4, 8, "BMP")


def test_tiff_planar_and_miniswhite(tmp_path: Path) -> None:
    rgb = _ints(3, 16)
    tifffile.imwrite(
        tmp_path / "s.tif", np.moveaxis(rgb, -1, 0), photometric="rgb", planarconfig="separate"
    )
    np.testing.assert_array_equal(_to_ints(read_image(tmp_path / "s.tif"), 16), rgb)
    gray = _ints(1, 8)[..., 0]
    tifffile.imwrite(tmp_path / "w.tif", gray, photometric="miniswhite")
    np.testing.assert_array_equal(_to_ints(read_image(tmp_path / "w.tif"), 8)[..., 0], 255 - gray)


@pytest.mark.parametrize(("mode", "depth"), [("RGB", 8), ("I;16", 16)])
def test_lzw_tiff_from_pillow(tmp_path: Path, mode: str, depth: int) -> None:
    # LZW is common and needs imagecodecs in tifffile; Pillow decodes it otherwise.
    ints = _ints(3 if mode == "RGB" else 1, depth)
    Image.fromarray(ints if mode == "RGB" else ints[..., 0]).save(
        tmp_path / "l.tif", compression="tiff_lzw"
    )
    np.testing.assert_array_equal(_to_ints(read_image(tmp_path / "l.tif"), depth), ints)
    assert read_image_info(tmp_path / "l.tif").bit_depth == depth


@pytest.mark.skipif(
    importlib.util.find_spec("imagecodecs") is not None, reason="imagecodecs present"
)
def test_16_bit_colour_tiff_needing_imagecodecs_says_so(tmp_path: Path) -> None:
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, _ints(3, 16), photometric="rgb")
    with tifffile.TiffFile(path) as tif:  # relabel it LZW-compressed (tag 259 = 5)
        offset = tif.pages[0].tags["Compression"].valueoffset
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(struct.pack("<H", 5))
    with pytest.raises(ImageReadError, match="imagecodecs") as err:
        read_image(path)
    assert str(err.value).startswith(str(path))


def test_float_tiff_out_of_range_is_clipped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tifffile.imwrite(tmp_path / "f.tif", np.array([[-0.5, 0.25, 2.0]], dtype=np.float32))
    with caplog.at_level(logging.WARNING, logger="restorekit.io"):
        x = read_image(tmp_path / "f.tif")
    assert x.ravel().tolist() == [0.0, 0.25, 1.0]
    assert "clipped" in caplog.text and "f.tif" in caplog.text


def test_jpeg_exif_orientation_is_applied(tmp_path: Path) -> None:
    stored = np.zeros((16, 24), dtype=np.uint8)
    stored[:8, :8] = 255  # bright top-left block
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    Image.fromarray(stored).save(tmp_path / "o.jpg", exif=exif, quality=95)
    x = read_image(tmp_path / "o.jpg")
    assert x.shape == (1, 24, 16)
    assert read_image_info(tmp_path / "o.jpg") == ImageInfo(16, 24, 1, 8, "JPEG")
    shown = np.rot90(stored, k=-1) / 255
    assert np.abs(x[0].numpy() - shown).mean() < 0.02


def test_cmyk_jpeg_is_read_as_rgb(tmp_path: Path) -> None:
    Image.fromarray(_ints(3, 8)).convert("CMYK").save(tmp_path / "c.jpg")
    assert read_image(tmp_path / "c.jpg").shape == (3, H, W)
    assert read_image_info(tmp_path / "c.jpg").channels == 3


# ------------------------------------------------------------------------------ errors


def _png_bytes(tmp_path: Path, depth: int = 8, size: int = 64) -> bytes:
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 2**depth, (size, size, 3)).astype(np.float64) / (2**depth - 1)
    write_image(tmp_path / "src.png", torch.from_numpy(noise).permute(2, 0, 1), bit_depth=depth)
    return (tmp_path / "src.png").read_bytes()


def _assert_names_file(err: pytest.ExceptionInfo[BaseException], path: Path) -> None:
    assert str(err.value).startswith(str(path)), str(err.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    for reader in (read_image, read_image_info):
        with pytest.raises(FileNotFoundError) as err:
            reader(path)
        _assert_names_file(err, path)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.touch()
    with pytest.raises(ImageReadError, match="empty") as err:
        read_image(path)
    _assert_names_file(err, path)


def test_text_file_named_png_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("hello, not a picture\n")
    for reader in (read_image, read_image_info):
        with pytest.raises(ImageReadError, match="not a PNG") as err:
            reader(path)
        _assert_names_file(err, path)


@pytest.mark.parametrize("kind", ["png8", "png16", "jpeg", "tiff", "bmp"])
def test_truncated_files_raise(tmp_path: Path, kind: str) -> None:
    if kind.startswith("png"):
        data = _png_bytes(tmp_path, depth=16 if kind == "png16" else 8)
        path = tmp_path / "cut.png"
    else:
        suffix = {"jpeg": ".jpg", "tiff": ".tif", "bmp": ".bmp"}[kind]
        noise = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
        write_image(tmp_path / f"src{suffix}", noise)
        data = (tmp_path / f"src{suffix}").read_bytes()
        path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[: len(data) // 2])
    # The header is intact, so the info still reads: it does not decode pixels.
    assert read_image_info(path).width == 64
    with pytest.raises(ImageReadError) as err:
        read_image(path)
    _assert_names_file(err, path)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize(
    ("suffix", "depth"), [(".png", 8), (".png", 16), (".jpg", 8), (".tif", 8), (".bmp", 8)]
)
def test_decompression_bomb_is_refused(tmp_path: Path, suffix: str, depth: int) -> None:
    path = tmp_path / f"big{suffix}"
    write_image(path, torch.zeros(1, 20, 30), bit_depth=depth)
    with pytest.raises(ImageReadError, match="600 pixels exceeds the limit of 599") as err:
        read_image(path, max_pixels=599)
    _assert_names_file(err, path)
    assert read_image(path, max_pixels=600).shape == (1, 20, 30)


def test_max_pixels_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.png"
    write_image(path, torch.zeros(1, 20, 30))
    monkeypatch.setenv("RESTOREKIT_MAX_PIXELS", "5e2")
    with pytest.raises(ImageReadError, match="limit of 500"):
        read_image(path)
    assert read_image(path, max_pixels=600).shape == (1, 20, 30)  # the argument wins
    monkeypatch.setenv("RESTOREKIT_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="RESTOREKIT_MAX_PIXELS"):
        read_image(path)


def test_pillow_bomb_limit_does_not_override_max_pixels(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow would warn at 100, fail at 200
    for suffix in (".png", ".jpg", ".bmp"):
        write_image(tmp_path / f"x{suffix}", torch.zeros(3, 20, 30))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a DecompressionBombWarning would fail here
            assert read_image(tmp_path / f"x{suffix}", max_pixels=10_000).shape == (3, 20, 30)


# ------------------------------------------------------------------------------ writes


@pytest.mark.parametrize(
    ("name", "image", "kwargs", "match"),
    [
        ("x.gif", torch.zeros(3, 4, 4), {}, "suffix"),
        ("x.jpg", torch.zeros(3, 4, 4), {"bit_depth": 16}, "bit_depth"),
        ("x.bmp", torch.zeros(3, 4, 4), {"bit_depth": 16}, "bit_depth"),
        ("x.png", torch.zeros(3, 4, 4), {"bit_depth": 32}, "bit_depth"),
        ("x.jpg", torch.zeros(4, 4, 4), {}, "alpha"),
        ("x.bmp", torch.zeros(2, 4, 4), {}, "alpha"),
        ("x.jpg", torch.zeros(3, 4, 4), {"quality": 0}, "quality"),
        ("x.png", torch.zeros(5, 4, 4), {}, "C in 1..4"),
        ("x.png", torch.zeros(2, 3, 4, 4), {}, "C in 1..4"),
        ("x.png", torch.zeros(3, 4, 4, dtype=torch.uint8), {}, "float"),
        ("x.png", torch.full((3, 4, 4), float("nan")), {}, "NaN"),
    ],
)
def test_bad_writes_raise_and_leave_nothing(
    tmp_path: Path, name: str, image: torch.Tensor, kwargs: dict, match: str
) -> None:
    with pytest.raises(ValueError, match=match) as err:
        write_image(tmp_path / name, image, **kwargs)
    _assert_names_file(err, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("suffix", "depth", "hook"), [(".tif", 16, "tiff"), (".png", 16, "png16"), (".png", 8, "pil")]
)
def test_failed_write_keeps_old_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str, depth: int, hook: str
) -> None:
    path = tmp_path / f"x{suffix}"
    write_image(path, torch.zeros(3, 4, 4), bit_depth=depth)
    before = path.read_bytes()

    def half_write(tmp: Path, *args: object, **kwargs: object) -> None:
        Path(tmp).write_bytes(b"partial")  # the crash comes after some bytes hit the disk
        raise OSError("disk full")

    if hook == "tiff":
        monkeypatch.setattr(rio, "_write_tiff", half_write)
    elif hook == "png16":
        monkeypatch.setattr(rio, "_write_png16", half_write)
    else:
        monkeypatch.setattr(Image.Image, "save", lambda self, tmp, **kw: half_write(tmp))
    with pytest.raises(OSError, match="disk full"):
        write_image(path, torch.ones(3, 4, 4), bit_depth=depth)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    assert path.read_bytes() == before


def test_write_creates_parent_folders(tmp_path: Path) -> None:
    write_image(tmp_path / "a" / "b" / "x.png", torch.zeros(1, 2, 2))
    assert (tmp_path / "a" / "b" / "x.png").is_file()


# ------------------------------------------------------------------------ list_images


def test_list_images_sorted_case_insensitive_not_recursive(tmp_path: Path) -> None:
    names = ["b.PNG", "a.jpg", "c.TIFF", "d.bmp", "e.jpeg", "f.tif", "notes.txt", ".hidden.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "g.png").write_bytes(b"x")
    (tmp_path / "dir.png").mkdir()
    got = [p.name for p in list_images(tmp_path)]
    assert got == ["a.jpg", "b.PNG", "c.TIFF", "d.bmp", "e.jpeg", "f.tif"]
    assert set(IMAGE_SUFFIXES) == {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}


def test_list_images_missing_folder_names_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        list_images(tmp_path / "nowhere")
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match=r"f\.png"):
        list_images(tmp_path / "f.png")


def test_import_is_cheap() -> None:
    code = (
        "import sys, restorekit.io; "
        "print(sorted({'h5py', 'pydicom', 'nibabel', 'nilearn'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- volumes


def _expected(vol: np.ndarray) -> np.ndarray:
    """(S, H, W) -> min-max normalised (S, 1, H, W), the documented mapping."""
    vol = vol.astype(np.float64)
    return ((vol - vol.min()) / (vol.max() - vol.min()))[:, None]


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nifti_slices_along_last_axis(tmp_path: Path, suffix: str) -> None:
    nib = pytest.importorskip("nibabel")
    data = np.arange(5 * 4 * 3, dtype=np.int16).reshape(5, 4, 3) * 7 - 50  # (X, Y, Z)
    path = tmp_path / f"v{suffix}"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    vol = read_volume(path)
    assert vol.shape == (3, 1, 5, 4) and vol.dtype == torch.float32
    np.testing.assert_allclose(vol.numpy(), _expected(np.moveaxis(data, -1, 0)), atol=1e-6)
    assert vol.min() == 0 and vol.max() == 1


def test_nifti_scaling_and_4d(tmp_path: Path) -> None:
    nib = pytest.importorskip("nibabel")
    data = np.arange(4 * 3 * 2 * 2, dtype=np.int16).reshape(4, 3, 2, 2)
    img = nib.Nifti1Image(data, np.eye(4))
    img.header.set_slope_inter(-2.0, 5.0)  # a negative slope flips the contrast
    nib.save(img, tmp_path / "v.nii.gz")
    vol = read_volume(tmp_path / "v.nii.gz")
    assert vol.shape == (2, 1, 4, 3)  # the first of two volumes
    first = np.moveaxis(data[..., 0], -1, 0) * -2.0 + 5.0
    np.testing.assert_allclose(vol.numpy(), _expected(first), atol=1e-6)


def test_constant_and_nan_volumes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    nib = pytest.importorskip("nibabel")
    nib.save(nib.Nifti1Image(np.full((3, 3, 2), 9.0, np.float32), np.eye(4)), tmp_path / "c.nii")
    vol = read_volume(tmp_path / "c.nii")
    assert torch.equal(vol, torch.zeros(2, 1, 3, 3))
    data = np.arange(18, dtype=np.float32).reshape(3, 3, 2)
    data[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "n.nii")
    with caplog.at_level(logging.WARNING, logger="restorekit.io"):
        vol = read_volume(tmp_path / "n.nii")
    assert torch.isfinite(vol).all() and vol[1, 0, 1, 1] == 0
    assert "non-finite" in caplog.text


def test_real_nifti_template() -> None:
    nilearn = pytest.importorskip("nilearn")
    pytest.importorskip("nibabel")
    path = (
        Path(nilearn.__file__).parent
        / "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    )
    if not path.exists():
        pytest.skip("nilearn's MNI152 template is not installed")
    vol = read_volume(path)
    assert vol.shape == (189, 1, 197, 233)
    assert vol.min() == 0 and vol.max() == 1
    assert vol[90].mean() > vol[0].mean()  # mid-brain slice brighter than the edge


def _dicom(
    path: Path,
    frames: np.ndarray,
    *,
    z: float | None = None,
    position: tuple[float, float, float] | None = None,
    orientation: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0),
    spacing: tuple[float, float] | None = None,
    instance: int | None = None,
    slope: float | None = None,
    intercept: float | None = None,
    series: str = "1.2.826.0.1.3680043.8.498.1",
    photometric: str = "MONOCHROME2",
) -> None:
    """Write a minimal MR DICOM file (Explicit VR Little Endian) with uint16 frames;
    ``z`` is shorthand for ``position=(0, 0, z)``."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = f"{series}.{instance or 0}"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SeriesInstanceUID = series
    ds.Modality = "MR"
    ds.Rows, ds.Columns = frames.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if frames.shape[0] > 1:
        ds.NumberOfFrames = frames.shape[0]
    if z is not None or position is not None:
        ds.ImagePositionPatient = list(position or (0.0, 0.0, z))
        ds.ImageOrientationPatient = list(orientation)
    if spacing is not None:
        ds.PixelSpacing = list(spacing)
    if instance is not None:
        ds.InstanceNumber = instance
    if slope is not None:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = frames.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def _frames(n: int) -> np.ndarray:
    return np.random.default_rng(n).integers(0, 1000, size=(n, 5, 6)).astype(np.uint16)


def test_dicom_series_sorted_by_position_with_rescale(tmp_path: Path) -> None:
    pytest.importorskip("pydicom")
    raw = _frames(4)
    zs = [10.0, -5.0, 2.5, 0.0]  # names, instance numbers and positions disagree
    for i, z in enumerate(zs):
        _dicom(
            tmp_path / f"im{i}",
            raw[i : i + 1],
            z=z,
            instance=4 - i,
            slope=1.0 + i,
            intercept=-3.0 * i,
        )
    (tmp_path / "README.txt").write_text("not DICOM")  # skipped
    vol = read_volume(tmp_path)
    assert vol.shape == (4, 1, 5, 6)
    rescaled = np.stack([raw[i] * (1.0 + i) - 3.0 * i for i in range(4)])
    order = np.argsort(zs)  # inferior to superior along the slice normal
    np.testing.assert_allclose(vol.numpy(), _expected(rescaled[order]), atol=1e-6)


def test_dicom_series_falls_back_to_instance_number(tmp_path: Path) -> None:
    pytest.importorskip("pydicom")
    raw = _frames(3)
    for i, instance in enumerate([3, 1, 2]):
        _dicom(tmp_path / f"s{i}.dcm", raw[i : i + 1], instance=instance)
    vol = read_volume(tmp_path)
    np.testing.assert_allclose(vol.numpy(), _expected(raw[[1, 2, 0]]), atol=1e-6)


def test_dicom_folder_errors(tmp_path: Path) -> None:
    pytest.importorskip("pydicom")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no DICOM images") as err:
        read_volume(tmp_path / "empty")
    _assert_names_file(err, tmp_path / "empty")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    _dicom(mixed / "a.dcm", _frames(1), series="1.2.3.1")
    _dicom(mixed / "b.dcm", _frames(1), series="1.2.3.2")
    with pytest.raises(ValueError, match="2 DICOM series"):
        read_volume(mixed)


def test_dicom_series_becomes_nifti_with_each_pixel_where_dicom_places_it(
    tmp_path: Path,
) -> None:
    pytest.importorskip("pydicom")
    from restorekit.io import read_nifti_slices, volume_name, write_nifti_slices

    # An oblique series: rows run along (0.8, 0.6, 0) and columns along z, so the normal
    # is (0.6, -0.8, 0); rectangular pixels; slices 3 mm apart, written in shuffled order.
    row, col = np.array([0.8, 0.6, 0.0]), np.array([0.0, 0.0, 1.0])
    normal, origin, spacing = np.cross(row, col), np.array([-20.0, 35.0, 7.0]), (0.7, 0.5)
    raw = _frames(3)
    for k in (2, 0, 1):
        _dicom(tmp_path / f"IM{k}", raw[k : k + 1], position=tuple(origin + 3 * k * normal),
               orientation=(*row, *col), spacing=spacing, slope=2.0, intercept=-5.0)  # fmt: skip
    assert volume_name(tmp_path) == (tmp_path.name, ".nii.gz")
    volume = read_nifti_slices(tmp_path)
    assert volume.shape == (5, 6, 3)  # (rows, columns, slices)
    data = np.asarray(volume.image.dataobj)
    np.testing.assert_allclose(data, np.moveaxis(raw * 2.0 - 5.0, 0, -1))

    def dicom_point(j: int, i: int, k: int) -> np.ndarray:
        """DICOM PS3.3 C.7.6.2.1.1: pixel (row j, column i) of slice k, in LPS mm."""
        return origin + 3 * k * normal + i * spacing[1] * row + j * spacing[0] * col

    lps_to_ras = np.array([-1.0, -1.0, 1.0])
    for j, i, k in [(0, 0, 0), (4, 0, 0), (0, 5, 0), (4, 5, 2), (2, 3, 1)]:
        world = (volume.image.affine @ [j, i, k, 1])[:3]
        np.testing.assert_allclose(world, lps_to_ras * dicom_point(j, i, k), atol=1e-9)
    # Written back at x2, the finer grid keeps the series' field of view.
    up = volume.slices.repeat_interleave(2, -1).repeat_interleave(2, -2)
    write_nifti_slices(tmp_path.parent / "x2.nii.gz", up, volume)
    out = pytest.importorskip("nibabel").load(tmp_path.parent / "x2.nii.gz")
    assert out.shape == (10, 12, 3)
    assert out.header.get_zooms() == pytest.approx((0.35, 0.25, 3.0))
    corner = lps_to_ras * dicom_point(-0.5, -0.5, 0)
    np.testing.assert_allclose((out.affine @ [-0.5, -0.5, 0, 1])[:3], corner, atol=1e-9)


def test_dicom_without_its_image_plane_has_no_grid_to_write(tmp_path: Path) -> None:
    pytest.importorskip("pydicom")
    from restorekit.io import read_nifti_slices

    _dicom(tmp_path / "a.dcm", _frames(1), z=1.0)  # no PixelSpacing
    with pytest.raises(ValueError, match=r"a\.dcm: DICOM without its image plane"):
        read_nifti_slices(tmp_path / "a.dcm")
    _dicom(tmp_path / "mf.dcm", _frames(2), z=1.0, spacing=(1.0, 1.0))
    with pytest.raises(ValueError, match=r"mf\.dcm: multi-frame DICOM"):
        read_nifti_slices(tmp_path / "mf.dcm")


def test_multiframe_dicom_keeps_frame_order(tmp_path: Path) -> None:
    pytest.importorskip("pydicom")
    raw = _frames(3)
    _dicom(tmp_path / "mf.dcm", raw, slope=0.5, intercept=100.0)
    vol = read_volume(tmp_path / "mf.dcm")
    assert vol.shape == (3, 1, 5, 6)
    np.testing.assert_allclose(vol.numpy(), _expected(raw * 0.5 + 100.0), atol=1e-6)
    _dicom(tmp_path / "inv.dcm", raw, photometric="MONOCHROME1")
    np.testing.assert_allclose(
        read_volume(tmp_path / "inv.dcm").numpy(), 1 - _expected(raw), atol=1e-6
    )


@pytest.mark.parametrize(
    ("name", "shape"), [("MR_small.dcm", (1, 1, 64, 64)), ("emri_small.dcm", (10, 1, 64, 64))]
)
def test_real_dicom_files(name: str, shape: tuple[int, ...]) -> None:
    pydicom = pytest.importorskip("pydicom")
    try:
        from pydicom.data import get_testdata_file

        path = get_testdata_file(name, download=False)
    except Exception:  # pydicom-data missing or the file not cached offline
        path = None
    if path is None:
        pytest.skip(f"{name} is not available offline")
    ds = pydicom.dcmread(path)
    vol = read_volume(path)
    assert vol.shape == shape
    raw = ds.pixel_array.reshape(shape[0], 64, 64).astype(np.float64)
    raw = raw * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))
    np.testing.assert_allclose(vol.numpy(), _expected(raw), atol=1e-6)


def _h5(path: Path, **datasets: np.ndarray) -> None:
    h5py = pytest.importorskip("h5py")
    with h5py.File(path, "w") as f:
        for name, data in datasets.items():
            f.create_dataset(name, data=data)


def test_fastmri_h5_keys(tmp_path: Path) -> None:
    rss = np.random.default_rng(0).random((3, 4, 5)).astype(np.float32)
    esc = rss[::-1] * 2
    _h5(
        tmp_path / "both.h5",
        reconstruction_esc=esc,
        reconstruction_rss=rss,
        kspace=np.zeros((3, 2, 2), np.complex64),
    )
    _h5(tmp_path / "esc.h5", reconstruction_esc=esc)
    np.testing.assert_allclose(read_volume(tmp_path / "both.h5").numpy(), _expected(rss), atol=1e-6)
    np.testing.assert_allclose(read_volume(tmp_path / "esc.h5").numpy(), _expected(esc), atol=1e-6)
    both_esc = read_volume(tmp_path / "both.h5", key="reconstruction_esc")
    np.testing.assert_allclose(both_esc.numpy(), _expected(esc), atol=1e-6)
    with pytest.raises(ValueError, match="complex"):
        read_volume(tmp_path / "both.h5", key="kspace")
    with pytest.raises(ValueError, match=r"no dataset 'image'.*reconstruction_esc") as err:
        read_volume(tmp_path / "both.h5", key="image")
    _assert_names_file(err, tmp_path / "both.h5")


def test_fastmri_h5_without_reconstruction_names_file_and_keys(tmp_path: Path) -> None:
    _h5(tmp_path / "raw.h5", kspace=np.zeros((2, 3, 3), np.complex64))
    with pytest.raises(ValueError, match=r"reconstruction_rss.*\['kspace'\]") as err:
        read_volume(tmp_path / "raw.h5")
    _assert_names_file(err, tmp_path / "raw.h5")
    (tmp_path / "bad.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="HDF5") as err:
        read_volume(tmp_path / "bad.h5")
    _assert_names_file(err, tmp_path / "bad.h5")


def test_volume_path_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"gone\.nii"):
        read_volume(tmp_path / "gone.nii")
    (tmp_path / "v.xyz").write_bytes(b"\0" * 200)
    with pytest.raises(ValueError, match="unknown volume format") as err:
        read_volume(tmp_path / "v.xyz")
    _assert_names_file(err, tmp_path / "v.xyz")
    with pytest.raises(ValueError, match="key="):
        read_volume(tmp_path / "v.xyz", key="reconstruction_rss")


@pytest.mark.parametrize(
    ("module", "suffix"), [("h5py", ".h5"), ("nibabel", ".nii"), ("pydicom", ".dcm")]
)
def test_missing_optional_package_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, suffix: str
) -> None:
    path = tmp_path / f"v{suffix}"
    path.write_bytes(b"\0" * 200)
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(ImportError, match=r"restorekit\[mri\]"):
        read_volume(path)


def test_the_default_pixel_limit_comes_from_the_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Issue 14: a 445 KB PNG of 12000x12000, under the 150 MP limit, took degrade past
    # 10 GB on a 24 GB machine.
    import struct
    import zlib

    from restorekit.io import images

    def ram(gb: float) -> None:
        pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": int(gb * 2**30 / 4096)}
        monkeypatch.setattr(images.os, "sysconf", pages.__getitem__)

    ram(24)
    assert images.default_max_pixels() == 24 * 2**30 // 2 // 96  # about 134 million
    ram(1024)
    assert images.default_max_pixels() == 150_000_000
    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 12000, 12000, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + ihdr + struct.pack(">I", zlib.crc32(ihdr))
    idat = b"IDAT" + zlib.compress(b"")
    png += struct.pack(">I", len(idat) - 4) + idat + struct.pack(">I", zlib.crc32(idat))
    (tmp_path / "big.png").write_bytes(png + b"\x00\x00\x00\x00IEND\xaeB`\x82")
    ram(16)
    with pytest.raises(ValueError, match=r"big\.png: 12000x12000 .*set from this machine's memory"):
        images.read_image(tmp_path / "big.png")


# ------------------------------------------------------------------ decode_image (bytes)


@pytest.mark.parametrize("fmt", ["WEBP", "PNG", "JPEG"])
def test_decode_image_reads_bytes_as_read_image_reads_the_file(tmp_path: Path, fmt: str) -> None:
    """The same array as the file read (WebP: Pillow's own decode, lossless exact)."""
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    file = tmp_path / "x.img"
    Image.fromarray(arr).save(file, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    x = decode_image(file.read_bytes(), "bundle.rcc/x")
    assert x.shape == (3, 9, 11) and x.dtype == torch.float32
    if fmt == "WEBP":
        assert torch.equal(x, torch.from_numpy(arr).permute(2, 0, 1).float() / 255)
    else:
        assert torch.equal(x, read_image(file))


def test_decode_image_refuses_what_it_cannot_read_by_name(tmp_path: Path) -> None:
    with pytest.raises(ImageReadError, match=r"^bundle\.rcc/a: not an 8-bit PNG, JPEG"):
        decode_image(b"GIF89a....", "bundle.rcc/a")
    write_image(tmp_path / "d.png", torch.rand(1, 4, 4), bit_depth=16)
    with pytest.raises(ImageReadError, match="not an 8-bit"):  # 16-bit: read_image keeps 16
        decode_image((tmp_path / "d.png").read_bytes(), "d")
    write_image(tmp_path / "t.jpg", torch.rand(3, 16, 16))
    with pytest.raises(ImageReadError, match=r"^t: cannot decode JPEG"):
        decode_image((tmp_path / "t.jpg").read_bytes()[:200], "t")
    with pytest.raises(ImageReadError, match="exceeds the limit of 100"):
        decode_image((tmp_path / "t.jpg").read_bytes(), "t", max_pixels=100)
