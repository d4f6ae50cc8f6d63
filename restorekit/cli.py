"""The ``restorekit`` command.

Every command imports torch and the library lazily, so ``restorekit --help`` is instant.
User errors (bad arguments, missing or broken files, unknown names) print one line,
``restorekit: error: ...``, and exit with code 2; a traceback means a bug in restorekit.
"""

from __future__ import annotations

import logging
import sys
import zlib
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

try:  # typer >= 0.29 vendors click; older typer uses click itself
    from typer.exceptions import TyperException as _UsageError
except ImportError:  # pragma: no cover
    from click import ClickException as _UsageError

app = typer.Typer(
    name="restorekit",
    help="Attention-based image restoration: denoising, dehazing and super-resolution.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EXIT_USER_ERROR = 2


class UserError(Exception):
    """An error in the user's input: reported as one line with exit code 2."""


def _fail(message: str) -> None:
    typer.echo(f"restorekit: error: {message}", err=True)


def _file_seed(seed: int, name: str) -> int:
    """A per-file seed that depends on the file's name, not on which other files exist.

    So degrading a folder gives each image the same noise whether it is processed alone
    or with others, and in any order.
    """
    return zlib.crc32(f"{seed}:{name}".encode()) & 0x7FFFFFFF


class OutFormat(str, Enum):
    png = "png"
    tif = "tif"


@app.command()
def degrade(
    input_dir: Annotated[Path, typer.Argument(help="Folder of clean images.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created).")],
    name: Annotated[
        str,
        typer.Option("--name", help="Degradation preset; `restorekit degradations` lists them."),
    ] = "gaussian_low",
    seed: Annotated[int, typer.Option(help="Seed; each file gets its own, from its name.")] = 0,
    fmt: Annotated[
        OutFormat, typer.Option("--format", help="Output format (lossless).")
    ] = OutFormat.png,
    max_pixels: Annotated[
        int | None, typer.Option(help="Refuse images with more pixels than this.")
    ] = None,
) -> None:
    """Apply a named degradation to every image of a folder.

    Outputs keep each input's name and bit depth (as PNG or TIFF, so nothing is lost to
    JPEG); an alpha channel is dropped. Salt-and-pepper and defect presets also write
    their corruption masks to OUT/masks/. A bad file is reported and skipped; the exit
    code is then 2.
    """
    from restorekit.degrade import create_degradation
    from restorekit.io import write_image
    from restorekit.utils import make_generator

    op = create_degradation(name)  # unknown names fail here, before any file is read
    batch = _ImageFolder(input_dir, out, src_flag="INPUT_DIR", max_pixels=max_pixels)
    for path, bit_depth, x in batch.images(f"degrade {name}"):
        result = op(x, generator=make_generator(_file_seed(seed, path.name)))
        write_image(out / f"{path.stem}.{fmt.value}", result.lq[0], bit_depth=bit_depth)
        if result.mask is not None:
            write_image(out / "masks" / f"{path.stem}.png", result.mask[0])
    batch.finish(f"wrote {{n}} images to {out} ({name}, seed {seed})")


@app.command()
def downsample(
    hr_dir: Annotated[Path, typer.Option("--hr-dir", help="Folder of high-resolution images.")],
    lr_dir: Annotated[Path, typer.Option("--lr-dir", help="Output folder for the LR images.")],
    scale: Annotated[int, typer.Option(help="Downscale factor: 2, 3 or 4.")] = 4,
    bicubic_up: Annotated[
        bool,
        typer.Option("--bicubic-up", help="Upscale the LR image back to HR size (pre-upsampling)."),
    ] = False,
    gray: Annotated[
        bool, typer.Option("--gray", help="Convert to grayscale (BT.601 luma).")
    ] = False,
) -> None:
    """Make low-resolution images with MATLAB-exact bicubic imresize (the field's convention).

    Each HR image is first cropped at its bottom and right to a multiple of the scale
    ("modcrop"), so the LR image times the scale has exactly the HR crop's size. Outputs
    are lossless PNG at the input's bit depth, named as the inputs; alpha is dropped.
    """
    from restorekit.degrade import imresize
    from restorekit.io import write_image

    if scale not in (2, 3, 4):
        raise UserError(f"--scale {scale}: choose 2, 3 or 4")
    batch = _ImageFolder(hr_dir, lr_dir, src_flag="--hr-dir")
    for path, bit_depth, hr in batch.images(f"downsample x{scale}"):
        hr = _to_gray(hr) if gray else hr
        h, w = (hr.shape[-2] // scale) * scale, (hr.shape[-1] // scale) * scale
        if h == 0 or w == 0:
            batch.skip(f"{path}: {hr.shape[-2]}x{hr.shape[-1]} is smaller than the scale {scale}")
            continue
        lr = imresize(hr[..., :h, :w].double(), 1 / scale)
        if bicubic_up:
            lr = imresize(lr, size=(h, w))
        write_image(lr_dir / f"{path.stem}.png", lr[0], bit_depth=bit_depth)
    batch.finish(f"wrote {{n}} LR images (x{scale}) to {lr_dir}")


class _ImageBatch:
    """Reads image files for a command that writes one output per image.

    It reports each bad file on one line and skips it, and makes the command exit with
    code 2 if any was bad.
    """

    def __init__(self, files: list[Path], *, max_pixels: int | None = None) -> None:
        self.files = files
        self.max_pixels = max_pixels
        self.bad = 0

    def images(self, desc: str, *, keep_alpha: bool = False):
        """Yield (path, bit depth to write: 8 or 16, (1, C, H, W) image) per readable file.

        The alpha channel is dropped unless ``keep_alpha``. 16-bit and float (32-bit
        TIFF) inputs are written with 16 bits, the rest with 8.
        """
        from restorekit.io import read_image, read_image_info

        limit = {} if self.max_pixels is None else {"max_pixels": self.max_pixels}
        for path in _progress(self.files, desc):
            try:
                bit_depth = 16 if read_image_info(path).bit_depth >= 16 else 8
                x = read_image(path, **limit)
            except (ValueError, OSError) as err:
                self.skip(str(err))
                continue
            yield path, bit_depth, x[None] if keep_alpha else x[None, : 3 if x.shape[0] >= 3 else 1]

    def skip(self, message: str) -> None:
        _fail(message)
        self.bad += 1

    def finish(self, summary: str) -> None:
        typer.echo(summary.format(n=len(self.files) - self.bad))
        if self.bad:
            raise typer.Exit(EXIT_USER_ERROR)


class _ImageFolder(_ImageBatch):
    """The images directly inside a folder (an :class:`_ImageBatch`).

    It refuses a missing input folder, one without images, or an output folder equal to it.
    """

    def __init__(
        self, src: Path, dst: Path, *, src_flag: str, max_pixels: int | None = None
    ) -> None:
        from restorekit.io import list_images

        if not src.is_dir():
            raise UserError(f"{src_flag} {src}: no such folder")
        if dst.resolve() == src.resolve():
            raise UserError(
                f"the output folder {dst} is the input folder: inputs are never overwritten"
            )
        files = list_images(src)
        if not files:
            raise UserError(f"{src_flag} {src}: no images found")
        super().__init__(files, max_pixels=max_pixels)


def _to_gray(x):  # torch is imported lazily, so no annotations
    """RGB -> gray with ITU-R BT.601 weights (what MATLAB rgb2gray uses); gray stays."""
    if x.shape[1] == 1:
        return x
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return 0.298936021293775 * r + 0.587043074451121 * g + 0.114020904255103 * b


def _progress(items: list, desc: str):
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="img", disable=None, file=sys.stderr)


@app.command("restore")
def restore_cmd(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="INPUT",
            help="Image files, or folders: the images directly inside (not sub-folders).",
        ),
    ],
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="A registered model (`restorekit models`) with --weights, a shipped "
            "weights name, a .safetensors file from training, or a run folder.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created).")],
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help="With a registered model: its .safetensors or .pth."),
    ] = None,
    tile: Annotated[
        int | None,
        typer.Option(help="Restore tiles of N input pixels a side (bounds memory); default whole."),
    ] = None,
    overlap: Annotated[int, typer.Option(help="Context around each tile, in pixels.")] = 32,
    ensemble: Annotated[
        bool, typer.Option("--ensemble", help="Average the 8 flips and rotations (8x slower).")
    ] = False,
    bf16: Annotated[
        bool, typer.Option("--bf16", help="bfloat16 autocast (fast on CPUs with AVX-512/AMX).")
    ] = False,
    suffix: Annotated[
        str, typer.Option("--suffix", help="Added to each output name, before the extension.")
    ] = "",
    fmt: Annotated[
        OutFormat, typer.Option("--format", help="Output format (lossless).")
    ] = OutFormat.png,
    device: Annotated[str, typer.Option(help="Where the model runs: cpu, cuda, ...")] = "cpu",
    max_pixels: Annotated[
        int | None, typer.Option(help="Refuse images with more pixels than this.")
    ] = None,
) -> None:
    """Restore images with a trained model: `restorekit restore photos/ --model run/ --out out/`.

    Each output is OUT/NAME{suffix}.png (or .tif), NAME being the input's file name
    without its extension, at the input's bit depth (16-bit and float inputs give 16-bit
    outputs) with any alpha channel passed through. Gray models restore RGB channel by
    channel; RGB models restore gray images as replicated RGB. Nothing is written when
    an output would replace an input file or two inputs would share an output. A bad
    file is reported and skipped; the exit code is then 2.
    """
    from restorekit.api import load_model
    from restorekit.api import restore as restore_image
    from restorekit.io import write_image

    if tile is not None and tile < 1:
        raise UserError(f"--tile {tile}: must be a positive number of pixels")
    if overlap < 0:
        raise UserError(f"--overlap {overlap}: must be 0 or more")
    if "/" in suffix or "\\" in suffix:
        raise UserError(f"--suffix {suffix!r}: must not contain a path separator")
    targets = _restore_targets(inputs, out, suffix=f"{suffix}.{fmt.value}")
    net = load_model(model, weights=weights, device=device)  # bad names fail before writing
    name = getattr(net, "model_name", model)
    batch = _ImageBatch(list(targets), max_pixels=max_pixels)
    for path, bit_depth, x in batch.images(f"restore {name}", keep_alpha=True):
        try:
            y = restore_image(
                x,
                model=net,
                tile=tile,
                overlap=overlap,
                ensemble=ensemble,
                bf16=bf16,
                device=device,
            )
        except ValueError as err:  # e.g. a channel count the model cannot take
            batch.skip(f"{path}: {err}")
            continue
        except RuntimeError as err:
            if "memory" not in str(err).lower():
                raise
            # One huge image should not stop the batch; tiles bound the memory.
            batch.skip(f"{path}: out of memory ({str(err).splitlines()[0]}); try --tile 512")
            continue
        write_image(targets[path], y, bit_depth=bit_depth)
    settings = f"tile {tile}, overlap {overlap}" if tile else "no tiling"
    used = net.weights_file or "none (untrained)"
    details = (
        f"to {out} with {name} (weights {used}, {settings}, ensemble {'on' if ensemble else 'off'})"
    )
    # finish() fills in {n} with str.format: braces in the paths must stay literal.
    details = details.replace("{", "{{").replace("}", "}}")
    batch.finish(f"restored {{n}} of {len(targets)} images {details}")


