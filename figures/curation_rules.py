"""Curated synthetic data: the reward of the model rises and its diversity falls, generation after
generation, for each curation rule (simulator/curation.py), one column per world.

Rows: the reward of model g, E r(x) under the fitted model with the run's linear reward
r(x) = direction·x (Gaussian: direction·d·μ̂; mixture: Σ_k w_k direction·μ_k; categorical: Σ_k p̂_k
direction·k), and its diversity: tr Σ̂ (Gaussian), the fitted weight of the minority mode
(``minority_weight``, mixture), the entropy of p̂ in nats (categorical).  Lines: the Monte Carlo
mean over seeds with its 95% Student-t band (figures/bands.py), one colour and marker per rule.
Dashed: the theory the run carries (experiments/predictions/gaussian.py, theory/curation.py;
1-D Gaussian under replace), named with its status: best-of-K's E s_g² = s_0²(c v_K)^g is exact and
its reward has Jensen's upper bound; the verifier window's map (N → ∞), the preference tilt
p·e^{βr} (K → ∞) and top-fraction's truncation factor (n → ∞) are large-sample limits, drawn beside
the Monte Carlo, not as its expectation.  Runs with a quadratic reward draw no reward row entry.

    python -m collapse_sim.figures.curation_rules RESULTS_PATH [RESULTS_PATH ...] [--out DIR]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, style
from collapse_sim.simulator import results

STEM = "curation_rules"
SHOWS = ("world.", "regime.curation.")  # figures/render.py: a column per world, a line per rule
MAX_RUNS = 12
WORLDS = ("gaussian", "gmm", "categorical")
RULES = ("verifier", "best_of_k", "preference", "top_fraction")
DIVERSITY = {  # world -> (record, axis label)
    "gaussian": ("trace_cov", r"diversity: $\mathrm{tr}\,\hat\Sigma$"),
    "gmm": ("minority_weight", "diversity: minority-mode weight"),
    "categorical": ("entropy", r"diversity: entropy of $\hat p$ (nats)"),
}
LIMITS = {"verifier": "window map, N → ∞ limit", "preference": r"tilt $p\,e^{\beta r}$, K → ∞ limit",
          "top_fraction": "truncation, n → ∞ limit", "best_of_k": "n → ∞ limit"}


def applies(meta: dict) -> bool:
    c = meta["config"]
    cur = c["regime"].get("curation") or {}
    return c["world"]["name"] in WORLDS and cur.get("rule", "none") != "none" and c["run"]["n_generations"] > 0


SHORT = {"verifier": "verifier", "best_of_k": "best of K", "preference": "preference", "top_fraction": "top fraction"}


def rule_label(cur: dict) -> str:
    """The rule and its settings (the verifier's window differs by world: in the column titles)."""
    rule = cur["rule"]
    if rule == "verifier":
        return "verifier (window, see titles)"
    if rule == "best_of_k":
        return f"best of K = {cur['K']}"
    if rule == "preference":
        return f"preference: one of K = {cur['K']} by softmax(βr), β = {cur['beta']:g}"
    return f"top fraction α = {cur['keep_fraction']:g}"


def _direction(cur: dict, D: int):
    """The linear reward's direction as a vector of D numbers, or None (quadratic reward)."""
    if cur.get("reward", "linear") != "linear":
        return None
    v = np.asarray(cur.get("direction", 1.0), float).reshape(-1)
    return np.full(D, v[0]) if v.size == 1 else v


def model_reward(world: dict, cur: dict, rec) -> np.ndarray | None:
    """E r(x) under model g, (S, G+1), for a linear reward; None where the records cannot give it."""
    name = world["name"]
    if name == "gaussian":
        u = _direction(cur, world["d"])
        if u is None or "mean" not in rec or not np.all(u == u[0]):
            return None  # the records keep the average coordinate of μ̂ only
        return u[0] * world["d"] * np.asarray(rec["mean"], float)
    if name == "gmm":
        u = _direction(cur, world["d"])
        if u is None or "means" not in rec or "weights" not in rec:
            return None
        return np.einsum("sgk,sgkd,d->sg", np.asarray(rec["weights"], float), np.asarray(rec["means"], float), u)
    u = _direction(cur, 1)
    if u is None or "probs" not in rec:
        return None
    p = np.asarray(rec["probs"], float)
    return u[0] * p @ np.arange(p.shape[-1], dtype=float)


def _theory(meta: dict, rec, world: dict, cur: dict):
    """(reward curve, its label, diversity curve, its label), each None where the run carries none."""
    kinds = meta.get("theory", {}).get("curve_kinds", {})
    rule, name = cur["rule"], SHORT[cur["rule"]]

    def label(kind, what):
        status = {"exact": "exact", "bound": "upper bound", "limit": LIMITS.get(rule, "limit")}[kind]
        return f"{name}: {what} ({status})"

    reward = reward_label = div = div_label = None
    u = _direction(cur, world.get("d", 1))
    if "theory/mean" in rec and u is not None:
        reward = u[0] * world.get("d", 1) * np.asarray(rec["theory/mean"], float)
        reward_label = label(kinds.get("mean", "limit"), r"$E\,r$")
    elif "theory/reward_mean_bound" in rec:
        reward = np.asarray(rec["theory/reward_mean_bound"], float)
        reward_label = label(kinds.get("reward_mean_bound", "bound"), r"$E\,r$")
    if "theory/var" in rec and world["name"] == "gaussian":
        div = world["d"] * np.asarray(rec["theory/var"], float)
        what = r"$E\,s_g^2 = s_0^2 (c v_K)^g$" if rule == "best_of_k" else r"$E\,s_g^2$"
        div_label = label(kinds.get("var", "limit"), what)
    return reward, reward_label, div, div_label


def _title(world: dict, curs) -> str:
    """The world in one line, the verifier's window (if a run has one) in a second."""
    name = world["name"]
    if name == "gaussian":
        head = f"Gaussian, d={world['d']}, M={world['M']}"
    elif name == "gmm":
        w = world.get("true_weights")
        weights = "equal weights" if w is None else "weights " + ", ".join(f"{x:g}" for x in w)
        head = f"mixture of {world['true_K']}, {weights}, M={world['M']}"
    else:
        head = f"categorical, V={world['V']} ({world['dist']}), M={world['M']}"
    ver = [c for c in curs if c["rule"] == "verifier"]
    if not ver:
        return head
    x = "k" if name == "categorical" else "x"
    return head + f"\nverifier: |{x} − {ver[0]['centre']:g}| ≤ {ver[0]['half_width']:g}"


def plot(run_dirs, out_dir) -> list[Path]:
    """Draw the curated runs in ``run_dirs`` (a column per world, a line per rule); [] if there is
    none, or if two runs share a world and a rule (they could not be told apart)."""
    import matplotlib.pyplot as plt

    runs = [r for r in (results.load(d) for d in run_dirs) if applies(r[1])]
    keys = [(m["config"]["world"]["name"], m["config"]["regime"]["curation"]["rule"]) for _, m in runs]
    if not runs or len(set(keys)) != len(keys):
        return []
    worlds = [w for w in WORLDS if any(k[0] == w for k in keys)]
    seeds = [rec["test_error"].shape[0] for rec, _ in runs]
    order = {r: i for i, r in enumerate(RULES)}
    with plt.rc_context(style.RC):
        fig = style.figure(figsize=(3.0 * len(worlds) + 3.4, 5.4))
        axes = fig.subplots(2, len(worlds), squeeze=False, sharex=True)
        firsts = []
        for j, world_name in enumerate(worlds):
            top, bottom = axes[0, j], axes[1, j]
            mine = sorted(((rec, meta) for (rec, meta), k in zip(runs, keys) if k[0] == world_name),
                          key=lambda r: order[r[1]["config"]["regime"]["curation"]["rule"]])
            world = mine[0][1]["config"]["world"]
            for rec, meta in mine:
                cur = meta["config"]["regime"]["curation"]
                st = style.series(order[cur["rule"]])
                name = rule_label(cur)
                firsts.append(name)
                div_name, _ = DIVERSITY[world_name]
                for ax, y in ((top, model_reward(world, cur, rec)), (bottom, rec.get(div_name))):
                    if y is None:
                        continue
                    y = np.asarray(y, float)
                    g = np.arange(y.shape[1])
                    m, half = bands.mean_interval(y)
                    ax.plot(g, m, color=st["color"], marker=st["marker"], markersize=3, linewidth=1.2, label=name)
                    style.band(ax, g, m, half, st["color"], alpha=0.15)
                reward, reward_label, div, div_label = _theory(meta, rec, world, cur)
                for ax, y, lab in ((top, reward, reward_label), (bottom, div, div_label)):
                    if y is not None:
                        ax.plot(np.arange(y.size), y, color=st["color"], linestyle="--", linewidth=1.0, label=lab)
            top.set_title(_title(world, [m["config"]["regime"]["curation"] for _, m in mine]), fontsize=8)
            top.set_ylabel(r"reward of the model, $E\,r(x)$")
            bottom.set_ylabel(DIVERSITY[world_name][1])
            bottom.set_xlabel("generation")
            style.integer_generations(top, bottom)
            for ax in (top, bottom):
                ax.set_xlim(left=0)
        style.figure_legend(fig, axes.flat, first=firsts, fontsize=6.5)
        regimes = sorted({m["config"]["regime"]["name"] for _, m in runs})
        fig.suptitle(f"Curated synthetic data under regime {', '.join(regimes)}: the reward rises, the diversity falls; "
                     f"dashed: theory with its status\n{bands.describe(seeds)} (bands)", fontsize=9)
        return style.save(fig, out_dir, STEM)


def main(argv=None) -> None:
    cli.main(plot, __doc__, "curated runs of the gaussian, gmm or categorical world", argv)


if __name__ == "__main__":
    main()
