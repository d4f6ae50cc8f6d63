"""Read and write images as float tensors in [0, 1].

PNG, JPEG, TIFF and BMP; gray, gray+alpha, RGB, RGBA and palette; 8 and 16 bits (and
float TIFF). Nothing is reduced silently: 16-bit PNG is decoded with pypng because Pillow
reduces 16-bit colour PNG to 8 bits, and TIFF goes through tifffile for every depth.

Every reader checks the file before decoding: a missing, empty, truncated or foreign file,
or one larger than a pixel limit (a "decompression bomb"), raises an error naming the file.
Writes are atomic (temporary file, then rename), so a crash never leaves half a file.

References:
    - PNG (3rd edition): https://www.w3.org/TR/png-3/
    - TIFF 6.0: https://www.itu.int/itudoc/itu-t/com16/tiff-fx/docs/tiff6.pdf
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import png
import tifffile
import torch
from PIL import (
    BmpImagePlugin,
    Image,
    ImageOps,
    JpegImagePlugin,
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from restorekit.utils import atomic_path, ram_bytes

logger = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 150_000_000
"""Largest width x height read by default, on a machine with the memory for it (see
:func:`default_max_pixels`); ``RESTOREKIT_MAX_PIXELS`` overrides it."""

BYTES_PER_PIXEL = 96
"""What working on one pixel costs, measured: degrading a 12000x12000 PNG took past 10 GB
(float32 RGB is 12 bytes a pixel; the float64 copies and noise of an operation add the
rest)."""


def default_max_pixels() -> int:
    """:data:`DEFAULT_MAX_PIXELS`, or fewer where half this machine's memory could not
    hold :data:`BYTES_PER_PIXEL` for each (a 24 GB machine: 125 million)."""
    return min(DEFAULT_MAX_PIXELS, ram_bytes() // 2 // BYTES_PER_PIXEL)


MAX_PIXELS_ENV = "RESTOREKIT_MAX_PIXELS"

IMAGE_SUFFIXES = (".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff")
"""Suffixes (lower case) that :func:`list_images` and :func:`write_image` accept."""

_FORMAT_BY_SUFFIX = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
# Formats are recognised by their first bytes, not by the suffix, so a misnamed file
# still reads and a text file named .png is reported as "not an image".
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"II+\x00", "TIFF"),  # BigTIFF
    (b"MM\x00+", "TIFF"),
    (b"BM", "BMP"),
)
# Opening through the format's own class skips Image.open's built-in bomb check (a
# warning above ~89 MP, an error above ~179 MP), which would override max_pixels; the
# size is checked here instead, from the header, before any pixel is decoded.
_PIL_CLASSES: dict[str, Callable[[Any], Any]] = {  # a path, or a file object
    "PNG": PngImagePlugin.PngImageFile,
    "JPEG": JpegImagePlugin.JpegImageFile,
    "BMP": BmpImagePlugin.BmpImageFile,
    "TIFF": TiffImagePlugin.TiffImageFile,
    "WEBP": WebPImagePlugin.WebPImageFile,  # decode_image only
}
# Pillow mode -> (channels, mode to convert to); colour-key transparency adds an alpha.
_PIL_MODES = {
    "1": (1, "L"),
    "L": (1, "L"),
    "LA": (2, "LA"),
    "P": (3, "RGB"),
    "PA": (4, "RGBA"),
    "RGB": (3, "RGB"),
    "RGBA": (4, "RGBA"),
    "CMYK": (3, "RGB"),
    "YCbCr": (3, "RGB"),
    "I;16": (1, "I;16"),
    "I;16B": (1, "I;16"),
    "I;16L": (1, "I;16"),
}
_ALPHA_TWIN = {"L": "LA", "RGB": "RGBA"}
# PNG colour type -> channels: gray, RGB, palette (read as RGB), gray+alpha, RGBA.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}


class ImageReadError(ValueError):
    """A file that cannot be read as an image; the message starts with the file's path."""


