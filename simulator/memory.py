"""How much memory a run needs, estimated from its config before anything is compiled.

``estimate(config)`` adds up, in bytes, what a run holds at its peak:

- the carried state of every seed (the driver keeps all seeds' carries between
  chunks, whatever ``run.seed_batch``): the world's truth, the newest model and
  the generation-0 model, and the regime's rows, ``(G+1)`` training sets for the
  accumulate regimes (regression's and categorical's ``accumulate``: the running
  sums of their statistics), one or two for the others;
- the work of one seed batch (``run.seed_batch`` seeds, all of them when 0)
  during a generation: the training set, the sampled rows and what the fit builds
  (Gram matrices, responsibilities, n-gram tables, gradients and Adam moments);
- the records of every seed and generation, which the host holds twice while it
  saves them, and the world's shared arrays (true distributions, corpora).

Each part is the size of the arrays the code makes (shapes from the config; the
n-gram tables and transformer parameters by ``jax.eval_shape``, which traces and
allocates nothing), the work times ``MARGIN`` for XLA's buffers and copies.
Against the peak resident memory of ``world=ngram regime=accumulate`` runs on
the CPU it is within about 30%: 4 seeds 1.1 GB (measured 1.2), 16 seeds 2.1 (2.6),
48 seeds 4.8 (6.7), 256 seeds with ``run.seed_batch=64`` 20.9 (17.4), all 256
seeds at once 22.2 (README.md: 21).

``check(config)`` raises ValueError when the estimate exceeds the memory
available (``MemAvailable`` of /proc/meminfo, or the physical pages where there
is none; on an accelerator, the carried state and the work are also compared
with the devices' memory), naming the estimate, the memory and the settings
that shrink it.  The driver calls it before the world is built.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Optional

import numpy as np

MARGIN = 1.5  # XLA's buffers: a scan's carry in and out, the copies of an update
PROCESS_BYTES = 600e6  # the Python process with JAX, XLA and the compiled programs
RECORD_COPIES = 3  # host records: the gathered parts, their concatenation, the checkpoint
ACCUMULATE = ("accumulate", "accumulate_subsample")


@dataclasses.dataclass
class Footprint:
    """Bytes of one world, per seed unless named ``shared``: a training row, the rows of
    a training set, one model, the truth, the fit's working arrays per training set,
    one generation's records, and arrays shared by all seeds."""

    row: float
    rows: int
    params: float
    truth: float
    work: float
    record: float
    shared: float = 0.0
    state: Optional[float] = None  # the regime's carried bytes where not rows (a running summary)


def _item(config) -> int:
    return 8 if config.run.precision == "float64" else 4


def _regime_sets(name: str, G: int) -> int:
    """Training sets of rows a fit sees: the pool of every generation (masked) or one."""
    return G + 1 if name in ACCUMULATE else 1


def _carried_sets(name: str, G: int) -> int:
    """Training sets of rows the regime carries from generation to generation: the pool,
    the real data (mix), the data being edited and its source (token_edit), none (replace)."""
    return {"replace": 0, "mix": 1, "token_edit": 2}.get(name, G + 1)


def _regression(w, f, G, regime) -> Footprint:
    d, T = w.d, w.T
    fixed = 1 if w.design == "fixed" else 0
    summarized = regime == "accumulate"  # the running sums of G̃, X̃ᵀWy, n (world.summarize)
    rows_fit = T * (1 if summarized else _regime_sets(regime, G))  # accumulate_subsample scores its whole pool
    return Footprint(
        row=(d + 2) * f, rows=T, params=(d + 2) * f, truth=(d + fixed * T * (d + 1)) * f,
        work=(rows_fit * (d + 2) + 4 * d * d) * f, record=8 * 8,
        state=(d * d + d + 2) * f if summarized else None,
    )


def _gaussian(w, f, G, regime) -> Footprint:
    from collapse_sim.simulator.worlds import sample_sizes

    d, N = w.d, sample_sizes.n_rows(w.M, w.M_schedule)
    return Footprint(
        row=(d + 1) * f, rows=N, params=2 * (d + d * d) * f, truth=2 * d * f,
        work=(3 * N * (d + 1) * _regime_sets(regime, G) + 6 * d * d) * f, record=10 * 8,
    )


def _gmm(w, f, G, regime) -> Footprint:
    from collapse_sim.simulator.worlds import sample_sizes

    d, K, N = w.d, w.K, sample_sizes.n_rows(w.M, w.M_schedule)
    n_fit = N * _regime_sets(regime, G)
    params = K * (1 + d + d * d)
    tail = w.tail_points * w.true_K * d
    return Footprint(
        row=(d + 1) * f, rows=N, params=params * f, truth=w.true_K * (1 + d + d * d) * f,
        work=(n_fit * (d + 1) * 3 + 4 * n_fit * K * (d + 1) + 6 * params + 2 * tail) * f,
        record=(12 + (params if w.record_params else 0)) * 8,
    )


