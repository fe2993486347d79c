"""Strong model collapse in the engine (regression world.shift_share, shift_norm) against the exact
finite-n OLS error of theory/strong_collapse.py (theory/curation.md §4): one fit (run.n_generations=0)
on n₁ real and n₂ shifted rows, within 4 standard errors over the seeds."""

from types import SimpleNamespace

import numpy as np
import pytest

from engine_mc import assert_mc_matches, simulate

import collapse_sim as cs
from collapse_sim.experiments.predictions import predict
from collapse_sim.simulator.regimes import config as regime_config
from collapse_sim.simulator.worlds import regression
from collapse_sim.theory import strong_collapse as sc


@pytest.mark.parametrize("spectrum", ["isotropic", "power_law"])
def test_single_fit_on_real_and_shifted_rows_is_exact(spectrum):
    """n = 40, n₁ = 30, d = 8, δᵀΣδ = 1.5² (whitening makes the error free of Σ)."""
    S = 4000
    world_cfg = regression.Config(d=8, T=40, shift_share=0.25, shift_norm=1.5, spectrum=spectrum)
    rec, curves = simulate(world_cfg, regime_config("replace"), 0, S, seed=8)
    exact = sc.mixture_error(40, 30, 8, 1.0, 1.0, 1.5**2)
    np.testing.assert_allclose(curves["prediction"], [exact])
    assert rec["test_error"].shape == (S, 1)
    assert_mc_matches(rec["test_error"], curves["prediction"], f"strong collapse ({spectrum})")


def test_the_theory_is_attached_to_the_single_fit_only():
    run = lambda G: SimpleNamespace(n_generations=G, seed=0, theory_designs=2)  # noqa: E731
    cfg = regression.Config(d=8, T=40, shift_share=0.25)
    assert predict(cfg, regime_config("replace"), run(0))["kind"] == "exact"
    assert predict(cfg, regime_config("replace"), run(3))["kind"] == "none"


def test_no_shift_leaves_the_numbers_unchanged():
    base = dict(d=3, T=10, n_seeds=4, n_generations=2, theory_designs=10)
    a = cs.simulate("regression", "mix", **base)
    b = cs.simulate("regression", "mix", shift_share=0.0, shift_norm=5.0, **base)
    np.testing.assert_array_equal(a["test_error"], b["test_error"])


@pytest.mark.parametrize(
    "fields, match",
    [
        (dict(shift_share=1.5), r"world.shift_share=1.5 is not allowed; allowed: a share of shifted real rows in \[0, 1\]"),
        (dict(shift_share=float("nan")), r"world.shift_share=nan"),
        (dict(shift_norm=-1.0), r"world.shift_norm=-1.0 is not allowed; allowed: a finite number >= 0"),
        (dict(shift_norm=float("inf")), r"world.shift_norm=inf"),
    ],
)
def test_bad_shifts_fail_naming_the_key(fields, match):
    with pytest.raises(ValueError, match=match):
        regression.Config(**fields)
