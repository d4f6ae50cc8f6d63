"""Ship a training run's best weights with restorekit, with a model card (maintainers only).

    python scripts/ship_weights.py runs/face_low face_attention_unet_low [--baseline median]
                                   [--step N]

Writes ``restorekit/weights/NAME.safetensors`` (the run's ``best.safetensors``, stored as
float16 to halve the wheel; loading casts back to float32) and ``NAME.md``, a card that
says what the weights were trained on, how long, with which backbone, and how they score
on the held-out test split under the protocol the table states, beside classical
baselines. The scores are those of the float16 file as shipped. ``--step N`` ships the
weights of the checkpoint at step N (its EMA when the run keeps one) instead of the run's
best, when they were chosen on another validation than the run's own (say why with
``--note``).
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import tempfile
from itertools import pairwise
from pathlib import Path

import torch

from restorekit.api import WEIGHTS_DIR, load_model
from restorekit.baselines import create_baseline
from restorekit.bench import timed
from restorekit.config import flat_items, format_value, parse_call, to_dict
from restorekit.degrade import create_degradation
from restorekit.evaluate import Method, evaluate, format_mean_se, tasks_for
from restorekit.hardware import machine_summary, resolve
from restorekit.inference import ensemble_label, restore_tensor
from restorekit.models.summary import count_parameters
from restorekit.report import write_report
from restorekit.train.checkpoint import load_checkpoint, load_weights, save_weights
from restorekit.train.recipe import (
    find_recipe,
    list_recipes,
    load_recipe,
    read_description,
    upgrade_stages,
)
from restorekit.utils import atomic_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a training run folder (with best.safetensors)")
    parser.add_argument("name", help="the shipped name (the recipe's name, by convention)")
    parser.add_argument("--baseline", action="append", default=[], help="NAME[:k=v,...]")
    parser.add_argument(
        "--compare",
        action="append",
        default=[],
        help="another shipped model to score beside it (a GAN's generator)",
    )
    parser.add_argument(
        "--figure",
        action="store_true",
        help="save the first test image's comparison as NAME.png, in the card",
    )
    parser.add_argument(
        "--note",
        action="append",
        default=[],
        help="a line for the card that the run cannot tell (stopped by hand)",
    )
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="also score it with self-ensemble (restore --ensemble), as its own row",
    )
    parser.add_argument("--limit", type=int, default=None, help="score the first N test images")
    parser.add_argument("--data", help="score on this source instead of the recipe's own")
    parser.add_argument(
        "--degradation", help="score with this preset or spec instead of the recipe's own"
    )
    parser.add_argument(
        "--fp32",
        action="store_true",
        help="run it in fp32 under `auto` whatever the check measures (a drop seen elsewhere)",
    )
    parser.add_argument("--seeds", type=int, default=1, help="noise seeds 0..N-1 per image")
    parser.add_argument(
        "--step", type=int, help="ship the checkpoint of this step instead of the best"
    )
    parser.add_argument("--domain", help="what it was trained on, e.g. '48x48 gray faces'")
    parser.add_argument("--domain-size", type=int, help="the side of its training images")
    args = parser.parse_args()

    source_file = _weights_file(args.run, args.step)
    state, meta = load_weights(source_file)
    if args.step is not None:  # the run's own validation of that step, from its log
        meta = {**meta, **_validated(args.run, args.step)}
    config = upgrade_stages(load_checkpoint(args.run).state["config"])  # runs before `losses`
    model = load_model(source_file)
    half = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(half)  # what the shipped file will give, cast back to float32
    target = WEIGHTS_DIR / f"{args.name}.safetensors"
    keep = {k: meta[k] for k in ("step", "psnr", "ssim", "val_loss") if k in meta}
    card = {"recipe": config["name"], "weights_dtype": "float16", **keep}
    if config["data"].get("augment") == "hflip":  # upright content: mirror-only ensemble
        card["augment"] = model.ensemble_group = "hflip"

    if args.domain:
        card["domain"] = {"description": args.domain, "size": args.domain_size,
                          "channels": int(model.in_channels)}  # fmt: skip

    data = config["data"]
    methods = [Method(args.name, model, "shipped weights")]
    if args.ensemble:
        label = ensemble_label(args.name, model)
        methods.append(Method(label, model, "shipped weights", ensemble=True))
    methods += [Method(name, load_model(name), "shipped weights") for name in args.compare]
    for spec in args.baseline:
        base, kwargs = parse_call(spec)
        baseline = create_baseline(base, **kwargs)
        methods.append(Method(baseline.describe(), baseline, "classical baseline"))
    split_seed, channels = config["train"]["seed"], data.get("channels")
    # Another source (the motorcycle's real depth for haze) is scored whole: it was not
    # trained on, so there is no split to respect.
    source, split = (args.data, None) if args.data else (data["source"], "test")
    # clear_fraction mixes unhazed samples into training so a dehazer learns to leave clear
    # images be; scored, a clear input is identical to its truth (PSNR inf), so the card
    # scores hazy samples only (haze_table.py scores clear ones as their own level).
    params = {k: v for k, v in data.get("degradation_params", {}).items() if k != "clear_fraction"}
    own = create_degradation(data["degradation"], **params).spec
    degradation = args.degradation or own
    tasks = tasks_for(source, [degradation], seed=list(range(args.seeds)), split=split,
                      split_seed=split_seed, channels=channels)  # fmt: skip
    # Weights that lose accuracy under bf16 autocast tell `auto` to run them in fp32. The
    # recipe's own test split is checked too (tests/test_precision_shipped.py scores it):
    # two photos of another source can hide a drop.
    checks = {"the card's tasks": tasks}
    if args.data or args.degradation:
        checks["the recipe's own test split"] = tasks_for(
            data["source"], [own], seed=[0], split="test", split_seed=split_seed,
            channels=channels,
        )  # fmt: skip
    drops = [_bf16_drop(methods[0], t, where, limit=args.limit) for where, t in checks.items()]
    bf16_drop = max(drops, key=abs)
    if abs(bf16_drop) >= BF16_TOLERANCE_DB or args.fp32:
        card["auto_precision"] = "fp32"
        model.auto_precision = "fp32"
    save_weights(target, model.half(), **card)
    model.float()
    results = evaluate(methods, tasks, limit=args.limit)
    if args.figure:
        _save_figure(results, WEIGHTS_DIR / f"{args.name}.png")
    state = load_checkpoint(args.run).state
    card_text = _card(args, config, meta, model, results, state, bf16_drop)
    WEIGHTS_DIR.joinpath(f"{args.name}.md").write_text(card_text)
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB) and its card")


BF16_TOLERANCE_DB = 0.05  # tests/test_precision_shipped.py holds `auto` to it


def _weights_file(run: Path, step: int | None) -> Path:
    """The run's best weights, or with ``step`` that checkpoint's (its EMA if kept)."""
    if step is None:
        return run / "best.safetensors"
    folder = run / f"step-{step:08d}"
    for name in ("ema.safetensors", "model.safetensors"):
        if (folder / name).is_file():
            return folder / name
    sys.exit(f"{folder}: no checkpoint of step {step} (train.keep decides which are kept)")


def _validated(run: Path, step: int) -> dict[str, float]:
    """The run's validation scores at ``step`` (log.csv), as best.safetensors records them."""
    with open(run / "log.csv", newline="") as f:
        row = next((r for r in csv.DictReader(f) if r["psnr"] and int(r["step"]) == step), None)
    if row is None:
        sys.exit(f"{run}/log.csv: step {step} was not validated")
    return {"psnr": float(row["psnr"]), "ssim": float(row["ssim"]),
            "val_loss": float(row["val_loss"])}  # fmt: skip


