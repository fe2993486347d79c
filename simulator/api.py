"""The Python front door: ``simulate`` (in memory) and ``run`` (saved, resumable).

    import collapse_sim as cs
    r = cs.simulate("regression", "mix", real_fraction=0.3, n_seeds=256, n_generations=10)
    r["test_error"]            # (S, G+1) per-seed Monte Carlo
    r.theory["prediction"]     # (G+1,) the closed form, where one exists
    r.to_frame()               # tidy pandas DataFrame: seed, generation, metric, value, theory, ...

World and regime are names (with keyword overrides) or config objects.  The
defaults are the config dataclasses' own (``simulator/worlds/<name>.py``,
``simulator/regimes/<name>.py``, ``simulator/run_config.py``), the same the
command line starts from.  ``simulate`` and ``run`` share one compute path, so
the numbers of a seed are the same in memory, on disk and from the CLI.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from collapse_sim.simulator import regimes
from collapse_sim.simulator.frame import records_frame
from collapse_sim.simulator.run_config import RunConfig
from collapse_sim.simulator.worlds import WORLDS, world_module

__all__ = ["Experiment", "Records", "experiment", "run", "simulate"]

_RUN_FIELDS = {f.name for f in dataclasses.fields(RunConfig)}


class Experiment(NamedTuple):
    """A resolved (world, regime, run) triple, what the driver takes."""

    world: Any
    regime: Any
    run: RunConfig


def _world_fields(name: str) -> set[str]:
    return {f.name for f in dataclasses.fields(world_module(name).Config)} - {"name"}


def experiment(world="regression", regime="replace", **fields) -> Experiment:
    """Resolve names and keyword overrides into config objects.

    Each keyword goes to the run (``n_seeds``, ``n_generations``, ``seed``, ``precision``,
    ...), the world or the regime, whichever has a field of that name; a keyword none of them
    has, or a config object given together with overrides for it, is an error."""
    if isinstance(world, str) and world not in WORLDS:
        raise ValueError(f"world={world!r} is not known; allowed: {', '.join(WORLDS)}")
    if isinstance(regime, str) and regime not in regimes.REGIMES:
        raise ValueError(f"regime={regime!r} is not known; allowed: {', '.join(regimes.REGIMES)}")
    world_name = world if isinstance(world, str) else world.name
    regime_name = regime if isinstance(regime, str) else regime.name
    world_keys = _world_fields(world_name)
    regime_keys = set(regimes.fields_of(regimes.config_class(regime_name)))
    split: dict[str, dict] = {"run": {}, "world": {}, "regime": {}}
    for key, value in fields.items():
        homes = [h for h, keys in (("run", _RUN_FIELDS), ("world", world_keys), ("regime", regime_keys)) if key in keys]
        if not homes:
            raise ValueError(
                f"{key}={value!r} is not a field of the run, of world {world_name!r} or of regime {regime_name!r}; "
                f"run: {', '.join(sorted(_RUN_FIELDS))}; world: {', '.join(sorted(world_keys))}; "
                f"regime: {', '.join(sorted(regime_keys)) or 'none'}"
            )
        if len(homes) > 1:
            raise ValueError(f"{key}= is a field of both the {homes[0]} and the {homes[1]}; pass config objects instead")
        split[homes[0]][key] = value
    for part, given, names in (("world", world, split["world"]), ("regime", regime, split["regime"])):
        if not isinstance(given, str) and names:
            raise ValueError(f"{', '.join(names)} given with a {part} config object; set them on the object instead")
    world_cfg = world_module(world).Config(**split["world"]) if isinstance(world, str) else world
    regime_cfg = regimes.config(regime, **split["regime"]) if isinstance(regime, str) else regime
    return Experiment(world_cfg, regime_cfg, RunConfig(**split["run"]))


class Records:
    """What a run measured.

    ``records[name]``: per-seed arrays, (S, G+1) or (S, G+1, ...) for vector metrics;
    ``records.theory``: the closed-form curves attached to the run, (G+1,) each (see
    ``experiments/predictions/`` for their names); ``records.config``: the resolved
    config as plain dicts; ``records.meta``: everything ``results.json`` holds."""

    def __init__(self, arrays: dict, meta: dict):
        self.arrays = {k: np.asarray(v) for k, v in arrays.items() if not k.startswith("theory/")}
        self.theory = {k[len("theory/") :]: np.asarray(v) for k, v in arrays.items() if k.startswith("theory/")}
        self.meta = meta
        self.config = meta.get("config", {})

    @classmethod
    def load(cls, run_dir) -> "Records":
        from collapse_sim.simulator import results

        return cls(*results.load(run_dir))

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.arrays:
            raise KeyError(f"no record {name!r}; records: {', '.join(sorted(self.arrays))}")
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def keys(self):
        return self.arrays.keys()

    @property
    def n_seeds(self) -> int:
        return next(iter(self.arrays.values())).shape[0]

    def mean(self, name: str = "test_error") -> np.ndarray:
        """Mean over seeds, per generation."""
        return self[name].mean(axis=0)

    def band(self, name: str = "test_error", level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Student-t interval for the mean over S seeds (S − 1 degrees of freedom)."""
        from scipy import stats

        a = self[name]
        S = a.shape[0]
        if S < 2:
            raise ValueError(f"a band needs at least 2 seeds; this run has {S}")
        half = stats.t.ppf(0.5 + level / 2, S - 1) * a.std(axis=0, ddof=1) / np.sqrt(S)
        m = a.mean(axis=0)
        return m - half, m + half

    def to_frame(self):
        """One row per (seed, generation, metric); see :func:`simulator.frame.records_frame`."""
        return records_frame(self.arrays, self.theory)

    def __repr__(self) -> str:
        w, r = self.config.get("world", {}).get("name"), self.config.get("regime", {}).get("name")
        shape = next(iter(self.arrays.values())).shape[:2] if self.arrays else ()
        return f"Records({w}/{r}, seeds × generations = {shape}, records: {', '.join(sorted(self.arrays))})"


