"""Session specs: the YAML file that names a session's subject, folders, cameras and Facemap tasks, checked
against its declared schema (:class:`facemap_nwb.models.SessionModel`) and against the disk before any work
starts. The format is described in :mod:`facemap_nwb.session`.

Every path a spec names must resolve inside the place it belongs: videos and Facemap outputs (``files``,
``proc_file``) inside one of ``paths.roots`` (after ``..`` and symbolic links are followed), parameter and
ROI files inside the spec's own folder or a root. Anything else is refused naming the key.

The session's videos go into the Dandiset beside its NWB file (:mod:`facemap_nwb.dandiset`) as ``videos``
says (``symlink`` by default, ``hardlink``, ``copy`` or ``move``). With ``move``, a video that an earlier run
moved is no longer under its root: it is then taken from the Dandiset, and its cache key stays the same.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from .dandiset import (
    DANDI_VIDEO_EXTENSIONS,
    DEFAULT_VIDEO_MODE,
    VIDEO_MODES,
    media_folder,
    video_file_name,
    video_label,
)
from .inputs import InputError, read_user_file, validate
from .models import ParametersModel, SessionModel, session_json_schema
from .params import FacemapParameters
from .paths import DataPaths

__all__ = ["SessionSpec", "TaskSpec", "SpecError", "load_session_spec", "SESSION_SCHEMA", "dandi_file_name"]


class SpecError(InputError):
    """A session spec that cannot be run: names the spec file, the key and the fix."""


# The JSON schema of session specs (``facemap-nwb schema``; committed as schemas/session.schema.json).
SESSION_SCHEMA = session_json_schema()


@dataclass
class TaskSpec:
    task_id: str
    mode: str
    engine: str
    parameters: FacemapParameters
    proc_file: Path | None
    description: str
    views: list[int] | None = None  # the task's cameras: indexes in the session's recordings (None: all)
    pose_file: Path | None = None  # Facemap pose keypoints of one of the task's cameras


@dataclass
class SessionSpec:
    path: Path
    subject: dict
    session: dict
    paths: DataPaths
    recordings: list[dict]  # name, device, files (full paths), relative (each file's path relative to its root)
    tasks: list[TaskSpec] = field(default_factory=list)
    output: Path | None = None  # the Dandiset folder; <processed>/nwb by default
    backend: str = "hdf5"  # "zarr" writes <name>.nwb.zarr
    videos: str = DEFAULT_VIDEO_MODE  # how the videos get into the Dandiset: symlink, hardlink, copy or move

    @property
    def nwb_path(self) -> Path:
        root = self.output or self.paths.processed_root / "nwb"
        folder = root / f"sub-{_dandi_label(self.subject['subject_id'])}"
        name = dandi_file_name(self.subject["subject_id"], self.session["session_id"])
        return folder / (name + ".zarr" if self.backend == "zarr" else name)

    def summary_path(self, task: TaskSpec) -> Path:
        """The task's summary PNG beside the NWB file (``..._task-<id>.png`` when the session has several)."""
        suffix = f"_task-{task.task_id}" if len(self.tasks) > 1 else ""
        return self.nwb_path.parent / (self.nwb_path.name.split(".nwb")[0] + suffix + ".png")

    def task_views(self, task: TaskSpec) -> list[int]:
        return list(range(len(self.recordings))) if task.views is None else list(task.views)

    def task_recordings(self, task: TaskSpec) -> list[dict]:
        return [self.recordings[i] for i in self.task_views(task)]

    @property
    def media_folder(self) -> Path:
        """The folder of the session's videos in the Dandiset: beside the NWB file, named as it up to ``.nwb``."""
        return media_folder(self.nwb_path)

    def video_targets(self, index: int) -> list[Path]:
        """Where the files of recording ``index`` go in the Dandiset."""
        recording = self.recordings[index]
        return [
            self.media_folder / video_file_name(recording["name"], j, Path(f).suffix)
            for j, f in enumerate(recording["files"])
        ]

    def video_pairs(self) -> list[tuple[Path, Path]]:
        """``(file, its place in the Dandiset)`` for every video of the session."""
        return [(f, t) for i, r in enumerate(self.recordings) for f, t in zip(r["files"], self.video_targets(i))]

    def external_files(self, index: int) -> list[str]:
        """The ``external_file`` paths of recording ``index``: its Dandiset files, relative to the NWB file."""
        return [t.relative_to(self.nwb_path.parent).as_posix() for t in self.video_targets(index)]

    def cache_recordings(self, task: TaskSpec) -> list[dict]:
        """The task's recordings with the name each file has in cache keys (``keys``): its path, or with
        ``videos: move`` its place in the Dandiset, which stays the same before and after the move."""
        return [
            dict(
                self.recordings[i], keys=self.video_targets(i) if self.videos == "move" else self.recordings[i]["files"]
            )
            for i in self.task_views(task)
        ]

    @property
    def stamp_path(self) -> Path:
        """What the session's NWB file was written from: ``<processed>/session_stamps/<file>-<hash>.json``."""
        key = hashlib.sha256(str(self.nwb_path).encode()).hexdigest()[:12]
        return self.paths.processed_root / "session_stamps" / f"{self.nwb_path.name}-{key}.json"


