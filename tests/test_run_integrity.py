"""A run's folder cannot be corrupted: one checkpoint file whose parts must agree, one run per
folder, completion verified by checksum, damaged files set aside, failed writes that keep
every earlier chunk, folder checks before compiling, and interrupts that say what is on disk."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from collapse_sim.experiments.config import Config, RunConfig
from collapse_sim.simulator import checkpoint, driver, results
from collapse_sim.simulator.driver import run_key, run_saved
from collapse_sim.simulator.lock import NAME as LOCK, FolderLocked, RunLock
from collapse_sim.simulator.regimes import config as regime_config
from collapse_sim.simulator.worlds.regression import RegressionConfig

ROOT = Path(__file__).resolve().parents[1]


def small(**run):
    base = dict(n_generations=6, n_seeds=12, chunk_generations=2, theory_designs=20, progress=False, figure=False)
    return Config(world=RegressionConfig(d=3, T=12), regime=regime_config("replace"), run=RunConfig(**(base | run)))


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A finished run ("clean") and the same run stopped after its second chunk ("partial":
    checkpoint.npz at generation 4, checkpoint.prev.npz at generation 2)."""
    root = tmp_path_factory.mktemp("runs")
    driver.compute._PROGRAMS.clear()  # "clean" compiles (or loads) its program, whatever ran before
    run_saved(small(), root / "clean")
    real, calls = driver.Progress.update, []

    def stop_after_second_chunk(self, done, n, dt):
        calls.append(done)
        if len(calls) == 2:
            raise KeyboardInterrupt
        real(self, done, n, dt)

    driver.Progress.update = stop_after_second_chunk
    try:
        with pytest.raises(KeyboardInterrupt):
            run_saved(small(), root / "partial")
    finally:
        driver.Progress.update = real
    return root


def copy(folders, name, to):
    shutil.copytree(folders / name, to)
    return to


def same_as_clean(folders, out):
    a, _ = results.load(folders / "clean")
    b, _ = results.load(out)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def info_of(path) -> dict:
    with np.load(path) as z:
        return json.loads(str(z["info"]))


def rewrite(path, info=None, drop_info=False, drop_leaf=False):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if drop_info:
        del arrays["info"]
    if drop_leaf:
        last = sorted(k for k in arrays if k.startswith("carry/"))[-1]
        del arrays[last]
        info = {**json.loads(str(arrays["info"])), "n_leaves": info_of(path)["n_leaves"] - 1}
    if info is not None:
        arrays["info"] = np.array(json.dumps(info))
    np.savez(path, **arrays)


def messages(caplog) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name == "collapse_sim")


@pytest.mark.parametrize("layout, delta", [("two files", -1), ("two files", +5), ("one file", -1)])
def test_a_checkpoint_whose_parts_disagree_is_refused(folders, tmp_path, caplog, layout, delta):
    """The counter says one generation fewer (or five more) than the records hold: written as
    checkpoint.npz + checkpoint.json (the older layout) a rerun wrote 7+1 or 7-5 generations;
    now the checkpoint is refused, set aside, and the run resumes from the one before."""
    out = copy(folders, "partial", tmp_path / "run")
    state = out / checkpoint.STATE
    info = info_of(state)
    assert info["generation"] == 4
    if layout == "two files":
        rewrite(state, drop_info=True)
        (out / checkpoint.LEGACY_INFO).write_text(json.dumps({**info, "generation": 4 + delta}))
    else:
        rewrite(state, info={**info, "generation": 4 + delta})
    run_saved(small(progress=True), out)
    said = messages(caplog)
    assert f"{state} cannot be used (it says generation {4 + delta} but record" in said
    assert "resuming from generation 2" in said
    assert any(p.name.startswith("checkpoint.npz.damaged-") for p in out.iterdir())
    rec, _ = results.load(out)
    assert rec["test_error"].shape == (12, 7)
    same_as_clean(folders, out)


def _truncate(p):
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _empty(p):
    p.write_bytes(b"")


def _flip(p):
    """Flip the middle byte; of an .npz, the middle byte of its largest member's data (a byte of a
    zip header, such as the local copy of a CRC that readers ignore, would damage nothing)."""
    import zipfile

    b = bytearray(p.read_bytes())
    at = len(b) // 2
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            info = max(z.infolist(), key=lambda i: i.compress_size)
        h = info.header_offset
        at = h + 30 + int.from_bytes(b[h + 26 : h + 28], "little") + int.from_bytes(b[h + 28 : h + 30], "little")
        at += info.compress_size // 2
    b[at] ^= 0xFF
    p.write_bytes(bytes(b))


