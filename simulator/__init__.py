"""Iterative model-collapse simulator: model n is trained on data produced by model n-1.

The front door (see ``api.py``)::

    from collapse_sim.simulator import simulate
    r = simulate("regression", "mix", real_fraction=0.3, n_seeds=256, n_generations=10)
    r.mean("test_error"), r.theory["prediction"], r.to_frame()
"""

from collapse_sim.simulator.api import Experiment, Records, experiment, run, simulate
from collapse_sim.simulator.regimes import REGIMES
from collapse_sim.simulator.results import load, tidy
from collapse_sim.simulator.worlds import WORLDS

__all__ = ["REGIMES", "WORLDS", "Experiment", "Records", "experiment", "load", "run", "simulate", "tidy"]