def _kde(w, f, G, regime) -> Footprint:
    from collapse_sim.simulator.worlds import sample_sizes

    d, N = w.d, sample_sizes.n_rows(w.M, w.M_schedule)
    n_fit = N * _regime_sets(regime, G)
    return Footprint(
        row=(d + 1) * f, rows=N, params=(N * d + d + 1 + w.n_test) * f, truth=(d + w.n_test * (d + 1)) * f,
        work=(3 * n_fit * (d + 1) + 64 * n_fit * (d + 2)) * f, record=8 * 8, shared=3 * w.n_test * (d + 1) * 8,
    )


def _categorical(w, f, G, regime) -> Footprint:
    from collapse_sim.simulator.worlds import sample_sizes

    V, N = w.V, sample_sizes.n_rows(w.M, w.M_schedule)
    summarized = regime == "accumulate"  # the running counts (world.summarize)
    return Footprint(
        row=4 + f, rows=N, params=V * f, truth=V * f,
        work=(10 * V + 3 * N * (1 if summarized else _regime_sets(regime, G))) * f + 4 * N,
        record=(12 + (V if w.record_probs else 0)) * 8,
        shared=V * (3 * 8 + 2 * f + 1),  # p* and the tail set in numpy (float64) and on the device
        state=(V + 2) * f if summarized else None,
    )


def _text_sizes(w):
    N = w.train_blocks
    M = max(1, round(w.synthetic_ratio * N))
    return N, max(N, M), w.block_len


def _text_records(w) -> float:
    return 16 * 8 + w.inspect_blocks * 8 + w.record_blocks * w.block_len * 4


def _text_shared(w) -> float:
    # the reservoir and test blocks (int32 on the device, int64 in numpy) and the corpus text
    return (w.reservoir_blocks + w.test_blocks) * w.block_len * (4 + 8) + 200e6


def _eval_shape_bytes(fn, *args) -> float:
    import jax

    out = jax.eval_shape(fn, *args)
    return float(sum(math.prod(a.shape) * a.dtype.itemsize for a in jax.tree.leaves(out)))


def _ngram(w, f, G, regime) -> Footprint:
    import jax
    import jax.numpy as jnp

    from collapse_sim.simulator.lm import ngram
    from collapse_sim.simulator.worlds.ngram import model_config

    N, rows, W = _text_sizes(w)
    n_fit = rows * _regime_sets(regime, G)
    mc = model_config(w)
    params = _eval_shape_bytes(lambda t, wt: ngram.fit(mc, t, wt),
                               jax.ShapeDtypeStruct((n_fit, W), jnp.int32), jax.ShapeDtypeStruct((n_fit,), jnp.float32))
    return Footprint(
        row=W * 4 + 4, rows=rows, params=params, truth=0.0,
        work=params + 3 * rows * (W * 4 + 4) + 2 * w.test_blocks * W * 4 * 8,
        record=_text_records(w), shared=_text_shared(w),
    )


def _transformer(w, f, G, regime) -> Footprint:
    import jax

    from collapse_sim.simulator.lm import transformer as tf
    from collapse_sim.simulator.worlds.transformer import model_config

    N, rows, W = _text_sizes(w)
    mc = model_config(w)
    params = _eval_shape_bytes(lambda k: tf.init_params(k, mc), jax.random.key(0))
    d, L, V, B = mc.d_model, mc.n_layers, mc.vocab_size, w.batch_size
    # a training step: activations kept for the backward pass and the logits; evaluation: the
    # test blocks' logits, a chunk of blocks at a time
    step = 4 * B * W * (20 * d * L + 3 * V)
    scores = 4 * min(w.test_blocks, 64) * W * (V * 3 + 20 * d * L)
    return Footprint(
        row=W * 4 + 4, rows=rows, params=params, truth=0.0,
        work=4 * params + step + scores + 3 * rows * (W * 4 + 4),
        record=_text_records(w), shared=_text_shared(w),
    )


FOOTPRINTS = {
    "regression": _regression,
    "gaussian": _gaussian,
    "gmm": _gmm,
    "kde": _kde,
    "categorical": _categorical,
    "ngram": _ngram,
    "transformer": _transformer,
}