def _dandi_label(value: str) -> str:
    """DANDI's entity labels allow letters, digits and dashes only."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", str(value)).strip("-") or "unknown"


def dandi_file_name(subject_id: str, session_id: str) -> str:
    """``sub-<subject>_ses-<session>_behavior+image.nwb``, DANDI's convention for behaviour with video."""
    return f"sub-{_dandi_label(subject_id)}_ses-{_dandi_label(session_id)}_behavior+image.nwb"


def _error(spec: Path, key: str, problem: str, fix: str) -> SpecError:
    return SpecError(f"Session spec '{spec}': {key}: {problem}. {fix}")


def _read(path: Path, what: str, spec: Path, key: str):
    """A file the spec names, read within the limits of its kind; errors name the spec's key too."""
    try:
        return read_user_file(path, what)
    except FileNotFoundError:
        raise _error(
            spec, key, f"{what} '{path}' does not exist", "Fix the path (relative to the spec's folder)."
        ) from None
    except InputError as err:
        raise SpecError(f"Session spec '{spec}': {key}: {err}") from None


def _beside(spec: Path, relative: str, paths: DataPaths, key: str) -> Path:
    """A parameter or ROI file: relative to the spec's folder, and inside that folder or a root."""
    path = (spec.parent / relative).resolve()
    allowed = [spec.parent, *paths.roots]
    if not any(path.is_relative_to(folder) for folder in allowed):
        raise _error(
            spec,
            key,
            f"'{relative}' leads to '{path}', outside the spec's folder and every root",
            "Keep parameter files beside the spec (or under a root).",
        )
    return path


def _parameter_values(raw: dict, spec: Path, key: str, paths: DataPaths) -> dict:
    """The task's parameters: its parameter file, overridden by its inline ``parameters``, then by its ROI file."""
    values = _parameter_file(raw, "parameter_file", "parameter file", spec, key, paths)
    values.update(raw.get("parameters") or {})
    values.update(_parameter_file(raw, "roi_file", "ROI file", spec, key, paths))
    return values


def _parameter_file(raw: dict, name: str, what: str, spec: Path, key: str, paths: DataPaths) -> dict:
    """The keys a task's parameter or ROI file sets (an ROI file may be just a list of ROIs)."""
    if raw.get(name) is None:
        return {}
    path = _beside(spec, raw[name], paths, f"{key}.{name}")
    content = _read(path, what, spec, f"{key}.{name}")
    if name == "roi_file" and isinstance(content, list):
        content = {"rois": content}
    source = f"Session spec '{spec}': {key}.{name}: {what.capitalize()} '{path}'"
    part = validate(ParametersModel, {} if content is None else content, source=source, error=SpecError)
    return part.model_dump(exclude_unset=True)