def _bf16_drop(method: Method, tasks, where: str, *, limit: int | None) -> float:
    """Mean PSNR in fp32 minus under bf16 autocast on ``tasks`` (``where`` names them), in dB."""
    psnr = {}
    for precision in ("fp32", "bf16"):
        rows = evaluate([method], tasks, limit=limit, precision=precision).summary()
        rows = [r for r in rows if r["method"] == method.name]  # not the degraded input
        psnr[precision] = sum(r["psnr"] for r in rows) / len(rows)
    print(f"mean PSNR on {where} (held out): bf16 autocast "
          f"{psnr['bf16']:.3f} dB, fp32 {psnr['fp32']:.3f} dB")  # fmt: skip
    return psnr["fp32"] - psnr["bf16"]


def _precision_line(bf16_drop: float, *, forced: bool, fp32: bool) -> str:
    """The card's line on what bf16 autocast did and which precision ``auto`` picks."""
    line = f"- Under bf16 autocast its held-out PSNR moved by {-bf16_drop:+.2f} dB against fp32"
    if forced:
        line += " (run in fp32 all the same: see the note)"
    if fp32:
        return line + ", so `--precision auto` runs it in fp32 on every machine."
    return line + (f", within {BF16_TOLERANCE_DB} dB: `--precision auto` uses bf16 where the "
                   "hardware has it and measures it faster than fp32.")  # fmt: skip


def _save_figure(results, target: Path) -> None:
    """The report's figure of the first test image (degraded | methods | truth, zoomed)."""
    with tempfile.TemporaryDirectory() as tmp:
        write_report(results, tmp)
        first = sorted(Path(tmp, "figures").glob("00_*.png"))[0]
        with atomic_path(target) as out:
            out.write_bytes(first.read_bytes())


