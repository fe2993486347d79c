"""theory/strong_collapse.py against a plain-numpy Monte Carlo of OLS on real + shifted rows.

Pass: within 4 standard errors of the MC mean.  Axis letters: R replicates, N rows, D features.
"""

import numpy as np
import pytest

from collapse_sim.theory import strong_collapse as sc


def mc_mixture(rng, R, n, n_real, cov_DxD, delta_D, sigma2_real, sigma2_shift):
    """Σ-norm test errors of OLS on n_real rows y = xᵀw₁ + ε₁ and n − n_real rows y = xᵀ(w₁+δ) + ε₂."""
    d = cov_DxD.shape[0]
    X = rng.standard_normal((R, n, d)) @ np.linalg.cholesky(cov_DxD).T
    w1 = rng.standard_normal((R, d))
    shifted = np.arange(n) >= n_real
    noise_sd = np.where(shifted, np.sqrt(sigma2_shift), np.sqrt(sigma2_real))
    y = np.einsum("rnd,rd->rn", X, w1) + shifted * (X @ delta_D) + noise_sd * rng.standard_normal((R, n))
    w_hat = np.linalg.solve(np.swapaxes(X, 1, 2) @ X, np.einsum("rnd,rn->rd", X, y)[..., None])[..., 0]
    e = w_hat - w1
    return np.einsum("rd,de,re->r", e, cov_DxD, e)


def non_isotropic(d, rng):
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return Q @ np.diag(np.linspace(0.3, 3.0, d)) @ Q.T


@pytest.mark.parametrize("n, n_real, R", [(40, 30, 40_000), (40, 10, 40_000), (200, 180, 10_000)])
def test_mixture_error_matches_mc(n, n_real, R):
    rng = np.random.default_rng(20)
    d = 8
    cov = non_isotropic(d, rng)
    delta = rng.standard_normal(d)
    delta *= np.sqrt(2.112 / sc.shift_norm2(delta, cov))  # δᵀΣδ = 2.112, σ₁² = 1, σ₂² = 0.25
    err = mc_mixture(rng, R, n, n_real, cov, delta, 1.0, 0.25)
    theory = sc.mixture_error(n, n_real, d, 1.0, 0.25, sc.shift_norm2(delta, cov))
    se = err.std(ddof=1) / np.sqrt(R)
    assert abs(err.mean() - theory) <= 4 * se, f"MC {err.mean()} ± {se} vs exact {theory}"


def test_shift_factor_edges_and_plateau():
    assert sc.shift_factor(40, 40, 8) == 0.0  # no shifted rows
    np.testing.assert_allclose(sc.shift_factor(40, 0, 8), 1.0)  # all rows shifted: ŵ = w₁ + δ + noise
    ns = np.array([20, 100, 1_000, 100_000])
    curve = sc.mixture_error_curve(ns, 0.75, 8, 1.0, 0.25, 2.0)
    np.testing.assert_allclose(curve[1], sc.mixture_error(100, 75, 8, 1.0, 0.25, 2.0))
    assert np.all(np.diff(curve) < 0)
    floor = sc.plateau(0.75, 2.0)
    assert curve[-1] > floor and curve[-1] - floor < 1e-3  # the floor p₂²δᵀΣδ does not vanish


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: sc.mixture_error(40, 41, 8, 1.0, 1.0, 1.0), "n_real"),
        (lambda: sc.mixture_error(40, 30, 8, -1.0, 1.0, 1.0), "sigma2_real"),
        (lambda: sc.mixture_error(9, 5, 8, 1.0, 1.0, 1.0), "T must be at least d"),
        (lambda: sc.mixture_error_curve([40, 50], 1.5, 8, 1.0, 1.0, 1.0), "real_share"),
        (lambda: sc.plateau(0.5, -1.0), "shift_sq"),
    ],
)
def test_bad_input_names_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}"):
        call()