def _restore_targets(inputs: list[Path], out: Path, *, suffix: str) -> dict[Path, Path]:
    """Input file -> output file, in the order given (folders sorted by name).

    Refuses (UserError) a missing input, no images at all, an output that would be an
    input file, and two inputs that would be written to the same output.
    """
    from restorekit.io import list_images

    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            files += list_images(item)
        elif item.is_file():
            files.append(item)
        else:
            raise UserError(f"INPUT {item}: no such file or folder")
    unique: dict[Path, Path] = {}  # resolved -> as given; a file named twice counts once
    for file in files:
        unique.setdefault(file.resolve(), file)
    files = list(unique.values())
    if not files:
        raise UserError(f"no images found in {', '.join(map(str, inputs))}")
    targets: dict[Path, Path] = {}
    written: dict[Path, Path] = {}
    for file in files:
        target = out / f"{file.stem}{suffix}"
        key = target.resolve()
        if key in unique:
            raise UserError(
                f"{target} would replace the input {unique[key]}: inputs are never "
                "overwritten; choose another --out or a --suffix"
            )
        if key in written:
            raise UserError(
                f"{written[key]} and {file} would both be written to {target}; "
                "restore them separately"
            )
        written[key] = file
        targets[file] = target
    return targets


@app.command("eval")
def eval_cmd(
    data: Annotated[
        list[str],
        typer.Option(
            "--data",
            help="Repeatable: a source (`restorekit data list`), a folder of clean images, "
            "a FER2013 .csv, a volume, or a prepared dataset folder (scored on its pairs).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Folder for tables and the report.")],
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Repeatable: a shipped weights name, a .safetensors file, a run folder, or "
            "a registered model (untrained unless --weights).",
        ),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option("--weights", help="Weights for a single registered --model.")
    ] = None,
    baseline: Annotated[
        list[str] | None,
        typer.Option(
            "--baseline",
            help="Repeatable: NAME or NAME:key=value,... (median, gaussian, nlm, bm3d, "
            "bicubic, dcp), e.g. median:size=5.",
        ),
    ] = None,
    degradation: Annotated[
        list[str] | None,
        typer.Option("--degradation", help="Repeatable preset for clean data (default by kind)."),
    ] = None,
    seed: Annotated[int, typer.Option(help="Noise seed of the degradations.")] = 0,
    all_images: Annotated[
        bool, typer.Option("--all-images", help="Score every clean image, not the test split.")
    ] = False,
    limit: Annotated[int | None, typer.Option(help="Score only the first N of each task.")] = None,
    channels: Annotated[
        int | None, typer.Option(help="Convert the images to 1 or 3 channels.")
    ] = None,
    tile: Annotated[int | None, typer.Option(help="Tiled inference, N pixels a side.")] = None,
    report: Annotated[
        bool, typer.Option("--report/--no-report", help="Also write report.md and .html.")
    ] = True,
) -> None:
    """Score models and baselines on datasets x degradations; write CSV, JSON and a report.

    Super-resolution is scored on MATLAB luma with crop = scale, the rest on all channels
    without crop; every table states its protocol, and a fixed --seed gives identical
    numbers run to run. Clean images are scored on the test part of the 70/20/10 split
    that training uses (seed 0), unless --all-images.
    """
    from restorekit.evaluate import Method, evaluate, tasks_for

    if weights is not None and len(model or []) != 1:
        raise UserError("--weights goes with exactly one --model")
    methods = _eval_methods(model or [], baseline or [], weights)
    if not methods:
        raise UserError("name at least one --model or --baseline")
    # The images take the first model's channel count unless --channels says otherwise.
    counts = [getattr(module, "in_channels", None) for _, module, _ in methods]
    want = channels or next((c for c in counts if isinstance(c, int)), None)
    split = None if all_images else "test"
    tasks = [
        task
        for item in data
        for task in tasks_for(item, degradation or (), seed=seed, split=split, channels=want)
    ]
    results = evaluate(
        [Method(n, m, note) for n, m, note in methods], tasks, limit=limit, tile=tile, progress=True
    )
    results.write(out)
    if report:
        from restorekit.report import write_report

        write_report(results, out, title="restorekit evaluation")
    typer.echo(_summary_table(results))
    typer.echo(
        f"wrote {out}/results.csv, summary.csv, results.json"
        + (", report.md, report.html" if report else "")
    )


