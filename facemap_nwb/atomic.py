"""Write output files all-or-nothing: under a temporary name beside the target, renamed when done."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_output", "check_output_path"]


def check_output_path(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Refuse an existing output unless ``overwrite``; return the path."""
    path = Path(path)
    if path.is_dir() and not path.suffix:
        raise IsADirectoryError(f"Output '{path}' is a folder; give a file name such as '{path / 'session.nwb'}'.")
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"Output '{path}' already exists. Choose another name, or pass --overwrite to replace it."
        )
    return path


_HOST = socket.gethostname().replace(".", "_").replace("-", "_")


def _remove_stale_partials(path: Path) -> None:
    """Remove temporary outputs of ``path`` left by processes of this machine that died (kill -9)."""
    prefix, suffix = f".{path.stem}.{_HOST}-", f".partial{path.suffix}"
    for candidate in path.parent.glob(f".{path.stem}.*.partial{path.suffix}"):
        name = candidate.name
        if not (name.startswith(prefix) and name.endswith(suffix)):
            continue  # another machine's: it may still be writing
        pid = name[len(prefix) : -len(suffix)]
        if pid.isdigit() and not _alive(int(pid)):
            _remove(candidate)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink()


@contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

    On any error the temporary file (or Zarr folder) is removed and ``path`` is left as it was, so
    no partial output is ever seen under the final name.
    """
    path = check_output_path(path, overwrite=overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(path)
    temporary = path.with_name(f".{path.stem}.{_HOST}-{os.getpid()}.partial{path.suffix}")
    _remove(temporary)
    try:
        yield temporary
        _publish(temporary, path, overwrite=overwrite)
    except BaseException:
        _remove(temporary)
        raise


def _publish(temporary: Path, path: Path, *, overwrite: bool) -> None:
    """Give the finished output its name; without ``overwrite`` never replace a file that appeared meanwhile."""
    if temporary.is_dir():  # a Zarr store: rename fails on an existing non-empty folder
        if path.exists() and overwrite:
            _remove(path)
        elif path.exists():
            raise FileExistsError(f"Output '{path}' appeared while it was being written; it was left as it is.")
        os.rename(temporary, path)
        return
    if overwrite:
        os.replace(temporary, path)  # atomic: the old file stays readable until the new one takes its name
        return
    try:
        os.link(temporary, path)  # fails if the name exists: no check-then-write race
    except FileExistsError:
        raise FileExistsError(f"Output '{path}' appeared while it was being written; it was left as it is.") from None
    except OSError:  # file systems without hard links
        if path.exists():
            raise FileExistsError(
                f"Output '{path}' appeared while it was being written; it was left as it is."
            ) from None
        os.replace(temporary, path)
        return
    temporary.unlink()
