"""Every LM experiment config runs on the n-gram world at a tiny size, and its figure renders from
the saved results; the text world's extra records (train_tokens, train_loss) are what they claim."""

import itertools

import jax
import numpy as np
import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from collapse_sim.experiments.config import register
from collapse_sim.simulator.driver import run_saved as run_experiment
from collapse_sim.simulator import diagnostics as D
from collapse_sim.simulator import results

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
# The jobs the tests run: one job of each sweep (two of lm_collapse's, so a figure draws several
# runs), the one that exercises most of its figure; compilation, not simulation, is what a tiny
# job costs, so every job saved counts.
EXPERIMENTS = ("lm_collapse", "lm_ppl_histograms", "synthetic_proportion", "ngram_diagnostics", "toedit_iterative")
JOBS = {
    "lm_collapse": {"+variant": ["replace", "token_edit_base"]},
    "lm_ppl_histograms": {"+variant": ["mix10"]},
    "synthetic_proportion": {"regime.real_fraction": ["1.0"]},
    "ngram_diagnostics": {"+variant": ["token_edit_base"]},
    "toedit_iterative": {"+variant": ["token_edit_base_p90"]},
}
# The n-gram world has no pretrained base model: a variant that edits with the base model as the
# prior runs here as one with the generation-0 model (or model n-1) as the prior, at p = 0.5, where
# an order-2 model selects and changes tokens.
NGRAM_VARIANT = {"token_edit_base": "token_edit", "token_edit_base_p90": "token_edit_self"}


def compose_config(overrides, hydra=False):
    with initialize_config_module(version_base="1.3", config_module="collapse_sim.experiments.conf"):
        return compose("config", overrides=overrides, return_hydra_config=hydra)


def sweep(experiment: str) -> dict:
    """The experiment's sweep, {override key: [values]}, as its YAML declares it."""
    c = compose_config([f"experiment={experiment}"], hydra=True)
    return {k: str(v).split(",") for k, v in c.hydra.sweeper.params.items()}


def run_sweep(experiment, params, out, extra=()):
    dirs = []
    keys = list(params)
    for values in itertools.product(*(params[k] for k in keys)):
        job = [f"{k}={NGRAM_VARIANT.get(v, v) if k == '+variant' else v}" for k, v in zip(keys, values)]
        cfg = OmegaConf.to_object(compose_config([f"experiment={experiment}", *TINY, *extra, *job]))
        dirs.append(run_experiment(cfg, out / ",".join(job).replace("/", "_")))
    return dirs


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """experiment -> run folders of its tiny jobs."""
    out = tmp_path_factory.mktemp("lm_runs")
    done = {}
    for name in EXPERIMENTS:
        params = JOBS[name]
        assert params.keys() == sweep(name).keys() and all(set(v) <= set(sweep(name)[k]) for k, v in params.items())
        extra = ["world.record_blocks=24"] if compose_config([f"experiment={name}"]).world.record_blocks else []
        done[name] = run_sweep(name, params, out / name, extra)
    return done


def test_every_lm_experiment_declares_its_command_runtime_and_figure():
    from pathlib import Path

    conf = Path(__file__).resolve().parents[1] / "experiments" / "conf" / "experiment"
    for name in EXPERIMENTS:
        head = (conf / f"{name}.yaml").read_text().splitlines()[:4]
        assert head[1].startswith(f"# Command: collapse-sim experiment={name}"), name
        assert head[2].startswith("# Runtime:") and "RUNTIME" not in head[2], name
        assert head[3].startswith(f"# Figure:  figures/{name}.py"), name
        assert compose_config([f"experiment={name}"]).run.experiment == name
    assert set(sweep("lm_collapse")["+variant"]) == {"replace", "mix10", "accumulate", "token_edit_base"}
    for name in EXPERIMENTS:  # the paper's protocol: the pretrained base model, fine-tuned, 5 seeds or more
        cfg = compose_config([f"experiment={name}"])
        assert cfg.world.init == "pretrained" and cfg.run.n_seeds >= 5, name
    assert sweep("synthetic_proportion")["regime.real_fraction"] == ["0.0", "0.25", "0.5", "0.75", "1.0"]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_runs_on_the_ngram_world_and_its_figure_renders(name, runs, tmp_path):
    import importlib

    from collapse_sim.figures.render import render_runs

    dirs = runs[name]
    rec, meta = results.load(dirs[0])
    assert meta["config"]["run"]["experiment"] == name and meta["config"]["world"]["name"] == "ngram"
    assert rec["test_ppl"].shape == (2, 1 + meta["config"]["run"]["n_generations"])
    outs = render_runs(dirs, tmp_path)
    names = {p.name for p in outs}
    assert names == {f"{name}.png", f"{name}.pdf", f"{name}.md"}, names  # only its own figure
    assert importlib.import_module(f"collapse_sim.figures.{name}").plot([], tmp_path / "none") == []