def _eval_methods(models: list[str], baselines: list[str], weights: Path | None) -> list:
    """(name, module, note) for each --model and --baseline, in the order given."""
    from restorekit.api import load_model
    from restorekit.baselines import create_baseline
    from restorekit.config import apply_overrides

    methods = []
    for spec in models:
        net = load_model(spec, weights=weights)
        name = Path(spec).stem if ("/" in spec or spec.endswith(".safetensors")) else spec
        note = f"weights {net.weights_file}" if not net.untrained else "untrained (random init)"
        methods.append((name, net, note))
    for spec in baselines:
        base, _, args = spec.partition(":")
        kwargs = apply_overrides({}, [a for a in args.split(",") if a])  # values as YAML
        module = create_baseline(base.strip(), **kwargs)
        methods.append((module.describe(), module, "classical baseline"))
    return methods


def _summary_table(results) -> str:  # -> the printed table, one block per task
    lines = []
    rows = results.summary()
    for key, protocol in results.protocols.items():
        lines += ["", f"{' / '.join(key)}  [{protocol.describe()}]"]
        lines.append(f"  {'method':36s} {'images':>6s} {'PSNR dB':>8s} {'SSIM':>7s}")
        for r in rows:
            if (r["dataset"], r["degradation"]) == key:
                lines.append(
                    f"  {r['method'][:36]:36s} {r['images']:6d} {r['psnr']:8.2f} {r['ssim']:7.4f}"
                )
    return "\n".join(lines)


