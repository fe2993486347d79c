"""A sweep's figure: runs that differ in parameters, drawn so that the parameters show.

The parameters are the config fields (``world.*``, ``regime.*``, ``run.*``) whose values differ
between the runs (``swept``; bookkeeping such as ``run.out_dir`` is not a parameter, and a field
that another parameter determines, such as ``regime.real_source`` across regimes, is folded into
it).  Layout:

- colour: the numeric parameter with the most values, on the viridis scale with a colourbar (a
  non-numeric one: one line style per value and a legend, up to six values; a labelled colourbar
  beyond);
- facets: one panel per value of the other parameters (per combination, if several);
- right: for exactly two numeric parameters, a phase map of the last generation's value (mean
  over seeds) on their grid, with the theory's value as labelled contours where every run carries
  a theory curve for the metric; otherwise, for a numeric colour, the last generation's value
  against it (mean and 95% t-interval, one line per facet, theory dashed).

Every panel shows the metric per generation: the mean over seeds with its 95% Student-t interval
(figures/bands.py) and the theory curve dashed in the same colour.  The metric is the world's
entry in ``METRICS`` (``--metric NAME`` for another record).  A markdown table of the last
generation's values is written alongside.

    python -m collapse_sim.figures.sweep RESULTS_PATH [RESULTS_PATH ...] [--out DIR] [--metric NAME]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from collapse_sim.figures import bands, cli, style
from collapse_sim.simulator import results

STEM = "sweep"
# Config fields that do not change what a run computes or are set per job by the launcher.
BOOKKEEPING = {
    "run.out_dir", "run.progress", "run.figure", "run.resume", "run.chunk_generations", "run.seed_batch",
    "run.distributed", "run.experiment", "run.theory_designs",
}
# world -> (record, theory curve or None, axis label, y scale, unit in theory.units or None)
METRICS = {
    "regression": ("test_error", "prediction", "test error", "linear", "v"),
    "gaussian": ("w2sq", "w2sq", "W₂² to the truth", "linear", None),
    "gmm": ("l2sq", None, "L² distance ∫(p̂ − p*)²", "log", None),
    "categorical": ("support", "support", "support size (outcomes kept)", "linear", None),
    "kde": ("var", "var", "sample variance of the kept points", "linear", None),
    "ngram": ("test_ppl", None, "real-test perplexity (per byte)", "linear", None),
    "transformer": ("test_ppl", None, "real-test perplexity (per byte)", "linear", None),
}
UNIT_LABELS = {"v": r"$v=\sigma^2 d/(T-d-1)$"}
MAX_STYLED = len(style.SERIES)


def flat(meta: dict) -> dict:
    """The run's config as {"world.T": 40, ...}."""
    out = {}

    def walk(prefix, d):
        for k, v in d.items():
            if isinstance(v, dict):
                walk(f"{prefix}{k}.", v)
            else:
                out[f"{prefix}{k}"] = v

    walk("", meta["config"])
    return out


def _key(v):
    """A hashable, orderable stand-in for a config value (lists as JSON)."""
    return json.dumps(v, sort_keys=True) if isinstance(v, (list, tuple, dict)) else v


def swept(metas) -> list[str]:
    """The config fields whose values differ between the runs, sorted (bookkeeping excluded; a
    field a run does not have counts as the value None)."""
    flats = [flat(m) for m in metas]
    keys = sorted(set().union(*flats) - BOOKKEEPING) if flats else []
    return [k for k in keys if len({_key(f.get(k)) for f in flats}) > 1]


def _determines(a: str, b: str, flats) -> bool:
    """Whether the value of field a fixes the value of field b in every run."""
    seen = {}
    for f in flats:
        if seen.setdefault(_key(f.get(a)), _key(f.get(b))) != _key(f.get(b)):
            return False
    return True


def parameters(metas) -> list[str]:
    """The swept fields, less those another kept field determines (regime.name before regime.*,
    a field with more values before one with fewer)."""
    flats = [flat(m) for m in metas]
    keys = swept(metas)
    n = {k: len({_key(f.get(k)) for f in flats}) for k in keys}
    order = sorted(keys, key=lambda k: (k != "regime.name", -n[k], k))
    kept = []
    for k in order:
        if not any(n[j] >= n[k] and _determines(j, k, flats) for j in kept):
            kept.append(k)
    return sorted(kept, key=order.index)