@dataclass(frozen=True)
class ImageInfo:
    """What :func:`read_image` will return, read from the header without decoding pixels.

    Attributes:
        width: Width in pixels (after EXIF rotation, for JPEG).
        height: Height in pixels (after EXIF rotation, for JPEG).
        channels: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA (palettes count as RGB or RGBA).
        bit_depth: 8, 16, or 32 for floating-point TIFF.
        format: ``"PNG"``, ``"JPEG"``, ``"TIFF"`` or ``"BMP"``.
    """

    width: int
    height: int
    channels: int
    bit_depth: int
    format: str


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Return the image files directly inside ``folder``, sorted by name.

    Files are matched by :data:`IMAGE_SUFFIXES`, ignoring case; sub-folders are not
    searched. Hidden files (names starting with ``.``) are skipped, which also skips the
    temporary files of writes still in progress.

    Raises:
        FileNotFoundError: ``folder`` does not exist.
        NotADirectoryError: ``folder`` is a file.
    """
    root = Path(folder)
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such folder")
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder")
    return sorted(
        p
        for p in root.iterdir()
        if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file()
    )


def read_image_info(path: str | os.PathLike[str]) -> ImageInfo:
    """Read an image's size, channel count, bit depth and format from its header.

    No pixel data is decoded, so this is cheap even for huge files (and applies no pixel
    limit). ``channels`` and the size match what :func:`read_image` returns.

    Raises:
        FileNotFoundError: the file does not exist.
        ImageReadError: the file is empty, not a PNG/JPEG/TIFF/BMP image, or corrupt.

    Example:
        >>> import tempfile, torch
        >>> with tempfile.TemporaryDirectory() as d:
        ...     write_image(f"{d}/x.tif", torch.zeros(2, 8, 10), bit_depth=16)
        ...     read_image_info(f"{d}/x.tif")
        ImageInfo(width=10, height=8, channels=2, bit_depth=16, format='TIFF')
    """
    file = Path(path)
    fmt = _sniff(file)
    try:
        if fmt == "TIFF":
            with tifffile.TiffFile(file) as tif:
                page = tif.pages[0]
                channels, depth = _tiff_layout(page, file)
                return ImageInfo(page.imagewidth, page.imagelength, channels, depth, fmt)
        with _PIL_CLASSES[fmt](str(file)) as im:
            width, height = im.size
            channels, _ = _pil_target(im, file)
            if fmt == "JPEG" and _exif_orientation(im) in (5, 6, 7, 8):
                width, height = height, width  # these orientations rotate by 90 degrees
            depth = 8
            if fmt == "PNG":
                depth, color_type = _png_header(file)
                depth = 16 if depth == 16 else 8
                has_key = "transparency" in im.info and color_type in (0, 2, 3)
                channels = _PNG_CHANNELS[color_type] + has_key
            return ImageInfo(width, height, channels, depth, fmt)
    except ImageReadError:
        raise
    except Exception as err:
        raise ImageReadError(f"{file}: corrupt {fmt} header ({err})") from err


def read_image(path: str | os.PathLike[str], *, max_pixels: int | None = None) -> torch.Tensor:
    """Read an image file as a float tensor in [0, 1].

    Integer samples are divided by their maximum (255, 65535, or ``2**bits - 1`` for other
    TIFF depths), so 16-bit files keep their 16 bits. Palette images become RGB, or RGBA
    when the palette has transparency; colour-key transparency (PNG ``tRNS`` on gray or
    RGB) adds an alpha channel too. Gray+alpha stays two channels. JPEG is turned upright
    by its EXIF orientation; other formats are returned as stored. Multi-page TIFF: the
    first page. Float TIFF is returned as is, with values outside [0, 1] clipped (logged).

    Args:
        path: A PNG, JPEG, TIFF or BMP file; the format is detected from its content.
        max_pixels: Refuse images with more than this many pixels (width x height), read
            from the header before decoding. ``None``: the ``RESTOREKIT_MAX_PIXELS``
            environment variable if set, else :func:`default_max_pixels` (150 million,
            fewer on a machine with less than about 29 GB).

    Returns:
        (C, H, W) float32 in [0, 1]; C is 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA).

    Raises:
        FileNotFoundError: the file does not exist.
        ImageReadError: empty, truncated, corrupt, not an image, or over ``max_pixels``.

    Example:
        >>> import tempfile, torch
        >>> x = torch.rand(3, 8, 10)
        >>> with tempfile.TemporaryDirectory() as d:
        ...     write_image(f"{d}/x.png", x, bit_depth=16)
        ...     y = read_image(f"{d}/x.png")
        >>> y.shape, y.dtype, bool((y - x).abs().max() <= 0.5 / 65535)
        (torch.Size([3, 8, 10]), torch.float32, True)
    """
    file = Path(path)
    limit = _resolve_max_pixels(max_pixels)
    fmt = _sniff(file)
    if fmt == "TIFF":
        arr, scale = _read_tiff(file, limit)
    elif fmt == "PNG" and _png_header(file)[0] == 16:
        arr, scale = _read_png16(file, limit)
    else:
        arr, scale = _read_pil(file, fmt, limit)
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).to(torch.float32)
    return x / scale if scale != 1 else x


def decode_image(data: bytes, name: str, *, max_pixels: int | None = None) -> torch.Tensor:
    """Decode an 8-bit PNG, JPEG, BMP or WebP image held in memory, as :func:`read_image`
    reads a file (same channels, scale and checks): for images stored inside other files,
    such as the photos of a Qt resource bundle (:mod:`restorekit.data.rcc`).

    Args:
        data: The encoded image, as a file would hold it.
        name: What error messages call it (the bundle and the path inside it).
        max_pixels: As for :func:`read_image`.

    Returns:
        (C, H, W) float32 in [0, 1]; C is 1, 2, 3 or 4 as :func:`read_image` gives it.

    Raises:
        ImageReadError: empty, not one of these formats, corrupt, or over ``max_pixels``
            (the message starts with ``name``).

    Example:
        >>> from PIL import Image
        >>> buf = io.BytesIO()
        >>> Image.new("RGB", (5, 4), (255, 0, 51)).save(buf, format="WEBP", lossless=True)
        >>> x = decode_image(buf.getvalue(), "red.webp")
        >>> x.shape, [round(float(v), 2) for v in x[:, 0, 0]]
        (torch.Size([3, 4, 5]), [1.0, 0.0, 0.2])
    """
    file = Path(name)
    head = data[:16]
    fmt = next((f for magic, f in _MAGIC if head.startswith(magic)), None)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        fmt = "WEBP"
    # Byte 24 of a PNG is IHDR's bit depth: 16-bit PNG needs read_image's pypng path.
    if fmt not in ("PNG", "JPEG", "BMP", "WEBP") or (fmt == "PNG" and data[24:25] == b"\x10"):
        raise ImageReadError(f"{file}: not an 8-bit PNG, JPEG, BMP or WebP image")
    arr, scale = _read_pil(file, fmt, _resolve_max_pixels(max_pixels), io.BytesIO(data))
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).to(torch.float32)
    return x / scale


def write_image(
    path: str | os.PathLike[str],
    image: torch.Tensor,
    *,
    bit_depth: int = 8,
    quality: int = 95,
) -> None:
    """Write a float image tensor to PNG, JPEG, TIFF or BMP, chosen by the suffix.

    Values are clipped to [0, 1], scaled to ``2**bit_depth - 1`` and rounded with
    ``torch.round`` (round half to even), so ``read_image`` of the result returns the
    same quantised values exactly for the lossless formats. The file appears atomically:
    on any error nothing is left at ``path`` (an existing file is kept as it was).

    Args:
        path: Target file; the suffix (any case) picks the format: .png, .jpg/.jpeg,
            .tif/.tiff or .bmp. Missing parent folders are created.
        image: (C, H, W) or (1, C, H, W) float tensor, C = 1 (gray), 2 (gray+alpha),
            3 (RGB) or 4 (RGBA); any device.
        bit_depth: 8 or 16 (PNG, TIFF); 32 writes float32 TIFF without rounding. JPEG and
            BMP are 8-bit only. Neither stores alpha, so they take 1 or 3 channels.
        quality: JPEG quality, 1-100; ignored by the other formats.

    Raises:
        ValueError: unsupported suffix, bit depth, channel count, shape, dtype or quality,
            or non-finite values.

    Example:
        >>> import tempfile, torch
        >>> x = torch.tensor([[[0.0, 0.5, 1.0, 2.0]]])  # (1, 1, 4) gray; 2.0 is clipped
        >>> with tempfile.TemporaryDirectory() as d:
        ...     write_image(f"{d}/x.png", x)
        ...     (read_image(f"{d}/x.png") * 255).round().tolist()
        [[[0.0, 128.0, 255.0, 255.0]]]
    """
    target = Path(path)
    fmt = _FORMAT_BY_SUFFIX.get(target.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"{target}: cannot write suffix {target.suffix!r}; use one of {IMAGE_SUFFIXES}"
        )
    allowed_depths = {"PNG": (8, 16), "TIFF": (8, 16, 32), "JPEG": (8,), "BMP": (8,)}[fmt]
    if bit_depth not in allowed_depths:
        raise ValueError(f"{target}: {fmt} takes bit_depth in {allowed_depths}, not {bit_depth}")
    if fmt == "JPEG" and not 1 <= quality <= 100:
        raise ValueError(f"{target}: JPEG quality must be in 1..100, not {quality}")
    arr = _quantise(image, bit_depth, target)  # (H, W, C)
    channels = arr.shape[-1]
    if fmt in ("JPEG", "BMP") and channels not in (1, 3):
        raise ValueError(
            f"{target}: {fmt} stores gray or RGB only, not {channels} channels "
            "(alpha would be lost); write PNG or TIFF instead"
        )
    with atomic_path(target) as tmp:
        if fmt == "TIFF":
            _write_tiff(tmp, arr)
        elif fmt == "PNG" and bit_depth == 16:
            _write_png16(tmp, arr)
        else:
            pil = Image.fromarray(arr[..., 0] if channels == 1 else arr)
            options = {"quality": quality} if fmt == "JPEG" else {}
            pil.save(tmp, format=fmt, **options)


# ----------------------------------------------------------------------------- images


def _resolve_max_pixels(max_pixels: int | None) -> int:
    if max_pixels is None:
        env = os.environ.get(MAX_PIXELS_ENV)
        if not env:
            return default_max_pixels()
        try:
            max_pixels = int(float(env))  # accepts "150000000" and "1.5e8"
        except ValueError:
            raise ValueError(f"{MAX_PIXELS_ENV}={env!r} is not a number of pixels") from None
    if max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive, not {max_pixels}")
    return int(max_pixels)


def _check_pixels(file: Path, width: int, height: int, limit: int) -> None:
    if width * height > limit:
        raise ImageReadError(
            f"{file}: {width}x{height} = {width * height} pixels exceeds the limit of "
            f"{limit} (set from this machine's memory at about {BYTES_PER_PIXEL} bytes a "
            f"pixel, or a decompression bomb; raise max_pixels or {MAX_PIXELS_ENV})"
        )


def _sniff(file: Path) -> str:
    """Return the format of ``file`` from its first bytes; errors name the file."""
    if not file.exists():
        raise FileNotFoundError(f"{file}: no such file")
    if file.is_dir():
        raise ImageReadError(f"{file}: is a folder, not an image file")
    with open(file, "rb") as f:
        head = f.read(132)
    if not head:
        raise ImageReadError(f"{file}: empty file")
    if head[128:] == b"DICM":  # checked first: a DICOM preamble may hold a TIFF header
        raise ImageReadError(
            f"{file}: a DICOM file, not an image; `restorekit restore` takes it (or the "
            "folder of its series) as a volume, and restorekit.read_volume reads its slices"
        )
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    raise ImageReadError(f"{file}: not a PNG, JPEG, TIFF or BMP image")


def _png_header(file: Path) -> tuple[int, int]:
    """Bit depth and colour type of a PNG, from its IHDR chunk.

    Pillow's mode cannot tell them: it opens 16-bit RGB as "RGB" and 16-bit gray+alpha
    as "RGBA". IHDR is always the first chunk: 8-byte signature, length, b"IHDR",
    width, height, then bit depth (offset 24) and colour type (offset 25).
    """
    with open(file, "rb") as f:
        head = f.read(26)
    if len(head) < 26 or head[12:16] != b"IHDR":
        raise ImageReadError(f"{file}: corrupt PNG header")
    return head[24], head[25]


def _exif_orientation(im: Image.Image) -> int:
    return int(im.getexif().get(0x0112, 1))  # 0x0112: the EXIF Orientation tag


def _pil_target(im: Image.Image, file: Path) -> tuple[int, str]:
    """Channels and the Pillow mode to convert to; a transparency key adds an alpha."""
    if im.mode not in _PIL_MODES:
        raise ImageReadError(f"{file}: unsupported image mode {im.mode!r}")
    channels, target = _PIL_MODES[im.mode]
    if "transparency" in im.info and target in _ALPHA_TWIN:
        return channels + 1, _ALPHA_TWIN[target]
    return channels, target


def _read_pil(
    file: Path, fmt: str, limit: int, data: io.BytesIO | None = None
) -> tuple[np.ndarray, float]:
    """Decode with Pillow: (H, W, C) uint8 (uint16 for 16-bit gray TIFF) and its scale.
    ``data``: the encoded image in memory, ``file`` then only names it in errors."""
    try:
        with _PIL_CLASSES[fmt](data if data is not None else str(file)) as im:
            _check_pixels(file, *im.size, limit)
            _, target = _pil_target(im, file)  # unsupported modes fail before decoding
            # load() inside the try: a truncated file raises here rather than coming
            # back partly gray (ImageFile.LOAD_TRUNCATED_IMAGES is left False).
            im.load()
            out: Image.Image = ImageOps.exif_transpose(im) if fmt == "JPEG" else im
            if target == "I;16":
                arr = np.array(out, dtype=np.uint16)
            else:
                arr = np.array(out if out.mode == target else out.convert(target))
    except ImageReadError:
        raise
    except Exception as err:
        raise ImageReadError(f"{file}: cannot decode {fmt} ({err})") from err
    scale = 65535.0 if arr.dtype == np.uint16 else 255.0
    return (arr[..., None] if arr.ndim == 2 else arr), scale


def _read_png16(file: Path, limit: int) -> tuple[np.ndarray, float]:
    """Decode a 16-bit PNG with pypng, which keeps all 16 bits of colour images."""
    try:
        reader = png.Reader(filename=str(file))
        reader.preamble()
        _check_pixels(file, reader.width, reader.height, limit)
        width, height, rows, meta = reader.read()
        # read() yields rows of native-order uint16 (array "H"): view them, no copy.
        arr = np.stack([np.frombuffer(row, dtype=np.uint16) for row in rows])
    except ImageReadError:
        raise
    except Exception as err:
        raise ImageReadError(f"{file}: cannot decode PNG ({err})") from err
    if arr.shape != (height, width * meta["planes"]):
        raise ImageReadError(f"{file}: truncated PNG ({arr.shape[0]} of {height} rows)")
    arr = arr.reshape(height, width, meta["planes"])
    key = meta.get("transparent")
    if key is not None:  # colour-key transparency becomes an alpha channel
        opaque = ~np.all(arr == np.asarray(key, dtype=np.uint16), axis=-1, keepdims=True)
        arr = np.concatenate([arr, opaque.astype(np.uint16) * 65535], axis=-1)
    return arr, 65535.0


def _tiff_layout(page: Any, file: Path) -> tuple[int, int]:
    """Channels and bit depth that a TIFF page will be read as; errors if unsupported."""
    photometric = int(page.photometric)
    spp = int(page.samplesperpixel)
    bps = int(page.bitspersample)
    fmt = int(page.sampleformat)
    if int(getattr(page, "imagedepth", 1)) != 1:
        raise ImageReadError(f"{file}: volumetric TIFF pages are not supported")
    if fmt == 3:
        depth = 32
    elif fmt == 1 and bps <= 16:
        depth = 8 if bps <= 8 else 16
    else:
        raise ImageReadError(f"{file}: {bps}-bit sample format {fmt} is not supported")
    if photometric == 3:  # palette
        return 3, 8 if _tiff_palette_scale(page.colormap)[1] == 255 else 16
    if photometric in (0, 1) and spp in (1, 2):  # MINISWHITE, MINISBLACK (+ alpha)
        return spp, depth
    if photometric in (2, 6) and spp in (3, 4):  # RGB, YCbCr (+ alpha)
        return spp, depth
    raise ImageReadError(
        f"{file}: TIFF photometric {photometric} with {spp} samples is not supported"
    )


def _tiff_palette_scale(colormap: np.ndarray) -> tuple[np.ndarray, float]:
    """Colormap entries and their maximum: TIFF stores 16-bit entries, but most writers
    store 8-bit colours either shifted (v << 8) or replicated (v * 257)."""
    cmap = np.asarray(colormap, dtype=np.uint16)
    if np.all(cmap % 256 == 0):
        return cmap // 256, 255.0
    if np.all(cmap % 257 == 0):
        return cmap // 257, 255.0
    return cmap, 65535.0


def _read_tiff(file: Path, limit: int) -> tuple[np.ndarray, float]:
    try:
        with tifffile.TiffFile(file) as tif:
            page = tif.pages[0]
            _check_pixels(file, page.imagewidth, page.imagelength, limit)
            channels, depth = _tiff_layout(page, file)
            if len(tif.pages) > 1:
                logger.info("%s: %d pages; reading the first", file, len(tif.pages))
            try:
                arr = page.asarray()
            except ValueError as err:
                if "imagecodecs" not in str(err):
                    raise
                # LZW and JPEG need the optional imagecodecs package; Pillow decodes
                # them too, losslessly for 8-bit data and 16-bit gray.
                if depth == 8 or (depth == 16 and channels == 1):
                    return _read_pil(file, "TIFF", limit)
                raise ImageReadError(
                    f"{file}: {page.compression.name}-compressed {depth}-bit TIFF needs "
                    "the imagecodecs package (pip install imagecodecs)"
                ) from err
            axes = page.axes
            photometric, bps = int(page.photometric), int(page.bitspersample)
            colormap = page.colormap
    except ImageReadError:
        raise
    except Exception as err:
        raise ImageReadError(f"{file}: cannot decode TIFF ({err})") from err
    if axes.startswith("S"):
        arr = np.moveaxis(arr, 0, -1)  # planar (separate) samples
    elif arr.ndim == 2:
        arr = arr[..., None]
    if photometric == 3:
        cmap, scale = _tiff_palette_scale(colormap)
        return np.moveaxis(cmap[:, arr[..., 0]], 0, -1), scale
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.kind == "f":
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise ImageReadError(f"{file}: float TIFF holds NaN or infinite values")
        if out.min() < 0 or out.max() > 1:
            logger.warning(
                "%s: float values in [%g, %g] clipped to [0, 1]", file, out.min(), out.max()
            )
            out = out.clip(0, 1)
        scale = 1.0
    else:
        out, scale = arr, float(2**bps - 1)
    if photometric == 0:  # MINISWHITE: 0 is white; the alpha channel is not inverted
        out = out.astype(np.float32)
        out[..., 0] = scale - out[..., 0]
    return out, scale


def _quantise(image: torch.Tensor, bit_depth: int, target: Path) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) float -> (H, W, C) uint8/uint16 (float32 for 32 bits)."""
    if not isinstance(image, torch.Tensor):
        raise ValueError(f"{target}: image must be a torch.Tensor, not {type(image).__name__}")
    x = image.detach()
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.ndim != 3 or not 1 <= x.shape[0] <= 4:
        raise ValueError(
            f"{target}: image must be (C, H, W) with C in 1..4, got {tuple(image.shape)}"
        )
    if not (x.is_floating_point() or x.dtype == torch.bool):
        raise ValueError(f"{target}: image must be float in [0, 1], not {x.dtype}")
    # float64 keeps v / 65535 * 65535 exact before rounding.
    x = x.to("cpu", torch.float64)
    if not torch.isfinite(x).all():
        raise ValueError(f"{target}: image holds NaN or infinite values")
    x = x.clamp(0, 1).permute(1, 2, 0)
    if bit_depth == 32:
        return x.to(torch.float32).numpy()
    dtype = np.uint8 if bit_depth == 8 else np.uint16
    return torch.round(x * (2**bit_depth - 1)).numpy().astype(dtype)


def _write_png16(tmp: Path, arr: np.ndarray) -> None:
    height, width, channels = arr.shape
    writer = png.Writer(
        width, height, greyscale=channels < 3, alpha=channels in (2, 4), bitdepth=16
    )
    rows = arr.astype(">u2").reshape(height, -1)  # PNG stores 16-bit samples big-endian
    with open(tmp, "wb") as f:
        writer.write_packed(f, (row.tobytes() for row in rows))


def _write_tiff(tmp: Path, arr: np.ndarray) -> None:
    channels = arr.shape[-1]
    tifffile.imwrite(
        tmp,
        arr[..., 0] if channels == 1 else arr,
        photometric="minisblack" if channels < 3 else "rgb",
        planarconfig=None if channels == 1 else "contig",
        extrasamples=("unassalpha",) if channels in (2, 4) else None,
        compression="zlib",  # lossless deflate, read by every TIFF reader we know
        metadata=None,
    )
