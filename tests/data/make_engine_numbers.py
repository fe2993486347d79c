"""Write tests/data/engine_numbers.npz: the engine's records for small regression runs
(d = 4, T = 12, 8 seeds, 4 generations) of every regime, read by tests/test_engine_numbers.py.

The arrays are the engine's records at commit 27de35f, where this script was run; a later
change that keeps every seed's numbers keeps them to rounding (float64 rtol 1e-10, float32
rtol 1e-5).  Run from the repository root:  python tests/data/make_engine_numbers.py
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for engine_mc when run as a script
from engine_mc import precision  # noqa: E402

from collapse_sim.simulator.loop import make_simulate, seed_keys
from collapse_sim.simulator.regimes import config as regime_config, make_regime
from collapse_sim.simulator.worlds import regression

D, T, S, G = 4, 12, 8, 4
OUT = Path(__file__).with_name("engine_numbers.npz")
VERIFIER = {"rule": "verifier", "gamma": 0.3, "bias": 0.5, "rounds": 2}
FEW = {"rule": "verifier", "gamma": 0.0, "bias": 1.0, "rounds": 1}  # accepts few rows: rank-deficient Grams

# name: (precision, world fields, regime name, regime fields)
CASES = {
    "replace": ("float64", {}, "replace", {}),
    "replace_f32": ("float32", {}, "replace", {}),
    "replace_fresh": ("float64", {"design": "fresh"}, "replace", {}),
    "replace_ridge": ("float64", {"ridge": 0.1}, "replace", {}),
    "replace_ridge_power": ("float64", {"ridge": 0.1, "spectrum": "power_law", "power": 2.0}, "replace", {}),
    "replace_power": ("float64", {"spectrum": "power_law", "power": 2.0}, "replace", {}),
    "replace_shift": ("float64", {"shift_share": 0.5, "shift_norm": 1.0}, "replace", {}),
    "mix_original": ("float64", {}, "mix", {"real_fraction": 0.2, "real_source": "original"}),
    "mix_fixed": ("float64", {}, "mix", {"real_fraction": 0.25, "real_source": "original", "resample_real": False}),
    "mix_fresh": ("float64", {}, "mix", {"real_fraction": 0.25, "real_source": "fresh"}),
    "mix_f32": ("float32", {}, "mix", {"real_fraction": 0.2, "real_source": "original"}),
    "accumulate": ("float64", {}, "accumulate", {}),
    "accumulate_f32": ("float32", {}, "accumulate", {}),
    "accumulate_ridge_power": ("float64", {"ridge": 0.1, "spectrum": "power_law", "power": 2.0}, "accumulate", {}),
    "accumulate_fresh": ("float64", {"design": "fresh"}, "accumulate", {}),
    "accumulate_subsample": ("float64", {}, "accumulate_subsample", {}),
    "accumulate_subsample_f32": ("float32", {}, "accumulate_subsample", {}),
    "token_edit": ("float64", {}, "token_edit", {"schedule": "bernoulli", "q": 0.2}),
    "token_edit_disjoint": ("float64", {}, "token_edit", {"schedule": "disjoint", "k": 6, "edit_source": "original"}),
    "token_edit_full_g0": ("float64", {}, "token_edit", {"schedule": "full", "prior": "generation0"}),
    "weighted": ("float64", {}, "weighted", {}),
    "weighted_half": ("float64", {}, "weighted", {"weight": 0.3, "real_to_synthetic": 0.5}),
    "replace_verifier": ("float64", {}, "replace", {"curation": VERIFIER}),
    "replace_verifier_few": ("float64", {}, "replace", {"curation": FEW}),
    "mix_verifier": ("float64", {}, "mix", {"real_fraction": 0.25, "curation": VERIFIER}),
    "accumulate_verifier": ("float64", {}, "accumulate", {"curation": VERIFIER}),
    "accumulate_subsample_verifier_few": ("float64", {}, "accumulate_subsample", {"curation": FEW}),
}


def records(name: str, **extra_world) -> dict[str, np.ndarray]:
    """The (S, G+1) records of case ``name`` (``extra_world``: further world fields)."""
    dtype, world_fields, regime, regime_fields = CASES[name]
    with precision(dtype), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FEW's verifier is meant to leave training sets short
        world = regression.make_world(regression.Config(d=D, T=T, **world_fields, **extra_world))
        simulate = make_simulate(world, make_regime(regime_config(regime, **regime_fields), world, G), G)
        rec = simulate(seed_keys(jax.random.key(0), range(S)))
        return {k: np.asarray(v) for k, v in rec.items()}


def main() -> None:
    out = {f"{name}/{k}": v for name in CASES for k, v in records(name).items()}
    np.savez_compressed(OUT, **out)
    print(f"{OUT}: {len(out)} arrays, {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