def _task(raw: dict, spec: Path, index: int, paths: DataPaths, recordings: list[str]) -> TaskSpec:
    key = f"tasks.{index}"
    views = None
    if raw.get("recordings") is not None:
        unknown = [n for n in raw["recordings"] if n not in recordings]
        if unknown:
            raise _error(spec, f"{key}.recordings", f"no recording named {unknown}", f"Choose among {recordings}.")
        views = [recordings.index(n) for n in raw["recordings"]]
    values = _parameter_values(raw, spec, key, paths)
    try:
        params = FacemapParameters.from_dict(values, source=f"Session spec '{spec}': {key}")
    except InputError as err:
        raise SpecError(str(err)) from None
    overrides = {k: raw[k] for k in ("motion_svd", "movie_svd") if raw.get(k) is not None}
    params = replace(params, **overrides) if overrides else params
    proc_file = None
    if raw["mode"] == "load":
        if raw.get("proc_file") is None:
            raise _error(spec, f"{key}.proc_file", "a load task needs Facemap's output", "Add proc_file.")
        proc_file = _find(paths, raw["proc_file"], spec, f"{key}.proc_file")
    pose_file = _find(paths, raw["pose_file"], spec, f"{key}.pose_file") if raw.get("pose_file") else None
    return TaskSpec(
        task_id=str(raw["task_id"]),
        mode=raw["mode"],
        engine=raw.get("engine") or "native",
        parameters=params,
        proc_file=proc_file,
        description=raw.get("description") or "",
        views=views,
        pose_file=pose_file,
    )


def _find(paths: DataPaths, relative: str, spec: Path, key: str) -> Path:
    try:
        return paths.find(relative)
    except (FileNotFoundError, ValueError) as err:
        raise _error(spec, key, str(err).rstrip("."), "Fix the path or add its root folder to paths.roots.") from None


def _unique(spec: Path, key: str, names: list[str], what: str, fix: str) -> None:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _error(spec, key, f"{what} {twice} used more than once", fix)


def _video(paths: DataPaths, name: str, spec: Path, key: str, target, mode: str) -> tuple[Path, Path]:
    """A video the spec names and its path relative to its root; with ``videos: move``, a video an earlier run
    moved into the Dandiset is taken from there (``target``)."""
    try:
        found = paths.find(name)
    except FileNotFoundError as err:
        moved = os.path.isfile(target) and not os.path.islink(target)
        if moved and mode == "move":
            return Path(target), _relative_name(paths, name, spec, key)
        hint = ""
        if moved:
            hint = (
                f" It is in the Dandiset as '{target}', moved there by a run with videos: move: keep videos: move "
                "(or --videos move) for this session."
            )
        raise _error(
            spec, key, str(err).rstrip("."), "Fix the path or add its root folder to paths.roots." + hint
        ) from None
    except ValueError as err:
        raise _error(spec, key, str(err).rstrip("."), "Fix the path or add its root folder to paths.roots.") from None
    return found, paths.relative(found)


def _relative_name(paths: DataPaths, name: str, spec: Path, key: str) -> Path:
    if not Path(name).is_absolute():
        return Path(os.path.normpath(name))
    try:
        return paths.relative(name)
    except ValueError as err:
        raise _error(spec, key, str(err).rstrip("."), "Fix the path or add its root folder to paths.roots.") from None


