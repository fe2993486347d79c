"""The theory ledger (theory/ledger.py): its registry covers every formula of theory/, its tables have
the columns, its z-scores and flags follow the rules, a wrong theory value is flagged, and one world runs
end to end (the KDE world, 200 seeds, one compiled call).  The full ledger is not run here."""

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest

from collapse_sim.theory import ledger, ledger_discrete
from collapse_sim.theory import ledger_core as lc


@pytest.fixture(scope="module")
def kde_run():
    """(results, seconds, records) of the KDE world at 200 seeds, through the ledger's own path."""
    records = {}
    results, seconds = ledger.run(seed=0, worlds=["kde"], max_seeds=200, records_out=records)
    return results, seconds, records["kde"]


@pytest.fixture
def kde_results(kde_run):
    return kde_run[:2]


def test_every_public_theory_function_is_a_row_or_named_as_not_a_formula():
    """A new public function in theory/ fails here until a ledger row checks it or NOT_FORMULAS says why it is
    not a formula."""
    public, covered, named = ledger.theory_functions(), ledger.covered_functions(), set(ledger.NOT_FORMULAS)
    assert not public - covered - named, f"not in the ledger: {sorted(public - covered - named)}"
    assert not (covered | named) - public, f"named but not in theory/: {sorted((covered | named) - public)}"
    assert not covered & named, f"both a row and not a formula: {sorted(covered & named)}"
    assert len(public) > 100  # the scan found the modules (it reads theory/*.py)


def test_the_registry_is_consistent():
    ids = [f.id for w in ledger.ledgers() for f in w.formulas]
    assert len(ids) == len(set(ids)), "duplicate row ids"
    assert [w.name for w in ledger.ledgers()] == ["regression", "gaussian", "kde", "categorical"]
    for w in ledger.ledgers():
        assert {f.run for f in w.formulas if f.run} == set(w.runs), f"{w.name}: a run no row reads, or a missing run"
        for f in w.formulas:
            assert f.status in lc.STATUSES and f.source and f.formula, f.id
            assert ("arXiv" in f.source) or ("theory/" in f.source), f"{f.id}: no paper and no derivation file"
            assert f.run is not None or f.note, f"{f.id}: a row without a run says why"
    statuses = {f.status for w in ledger.ledgers() for f in w.formulas}
    assert statuses == set(lc.STATUSES)


def C(theory, mc, mc_se, theory_se=0.0):
    return lc.Check(theory, theory_se, mc, mc_se, 100)


@pytest.mark.parametrize(
    "check, status, z, flag",
    [
        (C(1.0, 1.1, 0.02), "exact", 5.0, "z>4"),
        (C(1.0, 1.06, 0.02), "exact", 3.0, ""),
        (C(1.0, 0.9, 0.02), "limit", -5.0, "z>4"),
        (C(1.0, 1.1, 0.0, theory_se=0.02), "exact one step", 5.0, "z>4"),
        (C(1.0, 1.1, 0.02), "paper claim", 5.0, "approx"),
        (C(1.0, 0.9, 0.02), "approx", -5.0, "approx"),
        (C(1.0, 1.1, 0.02), "bound", 5.0, "above bound"),
        (C(1.0, 1.04, 0.02), "bound", 2.0, ""),
        (C(1.0, 0.5, 0.02), "bound", -25.0, "MC<=bound"),
        (C(1.0, 1.1, 0.02), "paper bound", 5.0, "approx"),
        (C(0.25, 0.25, 0.0), "exact", 0.0, ""),
        (C(0.25, 0.5, 0.0), "exact", math.inf, "z>4"),
    ],
)
def test_z_and_flags(check, status, z, flag):
    got = lc.z_score(check)
    assert got == pytest.approx(z)
    assert lc.flag(got, status) == flag
    assert lc.flag(None, status) == ""


def test_z_combines_both_standard_errors():
    assert lc.z_score(C(1.0, 1.05, 0.03, theory_se=0.04)) == pytest.approx(1.0)


