"""Bad input stops at start, before anything is compiled, with a message naming the key
and what is allowed: run settings, unknown keys added with ``+key=``, and the fields of
every world config (NaN and infinity included)."""

import dataclasses
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from collapse_sim.experiments.config import RunConfig, register
from collapse_sim.experiments.main import unknown_key
from collapse_sim.simulator.worlds import WORLDS, gaussian, gmm, kde, regression, world_module
from collapse_sim.simulator.worlds import ngram, transformer

register()


def composed(overrides):
    with initialize_config_module(version_base="1.3", config_module="collapse_sim.experiments.conf"):
        return compose("config", overrides=overrides)


# ----------------------------------------------------------------------------- run settings

@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999999999999])
def test_a_seed_outside_uint32_is_refused_naming_the_range(seed):
    with pytest.raises(ValueError, match=rf"run.seed={seed} is out of range; allowed: a whole number in \[0, 4294967295\]"):
        RunConfig(seed=seed)


def test_the_largest_seed_is_accepted_through_the_config():
    cfg = OmegaConf.to_object(composed([f"run.seed={2**32 - 1}"]))
    assert cfg.run.seed == 2**32 - 1


def test_a_huge_seed_on_the_command_line_fails_in_the_config_conversion():
    with pytest.raises(ValueError, match=r"run.seed=99999999999999999999 is out of range"):
        OmegaConf.to_object(composed(["run.seed=99999999999999999999"]))


# ----------------------------------------------------------------------------- unknown keys

@pytest.mark.parametrize(
    "overrides, message",
    [
        (["+run.bogus=1"], "unknown key 'run.bogus'; the known run.* keys are: n_generations, n_seeds, seed"),
        (["+world.x=1"], "unknown key 'world.x'; the known world.* keys are: name, d, T, sigma"),
        (["world=ngram", "+world.x=1"], "unknown key 'world.x'; the known world.* keys are: name, corpus"),
        (["+regime.x=1"], "unknown key 'regime.x'; the known regime.* keys are: name"),
        (["+bogus=1"], "unknown key 'bogus'; the known top-level keys are: world, regime, run"),
    ],
)
def test_a_key_added_with_plus_that_the_schema_lacks_is_named(overrides, message):
    assert message in unknown_key(composed(overrides))


@pytest.mark.parametrize("world", ["regression", "ngram", "transformer_small", "gmm"])
def test_the_shipped_configs_have_no_unknown_key(world):
    assert unknown_key(composed([f"world={world}", "regime=token_edit"])) is None


def test_the_cli_prints_an_error_and_exits_2_without_a_traceback(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "collapse_sim", "+run.bogus=1", f"hydra.sweep.dir={tmp_path}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin", "COLLAPSE_SIM_CACHE_DIR": os.environ["COLLAPSE_SIM_CACHE_DIR"]},
    )
    assert p.returncode == 2, p.stderr[-2000:]
    assert "collapse-sim: error: unknown key 'run.bogus'; the known run.* keys are:" in p.stderr
    assert "Traceback" not in p.stderr


# ----------------------------------------------------------------------------- world fields

def float_fields():
    for name in WORLDS:
        cls = world_module(name).Config
        for f in dataclasses.fields(cls):
            if f.type in ("float", float):
                yield name, f.name


# Where infinity means something, it is allowed (and said so in the field's check).
INF_MEANS_SOMETHING = {("transformer", "clip")}  # no clipping


