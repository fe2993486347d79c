"""One run per folder: an exclusive ``fcntl.flock`` on ``<folder>/collapse-sim.lock``.

The lock is held for the whole run and the holder's PID (and host) is written in
the file.  The kernel drops the lock when its process dies however it dies, so
a file that still names a PID but is not locked was left by a run that was
killed: the next run takes it over and says so.  A clean release empties the file.
"""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

try:
    import fcntl
except ImportError:  # not a POSIX system: runs are not locked
    fcntl = None

NAME = "collapse-sim.lock"


class FolderLocked(OSError):
    """Another process holds the run folder."""

    def __str__(self) -> str:
        return self.args[0]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``with RunLock(folder, say) as lock: ...``; ``say`` gets the one-line notes (a stale lock
    taken over, a file system without locks)."""

    def __init__(self, folder, say=print):
        self.path = Path(folder) / NAME
        self.say = say
        self.fd = None
        self.held = False  # the flock is ours (release empties the file only then)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def _holder(self) -> str:
        try:
            text = os.pread(self.fd, 200, 0).decode(errors="replace").split()
        except OSError:
            return ""
        return text[0] if text else ""

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        self.fd = fd
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pid = self._holder() or "unknown"
                os.close(fd)
                self.fd = None
                raise FolderLocked(
                    f"{self.path.parent} is in use by another collapse-sim run (PID {pid}, lock file {self.path}); "
                    f"wait for it to finish or stop it, or give this run another folder"
                ) from None
            except OSError as e:
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                self.say(f"{self.path.parent}: this file system does not support locks ({e.strerror}); "
                         "make sure no other run writes into this folder")
        self.held = True
        old = self._holder()
        if old and old != str(os.getpid()):
            state = "no longer running" if old.isdigit() and not _alive(int(old)) else "no longer holding it"
            self.say(f"{self.path.parent}: taking over the lock of PID {old} ({state}; a run that was killed)")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        os.fsync(fd)

    def release(self) -> None:
        """Empty the lock file (when the lock is ours) and drop the lock; safe to call again,
        or for a lock never taken (an interrupt may call it from another thread)."""
        fd, self.fd = self.fd, None
        if fd is None:
            return
        if self.held:
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
        self.held = False
        os.close(fd)  # closing the last descriptor drops the flock