def test_one_world_end_to_end(kde_results):
    results, seconds = kde_results
    assert [r.formula.id for r in results] == [f.id for f in ledger_discrete.KDE.formulas]
    assert set(seconds["kde"]) == {"compile", "run", "theory"}
    for r in results:
        assert r.check.n_seeds == 200 and r.check.mc_se > 0 and math.isfinite(r.z)
        assert not r.flagged, f"{r.formula.id}: z = {r.z}"


def test_a_wrong_theory_value_is_flagged(kde_run):
    """The same records scored against a variance limit off by a factor 1.5: flagged z>4."""
    results, _, records = kde_run
    right = ledger_discrete.KDE.formulas[1]
    wrong = dataclasses.replace(right, check=lc.at_g("var", 60, lambda t: 1.5 * 4.5))
    world = dataclasses.replace(ledger_discrete.KDE, formulas=(right, wrong))
    ok, bad = lc.evaluate(world, records)
    assert not ok.flagged and bad.flagged and bad.flag == "z>4" and bad.z < -4
    assert ok.check == results[1].check


def test_tables_have_the_columns(kde_results):
    results, _ = kde_results
    md = ledger.markdown_table(results).splitlines()
    header = [c.strip() for c in md[0].strip("|").split("|")]
    assert header == list(ledger.COLUMNS)
    assert len(md) == 2 + len(results)
    for line in md[2:]:
        cells = [c for c in line.replace("\\|", "").strip("|").split("|")]
        assert len(cells) == len(ledger.COLUMNS), line
    text = ledger.text_table(results).splitlines()
    assert text[0].split()[:3] == ["id", "world", "formula"] and len(text) == 2 + len(results)
    assert ledger.summary(results).startswith(f"{len(results)} formulas, 0 flagged")


def test_theory_only_rows_print_why(monkeypatch, capsys, kde_results):
    """A row without an engine counterpart prints its reason; a flagged row is listed; exit status 0."""
    results, seconds = kde_results
    only = lc.Formula("x.theory_only", "f = 1", "exact", "theory/curation.md §3", ("weighting.pooling_weight",),
                      note="an identity")
    bad = dataclasses.replace(results[0], z=9.0, flag="z>4")
    monkeypatch.setattr(ledger, "run", lambda *a, **k: ([*results, bad, lc.Result("kde", only, "", None, None, "")],
                                                        seconds))
    assert ledger.main(["--markdown", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "no MC: an identity" in out
    assert f"{len(results) + 2} formulas, 1 flagged" in out and f"flagged: {results[0].formula.id}" in out
    assert "wall time" in out and "seed 3" in out


def test_run_keys_depend_on_the_seed_and_the_run_id_only():
    import jax

    key = lambda seed, rid: np.asarray(jax.random.key_data(lc.run_key(jax.random.key(seed), rid)))
    np.testing.assert_array_equal(key(0, "replace"), key(0, "replace"))
    assert not np.array_equal(key(0, "replace"), key(1, "replace"))
    assert not np.array_equal(key(0, "replace"), key(0, "accumulate"))


def test_bad_options_fail_naming_the_value():
    with pytest.raises(SystemExit) as e:
        ledger.main(["--world", "gmm"])
    assert e.value.code == 2
    with pytest.raises(SystemExit):
        ledger.main(["--seed", "-1"])


def test_the_cli_dispatches_to_the_ledger():
    """``collapse-sim ledger`` reaches theory/ledger.py before hydra (an unknown world stops it, exit 2)."""
    code = ("import sys; from collapse_sim.experiments.main import cli; "
            "sys.argv = ['collapse-sim', *sys.argv[1:]]; cli()")
    p = subprocess.run([sys.executable, "-c", code, "ledger", "--world", "gmm"], capture_output=True, text=True,
                       timeout=120, check=False, env={"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"})
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "--world gmm is not known; allowed: regression, gaussian, kde, categorical" in p.stderr
    h = subprocess.run([sys.executable, "-m", "collapse_sim.theory.ledger", "--help"], capture_output=True, text=True,
                       timeout=60, check=False)
    assert h.returncode == 0 and "--markdown" in h.stdout
