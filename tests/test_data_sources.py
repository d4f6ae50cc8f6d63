"""The installed offline sources: what each yields, determinism, and clear messages when
an optional one (the apt wallpapers) is missing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restorekit.data import (
    BACKGROUNDS_ENV,
    KINDS,
    LOMIRI_PHOTOS,
    SOURCES,
    WALLPAPERS_ENV,
    Example,
    SourceUnavailableError,
    get_source,
    list_sources,
)
from restorekit.data.sources import PackageImages
from restorekit.degrade import imresize
from restorekit.io import write_image

SKIMAGE = pytest.importorskip("skimage.data")


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[Example]]:
    """Every available source, loaded once for the module."""
    return {name: src.load() for name, src in SOURCES.items() if src.available()}


def images(examples: list[Example]) -> list[torch.Tensor]:
    return [e.image for e in examples]


def test_registry_is_complete_and_typed() -> None:
    assert list_sources() == list(SOURCES)
    assert {"skimage_photos", "sklearn_photos", "wallpapers", "lfw_faces", "mni152"} <= set(SOURCES)
    assert {"dicom_mr", "motorcycle"} <= set(SOURCES)
    for name, src in SOURCES.items():
        assert src.name == name and src.kind in KINDS and src.description
    with pytest.raises(ValueError, match=r"unknown data source 'nope'; choose one of: skimage"):
        get_source("nope")


def test_every_source_yields_unit_range_images_with_unique_names(loaded) -> None:
    for name, examples in loaded.items():
        names = [e.name for e in examples]
        assert len(set(names)) == len(names), name
        for x in images(examples):
            assert x.dtype == torch.float32 and x.ndim == 3 and x.shape[0] in (1, 3), name
            assert float(x.min()) >= 0 and float(x.max()) <= 1, name
        # shapes() reads headers where it can; it must agree with the decoded images.
        assert SOURCES[name].shapes() == [tuple(x.shape) for x in images(examples)], name


def test_skimage_photos_are_the_wheel_files(loaded) -> None:
    photos = {e.name: e for e in loaded["skimage_photos"]}
    assert len(photos) == 13
    assert photos["astronaut"].image.shape == (3, 512, 512)
    assert photos["camera"].image.shape == (1, 512, 512)
    assert photos["retina"].image.shape == (3, 1411, 1411)
    expected = torch.from_numpy(SKIMAGE.astronaut()).permute(2, 0, 1).float() / 255
    assert torch.equal(photos["astronaut"].image, expected)
    assert torch.equal(photos["coins"].image[0], torch.from_numpy(SKIMAGE.coins()).float() / 255)


def test_sklearn_photos(loaded) -> None:
    if "sklearn_photos" not in loaded:
        pytest.skip("scikit-learn is not installed")
    assert [(e.name, tuple(e.image.shape)) for e in loaded["sklearn_photos"]] == [
        ("china", (3, 427, 640)),
        ("flower", (3, 427, 640)),
    ]


def test_lfw_faces_are_48x48_bicubic_resizes(loaded) -> None:
    faces = loaded["lfw_faces"]
    assert len(faces) == 100 and all(f.image.shape == (1, 48, 48) for f in faces)
    raw = torch.from_numpy(SKIMAGE.lfw_subset()[7])[None, None]
    assert torch.allclose(faces[7].image, imresize(raw, size=(48, 48))[0].clamp(0, 1).float())


def test_mri_sources(loaded) -> None:
    if "mni152" in loaded:
        mni = loaded["mni152"]
        assert all(e.image.shape == (1, 197, 233) for e in mni)
        # Empty edge slices are left out, the brain's are all there, in order.
        assert 100 < len(mni) < 189
        zs = [int(e.name.removeprefix("mni152_z")) for e in mni]
        assert zs == list(range(zs[0], zs[0] + len(zs)))
        assert all(float((e.image > 0.05).float().mean()) >= 0.05 for e in mni)
    if "dicom_mr" in loaded:
        mr = {e.name: e.image for e in loaded["dicom_mr"]}
        assert mr["MR2_UNCR"].shape == (1, 1024, 1024)
        assert len([n for n in mr if n.startswith("emri_small_f")]) == 10
        assert len(mr) == 13


def test_the_mri_pool_is_split_by_volume(loaded) -> None:
    if "mri" not in loaded:
        pytest.skip(get_source("mri").unavailable_reason())
    from restorekit.data.sources import MRI_VOLUMES

    pool = loaded["mri"]
    split_of = {v.name: v.split for v in MRI_VOLUMES}
    for e in pool:  # every slice (or tile) is named after its volume and sits in its split
        volume = next(n for n in split_of if e.name == n or e.name.startswith(n + "_"))
        assert e.split == split_of[volume], e.name
    names = {part: {e.name for e in pool if e.split == part} for part in ("train", "val", "test")}
    assert "t1_coronal" in names["test"] and "siemens_abdomen" in names["test"]
    assert not any(n.startswith("mni152") for n in names["val"] | names["test"])
    # The 1024x1024 shoulder is cut into training tiles of 256 (the empty ones dropped);
    # small slices stay whole.
    tiles = [e for e in pool if e.name.startswith("mr2_uncr_t")]
    assert 8 <= len(tiles) <= 16 and all(t.image.shape == (1, 256, 256) for t in tiles)
    assert all(float((e.image > 0.05).float().mean()) >= 0.05 for e in pool)


def test_motorcycle_has_depth_from_disparity(loaded) -> None:
    (moto,) = loaded["motorcycle"]
    assert moto.image.shape == (3, 500, 741) and moto.depth.shape == (1, 500, 741)
    assert float(moto.depth.min()) > 0 and float(moto.depth.max()) == 1
    _, _, disp = SKIMAGE.stereo_motorcycle()
    valid = np.isfinite(disp) & (disp > 0)
    # Depth is proportional to 1 / disparity where the disparity is known.
    prod = moto.depth[0].numpy()[valid] * disp[valid]
    assert np.allclose(prod, prod[0], rtol=1e-4)


def test_loading_is_deterministic(loaded) -> None:
    for name in ("lfw_faces", "skimage_photos", "motorcycle"):
        again = SOURCES[name].load()
        assert [e.name for e in again] == [e.name for e in loaded[name]]
        assert all(torch.equal(a.image, b.image) for a, b in zip(again, loaded[name], strict=True))


# ------------------------------------------------------------------- wallpapers (apt)


def test_wallpapers_missing_names_the_apt_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WALLPAPERS_ENV, str(tmp_path / "none"))
    src = get_source("wallpapers")
    assert not src.available()
    assert "sudo apt-get install plasma-workspace-wallpapers" in src.unavailable_reason()
    with pytest.raises(SourceUnavailableError, match="apt-get install plasma-workspace"):
        src.load()


def test_wallpapers_default_location_on_this_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WALLPAPERS_ENV, raising=False)
    src = get_source("wallpapers")
    assert str(src.root()) == "/usr/share/wallpapers"
    if Path("/usr/share/wallpapers/Kite").is_dir():
        pytest.skip("plasma-workspace-wallpapers is installed here")
    assert not src.available() and "plasma-workspace-wallpapers" in src.unavailable_reason()


def test_wallpapers_from_a_fake_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Photos by name, at 2560x1600 when present else the largest; renders are skipped."""
    for name, sizes in (("Kite", ("1920x1080", "2560x1600")), ("Path", ("640x480", "1280x800"))):
        for size in sizes:
            w, h = (int(v) // 80 for v in size.split("x"))  # tiny stand-ins, size in the name
            write_image(
                tmp_path / name / "contents" / "images" / f"{size}.jpg", torch.rand(3, h, w)
            )
    write_image(tmp_path / "Cluster" / "contents" / "images" / "2560x1600.png", torch.rand(3, 4, 4))
    monkeypatch.setenv(WALLPAPERS_ENV, str(tmp_path))
    src = get_source("wallpapers")
    assert src.available() and src.unavailable_reason() == ""
    photos = src.load()
    assert [e.name for e in photos] == ["Kite", "Path"]
    assert [e.data.name for e in photos] == ["2560x1600.jpg", "1280x800.jpg"]
    assert photos[0].image.shape == (3, 20, 32)
    assert src.summary() == "2 RGB 10x16..20x32"


def test_lomiri_photos_from_a_fake_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The named photos found, named before ``_by_``; a render beside them is skipped."""
    for file in (LOMIRI_PHOTOS[2], LOMIRI_PHOTOS[0], "Fossa_by_Jasper_Roks.jpg"):
        write_image(tmp_path / file, torch.rand(3, 6, 8))
    monkeypatch.setenv(BACKGROUNDS_ENV, str(tmp_path))
    src = get_source("lomiri_photos")
    assert [e.name for e in src.load()] == ["bridge", "kleiber"]  # the list's order
    assert src.summary() == "2 RGB 6x8"
    monkeypatch.setenv(BACKGROUNDS_ENV, str(tmp_path / "none"))
    assert "apt-get install lomiri-wallpapers-20.04" in src.unavailable_reason()
    with pytest.raises(SourceUnavailableError, match="RESTOREKIT_BACKGROUNDS"):
        src.load()


def test_missing_package_names_the_install_command() -> None:
    src = PackageImages(
        "ghost", "x", "photo", package="no_such_pkg_rk", folder="d", files=("a.png",),
        install="pip install no-such-pkg",
    )  # fmt: skip
    assert not src.available()
    assert "pip install no-such-pkg" in src.unavailable_reason()
    with pytest.raises(SourceUnavailableError, match=r"source 'ghost'.*pip install no-such-pkg"):
        src.load()


# ------------------------------------------------------------- gcompris photos (apt)


def _webp(width: int, height: int, seed: int) -> bytes:
    """A lossless WebP of a smooth random image (small to store, exact to decode)."""
    import io

    from PIL import Image

    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (height // 20 + 1, width // 20 + 1, 3), dtype=np.uint8)
    im = Image.fromarray(arr).resize((width, height), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, format="WEBP", lossless=True)
    return buf.getvalue()


def test_gcompris_photos_from_fake_bundles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_rcc
) -> None:
    """Each bundle's images of at least 300 pixels a side, named <bundle>_<stem>, held
    encoded and decoded exactly; icons and other files are skipped; a missing bundle
    names the apt package."""
    import io

    from PIL import Image

    from restorekit.data import GCOMPRIS_ENV
    from restorekit.data.sources import GCOMPRIS_BUNDLES

    photo = _webp(320, 300, seed=0)
    for k, bundle in enumerate(GCOMPRIS_BUNDLES):
        files = {f"gcompris/src/activities/{bundle}/resource/icon.webp": _webp(64, 64, 1)}
        files[f"gcompris/src/activities/{bundle}/Activity.qml"] = b"import QtQuick 2.12"
        if k < 2:
            files[f"gcompris/src/activities/{bundle}/resource/p{k}.webp"] = photo
        write_rcc(tmp_path / f"{bundle}.rcc", files, zlib_files=tuple(files)[1:])
    monkeypatch.setenv(GCOMPRIS_ENV, str(tmp_path))
    src = get_source("gcompris_photos")
    photos = src.load()
    assert [e.name for e in photos] == [f"{GCOMPRIS_BUNDLES[0]}_p0", f"{GCOMPRIS_BUNDLES[1]}_p1"]
    assert all(e.data == photo for e in photos)
    expected = torch.from_numpy(np.array(Image.open(io.BytesIO(photo)))).permute(2, 0, 1)
    assert torch.equal(photos[0].image, expected.float() / 255)
    assert src.summary() == "2 RGB 300x320"
    (tmp_path / f"{GCOMPRIS_BUNDLES[2]}.rcc").unlink()
    assert f"lacks {GCOMPRIS_BUNDLES[2]}.rcc" in src.unavailable_reason()
    with pytest.raises(SourceUnavailableError, match="apt-get install gcompris-qt-data"):
        src.load()


def test_gcompris_photos_on_this_machine() -> None:
    """Where gcompris-qt-data is installed: the 106 photos the docs count."""
    src = get_source("gcompris_photos")
    if not src.available():
        pytest.skip("gcompris-qt-data is not installed here")
    shapes = dict(zip([e.name for e in src.load()], src.shapes(), strict=True))
    assert len(shapes) == 106
    assert shapes["erase_alpaca"] == (3, 1080, 1920)
    assert sum(n.startswith("explore_monuments_") for n in shapes) == 49