def _folder(p):
    p.unlink()
    p.mkdir()
    (p / "x").write_text("x")


DAMAGE = {"truncated": _truncate, "zero bytes": _empty, "flipped byte": _flip, "a folder": _folder}


@pytest.mark.parametrize("damage", [*DAMAGE, "wrong leaf count", "both checkpoints"])
def test_a_damaged_checkpoint_is_set_aside_and_the_run_goes_on_from_the_chunk_before(folders, tmp_path, caplog, damage):
    out = copy(folders, "partial", tmp_path / "run")
    state = out / checkpoint.STATE
    if damage == "wrong leaf count":
        rewrite(state, drop_leaf=True)
    elif damage == "both checkpoints":
        _truncate(state)
        _flip(out / checkpoint.PREVIOUS)
    else:
        DAMAGE[damage](state)
    run_saved(small(progress=True), out)
    said = messages(caplog)
    lines = [line for line in said.splitlines() if f"{state} cannot be used" in line]
    assert len(lines) == 1 and "set aside as checkpoint.npz.damaged-" in lines[0]
    if damage == "both checkpoints":
        assert f"{out / checkpoint.PREVIOUS} cannot be used" in said and "resuming" not in said
    else:
        assert "resuming from generation 2" in said
    aside = [p for p in out.iterdir() if ".damaged-" in p.name]
    assert len(aside) == (2 if damage == "both checkpoints" else 1)
    same_as_clean(folders, out)


@pytest.mark.parametrize("name", [results.RECORDS, results.META])
@pytest.mark.parametrize("damage", DAMAGE)
def test_loading_a_damaged_result_names_the_file(folders, tmp_path, name, damage):
    out = copy(folders, "clean", tmp_path / "run")
    DAMAGE[damage](out / name)
    if name == results.META and damage == "flipped byte":
        b = bytearray((out / name).read_bytes())  # a flipped byte in JSON text may still parse
        b[0] = 0xFF
        (out / name).write_bytes(bytes(b))
    with pytest.raises(results.CorruptFile) as e:
        results.load(out)
    assert str(out / name) in str(e.value)


@pytest.mark.parametrize("damage", ["truncated records.npz", "deleted results.json", "one changed digit in results.json"])
def test_a_finished_run_with_a_damaged_result_is_not_called_complete(folders, tmp_path, caplog, damage):
    out = copy(folders, "clean", tmp_path / "run")
    if damage == "truncated records.npz":
        _truncate(out / results.RECORDS)
    elif damage == "deleted results.json":
        (out / results.META).unlink()
    else:
        text = (out / results.META).read_text()
        i = text.index('"run_seconds": ') + len('"run_seconds": ')
        (out / results.META).write_text(text[:i] + ("1" if text[i] != "1" else "2") + text[i + 1 :])
    run_saved(small(progress=True), out)
    said = messages(caplog)
    assert "already complete" not in said and "running the run again" in said
    if damage != "deleted results.json":
        assert "set aside as" in said
    same_as_clean(folders, out)
    run_saved(small(progress=True), out)
    assert "already complete" in messages(caplog)


def test_results_record_their_provenance_and_compile_time_apart(folders):
    _, meta = results.load(folders / "clean")
    from collapse_sim import __version__

    assert meta["package_version"] == __version__
    assert meta["git"] is None or len(meta["git"]["commit"]) == 40
    assert isinstance(meta["command"], str) and meta["command"]
    assert meta["compile_seconds"] > 0 and meta["compute_seconds"] > 0
    assert meta["compile"]["programs"] >= 1
    marker = json.loads((folders / "clean" / checkpoint.COMPLETE).read_text())
    assert marker["sha256"][results.RECORDS] == results.sha256(folders / "clean" / results.RECORDS)


def test_no_git_commit_outside_a_checkout(tmp_path):
    from collapse_sim.simulator.provenance import git_commit

    assert git_commit(tmp_path) is None


def never_compile(monkeypatch):
    def fail(*a, **k):
        raise AssertionError("compiled before the folder check")

    monkeypatch.setattr(driver.compute, "build", fail)


