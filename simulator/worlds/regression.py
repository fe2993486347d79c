"""Linear-regression world (Dohmatob et al. 2024, arXiv 2402.07712; Gerstgrasser
et al. 2024, arXiv 2404.01413).

Features x ~ N(0, Σ) in d dimensions, Σ = diag(λ) (isotropic, or a power law
λ_i ∝ i^-power normalised to tr Σ = d), labels y = xᵀw* + ε with ε ~ N(0, σ²)
and w* ~ N(0, I/d).  One training set is T rows.  With ``design="fixed"`` (the
default, as in Gerstgrasser et al. and ToEdit §4.2) the same design X is reused
in every generation and synthetic labels are X ŵ_{n-1} + fresh noise; with
``design="fresh"`` every training set draws new features.

Fit: weighted ridge, ŵ = (XᵀWX + λ n I)⁻¹ XᵀW y with n = Σ weights (λ = 0 is
OLS).  Test error is exact, E_test(ŵ) = (ŵ − w*)ᵀ Σ (ŵ − w*), the excess risk of
all three papers.

Strong model collapse (Dohmatob, Feng, Subramonian & Kempe, arXiv 2410.04840): with
``shift_share`` p₂ > 0 the real data is a mixture, its first n₂ = round(p₂ T) rows
labelled y = xᵀ(w* + δ) + ε and the rest y = xᵀw* + ε, with δ of norm
√(δᵀΣδ) = ``shift_norm`` in a direction drawn per seed; the test error stays the
real task's, against w*.  With ``run.n_generations=0`` a run is the single fit whose
exact expected error is ``theory/strong_collapse.py`` ``mixture_error``.

Curation hooks (``simulator/curation.py``): ``verify`` is the verifier of Yi, Liu,
Cheng & Xu (arXiv 2510.16657): keep a row when |y − xᵀθ_v| ≤ γ‖x‖ + √(2/π)σ, with
the biased belief θ_v = w* + bias·u, u = (1, ..., 1)/√d (``regime.curation.bias``,
``gamma``); ``average`` (regime ``weighted``) averages the OLS weights.

Numerics.  Σ is known and diagonal, so the fit works in the whitened basis
x̃ = x Σ^{-1/2}, where the Gram matrix G̃ = X̃ᵀWX̃ of Gaussian rows is as well
conditioned as an isotropic one whatever the spectrum: ŵ = Σ^{-1/2} w̃ with
w̃ = (G̃ + λ n Σ^{-1})⁻¹ X̃ᵀW y, the same minimiser, and with the same penalty
λ n ||w||², as in the original basis (for a power-law spectrum and λ > 0 the
matrix is scaled by its diagonal before it is decomposed).  Isotropic runs
compute exactly what they did in the original basis.  With ``record_gram`` the fit
is an eigendecomposition and records ``gram_min_eig``, the smallest eigenvalue of
G̃ / n, and ``gram_cond``, the condition number of the matrix the fit decomposes;
once that exceeds ``COND_TOL`` / eps of the precision (where ŵ could be off by more
than about 1%) ``gram_cond`` is NaN, which stops the run naming it.  Without it (the
default) the fit is a Cholesky solve a = L Lᵀ of the same matrix, 10–25 times
cheaper, with the bound cond₂(a) <= ||a||_∞ ||L⁻¹||_F²: when every seed's bound is at
most ``CHOL_TOL`` / eps (the two solves then agree to rounding) the batch takes it,
otherwise the whole batch takes the eigendecomposition, whose minimum-norm solution
(fewer rows of positive weight than d, e.g. under curation) and condition number are
as above; the record ``gram_solvable`` is 1, or NaN where ``gram_cond`` would be, which
stops the run naming it.  The statistics G̃, X̃ᵀWy and n add over rows, so
``accumulate`` keeps their running sums (``summarize``, ``fit_summary``) instead of
refitting the whole pool every generation.  A T and d whose Gram matrix is expected to be that ill-conditioned
(Marchenko–Pastur edges, ((√T + √d)/(√T − √d))²) are refused at start, and the
power law is limited to a condition number of Σ, d^power, of at most
``SPECTRUM_COND_MAX``.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from collapse_sim.simulator import linalg, normal, traced
from collapse_sim.simulator.world import World
from collapse_sim.simulator.worlds import checks

DESIGNS = ("fixed", "fresh")
SPECTRA = ("isotropic", "power_law")
SPECTRUM_COND_MAX = 1e8  # largest allowed condition number of Σ, d^power
COND_TOL = 1e-2  # a fit whose Gram condition number times eps exceeds this stops the run
CHOL_TOL = 1e-5  # the Cholesky solve is used when its condition bound times eps is at most this


@dataclasses.dataclass
class RegressionConfig:
    """d features, T rows per training set, label noise standard deviation sigma,
    ridge penalty (0 = OLS), design fixed|fresh, spectrum isotropic|power_law;
    shift_share, shift_norm: the share of real rows labelled by w* + δ and √(δᵀΣδ)
    (strong model collapse; module docstring).  record_gram: record each fit's
    ``gram_min_eig`` and ``gram_cond`` (an eigendecomposition per fit; without them
    the fit is a Cholesky solve, the same numbers to rounding; module docstring)."""

    name: str = "regression"
    d: int = 10
    T: int = 40
    sigma: float = 1.0
    ridge: float = 0.0
    design: str = "fixed"
    spectrum: str = "isotropic"
    power: float = 1.0
    shift_share: float = 0.0
    shift_norm: float = 1.0
    record_gram: bool = False

    @property
    def TRACED(self) -> tuple:
        """Arguments of the compiled run (simulator/traced.py); ridge > 0 and a shifted row
        choose code paths, so they are static facts (``structure``); power is read only by
        the power-law spectrum."""
        power = ("power",) if self.spectrum == "power_law" else ()
        return ("sigma", "ridge", "shift_share", "shift_norm") + power

    def __post_init__(self):
        validate(self)

    def structure(self) -> dict:
        return {"ridge": self.ridge > 0, "shifted": round(self.shift_share * self.T) > 0}


def _check_shift(cfg: RegressionConfig) -> None:
    share, norm = cfg.shift_share, cfg.shift_norm
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not (math.isfinite(share) and 0 <= share <= 1):
        raise ValueError(f"world.shift_share={share!r} is not allowed; allowed: a share of shifted real rows in [0, 1]")
    if isinstance(norm, bool) or not isinstance(norm, (int, float)) or not (math.isfinite(norm) and norm >= 0):
        raise ValueError(f"world.shift_norm={norm!r} is not allowed; allowed: a finite number >= 0 (the shift's √(δᵀΣδ))")


def validate(cfg: RegressionConfig) -> None:
    _check_shift(cfg)
    if not isinstance(cfg.record_gram, bool):
        raise ValueError(f"world.record_gram={cfg.record_gram!r} is not allowed; allowed: true or false")
    if not (isinstance(cfg.d, int) and cfg.d >= 1):
        raise ValueError(f"world.d={cfg.d!r} must be a positive whole number of features")
    if not (isinstance(cfg.T, int) and cfg.T >= 1):
        raise ValueError(f"world.T={cfg.T!r} must be a positive whole number of rows")
    if cfg.design not in DESIGNS:
        raise ValueError(f"world.design={cfg.design!r} is not known; allowed: {', '.join(DESIGNS)}")
    if cfg.spectrum not in SPECTRA:
        raise ValueError(f"world.spectrum={cfg.spectrum!r} is not known; allowed: {', '.join(SPECTRA)}")
    checks.number("sigma", cfg.sigma, low=0)
    checks.number("ridge", cfg.ridge, low=0)
    checks.number("power", cfg.power, low=0)
    if cfg.spectrum == "power_law" and cfg.d > 1 and cfg.power > max_power(cfg.d):
        raise ValueError(
            f"world.power={cfg.power!r} with world.d={cfg.d}: the power-law spectrum's eigenvalues would span "
            f"d^power = {cfg.d:.0f}^{cfg.power:g} (more than {SPECTRUM_COND_MAX:.0e}); allowed: "
            f"0 <= world.power <= log({SPECTRUM_COND_MAX:.0e}) / log(d) = {max_power(cfg.d):.4g} at d={cfg.d}"
        )
    if cfg.ridge == 0 and cfg.T <= cfg.d + 1:
        raise ValueError(
            f"world.T={cfg.T} with world.d={cfg.d}: ordinary least squares needs T >= d+2 "
            f"(at T <= d+1 it is singular or its expected test error is infinite); "
            f"use T >= {cfg.d + 2} or a ridge penalty world.ridge > 0"
        )
    if cfg.ridge == 0 and cfg.T <= cfg.d + 3:
        warnings.warn(
            f"world.T={cfg.T} <= d+3={cfg.d + 3}: the OLS test error has a finite mean but an "
            "infinite variance, so Monte Carlo confidence intervals are not valid here",
            stacklevel=3,
        )


def max_power(d: int) -> float:
    """Largest power whose spectrum has condition number d^power <= SPECTRUM_COND_MAX."""
    return math.inf if d <= 1 else math.log(SPECTRUM_COND_MAX) / math.log(d)


def expected_gram_cond(d: int, T: int) -> float:
    """Condition number of the Gram matrix of T standard Gaussian rows in d dimensions at the
    Marchenko–Pastur edges, ((√T + √d)/(√T − √d))² (the whitened Gram matrix of one training set)."""
    return math.inf if T <= d else ((math.sqrt(T) + math.sqrt(d)) / (math.sqrt(T) - math.sqrt(d))) ** 2


def check_precision(cfg: RegressionConfig, dtype) -> None:
    """What the run's precision must hold: the errors (σ² times the spread of Σ, which
    param_error divides by), the penalty λ n / λ_min, and a solvable Gram matrix."""
    lam = spectrum(cfg)
    kappa = float(lam.max() / lam.min())
    checks.representable("sigma", cfg.sigma, dtype, factor=kappa, what="errors of size sigma² · d^power")
    checks.representable("sigma", cfg.sigma, dtype, small=True, what="errors of size sigma²")
    checks.representable("ridge", cfg.ridge, dtype, power=1, factor=kappa * cfg.T,
                         what="the penalty ridge · T · d^power")
    eps = float(np.finfo(dtype).eps)
    cond = expected_gram_cond(cfg.d, cfg.T)
    if cfg.ridge == 0 and cond * eps > COND_TOL:
        raise ValueError(
            f"world.T={cfg.T} with world.d={cfg.d} in {np.dtype(dtype).name}: the Gram matrix of T rows has a "
            f"condition number of about {cond:.3g}, beyond the {COND_TOL / eps:.3g} that "
            f"run.precision={np.dtype(dtype).name} solves to 1%; use run.precision=float64, more rows "
            f"(world.T) or world.ridge > 0"
        )


def spectrum(cfg: RegressionConfig) -> np.ndarray:
    """Eigenvalues of Σ (diagonal), normalised to tr Σ = d."""
    if cfg.spectrum == "isotropic":
        return np.ones(cfg.d)
    lam = np.arange(1, cfg.d + 1, dtype=float) ** (-cfg.power)
    return lam * cfg.d / lam.sum()


def spectrum_array(cfg: RegressionConfig, dtype) -> jax.Array:
    """:func:`spectrum` in ``jnp`` (``power`` may be traced), equal to it up to rounding."""
    if cfg.spectrum == "isotropic":
        return jnp.ones((cfg.d,), dtype)
    lam = jnp.arange(1, cfg.d + 1, dtype=dtype) ** (-cfg.power)
    return lam * cfg.d / jnp.sum(lam)


def merge_vmapped_axis(batched) -> None:
    """Give the ``custom_vmap`` function ``batched`` (every argument and output with a leading
    batch axis) the vmap rule that merges the vmapped axis into that batch, so that however it
    is vmapped it sees one batch (its batch-level choices cover every seed and grid point)."""

    @batched.def_vmap
    def _merged(axis_size, in_batched, *args):
        args = [a if b else jnp.broadcast_to(a, (axis_size,) + a.shape) for a, b in zip(args, in_batched)]
        out = batched(*[a.reshape((-1,) + a.shape[2:]) for a in args])
        return jax.tree.map(lambda o: o.reshape((axis_size, -1) + o.shape[1:]), out), jax.tree.map(lambda _: True, out)


def make_world(cfg: RegressionConfig, rows=None) -> World:
    """The world's functions; ``cfg`` may hold tracers in its ``TRACED`` fields
    (``simulator/traced.py``), which are then used in ``jnp`` arithmetic only.  ``rows``: a
    padded grid's live rows (``simulator/padding.py``): tables keep cfg.T rows, those past
    ``rows`` of weight 0; every draw of the first ``rows`` rows is that of a world of that
    many rows (JAX's counter-based draws depend on an entry's index, not on the shape)."""
    dtype = jnp.result_type(float)
    if not traced.is_traced(cfg):
        validate(cfg)
        check_precision(cfg, dtype)
    d, T, sigma, ridge = cfg.d, cfg.T, cfg.sigma, cfg.ridge
    live = T if rows is None else jnp.asarray(rows).astype(jnp.int32)
    ones = jnp.ones((T,), dtype) if rows is None else (jnp.arange(T) < live).astype(dtype)
    fixed = cfg.design == "fixed"
    use_ridge, shifted_rows = traced.structure(cfg)["ridge"], traced.structure(cfg)["shifted"]
    lam = spectrum_array(cfg, dtype)
    isotropic = cfg.spectrum == "isotropic"
    inv_root = 1.0 / jnp.sqrt(lam)  # Σ^{-1/2}; exactly 1 when isotropic
    max_cond = COND_TOL / jnp.finfo(dtype).eps
    chol_limit = CHOL_TOL / jnp.finfo(dtype).eps
    record_gram = cfg.record_gram
    shifted = (jnp.arange(T) < traced.count(cfg.shift_share, live)).astype(dtype)
    belief_u = jnp.ones((d,), dtype) / jnp.sqrt(d)
    slack = math.sqrt(2 / math.pi) * sigma

    def features(key):
        return normal.normal(key, (T, d), dtype) * jnp.sqrt(lam)

    def labels(key, x, w):
        return x @ w + sigma * normal.normal(key, (T,), dtype)

    def init(key):
        """w*, the design x (used by the fixed design) and, fixed, its rows' weights (ones):
        every training set's x and weight are these arrays (``World.fixed_fields``)."""
        fixed_rows = {"weight": ones} if fixed else {}
        if not shifted_rows:
            k_w, k_x = jax.random.split(key)
            return {"w_star": normal.normal(k_w, (d,), dtype) / jnp.sqrt(d), "x": features(k_x)} | fixed_rows
        # a third key for the shift's direction: fold_in(key, i) is split(key)[i], so the
        # direction must not come from fold_in(key, 1), the key the features are drawn with
        k_w, k_x, k_u = jax.random.split(key, 3)
        w_star = normal.normal(k_w, (d,), dtype) / jnp.sqrt(d)
        u = normal.normal(k_u, (d,), dtype)
        delta = cfg.shift_norm * u / jnp.sqrt(jnp.sum(lam * u * u))  # δᵀΣδ = shift_norm²
        return {"w_star": w_star, "x": features(k_x), "delta": delta} | fixed_rows

    def table(x, y):
        return {"x": x, "y": y, "weight": ones}

    def draw(key, truth, w):
        if fixed:
            return {"x": truth["x"], "y": labels(key, truth["x"], w), "weight": truth["weight"]}
        k_x, k_y = jax.random.split(key)
        x = features(k_x)
        return table(x, labels(k_y, x, w))

    def real(key, truth, g):
        rows = draw(key, truth, truth["w_star"])
        if not shifted_rows:
            return rows
        return {**rows, "y": rows["y"] + shifted * (rows["x"] @ truth["delta"])}  # y = xᵀ(w* + δ) + ε

    def sample(key, truth, params, g):
        return draw(key, truth, params["w"])

    def edit(key, truth, params, rows, eligible):
        """ToEdit's regression model (§4.2): eligible rows get a fresh label from
        the current model, x ŵ + ε; the others keep theirs."""
        y_new = labels(key, rows["x"], params["w"])
        out = {**rows, "y": jnp.where(eligible, y_new, rows["y"])}
        share = jnp.mean(eligible.astype(dtype))
        return out, {"edited_share": share}

    def summarize(rows):
        """The fit's sufficient statistics, additive over rows: G̃ = X̃ᵀWX̃, X̃ᵀW y, n = Σ weights
        in the whitened basis x̃ = x Σ^{-1/2} (×1 left out when isotropic), and the count of rows
        of positive weight."""
        w, y = rows["weight"], rows["y"]
        x = rows["x"] if isotropic else rows["x"] * inv_root
        return {"gram": x.T @ (w[:, None] * x), "rhs": x.T @ (w * y), "n": jnp.sum(w),
                "rows": jnp.sum(w > 0).astype(dtype)}

    # The solves take the ridge λ and the spectrum's eigenvalues as arguments, not from the
    # closure: both may be traced numbers that differ between grid points, and solve_batch's
    # custom vmap rule must see every batched value among its arguments.

    def scaled_ridge(gram, n, ridge, lam):
        """(a, s) for a ridge on a power-law spectrum: the penalty λ n ||w||² = λ n w̃ᵀ Σ^{-1} w̃, so
        a = s (G̃ + λ n Σ^{-1}) s with the diagonal scaling s = diag(G̃ + λ n Σ^{-1})^{-1/2}, which
        keeps the matrix decomposed well conditioned when Σ^{-1} spans many orders of magnitude."""
        a = gram + jnp.diag(ridge * n / lam)
        s = 1.0 / jnp.sqrt(jnp.diagonal(a))
        return a * s[:, None] * s[None, :], s

    def solve_eigh(gram, rhs, n, ridge, lam, min_eig=True):
        """(w̃, the condition number of the matrix decomposed, G̃'s smallest eigenvalue): the
        eigendecomposition, the minimum-norm solution where G̃ is singular (OLS)."""
        if use_ridge and not isotropic:
            a, s = scaled_ridge(gram, n, ridge, lam)
            evals, evecs = linalg.eigh(a)
            w_tilde = s * (evecs @ ((evecs.T @ (s * rhs)) / evals))
            cond = evals[-1] / evals[0]
            return w_tilde, cond, linalg.eigvalsh(gram)[0] if min_eig else None
        evals, evecs = linalg.eigh(gram)
        if use_ridge:
            inv = 1.0 / (evals + ridge * n)
            cond = (evals[-1] + ridge * n) / (evals[0] + ridge * n)
        else:
            cutoff = jnp.max(evals) * d * jnp.finfo(dtype).eps
            inv = jnp.where(evals > cutoff, 1.0 / jnp.where(evals > cutoff, evals, 1.0), 0.0)
            cond = jnp.where(evals[0] > 0, evals[-1] / jnp.where(evals[0] > 0, evals[0], 1.0), jnp.inf)
        w_tilde = evecs @ (inv * (evecs.T @ rhs))
        return w_tilde, cond, evals[0]

    def solve_cholesky(gram, rhs, n, ridge, lam):
        """(w̃, a bound on the condition number of the matrix solved): a = L Lᵀ, w̃ = s L⁻ᵀ L⁻¹ s b
        for the matrix and scaling :func:`solve_eigh` decomposes; cond₂(a) <= ||a||_∞ ||L⁻¹||_F²
        (NaN where the factorisation fails)."""
        if use_ridge and not isotropic:
            a, s = scaled_ridge(gram, n, ridge, lam)
        else:
            a = gram + ridge * n * jnp.eye(d, dtype=dtype) if use_ridge else gram
            s = jnp.ones((d,), dtype)
        linv = linalg.inverse_cholesky(a)
        w_tilde = s * (linv.T @ (linv @ (s * rhs)))
        return w_tilde, jnp.max(jnp.sum(jnp.abs(a), axis=1)) * jnp.sum(linv * linv)

    def solvable(cond):
        return jnp.where(cond <= max_cond, jnp.ones_like(cond), jnp.nan)

    def solve_exact(gram, rhs, n, ridge, lam):
        w_tilde, cond, _ = solve_eigh(gram, rhs, n, ridge, lam, min_eig=False)
        return w_tilde, solvable(cond)

    @jax.custom_batching.custom_vmap
    def solve_batch(gram_BxDxD, rhs_BxD, n_B, ridge_B, lam_BxD):
        """(w̃, solvable) of a batch of fits: the Cholesky solve for all when every fit's bound
        is finite and at most CHOL_TOL / eps (then cond <= bound <= the stopping limit), else
        the eigendecomposition for all (a real ``lax.cond``: one branch runs)."""
        args = (gram_BxDxD, rhs_BxD, n_B, ridge_B, lam_BxD)
        w_tilde, bound = jax.vmap(solve_cholesky)(*args)
        ok = jnp.all(jnp.isfinite(bound) & (bound <= chol_limit))
        return jax.lax.cond(ok, lambda: (w_tilde, jnp.ones_like(n_B)), lambda: jax.vmap(solve_exact)(*args))

    merge_vmapped_axis(solve_batch)

    def fit_summary(key, summary, params0):
        """Ridge (OLS at λ = 0) in the whitened basis x̃ = x Σ^{-1/2} (module docstring), from
        :func:`summarize`'s statistics."""
        gram, rhs, n = summary["gram"], summary["rhs"], summary["n"]
        if not record_gram:
            penalty = jnp.asarray(ridge, dtype)
            w_tilde, ok = jax.tree.map(lambda a: a[0], solve_batch(gram[None], rhs[None], n[None], penalty[None],
                                                                   lam[None]))
            return {"w": w_tilde * inv_root, "gram_solvable": ok}  # NaN stops the run, naming gram_solvable
        w_tilde, cond, min_eig = solve_eigh(gram, rhs, n, ridge, lam)
        gram_cond = jnp.where(cond <= max_cond, cond, jnp.nan)  # NaN stops the run, naming gram_cond
        return {"w": w_tilde * inv_root, "gram_min_eig": min_eig / n, "gram_cond": gram_cond}

    def fit(key, rows, params0):
        return fit_summary(key, summarize(rows), params0)

    def evaluate(truth, params):
        e = params["w"] - truth["w_star"]
        out = {"test_error": jnp.sum(lam * e * e), "param_error": jnp.sum(e * e)}
        if record_gram:
            return out | {"gram_min_eig": params["gram_min_eig"], "gram_cond": params["gram_cond"]}
        return out | {"gram_solvable": params["gram_solvable"]}

    def verify(truth, rows, rule):
        """Yi et al. (arXiv 2510.16657): |y − xᵀθ_v| ≤ γ‖x‖ + √(2/π)σ, θ_v = w* + bias·u."""
        theta_v = truth["w_star"] + rule.bias * belief_u
        resid = jnp.abs(rows["y"] - rows["x"] @ theta_v)
        return resid <= rule.gamma * jnp.sqrt(jnp.sum(rows["x"] ** 2, axis=-1)) + slack

    def average(w, a, b):
        """OLS weights w·a + (1−w)·b (regime weighted); the Gram diagnostics of the worse fit."""
        out = {"w": w * a["w"] + (1 - w) * b["w"]}
        for k in a:
            if k != "w":
                out[k] = jnp.minimum(a[k], b[k]) if k == "gram_min_eig" else jnp.maximum(a[k], b[k])
        return out

    return World("regression", T, init, real, fit, sample, evaluate, edit, verify=verify, average=average,
                 summarize=summarize, fit_summary=fit_summary, fixed_fields=("x", "weight") if fixed else (),
                 rows=rows)
Config = RegressionConfig