@app.command("degradations")
def list_degradations_cmd() -> None:
    """List the degradation presets that `restorekit degrade --name` accepts."""
    from restorekit.degrade import create_degradation, list_degradations

    for name in list_degradations():
        typer.echo(f"{name:16s} {create_degradation(name)!r}")


@app.command(context_settings={"allow_interspersed_args": True})
def train(
    recipe: Annotated[
        str | None,
        typer.Argument(help="Recipe: a YAML path, or a packaged name (`restorekit recipes`)."),
    ] = None,
    overrides: Annotated[
        list[str] | None, typer.Argument(help="key=value settings, e.g. train.batch_size=8.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="Seed form: an SR model (srcnn, drrn, edsr, rdn, casr).")
    ] = None,
    scale: Annotated[int | None, typer.Option(help="Seed form: 2, 3 or 4.")] = None,
    gan: Annotated[bool, typer.Option("--gan", help="Seed form: also run the GAN stage.")] = False,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the run in the recipe's run_dir.")
    ] = False,
    smoke: Annotated[
        bool, typer.Option("--smoke", help="The recipe's tiny variant: 2 steps per stage.")
    ] = False,
) -> None:
    """Train a recipe: `restorekit train recipes/NAME.yaml [key=value ...]`.

    The seed's form works too: `restorekit train --model casr --scale 4 [--gan]`. Every
    key is checked before training starts. A run_dir that already holds a checkpoint is
    continued only with --resume, exactly where it stopped.
    """
    from restorekit.train.checkpoint import load_checkpoint
    from restorekit.train.recipe import build_trainer, find_recipe, load_recipe

    # The loop logs "Step N: Loss ..., SSIM ..., PSNR ..." at each validation, as the seeds.
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    settings = list(overrides or [])
    if recipe is not None and "=" in recipe:  # `train --model casr key=value`: no recipe
        settings.insert(0, recipe)
        recipe = None
    if model is not None:
        if recipe is not None:
            raise UserError("give a recipe or --model, not both")
        recipe = f"sr_{model}"
        settings += [f"gan={str(gan).lower()}"] + ([f"scale={scale}"] if scale else [])
    elif recipe is None:
        raise UserError("name a recipe (restorekit recipes lists them) or use --model")
    elif gan:
        settings.append("gan=true")
    config = load_recipe(find_recipe(recipe), tuple(settings), smoke=smoke)
    trainer = build_trainer(config)
    if load_checkpoint(trainer.run_dir) is not None and not resume:
        raise UserError(
            f"{trainer.run_dir} already holds a checkpoint: pass --resume to continue it, "
            "or run_dir=... for a new run"
        )
    scores = trainer.fit()
    if scores:
        typer.echo(
            f"{config.name}: step {trainer.step}: PSNR {scores['psnr']:.2f} dB, SSIM "
            f"{scores['ssim']:.4f} on {len(trainer.val_set)} validation images "
            f"({'Y' if config.train.y_channel else 'all channels'}, crop "
            f"{config.train.crop_border}, data range 1); weights in {trainer.run_dir}"
        )


