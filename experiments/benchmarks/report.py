"""Reports of ``collapse-bench``: the markdown tables and the scaling plot, made from
the report dict that ``benchmark.json`` holds (so they can be re-rendered from a
saved run with ``collapse-bench --render``)."""

from __future__ import annotations

import math
from pathlib import Path

TARGETS = {"vs_loop": 20.0, "vs_batched": 2.0, "at_seeds": 256, "vs_torch": 1.0, "peak_share": 0.30}
TARGET_VS_LOOP = TARGETS["vs_loop"]
TARGET_VS_BATCHED = TARGETS["vs_batched"]
TARGET_SEEDS = TARGETS["at_seeds"]
TARGET_VS_TORCH = TARGETS["vs_torch"]
TARGET_PEAK_SHARE = TARGETS["peak_share"]


def _fmt(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "–"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _cell(m: dict) -> str:
    return _fmt(m["throughput"]) + ("\\*" if m["scaled"] else "")


def _ok(flag: bool) -> str:
    return "met" if flag else "**missed**"


def targets(report: dict) -> dict:
    rows = [r for r in report["closed_form"] if r["seeds"] == TARGET_SEEDS]
    out = {"closed_form": [], "transformer": None}
    for r in rows:
        out["closed_form"].append(
            {
                "workload": r["workload"],
                "d": r["d"],
                "vs_loop": r["engine_vs_loop"],
                "vs_loop_met": r["engine_vs_loop"] >= TARGET_VS_LOOP,
                "vs_batched": r["engine_vs_batched"],
                "vs_batched_met": r["engine_vs_batched"] >= TARGET_VS_BATCHED,
            }
        )
    tr = report.get("transformer")
    if tr:
        out["transformer"] = {
            "vs_torch": tr["vs_torch"],
            "vs_torch_met": tr["vs_torch"] is not None and tr["vs_torch"] >= TARGET_VS_TORCH,
            "peak_share": tr["peak_share"],
            "peak_share_met": tr["peak_share"] >= TARGET_PEAK_SHARE,
        }
    return out


def target_table(report: dict) -> list[str]:
    """The 256-seed rows: throughputs and the two ratios against their targets."""
    rows = {(r["workload"], r["d"]): r for r in report["closed_form"] if r["seeds"] == TARGET_SEEDS}
    if not rows:
        return []
    lines = [
        f"| workload | d | engine | per-seed loop | batched numpy | engine ÷ loop (target ≥ {TARGET_VS_LOOP:.0f}×) | engine ÷ batched (target ≥ {TARGET_VS_BATCHED:.0f}×) |",
        "|---|---|---|---|---|---|---|",
    ]
    for t in targets(report)["closed_form"]:
        r = rows[(t["workload"], t["d"])]
        lines.append(
            f"| {t['workload']} | {t['d']} | {_cell(r['engine'])} | {_cell(r['loop_numpy'])} | {_cell(r['batched_numpy'])} | "
            f"{_fmt(t['vs_loop'])}× {_ok(t['vs_loop_met'])} | {_fmt(t['vs_batched'])}× {_ok(t['vs_batched_met'])} |"
        )
    return lines


def transformer_table(report: dict) -> list[str]:
    tr = report.get("transformer")
    if not tr:
        return []
    jx, th = tr["jax"], tr["torch"]
    m = jx["model"]
    lines = [
        f"Model: {m['n_layers']} layers, d={m['d_model']}, {m['n_heads']} heads, context {m['context']}, vocabulary {m['vocab_size']}, batch {jx['batch']}, "
        f"AdamW + clipping, float32, random tokens; {jx['steps']} steps timed, best of {tr.get('rounds', '?')} interleaved rounds; JAX compile {jx['compile_s']:.1f} s.",
        "",
        "| | train tokens/s | achieved GFLOP/s | share of matmul peak |",
        "|---|---|---|---|",
        f"| JAX (`make_train`, one jitted `lax.scan`) | {_fmt(jx['tokens_per_s'])} | {tr['achieved_flops_per_s'] / 1e9:.1f} | {100 * tr['peak_share']:.0f}% (target ≥ {100 * TARGET_PEAK_SHARE:.0f}%: {_ok(tr['peak_share'] >= TARGET_PEAK_SHARE)}) |",
    ]
    if th:
        lines.append(
            f"| PyTorch {report['machine']['versions'].get('torch')} eager, {th['threads']} thread(s) | {_fmt(th['tokens_per_s'])} | "
            f"{jx['flops_per_token']['train'] * th['tokens_per_s'] / 1e9:.1f} | {100 * jx['flops_per_token']['train'] * th['tokens_per_s'] / tr['matmul_peak']['flops_per_s']:.0f}% |"
        )
        lines.append(f"| JAX ÷ PyTorch | {tr['vs_torch']:.2f}× (target ≥ 1×: {_ok(tr['vs_torch'] >= TARGET_VS_TORCH)}) | | |")
        by = ", ".join(f"{n} thread(s) {_fmt(v)}" for n, v in tr.get("torch_by_threads", {}).items())
        lines += ["", f"PyTorch tokens/s by `torch.set_num_threads`: {by} (the faster is compared)."]
    else:
        lines.append("| PyTorch | not installed (`pip install -e .[bench]`) | | |")
    lines += [
        "",
        f"Matmul peak: float32 {tr['matmul_peak']['n']}² `jnp.matmul`, best of 5, measured before each round and at the end: "
        + ", ".join(f"{p['flops_per_s'] / 1e9:.0f}" for p in tr["matmul_peak"]["all"])
        + " GFLOP/s (the largest is the peak). "
        f"FLOPs per token: {tr['flops_method']}; {jx['flops_per_token']['train'] / 1e3:.0f} kFLOP/token analytic, "
        f"{(jx['xla_flops_per_step'] or float('nan')) / (jx['batch'] * m['context']) / 1e3:.0f} kFLOP/token by XLA "
        f"({tr['achieved_flops_per_s_xla'] / 1e9:.1f} GFLOP/s).",
    ]
    return lines


def lm_speed_tables(report: dict) -> list[str]:
    """The text world per generation: sampling (whole cache against the default
    segments) and world=transformer_pretrained's fine-tuning + sampling per seed."""
    lm = report.get("lm_speed")
    if not lm:
        return []
    S, segs = lm["seeds"], lm["cache_segments"]
    first = lm["sampling"][0]
    lines = [
        (f"Sampling a generation's synthetic set as simulator/worlds/transformer.py does: `make_sampler`, {first['rows']} blocks of "
        f"{first['block_len']} tokens per seed, each started from the BOS byte ({first['block_len'] - 1} sampled tokens per block), "
        f"temperature {first['temperature']:g}, {S} seeds vmapped as the engine runs them, {lm['precision']}; best of {lm['rounds']} "
        f"interleaved rounds (1-minute load {lm['loadavg_1min'][0]:.1f} at the start, {lm['loadavg_1min'][1]:.1f} at the end). "
        f"The reference carries the whole context-long cache at every step (`cache_segments=1`); the current sampler splits the "
        f"positions into {segs} scans (`cache_segments={segs}`, the default); current ÷ reference is a ratio of seconds (below 1: the "
        "current is faster); same tokens: the share of sampled tokens the two draw alike."),
        "",
        f"| world (model) | sampler | s per generation ({S} seeds) | tokens/s | compile s | current ÷ reference (s) | same tokens |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in lm["sampling"]:
        m = r["model"]
        for name, f in (("reference, `cache_segments=1`", r["reference"]), (f"current, `cache_segments={segs}`", r["current"])):
            ratio = f"{r['current_vs_reference']:.2f}×" if f is r["current"] else ""
            same = f"{100 * r['same_tokens_share']:.1f}%" if f is r["current"] else ""
            lines.append(
                f"| `world={r['world']}` ({m['n_layers']} layers, d={m['d_model']}) | {name} | {f['seconds']:.2f} | "
                f"{_fmt(f['tokens_per_s'])} | {f['compile_s']:.1f} | {ratio} | {same} |"
            )
    ft, gen = lm["finetune"], lm["generation"]
    tr, m = ft["train"], ft["model"]
    lines += [
        "",
        f"A generation of `world={gen['world']}` per seed: fine-tuning the base ({m['n_layers']} layers, d={m['d_model']}) with "
        f"`make_train` at the world's settings (batch {tr['batch_size']}, blocks of {m['context'] + 1} tokens, lr {tr['lr']:g}, warmup "
        f"{tr['warmup']}, AdamW + clipping, random tokens), {ft['steps_timed']} steps timed, {S} seeds vmapped, compile "
        f"{ft['compile_s']:.1f} s"
        + (f", {ft['achieved_flops_per_s'] / 1e9:.1f} GFLOP/s by the analytic count of the training table" if "achieved_flops_per_s" in ft else "")
        + f", scaled to the world's {gen['finetune_steps']} steps; plus the sampling above (current sampler). "
        "Evaluation (the test NLL), the edit rule of the token-editing regimes and compilation are not included. "
        f"Tokens/s count all {S} seeds' tokens; seconds are per seed (the {S}-seed time ÷ {S}).",
        "",
        "| part | s per generation per seed | tokens/s |",
        "|---|---|---|",
        (f"| fine-tuning, {gen['finetune_steps']} steps of {tr['batch_size']} × {m['context']} tokens | {gen['finetune_s_per_seed']:.1f} | "
         f"{_fmt(ft['tokens_per_s'])} |"),
        (f"| sampling, {lm['sampling'][-1]['rows']} blocks × {lm['sampling'][-1]['block_len'] - 1} tokens | {gen['sample_s_per_seed']:.1f} | "
         f"{_fmt(lm['sampling'][-1]['current']['tokens_per_s'])} |"),
        f"| total | {gen['total_s_per_seed']:.1f} | |",
    ]
    return lines


def markdown(report: dict) -> str:
    mach = report["machine"]
    v = mach["versions"]
    blas = next((b for b in mach["blas"] if b.get("internal_api") == "openblas"), {})
    settings = report["settings"]
    lines = [
        f"# collapse-sim benchmark — {mach['date']}",
        "",
        f"Machine: {mach['cpu']}, {mach['cores']} cores, {mach['memory_gib']} GiB; JAX backend `{mach['jax_backend']}` ({', '.join(mach['jax_devices'])}). "
        f"jax {v.get('jax')}, jaxlib {v.get('jaxlib')}, flax {v.get('flax')}, optax {v.get('optax')}, numpy {v.get('numpy')} "
        f"(OpenBLAS {blas.get('version', '?')}, kernel {blas.get('architecture', '?')}), "
        f"BLAS threads {settings['blas_threads']} for the engine's LAPACK calls and the references, "
        f"torch {v.get('torch')}, Python {v.get('python')}. Load average (1 min) at start {mach['loadavg_start'][0]:.1f}, "
        f"at end {report.get('loadavg_end', [float('nan')])[0]:.1f}. Command: `{mach['command']}`; total {report.get('total_seconds', float('nan')):.0f} s.",
        "",
        "## Closed-form worlds",
        "",
        f"Seeds × generations per second (G = {settings['generations']}, generation 0 included in the time; float64 throughout). "
        "*engine*: `make_simulate`, one jit-compiled call, seeds vmapped, generations scanned; *per-seed loop*: numpy, one seed "
        "at a time (the published codes' way); *batched numpy*: every seed of a chunk at once. "
        f"\\* = measured on fewer seeds and scaled linearly (a call would have exceeded {settings['budget_s']:.2g} s "
        f"({settings['loop_budget_s']:.2g} s for the loop); seeds are independent, so cost is linear in seeds). "
        "Compile time is `lower().compile()` for that seed count. z: largest |z| over generations of the difference between the engine's and "
        "the batched reference's mean test error (only with ≥ 64 seeds on both sides).",
        "",
        f"### Targets at {TARGET_SEEDS} seeds",
        "",
        *target_table(report),
        "",
        "### Full sweep",
        "",
        "| workload | d | rows | seeds | engine | compile s | per-seed loop | batched numpy | ÷ loop | ÷ batched | z |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["closed_form"]:
        z = r["agreement"].get("batched", {}).get("max_abs_z")
        lines.append(
            f"| {r['workload']} | {r['d']} | {r['rows']} | {r['seeds']} | {_cell(r['engine'])} | {r['compile_s']:.1f} | "
            f"{_cell(r['loop_numpy'])} | {_cell(r['batched_numpy'])} | {_fmt(r['engine_vs_loop'])} | {_fmt(r['engine_vs_batched'])} | "
            f"{'–' if z is None else f'{z:.1f}'} |"
        )
    if report.get("kernels"):
        lines += [
            "",
            "## Kernels",
            "",
            "Batched float64 kernels behind the worlds (milliseconds for the whole batch, best of up to 5), JAX jit against numpy, "
            f"{settings['blas_threads']} BLAS thread(s), and JAX again with one BLAS thread per core (JAX's CPU LAPACK kernels run on scipy's OpenBLAS): "
            "the regression fit of the engine runs `eigh` on the Gram matrix (to record its smallest eigenvalue and give the "
            "minimum-norm solution); the references `solve`. The Gaussian world samples through `eigh`; the categorical world draws "
            "M outcomes (rows) where the batched reference draws the counts.",
            "",
            f"| kernel | d (V) | batch | rows | JAX ms | numpy ms | JAX ms, {mach['cores']} BLAS threads |",
            "|---|---|---|---|---|---|---|",
        ]
        for k in report["kernels"]:
            tt = k.get("jax_s_blas_threads_per_core")
            lines.append(
                f"| {k['kernel']} | {k['d']} | {k['matrices']} | {k['rows']} | {k['jax_s'] * 1e3:.2f} | {k['numpy_s'] * 1e3:.2f} | "
                f"{'–' if tt is None else f'{tt * 1e3:.2f}'} |"
            )
    profiles = list(report.get("profiles", []))
    if report.get("transformer") and report["transformer"]["jax"].get("profile"):
        profiles.append(report["transformer"]["jax"]["profile"])
    for prof in profiles:
        lines += [
            "",
            f"### Profile: {prof.get('name') or 'engine, %s, d=%s, %s seeds' % (prof['workload'], prof['d'], prof['seeds'])}",
            "",
            f"`jax.profiler` trace of {prof['calls']} call(s); XLA ops summed over the CPU threads ({prof['busy_ms_per_call']:.1f} ms of thread time per call). "
            + ("By kind: " + ", ".join(f"{k} {100 * v:.0f}%" for k, v in prof.get("kinds", {}).items()) + ". " if prof.get("kinds") else "")
            + "Top ops:",
            "",
            "| XLA op | from (jax op) | ms / call | share |",
            "|---|---|---|---|",
        ]
        for op in prof["ops"]:
            lines.append(f"| {op['op']} | `{op['source'][:70]}` | {op['ms_per_call']:.2f} | {100 * op['share']:.0f}% |")
    if report.get("transformer"):
        lines += ["", "## Transformer world (training)", "", *transformer_table(report)]
    if report.get("lm_speed"):
        lines += ["", "## Transformer world (a generation: sampling and fine-tuning)", "", *lm_speed_tables(report)]
    if report.get("skipped"):
        lines += ["", "## Skipped", ""] + [f"- {s}" for s in report["skipped"]]
    return "\n".join(lines) + "\n"


def plot_scaling(report: dict, out: Path) -> None:
    """scaling.png / scaling.pdf: throughput against seeds, one panel per workload, in the
    gallery's look (figures/style.py)."""
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    from collapse_sim.figures import style

    rows = report["closed_form"]
    workloads = list(dict.fromkeys(r["workload"] for r in rows))
    dims = sorted({r["d"] for r in rows})
    ncols = min(4, len(workloads) + 1)
    nrows = math.ceil((len(workloads) + 1) / ncols)
    methods = [("engine", "engine (JAX)", "-", "o"), ("batched_numpy", "batched numpy", "--", "s"), ("loop_numpy", "per-seed numpy loop", ":", "^")]
    colors = {d: style.series(i + 1)["color"] for i, d in enumerate(dims)}
    with plt.rc_context(style.RC):
        fig, axes = style.subplots(nrows, ncols, figsize=(3.0 * ncols, 2.6 * nrows + 0.4), squeeze=False)
        labelled = set()

        def once(key, text):
            new = key not in labelled
            labelled.add(key)
            return text if new else None

        for ax, wl in zip(axes.flat, workloads):
            for d in dims:
                sel = sorted((r for r in rows if r["workload"] == wl and r["d"] == d), key=lambda r: r["seeds"])
                if not sel:
                    continue
                x = [r["seeds"] for r in sel]
                for key, label, ls, mk in methods:
                    y = [r[key]["throughput"] for r in sel]
                    ax.plot(x, y, ls=ls, marker=mk, color=colors[d], label=once((key, d), f"{label}, d = {d}"))
                    scaled = [(xi, yi) for xi, yi, r in zip(x, y, sel) if r[key]["scaled"]]
                    if scaled:  # hollow: scaled linearly from fewer seeds
                        ax.plot(*zip(*scaled), mk, color=colors[d], mfc="white", linestyle="none",
                                label=once("scaled", "hollow: scaled from fewer seeds"))
            ax.set_xscale("log")
            ax.set_yscale("log")
            seeds = sorted({r["seeds"] for r in rows if r["workload"] == wl})
            ax.set_xticks(seeds, [str(s) for s in seeds])
            ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
            ax.set_title(wl)
            ax.set_xlabel("seeds")
            ax.set_ylabel("seeds × generations / s")
            ax.grid(alpha=0.3, which="both", lw=0.4)
        legend_ax = axes.flat[len(workloads)]
        handles = {}
        for ax in axes.flat[: len(workloads)]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        keys = sorted(handles, key=lambda k: k.startswith("hollow"))  # the marker note last
        legend_ax.legend([handles[k] for k in keys], keys, loc="center", frameon=False)
        legend_ax.axis("off")
        for ax in list(axes.flat)[len(workloads) + 1 :]:
            ax.axis("off")
        mach = report["machine"]
        fig.suptitle(
            f"collapse-sim throughput, {mach['cpu']} ({mach['cores']} cores, {mach['jax_backend']}), {mach['date'][:10]}, "
            f"load average {mach['loadavg_start'][0]:.1f} at start (float64, G = {report['settings']['generations']})"
        )
        style.save(fig, out, "scaling")


def write_reports(report: dict, out: Path) -> None:
    """benchmark.md and scaling.png/.pdf from a report (as saved in benchmark.json)."""
    (out / "benchmark.md").write_text(markdown(report))
    if report["closed_form"]:
        plot_scaling(report, out)
