"""Output files that appear only when complete.

``atomic_path(target)`` yields a temporary path next to ``target``; on success it is moved into
place with ``os.replace`` (atomic on one file system), on any failure it is removed, so no
half-written output is ever left behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from talkinghead.errors import TalkingHeadError


def _umask() -> int:
    """The process umask (read without changing it for long)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def ensure_parent(path: str | Path) -> Path:
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TalkingHeadError(f"Cannot create the folder {path.parent} ({err.strerror}).") from err
    return path


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp file path in ``target``'s folder; rename it to ``target`` on success."""
    target = ensure_parent(target)
    if target.is_dir():
        raise TalkingHeadError(f"The output {target} is a folder; give a file name.")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates the file private (0600); give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
