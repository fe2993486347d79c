"""figures/toedit_audit.py renders from tiny saved results, alone and through figures.render,
and ignores runs that are not token-edited regression."""

import numpy as np

from collapse_sim.figures import render
from collapse_sim.figures import toedit_audit as fig
from collapse_sim.simulator import results

G, S = 4, 8


def save_run(path, regime: dict, seed: int = 0):
    rng = np.random.default_rng(seed)
    g = np.arange(G + 1.0)
    records = {"test_error": rng.gamma(4.0, (1 + g) / 4.0, size=(S, G + 1)), "theory/prediction": 1 + g}
    if regime["name"] == "token_edit":
        records |= {
            "theory/prediction_se": np.full(G + 1, 0.01),
            "theory/paper_claim": 1 + 0.5 * g,
            "theory/paper_bound_2v": np.full(G + 1, 2.0),
        }
        if regime["schedule"] == "disjoint":
            records["theory/paper_bound_geometric"] = np.full(G + 1, 2.0)
    regime = {"edit_source": "previous", "q": 0.2, "k": 10, "eta": 0.5} | regime
    meta = {
        "config": {
            "world": {"name": "regression", "d": 4, "T": 12, "sigma": 1.0, "design": "fixed", "spectrum": "isotropic"},
            "regime": regime,
            "run": {"n_seeds": S, "n_generations": G},
        },
        "theory": {"units": {"v": 1.0}},
    }
    results.save(path, records, meta)
    return path


def test_one_panel_per_schedule_and_the_numbers(tmp_path):
    runs = [
        save_run(tmp_path / s, {"name": "token_edit", "schedule": s}, i)
        for i, s in enumerate(["full", "bernoulli", "disjoint", "fixed"])
    ]
    paths = fig.plot(runs, tmp_path / "out")
    assert [p.name for p in paths] == ["toedit_audit.pdf", "toedit_audit.png", "toedit_audit.md"]
    assert all(p.stat().st_size > 0 for p in paths)
    rows = paths[2].read_text().splitlines()[2:]
    assert [r.split(" |")[0] for r in rows] == [  # schedules in a fixed order
        "| bernoulli (q=0.2)",
        "| disjoint (k=10, η=0.5)",
        "| fixed (k=10)",
        "| full (every row: replace)",
    ]


def test_render_draws_the_audit_for_token_edit_runs_only(tmp_path):
    save_run(tmp_path / "a", {"name": "replace"})
    assert fig.plot([tmp_path / "a"], tmp_path / "x") == []
    names = {p.name for p in render.render_path(tmp_path)}
    assert "regression.png" in names and "toedit_audit.png" not in names
    save_run(tmp_path / "b", {"name": "token_edit", "schedule": "disjoint"})
    names = {p.name for p in render.render_path(tmp_path)}
    assert {"regression.png", "toedit_audit.png"} <= names
