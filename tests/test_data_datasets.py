"""SyntheticPairs and PairedImages: seeded by (seed, epoch, index), aligned crops and flips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from restorekit.data import (
    DATASET_JSON,
    Example,
    PairedImages,
    SyntheticPairs,
    find_pairs,
    find_triplets,
    item_seed,
    open_dataset,
    pad_collate,
)
from restorekit.degrade import create_degradation, imresize
from restorekit.degrade.base import Degradation, Degraded
from restorekit.io import write_image


@pytest.fixture(scope="module")
def photos() -> list[Example]:
    g = torch.Generator().manual_seed(0)
    return [Example(f"p{i}", torch.rand(3, 24 + 4 * i, 28, generator=g)) for i in range(4)]


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a
    )


def test_same_seed_epoch_index_gives_same_pair(photos: list[Example]) -> None:
    ds = SyntheticPairs(photos, "gaussian_25", seed=7, crop=16, augment=True)
    first = [ds[i] for i in range(len(ds))]
    again = SyntheticPairs(photos, "gaussian_25", seed=7, crop=16, augment=True)
    # Any access order gives the same items.
    assert all(same(first[i], again[i]) for i in reversed(range(len(ds))))
    assert first[0]["name"] == "p0" and first[0]["lq"].shape == (3, 16, 16)
    other = SyntheticPairs(photos, "gaussian_25", seed=8, crop=16, augment=True)
    assert not torch.equal(other[0]["lq"], first[0]["lq"])


def test_epochs_differ_and_come_back(photos: list[Example]) -> None:
    ds = SyntheticPairs(photos, "gaussian_low", seed=0)
    e0 = ds[1]
    ds.set_epoch(1)
    e1 = ds[1]
    assert torch.equal(e0["gt"], e1["gt"])  # no crop: the clean image is whole
    assert not torch.equal(e0["lq"], e1["lq"])  # fresh noise each epoch
    ds.set_epoch(0)
    assert same(ds[1], e0)


def test_worker_count_does_not_change_the_data(photos: list[Example]) -> None:
    ds = SyntheticPairs(photos, "gaussian_high", seed=3, crop=16, augment=True)
    ds.set_epoch(2)
    single = list(DataLoader(ds, batch_size=2))
    multi = list(DataLoader(ds, batch_size=2, num_workers=2))
    assert all(same(a, b) for a, b in zip(single, multi, strict=True))


def test_item_seed_mixes_its_inputs() -> None:
    seeds = {item_seed(s, e, i) for s in range(3) for e in range(3) for i in range(3)}
    assert len(seeds) == 27
    assert all(0 <= s < 2**63 for s in seeds)


def test_noise_is_the_preset_noise(photos: list[Example]) -> None:
    item = SyntheticPairs([torch.full((1, 64, 64), 0.5)], "gaussian_25", seed=0)[0]
    assert abs(float((item["lq"] - item["gt"]).std()) - 25 / 255) < 0.01


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_super_resolution_pairs_are_modcropped_and_exact(photos: list[Example], scale: int) -> None:
    ds = SyntheticPairs(photos, f"bicubic_x{scale}", seed=0)
    item = ds[2]  # 32 x 28
    h, w = 32 - 32 % scale, 28 - 28 % scale
    assert item["gt"].shape == (3, h, w)
    assert item["lq"].shape == (3, h // scale, w // scale)
    assert torch.allclose(item["lq"], imresize(item["gt"][None], 1 / scale)[0], atol=1e-6)
    cropped = SyntheticPairs(photos, f"bicubic_x{scale}", seed=0, crop=4 * scale, augment=True)
    item = cropped[3]
    assert item["gt"].shape == (3, 4 * scale, 4 * scale) and item["lq"].shape == (3, 4, 4)
    # Degraded after cropping and flipping: lq is the downscale of this very gt.
    assert torch.allclose(item["lq"], imresize(item["gt"][None], 1 / scale)[0], atol=1e-6)
    with pytest.raises(ValueError, match="multiple of the scale"):
        SyntheticPairs(photos, f"bicubic_x{scale}", seed=0, crop=4 * scale + 1)


def test_masked_degradations_give_masks(photos: list[Example]) -> None:
    item = SyntheticPairs(photos, "salt_pepper", seed=1, crop=16, augment=True)[0]
    mask = item["mask"]
    assert mask.shape == (1, 16, 16)
    changed = (item["lq"] != item["gt"]).any(0, keepdim=True)
    assert torch.equal(changed, changed & (mask > 0))  # only masked pixels change


def test_haze_uses_the_examples_depth(photos: list[Example]) -> None:
    """Depth 0 on the left half, 1 on the right: with beta > 0 only the right is hazed."""
    image = torch.rand(3, 20, 20)
    depth = torch.zeros(1, 20, 20)
    depth[..., 10:] = 1.0
    item = SyntheticPairs([Example("scene", image, depth=depth)], "haze", seed=0)[0]
    assert torch.allclose(item["lq"][..., :10], image[..., :10], atol=1e-6)
    assert (item["lq"][..., 10:] - image[..., 10:]).abs().mean() > 0.05
    # Cropped and flipped, the depth must move with the image. With a grey airlight A,
    # lq_c - lq_c' = t * (gt_c - gt_c'), so t is recovered per pixel; with depth = the
    # image's blue channel, -log(t) = beta * scale * blue must hold at every pixel.
    g = torch.Generator().manual_seed(2)
    image = torch.rand(3, 20, 20, generator=g)
    image[0] = image[1] + 0.3 * torch.sign(torch.rand(20, 20, generator=g) - 0.5)
    image = image.clamp(0, 1)
    ex = Example("scene", image, depth=image[2:3].clone())
    ds = SyntheticPairs([ex], "haze", seed=0, crop=12, augment=True)
    for epoch in range(6):
        ds.set_epoch(epoch)
        item = ds[0]
        lq, gt = item["lq"].double(), item["gt"].double()
        diff = gt[0] - gt[1]
        ok = (diff.abs() > 0.2) & (gt[2] > 0.2)
        t = (lq[0] - lq[1])[ok] / diff[ok]
        ratio = -torch.log(t) / gt[2][ok]
        assert ok.sum() > 20
        assert float(ratio.std() / ratio.mean()) < 1e-3


def test_channels_and_small_image_errors(photos: list[Example]) -> None:
    gray = SyntheticPairs(photos, "gaussian_low", seed=0, channels=1)[0]
    assert gray["gt"].shape[0] == 1 and gray["lq"].shape[0] == 1
    with pytest.raises(ValueError, match=r"image 'p0'.*64x64 crop"):
        SyntheticPairs(photos, "gaussian_low", seed=0, crop=64)[0]
    with pytest.raises(ValueError, match="unknown degradation"):
        SyntheticPairs(photos, "nope", seed=0)
    with pytest.raises(ValueError, match="at least one"):
        SyntheticPairs([], "gaussian_low", seed=0)


def test_accepts_a_module_and_plain_tensors() -> None:
    ds = SyntheticPairs([torch.rand(1, 8, 8)], create_degradation("gaussian_low"), seed=0)
    assert ds[0]["name"] == "image_00000"


# ------------------------------------------------------------------------ file pairs


@pytest.fixture
def triplet_folder(tmp_path: Path) -> Path:
    """degraded = 1 - gt and mask = (gt > 0.5): any misalignment breaks these relations."""
    g = torch.Generator().manual_seed(1)
    for i, (h, w) in enumerate(((20, 24), (18, 30), (26, 22))):
        gt = (torch.rand(3, h, w, generator=g) * 255).round() / 255
        write_image(tmp_path / "gt" / f"im{i}.png", gt)
        write_image(tmp_path / "degraded" / f"im{i}.png", 1 - gt)
        write_image(tmp_path / "mask" / f"im{i}.png", (gt[:1] > 0.5).float())
    return tmp_path


def test_paired_images_crop_and_flip_triplets_together(triplet_folder: Path) -> None:
    ds = PairedImages(find_triplets(triplet_folder), crop=12, augment=True, seed=5)
    for epoch in range(3):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["gt"].shape == (3, 12, 12) and item["mask"].shape == (1, 12, 12)
            assert torch.allclose(item["lq"], 1 - item["gt"], atol=1e-6)
            assert torch.equal(item["mask"], (item["gt"][:1] > 0.5).float())
    a, b = ds[0], ds[0]
    assert same(a, b)


def up3(x: torch.Tensor) -> torch.Tensor:
    return x.repeat_interleave(3, -1).repeat_interleave(3, -2)


def test_paired_images_super_resolution_crop(tmp_path: Path) -> None:
    # gt is lq with each pixel repeated 3 x 3, a relation that flips and rotations keep.
    lq = torch.rand(1, 8, 12)
    write_image(tmp_path / "lq" / "x.png", lq)
    write_image(tmp_path / "gt" / "x.png", up3(lq))
    ds = PairedImages(find_pairs(tmp_path), crop=12, augment=True, seed=0)
    for epoch in range(5):
        ds.set_epoch(epoch)
        item = ds[0]
        assert item["lq"].shape == (1, 4, 4) and item["gt"].shape == (1, 12, 12)
        assert torch.equal(item["gt"], up3(item["lq"]))
    whole = PairedImages(find_pairs(tmp_path))[0]
    assert whole["gt"].shape == (1, 24, 36) and "mask" not in whole
    with pytest.raises(ValueError, match=r"gt/x\.png.*cannot take"):
        PairedImages(find_pairs(tmp_path), crop=48)[0]


def test_open_dataset_splits(triplet_folder: Path) -> None:
    # Without dataset.json: a 70/20/10 split of the sorted pairs by split_seed.
    parts = [open_dataset(triplet_folder, split=s) for s in ("train", "val")]
    names = [[p.name for p in ds.pairs] for ds in parts]
    assert sorted(names[0] + names[1]) == ["im0", "im1", "im2"]
    assert [len(n) for n in names] == [2, 1]
    with pytest.raises(ValueError, match="split 'test' is empty"):
        open_dataset(triplet_folder, split="test")
    # With dataset.json: its named splits.
    meta = {"layout": "triplet", "splits": {"train": ["im2"], "val": ["im0", "im1"]}}
    (triplet_folder / DATASET_JSON).write_text(json.dumps(meta))
    assert [p.name for p in open_dataset(triplet_folder, split="val").pairs] == ["im0", "im1"]
    with pytest.raises(ValueError, match="no split 'test'"):
        open_dataset(triplet_folder, split="test")
    meta["splits"]["train"] = ["im2", "gone"]
    (triplet_folder / DATASET_JSON).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="gone is listed but has no files"):
        open_dataset(triplet_folder, split="train")


def test_repeat_gives_each_image_its_own_crops(photos: list[Example]) -> None:
    ds = SyntheticPairs(photos, "gaussian_25", seed=0, crop=8, repeat=3)
    assert len(ds) == 3 * len(photos)
    names = [ds[i]["name"] for i in range(len(ds))]
    assert names == [p.name for p in photos] * 3
    # The same image at another position draws another crop and other noise.
    assert not torch.equal(ds[0]["lq"], ds[len(photos)]["lq"])
    with pytest.raises(IndexError):
        ds[len(ds)]
    with pytest.raises(ValueError, match="repeat"):
        SyntheticPairs(photos, "gaussian_25", seed=0, repeat=0)


def test_file_images_are_decoded_once_and_give_the_same_items(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(1)
    files = []
    for i in range(2):
        write_image(tmp_path / f"f{i}.png", torch.rand(3, 40, 36, generator=g))
        files.append(Example(f"f{i}", tmp_path / f"f{i}.png"))
    cached = SyntheticPairs(files, "gaussian_25", seed=0, crop=16, channels=1, repeat=2)
    uncached = SyntheticPairs(
        files, "gaussian_25", seed=0, crop=16, channels=1, repeat=2, cache_bytes=0
    )
    assert all(same(cached[i], uncached[i]) for i in range(len(cached)))
    assert len(cached._cache) == 2 and not uncached._cache
    (tmp_path / "f0.png").unlink()  # served from memory from now on
    assert cached[0]["gt"].shape == (1, 16, 16)


def test_resample_gives_clean_crops_the_spectrum_of_upscaled_images() -> None:
    photo = [torch.rand(1, 40, 40, generator=torch.Generator().manual_seed(2))]
    plain = SyntheticPairs(photo, "gaussian_low", seed=0, crop=16)[0]["gt"]
    same = SyntheticPairs(photo, "gaussian_low", seed=0, crop=16, resample=16)[0]["gt"]
    assert torch.allclose(same, plain, atol=1e-6)  # resampling at its own size: no change
    smooth = SyntheticPairs(photo, "gaussian_low", seed=0, crop=16, resample=6)[0]["gt"]

    def variation(x: torch.Tensor) -> float:
        return float((x[..., 1:, :] - x[..., :-1, :]).abs().mean())

    assert variation(smooth) < 0.5 * variation(plain)
    with pytest.raises(ValueError, match="resample"):
        SyntheticPairs(photo, "gaussian_low", seed=0, resample=1)


def test_zoom_cuts_crops_at_a_drawn_scale_and_shrinks_them() -> None:
    g = torch.Generator().manual_seed(3)
    photo, depth = torch.rand(3, 64, 64, generator=g), torch.rand(1, 64, 64, generator=g)
    # At zoom 0.5 the 64-pixel window of a 32-pixel crop is the whole image: its only
    # offset, so the crop is MATLAB imresize of the whole image, and the depth with it.
    item = SyntheticPairs([photo], "gaussian_low", seed=0, crop=32, augment=False,
                          zoom=(0.5, 0.5))[0]  # fmt: skip
    assert torch.equal(item["gt"], imresize(photo[None].double(), size=(32, 32))[0].float())

    class DepthAsImage(Degradation):  # lq = the depth map the dataset hands over
        inputs = ("depth",)

        def forward(self, x, *, generator, depth=None):
            return Degraded(depth.expand_as(x), None, {})

    example = Example("p", photo, depth=depth)
    item = SyntheticPairs([example], DepthAsImage(), seed=0, crop=32, augment=False,
                          zoom=(0.5, 0.5))[0]  # fmt: skip
    expected = imresize(depth[None].double(), size=(32, 32))[0].float()
    torch.testing.assert_close(item["lq"][:1], expected)
    # A window never passes the image's shorter side: zoom 0.1 on 64 pixels is zoom 0.5.
    far = SyntheticPairs([photo], "gaussian_low", seed=0, crop=32, augment=False,
                         zoom=(0.1, 0.1))[0]  # fmt: skip
    assert torch.equal(far["gt"], item["gt"])
    # An image smaller than the crop gives its shorter side's window, enlarged to the crop
    # (without zoom it is an error that names the image).
    small = torch.rand(3, 24, 24, generator=g)
    up = SyntheticPairs([small], "gaussian_low", seed=0, crop=32, augment=False,
                        zoom=(1.0, 1.0))[0]  # fmt: skip
    expected = imresize(small[None].double(), size=(32, 32))[0].clamp(0, 1).float()
    assert torch.equal(up["gt"], expected)
    with pytest.raises(ValueError, match="image 'p': cannot take a 32x32 crop"):
        SyntheticPairs([Example("p", small)], "gaussian_low", seed=0, crop=32)[0]
    for bad in ((0.0, 0.5), (0.6, 0.5), (0.5, 1.5)):
        with pytest.raises(ValueError, match="zoom"):
            SyntheticPairs([photo], "gaussian_low", seed=0, crop=32, zoom=bad)
    with pytest.raises(ValueError, match="needs a crop"):
        SyntheticPairs([photo], "gaussian_low", seed=0, crop=None, zoom=(0.5, 1))


def test_gray_fraction_makes_gray_items_with_one_channel_noise():
    ds = SyntheticPairs([torch.rand(3, 64, 64)], "gaussian_25", seed=0, crop=32,
                        gray_fraction=0.5, repeat=40)  # fmt: skip
    gray = [torch.equal(it["lq"][0], it["lq"][1]) for it in (ds[i] for i in range(len(ds)))]
    assert 5 < sum(gray) < 35  # about half, and the noise is the same in every channel
    item = next(ds[i] for i in range(len(ds)) if gray[i])
    assert torch.equal(item["gt"][0], item["gt"][2])
    never = SyntheticPairs([torch.rand(3, 64, 64)], "gaussian_25", seed=0, crop=32, repeat=8)
    assert not any(torch.equal(never[i]["lq"][0], never[i]["lq"][1]) for i in range(8))
    with pytest.raises(ValueError, match="gray_fraction"):
        SyntheticPairs([torch.rand(3, 8, 8)], "gaussian_25", seed=0, gray_fraction=1.5)


def test_haze_items_carry_its_transmission_and_airlight_through_crops_and_batches() -> None:
    photo = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(4))
    ds = SyntheticPairs([photo], "haze_wide", seed=0, crop=16, augment=True, repeat=6,
                        gray_fraction=0.5)  # fmt: skip
    items = [ds[i] for i in range(len(ds))]
    assert any(torch.equal(it["gt"][0], it["gt"][1]) for it in items)  # some are gray
    for it in items:
        t, a = it["transmission"], it["airlight"]
        assert t.shape == (1, 16, 16) and a.shape == (3,)
        remade = it["gt"] * t + a[:, None, None] * (1 - t)
        torch.testing.assert_close(remade, it["lq"], atol=1e-6, rtol=0)
    batch = pad_collate(items[:4])
    assert batch["transmission"].shape == (4, 1, 16, 16) and batch["airlight"].shape == (4, 3)
    assert "transmission" not in SyntheticPairs([photo], "gaussian_25", seed=0, crop=16)[0]
