"""Whole NWB files: create, write atomically, validate, read back."""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from pynwb import NWBHDF5IO, NWBFile
from pynwb.file import Subject

from ..atomic import GuardedFile, atomic_output, check_output_path, output_error, write_error_in
from ..video import VideoRecording
from .extension import NAMESPACE
from .extension import ndx_facemap as _ndx_facemap
from .pose import ndx_pose as _ndx_pose  # noqa: F401  (ndx-pose's classes for PoseEstimation, not generated ones)
from .recording import add_recording, read_recordings_from_nwbfile

#: The ndx-facemap format this facemap-nwb writes and reads.
FORMAT_VERSION = _ndx_facemap.FORMAT_VERSION

__all__ = [
    "NWBValidationError",
    "new_nwbfile",
    "write_nwbfile",
    "write_recordings_nwb",
    "read_recordings",
    "read_facemap_nwb",
    "read_facemap_task_ids",
    "validate_nwb",
]


class NWBValidationError(ValueError):
    """The written NWB file does not pass pynwb validation."""


def new_nwbfile(
    *,
    session_start_time: datetime,
    session_description: str = "Face camera recording.",
    identifier: str | None = None,
    session_id: str | None = None,
    subject: Subject | dict | None = None,
    **kwargs,
) -> NWBFile:
    """An empty NWBFile; ``session_start_time`` must carry a time zone."""
    if session_start_time.tzinfo is None:
        raise ValueError(
            f"session_start_time {session_start_time.isoformat()} has no time zone; give one, e.g. "
            "datetime(..., tzinfo=ZoneInfo('Europe/London'))."
        )
    if isinstance(subject, dict):
        subject = Subject(**subject)
    return NWBFile(
        session_description=session_description,
        identifier=identifier or str(uuid.uuid4()),
        session_start_time=session_start_time,
        session_id=session_id,
        subject=subject,
        **kwargs,
    )


def validate_nwb(path: str | os.PathLike) -> None:
    """Raise NWBValidationError listing pynwb's validation errors for the file, if any."""
    from pynwb import validate

    if Path(path).is_dir():
        with _open_io(Path(path)) as io:
            errors = validate(io=io)
    else:
        errors = _validate_with_loaded_namespaces(Path(path))
        if errors is None:
            errors = validate(path=str(path))
    if isinstance(errors, tuple):  # older pynwb returns (errors, status)
        errors = errors[0]
    if errors:
        listing = "; ".join(str(e) for e in errors[:10])
        raise NWBValidationError(f"NWB file '{path}' fails validation ({len(errors)} errors): {listing}")


def _validate_with_loaded_namespaces(path: Path) -> list | None:
    """Validate against the namespaces this process has loaded (core and ndx-facemap).

    The public ``pynwb.validate(path=...)`` first rebuilds every namespace cached in the file, which
    takes about a second; for a file this package just wrote they are the ones already loaded. Returns
    None when pynwb's helper is unavailable, so that the caller falls back to the public function.
    """
    try:
        from pynwb.validation import _validate_helper
    except ImportError:
        return None
    from .extension import NAMESPACE

    with NWBHDF5IO(str(path), mode="r", load_namespaces=False) as io:
        return _validate_helper(io=io, namespace="core") + _validate_helper(io=io, namespace=NAMESPACE)


BACKENDS = ("hdf5", "zarr")


def _configure(nwbfile: NWBFile, backend: str) -> None:
    """Chunk and compress the datasets through neuroconv's default backend configuration."""
    from neuroconv.tools.nwb_helpers import configure_backend, get_default_backend_configuration

    configure_backend(
        nwbfile=nwbfile, backend_configuration=get_default_backend_configuration(nwbfile, backend=backend)
    )