@app.command("recipes")
def list_recipes_cmd() -> None:
    """List the packaged recipes, one per experiment of the four systems."""
    from restorekit.train.recipe import list_recipes, read_description

    for name in list_recipes():
        typer.echo(f"{name:28s} {read_description(name)}")


@app.command("models")
def list_models_cmd(
    size: Annotated[
        int, typer.Option(help="Output side in pixels at which MACs are counted.")
    ] = 256,
) -> None:
    """List the registered models with their parameters and multiply-accumulates.

    MACs count convolutions, matrix products and attention for one image whose output is
    about SIZE x SIZE (the input is SIZE // scale), at each model's default settings.
    """
    from restorekit.models import list_models
    from restorekit.models.summary import model_cost

    typer.echo(f"MACs: one image, output about {size}x{size}, default settings of each model")
    typer.echo(
        f"{'model':18s} {'params':>12s} {'GMACs':>9s} {'scale':>5s} {'input C x H x W':>16s}"
    )
    for name in list_models():
        cost = model_cost(name, output_size=size)
        shape = "x".join(map(str, cost.input_size))
        typer.echo(
            f"{name:18s} {cost.params:12,d} {cost.macs / 1e9:9.2f} {cost.scale:5d} {shape:>16s}"
        )


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="Folder for the report and tables.")] = Path(
        "out/demo"
    ),
    seed: Annotated[int, typer.Option(help="Noise seed.")] = 0,
) -> None:
    """The four systems on bundled real images, beside the classical baselines.

    Degrades real photos, faces, an MRI slice and the motorcycle scene with each system's
    presets, restores them with its models (shipped weights when present, else marked
    untrained) and with the baselines, and writes results and a report to OUT.
    """
    from restorekit.demo import run_demo

    results = run_demo(out, seed=seed)
    typer.echo(_summary_table(results))
    typer.echo(f"wrote {out}/report.html, report.md, results.csv, summary.csv, results.json")


