"""Train several recipes at once on a lent GPU machine, in one prepared call of the
workplace's ``device`` tool (maintainers only; restorekit never needs a GPU).

    python scripts/device_train.py pack             # here: .device/, shipped weights set aside
    # the device tool: run(command=<the line pack prints>, carry=[".device"], timeout_s=600)
    python scripts/device_train.py unpack FILES_AT  # here: weights back, runs in runs/device/

Why a kit: the device machine has PyTorch, scikit-image and scikit-learn but no internet,
no nibabel, pydicom, nilearn or dipy, and no apt wallpapers; and a call takes at most
64 MiB of working tree, less than the shipped weights (about 90 MB). So ``pack`` writes
``.device/`` (ignored by git, carried by the call): the ``mri`` source's slices as one
compressed array file, the wallpaper photos, and the shipped weights the runs start
from; and it moves ``restorekit/weights/*.safetensors`` to ``.device-home/`` (ignored,
not carried) until ``unpack`` puts them back (``git checkout restorekit/weights`` does
too). ``run`` (on the machine) starts every run of :data:`PLAN` at once on ``cuda``,
stops them at the deadline, and leaves per run one tar under ``$OUT`` holding what
``scripts/ship_weights.py`` reads: ``best.safetensors`` (float16, its metadata kept),
``log.csv`` and a slim checkpoint (the config, no optimizer state). Shipping stays a
decision made here, on validation, with ``ship_weights``.

Rehearse the whole call here before spending device time (a CPU, tiny batches, checks
every 20 steps; about 3 minutes; then ``unpack /tmp/rehearsal``):

    python scripts/device_train.py pack --only sr_casr_x3
    python scripts/device_train.py run --device cpu --minutes 2 --only sr_casr_x3 \
        --set train.val_every=20 train.batch_size=4 --out /tmp/rehearsal
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / ".device"
HOME = ROOT / ".device-home"  # the shipped weights while they are set aside
WEIGHTS = ROOT / "restorekit" / "weights"

PLAN = {
    # name: (recipe, init: a shipped name, overrides). Steps are an upper bound: the
    # deadline stops a run, whose best validated weights are kept.
    "photo_denoise": ("photo_denoise", "photo_denoise", [
        "data.mix.wallpapers=4", "train.freeze_bn=true", "train.stages.0.steps=40000",
        "train.stages.0.lr=1e-4", "train.stages.0.step_size=12000", "train.val_every=1000",
        "model.kwargs.pretrained=false"]),
    "defect_denoise": ("defect_denoise", "defect_denoise", [
        "data.mix.wallpapers=4", "train.freeze_bn=true", "train.stages.0.steps=20000",
        "train.stages.0.lr=5e-5", "train.stages.0.step_size=6000", "train.val_every=1000",
        "model.kwargs.pretrained=false"]),
    "defect_denoise_mse": ("defect_denoise_mse", "defect_denoise_mse", [
        "data.mix.wallpapers=4", "train.freeze_bn=true", "train.stages.0.steps=20000",
        "train.stages.0.lr=5e-5", "train.stages.0.step_size=6000", "train.val_every=1000",
        "model.kwargs.pretrained=false"]),
    "sr_edsr_x2": ("sr_edsr", "sr_edsr_x2", [
        "train.stages.0.steps=40000", "train.stages.0.lr=1e-4",
        "train.stages.0.step_size=12000", "train.val_every=1000"]),
    "sr_casr_x3": ("sr_casr", "sr_casr_x3", [
        "model.kwargs.scale=3", "data.degradation=bicubic_x3", "scale=3",
        "train.crop_border=3", "train.stages.0.steps=40000", "train.stages.0.lr=1e-4",
        "train.stages.0.step_size=12000", "train.stages.1.steps=300", "train.val_every=1000"]),
}  # fmt: skip
"""The runs of one call, all started at once (issues 10 and 12; haze is left out: its
perceptual loss needs the 57 MB HED weights, over the call's size)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    pack = sub.add_parser("pack", help="here: write .device/ and set the shipped weights aside")
    pack.add_argument("--minutes", type=float, default=8.0, help="the runs' deadline")
    pack.add_argument("--only", nargs="+", choices=sorted(PLAN), help="a subset of the plan")
    run = sub.add_parser("run", help="on the device machine: train the plan, tars to $OUT")
    run.add_argument("--minutes", type=float, default=8.0)
    run.add_argument("--device", default="cuda", help="cpu: a rehearsal of the call here")
    run.add_argument("--only", nargs="+", choices=sorted(PLAN))
    run.add_argument("--out", type=Path, default=None, help="default: $OUT")
    run.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="overrides for every run (a rehearsal: train.val_every=5)",
    )
    one = sub.add_parser("one", help="(internal) one run of the plan, with the kit's data")
    one.add_argument("name", choices=sorted(PLAN))
    one.add_argument("--device", default="cuda")
    one.add_argument("--workers", type=int, default=2)
    one.add_argument("--set", nargs="*", default=[])
    unpack = sub.add_parser("unpack", help="here: weights back, tars into runs/device/")
    unpack.add_argument("files", type=Path, nargs="?", help="the folder the tars came to")
    args = parser.parse_args()
    {"pack": _pack, "run": _run, "one": _one, "unpack": _unpack}[args.verb](args)


