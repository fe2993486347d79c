"""The (α, τ) phase map of the Gaussian world: the fitted variance after G generations over a grid of
fresh-real shares α and sampling temperatures τ, with the exact stability boundary.

Runs: the 1-D (or isotropic d-dimensional) Gaussian world under ``mix`` with ``real_source=fresh``,
one run per (``regime.real_fraction``, ``world.temperature``); every generation refits the MLE on
αM fresh real rows and (1−α)M rows of the previous model drawn from N(μ̂, τ²Σ̂).  E Σ_t follows the
exact linear recursion of theory/temperature.py (``moment_curve``, theory/curation.md §1), whose
2×2 map has spectral radius ρ(α, τ, M): below ρ = 1 the variance settles at the fixed point
E_∞ = ``fixed_point``, above it grows like ρ^g.

Left: the Monte Carlo mean of tr Σ̂_G / tr Σ* in each cell (colour on a log scale centred at 1, the
value written in the cell), the boundary τ_crit(α) where ρ = 1 (``phase_boundary``, dashed) and the
level lines E_∞/σ² = 0.5, 1, 2 of the fixed point, which exists below the boundary only (thin
dashed).  Right: three columns of the map against τ: the Monte Carlo mean with its 95% Student-t
interval (figures/bands.py), the exact E Σ_G/σ² (dashed) and the fixed point (dotted, where ρ < 1).
The boundary and the fixed point are drawn for the MLE refit at a constant M, where they are exact.

    python -m collapse_sim.figures.temperature_phase RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import optimize

from collapse_sim.figures import bands, cli, style
from collapse_sim.simulator import results
from collapse_sim.theory import temperature as tt

STEM = "temperature_phase"
SHOWS = ("regime.real_fraction", "world.temperature")  # figures/render.py: α on x, τ on y
MAX_RUNS = None
METRIC = "trace_ratio"
LEVELS = (0.5, 1.0, 2.0)  # fixed-point level lines E_∞/σ²
LEVEL_DASHES = ((0, (6, 2)), (0, (3, 2)), (0, (1.5, 1.5)))
COLOUR_RANGE = 10.0  # the colour scale spans [1/10, 10]; cells beyond saturate (their value is written)
CMAP = "RdBu_r"  # diverging: blue = variance lost, red = variance gained, white = none


def applies(meta: dict) -> bool:
    c = meta["config"]
    return (c["world"]["name"] == "gaussian" and c["regime"]["name"] == "mix"
            and c["regime"].get("real_source") == "fresh" and c["run"]["n_generations"] > 0)


def _cell_text(v: float) -> str:
    if not np.isfinite(v):
        return "–"
    if 1e-2 <= v < 1e3:
        return f"{v:.2g}"
    return f"{v:.0e}".replace("e+0", "e").replace("e+", "e").replace("e-0", "e-")


def fixed_point_level(level: float, real_share: float, n: int) -> float:
    """The τ at which the fixed point E_∞/σ² equals ``level`` (E_∞ grows with τ from
    E_∞(τ → 0) to ∞ at τ_crit); NaN when the level is not reached below the boundary."""
    t_crit = float(np.sqrt(tt.critical_temperature_sq(real_share, n)))
    hi = min(t_crit * (1 - 1e-9), 50.0)

    def f(t):
        return tt.fixed_point(real_share, t, n)[0] - level

    lo = 1e-3
    if f(lo) > 0 or f(hi) < 0:
        return float("nan")
    return float(optimize.brentq(f, lo, hi, xtol=1e-10))


def _edges(v):
    v = np.asarray(v, float)
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def grid(runs):
    """(α values, τ values, {(α, τ): (records, meta)}); α is the run's own share round(αM)/M."""
    cells = {}
    for rec, meta in runs:
        w, r = meta["config"]["world"], meta["config"]["regime"]
        a = round(r["real_fraction"] * w["M"]) / w["M"]
        cells[(a, float(w["temperature"]))] = (rec, meta)
    alphas = sorted({a for a, _ in cells})
    taus = sorted({t for _, t in cells})
    return alphas, taus, cells


