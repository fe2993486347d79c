"""What a run tells its user: the ``collapse_sim`` logger and the progress display.

Every message goes through the ``collapse_sim`` logger (so hydra's ``main.log``
and any handler a user adds see it); the logger also writes
``[collapse-sim] <message>`` to the terminal's stderr.  :class:`Progress` shows
the stage (compiling, running) and the rate in seed-generations per second of
compute (compile time left out), refreshed at least every few seconds.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

log = logging.getLogger("collapse_sim")


class _Stderr(logging.StreamHandler):
    """stderr as it is when a message is written (so redirections and test capture see it)."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("[collapse-sim] %(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


if not any(isinstance(h, _Stderr) for h in log.handlers):
    log.addHandler(_Stderr())
    log.setLevel(logging.INFO)


def say(message: str) -> None:
    log.info(message)


class Progress:
    """A tqdm bar on a terminal, plain log lines otherwise, nothing if disabled.

    ``stage(text)`` names what runs now; ``update(done, n, compute_seconds)`` counts ``n``
    finished generations; a background thread refreshes the bar every second, or logs
    the stage and its elapsed time when nothing was said for ``every`` seconds."""

    def __init__(self, enabled: bool, total: int, done: int, n_seeds: int, label: str, every: float = 5.0):
        self.enabled, self.total, self.done, self.n_seeds, self.label = enabled, total, done, n_seeds, label
        self.every, self.bar, self.what, self.since = every, None, "", time.monotonic()
        self.gens, self.compute = 0, 0.0
        self._last_said = time.monotonic()
        self._stop = threading.Event()
        if not enabled:
            return
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=done, desc=label, unit="gen", dynamic_ncols=True)
        threading.Thread(target=self._beat, name="collapse-sim-progress", daemon=True).start()

    def _say(self, message: str) -> None:
        self._last_said = time.monotonic()
        say(message)

    def rate(self) -> float:
        return self.gens * self.n_seeds / self.compute if self.compute > 0 else 0.0

    def left(self) -> str:
        """Time left at the compute rate so far (the remaining generations, compile left out)."""
        if self.gens == 0 or self.done >= self.total:
            return ""
        return f", about {_duration((self.total - self.done) * self.compute / self.gens)} left"

    def stage(self, what: str) -> None:
        self.what, self.since = what, time.monotonic()
        if self.bar is not None:
            self.bar.set_description_str(f"{self.label} ({what})")
        elif self.enabled and what.startswith("compiling"):
            self._say(f"{self.label}: {what}")

    def update(self, done: int, n: int, compute_seconds: float) -> None:
        self.done, self.gens, self.compute = done, self.gens + n, self.compute + compute_seconds
        if self.bar is not None:
            self.bar.set_postfix(seeds=self.n_seeds, seed_gens_per_s=_number(self.rate()))
            self.bar.update(n)
        elif self.enabled:
            self._say(f"{self.label}: generation {done}/{self.total}, {self.n_seeds} seeds, "
                      f"{_number(self.rate())} seed-generations/s{self.left()}")

    def _beat(self) -> None:
        while not self._stop.wait(1.0 if self.bar is not None else 0.5):
            if self.bar is not None:
                self.bar.refresh()
            elif time.monotonic() - self._last_said >= self.every and self.what:
                self._say(f"{self.label}: {self.what}, {time.monotonic() - self.since:.0f} s so far")

    def close(self) -> None:
        self._stop.set()
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _number(x: float) -> str:
    """A rate as a person reads it: whole numbers from 10 up, two significant digits below
    (a transformer generation of a few seeds runs at a fraction of one seed-generation a second)."""
    return f"{x:,.0f}" if x >= 10 or x == 0 else f"{x:.2g}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
