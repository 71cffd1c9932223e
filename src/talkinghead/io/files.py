"""Output files that appear only when complete, output places checked before any work, and the reading of
the project's JSON files.

``atomic_path(target)`` yields a temporary path next to ``target``; on success it is moved into place with
``os.replace`` (atomic on one file system), on any failure (an error, Ctrl-C, SIGTERM) it is removed, so no
half-written output is ever left behind. ``atomic_outputs(a, b)`` does the same for all the outputs of one
command together: they appear all, or none does. Folders made for an output are removed again when it
fails.

``check_output`` / ``check_output_folder`` refuse, before a command does any work, an output that cannot be
written (a folder where a file is wanted, another suffix, a folder without write permission);
``output_folder`` removes the folder a command made when the command fails.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
import tempfile
import tokenize
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from talkinghead.errors import TalkingHeadError

#: what reading a damaged file raises besides TalkingHeadError: an ``np.load`` of a broken zip (bad data, an entry
#: flagged as encrypted or with a method zipfile lacks: RuntimeError, NotImplementedError) or of a garbled array
#: header (numpy parses it as a Python literal), bad JSON or text
READ_ERRORS = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error, RuntimeError,
               SyntaxError, tokenize.TokenError)


def _umask() -> int:
    """The process umask (read without changing it for long)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def read_json(path: Path, what: str) -> Any:
    """The parsed content of the JSON file ``path`` (``what`` names it in errors: "checkpoint config")."""
    if not path.is_file():
        raise TalkingHeadError(f"The {what} {path} does not exist.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise TalkingHeadError(f"The {what} {path} is not UTF-8 text; it is corrupt.") from err
    except json.JSONDecodeError as err:
        raise TalkingHeadError(f"The {what} {path} is not valid JSON ({err.msg}, line {err.lineno}).") from err
    except OSError as err:
        raise TalkingHeadError(f"The {what} {path} cannot be read ({err.strerror}).") from err


# ------------------------------------------------------------------------------ output places, checked early

def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_writable(folder: str | Path) -> None:
    """Refuse a folder (or, when it does not exist yet, the folder it would be made in) that is a file or that
    cannot be written: a probe file is made there and removed (permission bits say nothing to root or on
    read-only mounts)."""
    folder = Path(folder)
    base = _existing_ancestor(folder)
    if not base.is_dir():
        raise TalkingHeadError(f"Cannot make the folder {folder}: {base} is a file.")
    try:
        fd, probe = tempfile.mkstemp(prefix=".talkinghead-probe.", dir=base)
    except OSError as err:
        raise TalkingHeadError(f"Cannot write in the folder {base} ({err.strerror}); choose another output "
                               "place.") from err
    os.close(fd)
    os.unlink(probe)


def check_output(path: str | Path, suffixes: tuple[str, ...] = ()) -> Path:
    """Refuse an output file that cannot be written: an existing folder, a suffix not in ``suffixes`` (any when
    empty), a parent folder that is a file or not writable. Nothing is made."""
    path = Path(path)
    if path.is_dir():
        raise TalkingHeadError(f"The output {path} is a folder; give a file name.")
    if suffixes and path.suffix.lower() not in suffixes:
        raise TalkingHeadError(f"The output {path} should end in {' or '.join(suffixes)}.")
    check_writable(path.parent)
    return path


def check_output_folder(path: str | Path) -> Path:
    """Refuse an output folder that is a file or cannot be written (or made). Nothing is made."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise TalkingHeadError(f"The output {path} is a file; give a folder.")
    check_writable(path)
    return path


# ------------------------------------------------------------------------------ atomic outputs

def _make_folder(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; return the ones made (outermost first)."""
    made = []
    for parent in [*reversed(folder.parents), folder]:
        if not parent.exists():
            made.append(parent)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _remove_empty(made)
        raise TalkingHeadError(f"Cannot make the folder {folder} ({err.strerror}).") from err
    return made


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            folder.rmdir()


def ensure_parent(path: str | Path) -> Path:
    path = Path(path)
    _make_folder(path.parent)
    return path


def _new_temporary(target: Path, temps: list[Path]) -> None:
    """Create an empty private temporary next to ``target`` (same suffix). Its name is appended to ``temps`` *before*
    the file is created (exclusively), so a Ctrl-C or SIGTERM landing at any point leaves nothing that the clean-up
    does not know about. (Masking the signals instead does not work: a mask is per thread, and a process-directed
    signal can be taken by another thread while the main thread runs the handler inside the masked block.)"""
    for _ in range(100):
        path = target.parent / f".{target.stem}.{secrets.token_hex(4)}.part{target.suffix}"
        temps.append(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # someone else's file of that name: not ours to remove
            temps.pop()
            continue
        os.close(fd)
        return
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target))


@contextlib.contextmanager
def atomic_outputs(*targets: str | Path) -> Iterator[list[Path]]:
    """Temporary paths next to ``targets`` (same suffixes), all moved into place when the block succeeds; on
    any failure they are removed, with the folders made for them, and no target is touched."""
    paths = [Path(t) for t in targets]
    for target in paths:
        if target.is_dir():
            raise TalkingHeadError(f"The output {target} is a folder; give a file name.")
    if len({p.resolve() for p in paths}) < len(paths):
        raise TalkingHeadError(f"Two outputs of the command are the same file ({', '.join(map(str, paths))}).")
    made: list[Path] = []
    temps: list[Path] = []
    done = False
    try:
        for target in paths:
            made += _make_folder(target.parent)
            try:
                _new_temporary(target, temps)
            except OSError as err:
                raise TalkingHeadError(f"Cannot write {target} ({err.strerror}).") from err
        yield temps
        for tmp, target in zip(temps, paths, strict=True):
            # the temporary is created private (0600); give it the mode a plain open() would have.
            os.chmod(tmp, 0o666 & ~_umask())
            try:
                os.replace(tmp, target)
            except OSError as err:
                raise TalkingHeadError(f"Cannot write {target} ({err.strerror}).") from err
        done = True
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        if not done:
            _remove_empty(made)


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp file path in ``target``'s folder; rename it to ``target`` on success."""
    with atomic_outputs(target) as (tmp,):
        yield tmp


@contextlib.contextmanager
def output_folder(path: str | Path, keep: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """The output folder of a command: when the command fails (an error, Ctrl-C, SIGTERM) and the folder did
    not exist before it, the folder is removed again, unless ``keep(path)`` says that what is in it is worth
    keeping (the finished clips of a resumable build)."""
    path = check_output_folder(path)
    made = [p for p in [*reversed(path.parents), path] if not p.exists()]
    try:
        yield path
    except BaseException:
        if made and path.exists() and not (keep is not None and keep(path)):
            shutil.rmtree(path, ignore_errors=True)
            _remove_empty(made[:-1])
        raise
