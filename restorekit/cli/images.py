"""Commands on image folders: degrade, downsample, restore, and the presets' list."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Annotated

import typer

from restorekit.cli._app import (
    EXIT_USER_ERROR,
    MODEL_HELP,
    MemoryFormatOption,
    OutFormat,
    PrecisionOption,
    UserError,
    WeightsOption,
    _fail,
    _progress,
    app,
    resolve_numerics,
    tile_progress,
)


def _file_seed(seed: int, name: str) -> int:
    """A per-file seed that depends on the file's name, not on which other files exist.

    So degrading a folder gives each image the same noise whether it is processed alone
    or with others, and in any order.
    """
    return zlib.crc32(f"{seed}:{name}".encode()) & 0x7FFFFFFF


OverwriteOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace outputs already in --out (from another run).")
]
SkipExistingOption = Annotated[
    bool, typer.Option("--skip-existing", help="Keep outputs already in --out; do only the rest.")
]


@app.command()
def degrade(
    input_dir: Annotated[Path, typer.Argument(help="Folder of clean images.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created).")],
    name: Annotated[
        str,
        typer.Option(
            "--name",
            help="Degradation operator or preset, or a spec such as "
            "'bicubic:scale=4 + gaussian:sigma=0.05'; `restorekit degradations` lists them.",
        ),
    ] = "gaussian_low",
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", help="Repeatable KEY=VALUE parameter of --name (YAML value): sigma=0.1."
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed; each file gets its own, from its name.")] = 0,
    fmt: Annotated[
        OutFormat, typer.Option("--format", help="Output format (lossless).")
    ] = OutFormat.png,
    max_pixels: Annotated[
        int | None, typer.Option(help="Refuse images with more pixels than this.")
    ] = None,
    overwrite: OverwriteOption = False,
    skip_existing: SkipExistingOption = False,
) -> None:
    """Apply a named degradation, with its parameters, to every image of a folder.

    Outputs keep each input's name and bit depth (as PNG or TIFF, so nothing is lost to
    JPEG); an alpha channel is dropped. Salt-and-pepper and defect presets also write
    their masks to OUT/masks/; surface_defects, which changes the scene, also writes the
    new ground truth to OUT/gt/ (so OUT is a triplet folder). A bad file is reported and
    skipped; the exit code is then 2.
    """
    from restorekit.config import apply_overrides
    from restorekit.degrade import create_degradation
    from restorekit.utils import make_generator

    # Unknown names and parameters fail here, before any file is read.
    op = create_degradation(name, **apply_overrides({}, param or []))
    batch = _ImageFolder(input_dir, out, src_flag="INPUT_DIR", max_pixels=max_pixels)
    targets = batch.plan(out, f".{fmt.value}", overwrite=overwrite, skip_existing=skip_existing)
    for path, bit_depth, x in batch.images(f"degrade {name}"):
        result = op(x, generator=make_generator(_file_seed(seed, path.name)))
        batch.write(path, targets[path], result.lq[0], bit_depth=bit_depth)
        if result.mask is not None:
            batch.write(path, out / "masks" / f"{path.stem}.png", result.mask[0])
        if result.gt is not None:  # the scene changed (surface defects): its new truth
            batch.write(path, out / "gt" / f"{path.stem}.png", result.gt[0], bit_depth=bit_depth)
    batch.finish(f"wrote {{n}} images to {out} ({op.spec}: {op!r}, seed {seed})")


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
    overwrite: OverwriteOption = False,
    skip_existing: SkipExistingOption = False,
) -> None:
    """Make low-resolution images with MATLAB-exact bicubic imresize (the field's convention).

    Each HR image is first cropped at its bottom and right to a multiple of the scale
    ("modcrop"), so the LR image times the scale has exactly the HR crop's size. Outputs
    are lossless PNG at the input's bit depth, named as the inputs; alpha is dropped.
    """
    from restorekit.degrade import imresize
    from restorekit.utils import rgb_to_gray

    if scale not in (2, 3, 4):
        raise UserError(f"--scale {scale}: choose 2, 3 or 4")
    batch = _ImageFolder(hr_dir, lr_dir, src_flag="--hr-dir")
    targets = batch.plan(lr_dir, ".png", overwrite=overwrite, skip_existing=skip_existing)
    for path, bit_depth, hr in batch.images(f"downsample x{scale}"):
        hr = rgb_to_gray(hr) if gray else hr
        h, w = (hr.shape[-2] // scale) * scale, (hr.shape[-1] // scale) * scale
        if h == 0 or w == 0:
            batch.skip(f"{path}: {hr.shape[-2]}x{hr.shape[-1]} is smaller than the scale {scale}")
            continue
        lr = imresize(hr[..., :h, :w].double(), 1 / scale)
        if bicubic_up:
            lr = imresize(lr, size=(h, w))
        batch.write(path, targets[path], lr[0], bit_depth=bit_depth)
    batch.finish(f"wrote {{n}} LR images (x{scale}) to {lr_dir}")


class _ImageBatch:
    """Reads image files for a command that writes one output per image.

    It reports each bad file on one line and skips it, and makes the command exit with
    code 2 if any was bad.
    """

    def __init__(self, files: list[Path], *, max_pixels: int | None = None) -> None:
        from restorekit.io import volume_name

        self.files = files
        # Each volume's NIfTI output name (restorekit.io.volume_name), told once per file.
        self.volume_names = {f: name for f in files if (name := volume_name(f))}
        self.max_pixels = max_pixels
        self.bad = 0
        self.kept = 0  # outputs already there, kept by --skip-existing

    def plan(
        self,
        out: Path,
        suffix: str,
        *,
        volume_suffix: str = "",
        overwrite: bool = False,
        skip_existing: bool = False,
    ) -> dict[Path, Path]:
        """Each input's output ``out/STEM{suffix}`` (a volume's NIfTI name with
        ``volume_suffix``: see :func:`_output_targets`), checked before any work is done.

        Refuses (UserError) an output that would be an input, two inputs with one output
        (``a.jpg`` and ``a.png``), an output path that is a folder, and outputs already
        there unless ``overwrite`` (replace them) or ``skip_existing`` (keep them, and
        drop their inputs from the batch). Temporaries left by a killed run are removed.
        """
        from restorekit.utils import remove_stale_temporaries

        if overwrite and skip_existing:
            raise UserError("--overwrite and --skip-existing exclude each other")
        if out.exists() and not out.is_dir():
            raise UserError(f"--out {out}: exists and is not a folder")
        for stale in remove_stale_temporaries(out):
            typer.echo(f"restorekit: removed {stale}, left by a run that was killed", err=True)
        targets = _output_targets(
            self.files, out, suffix=suffix, volumes=self.volume_names, volume_suffix=volume_suffix
        )
        there = [t for t in targets.values() if t.exists() or t.is_symlink()]
        if any(t.is_dir() for t in there):
            raise UserError(f"{next(t for t in there if t.is_dir())}: an output is a folder")
        if there and skip_existing:
            self.kept, kept = len(there), set(there)
            targets = {f: t for f, t in targets.items() if t not in kept}
            self.files = list(targets)
        elif there and not overwrite:
            raise UserError(
                f"{there[0]} already exists ({len(there)} of {len(targets)} outputs are in "
                f"{out}, from another run?): pass --overwrite to replace them or "
                "--skip-existing to keep them"
            )
        elif there:
            typer.echo(f"restorekit: replacing {len(there)} outputs already in {out}", err=True)
        return targets

    def write(self, source: Path, target: Path, image, **kwargs) -> bool:
        """Write one output atomically; an OS error (full disk, read-only folder) is
        reported on one line naming the file, and the batch goes on."""
        from restorekit.io import write_image

        try:
            write_image(target, image, **kwargs)
        except OSError as err:
            self.skip(f"{source}: cannot write {target}: {err.strerror or err}")
            return False
        return True

    def images(self, desc: str, *, keep_alpha: bool = False):
        """Yield (path, bit depth to write: 8 or 16, (1, C, H, W) image) per readable file.

        The alpha channel is dropped unless ``keep_alpha``. 16-bit and float (32-bit
        TIFF) inputs are written with 16 bits, the rest with 8.
        """
        from restorekit.io import read_image, read_image_info

        limit = {} if self.max_pixels is None else {"max_pixels": self.max_pixels}
        for path in _progress([f for f in self.files if f not in self.volume_names], desc):
            try:
                bit_depth = 16 if read_image_info(path).bit_depth >= 16 else 8
                x = read_image(path, **limit)
            except (ValueError, OSError) as err:
                self.skip(str(err))
                continue
            yield path, bit_depth, x[None] if keep_alpha else x[None, : 3 if x.shape[0] >= 3 else 1]

    def volumes(self, desc: str):
        """Yield each volume's path: NIfTI, DICOM, a DICOM series folder (:meth:`images`
        yields the rest)."""
        yield from _progress([f for f in self.files if f in self.volume_names], desc)

    def skip(self, message: str) -> None:
        _fail(message)
        self.bad += 1

    def finish(self, summary: str) -> None:
        kept = f"; kept {self.kept} already there" if self.kept else ""
        typer.echo(summary.format(n=len(self.files) - self.bad) + kept)
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


@app.command("restore")
def restore_cmd(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            metavar="INPUT",
            help="Image files, NIfTI volumes (.nii, .nii.gz), DICOM files, or folders: the "
            "images and NIfTI volumes directly inside (not sub-folders), else the DICOM "
            "series they hold.",
        ),
    ],
    model: Annotated[str, typer.Option("--model", help=MODEL_HELP)],
    out: Annotated[Path, typer.Option("--out", help="Output folder (created).")],
    weights: WeightsOption = None,
    tile: Annotated[
        int | None,
        typer.Option(help="Restore tiles of N input pixels a side (bounds memory); default whole."),
    ] = None,
    overlap: Annotated[int, typer.Option(help="Context around each tile, in pixels.")] = 32,
    ensemble: Annotated[
        bool,
        typer.Option(
            "--ensemble",
            help="Average the 8 flips and rotations (8x slower); a model trained on "
            "mirrors only (the face U-Nets): it and its mirror (2x).",
        ),
    ] = False,
    precision: PrecisionOption = "auto",
    memory_format: MemoryFormatOption = "auto",
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
    memory_budget: Annotated[
        float | None,
        typer.Option(
            help="GB the untiled forward may use before restore tiles by itself "
            "(default: half the RAM)."
        ),
    ] = None,
    overwrite: OverwriteOption = False,
    skip_existing: SkipExistingOption = False,
) -> None:
    """Restore images with a trained model: `restorekit restore photos/ --model run/ --out out/`.

    Each output is OUT/NAME{suffix}.png (or .tif), NAME being the input's file name
    without its extension, at the input's bit depth (16-bit and float inputs give 16-bit
    outputs) with any alpha channel passed through. Gray models restore RGB channel by
    channel; RGB models restore gray images as replicated RGB. A NIfTI volume is
    restored slice by slice along its third axis (every volume of a 4D file) and written
    as OUT/NAME{suffix}.nii[.gz], float32 in its own intensity units; after
    super-resolution its affine and voxel sizes describe the finer grid (same field of
    view). A DICOM file, or a folder holding a DICOM series, is written the same way as
    OUT/NAME{suffix}.nii.gz. Nothing is written when an output would replace an input
    file or two inputs would share an output. A bad file is reported and skipped; the
    exit code is then 2.
    """
    from restorekit.api import load_model, restore_volume
    from restorekit.api import restore as restore_image
    from restorekit.baselines import Baseline
    from restorekit.inference import ensemble_words

    if tile is not None and tile < 1:
        raise UserError(f"--tile {tile}: must be a positive number of pixels")
    if overlap < 0:
        raise UserError(f"--overlap {overlap}: must be 0 or more")
    if memory_budget is not None and not memory_budget > 0:
        raise UserError(f"--memory-budget {memory_budget}: must be a positive number of GB")
    budget = "auto" if memory_budget is None else int(memory_budget * 1e9)
    if "/" in suffix or "\\" in suffix:
        raise UserError(f"--suffix {suffix!r}: must not contain a path separator")
    batch = _ImageBatch(_input_files(inputs), max_pixels=max_pixels)
    net = load_model(model, weights=weights, device=device)  # bad names fail before writing
    numerics = resolve_numerics(precision, memory_format, device, net)  # checks, and the summary
    classical = isinstance(net, Baseline)
    name = net.describe() if classical else getattr(net, "model_name", model)
    targets = batch.plan(
        out,
        f"{suffix}.{fmt.value}",
        volume_suffix=suffix,
        overwrite=overwrite,
        skip_existing=skip_existing,
    )
    told = False
    for path, bit_depth, x in batch.images(f"restore {name}", keep_alpha=True):
        if not told and (note := _outside_domain(getattr(net, "domain", None), x, name)):
            typer.echo(f"restorekit: note: {note}", err=True)  # once per run, then it runs
            told = True
        try:
            y = restore_image(
                x,
                model=net,
                tile=tile,
                overlap=overlap,
                ensemble=ensemble,
                precision=precision,
                memory_format=memory_format,
                device=device,
                progress=tile_progress(path.name) if tile else None,
                memory_budget=budget,
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
        batch.write(path, targets[path], y, bit_depth=bit_depth)
    for path in batch.volumes(f"restore {name}"):
        try:
            restore_volume(path, targets[path], model=net, tile=tile, overlap=overlap,
                           ensemble=ensemble, precision=precision, memory_format=memory_format,
                           device=device, memory_budget=budget)  # fmt: skip
        except (ValueError, ImportError) as err:  # unreadable, or nibabel missing
            message = str(err)
            batch.skip(message if message.startswith(str(path)) else f"{path}: {message}")
        except OSError as err:
            batch.skip(f"{path}: cannot write {targets[path]}: {err.strerror or err}")
    settings = f"tile {tile}, overlap {overlap}" if tile else "no tiling"
    used = net.weights_file or ("none: a classical baseline" if classical else "none (untrained)")
    details = (
        f"to {out} with {name} (weights {used}, {settings}, "
        f"ensemble {f'on ({ensemble_words(net)})' if ensemble else 'off'}, {numerics.describe()})"
    )
    # finish() fills in {n} with str.format: braces in the paths must stay literal.
    details = details.replace("{", "{{").replace("}", "}}")
    volumes = sum(f in batch.volume_names for f in targets)
    what = {0: "images", len(targets): "volumes"}.get(volumes, "images and volumes")
    batch.finish(f"restored {{n}} of {len(targets)} {what} {details}")


def _outside_domain(domain: dict | None, x, name: str) -> str | None:
    """A one-line note when an image is far from what the weights were trained on (an
    image over twice their training size, or colour for a gray model), else None."""
    if not domain:
        return None
    size, channels = domain.get("size"), domain.get("channels")
    h, w, c = x.shape[-2], x.shape[-1], x.shape[1]
    larger = isinstance(size, int) and max(h, w) > 2 * size
    colour = channels == 1 and c >= 3
    if not (larger or colour):
        return None
    what = f"{w}x{h} {'colour' if c >= 3 else 'gray'}"
    how = " (colour is restored channel by channel)" if colour else ""
    return (
        f"{name} was trained on {domain.get('description', 'other images')}; this image is "
        f"{what}{how}, so expect less than its card's scores"
    )


def _input_files(inputs: list[Path]) -> list[Path]:
    """The files named, folders expanded to their images and NIfTI volumes (sorted by
    name), each file once; a folder with neither stands for the DICOM series it holds.

    Refuses (UserError) a missing input and no images at all.
    """
    from restorekit.io import list_images, nifti_stem, volume_name

    files: list[Path] = []
    for item in inputs:
        if item.is_dir():
            volumes = [f for f in item.iterdir() if f.is_file() and nifti_stem(f) is not None]
            inside = sorted(list_images(item) + volumes, key=lambda f: f.name)
            files += inside or ([item] if volume_name(item) else [])
        elif item.is_file():
            files.append(item)
        else:
            raise UserError(f"INPUT {item}: no such file or folder")
    unique: dict[Path, Path] = {}  # resolved -> as given; a file named twice counts once
    for file in files:
        unique.setdefault(file.resolve(), file)
    if not unique:
        raise UserError(f"no images or volumes found in {', '.join(map(str, inputs))}")
    return list(unique.values())


def _output_targets(
    files: list[Path],
    out: Path,
    *,
    suffix: str,
    volumes: dict[Path, tuple[str, str]],
    volume_suffix: str = "",
) -> dict[Path, Path]:
    """Input file -> ``out/STEM{suffix}``, in order; a volume (a key of ``volumes``, which
    holds its NIfTI stem and suffix: :func:`restorekit.io.volume_name`) -> that name with
    ``volume_suffix`` (``scan.nii.gz`` -> ``out/scan{volume_suffix}.nii.gz``).

    Refuses (UserError) an output that would be an input file, and two inputs that would
    be written to the same output (``a.jpg`` and ``a.png``).
    """
    inputs = {f.resolve(): f for f in files}
    targets: dict[Path, Path] = {}
    written: dict[Path, Path] = {}
    for file in files:
        volume = volumes.get(file)
        name = f"{file.stem}{suffix}" if volume is None else volume[0] + volume_suffix + volume[1]
        target = out / name
        key = target.resolve()
        if key in inputs:
            raise UserError(
                f"{target} would replace the input {inputs[key]}: inputs are never "
                "overwritten; choose another --out or a --suffix"
            )
        if key in written:
            raise UserError(
                f"{written[key]} and {file} would both be written to {target}; "
                "rename one, or run them separately"
            )
        written[key] = file
        targets[file] = target
    return targets


@app.command("degradations")
def list_degradations_cmd() -> None:
    """List the operators (with their parameters) and presets that `degrade --name` takes."""
    import inspect

    from restorekit.degrade import DEGRADATIONS, create_degradation

    typer.echo("operators (name: parameters; `--param KEY=VALUE`, a range as [lo, hi]):")
    for entry in DEGRADATIONS.entries(kind="operator"):
        params = ", ".join(
            p.name + (f" = {p.default!r}" if p.default is not p.empty else " (required)")
            for p in inspect.signature(entry.obj).parameters.values()
        )
        typer.echo(f"  {entry.name:20s} {params}")
        typer.echo(f"  {'':20s} {entry.paper}")
    typer.echo("presets (named parameter sets):")
    for entry in DEGRADATIONS.entries(kind="preset"):
        typer.echo(f"  {entry.name:20s} {create_degradation(entry.name)!r}")