def _check_video_names(spec: Path, recordings: list[dict], mode: str) -> None:
    """Every video can be a DANDI video asset, under a name of its own in the Dandiset."""
    for i, recording in enumerate(recordings):
        for j, path in enumerate(recording["files"]):
            if path.suffix.lower() not in DANDI_VIDEO_EXTENSIONS:
                raise _error(
                    spec,
                    f"recordings.{i}.files.{j}",
                    f"'{path}' has the extension '{path.suffix}', which DANDI does not upload as a video (it takes "
                    f"{', '.join(DANDI_VIDEO_EXTENSIONS)})",
                    "Convert it (e.g. ffmpeg -i <file> -c copy <file>.mkv) and name the new file in the spec.",
                )
    labels = [video_label(r["name"]) for r in recordings]
    twice = sorted({r["name"] for r, label in zip(recordings, labels) if labels.count(label) > 1})
    if twice:
        raise _error(
            spec,
            "recordings",
            f"the recording names {twice} give their videos the same names in the Dandiset "
            "(letters, digits and dashes are kept; every other character becomes a dash)",
            "Rename one of them.",
        )
    if mode == "move":
        files = [str(f) for r in recordings for f in r["files"]]
        again = sorted({f for f in files if files.count(f) > 1})
        if again:
            raise _error(
                spec,
                "videos",
                f"videos: move, but the video(s) {again} are named more than once in the session",
                "A file can be moved once: choose videos: symlink, hardlink or copy.",
            )


def load_session_spec(
    path: str | os.PathLike, *, videos: str | None = None, session_start: datetime | None = None
) -> SessionSpec:
    """Read and check a session spec; every problem is reported (as :class:`SpecError`) before any work starts.

    ``videos`` (symlink, hardlink, copy or move) overrides the spec's ``videos`` key; ``session_start`` (a time
    with a time zone, the command line's ``--session-start``) overrides ``session.session_start_time``.
    """
    spec = Path(path).resolve()
    raw = _read(spec, "session spec", spec, "(file)")
    if session_start is not None and isinstance(raw, dict) and isinstance(raw.get("session", {}), dict):
        if session_start.tzinfo is None:
            raise _error(spec, "session.session_start_time", f"{session_start.isoformat()} has no time zone",
                         "Give one, e.g. 2024-05-06T12:30:00+01:00.")  # fmt: skip
        raw = {**raw, "session": {**raw.get("session", {}), "session_start_time": session_start.isoformat()}}
    model = validate(SessionModel, raw, source=f"Session spec '{spec}'", error=SpecError)
    raw = model.model_dump(mode="json", exclude_unset=True)  # defaults must not override a parameter file
    mode = videos or raw.get("videos") or DEFAULT_VIDEO_MODE
    if mode not in VIDEO_MODES:
        raise _error(spec, "videos", f"unknown mode {mode!r}", f"Choose one of {', '.join(VIDEO_MODES)}.")
    roots = [(spec.parent / r).resolve() for r in raw["paths"]["roots"]]
    for i, root in enumerate(roots):
        if not root.is_dir():
            raise _error(spec, f"paths.roots.{i}", f"root folder '{root}' does not exist", "Fix the path.")
    processed = raw["paths"].get("processed")
    paths = DataPaths(roots=roots, processed=(spec.parent / processed).resolve() if processed else None)
    output = raw["paths"].get("output")
    output = (spec.parent / output).resolve() if output else None
    subject = model.subject.model_dump(mode="json", exclude_none=True)
    session = model.session.model_dump(mode="json", exclude_none=True)
    folder = SessionSpec(spec, subject, session, paths, [], [], output, videos=mode).media_folder
    recordings = []
    for i, rec in enumerate(raw["recordings"]):
        files, relative = [], []
        for j, name in enumerate(rec["files"]):
            target = folder / video_file_name(rec["name"], j, Path(name).suffix)
            found, rel = _video(paths, name, spec, f"recordings.{i}.files.{j}", target, mode)
            files.append(found)
            relative.append(rel)
        device = rec.get("device") or rec["name"]
        recordings.append({"name": rec["name"], "device": device, "files": files, "relative": relative})
    names = [r["name"] for r in recordings]
    _unique(spec, "recordings", names, "recording name(s)", "Name each camera once.")
    _check_video_names(spec, recordings, mode)
    ids = [str(t["task_id"]) for t in raw["tasks"]]
    _unique(spec, "tasks", ids, "task id(s)", "Give every task its own id.")
    tasks = [_task(t, spec, i, paths, names) for i, t in enumerate(raw["tasks"])]
    return SessionSpec(spec, subject, session, paths, recordings, tasks, output, videos=mode)
