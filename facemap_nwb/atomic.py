"""Write output files all-or-nothing: under a temporary name beside the target, renamed when done.

Every way a write can fail (a full disk, a read-only folder, a parent that is a file, a name the file
system or NWB refuses) ends in one :class:`OutputError` that names the output, the OS error and the
fix, and leaves nothing behind: no partial or temporary file, and no folder this module created.
:func:`check_output_path` and :func:`check_writable_folder` find what they can before any work starts,
by creating and removing a small probe file where the output will be written.

HDF5 must never see a failed write: when flushing or closing a file fails (a full disk, a quota), HDF5
keeps object ids that point at freed memory, and the interpreter crashes with a segmentation fault when
HDF5 closes them at exit (h5py issue 914). NWB files are therefore written through
:class:`GuardedFile`, whose writes never fail: it records the first error, keeps the rest of the file in
memory so that HDF5 still reads back what it wrote and closes cleanly, and the writer raises the error
once the file is closed.
"""

from __future__ import annotations

import errno as errnos
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

__all__ = [
    "OutputError",
    "GuardedFile",
    "atomic_output",
    "check_nwb_name",
    "check_output_path",
    "check_writable_folder",
    "output_error",
    "write_error_in",
]


class OutputError(OSError):
    """An output that cannot be written; the message names the output, the OS error and the fix.

    Parameters
    ----------
    message : str
        The whole message (one line).
    errno : int, optional
        The OS error number (``errno.ENOSPC``, ...).
    filename : str, optional
        The output.
    """

    def __init__(self, message: str, errno: int | None = None, filename: str | None = None):
        if errno is None:
            super().__init__(message)
        else:
            super().__init__(errno, os.strerror(errno))
        self.message = message
        self.filename = filename

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return type(self), (self.message, self.errno, self.filename)


# Errors that only a write can give: an OSError with one of these is about the output, wherever it arose.
_WRITE_ERRNOS = {errnos.ENOSPC, errnos.EDQUOT, errnos.EFBIG, errnos.EROFS}

_FIXES = {
    errnos.ENOSPC: "Free space on that disk or choose another {folder}.",
    errnos.EDQUOT: "Free space in your disk quota or choose another {folder}.",
    errnos.EFBIG: "The file is too large for that file system: choose another {folder}.",
    errnos.EROFS: "That file system is read-only: choose another {folder}.",
    errnos.EACCES: "Choose a folder you may write to, or change its permissions.",
    errnos.EPERM: "Choose a folder you may write to, or change its permissions.",
    errnos.ENAMETOOLONG: "Choose a shorter file name.",
    errnos.ENOTDIR: "Give a path inside a folder.",
    errnos.EISDIR: "Give a file name, not a folder.",
}


def output_error(path: str | os.PathLike, error: OSError | int, *, what: str = "") -> OutputError:
    """The :class:`OutputError` for an OS error met while writing ``path``.

    Parameters
    ----------
    path : path
        The output (the final name, not the temporary one).
    error : OSError or int
        The error, or its errno.
    what : str, optional
        What the path is ("processed folder", ...); the message then reads "Cannot write into the ...".

    Returns
    -------
    OutputError
        With a message such as "Cannot write 'out.nwb': No space left on device (errno 28). Free space
        on that disk or choose another output folder."
    """
    if isinstance(error, OutputError):
        return error
    number = error if isinstance(error, int) else error.errno
    if number is None:  # an OSError without errno: its text is all there is
        reason = " ".join(str(error).split())
    else:
        reason = f"{os.strerror(number)} (errno {number})"
    fix = _FIXES.get(number, "Check that folder, or choose another {folder}.").format(folder=what or "output folder")
    target = f"into the {what} '{path}'" if what else f"'{path}'"
    return OutputError(f"Cannot write {target}: {reason}. {fix}", number, str(path))


def write_error_in(error: BaseException, temporary: str | os.PathLike | None = None) -> OSError | None:
    """The OS error of a failed write in ``error`` or its causes (hdmf wraps them), or None.

    An OSError counts when its errno can only come from a write (no space, quota, file too large,
    read-only file system) or when it names ``temporary`` or a file inside it (a Zarr store).
    """
    prefix = os.path.abspath(temporary) if temporary is not None else None
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError):
            name = error.filename
            named = isinstance(name, (str, os.PathLike)) and prefix is not None
            named = named and os.path.abspath(str(name)).startswith(prefix)
            if isinstance(error, OutputError) or error.errno in _WRITE_ERRNOS or named:
                return error
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return None


