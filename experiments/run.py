"""The run driver moved to :mod:`collapse_sim.simulator.driver`; these names stay importable here."""

from collapse_sim.simulator.driver import run_saved, run_saved as run_experiment, set_precision, versions  # noqa: F401
