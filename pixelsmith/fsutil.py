"""Atomic file writes (a reader never sees a half-written output, even after kill -9) and private folders.

Modes do not depend on the umask where privacy matters: a folder made by
:func:`private_dir` is 0700, and a file :func:`atomic_write` puts in a folder
that only its owner can enter (no group/other bits: the server's data dir and
everything under it) is 0600, as are the folders it makes there. Elsewhere (a
user's own output folder, written by the batch CLI) files and folders get the
user's umask, as any program's would.
"""

from __future__ import annotations

import contextlib
import os
import pathlib
import tempfile


def private_dir(path: str | os.PathLike) -> pathlib.Path:
    """``path`` (and missing parents) as folders only the owner can enter: 0700 whatever the umask."""
    target = pathlib.Path(path)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target, 0o700)  # mkdir's mode is masked by the umask, and the folder may already exist
    return target


def private_file(path: str | os.PathLike) -> None:
    """Make an existing file owner-only (0600); SQLite databases: also their -wal and -shm files."""
    for name in (str(path), f"{path}-wal", f"{path}-shm", f"{path}-journal"):
        try:
            os.chmod(name, 0o600)
        except FileNotFoundError:
            pass


def is_private(folder: str | os.PathLike) -> bool:
    """True when only the owner can enter ``folder`` (no group or other permission bits)."""
    return os.stat(folder).st_mode & 0o077 == 0


def ensure_dir(path: str | os.PathLike) -> pathlib.Path:
    """``path`` and its missing parents; inside a private folder they are made private (0700) too."""
    target = pathlib.Path(path)
    missing = []
    probe = target
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    private = probe.is_dir() and is_private(probe)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700 if private else 0o777)
        except FileExistsError:
            pass
        if private:
            os.chmod(folder, 0o700)
    return target


def _umask() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # not on Linux: read it by setting it (restored at once)
    os.umask(mask)
    return mask


def remove_stale_parts(path: str | os.PathLike) -> None:
    """Delete the temporary files an :func:`atomic_write` of ``path`` left behind when its process was
    killed between writing and renaming (``.NAME.XXXXXXXX.part``). Only for a caller that owns ``path``
    now (a batch worker holding the item's lease): a live writer's temporary file would go too."""
    target = pathlib.Path(path)
    try:
        names = os.listdir(target.parent)
    except FileNotFoundError:
        return
    prefix = f".{target.name}."
    for name in names:
        # mkstemp's middle part is 8 characters of [a-z0-9_]; nothing else in the folder has this shape
        middle = name[len(prefix) : -len(".part")] if name.startswith(prefix) and name.endswith(".part") else ""
        if len(middle) == 8 and all(c.isalnum() or c == "_" for c in middle):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target.parent / name)


def atomic_write(path: str | os.PathLike, data: bytes, *, private: bool | None = None) -> None:
    """Write ``data`` to ``path`` atomically. ``private``: 0600 (True), the umask's mode (False), or, by default,
    0600 when the folder is private (see the module docstring) and the umask's mode otherwise."""
    target = pathlib.Path(path)
    ensure_dir(target.parent)
    if private is None:
        private = is_private(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    try:
        os.fchmod(fd, 0o600 if private else 0o666 & ~_umask())  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:  # make the rename itself durable
        dirfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    except OSError:
        pass
