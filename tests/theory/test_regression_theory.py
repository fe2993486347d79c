"""theory/regression.py against an independent brute-force Monte Carlo written here.

The MC simulates labels and refits OLS (np.linalg.solve on the normal equations) for S
seeds at once; every comparison allows 4 combined standard errors (MC and, for the
X-sampled evaluators, their own).  Sizes are small (d ≤ 6, T ≤ 24) so the file runs in
a few seconds; one case per family sits at the edge T = d+4 and one uses a non-isotropic Σ.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from collapse_sim.theory import regression as th
from collapse_sim.theory import regression_run as run_theory

S = 20000  # MC seeds


def make_cov(d, seed=0):
    """A non-isotropic Σ: random rotation of a geometric spectrum."""
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return (Q * np.geomspace(0.2, 3.0, d)) @ Q.T


class Sim:
    """Brute-force regression world for S seeds (each seed has its own X and w*)."""

    def __init__(self, d, T, sigma2, rng, cov=None, n=S):
        self.d, self.T, self.sigma, self.rng, self.n = d, T, math.sqrt(sigma2), rng, n
        self.cov = np.eye(d) if cov is None else cov
        self.chol = np.linalg.cholesky(self.cov)
        self.w = rng.standard_normal((n, d))

    def features(self, rows):
        return self.rng.standard_normal((self.n, rows, self.d)) @ self.chol.T

    def labels(self, X, w):
        return np.einsum("snd,sd->sn", X, w) + self.sigma * self.rng.standard_normal(X.shape[:2])

    @staticmethod
    def fit(X, Y):
        Xt = np.swapaxes(X, 1, 2)
        return np.linalg.solve(Xt @ X, np.einsum("sdn,sn->sd", Xt, Y)[..., None])[..., 0]

    def error(self, w_hat):
        e = w_hat - self.w
        return np.einsum("sd,de,se->s", e, self.cov, e)


def mc(errs):
    errs = np.stack(errs, 1)
    return errs.mean(0), errs.std(0, ddof=1) / math.sqrt(errs.shape[0])


def assert_within(mean, se, ref, ref_se=0.0, z=4.0):
    mean, ref = np.asarray(mean), np.asarray(ref)
    tol = z * np.sqrt(np.asarray(se) ** 2 + np.asarray(ref_se) ** 2)
    bad = np.abs(mean - ref) > tol
    assert not bad.any(), f"MC {mean} vs theory {ref}, tolerance {tol}"


def take_rows(A, idx):
    return np.take_along_axis(A, idx[..., None] if A.ndim == 3 else idx, axis=1)


def random_subset(rng, n, T, m):
    """n×m indices of uniformly random m-subsets of T rows."""
    return np.argsort(rng.random((n, T)), axis=1)[:, :m]


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("d,T", [(5, 6), (5, 5), (5, 2)])
def test_small_T_is_rejected_with_the_values(d, T):
    with pytest.raises(ValueError, match=rf"T must be at least d\+2.*T={T}, d={d}"):
        th.check_sizes(d, T)
    with pytest.raises(ValueError, match=rf"T={T}, d={d}"):
        th.ols_error(1.0, d, T)
    with pytest.raises(ValueError, match=rf"T={T}, d={d}"):
        th.replace_curve(3, d, T, 1.0)


def test_T_up_to_d_plus_3_warns_and_d_plus_4_does_not():
    assert "infinite variance" in th.check_sizes(5, 7)
    assert "infinite variance" in th.check_sizes(5, 8)
    assert th.check_sizes(5, 9) is None
    assert th.ols_error(2.0, 5, 9) == pytest.approx(2.0 * 5 / 3)


# --------------------------------------------------------------------------- replace / accumulate


def run_replace_or_accumulate(regime, design, G, d, T, sigma2, rng, cov=None):
    sim = Sim(d, T, sigma2, rng, cov)
    X = sim.features(T)
    Xs, Ys = [X], [sim.labels(X, sim.w)]
    w_hat = sim.fit(X, Ys[0])
    errs = [sim.error(w_hat)]
    for _ in range(G):
        if design == "fresh":
            X = sim.features(T)
        Y = sim.labels(X, w_hat)
        if regime == "replace":
            w_hat = sim.fit(X, Y)
        else:
            Xs.append(X)
            Ys.append(Y)
            w_hat = sim.fit(np.concatenate(Xs, 1), np.concatenate(Ys, 1))
        errs.append(sim.error(w_hat))
    return mc(errs)


@pytest.mark.parametrize(
    "design,d,T,noniso",
    [("fixed", 5, 20, True), ("fresh", 5, 20, True), ("fixed", 3, 7, False), ("fresh", 4, 8, True)],
)
def test_replace_curve_matches_mc(design, d, T, noniso):
    cov = make_cov(d) if noniso else None
    mean, se = run_replace_or_accumulate("replace", design, 4, d, T, 0.7, np.random.default_rng(1), cov)
    assert_within(mean, se, th.replace_curve(4, d, T, 0.7))


@pytest.mark.parametrize("design,d,T", [("fixed", 5, 20), ("fresh", 5, 20), ("fixed", 3, 7)])
def test_accumulate_curve_matches_mc(design, d, T):
    mean, se = run_replace_or_accumulate("accumulate", design, 4, d, T, 1.3, np.random.default_rng(2), make_cov(d))
    theory = th.accumulate_curve(4, d, T, 1.3, design)
    assert_within(mean, se, theory)
    assert np.all(theory <= th.accumulate_bound(d, T, 1.3))
    assert np.all(mean <= th.accumulate_bound(d, T, 1.3) + 4 * se)


def test_fresh_accumulate_is_below_fixed_accumulate():
    fixed, fresh = th.accumulate_curve(6, 5, 20, 1.0, "fixed"), th.accumulate_curve(6, 5, 20, 1.0, "fresh")
    assert fresh[0] == pytest.approx(fixed[0])
    assert np.all(fresh[1:] < fixed[1:])


# --------------------------------------------------------------------------- mix


def run_mix(design, real_source, resample, G, d, T, m, sigma2, rng, cov=None, n=S):
    """m real rows + T−m rows labelled by the previous model (see theory/regression.py)."""
    sim = Sim(d, T, sigma2, rng, cov, n)
    X0 = sim.features(T)
    Y0 = sim.labels(X0, sim.w)
    w_hat = sim.fit(X0, Y0)
    errs = [sim.error(w_hat)]
    fixed_subset = random_subset(rng, n, T, m)
    for _ in range(G):
        subset = random_subset(rng, n, T, m) if resample or real_source == "fresh" else fixed_subset
        if design == "fresh" and real_source == "fresh":
            X = sim.features(T)
            Y = np.concatenate([sim.labels(X[:, :m], sim.w), sim.labels(X[:, m:], w_hat)], 1)
        elif design == "fresh":
            XS = sim.features(T - m)
            X = np.concatenate([take_rows(X0, subset), XS], 1)
            Y = np.concatenate([take_rows(Y0, subset), sim.labels(XS, w_hat)], 1)
        else:
            real = np.zeros((n, T), bool)
            np.put_along_axis(real, subset, True, axis=1)
            Y_real = sim.labels(X0, sim.w) if real_source == "fresh" else Y0
            X, Y = X0, np.where(real, Y_real, sim.labels(X0, w_hat))
        w_hat = sim.fit(X, Y)
        errs.append(sim.error(w_hat))
    return mc(errs)


@pytest.mark.parametrize("d,T,p,noniso", [(4, 16, 0.25, True), (3, 7, 0.3, False), (5, 24, 0.5, True)])
def test_theorem_M1_matches_mc_fresh_design(d, T, p, noniso):
    G, m = 5, th.real_row_count(p, T)
    cov = make_cov(d) if noniso else None
    mean, se = run_mix("fresh", "fresh", True, G, d, T, m, 0.9, np.random.default_rng(3), cov)
    assert_within(mean, se, th.mix_fresh_curve(G, d, T, p, 0.9))


def test_theorem_M1_special_cases_and_limit():
    d, T = 5, 20
    np.testing.assert_allclose(th.mix_fresh_curve(6, d, T, 0.0, 1.0), th.replace_curve(6, d, T, 1.0))
    np.testing.assert_allclose(th.mix_fresh_curve(6, d, T, 1.0, 1.0), th.ols_error(1.0, d, T))
    assert th.mix_fresh_curve(2000, d, T, 0.3, 1.0)[-1] == pytest.approx(th.mix_fresh_limit(d, T, 0.3, 1.0))
    assert th.mix_fresh_limit(d, T, 0.0, 1.0) == math.inf


@pytest.mark.parametrize(
    "real_source,resample,d,T,p,noniso",
    [
        ("fresh", True, 4, 16, 0.25, True),
        ("fresh", True, 3, 7, 0.3, False),
        ("original", True, 4, 16, 0.25, True),
        ("original", True, 3, 7, 0.45, False),
        ("original", False, 4, 16, 0.5, True),
        ("original", False, 3, 7, 0.3, False),
    ],
)
def test_mix_fixed_design_matches_mc(real_source, resample, d, T, p, noniso):
    G, m = 5, th.real_row_count(p, T)
    cov = make_cov(d) if noniso else None
    mean, se = run_mix("fixed", real_source, resample, G, d, T, m, 1.1, np.random.default_rng(4), cov)
    t_mean, t_se = th.mix_fixed_design_curve(G, d, T, p, 1.1, real_source, resample, 3000, np.random.default_rng(5), cov)
    assert_within(mean, se, t_mean, t_se)


def test_mix_fixed_design_uses_without_replacement_subset_moments():
    """At small T the subset moments a = c(cT−1)/(T−1), κ = c(1−c)T/(T−1) differ from the
    Bernoulli ones (c², c(1−c)) by about 3% in the error; enough seeds to see it."""
    d, T, p, G = 2, 8, 0.5, 6
    mean, se = run_mix("fixed", "fresh", True, G, d, T, 4, 1.0, np.random.default_rng(15), None, n=150000)
    t_mean, t_se = th.mix_fixed_design_curve(G, d, T, p, 1.0, "fresh", True, 20000, np.random.default_rng(16))
    assert_within(mean, se, t_mean, t_se)


@pytest.mark.parametrize("resample", [True, False])
def test_mix_fresh_design_original_matches_mc(resample):
    d, T, p, G = 4, 16, 0.25, 4
    cov = make_cov(d)
    mean, se = run_mix("fresh", "original", resample, G, d, T, 4, 1.0, np.random.default_rng(6), cov)
    t_mean, t_se = th.mix_fresh_design_original_curve(G, d, T, p, 1.0, resample, 3000, np.random.default_rng(7), cov)
    assert_within(mean, se, t_mean, t_se)


def test_mix_fixed_design_end_points_and_M1_overestimate():
    d, T = 5, 9
    rng = np.random.default_rng(8)
    v = th.ols_error(1.0, d, T)
    for source, resample in [("fresh", True), ("original", True), ("original", False)]:
        none_real, _ = th.mix_fixed_design_curve(4, d, T, 0.0, 1.0, source, resample, 500, rng)
        np.testing.assert_allclose(none_real, th.replace_curve(4, d, T, 1.0), rtol=1e-9)
        all_real, _ = th.mix_fixed_design_curve(4, d, T, 1.0, 1.0, source, resample, 500, rng)
        np.testing.assert_allclose(all_real, v, rtol=1e-9)
    # theory/derivations.md §8(a): M1 overestimates the fixed-design fresh-real mix (+75% at d=5, T=9, g=9)
    fixed, fixed_se = th.mix_fixed_design_curve(9, d, T, 0.2, 1.0, "fresh", True, 3000, rng)
    assert th.mix_fresh_curve(9, d, T, 0.2, 1.0)[-1] > fixed[-1] + 4 * fixed_se[-1]


# --------------------------------------------------------------------------- ridge, over-parameterised


def run_ridge(design, G, d, T, sigma2, lam, rng, cov, w_star):
    sim = Sim(d, T, sigma2, rng, cov)
    sim.w = np.broadcast_to(w_star, (S, d)) if w_star is not None else sim.w / math.sqrt(d)

    def ridge(X, Y):
        Xt = np.swapaxes(X, 1, 2)
        return np.linalg.solve(Xt @ X + lam * T * np.eye(d), np.einsum("sdn,sn->sd", Xt, Y)[..., None])[..., 0]

    X = sim.features(T)
    w_hat = ridge(X, sim.labels(X, sim.w))
    errs = [sim.error(w_hat)]
    for _ in range(G):
        if design == "fresh":
            X = sim.features(T)
        w_hat = ridge(X, sim.labels(X, w_hat))
        errs.append(sim.error(w_hat))
    return mc(errs)


@pytest.mark.parametrize("design,w_given", [("fixed", True), ("fresh", True), ("fixed", False)])
def test_ridge_replace_matches_mc(design, w_given):
    d, T, lam, G = 5, 12, 0.2, 4
    cov = make_cov(d)
    w_star = np.linspace(-1.0, 1.5, d) if w_given else None
    mean, se = run_ridge(design, G, d, T, 0.8, lam, np.random.default_rng(9), cov, w_star)
    rng = np.random.default_rng(10)
    t_mean, t_se = th.ridge_replace_curve(G, d, T, 0.8, lam, 3000, rng, cov, design=design, w_star=w_star)
    assert_within(mean, se, t_mean, t_se)


def test_ridge_with_zero_penalty_is_replace():
    mean, se = th.ridge_replace_curve(5, 4, 10, 1.0, 0.0, 500, np.random.default_rng(11), make_cov(4))
    np.testing.assert_allclose(mean, th.replace_curve(5, 4, 10, 1.0), rtol=1e-9)


def test_ridge_downstream_matches_mc():
    d, T, lam, G, sigma2 = 4, 12, 0.1, 3, 1.0
    cov = make_cov(d)
    w_star = np.array([1.0, -0.5, 0.3, 2.0])
    rng = np.random.default_rng(12)
    sim = Sim(d, T, sigma2, rng, cov)
    sim.w = np.broadcast_to(w_star, (S, d))
    X = sim.features(T)
    Xt = np.swapaxes(X, 1, 2)
    A_ridge = np.linalg.solve(Xt @ X + lam * T * np.eye(d), Xt)
    errs, w_chain = [], sim.w
    for g in range(G + 1):
        if g > 0:  # one more OLS generation on fresh rows
            Xc = sim.features(T)
            w_chain = sim.fit(Xc, sim.labels(Xc, w_chain))
        errs.append(sim.error(np.einsum("sdn,sn->sd", A_ridge, sim.labels(X, w_chain))))
    mean, se = mc(errs)
    t_mean, t_se = th.ridge_downstream_curve(G, d, T, sigma2, lam, 3000, np.random.default_rng(13), cov, w_star=w_star)
    assert_within(mean, se, t_mean, t_se)


def test_overparameterised_noise_free_matches_mc():
    d, T, G, n = 12, 4, 3, 4000
    rng = np.random.default_rng(14)
    w0 = rng.standard_normal(d)
    w_hat, errs = np.broadcast_to(w0, (n, d)), []
    for _ in range(G + 1):
        X = rng.standard_normal((n, T, d))
        w_hat = np.einsum("sdn,sn->sd", np.linalg.pinv(X), np.einsum("snd,sd->sn", X, w_hat))
        errs.append(((w_hat - w0) ** 2).sum(1))
    errs = np.stack(errs, 1)
    assert_within(errs.mean(0), errs.std(0, ddof=1) / math.sqrt(n), th.overparam_noise_free_curve(G, d, T, w0 @ w0))
    with pytest.raises(ValueError, match="d > T"):
        th.overparam_noise_free_curve(3, 4, 12)


# --------------------------------------------------------------------------- dispatcher and bad input


def test_dispatcher_kinds_and_values():
    d, T, G = 5, 20, 4
    kw = dict(n_designs=200, seed=0)
    rep = run_theory.expected_test_error("replace", G, d, T, 1.0, **kw)
    assert rep["kind"] == "exact" and rep["bound"] is None
    np.testing.assert_allclose(rep["prediction"], th.replace_curve(G, d, T, 1.0))
    acc = run_theory.expected_test_error("accumulate", G, d, T, 1.0, design="fresh", **kw)
    np.testing.assert_allclose(acc["prediction"], th.accumulate_curve(G, d, T, 1.0, "fresh"))
    np.testing.assert_allclose(acc["bound"], th.accumulate_bound(d, T, 1.0))
    sub = run_theory.expected_test_error("accumulate_subsample", G, d, T, 1.0, **kw)
    assert sub["kind"] == "none" and sub["prediction"] is None
    kw["real_fraction"] = 0.2
    m1 = run_theory.expected_test_error("mix", G, d, T, 1.0, design="fresh", **kw)
    np.testing.assert_allclose(m1["prediction"], th.mix_fresh_curve(G, d, T, 0.2, 1.0))
    for design, source in [("fixed", "fresh"), ("fixed", "original"), ("fresh", "original")]:
        out = run_theory.expected_test_error("mix", G, d, T, 1.0, design=design, real_source=source, **kw)
        assert out["kind"] == "exact_in_noise" and out["prediction"].shape == (G + 1,)
        assert out["prediction_se"].shape == (G + 1,) and np.all(np.isfinite(out["prediction"]))
    ridge = run_theory.expected_test_error("replace", G, d, T, 1.0, lam=0.1, n_designs=200, seed=0)
    assert ridge["kind"] == "exact_in_noise" and "ridge" in ridge["source"]
    assert run_theory.expected_test_error("accumulate", G, d, T, 1.0, lam=0.1, n_designs=200, seed=0)["kind"] == "none"
    kw.pop("real_fraction")
    te = run_theory.expected_test_error("token_edit", G, d, T, 1.0, schedule="fixed", k=5, **kw)
    assert te["kind"] == "exact_in_noise" and te["paper_claim"].shape == (G + 1,)


@pytest.mark.parametrize(
    "call,match",
    [
        (
            lambda: run_theory.expected_test_error("recycle", 3, 5, 20, 1.0),
            r"regime='recycle'.*replace, accumulate, accumulate_subsample, mix, token_edit",
        ),
        (lambda: run_theory.expected_test_error("mix", 3, 5, 20, 1.0, real_fraction=1.2), r"real_fraction=1\.2.*\[0, 1\]"),
        (lambda: run_theory.expected_test_error("mix", 3, 5, 20, 1.0, real_fraction=None), r"real_fraction=None"),
        (
            lambda: run_theory.expected_test_error("mix", 3, 5, 20, 1.0, real_fraction=0.2, real_source="web"),
            r"real_source='web'.*fresh, original",
        ),
        (lambda: run_theory.expected_test_error("replace", 3, 5, 20, 1.0, design="half"), r"design='half'.*fixed, fresh"),
        (
            lambda: run_theory.expected_test_error("token_edit", 3, 5, 20, 1.0, design="fresh", schedule="full"),
            r"design='fixed'",
        ),
        (lambda: run_theory.expected_test_error("replace", 3, 5, 6, 1.0), r"T must be at least d\+2.*T=6, d=5"),
        (lambda: run_theory.expected_test_error("replace", 3, 5, 20, 1.0, q=0.9), r"regime 'replace' has no field q; its fields: none"),
        (lambda: th.mix_fresh_curve(3, 5, 20, -0.1, 1.0), r"real_fraction=-0\.1.*\[0, 1\]"),
        (lambda: th.mix_fixed_design_curve(3, 5, 20, 1.5, 1.0), r"real_fraction=1\.5.*\[0, 1\]"),
        (lambda: th.accumulate_curve(3, 5, 20, 1.0, "random"), r"design='random'.*fixed, fresh"),
        (lambda: th.replace_curve(-1, 5, 20, 1.0), r"G=-1"),
        (lambda: th.ols_error(-1.0, 5, 20), r"sigma2=-1\.0"),
        (lambda: th.ridge_replace_curve(3, 5, 20, 1.0, -0.1), r"lam=-0\.1"),
        (lambda: th.mix_fixed_design_curve(3, 5, 20, 0.5, 1.0, cov=np.eye(4)), r"cov must be a symmetric \(5, 5\)"),
    ],
)
def test_bad_input_names_the_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()