def write_nwbfile(
    nwbfile: NWBFile,
    path: str | os.PathLike,
    *,
    overwrite: bool = False,
    validate: bool = True,
    backend: str = "hdf5",
    configure: bool = True,
) -> Path:
    """Write ``nwbfile`` to ``path`` all-or-nothing, validated before it takes its final name.

    Parameters
    ----------
    nwbfile : NWBFile
        The file's contents.
    path : path
        The output; never replaced unless ``overwrite``.
    overwrite : bool
        Replace an existing output.
    validate : bool
        Validate the written file with pynwb before it takes its name.
    backend : {"hdf5", "zarr"}
        HDF5 file, or an NWB Zarr store (a folder; name it ``*.nwb.zarr``).
    configure : bool
        Chunk and compress datasets with neuroconv's default backend configuration.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        The output cannot be written (a full disk, a read-only or missing folder, ...): one message naming
        ``path``, the OS error and the fix. Nothing is left behind, and HDF5 is left in a sound state.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be 'hdf5' or 'zarr', not {backend!r}.")
    path = check_output_path(path, overwrite=overwrite)
    if configure:
        _configure(nwbfile, backend)
    with atomic_output(path, overwrite=overwrite) as temporary:
        if backend == "zarr":
            _write_zarr(nwbfile, temporary, path)
        else:
            _write_hdf5(nwbfile, temporary, path)
        if validate:
            validate_nwb(temporary)
    return path


def _write_hdf5(nwbfile: NWBFile, temporary: Path, path: Path) -> None:
    """Write an HDF5 NWB file through a :class:`GuardedFile`, so that HDF5 never sees a failed write.

    A failed write (or flush, or close) leaves HDF5 with ids of freed objects, and the interpreter then
    crashes at exit; through the guard HDF5 finishes and closes the file once, cleanly, and the error is
    raised afterwards as an :class:`OutputError` naming ``path``.
    """
    import h5py

    try:  # the raw-data chunk cache hdmf gives the files it opens itself
        from hdmf.backends.hdf5.h5tools import RDCC_NBYTES as chunk_cache
    except ImportError:
        chunk_cache = 32 * 2**20

    target = GuardedFile(temporary)
    try:
        with h5py.File(target, "w", rdcc_nbytes=chunk_cache) as h5file:
            with NWBHDF5IO(str(temporary), mode="w", file=h5file) as io:
                io.write(nwbfile)
    except Exception as err:
        target.close()
        failed = target.error or write_error_in(err, temporary)
        if failed is not None:
            raise output_error(path, failed) from err
        raise
    finally:
        target.close()  # once: closing again does nothing
    if target.error is not None:
        raise output_error(path, target.error) from target.error


def _write_zarr(nwbfile: NWBFile, temporary: Path, path: Path) -> None:
    """Write an NWB Zarr store; write errors (which hdmf-zarr wraps) are raised as an :class:`OutputError`."""
    from hdmf_zarr.nwb import NWBZarrIO

    try:
        with NWBZarrIO(str(temporary), mode="w") as io:
            io.write(nwbfile)
    except Exception as err:
        failed = write_error_in(err, temporary)
        if failed is not None:
            raise output_error(path, failed) from err
        raise


def write_recordings_nwb(
    path: str | os.PathLike,
    recordings: VideoRecording | Sequence[VideoRecording],
    *,
    session_start_time: datetime | None = None,
    overwrite: bool = False,
    **nwbfile_kwargs,
) -> Path:
    """Write one or more simultaneous camera recordings of a session to a new NWB file.

    Parameters
    ----------
    path : path
        The NWB file to write; never replaced unless ``overwrite``.
    recordings : VideoRecording or sequence of them
        One per camera.
    session_start_time : datetime, optional
        Defaults to the earliest creation time of the recordings' containers.
    overwrite : bool
        Replace an existing file.
    **nwbfile_kwargs
        Passed to :func:`new_nwbfile` (session_description, identifier, subject, ...).
    """
    if isinstance(recordings, VideoRecording):
        recordings = [recordings]
    if session_start_time is None:
        starts = [r.start_time for r in recordings if r.start_time is not None]
        if not starts:
            raise ValueError(
                "No video holds a creation time, so the session start is unknown: give session_start_time "
                "(--session-start in the CLI), with its time zone."
            )
        session_start_time = min(starts)
    nwbfile = new_nwbfile(session_start_time=session_start_time, **nwbfile_kwargs)
    path = Path(path)
    for recording in recordings:
        add_recording(nwbfile, recording, nwb_dir=path.parent)
    return write_nwbfile(nwbfile, path, overwrite=overwrite)


def read_recordings(path: str | os.PathLike) -> list[VideoRecording]:
    """The camera recordings stored in an NWB file (video paths resolved against its folder)."""
    path = Path(path)
    io = _open_for_reading(path)
    try:
        return read_recordings_from_nwbfile(_read(io, path), nwb_dir=path.parent)
    finally:
        io.close()


def _open_io(path: Path, mode: str = "r"):
    if path.is_dir():  # NWB Zarr stores are folders
        from hdmf_zarr.nwb import NWBZarrIO

        return NWBZarrIO(str(path), mode=mode, load_namespaces=True)
    return NWBHDF5IO(str(path), mode=mode, load_namespaces=True)


def _not_nwb(path: Path, err: BaseException) -> ValueError:
    reason = " ".join(str(err).split()) or type(err).__name__
    return ValueError(
        f"'{path}' is not a readable NWB file ({reason}). Give an .nwb file (or .nwb.zarr folder) that facemap-nwb "
        "or another NWB writer made."
    )


def _open_for_reading(path: Path):
    """Open an NWB file (HDF5 or Zarr) to read; whatever the file is, a failure is one ValueError naming it."""
    if not path.exists():
        raise FileNotFoundError(f"NWB file not found: '{path}'.")
    try:
        return _open_io(path)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:  # h5py, hdmf and zarr report these
        raise _not_nwb(path, err) from None


def _read(io, path: Path):
    try:
        return io.read()
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, AttributeError) as err:
        raise _not_nwb(path, err) from None


def _read_spec_versions(path: Path) -> list[str]:
    """The ndx-facemap versions an NWB file's cached specifications hold (empty when none is cached)."""
    try:
        if path.is_dir():
            import zarr

            group = zarr.open_group(str(path), mode="r")
            return sorted(group["specifications"][NAMESPACE].group_keys())
        import h5py

        with h5py.File(path, "r") as f:
            return sorted(f["specifications"][NAMESPACE].keys())
    except (OSError, KeyError, ValueError, TypeError, AttributeError):
        return []


