"""collapse-sim: an iterative model-collapse simulator in JAX.

The project's four parts install under this one name:

- ``collapse_sim.simulator``   the engine (worlds, regimes, the generation loop, results)
- ``collapse_sim.theory``      closed forms and bounds, plain numpy
- ``collapse_sim.experiments`` the hydra command line and its configs
- ``collapse_sim.figures``     figure scripts that read saved results

``python -m collapse_sim`` is the command line (the same as ``collapse-sim``); in Python::

    import collapse_sim as cs
    r = cs.simulate("regression", "mix", real_fraction=0.3, n_seeds=256, n_generations=10)
    r.mean("test_error"), r.theory["prediction"], r.to_frame()
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("collapse-sim")
except _metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

from collapse_sim.simulator import REGIMES, WORLDS, Records, experiment, load, run, simulate, tidy  # noqa: E402

__all__ = ["REGIMES", "WORLDS", "Records", "__version__", "experiment", "load", "run", "simulate", "tidy"]