def _numeric(values) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if v is None:
        return "–"
    return str(v) if not isinstance(v, (list, tuple)) else ",".join(map(str, v))


def _sort_values(values):
    vs = list({_key(v): v for v in values}.values())
    if _numeric(vs):
        return sorted(vs)
    return sorted(vs, key=lambda v: (v is None, str(v)))


def _metric(world: str, runs, metric: str | None):
    """(record, theory curve name or None, axis label, y scale, unit or None) to draw."""
    if metric is None:
        name, theory, label, scale, unit = METRICS.get(world, (None, None, None, "linear", None))
        if name is None or any(name not in rec for rec, _ in runs):
            common = set.intersection(*(set(k for k, a in rec.items() if a.ndim == 2 and not k.startswith("theory/"))
                                        for rec, _ in runs))
            if not common:
                raise ValueError(f"the {world} runs share no per-generation record to draw")
            name, theory, label, scale, unit = sorted(common)[0], None, None, "linear", None
    else:
        if any(metric not in rec for rec, _ in runs):
            have = sorted(k for k in runs[0][0] if runs[0][0][k].ndim == 2 and not k.startswith("theory/"))
            raise ValueError(f"--metric {metric}: not recorded by every {world} run; records: {', '.join(have)}")
        name = metric
        default = METRICS.get(world, (None,) * 5)
        theory, label, scale, unit = default[1:] if default[0] == metric else (metric, None, "linear", None)
    if unit and not all(unit in m.get("theory", {}).get("units", {}) for _, m in runs):
        unit = None
    return name, theory, label or name, scale, unit


def plot(run_dirs, out_dir, metric: str | None = None) -> list[Path]:
    """Draw the runs in ``run_dirs`` by their swept parameters (one figure per world; [] when the
    runs of a world differ in nothing)."""
    loaded = [results.load(d) for d in run_dirs]
    worlds = sorted({m["config"]["world"]["name"] for _, m in loaded})
    paths = []
    for world in worlds:
        runs = [r for r in loaded if r[1]["config"]["world"]["name"] == world]
        stem = STEM if len(worlds) == 1 else f"{STEM}_{world}"
        paths += _plot_world(world, runs, out_dir, stem, metric)
    return paths


