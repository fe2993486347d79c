"""Gaussian-mixture collapse in 2-D: density snapshots per regime, and the metrics per generation.

The true density once (top left), then one row per run (regime): the fitted density of seed 0
at a few generations (from the fitted weights, means and covariances the gmm world
records with ``record_params``).  Each density panel has its own colour scale (the
collapsed fits are far more peaked than the truth); the true 2σ circles are drawn on
every panel for reference.  A last row shows, for every run, the Monte Carlo mean
over seeds (with its 95% Student-t interval, figures/bands.py) of the exact L² distance ∫(p̂ − p*)², the number of true modes kept and
the tail share (fitted mass beyond 2σ of every true mode).  There is no closed form
for EM-fitted mixtures, so no theory line.  Runs in more than two dimensions are
drawn through their marginal on the first two coordinates; 1-D runs as curves.

    python -m collapse_sim.figures.gmm RESULTS_PATH [RESULTS_PATH ...] [--out DIR] [--generations 0 5 20 60]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, style
from collapse_sim.figures.regression import label
from collapse_sim.simulator import results
from collapse_sim.simulator.worlds.gmm import GMMConfig, true_mixture

STEM = "gmm_collapse"
SHOWS = ("regime.",)  # figures/render.py: one line (or row) per regime variant
ORDER = ["replace", "mix", "accumulate_subsample", "accumulate"]
SEED = 0


def applies(meta: dict) -> bool:
    return meta["config"]["world"]["name"] == "gmm"


def _order(meta):
    name = meta["config"]["regime"]["name"]
    return (ORDER.index(name) if name in ORDER else len(ORDER), label(meta))


def density(x_NxD, w_K, mu_KxD, cov_KxDxD) -> np.ndarray:
    """Mixture density at the points x (N, D), numpy."""
    out = np.zeros(len(x_NxD))
    D = x_NxD.shape[1]
    for w, mu, cov in zip(w_K, mu_KxD, cov_KxDxD):
        diff = x_NxD - mu
        maha = np.einsum("nd,de,ne->n", diff, np.linalg.inv(cov), diff)
        out += w * np.exp(-0.5 * maha) / np.sqrt((2 * np.pi) ** D * np.linalg.det(cov))
    return out


def default_generations(G: int) -> list[int]:
    return sorted({0, max(1, round(G / 12)), max(1, round(G / 3)), G})


def _truth(world: dict):
    cfg = GMMConfig(**world)
    w, mu, sd = true_mixture(cfg)
    return w, mu, np.broadcast_to(sd**2 * np.eye(cfg.d), (len(w), cfg.d, cfg.d)), sd


def _density_panel(ax, world, w, mu, cov, extent, title):
    true_w, true_mu, _, sd = _truth(world)
    d = mu.shape[-1]
    if d == 1:
        x = np.linspace(-extent, extent, 400)[:, None]
        ax.plot(x[:, 0], density(x, w, mu, cov), color="black")
        ax.set_xlim(-extent, extent)
        ax.set_yticks([])
    else:
        mu, cov = mu[:, :2], cov[:, :2, :2]
        grid = np.linspace(-extent, extent, 161)
        xx, yy = np.meshgrid(grid, grid)
        z = density(np.stack([xx.ravel(), yy.ravel()], 1), w, mu, cov).reshape(xx.shape)
        ax.imshow(z, origin="lower", extent=(-extent, extent, -extent, extent), cmap="Greys", interpolation="bilinear")
        t = np.linspace(0, 2 * np.pi, 100)
        for m in true_mu:
            ax.plot(m[0] + 2 * sd * np.cos(t), m[1] + 2 * sd * np.sin(t), color="#b8470b", linewidth=0.6, linestyle="--")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal")
    ax.set_title(title, fontsize=8)


def plot(run_dirs, out_dir, generations=None) -> list[Path]:
    """Draw the gmm-world runs in ``run_dirs`` that recorded their parameters; [] if there is none."""
    import matplotlib.pyplot as plt

    runs = [results.load(d) for d in run_dirs]
    runs = sorted((r for r in runs if applies(r[1]) and "means" in r[0]), key=lambda r: _order(r[1]))
    if not runs:
        return []
    G = min(r["means"].shape[1] for r, _ in runs) - 1
    gens = [g for g in (generations or default_generations(G)) if 0 <= g <= G]
    world0 = runs[0][1]["config"]["world"]
    extent = world0["separation"] + 4 * world0["spread"]
    n_rows, n_cols = len(runs), len(gens) + 1
    with plt.rc_context(style.RC):
        fig = style.figure(figsize=(1.6 * n_cols + 1.2, 1.65 * n_rows + 2.6))
        top, bottom = fig.subfigures(2, 1, height_ratios=[1.65 * n_rows, 2.4])
        axes = top.subplots(n_rows, n_cols, squeeze=False)
        tw, tmu, tcov, _ = _truth(world0)  # every run has the same world (figures/render.py: SHOWS)
        _density_panel(axes[0, 0], world0, tw, tmu, tcov, extent, "truth")
        for ax in axes[1:, 0]:
            ax.set_visible(False)
        for i, (rec, meta) in enumerate(runs):
            world = meta["config"]["world"]
            axes[i, 1].set_ylabel(label(meta), fontsize=8)
            for j, g in enumerate(gens):
                w, mu, cov = rec["weights"][SEED, g], rec["means"][SEED, g], rec["covs"][SEED, g]
                _density_panel(axes[i, j + 1], world, w, mu, cov, extent, f"g = {g}")
        panels = [("l2sq", "L² distance ∫(p̂ − p*)²", "log"), ("modes_kept", "true modes kept", "linear"),
                  ("tail_share", f"tail share (beyond {world0['tail_k']:g}σ)", "linear")]
        metric_axes = bottom.subplots(1, len(panels))
        seeds = [rec["l2sq"].shape[0] for rec, _ in runs]
        for ax, (name, title, scale) in zip(metric_axes, panels):
            smallest = min(float(np.min(rec[name].mean(0))) for rec, _ in runs)
            for i, (rec, meta) in enumerate(runs):
                st = style.series(i)
                m, half = bands.mean_interval(rec[name])
                g = np.arange(len(m))
                ax.plot(g, m, color=st["color"], linestyle=st["linestyle"], marker=st["marker"],
                        markevery=max(1, len(g) // 6), label=label(meta))
                style.band(ax, g, m, half, st["color"], log=scale == "log",
                           label=f"{bands.describe(seeds)} (shaded)" if i == 0 and ax is metric_axes[0] else None)
            ax.set_yscale(scale)
            if scale == "log":
                ax.set_ylim(bottom=smallest / 3)
            ax.set_ylabel(title, fontsize=8)
            ax.set_xlabel("generation g")
            ax.set_xlim(0, G)
            style.integer_generations(ax)
        style.figure_legend(bottom, metric_axes, first=[label(m) for _, m in runs])
        fig.suptitle(
            f"Gaussian mixture refitted by EM to its own samples: K={world0['K']} components, {world0['true_K']} true "
            f"modes, M={world0['M']}\ndensities of seed {SEED} (dashed: true 2σ circles); metrics: "
            f"{bands.describe(seeds)}",
            fontsize=9,
        )
        return style.save(fig, out_dir, STEM)


def main(argv=None) -> None:
    cli.main(
        plot, __doc__, "gmm-world runs with recorded parameters", argv,
        generations=dict(type=int, nargs="+", default=None, help="snapshot generations"),
    )


if __name__ == "__main__":
    main()