def plot(run_dirs, out_dir) -> list[Path]:
    """Draw the fresh-real mix runs of the Gaussian world in ``run_dirs`` as an (α, τ) phase map;
    [] unless they span at least two shares and two temperatures at one world size."""
    import matplotlib.pyplot as plt
    from matplotlib import colors

    runs = [r for r in (results.load(d) for d in run_dirs) if applies(r[1])]
    if not runs:
        return []
    worlds = {(m["config"]["world"]["M"], m["config"]["world"]["d"], m["config"]["world"]["estimator"]) for _, m in runs}
    alphas, taus, cells = grid(runs)
    if len(worlds) != 1 or len(alphas) < 2 or len(taus) < 2 or len(cells) != len(runs):
        return []
    ((M, d, estimator),) = worlds
    w0 = runs[0][1]["config"]["world"]
    exact = estimator == "mle" and w0.get("M_schedule") is None
    seeds = [rec[METRIC].shape[0] for rec, _ in runs]
    G = runs[0][0][METRIC].shape[1] - 1

    Z = np.full((len(taus), len(alphas)), np.nan)
    for (a, t), (rec, _) in cells.items():
        Z[taus.index(t), alphas.index(a)] = rec[METRIC][:, -1].mean()

    with plt.rc_context(style.RC):
        fig = style.figure(figsize=(10.8, 5.0))
        left, right = fig.subfigures(1, 2, width_ratios=[1.1, 1.0], wspace=0.03)
        ax = left.subplots()
        norm = colors.LogNorm(1 / COLOUR_RANGE, COLOUR_RANGE, clip=True)
        mesh = ax.pcolormesh(_edges(alphas), _edges(taus), np.ma.masked_invalid(Z), cmap=CMAP, norm=norm,
                             shading="flat")
        for (a, t), (rec, _) in cells.items():
            v = Z[taus.index(t), alphas.index(a)]
            dark = np.isfinite(v) and v > 0 and abs(np.log10(v)) > 0.6
            ax.text(a, t, _cell_text(v), ha="center", va="center", fontsize=6.5, color="white" if dark else "black")
        left.colorbar(mesh, ax=ax, extend="both",
                      label=rf"$\mathrm{{tr}}\,\hat\Sigma_{{{G}}}/\mathrm{{tr}}\,\Sigma^*$, mean over seeds")
        if exact:
            lo_a, hi_a = _edges(alphas)[[0, -1]]
            a_line = np.linspace(max(lo_a, 1e-3), min(hi_a, 1 - 1e-6), 150)
            _, t_crit = tt.phase_boundary(M, a_line)
            ax.plot(a_line, t_crit, color="black", linestyle="--", linewidth=2.0,
                    label=r"$\rho = 1$: stability boundary $\tau_{\mathrm{crit}}(\alpha)$ (exact)")
            for level, dash in zip(LEVELS, LEVEL_DASHES):
                t_level = np.array([fixed_point_level(level, a, M) for a in a_line])
                ax.plot(a_line, t_level, color="#404040", linestyle=dash, linewidth=0.9,
                        label=rf"fixed point $E_\infty/\sigma^2 = {level:g}$ (exact, $\rho < 1$)")
        ax.set_xlim(*_edges(alphas)[[0, -1]])
        ax.set_ylim(*_edges(taus)[[0, -1]])
        ax.set_xlabel(r"share of fresh real rows $\alpha$")
        ax.set_ylabel(r"sampling temperature $\tau$")
        ax.set_title(f"generation {G}: collapse (blue), growth (red)", fontsize=8)
        if exact:
            left.legend(loc="outside lower center", frameon=False, ncols=2, fontsize=6.5)

        ax2 = right.subplots()
        shown = alphas[len(alphas) // 2:][-3:]
        t_fine = np.linspace(_edges(taus)[0], _edges(taus)[-1], 200)
        t_fine = t_fine[t_fine > 0]
        for i, a in enumerate(shown):
            st = style.series(i)
            pts = [(t, cells[(a, t)][0]) for t in taus if (a, t) in cells]
            x = np.array([t for t, _ in pts])
            m, half = zip(*(bands.mean_interval(rec[METRIC][:, -1]) for _, rec in pts))
            ax2.errorbar(x, m, yerr=half, color=st["color"], marker=st["marker"], linestyle="none", capsize=2,
                         label=rf"$\alpha$ = {a:g}: Monte Carlo")
            if exact:
                e_G = np.array([tt.moment_curve(G, a, t, M)[0][-1] for t in t_fine])
                ax2.plot(t_fine, e_G, color=st["color"], linestyle="--", linewidth=1.1,
                         label=rf"$\alpha$ = {a:g}: exact, g = {G}")
                e_inf = np.array([tt.fixed_point(a, t, M)[0] for t in t_fine])
                ax2.plot(t_fine, np.where(np.isfinite(e_inf), e_inf, np.nan), color=st["color"],
                         linestyle=(0, (1, 1.5)), linewidth=1.1,
                         label=rf"$\alpha$ = {a:g}: fixed point")
        ax2.set_yscale("log")
        ax2.set_xlabel(r"sampling temperature $\tau$")
        ax2.set_ylabel(rf"$\mathrm{{tr}}\,\hat\Sigma_{{{G}}}/\mathrm{{tr}}\,\Sigma^*$")
        ax2.set_title(r"columns of the map against $\tau$; the fixed point where $\rho < 1$", fontsize=8)
        handles, labels = ax2.get_legend_handles_labels()  # one column per α: Monte Carlo, exact, fixed point
        keys = sorted(range(len(labels)), key=lambda k: (labels[k].split(":")[0], "Monte" not in labels[k], k))
        right.legend([handles[k] for k in keys], [labels[k] for k in keys], loc="outside lower center",
                     frameon=False, ncols=len(shown), fontsize=6.5)
        fig.suptitle(f"Sampling temperature with fresh real data: Gaussian world, d={d}, M={M}, {estimator} refit, "
                     f"generation {G}; {bands.describe(seeds)}", fontsize=9)
        return style.save(fig, out_dir, STEM)


def main(argv=None) -> None:
    cli.main(plot, __doc__, "gaussian-world runs of regime mix with real_source=fresh over several "
             "real_fraction and temperature values", argv)


if __name__ == "__main__":
    main()
