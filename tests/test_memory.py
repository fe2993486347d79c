"""The memory estimate refuses runs that cannot fit, at start, naming the knobs, and lets
every documented run through on a 24 GB machine."""

import warnings
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from collapse_sim.experiments.config import register
from collapse_sim.simulator import memory

register()
CONF = Path(__file__).resolve().parents[1] / "experiments" / "conf"
QUIET_24GB = 23e9  # MemAvailable of this 24 GB machine when nothing else runs


def config(overrides):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with initialize_config_module(version_base="1.3", config_module="collapse_sim.experiments.conf"):
            return OmegaConf.to_object(compose("config", overrides=overrides))


# The commands of README.md (and every shipped experiment), as overrides.
DOCUMENTED = [
    *[f"regime={r}" for r in ("replace", "mix", "accumulate", "accumulate_subsample", "token_edit")],
    "world=regression regime=accumulate world.d=50 world.T=200 run.n_generations=30 run.n_seeds=256",
    "world=gaussian regime=accumulate",
    *[f"world=ngram regime={r}" for r in ("replace", "mix", "accumulate", "accumulate_subsample", "token_edit")],
    "world=ngram regime=accumulate run.seed_batch=64",
    "world=ngram regime=token_edit regime.schedule=full regime.prior=generation0 regime.edit_source=original world.order=5",
    *[f"world=transformer regime={r} run.n_seeds=2 run.n_generations=3" for r in ("replace", "accumulate", "token_edit")],
    *[f"experiment={p.stem}" for p in sorted((CONF / "experiment").glob("*.yaml"))],
    *[f"experiment={p.stem} world=ngram" for p in sorted((CONF / "experiment").glob("lm_*.yaml"))],
]


@pytest.mark.parametrize("overrides", DOCUMENTED)
def test_every_documented_run_passes_the_check_on_a_24gb_machine(overrides):
    need = memory.check(config(overrides.split()), memory=QUIET_24GB)
    assert memory.PROCESS_BYTES < need <= QUIET_24GB


@pytest.mark.parametrize(
    "overrides, knob",
    [
        ("run.n_seeds=100000000", r"run.n_seeds=\d+ \(now 100000000\)"),
        ("world=categorical world.V=1000000000", r"a smaller world.V \(now 1000000000\)"),
        ("world=gaussian world.d=100000 world.M=100001", r"a smaller world.d \(now 100000\)"),
        ("regime=accumulate_subsample run.n_generations=100000", r"fewer run.n_generations \(now 100000\)"),
        ("world=gaussian world.M=2000000000", r"a smaller world.M \(now 2000000000\)"),
        ("world=ngram regime=accumulate run.n_seeds=1024", r"run.n_seeds=\d+ \(now 1024\)"),
    ],
)
def test_a_run_that_cannot_fit_is_refused_naming_the_estimate_the_memory_and_the_knob(overrides, knob):
    with pytest.raises(ValueError, match=r"this run needs about [\d,.]+ GB of memory .* but 23.0 GB is available; "
                                         r"to shrink it set .*" + knob):
        memory.check(config(overrides.split()), memory=QUIET_24GB)


def test_regression_accumulate_carries_running_sums_not_the_pool():
    # the pool of 100,001 training sets of 40 rows for 256 seeds is ~98 GB; the running sums are d² + d + 2 numbers
    long = config("regime=accumulate run.n_generations=100000".split())
    pool = config("regime=accumulate_subsample run.n_generations=100000".split())
    assert memory.breakdown(long)["carry"] < 256 * 8 * 600  # w*, design, two models, G̃, X̃ᵀWy, n, count: 546 numbers
    assert memory.breakdown(pool)["carry"] > 256 * 8 * 100_001 * 40 * 12
    memory.check(long, memory=QUIET_24GB)


def test_the_seed_batch_is_suggested_when_the_carried_state_fits():
    # 256 ngram seeds at once: their carried state fits in 3 GB, the work of all of them does not
    with pytest.raises(ValueError, match=r"run.seed_batch=\d+ \(seeds run together; now 0\)"):
        memory.check(config("world=ngram regime=replace".split()), memory=3e9)


def test_the_estimate_grows_with_seeds_generations_and_size_and_batching_lowers_it():
    base = memory.estimate(config(["world=ngram", "regime=accumulate", "run.n_seeds=64"]))
    assert memory.estimate(config(["world=ngram", "regime=accumulate", "run.n_seeds=128"])) > 1.8 * base - memory.PROCESS_BYTES
    assert memory.estimate(config(["world=ngram", "regime=accumulate", "run.n_seeds=64", "run.n_generations=20"])) > base
    assert memory.estimate(config(["world=ngram", "regime=replace", "run.n_seeds=64"])) < base
    batched = memory.estimate(config(["world=ngram", "regime=replace", "run.seed_batch=16"]))
    assert batched < memory.estimate(config(["world=ngram", "regime=replace"]))


def test_check_reads_the_available_memory(monkeypatch):
    assert memory.available() > 0
    monkeypatch.setattr(memory, "available", lambda: 1)
    with pytest.raises(ValueError, match=r"but 0.0 MB is available"):
        memory.check(config([]))