def _plot_world(world, runs, out_dir, stem, metric) -> list[Path]:
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    metas = [m for _, m in runs]
    params = parameters(metas)
    if not params:
        return []
    name, theory_name, ylabel, scale, unit = _metric(world, runs, metric)
    flats = [flat(m) for m in metas]
    values = {p: _sort_values(f.get(p) for f in flats) for p in params}
    numeric = [p for p in params if _numeric(values[p])]
    colour = max(numeric or params, key=lambda p: (len(values[p]), p in numeric))
    facets = [p for p in params if p != colour]
    combos = sorted({tuple(_key(f.get(p)) for p in facets) for f in flats},
                    key=lambda c: tuple(values[p].index(next(v for v in values[p] if _key(v) == x)) for p, x in zip(facets, c)))
    by_combo = {c: [] for c in combos}
    for (rec, meta), f in zip(runs, flats):
        by_combo[tuple(_key(f.get(p)) for p in facets)].append((rec, meta, f))

    def scale_of(meta):
        return meta["theory"]["units"][unit] if unit else 1.0

    def curves(rec, meta):
        y = np.asarray(rec[name], float) / scale_of(meta)
        th = rec.get(f"theory/{theory_name}") if theory_name else None
        return y, (None if th is None else np.asarray(th, float) / scale_of(meta))

    numeric_colour = colour in numeric
    cvals = values[colour]
    if numeric_colour:
        positive = min(cvals) > 0
        norm = (colors.LogNorm if positive and max(cvals) / min(cvals) >= 10 else colors.Normalize)(min(cvals), max(cvals))
        if min(cvals) == max(cvals):
            norm = colors.Normalize(min(cvals) - 1, max(cvals) + 1)
        cmap = plt.get_cmap(style.SEQUENTIAL)
        mappable = cm.ScalarMappable(norm=norm, cmap=cmap)

        def colour_of(v):
            return cmap(norm(v))
    else:
        discrete = len(cvals) > MAX_STYLED
        cmap = plt.get_cmap(style.SEQUENTIAL, len(cvals)) if discrete else None

        def colour_of(v):
            i = [_key(c) for c in cvals].index(_key(v))
            return cmap(i) if discrete else style.series(i)["color"]

    two_numeric = len(params) == 2 and len(numeric) == 2
    side = two_numeric or numeric_colour
    n = len(combos)
    ncols = min(3, n)
    nrows = -(-n // ncols)
    yunit = f" / {UNIT_LABELS.get(unit, unit)}" if unit else ""
    seeds = [rec[name].shape[0] for rec, _ in runs]
    gens = sorted({rec[name].shape[1] - 1 for rec, _ in runs})
    last = f"generation {gens[0]}" if len(gens) == 1 else "last generation"

    with plt.rc_context(style.RC):
        fig = style.figure(figsize=(2.7 * ncols + 1.2 + (3.6 if side else 0), 2.3 * nrows + 0.9))
        left, right = fig.subfigures(1, 2, width_ratios=[2.7 * ncols + 1.2, 3.6], wspace=0.02) if side else (fig, None)
        axes = left.subplots(nrows, ncols, squeeze=False, sharex=True, sharey=True)
        for ax in axes.flat[n:]:
            ax.set_visible(False)
        labelled = set()
        for ax, combo in zip(axes.flat, combos):
            for rec, meta, f in sorted(by_combo[combo], key=lambda r: [_key(c) for c in cvals].index(_key(r[2].get(colour)))):
                v = f.get(colour)
                c = colour_of(v)
                y, th = curves(rec, meta)
                g = np.arange(y.shape[1])
                m, half = bands.mean_interval(y)
                styled = {} if numeric_colour or discrete else style.series([_key(x) for x in cvals].index(_key(v)))
                lab = f"{colour} = {fmt(v)}" if styled and fmt(v) not in labelled else None
                labelled.add(fmt(v))
                ax.plot(g, m, color=c, linestyle=styled.get("linestyle", "-"), linewidth=1.1, label=lab)
                style.band(ax, g, m, half, c, log=scale == "log", alpha=0.12)
                if th is not None:
                    ax.plot(g, th, color=c, linestyle="--", linewidth=0.8)
            ax.set_yscale(scale)
            if facets:
                ax.set_title(", ".join(f"{p} = {fmt(values[p][[_key(x) for x in values[p]].index(k)])}"
                                       for p, k in zip(facets, combo)))
            style.integer_generations(ax)
            ax.set_xlim(left=0)
        for ax in axes[:, 0]:
            ax.set_ylabel(ylabel + yunit)
        for j in range(ncols):
            col = [a for a in axes[:, j] if a.get_visible()]
            col[-1].set_xlabel("generation")
            col[-1].xaxis.set_tick_params(labelbottom=True)
        if numeric_colour or discrete:
            sm = mappable if numeric_colour else cm.ScalarMappable(
                norm=colors.BoundaryNorm(np.arange(len(cvals) + 1) - 0.5, len(cvals)), cmap=cmap)
            cb = left.colorbar(sm, ax=axes.flat[:n], label=colour, shrink=0.9)
            if not numeric_colour:
                cb.set_ticks(range(len(cvals)), labels=[fmt(v) for v in cvals])
            elif len(cvals) <= 12:
                cb.set_ticks(cvals, labels=[fmt(v) for v in cvals])
                cb.ax.minorticks_off()
        else:
            left.legend(loc="outside lower center", ncols=min(3, len(cvals)), frameon=False)

        table = []
        for combo in combos:
            for rec, meta, f in by_combo[combo]:
                y, th = curves(rec, meta)
                m, half = bands.mean_interval(y[:, -1])
                table.append((f, y.shape[0], y.shape[1] - 1, float(m), float(half), None if th is None else float(th[-1])))

        if two_numeric:
            ax = right.subplots()
            fy = facets[0]
            xs, ys = values[colour], values[fy]
            Z = np.full((len(ys), len(xs)), np.nan)
            Zt = np.full_like(Z, np.nan)
            for f, _, _, m, _, t in table:
                i, j = ys.index(f[fy]), xs.index(f[colour])
                Z[i, j] = m
                Zt[i, j] = np.nan if t is None else t
            lo, hi = np.nanmin(Z), np.nanmax(Z)
            logz = lo > 0 and (scale == "log" or hi / lo >= 5)  # a wide range: log colours
            znorm = colors.LogNorm(lo, hi) if logz else None
            mesh = ax.pcolormesh(np.arange(len(xs) + 1) - 0.5, np.arange(len(ys) + 1) - 0.5,
                                 np.ma.masked_invalid(Z), cmap=style.SEQUENTIAL, norm=znorm, shading="flat")
            right.colorbar(mesh, ax=ax, label=f"{ylabel}{yunit}, {last}")
            if np.isfinite(Zt).all() and min(Zt.shape) >= 2:
                tlo, thi = np.min(Zt), np.max(Zt)
                levels = np.geomspace(tlo, thi, 7)[1:-1] if logz and tlo > 0 else np.linspace(tlo, thi, 7)[1:-1]
                cs = ax.contour(np.arange(len(xs)), np.arange(len(ys)), Zt, levels=levels, colors="white",
                                linewidths=0.8, linestyles="--")
                ax.clabel(cs, fmt="%.3g", fontsize=6.5)
                ax.set_title("mean over seeds; dashed contours: theory", fontsize=8)
            else:
                ax.set_title("mean over seeds", fontsize=8)
            step = max(1, -(-len(xs) // 6))
            ax.set_xticks(range(0, len(xs), step), [fmt(v) for v in xs[::step]])
            ax.set_yticks(range(len(ys)), [fmt(v) for v in ys])
            ax.set_xlabel(colour)
            ax.set_ylabel(fy)
        elif numeric_colour:
            ax = right.subplots()
            for k, combo in enumerate(combos):
                st = style.series(k)
                rows = sorted((t for t in table if tuple(_key(t[0].get(p)) for p in facets) == combo), key=lambda t: t[0][colour])
                x = np.array([t[0][colour] for t in rows], float)
                m = np.array([t[3] for t in rows])
                h = np.array([t[4] for t in rows])
                lab = ", ".join(f"{p} = {fmt(rows[0][0].get(p))}" for p in facets) or "mean over seeds"
                ax.errorbar(x, m, yerr=h, color=st["color"], marker=st["marker"], linestyle=st["linestyle"], capsize=2,
                            label=lab if len(combos) <= MAX_STYLED else None)
                t = [r[5] for r in rows]
                if all(v is not None for v in t):
                    ax.plot(x, t, color=st["color"], linestyle="--", linewidth=0.8,
                            label="theory" if k == 0 else None)
            if isinstance(norm, colors.LogNorm):
                ax.set_xscale("log")
            ax.set_yscale(scale)
            ax.set_xlabel(colour)
            ax.set_ylabel(f"{ylabel}{yunit}, {last}")
            if ax.get_legend_handles_labels()[0]:
                right.legend(loc="outside lower center", frameon=False, ncols=2)
        what = f"{world} world" + (f", regime {metas[0]['config']['regime']['name']}" if "regime.name" not in params else "")
        fig.suptitle(f"Sweep of the {what} over {', '.join(params)} ({len(runs)} runs): {ylabel} per generation\n"
                     f"{bands.describe(seeds)} (bands)" + ("; dashed: theory" if theory_name and any(
                         f"theory/{theory_name}" in rec for rec, _ in runs) else ""), fontsize=8.5)
        paths = style.save(fig, out_dir, stem)
    md = Path(out_dir) / f"{stem}.md"
    head = params + ["seeds", "generations", f"{name}{' / ' + unit if unit else ''}, last generation (95% t-interval)", "theory"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for f, S, G, m, h, t in table:
        cells = [fmt(f.get(p)) for p in params] + [str(S), str(G), f"{m:.4g} ± {h:.2g}", "–" if t is None else f"{t:.4g}"]
        lines.append("| " + " | ".join(cells) + " |")
    md.write_text(f"# Sweep of the {world} world: {name}\n\n" + "\n".join(lines) + "\n")
    return paths + [md]


def main(argv=None) -> None:
    cli.main(
        plot, __doc__, "runs that differ in a parameter", argv,
        metric=dict(default=None, help="the record to draw (default: the world's main metric)"),
    )


if __name__ == "__main__":
    main()