_HOST = socket.gethostname().replace(".", "_").replace("-", "_")


def _temporary_path(path: Path) -> Path:
    """The temporary name of an output, beside it: ``.<stem>.<host>-<pid>.partial<suffix>``."""
    return path.with_name(f".{path.stem}.{_HOST}-{os.getpid()}.partial{path.suffix}")


def check_nwb_name(name: str, what: str = "name") -> str:
    """Refuse a name that NWB objects cannot carry (hdmf refuses '/' and ':'; HDF5 refuses '.' and '').

    Parameters
    ----------
    name : str
        The name of an NWB object: a recording (ImageSeries), a camera, an ROI, a task id.
    what : str
        What the name is, for the message ("recording name (--name)", ...).

    Returns
    -------
    str
        ``name``.

    Raises
    ------
    ValueError
        Naming the value, the character and a fix.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"The {what} {name!r} is empty; give a name such as 'FaceCamera'.")
    if name in (".", ".."):
        raise ValueError(f"The {what} {name!r} cannot be used as an NWB name; give a name such as 'FaceCamera'.")
    for character in ("/", ":", "\0"):
        if character in name:
            fixed = name.replace(character, "_")
            raise ValueError(
                f"The {what} {name!r} contains {character!r}, which NWB names cannot hold; use e.g. {fixed!r}."
            )
    return name


def _nearest_existing(path: Path) -> tuple[Path, list[Path]]:
    """The nearest existing ancestor of ``path`` (itself included) and the missing folders below it."""
    missing = []
    while not os.path.lexists(path) and path.parent != path:
        missing.append(path)
        path = path.parent
    return path, missing[::-1]


def _probe(folder: Path, name: str) -> None:
    """Create, fill and remove a small file named ``name`` in ``folder``: proof that a file can be written there.

    ``os.access`` is not enough: root ignores permissions, while read-only mounts and full disks do not.
    """
    probe = folder / name
    if os.path.isdir(probe):  # a stale temporary Zarr store of a dead process with our pid
        shutil.rmtree(probe, ignore_errors=True)
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0), 0o600)
    try:
        try:
            os.write(fd, b"\0" * 4096)
        finally:
            os.close(fd)
    finally:
        with suppress(OSError):  # the error that matters is the write's
            os.unlink(probe)


def _check_folder_chain(path: Path, folder: Path, probe_name: str, what: str) -> None:
    """Check that ``folder`` (the one that receives the output) is, or can become, a writable folder."""
    base, missing = _nearest_existing(folder)
    if not base.is_dir():
        reason = f"its parent '{base}' is a file" if what else f"the output's parent '{base}' is a file"
        target = f"into the {what} '{path}'" if what else f"'{path}'"
        raise OutputError(
            f"Cannot write {target}: {reason} (errno {errnos.ENOTDIR}, {os.strerror(errnos.ENOTDIR)}). "
            "Give a path inside a folder, or move that file away.",
            errnos.ENOTDIR,
            str(path),
        )
    try:
        limit = os.pathconf(base, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in [m.name for m in missing] + [probe_name]:
        if len(os.fsencode(part)) > limit:
            raise output_error(path, errnos.ENAMETOOLONG, what=what)
    _probe(base, probe_name)


def _check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    """The checks of :func:`check_output_path` that write nothing."""
    path = Path(path)
    if path.name in ("", ".", "..") or "\0" in str(path):
        raise OutputError(
            f"Cannot write {str(path)!r}: it is not a file name. Give a file name such as 'session.nwb'.",
            errnos.EINVAL,
            str(path),
        )
    try:
        if path.is_dir() and not path.suffix:
            raise IsADirectoryError(f"Output '{path}' is a folder; give a file name such as '{path / 'session.nwb'}'.")
        if path.exists() and not overwrite:
            raise FileExistsError(
                f"Output '{path}' already exists. Choose another name, or pass --overwrite to replace it."
            )
    except (IsADirectoryError, FileExistsError):
        raise
    except OSError as err:  # stat refused: a folder we may not enter, ...
        raise output_error(path, err) from None
    return path


def check_output_path(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Check, before any work starts, that ``path`` can be written; return it.

    Refuses an existing output unless ``overwrite``, a folder, a name that is not a file name, an output
    whose parent (or an ancestor) is a file, and a folder where no file can be written (read-only, full,
    no permission, name too long): a probe file with the temporary file's name is created, filled with
    4 KiB and removed. Missing parent folders are not created here (:func:`atomic_output` creates them,
    and removes them again if the write fails).

    Parameters
    ----------
    path : path
        The output file (or NWB Zarr folder).
    overwrite : bool
        Allow replacing an existing output.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        Naming the output, the OS error and the fix (an ``OSError``).
    FileExistsError, IsADirectoryError
        For an existing output (without ``overwrite``) or a folder.
    """
    path = _check_target(path, overwrite)
    try:
        _check_folder_chain(path, path.parent, _temporary_path(path).name, "")
    except OutputError:
        raise
    except OSError as err:
        raise output_error(path, err) from None
    return path