def simulate(world="regression", regime="replace", *, grid: dict | None = None, **fields):
    """Run in memory (no files): ``simulate(world, regime, *, n_seeds=256, n_generations=10,
    seed=0, precision="float64", **world_and_regime_fields) -> Records``.

    ``grid={field: [values, ...], ...}`` runs every combination of the values (the first
    field varying slowest) and returns a list of Records in that order.  Points that differ
    only in traced numbers (``simulator/traced.py``: ``real_fraction``, ``sigma``, ``ridge``,
    ...) run as one compiled call, the grid vmapped beside the seeds, and so do points of the
    regression world that differ in ``T`` where ``simulator/padding.py`` pads them; points that
    differ in another shape (``d``, ``n_seeds``, ...) or a code path compile once per such group.
    Each point's numbers are those of a separate ``simulate`` with its fields, seed for seed, to
    float rounding (common random numbers: every point sees the same draws unless
    ``common_random_numbers=False``)."""
    from collapse_sim.simulator import compute

    if grid is None:
        exp = experiment(world, regime, **fields)
        arrays, meta = compute.simulate_in_memory(exp)
        return Records(arrays, meta)
    return [Records(arrays, meta) for arrays, meta in compute.simulate_grid(grid_experiments(world, regime, grid, fields))]


def grid_experiments(world, regime, grid: dict, fields: dict) -> list[Experiment]:
    """One Experiment per combination of ``grid``'s values (itertools.product order)."""
    import itertools

    if not isinstance(grid, dict) or not grid:
        raise ValueError(f"grid={grid!r} is not allowed; allowed: a dict {{field: [values, ...]}} with at least one field")
    lists = {}
    for k, values in grid.items():
        if k in fields:
            raise ValueError(f"{k}= is given both as a field and in grid; give it once")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise ValueError(f"grid[{k!r}]={values!r} is not allowed; allowed: a non-empty list of values")
        lists[k] = list(values)  # read once: a generator is consumed here
        if not lists[k]:
            raise ValueError(f"grid[{k!r}]={values!r} is not allowed; allowed: a non-empty list of values")
    names = list(lists)
    return [experiment(world, regime, **fields, **dict(zip(names, point)))
            for point in itertools.product(*(lists[k] for k in names))]


def run(world="regression", regime="replace", *, out_dir, grid: dict | None = None, **fields):
    """Run and save into ``out_dir`` (chunked, checkpointed, resumable: calling it again with
    the same settings resumes or finds the run complete); returns the run folder.
    ``Records.load(path)`` reads it back.

    ``grid={field: [values, ...], ...}``: every combination, each saved in its own folder
    ``out_dir/<field>=<value>,...`` (a list of folders in :func:`simulate`'s order); the points
    that differ only in traced numbers run as one compiled call (``simulator/sweep.py``), as a
    command-line ``--multirun`` does, the others one by one."""
    from collapse_sim.simulator import driver, sweep

    if grid is None:
        exp = experiment(world, regime, **fields)
        return driver.run_saved(exp, out_dir)
    import itertools

    exps = grid_experiments(world, regime, grid, fields)
    lists = {k: list(v) for k, v in grid.items()}
    jobs = []
    for exp, point in zip(exps, itertools.product(*(list(enumerate(v)) for v in lists.values()))):
        # a number or a name by its value, anything else (a curation rule) by its place in the list
        folder = ",".join(f"{k}={v}" if isinstance(v, (int, float, str, bool)) or v is None else f"{k}#{i}"
                          for k, (i, v) in zip(lists, point)).replace("/", "_")
        jobs.append(sweep.Job(exp, Path(out_dir) / folder, f"{exp.world.name}/{exp.regime.name} [{folder}]"))
    sweep.run_saved_grid(jobs)
    out = []
    for job in jobs:
        done = sweep.outcome(job.config, job.out_dir)
        if isinstance(done, BaseException):
            raise done
        out.append(done or driver.run_saved(job.config, job.out_dir, job.label))
    return out

