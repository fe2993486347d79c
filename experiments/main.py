"""The single hydra entry point: ``collapse-sim [overrides]``.

Examples::

    collapse-sim                                    # every regime, regression world, then the figure
    collapse-sim world=regression regime=accumulate world.d=50 run.n_generations=30 run.n_seeds=256
    collapse-sim --multirun regime=replace,accumulate,mix
    collapse-sim ledger --markdown                  # every formula of theory/ with a fresh Monte Carlo z-score
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import sys
from pathlib import Path

# JAX runs its LAPACK kernels (eigh, solve) through OpenBLAS, whose default of one
# thread per core is slower for the many small matrices of a simulation and
# collapses when another process shares the cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Heavy imports (hydra, JAX) happen inside cli(), after the interrupt handlers are in place.

_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][+-]?\d+)")


def _as_typed(value: str) -> str:
    """A float as a person types it: a hydra range's 0.7000000000000001 reads 0.7 (shortest
    round-trip repr after rounding to 12 significant digits); anything else unchanged."""
    if not _FLOAT.fullmatch(value):
        return value
    x = float(value)
    return repr(float(f"{x:.12g}")) if math.isfinite(x) else value


def _dir_name(overrides) -> str:
    """A folder name for a list of command-line overrides: the same command always
    maps to the same folder, so running it again can resume."""
    keep = [o for o in overrides if not o.startswith(("hydra.", "hydra/", "run.resume", "run.progress", "run.figure"))]
    keep = [f"{k}={_as_typed(v)}" if sep else k for k, sep, v in (o.partition("=") for o in keep)]
    return ",".join(sorted(keep)).replace("/", "_") or "default"


def _single_run(args: list[str]) -> list[str]:
    """The default experiment sweeps every regime (``hydra.mode: MULTIRUN``); a command that
    names one regime, or asks for ``hydra.run.dir``, is one run (its folder, its figure)."""
    if any(a in ("-m", "--multirun") or a.startswith("hydra.mode=") for a in args):
        return args
    default_experiment = all(not a.lstrip("+").startswith("experiment=") or a.lstrip("+") == "experiment=regimes"
                             for a in args)
    one_regime = any(a.startswith("regime=") and "," not in a and "(" not in a for a in args)
    if any(a.startswith("hydra.run.dir=") for a in args) or (default_experiment and one_regime):
        return [*args, "hydra.mode=RUN"]
    return args


def _exit_cleanly_on_signals() -> None:
    """Until the run's own handlers are in place (``simulator/interrupts.py``), SIGINT and
    SIGTERM end the process at once with 130 / 143 and one line, never a traceback."""
    import signal

    def leave(signum, frame):
        how = "interrupted (Ctrl-C)" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        print(f"[collapse-sim] {how} before the run started; nothing was written", file=sys.stderr, flush=True)
        os._exit(128 + signum)

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, leave)


def unknown_key(cfg: DictConfig, prefix: str = "") -> str | None:
    """A message naming the first key of ``cfg`` that its schema (a dataclass) lacks, or None.

    Hydra's ``+key=value`` adds a key even to a structured config, and
    ``OmegaConf.to_object`` would then drop it without a word."""
    from omegaconf import DictConfig, OmegaConf

    schema = OmegaConf.get_type(cfg)
    if not dataclasses.is_dataclass(schema):
        return None
    known = [f.name for f in dataclasses.fields(schema)]
    for key in cfg.keys():
        name = f"{prefix}{key}"
        if key not in known:
            where = f"{prefix}* keys" if prefix else "top-level keys"
            return f"unknown key {name!r}; the known {where} are: {', '.join(known)}"
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_missing() and not node._is_none():
            found = unknown_key(node, f"{name}.")
            if found:
                return found
    return None


def fail(message: str, code: int = 2) -> None:
    """One line on stderr (and in hydra's main.log), then exit: 2 for bad input, 1 for a run
    that could not go on (its folder, a full disk)."""
    print(f"collapse-sim: error: {message}", file=sys.stderr, flush=True)
    record = logging.LogRecord("collapse_sim", logging.ERROR, __file__, 0, message, None, None)
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler):
            h.handle(record)
    sys.exit(code)


def _log_to_main_log() -> None:
    """The ``collapse_sim`` logger writes to the terminal itself; hydra's console handler
    (stdout) skips its records, its file handler (main.log) keeps them."""
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler):
            h.addFilter(lambda record: not record.name.startswith("collapse_sim"))


def _quiet_logs() -> None:
    # Hydra sets every logger to INFO; JAX's backend probing is noise to a user.
    logging.getLogger("jax._src.xla_bridge").setLevel(logging.WARNING)
    _log_to_main_log()


def _typed(cfg):
    """The typed config (world, regime, run) of a job's config, or a ValueError naming what is wrong."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    bad = unknown_key(cfg)
    if bad:
        raise ValueError(bad)
    try:
        return OmegaConf.to_object(cfg)
    except (ValueError, OmegaConfBaseException) as e:
        raise ValueError(str(e).splitlines()[0]) from None


def _where(config, output_dir, subdir, overrides: list, multirun: bool) -> tuple[Path, str]:
    """A job's run folder and the label of its messages."""
    out_dir = Path(output_dir)
    if config.run.out_dir:
        # In a sweep every job gets its own folder below run.out_dir.
        out_dir = Path(config.run.out_dir) / subdir if multirun else Path(config.run.out_dir)
    label = f"{config.world.name}/{config.regime.name}"
    if multirun:  # a sweep's messages say which job they are about
        label += f" [{_dir_name(overrides)}]"
    return out_dir, label


def run_grids(sweep_configs: list) -> None:
    """Before a sweep's jobs run one by one (``hydra/launcher=grid``): the jobs that differ only
    in traced numbers run together, one compiled call per group (``simulator/sweep.py``), and
    each job's folder is written; a job that is not in a group, or whose config is bad, is left
    to its own turn.  ``sweep_configs``: the jobs' composed configs, hydra node included."""
    import copy

    from omegaconf import OmegaConf, open_dict

    from collapse_sim.simulator import sweep

    _quiet_logs()
    jobs = []
    for c in sweep_configs:
        task = copy.deepcopy(c)
        with open_dict(task):
            del task["hydra"]
        try:
            config = _typed(task)
            output_dir = Path(OmegaConf.select(c, "hydra.sweep.dir")) / str(OmegaConf.select(c, "hydra.sweep.subdir"))
            out_dir, label = _where(config, output_dir.absolute(), c.hydra.sweep.subdir,
                                    list(c.hydra.overrides.task), multirun=True)
        except ValueError:
            continue
        jobs.append(sweep.Job(config, out_dir, label))
    try:
        ran = sweep.run_saved_grid(jobs)
        sweep.precompile(jobs, skip=set(ran))
    except (ValueError, FloatingPointError) as e:
        fail(str(e))
    except OSError as e:
        fail(str(e), 2 if isinstance(e, FileNotFoundError) else 1)
    except KeyboardInterrupt:
        sys.exit(130)


def _job(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig

    from collapse_sim.simulator import sweep
    from collapse_sim.simulator.driver import run_saved

    _quiet_logs()
    try:
        config = _typed(cfg)
    except ValueError as e:
        fail(str(e))
    hc = HydraConfig.get()
    multirun = hc.mode is not None and hc.mode.name == "MULTIRUN"
    out_dir, label = _where(config, hc.runtime.output_dir, hc.sweep.subdir, list(hc.overrides.task), multirun)
    try:
        path = sweep.outcome(config, out_dir) if multirun else None
        if isinstance(path, BaseException):
            raise path
        path = path or run_saved(config, out_dir, label)
    except (ValueError, FloatingPointError) as e:
        fail(str(e))
    except OSError as e:  # the run folder, a lock held by another run, a full disk
        fail(str(e), 2 if isinstance(e, FileNotFoundError) else 1)
    except KeyboardInterrupt:
        sys.exit(130)  # the run has said what is saved; no traceback
    print(f"[collapse-sim] {config.world.name}/{config.regime.name}: results in {path}", flush=True)


def cli() -> None:
    _exit_cleanly_on_signals()  # first: an interrupt during the imports below leaves no traceback
    if sys.argv[1:2] == ["ledger"]:  # collapse-sim ledger [--markdown]: theory/ledger.py, no hydra
        from collapse_sim.theory.ledger import main as ledger

        sys.exit(ledger(sys.argv[2:]))
    if "--version" in sys.argv[1:]:  # the package's version, not hydra's
        from collapse_sim import __version__

        print(f"collapse-sim {__version__}")
        return
    from collapse_sim.simulator import interrupts

    interrupts.exit_on_signals()
    import hydra
    from omegaconf import OmegaConf

    from collapse_sim.experiments.config import register

    register()  # the schemas, and the grid launcher (hydra/launcher=grid)
    OmegaConf.register_new_resolver("dir_name", _dir_name, replace=True)
    sys.argv[1:] = _single_run(sys.argv[1:])
    hydra.main(version_base="1.3", config_path="conf", config_name="config")(_job)()


def main() -> None:
    """The ``collapse-sim`` command: :func:`cli`, then the process ends at once once its output
    is flushed (every file is written and closed by then); Python's own shutdown of JAX, XLA,
    hydra and matplotlib would add about 0.7 s to every command."""
    try:
        cli()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if e.code is not None and not isinstance(e.code, int):
            print(e.code, file=sys.stderr)
    else:
        code = 0
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