def breakdown(config) -> dict:
    """The parts of :func:`estimate`, in bytes: ``carry`` (all seeds, on the device),
    ``work`` (one seed batch during a chunk), ``saving`` (the host's copy of every carry
    and the checkpoint written from it, after a chunk, when the work is freed),
    ``records`` (all seeds and generations, host), ``shared`` and ``process`` (the Python process itself)."""
    run, G = config.run, config.run.n_generations
    S = run.n_seeds
    batch = min(run.seed_batch or S, S)
    fp = FOOTPRINTS[config.world.name](config.world, _item(config), G, config.regime.name)
    state = fp.state if fp.state is not None else fp.rows * _carried_sets(config.regime.name, G) * fp.row
    carry = fp.truth + 2 * fp.params + state
    work = fp.work + 2 * fp.rows * fp.row + 2 * fp.params
    chunk = min(run.chunk_generations or G, G) if G else 1
    return {
        "carry": S * carry,  # donated: updated in place
        "work": MARGIN * batch * (work + chunk * fp.record),
        "saving": 2 * S * carry,
        "records": RECORD_COPIES * S * (G + 1) * fp.record,
        "shared": fp.shared,
        "process": PROCESS_BYTES,
    }


def _total(parts: dict) -> int:
    """The peak: what is always held, plus the larger of a chunk's work and a save."""
    held = parts["process"] + parts["shared"] + parts["records"] + parts["carry"]
    return int(held + max(parts["work"], parts["saving"]))


def estimate(config) -> int:
    """Bytes the run is expected to hold at its peak (module docstring)."""
    return _total(breakdown(config))


def available() -> Optional[int]:
    """Bytes of memory available now: MemAvailable of /proc/meminfo, else the physical
    pages (``os.sysconf``); None where neither is known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def _knobs(config, parts: dict, have: float) -> str:
    """The settings that shrink the run, with values that fit ``have`` bytes where they can
    be computed: a seed batch, a seed count; then the sizes that shrink every part."""
    run, w, r = config.run, config.world, config.regime.name
    S = run.n_seeds
    batch = min(run.seed_batch or S, S)
    fixed = parts["process"] + parts["shared"]
    c, rec, work = parts["carry"] / S, parts["records"] / S, parts["work"] / batch  # per seed
    out = []
    room = have - fixed - S * (c + rec)
    if room >= 2 * S * c and work > 0 and 1 <= int(room // work) < batch:
        out.append(f"run.seed_batch={int(room // work)} (seeds run together; now {run.seed_batch})")
    fit = int((have - fixed) // (c + rec + max(work, 2 * c))) if have > fixed else 0
    if 1 <= fit < S:
        out.append(f"run.n_seeds={fit} (now {S})")
    if r in ACCUMULATE or parts["records"] > parts["carry"]:
        out.append(f"fewer run.n_generations (now {run.n_generations})")
    sizes = {"regression": ("d", "T"), "gaussian": ("M", "d"), "gmm": ("M", "K", "d"), "kde": ("M", "d"),
             "categorical": ("V", "M"), "ngram": ("train_blocks", "order"), "transformer": ("train_blocks", "d_model")}
    for field in sizes.get(w.name, ()):
        if getattr(w, field, None) is not None:
            out.append(f"a smaller world.{field} (now {getattr(w, field)})")
    if run.precision == "float64" and w.name not in ("ngram", "transformer"):
        out.append("run.precision=float32")
    return ", ".join(out)


def device_memory() -> Optional[int]:
    """Bytes of memory of all local accelerators together; None on the CPU or where unknown."""
    import jax

    if jax.default_backend() == "cpu":
        return None
    try:
        return sum(int(d.memory_stats()["bytes_limit"]) for d in jax.local_devices())
    except (AttributeError, KeyError, TypeError, RuntimeError):
        return None


def check(config, memory: Optional[int] = None) -> int:
    """Raise ValueError when :func:`estimate` exceeds ``memory`` (default: :func:`available`),
    or, on an accelerator, the carried state and a batch's work exceed the devices' memory;
    return the estimate."""
    parts = breakdown(config)
    need = _total(parts)
    have = available() if memory is None else memory
    on_device = device_memory() if memory is None else None
    if on_device is not None and parts["carry"] + parts["work"] > on_device:
        raise ValueError(
            f"this run needs about {_gb(parts['carry'] + parts['work'])} of accelerator memory (the carried "
            f"state of every seed and one seed batch's work) but the devices have {_gb(on_device)}; to shrink "
            f"it set {_knobs(config, parts, on_device)}"
        )
    if on_device is not None:  # the carry and the work live on the devices; the host holds the rest
        need = int(parts["process"] + parts["shared"] + parts["records"] + parts["saving"])
    if have is not None and need > have:
        big = max(("carry", "work", "records"), key=parts.get)
        what = {"carry": "the carried state of every seed", "work": "one seed batch's working arrays",
                "records": "the records of every seed and generation"}[big]
        raise ValueError(
            f"this run needs about {_gb(need)} of memory ({_gb(parts[big])} of it {what}) but {_gb(have)} is "
            f"available; to shrink it set {_knobs(config, parts, have)}"
        )
    return need