def check_format_version(path: str | os.PathLike) -> None:
    """Refuse a file written in an ndx-facemap format this version cannot read (before 1.0: development
    formats), with a message naming the file, its version and the fix."""
    path = Path(path)
    versions = _read_spec_versions(path)
    old = [v for v in versions if v.split(".")[0].isdigit() and int(v.split(".")[0]) < 1]
    if old and not any(v.split(".")[0].isdigit() and int(v.split(".")[0]) >= 1 for v in versions):
        raise ValueError(
            f"'{path}' was written in ndx-facemap format {old[-1]}, a development format before 1.0 that this "
            f"facemap-nwb (format {FORMAT_VERSION}) does not read: convert the Facemap output again "
            "(facemap-nwb convert, or facemap-nwb run for a session spec)."
        )


def read_facemap_nwb(path: str | os.PathLike, *, task_id: str | None = None, lazy: bool = False):
    """The Facemap results of one task stored in an NWB file (HDF5 or Zarr), as a :class:`FacemapResults`.

    ``task_id`` picks the task when the file holds several (:func:`read_facemap_task_ids` lists them).

    With ``lazy=True`` the projections, masks and traces stay on disk as datasets (slice them to read)
    and the file stays open until ``results.close()``; otherwise every array is read into memory.
    The processing time and engine come from the task's run (element-facemap's ``get_loader_result``).
    """
    from .facemap import results_from_nwbfile

    path = Path(path)
    check_format_version(path)
    io = _open_for_reading(path)
    try:
        nwbfile = _read(io, path)
        results = results_from_nwbfile(nwbfile, task_id=task_id, lazy=lazy)
        results.keypoints = _keypoints(nwbfile, task_id=task_id)
    except ValueError as err:
        io.close()
        message = str(err)
        raise ValueError(message if str(path) in message else f"'{path}': {message}") from None
    except BaseException:
        io.close()
        raise
    if lazy:
        results.attach_io(io)
    else:
        io.close()
    return results


def _keypoints(nwbfile, *, task_id: str | None = None) -> list:
    """The file's Facemap keypoints; with a task (``task_id``, or the first), those of its views' videos only."""
    from .facemap import facemap_tasks
    from .pose import read_pose_estimations

    poses = read_pose_estimations(nwbfile)
    tasks = facemap_tasks(nwbfile)
    task = tasks.get(str(task_id)) if task_id is not None else next(iter(tasks.values()), None)
    if task is None:
        return poses
    videos = {view.video.name for view in task.views if getattr(view, "video", None) is not None}
    return [p for p in poses if p.video_name in videos]


def read_facemap_pose_nwb(path: str | os.PathLike) -> list:
    """Every Facemap pose estimation (ndx-pose ``PoseEstimation``) in an NWB file, as
    :class:`~facemap_nwb.pose.FacemapPose` (read into memory); an empty list when there is none. Works on
    files with keypoints only (no Facemap task)."""
    path = Path(path)
    check_format_version(path)
    io = _open_for_reading(path)
    try:
        from .pose import read_pose_estimations

        return read_pose_estimations(_read(io, path))
    finally:
        io.close()


def read_facemap_task_ids(path: str | os.PathLike) -> list[str]:
    """The ids of the Facemap tasks an NWB file (HDF5 or Zarr) holds."""
    from .facemap import facemap_task_ids

    path = Path(path)
    io = _open_for_reading(path)
    try:
        return facemap_task_ids(_read(io, path))
    finally:
        io.close()


def read_identifier(path: str | os.PathLike) -> str | None:
    """The ``identifier`` of an NWB file (HDF5 or Zarr), read directly (fast; no pynwb); None if unreadable."""
    import numpy as np

    path = Path(path)
    try:
        if path.is_dir():
            import zarr

            value = zarr.open_group(str(path), mode="r")["identifier"][...]
        else:
            import h5py

            with h5py.File(path, "r") as f:
                value = f["identifier"][()]
    except (OSError, KeyError, ValueError, TypeError):
        return None
    value = np.asarray(value).ravel()[0] if np.ndim(value) else value
    return value.decode() if isinstance(value, bytes) else str(value)
