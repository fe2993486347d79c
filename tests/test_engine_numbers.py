"""Every regression regime keeps its numbers: the records of small runs (d = 4, T = 12, 8 seeds,
4 generations; tests/data/make_engine_numbers.py) equal the stored engine records
(tests/data/engine_numbers.npz) to rounding, float64 to rtol 1e-10 and float32 to rtol 1e-5,
with the Gram records on (``world.record_gram=true``: every record) and off (the default:
every record but ``gram_min_eig`` and ``gram_cond``, and ``gram_solvable`` NaN exactly where the
stored ``gram_cond`` is NaN)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).parent / "data"
_spec = importlib.util.spec_from_file_location("make_engine_numbers", DATA / "make_engine_numbers.py")
numbers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(numbers)
STORED = np.load(DATA / "engine_numbers.npz")
GRAM = ("gram_min_eig", "gram_cond")
RTOL = {"float64": 1e-10, "float32": 1e-5}
# absolute slack for entries that are zero up to rounding (a singular Gram's smallest eigenvalue)
ATOL = {"float64": 1e-13, "float32": 1e-6}


def stored(name: str) -> dict[str, np.ndarray]:
    prefix = f"{name}/"
    return {k[len(prefix):]: STORED[k] for k in STORED.files if k.startswith(prefix)}


# Each fit path of the default (Cholesky, or the eigendecomposition where a Gram is rank-deficient)
# in every regime and both precisions; the Gram records where the fit paths differ.  (The npz holds a
# few more cases; every one passes, at about 2 s of compiling each.)
DEFAULT = ["replace", "replace_f32", "replace_ridge", "replace_ridge_power", "replace_shift", "mix_original",
           "mix_fresh", "accumulate", "accumulate_f32", "accumulate_subsample", "token_edit", "weighted_half",
           "replace_verifier_few", "accumulate_verifier"]
RECORDS = ["replace_ridge_power", "replace_power", "accumulate_ridge_power", "replace_verifier_few", "mix_f32"]
CHOSEN = [(name, False) for name in DEFAULT] + [(name, True) for name in RECORDS]


@pytest.mark.parametrize("name, record_gram", CHOSEN, ids=[f"{n}-{'records' if r else 'default'}" for n, r in CHOSEN])
def test_records_equal_the_stored_engine_records(name, record_gram):
    want = stored(name)
    got = numbers.records(name, record_gram=record_gram)
    keys = set(want) if record_gram else set(want) - set(GRAM)
    assert set(got) == keys | ({"gram_solvable"} if not record_gram else set())
    dtype = numbers.CASES[name][0]
    if not record_gram:  # 1 where the stored gram_cond is finite, NaN (stopping a run) where it is NaN
        np.testing.assert_array_equal(got["gram_solvable"], np.where(np.isfinite(want["gram_cond"]), 1.0, np.nan))
    for k in sorted(keys):
        assert got[k].dtype == want[k].dtype, k
        np.testing.assert_allclose(got[k], want[k], rtol=RTOL[dtype], atol=ATOL[dtype], err_msg=f"{name}: {k}")


def test_the_stored_records_are_small_and_cover_every_regime():
    assert (DATA / "engine_numbers.npz").stat().st_size < 200_000
    regimes = {case[2] for case in numbers.CASES.values()}
    assert regimes == {"replace", "mix", "accumulate", "accumulate_subsample", "token_edit", "weighted"}
    assert any("curation" in case[3] for case in numbers.CASES.values())


def test_subset_masks_by_ranks_equal_the_permutations_and_break_ties_by_index():
    """mix's real-row mask (simulator/rows.py): read off stable ranks, it is the first m of
    ``jax.random.permutation`` exactly, ties included."""
    import jax
    import jax.numpy as jnp

    from collapse_sim.simulator import rows as R

    keys = jax.random.split(jax.random.key(3), 200)
    for n, m in [(12, 3), (40, 8), (R.RANK_MAX_N, 30), (7, 0), (7, 7), (400, 0), (400, 1), (400, 40), (400, 400),
                 (1625, 800)]:
        by_ranks = jax.vmap(lambda k, n=n, m=m: R.random_subset_mask(k, n, m))(keys)
        by_sort = jax.vmap(
            lambda k, n=n, m=m: jnp.zeros((n,), bool).at[jax.random.permutation(k, n)].set(jnp.arange(n) < m)
        )(keys)
        np.testing.assert_array_equal(by_ranks, by_sort)
        assert np.all(np.sum(by_ranks, axis=1) == m)
    tied = np.random.default_rng(0).integers(0, 4, 50).astype(np.uint32)
    ranks = np.argsort(np.argsort(tied, kind="stable"))
    np.testing.assert_array_equal(R.stable_ranks(jnp.asarray(tied)), ranks)
    for m in range(51):  # the one-sort selection of larger n, on keys with many ties
        np.testing.assert_array_equal(R.smallest_stable(jnp.asarray(tied), m), ranks < m)
