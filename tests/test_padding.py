"""A grid over the regression world's T runs as one program padded to its largest T
(simulator/padding.py): each point's numbers are those of a run of its own size, the draws
of the first T rows do not depend on how many rows are drawn, and what cannot be padded
exactly still compiles once per size."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import collapse_sim as cs
from collapse_sim.simulator import compute, normal, padding
from collapse_sim.simulator import rows as R

KW = dict(d=3, n_seeds=5, n_generations=2, theory_designs=20)
SIZES = [10, 23]


def executables() -> int:
    return sum(len(p.executables) for p in compute._PROGRAMS.values())


def test_the_first_rows_of_a_draw_do_not_depend_on_how_many_rows_are_drawn():
    jax.config.update("jax_enable_x64", True)
    key = jax.random.key(7)
    for draw in (lambda n: normal.normal(key, (n, 4), jnp.float64), lambda n: jax.random.normal(key, (n, 4)),
                 lambda n: jax.random.bits(key, (n,), jnp.uint32)):
        np.testing.assert_array_equal(draw(30)[:17], draw(17))
    for m in (0, 1, 5, 17):  # mix's subset mask of 17 live rows among 30
        alone = R.random_subset_mask(key, 17, m)
        padded = R.random_subset_mask(key, 30, m, live=17)
        np.testing.assert_array_equal(padded, jnp.concatenate([alone, jnp.zeros(13, bool)]))
    with pytest.raises(ValueError, match="needs n <= 1625"):
        R.random_subset_mask(key, 2000, 3, live=10)


@pytest.mark.parametrize("regime, extra", [
    ("replace", {"design": "fresh", "shift_share": 0.3}),
    ("mix", {}),
    ("mix", {"real_source": "original", "resample_real": False, "ridge": 0.2, "spectrum": "power_law"}),
    ("accumulate", {}),
])
def test_a_grid_over_T_is_one_program_with_each_sizes_own_numbers(regime, extra):
    compute._PROGRAMS.clear()
    grid = {"T": SIZES, "real_fraction": [0.3, 0.6]} if regime == "mix" else {"T": SIZES}
    runs = cs.simulate("regression", regime, grid=grid, **KW, **extra)
    assert executables() == 1  # every size in one program
    for r in runs:
        own = {k: r.config["regime"][k] for k in grid if k != "T"}
        alone = cs.simulate("regression", regime, T=r.config["world"]["T"], **own, **KW, **extra)
        for name in alone.keys():
            np.testing.assert_allclose(r[name], alone[name], rtol=1e-12, atol=0, err_msg=name)
        for name in alone.theory:
            np.testing.assert_array_equal(r.theory[name], alone.theory[name], err_msg=name)


def test_what_cannot_be_padded_exactly_compiles_once_per_size():
    for regime, extra in (("replace", {"curation": {"rule": "verifier"}}), ("accumulate_subsample", {})):
        exps = [cs.experiment("regression", regime, T=T, **KW, **extra) for T in SIZES]
        assert not any(padding.paddable(e) for e in exps)
        assert compute.group_key(exps[0]) != compute.group_key(exps[1])
    compute._PROGRAMS.clear()  # one of them run: a program per size, each size's numbers
    runs = cs.simulate("regression", "accumulate_subsample", grid={"T": SIZES}, **KW)
    assert executables() == 2
    alone = cs.simulate("regression", "accumulate_subsample", T=SIZES[1], **KW)
    np.testing.assert_allclose(runs[1]["test_error"], alone["test_error"], rtol=1e-12, atol=0)


def test_a_grid_with_a_ridge_runs():  # the ridge reaches the batched solve as an argument
    runs = cs.simulate("regression", "replace", grid={"ridge": [0.1, 0.3], "sigma": [1.0, 2.0]}, T=10, **KW)
    alone = cs.simulate("regression", "replace", ridge=0.3, sigma=2.0, T=10, **KW)
    np.testing.assert_array_equal(runs[3]["test_error"], alone["test_error"])
