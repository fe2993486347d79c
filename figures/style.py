"""One shared look for every figure: serif text, greyscale-safe lines (colour, dash and marker
per series), constrained layout, PDF + PNG at one resolution.  Bands: figures/bands.py."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Distinguishable in greyscale: each series differs in dash pattern and marker, not only hue.
SERIES = [
    dict(color="#000000", linestyle="-", marker="o"),
    dict(color="#1f5fa8", linestyle="--", marker="s"),
    dict(color="#b8470b", linestyle="-.", marker="^"),
    dict(color="#2e7d32", linestyle=":", marker="D"),
    dict(color="#6a3d9a", linestyle=(0, (5, 1, 1, 1)), marker="v"),
    dict(color="#7f7f7f", linestyle=(0, (1, 1)), marker="x"),
]

RC = {
    "font.family": "serif",
    "mathtext.fontset": "dejavuserif",
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 7.5,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "figure.dpi": 150,
    "savefig.bbox": "tight",
    "lines.linewidth": 1.3,
    "lines.markersize": 3.5,
}


def series(i: int) -> dict:
    return dict(SERIES[i % len(SERIES)])


SEQUENTIAL = "viridis"  # one numeric parameter as colour (figures/sweep.py), with a colourbar


def integer_generations(*axes) -> None:
    """Generations are whole numbers: ticks only there (x axis), as many as the axis has room for."""
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(nbins="auto", integer=True, steps=[1, 2, 2.5, 5, 10]))


def band(ax, x, mean, half, color, log: bool = False, alpha: float = 0.18, **kwargs):
    """Shade mean ± half (figures/bands.py).  On a log axis the lower edge is clipped to a
    thousandth of the smallest positive mean, so an interval reaching 0 runs below the axis
    instead of leaving a gap (a log axis has no 0)."""
    mean = np.asarray(mean, float)
    lo, hi = mean - half, mean + half
    if log:
        positive = mean[np.isfinite(mean) & (mean > 0)]
        floor = 1e-3 * positive.min() if positive.size else 1e-300
        lo = np.where(np.isfinite(lo), np.maximum(lo, floor), lo)
    return ax.fill_between(x, lo, hi, color=color, alpha=alpha, linewidth=0, **kwargs)


def figure_legend(fig, axes, first=(), **kwargs):
    """One legend for the figure from the labelled artists of ``axes`` (each label once), the
    labels in ``first`` (the series) ahead of the rest (bands, theory); outside the panels."""
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    keys = sorted(handles, key=lambda k: (k not in first, list(handles).index(k)))
    kwargs = {"loc": "outside right center", "frameon": False} | kwargs
    return fig.legend([handles[k] for k in keys], keys, **kwargs)


def figure(**kwargs):
    """A figure with constrained layout: titles, labels and outside legends stay inside it."""
    return plt.figure(layout="constrained", **kwargs)


def subplots(*args, **kwargs):
    return plt.subplots(*args, layout="constrained", **kwargs)


PNG_DPI = 200


def save(fig, out_dir, stem: str) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.pdf", out / f"{stem}.png"]
    for p in paths:  # the PDF without its creation date: the same figure gives the same bytes
        fig.savefig(p, dpi=PNG_DPI) if p.suffix == ".png" else fig.savefig(p, metadata={"CreationDate": None})
    plt.close(fig)
    return paths