def test_a_locked_folder_stops_a_second_run_at_once_naming_the_holder(tmp_path, monkeypatch):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, os, sys, time
            fd = os.open({str(out / LOCK)!r}, os.O_RDWR | os.O_CREAT)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.write(fd, f"{{os.getpid()}} host\\n".encode())
            print("locked", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        never_compile(monkeypatch)
        t = time.perf_counter()
        with pytest.raises(FolderLocked, match=rf"{out} is in use by another collapse-sim run \(PID {holder.pid},"):
            run_saved(small(), out)
        assert time.perf_counter() - t < 5
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over_with_a_message(folders, tmp_path, caplog):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = copy(folders, "partial", tmp_path / "run")
    (out / LOCK).write_text(f"{dead.pid} somehost\n")
    run_saved(small(), out)
    assert f"taking over the lock of PID {dead.pid} (no longer running" in messages(caplog)
    assert (out / LOCK).read_text() == ""  # released: emptied, and free to take
    with RunLock(out):
        pass
    same_as_clean(folders, out)


def test_partial_files_of_a_killed_writer_are_removed_at_start(folders, tmp_path, caplog):
    out = copy(folders, "partial", tmp_path / "run")
    (out / ".checkpoint.npz.k3x9.tmp").write_bytes(b"\0" * 1_000_000)
    run_saved(small(), out)
    assert "removed .checkpoint.npz.k3x9.tmp (1.0 MB)" in messages(caplog)
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize("where", ["a file", "under a file", "read-only"])
def test_an_unwritable_run_folder_stops_the_run_before_compiling(tmp_path, monkeypatch, where):
    never_compile(monkeypatch)
    (tmp_path / "f").write_text("x")
    out = {"a file": tmp_path / "f", "under a file": tmp_path / "f" / "run", "read-only": tmp_path / "ro"}[where]
    if where == "read-only":
        def read_only(*a, **k):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(driver.tempfile, "TemporaryFile", read_only)
    with pytest.raises(OSError) as e:
        run_saved(small(), out)
    message = str(e.value)
    assert str(out) in message and "choose another run.out_dir" in message
    assert {"a file": "is a file", "under a file": f"lies under {tmp_path / 'f'}, which is a file",
            "read-only": "Read-only file system"}[where] in message


@pytest.mark.parametrize("fails", ["third checkpoint", "records"])
def test_a_full_disk_keeps_every_earlier_chunk_and_leaves_no_partial_file(folders, tmp_path, monkeypatch, fails):
    out = tmp_path / "run"
    writer = "savez" if fails == "third checkpoint" else "savez_compressed"
    real, calls = getattr(np, writer), []

    def full_disk(f, **arrays):
        calls.append(1)
        if fails == "records" or len(calls) == 3:
            f.write(b"\0" * 1000)  # a partial file, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, **arrays)

    monkeypatch.setattr(np, writer, full_disk)
    with pytest.raises(results.WriteError) as e:
        run_saved(small(), out)
    monkeypatch.setattr(np, writer, real)
    g = 4 if fails == "third checkpoint" else 6  # checkpoints after generations 2, 4, 6 (0 runs with the first chunk)
    name = checkpoint.STATE if fails == "third checkpoint" else results.RECORDS
    message = str(e.value)
    assert f"could not write {out / name}: No space left on device (" in message and " free there)" in message
    assert f"generations 0..{g} are saved in {out}" in message
    assert not list(out.glob(".*.tmp")) and not (out / results.RECORDS).exists()
    assert checkpoint.saved_generation(out, run_key(small())) == g
    run_saved(small(), out)
    same_as_clean(folders, out)


def test_progress_says_the_stage_every_few_seconds(caplog):
    from collapse_sim.simulator.progress import Progress

    p = Progress(True, 10, 0, 4, "w/r", every=0.3)
    p.stage("compiling generation 0")
    time.sleep(1.2)
    p.update(2, 2, 0.5)
    p.close()
    said = messages(caplog)
    assert "w/r: compiling generation 0\n" in said + "\n"
    assert "w/r: compiling generation 0, 0 s so far" in said or "w/r: compiling generation 0, 1 s so far" in said
    assert "generation 2/10, 4 seeds, 16 seed-generations/s, about 2 s left" in said  # 2 gens x 4 seeds / 0.5 s
    # of compute; 8 generations left at 0.25 s each


def test_progress_of_a_slow_world_shows_its_rate_and_time_left(caplog):
    """A transformer generation takes tens of seconds a seed: the rate is not rounded to 0."""
    from collapse_sim.simulator.progress import Progress

    p = Progress(True, 6, 0, 2, "transformer/replace [+variant=replace]")
    p.update(1, 1, 40.0)
    p.update(6, 5, 200.0)
    p.close()
    said = messages(caplog)
    assert "transformer/replace [+variant=replace]: generation 1/6, 2 seeds, 0.05 seed-generations/s, about 3 min left" in said
    assert "generation 6/6, 2 seeds, 0.05 seed-generations/s\n" in said + "\n"


def test_folder_names_print_floats_as_typed_and_one_regime_is_one_run():
    from collapse_sim.experiments.main import _dir_name, _single_run

    assert _dir_name(["regime.real_fraction=0.7000000000000001", "world.d=10", "hydra.run.dir=x"]) == \
        "regime.real_fraction=0.7,world.d=10"
    assert _dir_name(["world.sigma=1e-05", "world.name=a0.1"]) == "world.name=a0.1,world.sigma=1e-05"
    assert _single_run(["regime=mix"])[-1] == "hydra.mode=RUN"
    assert _single_run(["hydra.run.dir=/tmp/x", "experiment=toedit_audit"])[-1] == "hydra.mode=RUN"
    for sweep in (["regime=mix,replace"], ["--multirun", "regime=mix"], ["experiment=toedit_audit", "regime=mix"], []):
        assert "hydra.mode=RUN" not in _single_run(sweep)


# The interrupt test: one server process imports everything once (no JAX backend yet, so it
# may fork), then forks a child per try that runs the command line (experiments/main.py cli)
# on a tiny config and is sent SIGINT or SIGTERM at a random time.
SERVER = r"""
import json, os, random, signal, sys, time
import flax, jax, optax  # noqa: F401
import collapse_sim.experiments.main as cli_main
import collapse_sim.experiments.predictions, collapse_sim.simulator.driver  # noqa: F401
from collapse_sim.simulator import checkpoint, results
from hydra import compose, initialize_config_module
from collapse_sim.experiments.config import register

root = sys.argv[1]
G = 12
args = ["regime=replace", "world.d=3", "world.T=12", "run.n_seeds=2048", f"run.n_generations={G}",
        "run.chunk_generations=2", "run.theory_designs=20", "run.figure=false"]

register()
with initialize_config_module(version_base="1.3", config_module="collapse_sim.experiments.conf"):
    compose("config", overrides=args)  # hydra's own imports, once, before any fork


def start(folder, log):
    pid = os.fork()
    if pid == 0:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        sys.argv = ["collapse-sim", *args, f"hydra.run.dir={folder}"]
        code = 0
        try:
            cli_main.cli()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:
            import traceback
            traceback.print_exc()
            code = 99
        sys.stdout.flush(); sys.stderr.flush()
        os._exit(code)
    return pid


def finish(pid):
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def on_disk(folder):
    state = {"complete": os.path.exists(os.path.join(folder, checkpoint.COMPLETE)), "generation": None}
    for name in (checkpoint.STATE, checkpoint.PREVIOUS):
        try:
            info, leaves, recs = checkpoint._read(__import__("pathlib").Path(folder) / name)
            state["generation"] = info["generation"]
            break
        except Exception:
            pass
    return state


def cache_files():
    d = os.path.join(os.environ["COLLAPSE_SIM_CACHE_DIR"], "jax")
    return sorted((f, os.path.getsize(os.path.join(d, f))) for f in os.listdir(d)) if os.path.isdir(d) else []


out = {"tries": []}
t = time.time(); code = finish(start(f"{root}/warm", f"{root}/warm.log")); out["warm"] = [code, time.time() - t]
cache_before = cache_files()
t = time.time(); code = finish(start(f"{root}/again", f"{root}/again.log")); span = time.time() - t
out["again"] = [code, span]
out["cache_unchanged"] = cache_files() == cache_before and len(cache_before) > 0
rng = random.Random(0)
target, lanes, next_folder, i = int(sys.argv[2]), {}, 0, 0  # two tries at a time, each in its own folder


def launch(lane, path):
    global i
    sig = (signal.SIGINT, signal.SIGTERM)[i % 2]
    before, log = on_disk(path), f"{root}/try{i}.log"
    open(log, "w").close()
    # A random time in a random stage: starting (hydra, JAX, compiling), between chunks, or
    # while the results and the marker are written.
    stage = rng.choice(["start", "chunks", "end"])
    saved = before["generation"] or 0
    if stage == "chunks" and saved + 2 >= G:
        stage = "end"
    if saved == G:  # every chunk is saved: what is left is the end
        stage = "start"
    k = rng.randrange(saved + 2, G, 2) if stage == "chunks" else G
    delay = rng.uniform(0.0, {"start": 0.6 * span, "chunks": 0.04, "end": 0.03}[stage])
    lanes[lane] = {"pid": start(path, log), "sig": sig, "log": log, "path": path, "before": before,
                   "wait_for": None if stage == "start" else f"generation {k}/{G}", "delay": delay,
                   "at": time.time() + delay if stage == "start" else None}
    i += 1


def record(lane, code):
    t = lanes.pop(lane)
    out["tries"].append({"signal": int(t["sig"]), "code": code, "log": open(t["log"]).read(),
                         "disk": on_disk(t["path"]), "before": t["before"], "folder": t["path"]})
    return t["path"]


folders = {}
for lane in (0, 1):
    folders[lane] = f"{root}/f{next_folder}"
    next_folder += 1
    launch(lane, folders[lane])
while lanes:
    for lane in list(lanes):
        t = lanes[lane]
        done, status = os.waitpid(t["pid"], os.WNOHANG)
        if done:
            path = record(lane, os.waitstatus_to_exitcode(status))
        elif t["at"] is None and t["wait_for"] in open(t["log"]).read():
            t["at"] = time.time() + t["delay"]
            continue
        elif t["at"] is not None and time.time() >= t["at"]:
            os.kill(t["pid"], t["sig"])
            path = record(lane, finish(t["pid"]))
        else:
            continue
        if on_disk(path)["complete"]:
            folders[lane] = f"{root}/f{next_folder}"
            next_folder += 1
        if sum(x["code"] in (130, 143) for x in out["tries"]) + len(lanes) < target and i < 3 * target:
            launch(lane, folders[lane])
    time.sleep(0.002)
last = out["tries"][-1]["folder"]
out["resumed"] = [finish(start(last, f"{root}/resume.log")), last]
print(json.dumps(out))
"""


def test_interrupts_always_exit_cleanly_saying_what_is_on_disk(tmp_path):
    """20 SIGINT/SIGTERM at random times over runs of the command line (from hydra's start to
    the last write): every one exits 130 / 143 with one line that names what the checkpoint on
    disk holds; no traceback, no crash; the interrupted folder then finishes with the numbers
    of an uninterrupted run.  A second identical process compiles nothing new."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "COLLAPSE_SIM_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("COLLAPSE_SIM_NO_CACHE", None)
    p = subprocess.run([sys.executable, "-c", SERVER, str(tmp_path), "20"], env=env, capture_output=True, text=True,
                       timeout=600, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    out = json.loads(p.stdout.splitlines()[-1])
    assert out["warm"][0] == 0 and out["again"][0] == 0, (tmp_path / "warm.log").read_text()[-2000:]
    assert out["cache_unchanged"]
    compile_info = json.loads((tmp_path / "again" / results.META).read_text())["compile"]
    assert compile_info["cache_misses"] == 0 and compile_info["cache_hits"] > 0

    stages = set()
    for t in out["tries"]:
        log, disk = t["log"], t["disk"]
        assert "Traceback" not in log and "Segmentation" not in log, log
        assert "taking over the lock" not in log, log  # an interrupted run releases its folder
        if t["code"] == 0:
            assert disk["complete"], log
            continue
        assert t["code"] == 128 + t["signal"], log
        how = "interrupted (Ctrl-C)" if t["signal"] == signal.SIGINT else "stopped by SIGTERM"
        (line,) = [x for x in log.splitlines() if how in x]
        if "before the run started; nothing was written" in line:
            assert disk == t["before"], (line, disk)
            stages.add("nothing saved")
        elif "no generation of this run is saved yet" in line:
            assert disk["generation"] is None and not disk["complete"], (line, disk)
            stages.add("nothing saved")
        elif "after the run finished" in line:
            assert disk["complete"], (line, disk)
        else:
            g = disk["generation"]
            assert f"generations 0..{g} are saved in {t['folder']}; run the same command to resume from generation {g}" \
                in line, (line, disk)
            stages.add("mid-run")
    assert sum(t["code"] in (130, 143) for t in out["tries"]) >= 20
    assert stages == {"nothing saved", "mid-run"}

    code, folder = out["resumed"]
    assert code == 0, (tmp_path / "resume.log").read_text()[-2000:]
    a, _ = results.load(folder)
    b, _ = results.load(tmp_path / "again")
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_while_the_command_line_imports_leaves_no_traceback(tmp_path, sig):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "COLLAPSE_SIM_NO_CACHE": "1"}
    p = subprocess.Popen([sys.executable, "-m", "collapse_sim", f"hydra.run.dir={tmp_path}/run"], env=env,
                         stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp_path)
    time.sleep(0.5)  # the handlers are in place within milliseconds; the imports take seconds
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 128 + sig, err
    assert "Traceback" not in err
    assert "before the run started; nothing was written" in err or "no generation of this run is saved yet" in err