@pytest.mark.parametrize("world, field", list(float_fields()))
def test_every_float_field_refuses_nan_and_infinity(world, field):
    cls = world_module(world).Config
    with pytest.raises(ValueError, match=rf"world\.{field}\b.*nan"):
        cls(**{field: math.nan})
    if (world, field) in INF_MEANS_SOMETHING:
        cls(**{field: math.inf})
    else:
        with pytest.raises(ValueError, match=rf"world\.{field}\b.*inf"):
            cls(**{field: math.inf})


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: regression.Config(spectrum="power_law", power=-3.0), r"world.power=-3.0 must be a finite number >= 0"),
        (lambda: regression.Config(spectrum="power_law", power=1000.0),
         r"world.power=1000.0 with world.d=10: .* allowed: 0 <= world.power <= log\(1e\+08\) / log\(d\) = 8 at d=10"),
        (lambda: regression.Config(spectrum="power_law", power=8.01), r"world.power=8.01 with world.d=10"),
        (lambda: gaussian.Config(d=10, spectrum="power_law", power=9.0), r"world.power=9.0 with world.d=10"),
        (lambda: ngram.Config(temperature=math.inf), r"world.temperature=inf is not allowed; need a finite number in \[0.001, 1000\]"),
        (lambda: ngram.Config(edit_temperature=math.inf), r"world.edit_temperature=inf is not allowed"),
        (lambda: ngram.Config(reservoir_blocks=-1), r"world.reservoir_blocks=-1 is not allowed; need a whole number of blocks >= the 512 rows"),
        (lambda: ngram.Config(synthetic_ratio=2.0, reservoir_blocks=1000), r"world.reservoir_blocks=1000 .* >= the 1024 rows"),
        (lambda: gmm.Config(K=50, M=10), r"world.K=50 components with world.M=10 samples: .* allowed: K <= 10"),
        (lambda: gmm.Config(K=4, M_schedule=[50, 3]), r"world.K=4 components with the smallest entry of world.M_schedule=3"),
        (lambda: transformer.Config(lr=math.inf), r"world.lr=inf must be a finite number > 0"),
        (lambda: transformer.Config(weight_decay=math.nan), r"world.weight_decay=nan must be a finite number >= 0"),
    ],
)
def test_a_bad_world_field_is_refused_when_the_config_is_made(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_the_largest_allowed_power_and_k_equal_to_m_are_accepted():
    regression.Config(spectrum="power_law", power=8.0)
    gmm.Config(K=10, M=10)
    transformer.Config(clip=math.inf)


# ----------------------------------------------------------------------------- the run's precision

@pytest.mark.parametrize(
    "check, dtype, message",
    [
        (lambda t: regression.check_precision(regression.Config(sigma=1e200), t), np.float64,
         r"world.sigma=1e\+200 is too large for run.precision=float64: .* allowed: \|world.sigma\| <= 1.84e\+13 in float32, 1.34e\+148 in float64"),
        (lambda t: regression.check_precision(regression.Config(sigma=1e30), t), np.float32,
         r"world.sigma=1e\+30 is too large for run.precision=float32"),
        (lambda t: regression.check_precision(regression.Config(sigma=1e10, spectrum="power_law", power=8.0), t),
         np.float32, r"world.sigma=10000000000.0 is too large for run.precision=float32: the world computes errors of size sigma² · d\^power"),
        (lambda t: regression.check_precision(regression.Config(sigma=1e-30), t), np.float32,
         r"world.sigma=1e-30 is too small for run.precision=float32"),
        (lambda t: regression.check_precision(regression.Config(d=400, T=402), t), np.float32,
         r"world.T=402 with world.d=400 in float32: the Gram matrix of T rows has a condition number of about 6.43e\+05, "
         r"beyond the 8.39e\+04 that run.precision=float32 solves to 1%"),
        (lambda t: gaussian.check_precision(gaussian.Config(sigma=1e20), t), np.float32, r"world.sigma=1e\+20 is too large"),
        (lambda t: gaussian.check_precision(gaussian.Config(d=10, spectrum="power_law", power=6.0), t), np.float32,
         r"world.power=6.0 with world.d=10 in float32: .* allowed: world.power <= 4.92\d* in float32"),
        (lambda t: gmm.check_precision(gmm.Config(spread=1e-30), t), np.float32, r"world.spread=1e-30 is too small"),
        (lambda t: gmm.check_precision(gmm.Config(separation=1e160), t), np.float64, r"world.separation=1e\+160 is too large"),
        (lambda t: kde.check_precision(kde.Config(h=1e25), t), np.float32, r"world.h=1e\+25 is too large"),
    ],
)
@pytest.mark.filterwarnings("ignore:world.T=")  # T <= d+3 warns about the variance first
def test_a_field_the_precision_cannot_hold_is_refused(check, dtype, message):
    with pytest.raises(ValueError, match=message):
        check(dtype)


def test_make_world_checks_the_precision_before_compiling():
    with pytest.raises(ValueError, match=r"world.sigma=1e\+200 is too large for run.precision=float64"):
        regression.make_world(regression.Config(sigma=1e200))  # the tests run in float64


@pytest.mark.parametrize(
    "check",
    [
        lambda t: regression.check_precision(regression.Config(), t),
        lambda t: regression.check_precision(regression.Config(spectrum="power_law", power=8.0, sigma=100.0), t),
        lambda t: gaussian.check_precision(gaussian.Config(d=10, spectrum="power_law", power=4.0), t),
        lambda t: gmm.check_precision(gmm.Config(), t),
        lambda t: kde.check_precision(kde.Config(), t),
    ],
)
def test_ordinary_settings_pass_in_both_precisions(check):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check(np.float32)
        check(np.float64)


# ----------------------------------------------------------------------------- corpus files

def test_a_fifo_corpus_is_refused_without_blocking(tmp_path):
    from collapse_sim.simulator.text.corpus import CorpusError, load_corpus

    fifo = tmp_path / "corpus.txt"
    os.mkfifo(fifo)  # no writer: a plain open() would wait forever
    with pytest.raises(CorpusError, match=r"corpus path .*corpus.txt' is a FIFO; a corpus must be regular files"):
        load_corpus(fifo)


def test_a_device_corpus_is_refused():
    from collapse_sim.simulator.text.corpus import CorpusError, load_corpus

    with pytest.raises(CorpusError, match=r"corpus path '/dev/zero' is a character device"):
        load_corpus("/dev/zero")


def test_a_corpus_over_the_size_limit_is_refused_before_it_is_read(tmp_path):
    from collapse_sim.simulator.text.corpus import CorpusError, load_corpus

    big = tmp_path / "big.txt"
    with open(big, "wb") as f:
        f.truncate(513 * 2**20)  # sparse: takes no disk and is never read
    with pytest.raises(CorpusError, match=r"is larger than the 512 MB a corpus may hold \(513 MB or more"):
        load_corpus(big)


def test_a_folder_or_gzip_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    import gzip

    from collapse_sim.simulator.text import corpus

    monkeypatch.setattr(corpus, "MAX_CORPUS_BYTES", 1000)
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in "ab":
        (folder / f"{name}.txt").write_text("x" * 600)  # each below the limit, together above
    with pytest.raises(corpus.CorpusError, match=r"docs' is larger than the 1,000 bytes a corpus may hold \(1,200 bytes or more"):
        corpus.load_corpus(folder)
    bomb = tmp_path / "bomb.jsonl.gz"
    bomb.write_bytes(gzip.compress(b'{"title": "t", "text": "' + b"x" * 5000 + b'"}\n'))
    with pytest.raises(corpus.CorpusError, match=r"bomb.jsonl.gz' is larger than"):
        corpus.load_corpus(bomb)
    ok = tmp_path / "ok.txt"
    ok.write_text("small text\n")
    assert corpus.load_corpus(ok)[0].text == "small text\n"