def check_writable_folder(path: str | os.PathLike, *, what: str = "folder") -> Path:
    """Check, before any work starts, that files can be written into the folder ``path``; return it.

    The folder need not exist (then its nearest existing ancestor must be a writable folder; nothing is
    created). Its parents must not be files.

    Parameters
    ----------
    path : path
        The folder that will receive files (a processed-data folder, an output folder).
    what : str
        What the folder is, for the message ("processed folder", "output folder", ...).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        Naming the folder, the OS error and the fix (an ``OSError``).
    """
    path = Path(path)
    try:
        if os.path.lexists(path) and not path.is_dir():
            raise OutputError(
                f"Cannot write into the {what} '{path}': it is a file (errno {errnos.ENOTDIR}, "
                f"{os.strerror(errnos.ENOTDIR)}). Choose a folder, or move that file away.",
                errnos.ENOTDIR,
                str(path),
            )
        _check_folder_chain(path, path, f".facemap_nwb.{_HOST}-{os.getpid()}.partial.probe", what)
    except OutputError:
        raise
    except OSError as err:
        raise output_error(path, err, what=what) from None
    return path


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
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        path.unlink()


def _make_parents(path: Path) -> list[Path]:
    """Create the missing folders above ``path``; return those created, outermost first."""
    _, missing = _nearest_existing(path.parent)
    created = []
    try:
        for folder in missing:
            try:
                folder.mkdir()
            except FileExistsError:  # made meanwhile by another process: not ours to remove
                if not folder.is_dir():
                    raise
                continue
            created.append(folder)
    except OSError as err:
        _remove_empty(created)
        raise output_error(path, err) from None
    return created


def _remove_empty(folders: list[Path]) -> None:
    """Remove the folders we created, innermost first, where they are still empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:  # not empty (another writer) or gone
            return


@contextmanager
def atomic_output(path: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``path``.

    On any error the temporary file (or Zarr folder) is removed, the folders created for it are removed
    when empty, and ``path`` is left as it was, so no partial output is ever seen under the final name.
    A write error (an OSError that only a write gives, or one naming the temporary path) is raised as an
    :class:`OutputError` naming ``path``.
    """
    path = _check_target(path, overwrite)
    created = _make_parents(path)
    temporary = _temporary_path(path)
    try:
        _remove_stale_partials(path)
        _remove(temporary)
        yield temporary
        _publish(temporary, path, overwrite=overwrite)
    except BaseException as err:
        try:
            _remove(temporary)
        except OSError:  # nothing was written there (a read-only folder): nothing to remove
            pass
        _remove_empty(created)
        failed = write_error_in(err, temporary) if isinstance(err, Exception) else None
        if failed is not None and not isinstance(err, OutputError):
            raise output_error(path, failed) from err
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


