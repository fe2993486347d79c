"""Every LM experiment config runs on the n-gram world at a tiny size, and its figure renders from
the saved results; the extra records (experiments/lm_records.py) are what the engine computes."""

import itertools

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from experiments.config import register
from experiments.run import run_experiment
from simulator import diagnostics as D
from simulator import results

register()

# A tiny n-gram world (order 2: the dense tables compile fastest) and a short run.
TINY = [
    "world=ngram",
    "world.order=2",
    "world.block_len=24",
    "world.train_blocks=24",
    "world.test_blocks=8",
    "world.reservoir_blocks=48",
    "world.inspect_blocks=6",
    "run.n_seeds=2",
    "run.n_generations=2",
    "run.chunk_generations=0",
    "run.progress=false",
    "run.figure=false",
]
# The jobs each test runs: the sweep's first and last values (all of them for short sweeps), so
# every experiment's config and figure are exercised in well under a minute.
EXPERIMENTS = {
    "lm_collapse": ("lm_collapse", None),
    "lm_ppl_histograms": ("lm_ppl_histograms", None),
    "synthetic_proportion": ("synthetic_proportion", {"regime.real_fraction": ["0.0", "1.0"]}),
    "ngram_diagnostics": ("ngram_diagnostics", None),
    "toedit_iterative": ("toedit_iterative", {"+variant": ["replace", "token_edit"]}),
}


def compose_config(overrides, hydra=False):
    with initialize_config_module(version_base="1.3", config_module="experiments.conf"):
        return compose("config", overrides=overrides, return_hydra_config=hydra)


def sweep(experiment: str) -> dict:
    """The experiment's sweep, {override key: [values]}, as its YAML declares it."""
    c = compose_config([f"experiment={experiment}"], hydra=True)
    return {k: str(v).split(",") for k, v in c.hydra.sweeper.params.items()}


def run_sweep(experiment, params, out, extra=()):
    dirs = []
    keys = list(params)
    for values in itertools.product(*(params[k] for k in keys)):
        job = [f"{k}={v}" for k, v in zip(keys, values)]
        cfg = OmegaConf.to_object(compose_config([f"experiment={experiment}", *TINY, *extra, *job]))
        dirs.append(run_experiment(cfg, out / ",".join(job).replace("/", "_")))
    return dirs


def test_every_lm_experiment_declares_its_command_runtime_and_figure():
    from pathlib import Path

    conf = Path(__file__).resolve().parents[1] / "experiments" / "conf" / "experiment"
    for name in EXPERIMENTS:
        head = (conf / f"{name}.yaml").read_text().splitlines()[:4]
        assert head[1].startswith(f"# Command: collapse-sim experiment={name}"), name
        assert head[2].startswith("# Runtime:") and "RUNTIME" not in head[2], name
        assert head[3].startswith(f"# Figure:  figures/{name}.py"), name
        assert compose_config([f"experiment={name}"]).run.experiment == name
    assert set(sweep("lm_collapse")["+variant"]) == {"replace", "mix10", "accumulate", "token_edit"}
    assert sweep("synthetic_proportion")["regime.real_fraction"] == ["0.0", "0.25", "0.5", "0.75", "1.0"]


@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_runs_on_the_ngram_world_and_its_figure_renders(name, tmp_path):
    import importlib

    from figures.render import render_runs

    experiment, subset = EXPERIMENTS[name]
    params = sweep(experiment) | (subset or {})
    extra = ["run.record_blocks=12"] if compose_config([f"experiment={experiment}"]).run.record_blocks else []
    dirs = run_sweep(experiment, params, tmp_path / "runs", extra)
    rec, meta = results.load(dirs[0])
    assert meta["config"]["run"]["experiment"] == experiment
    assert rec["test_ppl"].shape == (2, 1 + meta["config"]["run"]["n_generations"])
    outs = render_runs(dirs, tmp_path / "fig")
    names = {p.name for p in outs}
    assert {f"{name}.png", f"{name}.pdf", f"{name}.md"} <= names, names
    # each figure draws only its own experiment's runs
    assert all(p.stem == name for p in outs), names
    assert importlib.import_module(f"figures.{name}").plot([], tmp_path / "none") == []


def test_records_train_tokens_and_train_loss(tmp_path):
    """train_tokens are the newest rows of each generation's training set (generation 0: the real
    blocks), train_loss the fitted model's NLL on its training set; both leave the other records
    unchanged."""
    from simulator.lm import ngram
    from simulator.worlds.ngram import model_config
    from simulator.worlds.text import load_text

    base = ["+variant=replace", *TINY]
    plain = run_experiment(OmegaConf.to_object(compose_config(["experiment=ngram_diagnostics", *base, "run.record_blocks=0"])), tmp_path / "a")
    cfg = OmegaConf.to_object(compose_config(["experiment=synthetic_proportion", *TINY, "regime.real_fraction=1.0", "run.record_blocks=24"]))
    rich = run_experiment(cfg, tmp_path / "b")
    rp, _ = results.load(plain)
    rr, _ = results.load(rich)
    assert "train_tokens" not in rp and "train_loss" not in rp
    np.testing.assert_array_equal(rr["train_tokens"][:, 0], np.broadcast_to(load_text(None, 24, 48, 8).reservoir[:24], (2, 24, 24)))
    # real_fraction = 1: generation 1 trains on the same real rows (a count model: the same fit)
    np.testing.assert_array_equal(np.sort(rr["train_tokens"][:, 1], axis=1), np.sort(rr["train_tokens"][:, 0], axis=1))
    mc = model_config(cfg.world)
    tok = rr["train_tokens"][0, 0]
    nll = -np.mean(np.asarray(ngram.token_logprobs(mc, ngram.fit(mc, tok), tok))[:, 1:])
    assert rr["train_loss"][0, 0] == pytest.approx(nll, rel=1e-5)
    # the recorded rows are the ones the world's own inspect scores (its newest inspect_blocks rows)
    seq = D.perplexity_under(lambda p, t: ngram.token_logprobs(mc, p, t)[:, 1:], ngram.fit(mc, tok), tok[-6:])
    np.testing.assert_allclose(rr["train_seq_ppl_gen0"][0, 0], seq, rtol=1e-5)


def test_records_need_a_text_world():
    cfg = OmegaConf.to_object(compose_config(["world=regression", "run.record_blocks=4", "run.n_seeds=2", "run.n_generations=1"]))
    with pytest.raises(ValueError, match="not a text world"):
        run_experiment(cfg, "/nonexistent/never-written")
