"""Sessions from files instead of a database: a YAML session spec, validated before any work starts, run
end to end (probe, process or load, write NWB, validate, plot), with results memoized per task.

A spec (all paths of videos and Facemap outputs relative to one of the root folders)::

    subject: {subject_id: m1, species: Mus musculus, sex: F, age: P60D}
    session:
      session_id: day1
      session_start_time: "2024-05-06T12:30:00+01:00"   # with a time zone
      session_description: Face camera during running.
      lab: My Lab
      institution: My Institute
      experimenter: ["Doe, Jane"]                         # optional
    paths: {roots: [/data/raw], processed: /data/processed, output: /data/dandiset}   # output optional
    videos: symlink                   # or hardlink, copy, move: how the videos get into the Dandiset
    recordings:
      - {name: FaceCamera, device: FaceCamera, files: [mouse1/day1/face_part1.mp4, mouse1/day1/face_part2.mp4]}
    tasks:
      - task_id: "0"
        mode: trigger                 # or load, with proc_file: mouse1/day1/face_proc.npy
        engine: native                # or facemap
        parameter_file: params.yaml   # or parameters: {...}; relative to the spec's folder
        roi_file: rois.yaml           # optional: ROIs (and parameters) from another file
        motion_svd: true              # optional overrides
        movie_svd: false
        description: Whiskers and pupil.
        recordings: [FaceCamera]      # optional: the task's camera views, in Facemap's order (all by default)
        pose_file: mouse1/day1/face_part1_FacemapPose.h5   # optional: Facemap keypoints of one of them

A session may hold several tasks (other parameters on the same video, a load task next to a trigger
task, another camera): they share the session's NWB file, where each task is its own group,
``processing["behavior"]["FacemapTask_<task_id>"]``, holding its run, views, regions, summary images and
signal series, none of which carries a suffix (see :mod:`facemap_nwb.nwb.facemap`; readers find tasks by
type and ``task_id``). A session with one task writes ``FacemapTask``. Each task gets its own summary PNG,
``<stem>_task-<task_id>.png`` beside the NWB file (``<stem>`` is the file's name up to ``.nwb``); a session
with one task writes one PNG, ``<stem>.png``, without the suffix.

Memoization (element-facemap's ``FacemapProcessing`` is computed once per task): each task's results
are kept in ``<processed>/<its first video's folder>/facemap_<task id>/results-<hash>.nwb``, where the
hash covers their inputs (parameters, engine, mode and each input file's path, size and modification
time; ``results-<hash>.json`` beside it lists them). A rerun with the same inputs reuses them, a change
recomputes, ``force`` recomputes anyway. The cache is content-addressed, so sessions whose videos share
a folder (and so a task folder) never take each other's results, even when a batch runs them at once;
results superseded for the same input files are removed when new ones are stored.

A task's ``pose_file`` (Facemap's ``<video>_FacemapPose.h5``, its ``_metadata.pkl`` read from beside it)
belongs to the task's camera whose first video it is named after (with one camera, to that camera; with
several, a name that matches none is refused); a session has one pose file per camera at most. It is read
and checked against that camera (frame count, frame size) before any task runs, and written as an ndx-pose
``PoseEstimation`` (``FacemapPose``; ``FacemapPose_<camera>`` when several tasks have one) linked to the
camera's ImageSeries. It is not part of the task's cached results, only of the session's file: a changed
pose file (or metadata pickle) rewrites the file without recomputing the task.

The session's NWB file is written as ``sub-<subject>_ses-<session>_behavior+image.nwb`` in
``<output>/sub-<subject>/`` (``output`` is the Dandiset folder, ``<processed>/nwb`` by default, kept apart
from the caches so that ``dandi validate`` sees only session files), all-or-nothing, with the summary PNG
beside it. ``<processed>/session_stamps/`` records what each NWB file was written from (the hash of every
task's inputs, the metadata and the files, and the file's identifier): a session is "current" when its NWB
file is the one stamped for today's spec and inputs, and a batch then skips it.

The Dandiset holds the videos too, in the layout of ``dandi organize --media-files-mode``
(:mod:`facemap_nwb.dandiset`): ``<output>/sub-<subject>/<stem>/<recording>_external_file_<n>.<ext>``
beside the NWB file, whose ``external_file`` paths (stored there only; ``VideoFiles`` rows point to them) are relative
to its folder. ``videos`` says how they get there: ``symlink`` (the default; nothing is duplicated),
``hardlink``, ``copy`` or ``move``; ``--videos`` on ``run`` and ``batch`` overrides it, and the mode is part of
what the file is stamped with. Videos are put in place once every task has its results, just before the
file is written; one already in place (the same link or inode, a copy of the same size and modification
time, a video moved there before) is kept, anything else there is replaced only with ``overwrite``. With
``move``, a rerun takes the videos from the Dandiset (they are no longer under their roots) and keys their
caches by their place there, so it reuses everything.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from .session_spec import SESSION_SCHEMA, SessionSpec, SpecError, TaskSpec, dandi_file_name, load_session_spec
from .task_cache import (
    _cached_results,
    _digest,
    _stamp,
    _stamped,
    _store_results,
    session_state,
    task_folder,
    task_inputs,
)

__all__ = [
    "SessionSpec",
    "SpecError",
    "load_session_spec",
    "run_session",
    "session_state",
    "SESSION_SCHEMA",
    "dandi_file_name",
    "TaskSpec",
]


@dataclass
class SessionResult:
    """What :func:`run_session` wrote: the NWB file, one summary PNG and one cache folder per task, which
    tasks reused their cached results, and the session's videos in the Dandiset."""

    nwb_path: Path
    summary_pngs: list[Path]
    task_folders: list[Path]
    reused_tasks: list[str]
    task_ids: list[str]
    videos: list[Path] = field(default_factory=list)  # the session's videos in the Dandiset

    @property
    def reused(self) -> bool:
        """Every task reused its cached results."""
        return len(self.reused_tasks) == len(self.task_ids)

    @property
    def summary_png(self) -> Path:
        return self.summary_pngs[0]

    @property
    def task_folder(self) -> Path:
        return self.task_folders[0]