def _pack(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    from restorekit.data import get_source

    names = args.only or sorted(PLAN)
    shutil.rmtree(KIT, ignore_errors=True)
    (KIT / "init").mkdir(parents=True)
    examples = get_source("mri").load()
    arrays = {f"a{i}": _to_uint16(e.data) for i, e in enumerate(examples)}
    index = [{"name": e.name, "split": e.split} for e in examples]
    np.savez_compressed(KIT / "mri.npz", index=json.dumps(index), **arrays)
    for photo in get_source("wallpapers")._paths():
        target = KIT / "wallpapers" / photo.relative_to(photo.parents[3])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(photo, target)
    for name in names:
        shutil.copy2(WEIGHTS / f"{PLAN[name][1]}.safetensors", KIT / "init")
    HOME.mkdir(exist_ok=True)
    for file in WEIGHTS.glob("*.safetensors"):
        shutil.move(file, HOME / file.name)
    size = sum(f.stat().st_size for f in KIT.rglob("*") if f.is_file())
    only = f" --only {' '.join(names)}" if args.only else ""
    print(f".device/: {size / 2**20:.1f} MiB; shipped weights set aside in {HOME.name}/")
    print("device run, carry ['.device'], timeout_s 600:")
    print(f"PYTHONUNBUFFERED=1 python3 scripts/device_train.py run --minutes {args.minutes}{only}")


def _to_uint16(image: torch.Tensor) -> np.ndarray:
    """A [0, 1] slice as 16-bit integers: below 1e-5 off, far under the noise of MRI."""
    return (image.squeeze(0).clamp(0, 1) * 65535).round().to(torch.int32).numpy().astype(np.uint16)


def _run(args: argparse.Namespace) -> None:
    out = args.out or Path(os.environ["OUT"])
    names = args.only or sorted(PLAN)
    workers = max(1, (os.cpu_count() or 2) // len(names) - 1)
    procs = {}
    for name in names:
        log = open(KIT / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        cmd = [sys.executable, __file__, "one", name, "--device", args.device,
               "--workers", str(workers), "--set", *args.set]  # fmt: skip
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
    deadline = time.monotonic() + args.minutes * 60
    while time.monotonic() < deadline and any(p.poll() is None for p, _ in procs.values()):
        time.sleep(5)
    for proc, _ in procs.values():
        if proc.poll() is None:
            proc.terminate()
    for name, (proc, log) in procs.items():
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        print(f"== {name}: exit {proc.returncode}\n" + _tail(KIT / f"{name}.log", 8))
        _export(name, KIT / "runs" / name, out)


def _one(args: argparse.Namespace) -> None:
    """One run of the plan in this process, with the ``mri`` and wallpaper sources read
    from the kit (the machine has neither their packages nor their files)."""
    sys.path.insert(0, str(ROOT))
    os.environ["RESTOREKIT_WALLPAPERS"] = str(KIT / "wallpapers")
    from restorekit.cli import main as cli
    from restorekit.data import sources

    sources.MRIPool._find = lambda self: None
    sources.MRIPool.load = lambda self: _kit_mri()
    recipe, init, overrides = PLAN[args.name]
    cli(["train", recipe, *overrides, *args.set, f"init={KIT / 'init' / init}.safetensors",
         f"device={args.device}", f"train.num_workers={args.workers}", "train.progress=false",
         f"run_dir={KIT / 'runs' / args.name}"])  # fmt: skip


def _kit_mri() -> list:
    from restorekit.data import Example

    with np.load(KIT / "mri.npz") as kit:
        index = json.loads(str(kit["index"]))
        return [Example(e["name"], torch.from_numpy(kit[f"a{i}"].astype(np.float32) / 65535)[None],
                        split=e["split"]) for i, e in enumerate(index)]  # fmt: skip


def _export(name: str, run_dir: Path, out: Path) -> None:
    """``run_dir`` as ``out/NAME.tar``: float16 best weights, the log, a slim checkpoint."""
    from restorekit.train.checkpoint import LATEST, load_checkpoint
    from restorekit.train.checkpoint import load_weights as read

    best = run_dir / "best.safetensors"
    if not best.is_file():
        print(f"{name}: no validated weights to bring back")
        return
    from safetensors.torch import save

    state, meta = read(best)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    ckpt = load_checkpoint(run_dir)
    slim = io.BytesIO()
    torch.save({"config": ckpt.state["config"], "step": ckpt.step}, slim)
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out / f"{name}.tar", "w") as tar:
        header = {k: json.dumps(v) for k, v in meta.items()}
        _add(tar, "best.safetensors", save(half, metadata=header))
        _add(tar, "log.csv", (run_dir / "log.csv").read_bytes())
        _add(tar, LATEST, f"{ckpt.folder.name}\n".encode())
        _add(tar, f"{ckpt.folder.name}/state.pt", slim.getvalue())


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _tail(path: Path, n: int) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:])


def _unpack(args: argparse.Namespace) -> None:
    for file in HOME.glob("*.safetensors"):
        shutil.move(file, WEIGHTS / file.name)
    print(f"shipped weights back in {WEIGHTS.relative_to(ROOT)}")
    for tar_file in sorted(args.files.glob("*.tar")) if args.files else []:
        target = ROOT / "runs" / "device" / tar_file.stem
        shutil.rmtree(target, ignore_errors=True)
        with tarfile.open(tar_file) as tar:
            tar.extractall(target, filter="data")
        print(f"{tar_file.name} -> {target.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