def test_records_train_tokens_and_train_loss(runs):
    """train_tokens are the newest rows of each generation's training set (generation 0: the
    real blocks), train_loss the fitted model's NLL on its own training set."""
    from collapse_sim.simulator.lm import ngram
    from collapse_sim.simulator.worlds.ngram import Config, model_config
    from collapse_sim.simulator.worlds.text import load_text

    rec, meta = results.load(runs["ngram_diagnostics"][0])  # token editing
    assert "train_loss" not in rec and rec["train_tokens"].shape == (2, 3, 24, 24)
    real = load_text(None, 24, 48, 8).reservoir[:24]
    np.testing.assert_array_equal(rec["train_tokens"][:, 0], np.broadcast_to(real, (2, 24, 24)))
    changed = np.mean(rec["train_tokens"][:, 1, :, 1:] != real[:, 1:])
    assert changed == pytest.approx(rec["changed_share"][:, 1].mean(), rel=1e-6) and changed > 0

    rec, meta = results.load(runs["synthetic_proportion"][0])  # real_fraction = 1
    assert meta["config"]["regime"]["real_fraction"] == 1.0 and "train_tokens" not in rec
    world = Config(**meta["config"]["world"])
    mc = model_config(world)
    params = jax.jit(ngram.fit, static_argnums=0)(mc, real)
    score = jax.jit(lambda p, t: ngram.token_logprobs(mc, p, t)[:, 1:])
    nll = -np.mean(np.asarray(score(params, real)))
    # generation 0 fits the real set; at real_fraction = 1 generation 1 refits the same rows
    np.testing.assert_allclose(rec["train_loss"][:, 0], nll, rtol=1e-5)
    np.testing.assert_allclose(rec["train_loss"][:, 1], nll, rtol=1e-5)
    np.testing.assert_allclose(rec["test_ppl"][:, 1], rec["test_ppl"][:, 0], rtol=1e-6)
    # the world's own inspect record is diagnostics.perplexity_under of its newest rows
    seq = D.perplexity_under(score, params, real[-6:][::-1])
    np.testing.assert_allclose(rec["train_seq_ppl_gen0"][0, 0], seq, rtol=1e-5)


@pytest.mark.parametrize(
    "override, match",
    [
        ("world.record_blocks=-1", r"world.record_blocks=-1 is not allowed; need a whole number >= 0"),
        ("world.record_blocks=25", r"world.record_blocks=25 exceeds the 24 rows of a training set"),
    ],
)
def test_bad_record_settings_fail_at_start_naming_the_value(override, match):
    with pytest.raises(ValueError, match=match):
        cfg = OmegaConf.to_object(compose_config([*TINY, override]))
        run_experiment(cfg, "/nonexistent/never-written")


def test_newest_rows_are_the_last_present_rows_newest_first():
    import jax.numpy as jnp

    from collapse_sim.simulator.worlds.text import newest_rows

    w = jnp.array([1.0, 1.0, 0.0, 1.0, 0.0, 2.0])
    assert newest_rows(w, 2).tolist() == [5, 3]
    assert newest_rows(w, 4).tolist() == [5, 3, 1, 0]