def run_session(
    spec: SessionSpec | str | os.PathLike,
    *,
    force: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    backend: str | None = None,
    videos: str | None = None,
    session_start: datetime | None = None,
):
    """Run one session end to end; returns a :class:`SessionResult`. ``backend="zarr"`` writes NWB Zarr;
    ``videos`` (symlink, hardlink, copy or move) overrides the spec's ``videos``: how the videos get into the
    Dandiset beside the NWB file (:mod:`facemap_nwb.dandiset`); ``session_start`` (with a time zone) overrides
    the spec's ``session.session_start_time``."""
    from .atomic import check_output_path, check_writable_folder
    from .convert import TaskOutput, check_views, write_session_nwb
    from .dandiset import VIDEO_MODES, check_video_placement, place_videos
    from .engines import process_recordings
    from .loaders.facemap import load_facemap_results
    from .plot import plot_summary
    from .video import probe_recording

    if isinstance(spec, SessionSpec):
        if videos is not None and videos not in VIDEO_MODES:
            raise ValueError(f"Unknown video mode {videos!r}: choose one of {', '.join(VIDEO_MODES)}.")
        spec = replace(spec, videos=videos) if videos is not None else spec
        if session_start is not None:
            spec = replace(spec, session={**spec.session, "session_start_time": session_start.isoformat()})
    else:
        spec = load_session_spec(spec, videos=videos, session_start=session_start)
    if backend is not None:
        spec = replace(spec, backend=backend)
    several = len(spec.tasks) > 1
    ids = [t.task_id for t in spec.tasks]
    folders = [task_folder(spec, t) for t in spec.tasks]

    def plot(task: TaskSpec, again: bool) -> Path:
        png = spec.summary_path(task)
        if again or not png.exists():
            plot_summary(spec.nwb_path, png, task_id=task.task_id if several else None, overwrite=True)
        return png

    pairs = spec.video_pairs()
    targets = [t for _, t in pairs]
    if not (force or overwrite) and _stamped(spec):  # up to date: nothing to redo but a missing video or summary
        place_videos(pairs, spec.videos)
        return SessionResult(spec.nwb_path, [plot(t, False) for t in spec.tasks], folders, ids, ids, targets)
    check_writable_folder(spec.paths.processed_root, what="processed folder")  # caches and stamps
    nwb_path = check_output_path(spec.nwb_path, overwrite=overwrite)
    check_video_placement(pairs, spec.videos, overwrite=overwrite)  # before any work: what is there is kept
    # The native engine decodes every frame, which checks the count: count packets here (one decode, not
    # two). Load mode has no decode of its own, so the probe decodes to check the count.
    # Facemap's engine reads frames with OpenCV, which never says a file is damaged: decode those too.
    loaded = {
        i for task in spec.tasks if task.mode == "load" or task.engine == "facemap" for i in spec.task_views(task)
    }
    recordings = [
        probe_recording(r["files"], name=r["name"], device=r["device"], decode=i in loaded)
        for i, r in enumerate(spec.recordings)
    ]
    _check_parameters_fit(spec, recordings)
    poses = _session_poses(spec, recordings)  # read and checked before any task runs
    outputs, reused = [], []
    for task, folder in zip(spec.tasks, folders):
        views = [recordings[i] for i in spec.task_views(task)]
        inputs = task_inputs(task, spec.cache_recordings(task))
        digest = _digest(inputs)
        results = None if force else _cached_results(folder, digest)
        if results is not None:
            reused.append(task.task_id)
        elif task.mode == "load":
            results = load_facemap_results(task.proc_file)
            try:
                check_views(results, views)
            except ValueError as err:
                names = [r.name for r in views]
                hint = ""
                if len(spec.recordings) > 1:
                    hint = " In the spec, list the task's cameras under its 'recordings' key, in Facemap's order."
                raise ValueError(
                    f"Session spec '{spec.path}': task {task.task_id!r} on cameras {names}: {err}{hint}"
                ) from None
        else:
            options = {"progress": progress} if task.engine == "native" else {}
            results = process_recordings(views, task.parameters, engine=task.engine, **options)
        if task.task_id not in reused:
            cache_metadata = {"NWBFile": dict(spec.session), "Subject": dict(spec.subject)}
            cached = [_cached_recording(spec, recordings[i], i) for i in spec.task_views(task)]
            _store_results(folder, digest, inputs, results, cached, owner=str(spec.path), metadata=cache_metadata)
        description = task.description or None
        outputs.append(TaskOutput(results, task.task_id, task.mode, description, views=spec.task_views(task)))
    place_videos(pairs, spec.videos, overwrite=overwrite)  # once every task has its results
    if spec.videos == "move":  # the videos are in the Dandiset now: the stamp reads them there
        moved = [dict(r, files=spec.video_targets(i)) for i, r in enumerate(spec.recordings)]
        spec = replace(spec, recordings=moved)
    # The stamp goes first and names the new file's identifier: if this run dies before the file is
    # published, the stamp matches no file and the session is not taken as current.
    identifier = str(uuid.uuid4())
    _stamp(spec, identifier)
    metadata = {"NWBFile": {**spec.session, "identifier": identifier}, "Subject": dict(spec.subject)}
    external = [spec.external_files(i) for i in range(len(recordings))]  # the Dandiset's videos, relative
    write_session_nwb(
        nwb_path,
        outputs,
        recordings,
        metadata=metadata,
        overwrite=overwrite,
        backend=spec.backend,
        external_files=external,
        poses=poses,
    )
    return SessionResult(nwb_path, [plot(t, True) for t in spec.tasks], folders, reused, ids, targets)


