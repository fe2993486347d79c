"""Interrupts (Ctrl-C, SIGTERM) that never split a write and always say what is saved.

Writes of a run's files happen inside :func:`critical`.  The message names
what the checkpoint on disk holds, read from disk when the interrupt is
handled (:func:`saved_message`), never what the loop last counted.

From Python (``run_saved`` in a notebook or a test) Ctrl-C raises
``KeyboardInterrupt`` as usual; the driver logs the message and re-raises.
The command line calls :func:`exit_on_signals` first thing: SIGINT and SIGTERM
then wake a watcher thread at once (even while the main thread waits on a JAX
computation), which waits for any write in progress, logs the message, flushes
the logs and leaves with ``os._exit(130)`` / ``os._exit(143)``: no traceback,
and no Python finalisation racing JAX's threads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading

from collapse_sim.simulator.progress import log

_io = threading.Lock()
_current: dict = {}  # label, out_dir, key of the run in progress (set by the driver)
_installed = False


@contextlib.contextmanager
def critical():
    """A write an interrupt must not split (the CLI's watcher waits for it to finish)."""
    with _io:
        yield


def running(label: str, out_dir, key: str, *more: tuple) -> None:
    """Name the run that an interrupt reports on (kept after it ends: an interrupt between
    runs still says where the last one is); ``more``: further (label, out_dir, key) of runs
    computed together with it (a sweep's grid call), each reported too."""
    _current.update(label=label, out_dir=out_dir, key=key, more=list(more))


def holding(*locks) -> None:
    """The run folders' locks, released (emptied) before an interrupt exits the process."""
    _current["locks"] = [lock for lock in locks if lock is not None]


def saved_message(label: str, out_dir, key: str, how: str = "interrupted") -> str:
    """One line: what the folder holds for this config, read from disk now."""
    from collapse_sim.simulator import checkpoint

    if checkpoint.check_complete(out_dir, key, say=None, fix=False):
        return f"{label}: {how} after the run finished; its results are complete in {out_dir}"
    g = checkpoint.saved_generation(out_dir, key)
    if g is None:
        return f"{label}: {how}; no generation of this run is saved yet in {out_dir}"
    return (f"{label}: {how}; generations 0..{g} are saved in {out_dir}; "
            f"run the same command to resume from generation {g}")


def _say_once(message: str) -> None:
    """The ``collapse_sim`` logger's terminal line, and the record in every log file, but not
    again through a console handler that has not learnt to skip our records yet."""
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, message, None, None)
    for h in log.handlers:
        h.handle(record)
    for h in logging.getLogger().handlers:
        if isinstance(h, logging.FileHandler) or not isinstance(h, logging.StreamHandler):
            h.handle(record)


def _flush_logs() -> None:
    for logger in (logging.getLogger(), logging.getLogger("collapse_sim")):
        for h in logger.handlers:
            with contextlib.suppress(Exception):
                h.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _leave(signum: int) -> None:
    code = 128 + signum
    how = "interrupted (Ctrl-C)" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    with _io:  # a write in progress finishes first; none starts after this
        try:
            if _current:
                runs = [(_current["label"], _current["out_dir"], _current["key"]), *_current.get("more", [])]
                for label, out_dir, key in runs:
                    _say_once(saved_message(label, out_dir, key, how))
            else:
                _say_once(f"{how} before the run started; nothing was written")
        except BaseException:
            pass
        for lock in _current.get("locks", []):
            with contextlib.suppress(BaseException):
                lock.release()
        _flush_logs()
        os._exit(code)


def exit_on_signals() -> None:
    """For the command line: SIGINT/SIGTERM end the process cleanly with 130/143 (main thread only)."""
    global _installed
    if _installed:
        return
    r, w = os.pipe()
    os.set_blocking(w, False)

    def watch():
        while True:
            data = os.read(r, 1)
            if data and data[0] in (signal.SIGINT, signal.SIGTERM):
                _leave(data[0])

    threading.Thread(target=watch, name="collapse-sim-signals", daemon=True).start()
    # The C-level handler writes the signal's number to ``w`` the moment it arrives (from
    # whichever thread); the Python-level handler (main thread, later) has nothing to do.
    signal.set_wakeup_fd(w, warn_on_full_buffer=False)
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, lambda *_: None)
    _installed = True
