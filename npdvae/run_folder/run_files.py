"""Writing the files of a run folder so that nothing is lost and nothing outside is touched.

Three rules, each for a failure that was seen:

* **Whole files are replaced, never rewritten in place.** The new content goes
  to a fresh temporary file in the same folder (created with O_EXCL, so it is
  never an existing file or a symlink), is fsync'ed, and is renamed over the
  old name. A process killed at any moment leaves the old file or the new one.
  A symlink under the old name is replaced by the new file; the file it
  pointed to is never opened.
* **Appends never follow a symlink** (O_NOFOLLOW): ``metrics.jsonl`` grows one
  line per epoch; a symlink in its place is refused.
* **A write that fails says which file and why** (:class:`RunWriteError`, with
  the errno's name: ENOSPC, EFBIG, EIO, ...), after removing its temporary
  file, so the previous version stays intact.

And one writer per folder: :class:`RunLock` holds an ``fcntl.flock`` on
``.lock`` for the life of the process; a second process is refused at once,
told the holder's pid. Temporary files of a killed write (``*.tmp``) are
removed when the lock is taken, since no other writer can own them then.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

LOCK_NAME = ".lock"
TMP_SUFFIX = ".tmp"


class RunWriteError(OSError):
    """A file of a run folder could not be written; names the file and the errno."""

    def __init__(self, path, err: OSError):
        code = errno.errorcode.get(err.errno, str(err.errno)) if err.errno else "unknown error"
        super().__init__(err.errno, f"cannot write {path}: {err.strerror or err} ({code})")
        self.path = Path(path)

    def __str__(self):
        return self.strerror

    def __reduce__(self):   # rebuilt whole after crossing a process boundary (a grid's task)
        return _rebuild_run_write_error, (str(self.path), self.errno, self.strerror)


def _rebuild_run_write_error(path, number, message):
    error = RunWriteError.__new__(RunWriteError)
    OSError.__init__(error, number, message)
    error.path = Path(path)
    return error


class RunLockedError(RuntimeError):
    """Another process holds the run folder's lock."""


def _fsync_dir(folder: Path):
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path, data: bytes):
    """Give ``path`` the content ``data``, atomically and durably (see the module docstring)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")
    fd = None
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as err:
        if fd is not None:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise RunWriteError(path, err) from None
    except BaseException:
        if fd is not None:
            os.close(fd)
        tmp.unlink(missing_ok=True)
        raise


def append_line(path, line: str):
    """Append one line to ``path`` (created if missing), never through a symlink."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as err:
        if err.errno == errno.ELOOP:
            err = OSError(errno.ELOOP, "it is a symbolic link, which is never followed for writing")
        raise RunWriteError(path, err) from None
    start = None
    try:
        start = os.fstat(fd).st_size
        data = (line.rstrip("\n") + "\n").encode()
        written = 0
        while written < len(data):
            # A short write is retried: the next write raises what stopped it (ENOSPC, EFBIG).
            count = os.write(fd, data[written:])
            if count == 0:
                raise OSError(errno.EIO, "the file system took no bytes")
            written += count
        os.fsync(fd)
    except OSError as err:
        if start is not None:
            _truncate_quietly(fd, start)
        raise RunWriteError(path, err) from None
    finally:
        os.close(fd)


def _truncate_quietly(fd, size: int):
    """Cut a failed append back to the lines before it: a reader never meets half a line.
    Shrinking a file needs no new block, so it works on a full disk."""
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass   # the write's own error is the one to report


def remove_orphaned_temporaries(path) -> list[Path]:
    """Delete the temporaries ``PATH.PID.tmp`` that a process killed while writing ``path``
    left beside it (its pid is no longer alive); another live writer's are left alone."""
    path, removed = Path(path), []
    for tmp in path.parent.glob(f"{path.name}.*{TMP_SUFFIX}"):
        pid = tmp.name[len(path.name) + 1:-len(TMP_SUFFIX)]
        if not pid.isdigit() or not (tmp.is_file() or tmp.is_symlink()):
            continue
        try:
            os.kill(int(pid), 0)
            continue   # alive: its write is under way
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def remove_stale_temporaries(folder) -> list[Path]:
    """Delete the ``*.tmp`` files a killed write left in ``folder``; call it holding the lock."""
    removed = []
    for tmp in Path(folder).glob(f"*{TMP_SUFFIX}"):
        if tmp.is_file() or tmp.is_symlink():
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


# lock files this process holds, by real path: one process is one writer, so taking
# a lock it already holds (a resume after a run, in one Python session) succeeds
_HELD: dict[str, int] = {}


class RunLock:
    """An exclusive ``flock`` on ``FOLDER/.lock`` (or ``FOLDER/name``), held for the life of
    the process (or until :meth:`release`).

    The kernel drops the lock when the process dies, however it dies, so a
    killed run never leaves its folder locked. ``holder`` words the refusal:
    what the folder is in use by."""

    def __init__(self, folder, name: str = LOCK_NAME, holder: str = "another npdvae process"):
        self.folder = Path(folder)
        self.path = self.folder / name
        self.holder = holder
        self.fd = None

    def acquire(self) -> "RunLock":
        key = os.path.realpath(self.path)
        if key in _HELD:
            self.fd = _HELD[key]
            return self
        try:   # O_NONBLOCK: a FIFO in the lock's place must not hang the open
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as err:
            what = "a symbolic link" if os.path.islink(self.path) else "a directory" if os.path.isdir(self.path) \
                else None
            if what:   # never followed nor used: the way out is to remove it
                raise RunWriteError(self.path, OSError(err.errno, f"it is {what}, not a lock file; remove it "
                                                                  "(npdvae makes it again)")) from None
            raise RunWriteError(self.path, err) from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RunWriteError(self.path, OSError(errno.EINVAL, "it is not a regular file; remove it "
                                                                 "(npdvae makes it again)"))
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunLockedError(f"{self.folder} is in use by {self.holder} (pid {pid}); "
                                 "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = _HELD[key] = fd
        return self

    def release(self):
        if self.fd is not None:
            _HELD.pop(os.path.realpath(self.path), None)
            os.close(self.fd)   # closing drops the flock
            self.fd = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
