"""Load mode end to end: a Facemap output plus its video(s) into one validated NWB file."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .atomic import check_output_path
from .loaders.facemap import load_facemap_results
from .nwb.facemap import SIGNALS, add_facemap_results
from .nwb.io import new_nwbfile, write_nwbfile
from .nwb.recording import add_recording
from .results import FacemapResults
from .video import VideoRecording, probe_recording

__all__ = ["TaskOutput", "convert_facemap_output", "write_results_nwb", "write_session_nwb", "check_views"]

PathLike = str | os.PathLike


def _as_views(videos: PathLike | Sequence[PathLike] | Sequence[Sequence[PathLike]]) -> list[list[PathLike]]:
    if isinstance(videos, (str, os.PathLike)):
        return [[videos]]
    videos = list(videos)
    if videos and all(isinstance(v, (str, os.PathLike)) for v in videos):
        return [videos]
    return [list(v) for v in videos]


def check_views(results: FacemapResults, recordings: Sequence[VideoRecording]) -> None:
    """Refuse videos that cannot be the ones the results came from, and results no Facemap run makes.

    Checks the count of views, the frame count and each frame size against the videos, then every
    array of the results against those views (:meth:`FacemapResults.validate`: shapes, data types,
    finite values, ROIs and bin ranges inside the frames), so nothing impossible is written.

    Raises
    ------
    ValueError
        Naming the video or the results file, the value at fault and the fix.
    """
    origin = f" (the results of '{results.source_file}')" if results.source_file else ""
    if results.view_shapes and len(recordings) != len(results.view_shapes):
        raise ValueError(
            f"The results come from {len(results.view_shapes)} simultaneous camera view(s) but {len(recordings)} "
            f"video recording(s) were given{origin}: pass one --video per view, in Facemap's order."
        )
    for index, recording in enumerate(recordings):
        results.check_frame_count(recording.frame_count, what=f"the video {[str(p) for p in recording.paths]}")
        if results.view_shapes:
            height, width = results.view_shapes[index]
            if (recording.height, recording.width) != (height, width):
                raise ValueError(
                    f"The results' view {index} is {width}x{height} pixels but the video '{recording.paths[0]}' is "
                    f"{recording.width}x{recording.height}: they do not belong together{origin}."
                )
    results.validate([(r.height, r.width) for r in recordings])


@dataclass
class TaskOutput:
    """One Facemap task's results for :func:`write_session_nwb`.

    ``views`` are the indexes, in the session's recordings, of the task's camera views in Facemap's
    order (all recordings by default).
    """

    results: FacemapResults
    task_id: str = "0"
    task_mode: str = "load"
    description: str | None = None
    views: Sequence[int] | None = None


def write_session_nwb(
    output: PathLike,
    tasks: Sequence[TaskOutput],
    recordings: Sequence[VideoRecording],
    *,
    metadata: dict | None = None,
    signals: Iterable[str] = SIGNALS,
    n_components: int | None = None,
    backend: str = "hdf5",
    overwrite: bool = False,
    external_files: Sequence[Sequence[str]] | None = None,
) -> Path:
    """Write recordings and the results of one or more Facemap tasks into a new NWB file (validated,
    all-or-nothing). Each task is its own ``FacemapTask`` group (``FacemapTask_<task_id>`` when there are several).

    ``metadata`` is neuroconv-style: ``{"NWBFile": {...}, "Subject": {...}}``; the session start
    defaults to the first video's creation time. ``external_files`` (one list per recording) are the video
    paths to store, relative to the output's folder (where the videos lie in a Dandiset); by default each
    probed file's path relative to that folder.
    """
    output = check_output_path(output, overwrite=overwrite)
    if not tasks:
        raise ValueError("Give at least one task's results.")
    for task in tasks:
        check_views(task.results, _task_views(task, recordings))
    metadata = metadata or {}
    nwbfile_kwargs = dict(metadata.get("NWBFile", {}))
    start = nwbfile_kwargs.pop("session_start_time", None)
    if isinstance(start, str):
        start = datetime.fromisoformat(start)
    start = start or next((r.start_time for r in recordings if r.start_time), None)
    if start is None:
        raise ValueError(
            f"No video holds a creation time, so the session start of '{output}' is unknown: pass --session-start "
            "(e.g. 2024-05-06T12:30:00+01:00), or set NWBFile.session_start_time in the metadata file "
            "(session.session_start_time in a session spec)."
        )
    nwbfile_kwargs.setdefault("session_description", "Face video and its Facemap analysis.")
    nwbfile = new_nwbfile(session_start_time=start, subject=metadata.get("Subject"), **nwbfile_kwargs)
    if external_files is not None and len(external_files) != len(recordings):
        raise ValueError(
            f"Give one list of external files per recording ({len(recordings)}), not {len(external_files)}."
        )
    paths = list(external_files) if external_files is not None else [None] * len(recordings)
    videos = [add_recording(nwbfile, r, nwb_dir=output.parent, external_file=p) for r, p in zip(recordings, paths)]
    for task in tasks:
        add_facemap_results(
            nwbfile,
            task.results,
            videos=_task_views(task, videos),
            task_id=task.task_id,
            task_mode=task.task_mode,
            description=task.description,
            signals=signals,
            n_components=n_components,
            name=f"FacemapTask_{task.task_id}" if len(tasks) > 1 else None,
        )
    return write_nwbfile(nwbfile, output, overwrite=overwrite, backend=backend)


def _task_views(task: TaskOutput, items: Sequence) -> list:
    return list(items) if task.views is None else [items[i] for i in task.views]


def write_results_nwb(
    output: PathLike,
    results: FacemapResults,
    recordings: Sequence[VideoRecording],
    *,
    metadata: dict | None = None,
    task_id: str = "0",
    task_mode: str = "load",
    description: str | None = None,
    signals: Iterable[str] = SIGNALS,
    n_components: int | None = None,
    backend: str = "hdf5",
    overwrite: bool = False,
) -> Path:
    """Write recordings and one task's Facemap results into a new NWB file (validated, all-or-nothing).

    ``metadata`` is neuroconv-style: ``{"NWBFile": {...}, "Subject": {...}}``; the session start
    defaults to the first video's creation time.
    """
    task = TaskOutput(results, task_id=task_id, task_mode=task_mode, description=description)
    return write_session_nwb(
        output,
        [task],
        recordings,
        metadata=metadata,
        signals=signals,
        n_components=n_components,
        backend=backend,
        overwrite=overwrite,
    )


def convert_facemap_output(
    proc_file: PathLike,
    videos: PathLike | Sequence[PathLike] | Sequence[Sequence[PathLike]],
    output: PathLike,
    *,
    metadata: dict | None = None,
    task_id: str = "0",
    description: str | None = None,
    signals: Iterable[str] = SIGNALS,
    n_components: int | None = None,
    backend: str = "hdf5",
    overwrite: bool = False,
    results: FacemapResults | None = None,
) -> Path:
    """Convert a Facemap ``_proc.npy``/``_proc.mat`` and the video(s) it came from into a new NWB file.

    Parameters
    ----------
    proc_file : path
        Facemap's output.
    videos : path, list of paths, or list of lists of paths
        One camera's sequential files, or one list of files per simultaneous camera view.
    output : path
        The NWB file (``.nwb``; a ``.nwb.zarr`` folder with ``backend="zarr"``). Never replaced
        unless ``overwrite``; nothing is left behind on error.
    results : FacemapResults, optional
        ``proc_file`` already loaded with :func:`~facemap_nwb.loaders.facemap.load_facemap_results` (it is
        loaded here otherwise).
    """
    check_output_path(output, overwrite=overwrite)
    results = load_facemap_results(proc_file) if results is None else results
    names = ["FaceCamera"] if len(_as_views(videos)) == 1 else None
    recordings = [
        probe_recording(files, name=names[0] if names else f"FaceCamera{i}")
        for i, files in enumerate(_as_views(videos))
    ]
    return write_results_nwb(
        output,
        results,
        recordings,
        metadata=metadata,
        task_id=task_id,
        task_mode="load",
        description=description or f"Facemap results loaded from '{Path(proc_file).name}'.",
        signals=signals,
        n_components=n_components,
        backend=backend,
        overwrite=overwrite,
    )
