"""Plain-numpy references for the benchmark (``collapse-bench``): the same workloads
as the engine, written the way collapse codes are usually written.

Two references per workload, both float64:

- ``loop``: a Python loop over seeds, one seed at a time, one generation at a
  time, as the published collapse codes run (Gerstgrasser et al. 2024; Kazdan
  et al. 2024, ``fit_gaussians`` / ``fit_discrete_distributions``): small numpy
  calls, ``np.linalg.solve``, ``rng.multivariate_normal``, ``rng.choice``.
- ``batched``: the best batched numpy we could write without a compiler: every
  seed of a chunk at once, stacked ``matmul`` / ``solve`` / ``cholesky`` /
  ``eigvalsh``, ``rng.multinomial`` with a (S, V) probability table.

Workloads (``Workload``; what the engine runs with ``engine_configs``):

- ``regression/<regime>``: d features, T = 4d rows, fixed design X (T, D) drawn
  once per seed, w* ~ N(0, I/d), labels X w + N(0, sigma^2); fit OLS by solving
  the normal equations (X^T X) w = X^T y of the generation's training set;
  test error ||w - w*||^2 (isotropic Σ = I).  Regimes as in
  ``simulator/regimes/``: replace; mix (a random 10% of rows keep their real
  labels, redrawn every generation); accumulate (fit on the real rows plus
  every earlier synthetic set); accumulate_subsample (T rows drawn without
  replacement from that pool); token_edit (each row independently, with
  probability q = 0.2, gets a fresh label from the previous model).
- ``gaussian/replace``: d dimensions, M = 4d points from N(0, I), refit the
  MLE mean and covariance (``np.cov(bias=True)``), resample from the fit;
  test error W2^2 to the truth (Gelbrich's closed form).
- ``categorical/replace``: V = d outcomes, uniform truth, M = 1000 draws,
  refit the empirical frequencies; test error total variation to the truth.

Rule for a fair comparison: every method does, per generation, what the
engine does per generation (build the training set, form its Gram/scatter
matrix, fit, evaluate); no method hoists work out of the generation loop that
the others repeat (a fixed-design shortcut would be open to all of them).
Where an engine world computes extra metrics (the regression world's smallest
Gram eigenvalue, the Gaussian world's log-det and tail share), the references
compute only the test error: that favours the references.

Random numbers differ from the engine's (numpy's PCG64 against JAX's
threefry); only the statistics agree, which ``compare_means`` checks.

Axis letters: S seeds, G generations, N rows, D features, V outcomes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import numpy as np

WORLDS = ("regression", "gaussian", "categorical")
REGRESSION_REGIMES = ("replace", "mix", "accumulate", "accumulate_subsample", "token_edit")


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmarked configuration; ``d`` is the size (features, dimensions or
    outcomes V) and ``n`` the rows of one training set (T or M)."""

    world: str
    regime: str
    d: int
    n: int
    G: int = 10
    sigma: float = 1.0
    real_fraction: float = 0.1
    q: float = 0.2

    @property
    def name(self) -> str:
        return f"{self.world}/{self.regime}"


def make_workload(world: str, regime: str, d: int, G: int = 10) -> Workload:
    """The benchmark's default sizes: T = M = 4d rows (regression, Gaussian), M = 1000 (categorical)."""
    if world == "regression":
        if regime not in REGRESSION_REGIMES:
            raise ValueError(f"regression regime {regime!r} is not known; allowed: {', '.join(REGRESSION_REGIMES)}")
        return Workload(world, regime, d, 4 * d, G)
    if regime != "replace":
        raise ValueError(f"the {world} benchmark runs regime=replace only, not {regime!r}")
    if world == "gaussian":
        return Workload(world, regime, d, max(4 * d, 8), G)
    if world == "categorical":
        return Workload(world, regime, d, 1000, G)
    raise ValueError(f"world {world!r} is not benchmarked; allowed: {', '.join(WORLDS)}")


def engine_configs(wl: Workload):
    """(world config, regime config) that make the engine run ``wl``."""
    from collapse_sim.simulator.regimes import config as regime_config

    fields = {
        "mix": dict(real_fraction=wl.real_fraction, real_source="original", resample_real=True),
        "token_edit": dict(edit_source="previous", schedule="bernoulli", q=wl.q),
    }
    regime = regime_config(wl.regime, **fields.get(wl.regime, {}))
    if wl.world == "regression":
        from collapse_sim.simulator.worlds.regression import RegressionConfig

        return RegressionConfig(d=wl.d, T=wl.n, sigma=wl.sigma), regime
    if wl.world == "gaussian":
        from collapse_sim.simulator.worlds.gaussian import GaussianConfig

        return GaussianConfig(d=wl.d, M=wl.n, estimator="mle", sigma=wl.sigma), regime
    from collapse_sim.simulator.worlds.categorical import CategoricalConfig

    return CategoricalConfig(V=wl.d, M=wl.n, dist="uniform"), regime


# ----------------------------------------------------------------------------- per-seed loops


