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
from .nwb.pose import add_pose_estimation
from .nwb.recording import add_recording
from .pose import FacemapPose
from .results import FacemapResults
from .video import VideoRecording, probe_recording

__all__ = [
    "TaskOutput",
    "PoseOutput",
    "convert_facemap_output",
    "write_results_nwb",
    "write_session_nwb",
    "check_views",
    "check_pose",
    "pose_views",
]

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


@dataclass
class PoseOutput:
    """One video's Facemap keypoints for :func:`write_session_nwb`: ``view`` is the index, in the session's
    recordings, of the video they come from; ``name`` the ``PoseEstimation``'s name (``FacemapPose``, or
    ``FacemapPose_<video>`` when the file holds several)."""

    pose: FacemapPose
    view: int = 0
    name: str | None = None


def check_pose(pose: FacemapPose, recording: VideoRecording) -> None:
    """Refuse keypoints that cannot come from ``recording``: another frame count, or a bounding box or
    image size that does not fit its frames."""
    origin = f"the keypoints of '{pose.source_file}'" if pose.source_file else "the keypoints"
    if pose.frame_count != recording.frame_count:
        raise ValueError(
            f"{origin[0].upper()}{origin[1:]} cover {pose.frame_count} frames but the video "
            f"{[str(p) for p in recording.paths]} has {recording.frame_count}: pass the pose file Facemap made "
            "from this video (Facemap names it <video>_FacemapPose.h5)."
        )
    if pose.image_size is not None and pose.image_size != (recording.height, recording.width):
        raise ValueError(
            f"Facemap's metadata of {origin} says the video is {pose.image_size[1]}x{pose.image_size[0]} pixels, but "
            f"'{recording.paths[0]}' is {recording.width}x{recording.height}: they do not belong together."
        )
    if pose.bbox is not None and (pose.bbox[1] > recording.height or pose.bbox[3] > recording.width):
        raise ValueError(
            f"Facemap's bounding box {list(pose.bbox)} (rows, then columns) of {origin} lies outside the "
            f"{recording.width}x{recording.height} frames of '{recording.paths[0]}': they do not belong together."
        )


def pose_views(pose_files: Sequence[PathLike], recordings: Sequence[VideoRecording]) -> list[int]:
    """Which recording each pose file belongs to: the one whose first video Facemap named it after
    (``<video>_FacemapPose.h5``); with one recording, that one."""
    views = []
    for path in pose_files:
        stem = Path(path).name
        stem = stem[: -len("_FacemapPose.h5")] if stem.endswith("_FacemapPose.h5") else None
        matches = [i for i, r in enumerate(recordings) if stem is not None and Path(r.paths[0]).stem == stem]
        if len(matches) == 1:
            views.append(matches[0])
        elif len(recordings) == 1:
            views.append(0)
        else:
            names = [Path(r.paths[0]).name for r in recordings]
            raise ValueError(
                f"Cannot tell which of the videos {names} the pose file '{path}' belongs to: Facemap names it "
                "<video>_FacemapPose.h5 after its video; rename it so, or convert one camera at a time."
            )
    return views


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
    poses: Sequence[PoseOutput] = (),
) -> Path:
    """Write recordings and the results of one or more Facemap tasks into a new NWB file (validated,
    all-or-nothing). Each task is its own ``FacemapTask`` group (``FacemapTask_<task_id>`` when there are several).

    ``metadata`` is neuroconv-style: ``{"NWBFile": {...}, "Subject": {...}}``; the session start
    defaults to the first video's creation time. ``external_files`` (one list per recording) are the video
    paths to store, relative to the output's folder (where the videos lie in a Dandiset); by default each
    probed file's path relative to that folder. ``poses`` are Facemap keypoints, each written as an ndx-pose
    ``PoseEstimation`` linked to its video and camera.
    """
    output = check_output_path(output, overwrite=overwrite)
    if not tasks and not poses:
        raise ValueError("Give at least one task's results or one pose file.")
    for task in tasks:
        check_views(task.results, _task_views(task, recordings))
    for item in poses:
        if not 0 <= item.view < len(recordings):
            raise ValueError(f"A pose file's view {item.view} is not one of the {len(recordings)} recording(s).")
        check_pose(item.pose, recordings[item.view])

    def pose_name(item: PoseOutput) -> str:
        return item.name or (f"FacemapPose_{recordings[item.view].name}" if len(poses) > 1 else "FacemapPose")

    pose_names = [pose_name(item) for item in poses]
    for name in sorted({n for n in pose_names if pose_names.count(n) > 1}):
        files = [str(i.pose.source_file) for i, n in zip(poses, pose_names) if n == name]
        raise ValueError(
            f"The pose files {files} are all keypoints of the camera of '{name}': give one pose file per camera."
        )
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
    for item, name in zip(poses, pose_names):
        add_pose_estimation(
            nwbfile,
            item.pose,
            source_video=videos[item.view],
            device=nwbfile.devices.get(recordings[item.view].device),
            name=name,
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
    proc_file: PathLike | None,
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
    pose_files: Sequence[PathLike] = (),
    poses: Sequence[FacemapPose] | None = None,
) -> Path:
    """Convert a Facemap ``_proc.npy``/``_proc.mat`` (Python or MATLAB Facemap) and/or Facemap pose files
    (``<video>_FacemapPose.h5``), with the video(s) they came from, into a new NWB file.

    Parameters
    ----------
    proc_file : path or None
        Facemap's output (None: keypoints only).
    videos : path, list of paths, or list of lists of paths
        One camera's sequential files, or one list of files per simultaneous camera view.
    output : path
        The NWB file (``.nwb``; a ``.nwb.zarr`` folder with ``backend="zarr"``). Never replaced
        unless ``overwrite``; nothing is left behind on error.
    results : FacemapResults, optional
        ``proc_file`` already loaded with :func:`~facemap_nwb.loaders.facemap.load_facemap_results` (it is
        loaded here otherwise).
    pose_files : paths
        Facemap pose files, one per camera: each belongs to the camera whose first video it is named after
        (:func:`pose_views`); its metadata pickle is read from beside it.
    poses : list of FacemapPose, optional
        ``pose_files`` already loaded with :func:`~facemap_nwb.loaders.pose.read_facemap_pose`.
    """
    from .loaders.pose import read_facemap_pose

    check_output_path(output, overwrite=overwrite)
    if proc_file is None and not pose_files:
        raise ValueError("Give a Facemap results file (_proc.npy or _proc.mat) or a pose file (_FacemapPose.h5).")
    if proc_file is not None and results is None:
        results = load_facemap_results(proc_file)
    poses = [read_facemap_pose(p) for p in pose_files] if poses is None else list(poses)
    names = ["FaceCamera"] if len(_as_views(videos)) == 1 else None
    recordings = [
        probe_recording(files, name=names[0] if names else f"FaceCamera{i}")
        for i, files in enumerate(_as_views(videos))
    ]
    views = pose_views(pose_files, recordings) if pose_files else [0] * len(poses)
    tasks = []
    if results is not None:
        origin = f"Facemap results loaded from '{Path(proc_file).name}'." if proc_file is not None else None
        tasks.append(TaskOutput(results, task_id=task_id, task_mode="load", description=description or origin))
    return write_session_nwb(
        output,
        tasks,
        recordings,
        metadata=metadata,
        signals=signals,
        n_components=n_components,
        backend=backend,
        overwrite=overwrite,
        poses=[PoseOutput(pose, view) for pose, view in zip(poses, views)],
    )
