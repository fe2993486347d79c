"""The run settings shared by the Python API and the command line (``run.*``).

One dataclass, one set of defaults: ``collapse-sim run.n_seeds=...`` and
``collapse_sim.simulate(..., n_seeds=...)`` both start from these values.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

PRECISIONS = ("float32", "float64")
COMPILE_EFFORTS = ("auto", "fast", "full")
SEED_MAX = 2**32 - 1  # run.seed is a uint32


@dataclasses.dataclass
class RunConfig:
    """n_generations: generations after generation 0 (records have G+1 entries).
    n_seeds: independent seeds, run together under vmap.  seed: root seed.
    precision: float32 | float64 for the whole run.  theory_designs: designs
    sampled by the theory curves that are exact in the noise but averaged over
    the design.  chunk_generations: generations per compiled chunk; a
    checkpoint is written after each (0 = all at once).  seed_batch: seeds
    vmapped together in one call (0 = all); batches run one after another, which
    bounds memory (keys are per seed, so batching changes a seed's numbers by float rounding at
    most: README.md, Running).  resume: continue from a
    checkpoint of the same config in the output folder.  progress: show a
    progress bar (plain lines when not on a terminal).  figure: render the
    world's figure after the run (from the saved results).  out_dir: where
    results go (default: hydra's output directory).  experiment: the name of the
    experiment config that made the run (set by ``conf/experiment/*.yaml``; figure
    scripts select their runs by it; not part of the run's hash).  compile_cache: keep
    compiled programs in JAX's persistent cache (``$XDG_CACHE_HOME/collapse_sim/jax`` or
    ``~/.cache/collapse_sim/jax``; ``COLLAPSE_SIM_NO_CACHE=1`` also turns it off).
    common_random_numbers: runs (and the points of a sweep) that differ only in traced
    numbers (``simulator/traced.py``) draw the same random numbers seed for seed (True),
    or draws that depend on those numbers too (False; ``simulator/compute.py``).
    compile_effort: how hard XLA optimises the compiled program: ``full`` (XLA's default),
    ``fast`` (LLVM's optimisations off: compiles about 3x faster, computes up to 3x slower;
    numbers differ from ``full`` by float rounding), ``auto`` (``fast`` for the closed-form
    worlds at up to 65,536 seed-generations a run or grid point, where compiling is nearly all the time;
    ``full`` otherwise)."""

    n_generations: int = 10
    n_seeds: int = 256
    seed: int = 0
    precision: str = "float64"
    theory_designs: int = 400
    chunk_generations: int = 10
    seed_batch: int = 0
    resume: bool = True
    progress: bool = True
    figure: bool = True
    out_dir: Optional[str] = None
    distributed: bool = False
    experiment: str = ""
    compile_cache: bool = True
    common_random_numbers: bool = True
    compile_effort: str = "auto"

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"run.precision={self.precision!r} is not known; allowed: {', '.join(PRECISIONS)}")
        if self.n_generations < 0:
            raise ValueError(f"run.n_generations={self.n_generations} must be >= 0")
        if self.n_seeds < 1:
            raise ValueError(f"run.n_seeds={self.n_seeds} must be >= 1")
        if self.seed_batch < 0:
            raise ValueError(f"run.seed_batch={self.seed_batch} must be >= 0 (0 = all seeds at once)")
        if self.chunk_generations < 0:
            raise ValueError(f"run.chunk_generations={self.chunk_generations} must be >= 0 (0 = one chunk)")
        if self.compile_effort not in COMPILE_EFFORTS:
            raise ValueError(f"run.compile_effort={self.compile_effort!r} is not known; allowed: {', '.join(COMPILE_EFFORTS)}")
        if self.theory_designs < 2:
            raise ValueError(f"run.theory_designs={self.theory_designs} must be >= 2")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed <= SEED_MAX:
            # jax.random.key keeps 64 bits in float64 but only the low 32 in float32, so only
            # seeds below 2**32 name the same keys in both precisions.
            raise ValueError(f"run.seed={self.seed!r} is out of range; allowed: a whole number in [0, {SEED_MAX}] (2**32 - 1)")