def _regression_seed(rng: np.random.Generator, wl: Workload) -> np.ndarray:
    d, T, sigma = wl.d, wl.n, wl.sigma
    m = int(round(wl.real_fraction * T))
    w_star = rng.standard_normal(d) / math.sqrt(d)
    X = rng.standard_normal((T, d))
    y_real = X @ w_star + sigma * rng.standard_normal(T)

    def ols(X, y):
        return np.linalg.solve(X.T @ X, X.T @ y)

    w = ols(X, y_real)
    errors = [np.sum((w - w_star) ** 2)]
    pool_X, pool_y, y_current = [X], [y_real], y_real
    for _ in range(wl.G):
        y_synth = X @ w + sigma * rng.standard_normal(T)
        if wl.regime == "replace":
            X_train, y_train = X, y_synth
        elif wl.regime == "mix":
            keep = rng.permutation(T)[:m]
            y_train = y_synth.copy()
            y_train[keep] = y_real[keep]
            X_train = X
        elif wl.regime == "token_edit":
            y_current = np.where(rng.random(T) < wl.q, y_synth, y_current)
            X_train, y_train = X, y_current
        else:
            pool_X.append(X)
            pool_y.append(y_synth)
            X_train, y_train = np.concatenate(pool_X), np.concatenate(pool_y)
            if wl.regime == "accumulate_subsample":
                idx = rng.choice(len(y_train), T, replace=False)
                X_train, y_train = X_train[idx], y_train[idx]
        w = ols(X_train, y_train)
        errors.append(np.sum((w - w_star) ** 2))
    return np.asarray(errors)


def w2sq_to_isotropic(mu_D, cov_DxD, sigma2: float) -> float:
    """W2^2(N(mu, cov), N(0, sigma^2 I)) = ||mu||^2 + tr cov + d sigma^2 - 2 tr (sigma cov sigma)^(1/2)."""
    cross = sigma2 * cov_DxD
    root_tr = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(cross), 0.0, None)), axis=-1)
    tr = np.trace(cov_DxD, axis1=-2, axis2=-1) + cov_DxD.shape[-1] * sigma2 - 2.0 * root_tr
    return np.sum(mu_D**2, axis=-1) + np.maximum(tr, 0.0)


def _gaussian_seed(rng: np.random.Generator, wl: Workload) -> np.ndarray:
    d, M, s2 = wl.d, wl.n, wl.sigma**2
    x = rng.multivariate_normal(np.zeros(d), s2 * np.eye(d), size=M)
    errors = []
    for g in range(wl.G + 1):
        mu = x.mean(axis=0)
        cov = np.atleast_2d(np.cov(x, rowvar=False, bias=True))
        errors.append(w2sq_to_isotropic(mu, cov, s2))
        if g < wl.G:
            x = rng.multivariate_normal(mu, cov, size=M)
    return np.asarray(errors)


def _categorical_seed(rng: np.random.Generator, wl: Workload) -> np.ndarray:
    V, M = wl.d, wl.n
    p_star = np.full(V, 1.0 / V)
    p = p_star
    errors = []
    for _ in range(wl.G + 1):
        x = rng.choice(V, size=M, p=p)
        p = np.bincount(x, minlength=V) / M
        errors.append(0.5 * np.sum(np.abs(p - p_star)))
    return np.asarray(errors)


_SEED_FNS: dict[str, Callable] = {
    "regression": _regression_seed,
    "gaussian": _gaussian_seed,
    "categorical": _categorical_seed,
}


def loop_seed(wl: Workload, seed: int, root: int = 0) -> np.ndarray:
    """Test error (G+1,) of one seed, the per-seed loop."""
    return _SEED_FNS[wl.world](np.random.default_rng([root, seed]), wl)


def loop_reference(wl: Workload, n_seeds: int, root: int = 0) -> np.ndarray:
    """Test error (S, G+1): a Python loop over seeds, one at a time."""
    return np.stack([loop_seed(wl, s, root) for s in range(n_seeds)])


# ----------------------------------------------------------------------------- batched numpy


def _solve_SxD(gram_SxDxD, rhs_SxD):
    return np.linalg.solve(gram_SxDxD, rhs_SxD[..., None])[..., 0]


def _gram(X_SxNxD, y_SxN):
    """X^T X (S, D, D) and X^T y (S, D) of a stack of training sets."""
    Xt = X_SxNxD.transpose(0, 2, 1)
    return Xt @ X_SxNxD, (Xt @ y_SxN[..., None])[..., 0]


