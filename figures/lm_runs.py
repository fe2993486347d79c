"""Shared by the language-model figures: which runs a figure draws, and how it names them.

A run made by an LM experiment config carries the experiment's name in ``run.experiment``
(experiments/conf/experiment/lm_*.yaml, ngram_diagnostics.yaml, ...); a figure draws the runs of
its own experiment and returns [] when there are none.
"""

from __future__ import annotations

from pathlib import Path

from collapse_sim.simulator import results

TEXT_WORLDS = ("ngram", "transformer")
ORDER = ("replace", "mix", "accumulate", "accumulate_subsample", "token_edit")


def experiment_of(meta: dict) -> str:
    return meta["config"]["run"].get("experiment", "") or ""


def made_by(meta: dict, experiments) -> bool:
    """A text-world run made by one of ``experiments`` ("" = by no experiment config)."""
    return meta["config"]["world"]["name"] in TEXT_WORLDS and experiment_of(meta) in experiments


def select(run_dirs, experiments) -> list:
    """(records, meta) of the text-world runs in ``run_dirs`` made by one of ``experiments``
    ("" = a run made by no experiment config), in a fixed order of variants."""
    out = []
    for d in run_dirs:
        rec, meta = results.load(d)
        if made_by(meta, experiments):
            out.append((rec, meta))
    out.sort(key=lambda r: sort_key(r[1]))
    return out


def sort_key(meta: dict):
    r = meta["config"]["regime"]
    name = r["name"]
    return (ORDER.index(name) if name in ORDER else len(ORDER), r.get("prior", ""), -meta["config"]["world"].get("edit_threshold", 0), label(meta))


def label(meta: dict) -> str:
    """A variant's legend label from its regime (and the world's edit threshold)."""
    r, w = meta["config"]["regime"], meta["config"]["world"]
    name = r["name"]
    if name == "mix":
        redrawn = ", redrawn" if r["real_source"] == "original" and r["resample_real"] else ""
        return f"mix ({r['real_fraction']:.0%} {r['real_source']} real{redrawn})"
    if name == "token_edit":
        prior = {"generation0": "generation-0 prior", "base": "pretrained base as prior"}.get(r.get("prior"), "prior = model n−1")
        sched = "" if r["schedule"] == "full" else f", {r['schedule']} rows"
        return f"token edit (p ≥ {w['edit_threshold']:g}, {prior}{sched})"
    return name


def world_label(meta: dict) -> str:
    w = meta["config"]["world"]
    corpus = "Shakespeare" if not w.get("corpus") else Path(w["corpus"]).name
    if w["name"] == "ngram":
        model = f"byte {w['order']}-gram ({w['smoothing'].replace('_', '-')})"
    else:
        if w["init"] == "pretrained":
            train = f"pretrained base fine-tuned {w['finetune_steps']} steps a generation"
        else:
            train = f"{w['steps']} steps a generation, {w['init']}"
        model = f"byte transformer ({w['n_layers']}×{w['d_model']}, {train})"
    return f"{model}, {w['train_blocks']}×{w['block_len']} B of {corpus}"


def suptitle(fig, text: str) -> None:
    """The world and seed count, above every panel (constrained layout leaves no gap under it)."""
    fig.suptitle(text, fontsize=8)
