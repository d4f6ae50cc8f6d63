"""Reports of an evaluation: a markdown file and a self-contained HTML page.

Both hold the same content: for each task its protocol line and a table of mean PSNR /
SSIM per method; a figure per task with the degraded input, every method's output and
the ground truth side by side, each with its PSNR, and below them the same zoomed crop;
and, for a dataset scored under several degradations, a plot of PSNR per degradation
(per noise level, say) for each method. The markdown links the PNG figures written next
to it; the HTML embeds them (base64), so it can be mailed or archived as one file.

Figures are drawn with matplotlib's object-oriented API (no pyplot, no global backend
state), imported on first use.
"""

from __future__ import annotations

import base64
import html
import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from restorekit.evaluate import INPUT, Results, format_mean_se
from restorekit.metrics import METRICS
from restorekit.utils import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["write_report"]


def write_report(
    results: Results,
    out: str | Path,
    *,
    title: str = "restorekit evaluation",
    intro: str = "",
    zoom: float = 0.3,
) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` under ``out``.

    Args:
        results: what :func:`restorekit.evaluate.evaluate` returned.
        out: the folder (created if needed).
        title: the report's heading.
        intro: a paragraph (markdown-free text) printed under the title.
        zoom: side of the zoomed crop, as a fraction of the image's shorter side.

    Returns:
        The markdown and HTML paths.
    """
    out = Path(out)
    figures: list[tuple[str, str, bytes]] = []  # (section, caption, png)
    summary = results.summary()
    for key, examples in results.examples.items():
        scores = {
            (s.method, s.image): s.psnr for s in results.scores if (s.dataset, s.degradation) == key
        }
        for i, example in enumerate(examples):
            png = _png(_comparison(example, scores, zoom=zoom, index=i, results=results, key=key))
            figures.append((" / ".join(key), f"{' / '.join(key)}, image {i + 1}", png))
    for dataset in dict.fromkeys(r["dataset"] for r in summary):
        rows = [r for r in summary if r["dataset"] == dataset]
        degradations = list(dict.fromkeys(r["degradation"] for r in rows))
        if len(degradations) > 1 and _series(rows, degradations):
            figures.append(
                (
                    f"{dataset}: PSNR per degradation",
                    f"{dataset}: PSNR per degradation",
                    _png(_plot(rows, dataset)),
                )
            )

    names = []
    for i, (_, caption, png) in enumerate(figures):
        name = f"figures/{i:02d}_{_slug(caption)}.png"
        with atomic_path(out / name) as tmp:
            tmp.write_bytes(png)
        names.append(name)

    md, page = (
        _markdown(results, title, intro, figures, names),
        _html(results, title, intro, figures),
    )
    paths = (out / "report.md", out / "report.html")
    for path, text in zip(paths, (md, page), strict=True):
        with atomic_path(path) as tmp:
            tmp.write_text(text)
    return paths


# --------------------------------------------------------------------------- documents


Section = tuple[str, str, list[str], list[list[str]], set[tuple[int, int]], str]


def _tables(results: Results) -> list[Section]:
    """(heading, protocol line, header, rows, bold cells, remark) per task.

    Rows: method, images, one column per metric scored (:data:`METRICS`), note. Bold
    cells are (row, column) of each metric's best; the remark says when the best PSNR is
    not the best SSIM.
    """
    sections: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in results.summary():
        sections.setdefault((r["dataset"], r["degradation"]), []).append(r)
    names = results.metrics()
    out = []
    for key, found in sections.items():
        shown = [n for n in names if any(math.isfinite(r.get(n, math.nan)) for r in found)]
        shown = shown or names
        header = ["method", "images", *(METRICS[n].label for n in shown), "note"]
        rows = [
            [r["method"], str(r["images"]),
             *(format_mean_se(r[n], r.get(f"{n}_se"), METRICS[n].digits) for n in shown),
             r["note"]]
            for r in found
        ]  # fmt: skip
        best = {n: _best(found, n) for n in shown}
        bold = {(i, 2 + shown.index(n)) for n, i in best.items() if i is not None}
        remark = ""
        p_best, s_best = best.get("psnr"), best.get("ssim")
        if p_best is not None and s_best is not None and p_best != s_best:
            p, q = found[p_best]["method"], found[s_best]["method"]
            remark = (f"{p} has the best PSNR but {q} the best SSIM: PSNR weighs every "
                      "pixel's error alike, SSIM local structure and contrast.")  # fmt: skip
        protocol = results.protocols[key].describe()
        out.append((" / ".join(key), protocol, header, rows, bold, remark))
    return out


def _best(rows: list[dict[str, Any]], metric: str) -> int | None:
    """Index of the row with the highest finite ``metric``, or None."""
    finite = [(r[metric], i) for i, r in enumerate(rows) if math.isfinite(r[metric])]
    return max(finite)[1] if finite else None


def _metrics_line(results: Results) -> str:
    """What each column means, from the registry: ``"PSNR dB: PSNR (dB). SSIM: ..."``."""
    parts = [f"{METRICS[n].label}: {METRICS.entry(n).paper}" for n in results.metrics()]
    return "; ".join(parts) + ". Means over images; each table states its protocol."


def _markdown(
    results: Results,
    title: str,
    intro: str,
    figures: list[tuple[str, str, bytes]],
    names: list[str],
) -> str:
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro, ""]
    lines += [_metrics_line(results), ""]
    for heading, protocol, header, rows, bold, remark in _tables(results):
        lines += [f"## {heading}", "", f"Protocol: {protocol}.", ""]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for i, row in enumerate(rows):
            cells = [c.replace("|", "/") for c in row]
            cells = [f"**{c}**" if (i, j) in bold else c for j, c in enumerate(cells)]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", remark, ""] if remark else [""]
    if figures:
        lines += ["## Figures", ""]
        for (_, caption, _), name in zip(figures, names, strict=True):
            lines += [f"![{caption}]({name})", "", f"*{caption}*", ""]
    return "\n".join(lines)


def _html(results: Results, title: str, intro: str, figures: list[tuple[str, str, bytes]]) -> str:
    e = html.escape
    parts = [
        "<!doctype html>",
        f'<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>',
        "<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #bbb;"
        "padding:.25em .6em;text-align:left}td:nth-child(2),td:nth-child(3),td:nth-child(4)"
        "{text-align:right}td:nth-child(3),td:nth-child(4){white-space:nowrap}"
        ".protocol{color:#444;font-size:.9em}img{max-width:100%}</style>",
        f"</head><body><h1>{e(title)}</h1>",
    ]
    if intro:
        parts.append(f"<p>{e(intro)}</p>")
    parts.append(f"<p>{e(_metrics_line(results))}</p>")
    for heading, protocol, header, rows, bold, remark in _tables(results):
        parts.append(f"<h2>{e(heading)}</h2><p class='protocol'>Protocol: {e(protocol)}.</p>")
        parts.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>")
        parts += [
            "<tr>" + "".join(f"<td><b>{e(c)}</b></td>" if (i, j) in bold else f"<td>{e(c)}</td>"
                             for j, c in enumerate(row)) + "</tr>"
            for i, row in enumerate(rows)
        ]  # fmt: skip
        parts.append("</table>")
        if remark:
            parts.append(f"<p>{e(remark)}</p>")
    if figures:
        parts.append("<h2>Figures</h2>")
    for _, caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f"<figure><img alt='{e(caption)}' src='data:image/png;base64,{data}'>"
            f"<figcaption>{e(caption)}</figcaption></figure>"
        )
    parts.append("</body></html>\n")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- figures


def _comparison(
    example: dict[str, Any],
    scores: dict[tuple[str, str], float],
    *,
    zoom: float,
    index: int,
    results: Results,
    key: tuple[str, str],
) -> Figure:
    """Degraded | methods | ground truth, and the same zoomed crop below each."""
    from matplotlib.figure import Figure

    gt = example["gt"]
    image = _image_name(results, key, index)
    panels = [("degraded" if INPUT in example else "low resolution (nearest)", example["lq"])]
    panels += [(name, example[name]) for name in example if name not in ("lq", "gt", INPUT)]
    panels.append(("ground truth", gt))
    h, w = gt.shape[-2:]
    side = max(8, int(min(h, w) * zoom))
    top, left = _detailed_window(gt, side)
    fig = Figure(figsize=(2.4 * len(panels), 5.2), layout="constrained")
    axes = fig.subplots(2, len(panels), squeeze=False)
    for col, (name, x) in enumerate(panels):
        x = _display(x, (h, w))
        label = textwrap.fill(_short(name), 30)  # the table gives the full parameters
        score_name = INPUT if col == 0 and INPUT in example else name
        if (score_name, image) in scores:
            label += f"\n{_num(scores[(score_name, image)], 2)} dB"
        crop = x[top : top + side, left : left + side]
        for row, shown in enumerate((x, crop)):
            ax = axes[row][col]
            ax.imshow(shown, cmap="gray" if shown.ndim == 2 else None, vmin=0, vmax=1,
                      interpolation="nearest")  # fmt: skip
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(label, fontsize=8)
                ax.add_patch(_rectangle(left, top, side))
    fig.suptitle(f"{key[0]} / {key[1]}: {image}", fontsize=10)
    return fig


def _plot(rows: list[dict[str, Any]], dataset: str) -> Figure:
    """PSNR against the degradations of one dataset, one line per method."""
    from matplotlib.figure import Figure

    degradations = list(dict.fromkeys(r["degradation"] for r in rows))
    fig = Figure(figsize=(max(5.0, 1.2 * len(degradations) + 2), 3.6), layout="constrained")
    ax = fig.subplots()
    for method, xs, ys in _series(rows, degradations):
        ax.plot(xs, ys, marker="o", label=_short(method))
    ax.set_xticks(range(len(degradations)), degradations, rotation=20, fontsize=8)
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(f"{dataset}: PSNR per degradation", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))  # off the data
    return fig


def _series(
    rows: list[dict[str, Any]], degradations: list[str]
) -> list[tuple[str, list[int], list[float]]]:
    """(method, x positions, PSNRs) for each method scored at two degradations or more: a
    model made for one noise level is a single point, not a line."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        points = {r["degradation"]: r["psnr"] for r in rows if r["method"] == method}
        xs = [i for i, d in enumerate(degradations) if d in points and math.isfinite(points[d])]
        if len(xs) >= 2:
            out.append((method, xs, [points[degradations[i]] for i in xs]))
    return out


def _short(name: str) -> str:
    """A baseline's name without its parameters (``nlm(sigma=None, ...)`` -> ``nlm``)."""
    return name.split("(")[0]


def _detailed_window(gt: torch.Tensor, side: int) -> tuple[int, int]:
    """Top-left corner of the ``side`` x ``side`` window with the most detail (the largest
    local variance of the ground truth), so the zoom shows edges rather than background."""
    x = gt.detach().float().mean(dim=1, keepdim=True)
    stride = max(1, side // 4)
    mean = F.avg_pool2d(x, side, stride)
    var = F.avg_pool2d(x.square(), side, stride) - mean.square()
    row, col = divmod(int(var.flatten().argmax()), var.shape[-1])
    return row * stride, col * stride


def _display(x: torch.Tensor, size: tuple[int, int]) -> Any:
    """(1, C, h, w) -> an (H, W) or (H, W, 3) numpy array at ``size`` (nearest), in [0, 1]."""
    x = x.detach().float().clamp(0, 1)
    if x.shape[-2:] != size:
        x = F.interpolate(x, size=size, mode="nearest")
    x = x[0].permute(1, 2, 0).numpy()
    return x[..., 0] if x.shape[-1] == 1 else x


def _rectangle(left: int, top: int, side: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((left - 0.5, top - 0.5), side, side, fill=False, color="yellow", lw=1)


def _image_name(results: Results, key: tuple[str, str], index: int) -> str:
    names = list(
        dict.fromkeys(s.image for s in results.scores if (s.dataset, s.degradation) == key)
    )
    return names[index] if index < len(names) else f"image {index}"


def _png(fig: Figure) -> bytes:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    return buf.getvalue()


def _num(value: float, digits: int) -> str:
    return "inf" if value == math.inf else f"{value:.{digits}f}"


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).strip("_").lower()[:60]
