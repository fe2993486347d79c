"""The theory of one run of the regression world, by regime: which closed form applies
to a (regime, design, ridge) combination, and its curves over generations g = 0..G."""

from __future__ import annotations

import numpy as np

from collapse_sim.theory.checks import check_choice, check_fraction, check_G, check_sigma2, check_sizes
from collapse_sim.theory.regression import (
    DESIGNS,
    REAL_SOURCES,
    REGIMES,
    accumulate_bound,
    accumulate_curve,
    check_lam,
    mix_fixed_design_curve,
    mix_fresh_curve,
    mix_fresh_design_original_curve,
    replace_curve,
    ridge_replace_curve,
)

# The fields each regime's theory takes (those of its config, simulator/regimes/<name>.py).
REGIME_FIELDS = {
    "replace": (),
    "accumulate": (),
    "accumulate_subsample": (),
    "mix": ("real_fraction", "real_source", "resample_real"),
    "token_edit": ("schedule", "edit_source", "q", "k", "eta"),
}


def _result(kind, source, prediction=None, prediction_se=None, bound=None, **extra):
    out = {"prediction": prediction, "prediction_se": prediction_se, "bound": bound, "kind": kind, "source": source}
    return out | extra


def expected_test_error(
    regime: str,
    G: int,
    d: int,
    T: int,
    sigma2: float,
    *,
    design: str = "fixed",
    lam: float = 0.0,
    cov=None,
    n_designs: int = 400,
    seed: int = 0,
    w_star=None,
    **fields,
) -> dict:
    """Theory for one run of the regression world, indexed g = 0..G.

    ``fields`` are the regime's own settings, named as in its config: mix takes
    ``real_fraction`` (required), ``real_source`` and ``resample_real``; token_edit takes
    ``schedule`` (required), ``edit_source``, ``q``, ``k``, ``eta``; the others take none.
    A field the regime does not have is an error.

    Returns {"prediction": (G+1,) or None, "prediction_se": (G+1,) or None, "bound": (G+1,) or
    None, "kind": "exact" | "exact_in_noise" | "bound" | "none", "source": str}; token_edit also
    returns "paper_claim" and "paper_bound" (the paper's lines, shown but not valid bounds)."""
    check_choice("regime", regime, REGIMES)
    unknown = sorted(set(fields) - set(REGIME_FIELDS[regime]))
    if unknown:
        has = ", ".join(REGIME_FIELDS[regime]) or "none"
        raise ValueError(f"regime {regime!r} has no field {', '.join(unknown)}; its fields: {has}")
    real_fraction = fields.get("real_fraction")
    real_source = fields.get("real_source", "fresh")
    resample = fields.get("resample_real", True)
    schedule, base = fields.get("schedule"), fields.get("edit_source", "previous")
    q, k, eta = fields.get("q"), fields.get("k"), fields.get("eta")
    G = check_G(G)
    check_choice("design", design, DESIGNS)
    lam = check_lam(lam)
    sigma2 = check_sigma2(sigma2)
    rng = np.random.default_rng(seed)
    ridge = lam > 0
    if not ridge:
        check_sizes(d, T)

    if regime == "replace":
        if ridge:
            mean, se = ridge_replace_curve(G, d, T, sigma2, lam, n_designs, rng, cov, design=design, w_star=w_star)
            return _result(
                "exact_in_noise",
                "ridge replace, exact conditional on X (theory/regression.py ridge_replace_curve; "
                "Dohmatob et al. 2024 arXiv 2402.07712, theory/derivations.md §3)",
                mean,
                se,
            )
        return _result(
            "exact",
            "v(g+1): Dohmatob et al. 2024 (arXiv 2402.07712) / Gerstgrasser et al. 2024 (arXiv 2404.01413) Thm 2; "
            "theory/derivations.md §2",
            replace_curve(G, d, T, sigma2),
        )

    if ridge:
        return _result("none", f"no closed form for ridge (lam={lam}) under regime {regime!r}")

    bound = np.full(G + 1, accumulate_bound(d, T, sigma2))
    if regime == "accumulate":
        src = (
            "v·Σ_{i≤g+1} 1/i², Gerstgrasser et al. 2024 (arXiv 2404.01413) Thm 2; theory/derivations.md §5"
            if design == "fixed"
            else "σ²d·Σ_{i≤g+1} 1/(i(iT−d−1)), fresh-design accumulate (derived; theory/regression.py); "
            "bound π²/6·v from Gerstgrasser et al. 2024 Thm 2"
        )
        return _result("exact", src, accumulate_curve(G, d, T, sigma2, design), bound=bound)

    if regime == "accumulate_subsample":
        return _result(
            "none",
            "no closed form (Kazdan et al. 2024, arXiv 2410.16713; theory/derivations.md §6): compare medians, "
            "the mean can be infinite near T = d+4",
        )

    if regime == "mix":
        p = check_fraction("real_fraction", real_fraction)
        check_choice("real_source", real_source, REAL_SOURCES)
        if design == "fresh" and real_source == "fresh":
            return _result(
                "exact",
                "Theorem M1 (theory/derivations.md §7, derived): β^g v + v(1−β^g)/(1−β)",
                mix_fresh_curve(G, d, T, p, sigma2),
            )
        if design == "fresh":
            mean, se = mix_fresh_design_original_curve(G, d, T, p, sigma2, resample, n_designs, rng, cov)
            src = "original real rows + fresh synthetic features, exact in the noise (theory/regression.py)"
        else:
            mean, se = mix_fixed_design_curve(G, d, T, p, sigma2, real_source, resample, n_designs, rng, cov)
            subset = (
                "subset redrawn each generation (Shumailov et al. 2024)"
                if resample
                else "fixed subset (Theorem M2, theory/derivations.md §8c)"
            )
            src = {
                "fresh": "fixed-design recursion R' = aPRP + κDiag(PRP) + σ²I (theory/derivations.md §8a)",
                "original": f"fixed design, original labels kept, {subset}; exact in the noise (theory/regression.py)",
            }[real_source]
        return _result("exact_in_noise", src, mean, se)

    # token_edit
    from collapse_sim.theory import token_edit as te

    if design != "fixed":
        raise ValueError(
            f"regime 'token_edit' needs design='fixed' (ToEdit §4.2 edits labels of fixed rows); got design={design!r}"
        )
    mean, se = te.exact_curve(G, d, T, sigma2, schedule, base, q=q, k=k, eta=eta, n_designs=n_designs, rng=rng, cov=cov)
    counts = te.edit_counts(G, T, schedule, q=q, k=k, eta=eta)
    paper_bound = np.full(G + 1, te.paper_bound_2v(d, T, sigma2))
    if schedule == "disjoint" and te.check_schedule(schedule, T, q=q, k=k, eta=eta)["eta"] < 1:
        paper_bound = np.full(G + 1, te.geometric_bound(d, T, sigma2, k, eta))
    return _result(
        "exact_in_noise",
        "ToEdit model (Zhu et al. 2024, arXiv 2412.14689 §4.2): exact recursion C' = BCBᵀ + σ²M "
        "(theory/toedit_audit.md §3)",
        mean,
        se,
        paper_claim=te.paper_claim(G, d, T, sigma2, counts),
        paper_bound=paper_bound,
    )