def _pread(fd: int, size: int, offset: int) -> bytes:
    if hasattr(os, "pread"):
        return os.pread(fd, size, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows
    return os.read(fd, size)


def _pwrite(fd: int, data, offset: int) -> int:
    if hasattr(os, "pwrite"):
        return os.pwrite(fd, data, offset)
    os.lseek(fd, offset, os.SEEK_SET)  # Windows
    return os.write(fd, data)


_OPEN_FLAGS = os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


class GuardedFile:
    """A read-write binary file, for HDF5's ``fileobj`` driver, whose writes never fail.

    The first OS error of a write, truncate, sync or close is kept in :attr:`error` instead of raised.
    From then on the bytes written are kept in memory (in pages of 64 KiB over what the disk holds), so
    that HDF5 reads back exactly what it wrote and finishes and closes the file in a consistent state;
    the caller then removes the file and reports :attr:`error`. The memory held is at most what remains
    to be written after the failure, and is released by :meth:`close`.

    Reads beyond the end return zeros, as HDF5's default (sec2) driver does.

    Parameters
    ----------
    path : path
        The file to create (truncated if it exists).
    """

    PAGE = 1 << 16

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.error: OSError | None = None
        self._fd: int | None = os.open(self.path, _OPEN_FLAGS, 0o666)
        self._position = 0
        self._size = 0  # the file's length as its writer sees it
        self._pages: dict[int, bytearray] | None = None  # after a failure: the pages written since
        self._disk_size = 0  # after a failure: bytes of the disk file that hold what was written

    def __repr__(self) -> str:
        # h5py names a file opened from a file object by this repr: the path, so that hdmf's ``source`` (and
        # the relative paths of external links it makes) is the file's, as with a file opened by name.
        return os.fspath(self.path)

    def __enter__(self) -> GuardedFile:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._fd is None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move to ``offset`` (from the start, the current position or the end); return the position."""
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._position, os.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def _fail(self, error: OSError) -> None:
        if self.error is None:
            self.error = error
        if self._pages is None:
            self._pages = {}
            self._disk_size = self._size

    def _disk_read(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from the disk file at ``offset`` (fewer at its end)."""
        chunks, done = [], 0
        while done < size:
            try:
                chunk = _pread(self._fd, size - done, offset + done)
            except OSError as err:  # unreadable: what it held is lost, and so is the output
                self._fail(err)
                break
            if not chunk:
                break
            chunks.append(chunk)
            done += len(chunk)
        return b"".join(chunks)

    def _page(self, index: int) -> bytes | bytearray:
        """A page after a failure: from memory if written since, else from the disk (zeros beyond)."""
        page = self._pages.get(index)
        if page is not None:
            return page
        start = index * self.PAGE
        data = self._disk_read(start, max(0, min(self.PAGE, self._disk_size - start)))
        return data + bytes(self.PAGE - len(data))

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes from the position (zeros beyond the end); all the rest when ``size`` < 0."""
        if size is None or size < 0:
            size = max(0, self._size - self._position)
        start, end = self._position, self._position + size
        if self._pages is None:
            data = self._disk_read(start, max(0, min(end, self._size) - start))
            data += bytes(size - len(data))
        else:
            parts = []
            for index in range(start // self.PAGE, (end - 1) // self.PAGE + 1 if size else start // self.PAGE):
                base = index * self.PAGE
                parts.append(bytes(self._page(index)[max(start, base) - base : min(end, base + self.PAGE) - base]))
            data = b"".join(parts)
            if end > self._size:  # zeros beyond the end, whatever a page holds there
                keep = max(0, self._size - start)
                data = data[:keep] + bytes(size - keep)
        self._position = end
        return data

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def write(self, data) -> int:
        """Write ``data`` at the position; never raises an OSError (see the class doc)."""
        view = memoryview(data).cast("B")
        start = self._position
        if self._pages is None:
            done = 0
            try:
                while done < len(view):
                    done += _pwrite(self._fd, view[done:], start + done)
            except OSError as err:
                self._fail(err)
        if self._pages is not None:
            self._keep(start, view)
        self._position = start + len(view)
        self._size = max(self._size, self._position)
        return len(view)

    def _keep(self, start: int, view: memoryview) -> None:
        """Keep ``view`` in memory pages from ``start`` (after a failure)."""
        end, offset = start + len(view), start
        while offset < end:
            index, within = divmod(offset, self.PAGE)
            page = self._pages.get(index)
            if page is None:
                page = self._pages[index] = bytearray(self._page(index))
            count = min(self.PAGE - within, end - offset)
            page[within : within + count] = view[offset - start : offset - start + count]
            offset += count

    def truncate(self, size: int | None = None) -> int:
        """Make the file ``size`` bytes long (the position by default); return ``size``."""
        size = self._position if size is None else size
        if self._pages is None:
            try:
                os.ftruncate(self._fd, size)
            except OSError as err:
                self._fail(err)
        if self._pages is not None:
            self._disk_size = min(self._disk_size, size)
            index, within = divmod(size, self.PAGE)
            for stale in [i for i in self._pages if i > index or (i == index and within == 0)]:
                del self._pages[stale]
            if within and index in self._pages:
                self._pages[index][within:] = bytes(self.PAGE - within)
        self._size = size
        return size

    def flush(self) -> None:
        """Nothing to do: every write goes to the operating system at once."""

    def close(self) -> None:
        """Sync the file to disk and close it (errors go to :attr:`error`); release the memory pages."""
        if self._fd is None:
            return
        if self._pages is None:
            try:
                os.fsync(self._fd)
            except OSError as err:  # a network file system or a quota may say only now
                self._fail(err)
        try:
            os.close(self._fd)
        except OSError as err:
            self._fail(err)
        self._fd, self._pages = None, None