def _regression_batch(rng: np.random.Generator, wl: Workload, S: int) -> np.ndarray:
    d, T, sigma, G = wl.d, wl.n, wl.sigma, wl.G
    m = int(round(wl.real_fraction * T))
    w_star = rng.standard_normal((S, d)) / math.sqrt(d)
    X = rng.standard_normal((S, T, d))

    def labels(w_SxD):
        return (X @ w_SxD[..., None])[..., 0] + sigma * rng.standard_normal((S, T))

    y_real = labels(w_star)
    w = _solve_SxD(*_gram(X, y_real))
    errors = np.empty((S, G + 1))
    errors[:, 0] = np.sum((w - w_star) ** 2, axis=1)
    pooled = wl.regime in ("accumulate", "accumulate_subsample")
    if pooled:
        pool_X = np.empty((S, (G + 1) * T, d))
        pool_y = np.empty((S, (G + 1) * T))
        pool_X[:, :T], pool_y[:, :T] = X, y_real
    y_current = y_real
    rows = np.arange(S)[:, None]
    for g in range(1, G + 1):
        y_synth = labels(w)
        if wl.regime == "replace":
            X_train, y_train = X, y_synth
        elif wl.regime == "mix":
            y_train = y_synth
            if m:
                keep = np.argpartition(rng.random((S, T)), m - 1, axis=1)[:, :m]
                y_train[rows, keep] = y_real[rows, keep]
            X_train = X
        elif wl.regime == "token_edit":
            y_current = np.where(rng.random((S, T)) < wl.q, y_synth, y_current)
            X_train, y_train = X, y_current
        else:
            n = (g + 1) * T
            pool_X[:, g * T : n], pool_y[:, g * T : n] = X, y_synth
            X_train, y_train = pool_X[:, :n], pool_y[:, :n]
            if wl.regime == "accumulate_subsample":
                idx = np.argpartition(rng.random((S, n)), T - 1, axis=1)[:, :T]
                X_train, y_train = X_train[rows, idx], y_train[rows, idx]
        w = _solve_SxD(*_gram(X_train, y_train))
        errors[:, g] = np.sum((w - w_star) ** 2, axis=1)
    return errors


def _gaussian_batch(rng: np.random.Generator, wl: Workload, S: int) -> np.ndarray:
    d, M, s2, G = wl.d, wl.n, wl.sigma**2, wl.G
    x = math.sqrt(s2) * rng.standard_normal((S, M, d))
    errors = np.empty((S, G + 1))
    for g in range(G + 1):
        mu = x.mean(axis=1)
        xc = x - mu[:, None, :]
        cov = (xc.transpose(0, 2, 1) @ xc) / M
        errors[:, g] = w2sq_to_isotropic(mu, cov, s2)
        if g < G:
            L = np.linalg.cholesky(cov)
            x = mu[:, None, :] + rng.standard_normal((S, M, d)) @ L.transpose(0, 2, 1)
    return errors


def _categorical_batch(rng: np.random.Generator, wl: Workload, S: int) -> np.ndarray:
    V, M, G = wl.d, wl.n, wl.G
    p_star = np.full(V, 1.0 / V)
    p = np.broadcast_to(p_star, (S, V))
    errors = np.empty((S, G + 1))
    for g in range(G + 1):
        p = rng.multinomial(M, p) / M
        errors[:, g] = 0.5 * np.sum(np.abs(p - p_star), axis=1)
    return errors


_BATCH_FNS: dict[str, Callable] = {
    "regression": _regression_batch,
    "gaussian": _gaussian_batch,
    "categorical": _categorical_batch,
}


def batch_chunk(wl: Workload) -> int:
    """Seeds per batched call: enough to amortise numpy's per-call cost, few enough
    that a chunk's arrays (the pool under accumulate) stay near 256 MB and in cache-friendly sizes."""
    rows = (wl.G + 1) * wl.n if wl.regime.startswith("accumulate") else wl.n
    per_seed = 8 * rows * max(wl.d, 1) * 3
    return int(max(16, min(1024, (256 << 20) // per_seed)))


def batched_reference(wl: Workload, n_seeds: int, root: int = 0, chunk: int | None = None) -> np.ndarray:
    """Test error (S, G+1): every seed of a chunk at once, chunks one after another."""
    rng = np.random.default_rng([root, 1 << 30])
    chunk = chunk or batch_chunk(wl)
    parts = [_BATCH_FNS[wl.world](rng, wl, min(chunk, n_seeds - s)) for s in range(0, n_seeds, chunk)]
    return np.concatenate(parts)


# ----------------------------------------------------------------------------- agreement


def compare_means(a_SxG: np.ndarray, b_SxG: np.ndarray) -> dict:
    """Per-generation z-scores of the difference of two Monte Carlo means,
    (mean_a - mean_b) / sqrt(se_a^2 + se_b^2); both samples need >= 2 seeds."""
    a, b = np.asarray(a_SxG, float), np.asarray(b_SxG, float)
    se2 = a.var(axis=0, ddof=1) / a.shape[0] + b.var(axis=0, ddof=1) / b.shape[0]
    z = (a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(np.maximum(se2, 1e-300))
    return {
        "max_abs_z": float(np.max(np.abs(z))),
        "z_last": float(z[-1]),
        "mean_a_last": float(a[:, -1].mean()),
        "mean_b_last": float(b[:, -1].mean()),
        "seeds_a": int(a.shape[0]),
        "seeds_b": int(b.shape[0]),
    }