data_app = typer.Typer(
    help="Data: installed sources, and dataset folders ready for training and evaluation.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")


@data_app.command("list")
def data_list(
    long: Annotated[
        bool, typer.Option("--long", "-l", help="Also say what each source yields.")
    ] = False,
) -> None:
    """List the offline data sources: kind, image count and sizes, and availability.

    Sizes are read from file headers (the MNI template is read whole, under a second).
    An unavailable source says what to install.
    """
    from restorekit.data import SOURCES
    from restorekit.data.prepare import DEFAULT_DEGRADATION

    typer.echo(f"{'source':15s} {'kind':6s} {'images (count, channels, HxW)':32s} status")
    for name, src in SOURCES.items():
        reason = src.unavailable_reason()
        images = "-" if reason else src.summary()
        typer.echo(f"{name:15s} {src.kind:6s} {images:32s} {reason or 'available'}")
        if long:
            typer.echo(f"{'':15s} {src.description}")
    defaults = ", ".join(f"{kind}: {deg}" for kind, deg in DEFAULT_DEGRADATION.items())
    typer.echo(f"`restorekit data prepare` degrades by kind unless told: {defaults}")


@data_app.command("prepare")
def data_prepare(
    source: Annotated[
        str,
        typer.Argument(
            help="A source from `restorekit data list`, or a FER2013 .csv, a NIfTI/DICOM/"
            "fastMRI .h5 volume or folder, or a folder of images."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder (new or empty).")],
    degradation: Annotated[
        str | None,
        typer.Option(
            "--degradation",
            help="Preset (`restorekit degradations`); default by the source's kind.",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of crops, degradations and the split.")] = 0,
    limit: Annotated[int | None, typer.Option(help="Use only the first N images.")] = None,
    crop: Annotated[
        int | None, typer.Option(help="Take a seeded random NxN patch of each clean image.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a folder written by an earlier `data prepare`."),
    ] = False,
) -> None:
    """Write a dataset folder: gt/ + lq/ (or degraded/ + mask/ + gt/) + dataset.json.

    Each clean image is degraded once with its own seed (from --seed and its index);
    degradations with a mask (salt_pepper, defects) give the triplet layout. SR presets
    (bicubic_xN) modcrop gt to a multiple of the scale. dataset.json records the source,
    degradation, seed, layout and a train/val/test split (FER2013's own Usage, else
    70/20/10 by seed). A non-empty OUT is refused; --force replaces only a folder that
    holds a dataset.json, and only its gt/, lq/, degraded/, mask/ and dataset.json.
    """
    from restorekit.data.prepare import prepare_dataset

    meta = prepare_dataset(
        source,
        out,
        degradation=degradation,
        seed=seed,
        limit=limit,
        crop=crop,
        force=force,
        progress=lambda items: _progress(list(items), f"prepare {source}"),
    )
    sizes = ", ".join(f"{k} {len(v)}" for k, v in meta["splits"].items())
    typer.echo(
        f"wrote {meta['count']} images ({meta['layout']} layout, {meta['degradation']}, "
        f"seed {seed}) to {out} [{sizes}]"
    )


export_app = typer.Typer(help="Export a model for other runtimes (ONNX).", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def export_onnx_cmd(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            help="A shipped weights name, a .safetensors file, a run folder, or a registered "
            "model (untrained unless --weights).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="The .onnx file to write.")],
    weights: Annotated[
        Path | None,
        typer.Option("--weights", help="Weights (.safetensors or .pth) for a registered --model."),
    ] = None,
    height: Annotated[
        int, typer.Option(help="Input height of a --static export (and of the fallback).")
    ] = 256,
    width: Annotated[
        int, typer.Option(help="Input width of a --static export (and of the fallback).")
    ] = 256,
    static: Annotated[
        bool, typer.Option("--static", help="Fix the input size to --height x --width.")
    ] = False,
    opset: Annotated[int, typer.Option(help="ONNX opset (18 or later).")] = 18,
) -> None:
    """Export a model to ONNX, checked against PyTorch with onnxruntime.

    The file takes `lq`, (B, C, H, W) float32 in [0, 1], and returns `restored`,
    (B, C, scale*H, scale*W); discriminators take `image` and return `logits`. H and W
    are dynamic unless --static, or unless the model cannot be exported so: then the
    file takes --height x --width only and a warning says why. The model name, its
    arguments, scale and size multiple are stored in the file's metadata. Needs
    `pip install 'restorekit[onnx]'`.
    """
    from restorekit.api import load_model
    from restorekit.export import export_onnx

    net = load_model(model, weights=weights)
    info = export_onnx(net, out, height=height, width=width, dynamic=not static, opset=opset)
    axes = "any H x W" if info.dynamic else f"{info.height}x{info.width} inputs only"
    trained = "untrained (random init)" if net.untrained else f"weights {net.weights_file}"
    typer.echo(
        f"wrote {info.path}: {info.model_name}, {trained}, {axes}, opset {info.opset}, "
        f"{info.input_name} -> {info.output_name}, max |onnx - torch| {info.max_abs_error:.1e}"
    )
    if not info.dynamic and not static:
        typer.echo(f"restorekit: warning: {info.static_reason}", err=True)


def run(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code: 0, 2 for a user error, 130 aborted."""
    try:
        code = app(args=argv, standalone_mode=False)
    except typer.Exit as done:
        return int(done.exit_code)
    except typer.Abort:
        _fail("aborted")
        return 130
    except _UsageError as err:
        ctx = getattr(err, "ctx", None)
        where = f"{ctx.command_path}: " if ctx is not None else ""
        _fail(where + err.format_message())
        return EXIT_USER_ERROR
    except (UserError, ValueError, FileNotFoundError, NotADirectoryError, ImportError) as err:
        _fail(str(err))
        return EXIT_USER_ERROR
    return code if isinstance(code, int) else 0


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the app, turning user errors into one line and exit code 2."""
    code = run(argv)
    if code:
        sys.exit(code)
