"""One shared look for every figure: serif text, greyscale-safe lines, PDF + PNG."""

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


def mean_band(x: np.ndarray, axis: int = 0, z: float = 1.96):
    """Mean over seeds and the half-width of its 95% normal confidence band."""
    x = np.asarray(x, float)
    n = x.shape[axis]
    m = x.mean(axis)
    half = z * x.std(axis, ddof=1) / np.sqrt(n) if n > 1 else np.zeros_like(m)
    return m, half


def save(fig, out_dir, stem: str) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.pdf", out / f"{stem}.png"]
    for p in paths:
        fig.savefig(p, dpi=200 if p.suffix == ".png" else None)
    plt.close(fig)
    return paths
