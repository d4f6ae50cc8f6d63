"""Train several recipes at once on a lent GPU machine, in one prepared call of the
workplace's ``device`` tool (maintainers only; restorekit never needs a GPU).

    python scripts/device_train.py pack             # here: .device/, shipped weights set aside
    # the device tool: run(command=<the line pack prints>, carry=[".device"], timeout_s=600)
    python scripts/device_train.py unpack FILES_AT  # here: weights back, runs in runs/device/

Why a kit: the device machine has PyTorch, scikit-image and scikit-learn but no internet
and none of the apt photo pools; and a call takes at most 64 MiB of working tree, less
than the shipped weights (about 90 MB). So ``pack`` writes ``.device/`` (ignored by git,
carried by the call): the wallpaper photos, the gcompris bundles that hold photos (about
16 MB together), and the shipped weights the runs start from; and it moves
``restorekit/weights/*.safetensors`` to ``.device-home/`` (ignored, not carried) until
``unpack`` puts them back (``git checkout restorekit/weights`` does too). ``run`` (on the
machine) starts every run of :data:`PLAN` at once on ``cuda``, stops them at the
deadline, and leaves per run one tar under ``$OUT`` holding what
``scripts/ship_weights.py`` reads: ``best.safetensors`` (float16, its metadata kept),
``log.csv`` and a slim checkpoint (the config, no optimizer state). Shipping stays a
decision made here, on validation, with ``ship_weights``.

Rehearse the whole call here before spending device time (a CPU, tiny batches, checks
every 20 steps; about 3 minutes; then ``unpack /tmp/rehearsal``):

    python scripts/device_train.py pack
    python scripts/device_train.py run --device cpu --minutes 2 \
        --set train.val_every=20 train.batch_size=2 data.val_repeat=1 --out /tmp/rehearsal
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

import torch

ROOT = Path(__file__).resolve().parent.parent
KIT = ROOT / ".device"
HOME = ROOT / ".device-home"  # the shipped weights while they are set aside
WEIGHTS = ROOT / "restorekit" / "weights"

_PHOTOS = ["data.crop=192", "data.repeat=1", "data.zoom=[0.3, 1.0]", "data.mix.wallpapers=4",
           "data.mix.gcompris_photos=1", "train.freeze_bn=true", "train.ema_decay=0.999",
           "train.batch_size=16", "train.val_every=500", "train.stages.0.scheduler=cosine",
           "train.stages.0.min_lr=1e-6", "model.kwargs.pretrained=false"]  # fmt: skip
_HAZE = ["data.degradation_params.clear_fraction=0.2", "data.crop=256", "data.zoom=[0.5, 1.0]",
         "data.mix.wallpapers=4", "data.mix.gcompris_photos=1", "data.split_mix=true",
         "data.val_crop=256", "train.batch_size=8", "train.ema_decay=0.998",
         "train.val_every=250", "train.stages.0.scheduler=cosine", "train.stages.0.min_lr=1e-6",
         "train.stages.0.losses=[{name: l1}]"]  # fmt: skip

PLAN = {
    # name: (recipe, init: a shipped name, overrides). Steps are a guess at what the
    # deadline allows (the cosine falls over them); the deadline stops a run early, and
    # its best validated weights are kept.
    "photo_denoise_wide": ("photo_denoise", "photo_denoise", [*_PHOTOS,
        "model.kwargs.decoder_widths=[384, 256, 192, 128, 128]", "model.kwargs.full_skip=128",
        "train.stages.0.steps=6000", "train.stages.0.lr=1e-4"]),
    "photo_denoise": ("photo_denoise", "photo_denoise", [*_PHOTOS,
        "train.stages.0.steps=8000", "train.stages.0.lr=5e-5"]),
    "ffa_light": ("ffa_light_ea", "ffa_light", [*_HAZE,
        "train.stages.0.steps=4000", "train.stages.0.lr=1e-4"]),
}  # fmt: skip
"""The runs of one call, all started at once (issues 10 and 11). ``photo_denoise_wide``
grows the shipped network's decoder on init (resnet_unet.adapt_state_dict; 2 cores cannot
train that width far enough, stop 37), ``photo_denoise`` is its same-width control. The
haze run trains on L1 alone: its recipe's perceptual loss needs the 57 MB HED weights,
over what a call carries."""


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
    from restorekit.data.sources import GCOMPRIS_BUNDLES

    names = args.only or sorted(PLAN)
    shutil.rmtree(KIT, ignore_errors=True)
    (KIT / "init").mkdir(parents=True)
    for photo in get_source("wallpapers")._paths():
        target = KIT / "wallpapers" / photo.relative_to(photo.parents[3])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(photo, target)
    (KIT / "gcompris").mkdir()
    for bundle in GCOMPRIS_BUNDLES:
        shutil.copy2(get_source("gcompris_photos").root() / f"{bundle}.rcc", KIT / "gcompris")
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
    """One run of the plan in this process, with the apt photo pools read from the kit
    (the machine has neither the packages nor their files)."""
    sys.path.insert(0, str(ROOT))
    os.environ["RESTOREKIT_WALLPAPERS"] = str(KIT / "wallpapers")
    os.environ["RESTOREKIT_GCOMPRIS"] = str(KIT / "gcompris")
    from restorekit.cli import main as cli

    recipe, init, overrides = PLAN[args.name]
    cli(["train", recipe, *overrides, *args.set, f"init={KIT / 'init' / init}.safetensors",
         f"device={args.device}", f"train.num_workers={args.workers}", "train.progress=false",
         f"run_dir={KIT / 'runs' / args.name}"])  # fmt: skip


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
