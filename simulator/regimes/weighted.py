"""``weighted``: the model is a weighted average of a fit on fresh real data and a fit on
synthetic data, θ_t = w·fit(n fresh real rows) + (1−w)·fit(m rows sampled from θ_{t−1})
(He, Xu & Cheng, arXiv 2502.18049; exact error curves in ``theory/weighting.py``,
derivation ``theory/curation.md`` §3).

k = n/m (``real_to_synthetic``), n = the world's rows of one training set.  The
default weight is the optimum w*(k) = (√(k² + 4k) − k)/2 of the Gaussian mean
(``weight=golden``; for OLS the optimum is w*(v_syn/v_real), the same at k = 1).
Pooling the n + m rows into one fit is a different estimator (weight k/(1+k) on the
real rows).  The m synthetic rows are the first m of ⌈m/n⌉ synthetic training sets
drawn at once (on a fixed regression design, m > n repeats the design with fresh
labels).  Needs a world whose fits can be averaged (``world.average``: gaussian,
regression).  This regime fits generation g >= 1 itself (``Regime.fit``): its
training set holds the two tables ``{"real", "synthetic"}``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp

from collapse_sim.simulator.regimes.regime import Regime, RegimeConfig, check_real, split_keys
from collapse_sim.simulator.world import World

GOLDEN = "golden"


def golden_weight(k: float) -> float:
    """w*(k) = (√(k² + 4k) − k)/2 = 2k/(k + √(k² + 4k)) (theory/weighting.py ``golden_weight``)."""
    return 2 * k / (k + math.sqrt(k * k + 4 * k))


@dataclasses.dataclass
class WeightedConfig(RegimeConfig):
    """weight: w, the weight on the fit to fresh real data, a number in [0, 1] or
    ``golden`` (w*(k), k = n/m as drawn).  real_to_synthetic: k = n/m, real rows per
    synthetic row (m = round(n/k) synthetic rows, at least 1)."""

    NAME = "weighted"
    name: str = "weighted"
    weight: Any = GOLDEN
    real_to_synthetic: float = 1.0

    @property
    def TRACED(self) -> tuple:
        """A number weight is an argument of the compiled run (simulator/traced.py); ``golden``
        and real_to_synthetic (which sets the m synthetic rows, a shape) are static."""
        return () if isinstance(self.weight, str) else ("weight",)

    def validate(self) -> None:
        if isinstance(self.weight, str):
            if self.weight != GOLDEN:
                raise ValueError(
                    f"regime.weight={self.weight!r} is not allowed; allowed: a number in [0, 1] or 'golden' "
                    "(the optimum w*(k) = (sqrt(k^2 + 4k) - k)/2)"
                )
        else:
            check_real("weight", self.weight, 0.0, 1.0)
        check_real("real_to_synthetic", self.real_to_synthetic, 0.0, math.inf, lo_open=True, hi_open=True)

    def synthetic_rows(self, n: int) -> int:
        """m = round(n/k), at least 1."""
        return max(1, int(round(n / self.real_to_synthetic)))

    def resolved_weight(self, n: int) -> float:
        """w as a number: ``golden`` is w*(n/m) for the m this k gives."""
        if isinstance(self.weight, str):
            return golden_weight(n / self.synthetic_rows(n))
        return float(self.weight) if isinstance(self.weight, (int, float)) else self.weight  # or a tracer


def make(cfg: WeightedConfig, world: World, n_generations: int) -> Regime:
    if world.average is None:
        raise ValueError(
            f"regime=weighted needs a world whose fits can be averaged (world.average); world {world.name!r} "
            "has none; allowed worlds: gaussian, regression"
        )
    n = world.n_rows
    m = cfg.synthetic_rows(n)
    sets = math.ceil(m / n)
    w = cfg.resolved_weight(n)
    dtype = jnp.result_type(float)

    def synthetic(key, truth, params, g):
        if sets == 1:
            rows = world.sample(key, truth, params, g)
        else:
            drawn = jax.vmap(lambda k: world.sample(k, truth, params, g))(jax.random.split(key, sets))
            rows = jax.tree.map(lambda a: a.reshape((a.shape[0] * a.shape[1],) + a.shape[2:]), drawn)
        present = rows["weight"] > 0
        keep = present & (jnp.cumsum(present) <= m)
        return {**rows, "weight": jnp.where(keep, rows["weight"], 0.0).astype(rows["weight"].dtype)}

    def init(key, truth, real, params0):
        return ()

    def step(key, state, truth, params, g):
        k_sample, k_real, _ = split_keys(key)
        train = {"real": world.real(k_real, truth, g), "synthetic": synthetic(k_sample, truth, params, g)}
        stats = {
            "real_weight": jnp.asarray(w, dtype),
            "synthetic_rows": jnp.sum(train["synthetic"]["weight"] > 0).astype(dtype),
        }
        return train, state, stats

    def fit(key, train, params0):
        """w·fit(real) + (1−w)·fit(synthetic), by the world's ``average``."""
        k_real, k_syn = jax.random.split(key)
        a = world.fit(k_real, train["real"], params0)
        b = world.fit(k_syn, train["synthetic"], params0)
        return world.average(w, a, b)

    return Regime(cfg.name, init, step, fit=fit)


Config = WeightedConfig  # every regime module names its config Config