def _session_poses(spec: SessionSpec, recordings) -> list:
    """Each task's pose file, read and checked against the camera it belongs to, as ``PoseOutput``."""
    from .convert import PoseOutput, check_pose, pose_views
    from .loaders.pose import read_facemap_pose

    poses, owners = [], {}
    for task in spec.tasks:
        if task.pose_file is None:
            continue
        views = spec.task_views(task)
        try:
            view = views[pose_views([task.pose_file], [recordings[i] for i in views])[0]]
            pose = read_facemap_pose(task.pose_file)
            check_pose(pose, recordings[view])
        except ValueError as err:
            raise ValueError(f"Session spec '{spec.path}': task {task.task_id!r}: {err}") from None
        if view in owners:
            raise SpecError(
                f"Session spec '{spec.path}': tasks {owners[view]!r} and {task.task_id!r} both give a pose_file for "
                f"the camera '{recordings[view].name}': give its keypoints in one task only."
            )
        owners[view] = task.task_id
        poses.append(PoseOutput(pose, view))
    if len(poses) > 1:
        poses = [replace(p, name=f"FacemapPose_{recordings[p.view].name}") for p in poses]
    return poses


def _cached_recording(spec: SessionSpec, recording, index: int):
    """The recording a task's cache names: with ``videos: move``, its files where they are once moved (the
    Dandiset), so that the cache never names a file that is gone; else as probed."""
    if spec.videos != "move":
        return recording
    files = tuple(replace(f, path=t) for f, t in zip(recording.files, spec.video_targets(index)))
    return replace(recording, files=files)


def _check_parameters_fit(spec: SessionSpec, recordings) -> None:
    """Before any task runs: each trigger task's spatial bin and ROIs fit its cameras' frames."""
    for index, task in enumerate(spec.tasks):
        if task.mode != "trigger":
            continue
        shapes = [(recordings[i].height, recordings[i].width) for i in spec.task_views(task)]
        try:
            task.parameters.check_views(shapes)
        except ValueError as err:
            raise SpecError(f"Session spec '{spec.path}': tasks.{index} (task {task.task_id!r}): {err}") from None