def _inference_ms(model: torch.nn.Module, size: int = 256) -> tuple[float, str]:
    """Milliseconds per ``size``² output on this machine's default path, and its numerics."""
    channels, scale = int(model.in_channels), int(model.scale)
    x = torch.rand(1, channels, size // scale, size // scale)
    numerics = resolve(model=model, quiet=True)
    seconds = timed(lambda: restore_tensor(model, x), min_time=1.0)
    return 1000 * seconds, numerics.describe()


def _command(config: dict, run_dir: str) -> str:
    recipe = _packaged(config) or "RECIPE.yaml"
    return f"restorekit train {recipe} {' '.join(_overrides(config))} run_dir={run_dir}"


def _overrides(config: dict) -> list[str]:
    """key=value for every setting in which the run differs from its packaged recipe."""
    name = _packaged(config)
    base = to_dict(load_recipe(find_recipe(name))) if name else {}
    run, packaged = flat_items(config), flat_items(base)
    skip = {"run_dir", "smoke", "recipe_file"}
    return [
        shlex.quote(f"{k}={format_value(v)}")  # the command must paste into a shell
        for k, v in run.items()
        if k.split(".")[0] not in skip and packaged.get(k, object()) != v
    ]


def _packaged(config: dict) -> str | None:
    """The packaged recipe a run was made from: its recipe_file, else its name, else (runs
    from before recipe_file, renamed with name=...) the recipe with its description."""
    for candidate in (Path(config.get("recipe_file") or "").stem, config["name"]):
        if candidate in list_recipes():
            return candidate
    for name in list_recipes():
        if read_description(name) == str(config.get("description", "")).strip():
            return name
    return None


def card_task(config: dict) -> str:
    """The card's first line, which ``restorekit weights`` prints as the task: the recipe's
    description without its sentence of options (from " Options: " on), and for
    super-resolution the scale these weights have and whether the GAN stage trained them."""
    text = str(config.get("description", "")).split(" Options: ")[0]
    scale = int(config.get("scale") or 1)
    if scale > 1:
        gan = "; the generator after the GAN stage" if config.get("gan") else ""
        text += f" At x{scale}{gan}."
    return text


def _split_words(source: str) -> str:
    """How a source's images were split, for the card."""
    if source == "mri":
        from restorekit.data.sources import MRI_VOLUMES

        parts = {p: ", ".join(v.name for v in MRI_VOLUMES if v.split == p)
                 for p in ("train", "val", "test")}  # fmt: skip
        return (f"split by volume: trained on {parts['train']}; validated on {parts['val']}; "
                f"tested on {parts['test']}")  # fmt: skip
    return "trained on the 70% train split, validated on the 20% validation split"


def _lineage(config: dict) -> tuple[list[dict], list[str]]:
    """The configs of this run and the run folders it started from (init=RUN folders,
    each perhaps from another), newest first, and the names the card gives them: this
    run is RUN, its oldest ancestor RUN0."""
    chain = [config]
    while (init := chain[-1].get("init")) and (ckpt := load_checkpoint(Path(init))) is not None:
        chain.append(upgrade_stages(ckpt.state["config"]))
    names = ["RUN", *(f"RUN{len(chain) - 1 - i}" for i in range(1, len(chain)))]
    return chain, names


_PAUSE_S = 15 * 60


def _training_hours(rows: list[dict[str, str]], until_step: int) -> float:
    """Hours of training up to the shipped step: the sum of the intervals between log
    rows, less the pauses (an interval over 15 minutes: a run stopped and resumed, perhaps
    in another session; a resume also logs its steps again from its checkpoint)."""
    times = [int(r["time"]) for r in rows if int(r["step"]) <= until_step]
    gaps = (b - a for a, b in pairwise(times))
    return sum(g for g in gaps if 0 < g <= _PAUSE_S) / 3600


def _card(args, config, meta, model, results, state, bf16_drop: float) -> str:
    rows = results.summary()
    (protocol,) = {r["protocol"] for r in rows}
    with open(args.run / "log.csv", newline="") as f:
        log_rows = list(csv.DictReader(f))
    log = [r for r in log_rows if r["psnr"]]  # the validations
    hours = _training_hours(log_rows, int(meta.get("step", 0)))
    train, data = config["train"], config["data"]
    chain, names = _lineage(config)
    # A run folder means nothing to a reader: name it as the Reproduce line does.
    parent = f"`{config.get('init')}`" if len(chain) == 1 else f"{names[1]} (see Reproduce)"
    lines = [
        f"# {args.name}",
        "",
        card_task(config),
        "",
        *(
            [f"- Domain: {args.domain} (other images work, and are told so)."]
            if args.domain
            else []
        ),
        f"- Architecture: `{meta['model_name']}` with `{json.dumps(meta['model_kwargs'])}`, "
        f"{count_parameters(model):,} parameters.",
        f"- Recipe: `{_packaged(config) or config['name']}` (restorekit/recipes), "
        f"seed {train['seed']}, "
        f"batch {train['batch_size']}, {state.get('numerics', 'precision not recorded')}"
        + (f", started from {parent}" if config.get("init") else "")
        + "; "
        + "; ".join(
            f"stage {s['name']}: {s['steps']} steps, {s['optimizer']} lr {s['lr']:g}, "
            f"{s['scheduler']} schedule"
            + (f" to lr {s['min_lr']:g}" if s["scheduler"] == "cosine" else "")
            + ", loss "
            + " + ".join(f"{t['weight']:g} x {t['name']}" for t in s["losses"])
            + (
                f" (against `{config['discriminator']['name']}`)"
                if any(t["name"] == "gan" for t in s["losses"])
                else ""
            )
            for s in train["stages"]
        )
        + ".",
        f"- Data: source `{data['source']}`"
        + "".join(f" + `{k}` x{v} (training only)" for k, v in (data.get("mix") or {}).items())
        + f", degradation `{data['degradation']}` (seeded, on the fly), crops "
        f"{data.get('crop')}; {_split_words(data['source'])}, "
        + (
            f"the weights of step {meta.get('step')} (of {len(log)} validations; chosen as "
            "the note says)."
            if args.step is not None
            else f"the best of {len(log)} validations kept (step {meta.get('step')})."
        ),
        f"- Trained on {state.get('machine', 'an unrecorded CPU')} in "
        f"{state.get('numerics', 'an unrecorded precision')} for about {hours:.1f} h; "
        f"validation PSNR "
        f"{float(log[0]['psnr']):.2f} dB at step {log[0]['step']}, "
        f"{'shipped' if args.step is not None else 'best'} {meta.get('psnr', 0):.2f}"
        f" dB at step {meta.get('step')}.",
    ]
    lines += [f"- Note: {note}" for note in args.note]
    if config.get("perceptual") and any(
        t["name"] == "perceptual" for s in train["stages"] for t in s["losses"]
    ):
        lines.append(f"- Perceptual features: `{json.dumps(config['perceptual'])}`.")
    ms, numerics = _inference_ms(model)
    lines += [
        f"- Inference: {ms:.0f} ms per 256x256 output at batch 1 on {machine_summary()}, "
        f"{numerics} (`restorekit bench --model {args.name}` measures it on yours).",
        "- Stored as float16 (loaded as float32); the scores below are the shipped file's.",
        _precision_line(
            bf16_drop, forced=args.fp32, fp32=getattr(model, "auto_precision", None) == "fp32"
        ),
        "",
        f"## Scored on `{args.data}` (not trained on)" if args.data else "## Held-out test split",
        "",
        f"Protocol: {protocol}. PSNR in dB, SSIM per Wang et al. 2004; means over images.",
        "",
        "| method | images | PSNR | SSIM |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {r['method']} | {r['images']} | {format_mean_se(r['psnr'], r['psnr_se'], 2)} | "
        f"{format_mean_se(r['ssim'], r['ssim_se'], 4)} |"
        for r in rows
    ]
    if args.figure:
        caption = " | ".join(["degraded", *(r["method"].split("(")[0] for r in rows[1:]), "truth"])
        lines += ["", f"![{caption}]({args.name}.png)", "",
                  "The first test image; the lower row zooms into the yellow box."]  # fmt: skip
    if rows and rows[0]["seeds"] > 1:
        lines += ["", f"Each image averaged over {rows[0]['seeds']} noise seeds; ± is the "
                  "standard error over images."]  # fmt: skip
    # sys.argv[3:]: the options after the script, RUN and NAME (the usage puts them first).
    shipping = shlex.join(
        ["python", "scripts/ship_weights.py", "RUN", args.name, *_named_notes(sys.argv[3:])]
    )
    # Runs of ours that this one started from: their commands come first, oldest first.
    steps = []
    for i in reversed(range(len(chain))):
        run = chain[i] if i == len(chain) - 1 else {**chain[i], "init": names[i + 1]}
        steps.append(_command(run, names[i]))
    named = " (each NOTE is a Note line above, in order)" if args.note else ""
    lines += ["", f"Reproduce: `{'`, then `'.join(steps)}`, then `{shipping}`{named}.", ""]
    return "\n".join(lines)


def _named_notes(argv: list[str]) -> list[str]:
    """``argv`` (command-line arguments) with each ``--note`` text replaced by NOTE: the
    card prints the notes above its Reproduce line, so the command need not repeat them."""
    return [
        "NOTE" if before == "--note" else "--note=NOTE" if arg.startswith("--note=") else arg
        for before, arg in pairwise(["", *argv])
    ]


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
