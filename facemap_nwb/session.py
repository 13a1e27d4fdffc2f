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

A session may hold several tasks (other parameters on the same video, a load task next to a trigger
task, another camera): they share the session's NWB file, where each task's objects carry its name
suffix ``_task-<id>`` (see :mod:`facemap_nwb.nwb.facemap`), and each gets its own summary PNG
(``..._task-<id>.png``). A session with one task has no suffix.

Memoization (element-facemap's ``FacemapProcessing`` is computed once per task): each task's results
are kept in ``<processed>/<its first video's folder>/facemap_<task id>/results-<hash>.nwb``, where the
hash covers their inputs (parameters, engine, mode and each input file's path, size and modification
time; ``results-<hash>.json`` beside it lists them). A rerun with the same inputs reuses them, a change
recomputes, ``force`` recomputes anyway. The cache is content-addressed, so sessions whose videos share
a folder (and so a task folder) never take each other's results, even when a batch runs them at once;
results superseded for the same input files are removed when new ones are stored.

The session's NWB file is written as ``sub-<subject>_ses-<session>_behavior+image.nwb`` in
``<output>/sub-<subject>/`` (``output`` is the Dandiset folder, ``<processed>/nwb`` by default, kept apart
from the caches so that ``dandi validate`` sees only session files), all-or-nothing, with the summary PNG
beside it. ``<processed>/session_stamps/`` records what each NWB file was written from (the hash of every
task's inputs, the metadata and the files, and the file's identifier): a session is "current" when its NWB
file is the one stamped for today's spec and inputs, and a batch then skips it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from .params import FacemapParameters
from .paths import DataPaths

__all__ = ["SessionSpec", "SpecError", "load_session_spec", "run_session", "SESSION_SCHEMA", "dandi_file_name"]


class SpecError(ValueError):
    """A session spec that cannot be run: names the spec file, the key and the fix."""


_STRING = {"type": "string", "minLength": 1}
SESSION_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "facemap-nwb session",
    "type": "object",
    "additionalProperties": False,
    "required": ["subject", "session", "paths", "recordings", "tasks"],
    "properties": {
        "subject": {
            "type": "object",
            "additionalProperties": False,
            "required": ["subject_id", "species", "sex"],
            "properties": {
                "subject_id": _STRING,
                "species": _STRING,
                "sex": {"enum": ["M", "F", "U", "O"]},
                "age": {"type": "string", "pattern": "^P"},
                "date_of_birth": _STRING,
                "description": {"type": "string"},
                "strain": {"type": "string"},
                "genotype": {"type": "string"},
            },
            "anyOf": [{"required": ["age"]}, {"required": ["date_of_birth"]}],
        },
        "session": {
            "type": "object",
            "additionalProperties": False,
            "required": ["session_id", "session_start_time", "session_description", "lab", "institution"],
            "properties": {
                "session_id": _STRING,
                "session_start_time": _STRING,
                "session_description": _STRING,
                "lab": _STRING,
                "institution": _STRING,
                "experimenter": {"type": "array", "items": _STRING},
                "experiment_description": {"type": "string"},
                "keywords": {"type": "array", "items": _STRING},
            },
        },
        "paths": {
            "type": "object",
            "additionalProperties": False,
            "required": ["roots"],
            "properties": {
                "roots": {"type": "array", "items": _STRING, "minItems": 1},
                "processed": _STRING,
                "output": _STRING,
            },
        },
        "recordings": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["name", "files"],
                "properties": {
                    "name": _STRING,
                    "device": _STRING,
                    "files": {"type": "array", "items": _STRING, "minItems": 1},
                },
            },
        },
        "tasks": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["task_id", "mode"],
                "properties": {
                    "task_id": {"type": ["string", "integer"], "pattern": "^[^/]+$"},
                    "mode": {"enum": ["load", "trigger"]},
                    "engine": {"enum": ["native", "facemap"]},
                    "parameters": {"type": "object"},
                    "parameter_file": _STRING,
                    "roi_file": _STRING,
                    "proc_file": _STRING,
                    "motion_svd": {"type": "boolean"},
                    "movie_svd": {"type": "boolean"},
                    "description": {"type": "string"},
                    "recordings": {"type": "array", "items": _STRING, "minItems": 1},
                },
            },
        },
    },
}


@dataclass
class TaskSpec:
    task_id: str
    mode: str
    engine: str
    parameters: FacemapParameters
    proc_file: Path | None
    description: str
    views: list[int] | None = None  # the task's cameras: indexes in the session's recordings (None: all)


@dataclass
class SessionSpec:
    path: Path
    subject: dict
    session: dict
    paths: DataPaths
    recordings: list[dict]  # name, device, files (full paths)
    tasks: list[TaskSpec] = field(default_factory=list)
    output: Path | None = None  # the Dandiset folder; <processed>/nwb by default
    backend: str = "hdf5"  # "zarr" writes <name>.nwb.zarr

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


def _read_yaml(path: Path, what: str, spec: Path, key: str):
    import yaml

    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _error(
            spec, key, f"{what} '{path}' does not exist", "Fix the path (relative to the spec's folder)."
        ) from None
    except yaml.YAMLError as err:
        problem = f"{what} '{path}' does not parse ({str(err).splitlines()[0]})"
        raise _error(spec, key, problem, "Fix its YAML/JSON syntax.") from None


def _schema_errors(raw, spec: Path) -> None:
    import jsonschema

    validator = jsonschema.Draft7Validator(SESSION_SCHEMA)
    errors = sorted(validator.iter_errors(raw), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    err = errors[0]
    key = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    if err.validator == "additionalProperties":
        unknown = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        allowed = ", ".join(sorted(err.schema.get("properties", {})))
        raise _error(spec, key, f"unknown key(s) {unknown}", f"Allowed keys here: {allowed}.")
    if err.validator == "required":
        raise _error(spec, key, err.message, "Add it.")
    raise _error(spec, key, err.message, "See the spec format in facemap_nwb.session.")


def _task(raw: dict, spec: Path, index: int, paths: DataPaths, recordings: list[str]) -> TaskSpec:
    key = f"tasks.{index}"
    views = None
    if "recordings" in raw:
        unknown = [n for n in raw["recordings"] if n not in recordings]
        if unknown:
            raise _error(spec, f"{key}.recordings", f"no recording named {unknown}", f"Choose among {recordings}.")
        views = [recordings.index(n) for n in raw["recordings"]]
    values: dict = {}
    if "parameter_file" in raw:
        values = _read_yaml(spec.parent / raw["parameter_file"], "parameter file", spec, f"{key}.parameter_file") or {}
    values = {**values, **raw.get("parameters", {})}
    if "roi_file" in raw:
        rois = _read_yaml(spec.parent / raw["roi_file"], "ROI file", spec, f"{key}.roi_file") or {}
        values = {**values, **(rois if isinstance(rois, dict) else {"rois": rois})}
    try:
        params = FacemapParameters.from_dict(values, source=f"{key} of '{spec}'")
    except (TypeError, ValueError) as err:
        raise _error(spec, key, f"bad parameters ({err})", "Fix the parameters or the parameter file.") from None
    overrides = {k: raw[k] for k in ("motion_svd", "movie_svd") if k in raw}
    params = replace(params, **overrides) if overrides else params
    proc_file = None
    if raw["mode"] == "load":
        if "proc_file" not in raw:
            raise _error(spec, f"{key}.proc_file", "a load task needs Facemap's output", "Add proc_file.")
        proc_file = _find(paths, raw["proc_file"], spec, f"{key}.proc_file")
    return TaskSpec(
        task_id=str(raw["task_id"]),
        mode=raw["mode"],
        engine=raw.get("engine", "native"),
        parameters=params,
        proc_file=proc_file,
        description=raw.get("description", ""),
        views=views,
    )


def _find(paths: DataPaths, relative: str, spec: Path, key: str) -> Path:
    try:
        return paths.find(relative)
    except FileNotFoundError as err:
        raise _error(spec, key, str(err).rstrip("."), "Fix the path or add its root folder to paths.roots.") from None


def load_session_spec(path: str | os.PathLike) -> SessionSpec:
    """Read and check a session spec; every problem is reported before any work starts."""
    spec = Path(path).resolve()
    raw = _read_yaml(spec, "session spec", spec, "(file)")
    if not isinstance(raw, dict):
        raise _error(spec, "(top level)", "the spec is not a mapping", "Write it as YAML keys (subject, session, ...).")
    _schema_errors(raw, spec)
    roots = [(spec.parent / r).resolve() for r in raw["paths"]["roots"]]
    for i, root in enumerate(roots):
        if not root.is_dir():
            raise _error(spec, f"paths.roots.{i}", f"root folder '{root}' does not exist", "Fix the path.")
    processed = raw["paths"].get("processed")
    paths = DataPaths(roots=roots, processed=(spec.parent / processed).resolve() if processed else None)
    try:
        start = datetime.fromisoformat(raw["session"]["session_start_time"])
    except ValueError:
        raise _error(
            spec, "session.session_start_time", "not an ISO 8601 time", "Write e.g. 2024-05-06T12:30:00+01:00."
        ) from None
    if start.tzinfo is None:
        raise _error(spec, "session.session_start_time", "no time zone", "Add one, e.g. +01:00 or Z.")
    recordings = []
    for i, rec in enumerate(raw["recordings"]):
        files = [_find(paths, f, spec, f"recordings.{i}.files.{j}") for j, f in enumerate(rec["files"])]
        recordings.append({"name": rec["name"], "device": rec.get("device", rec["name"]), "files": files})
    names = [r["name"] for r in recordings]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise _error(spec, "recordings", f"recording name(s) {twice} used more than once", "Name each camera once.")
    ids = [str(t["task_id"]) for t in raw["tasks"]]
    duplicated = sorted({i for i in ids if ids.count(i) > 1})
    if duplicated:
        raise _error(spec, "tasks", f"task id(s) {duplicated} used more than once", "Give every task its own id.")
    tasks = [_task(t, spec, i, paths, names) for i, t in enumerate(raw["tasks"])]
    output = raw["paths"].get("output")
    output = (spec.parent / output).resolve() if output else None
    return SessionSpec(spec, dict(raw["subject"]), dict(raw["session"]), paths, recordings, tasks, output)


def _file_key(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def task_inputs(task: TaskSpec, recordings: list[dict]) -> dict:
    """Everything a task's results depend on."""
    return {
        "parameters": task.parameters.to_dict(),
        "mode": task.mode,
        "engine": task.engine,
        "videos": [_file_key(f) for r in recordings for f in r["files"]],
        "proc_file": _file_key(task.proc_file) if task.proc_file else None,
    }


def _digest(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def task_hash(task: TaskSpec, recordings: list[dict]) -> str:
    """Hash of everything a task's results depend on."""
    return _digest(task_inputs(task, recordings))


def cached_results_path(folder: Path, digest: str) -> Path:
    """The memoized results of a task for the inputs with this hash (content-addressed)."""
    return folder / f"results-{digest[:20]}.nwb"


def task_folder(spec: SessionSpec, task: TaskSpec) -> Path:
    """Where a task keeps its memoized results: ``<processed>/<its first video's folder>/facemap_<id>``."""
    return spec.paths.output_dir(spec.task_recordings(task)[0]["files"][0], task.task_id)


def session_digest(spec: SessionSpec) -> str:
    """Hash of everything a session's NWB file depends on: each task's inputs, the metadata, the cameras."""
    return _digest(
        {
            "tasks": [
                [t.task_id, task_hash(t, spec.task_recordings(t)), spec.task_views(t), t.description]
                for t in spec.tasks
            ],
            "subject": spec.subject,
            "session": spec.session,
            "recordings": [[r["name"], r["device"], [_file_key(f) for f in r["files"]]] for r in spec.recordings],
            "backend": spec.backend,
        }
    )


def _stamps(spec: SessionSpec) -> list[dict]:
    try:
        entries = json.loads(spec.stamp_path.read_text()).get("files", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [e for e in entries if isinstance(e, dict)]


def _stamped(spec: SessionSpec) -> bool:
    """The NWB file at the session's path is the one written from today's spec and inputs."""
    from .nwb.io import read_identifier

    if not spec.nwb_path.exists():
        return False
    wanted = {"digest": session_digest(spec), "identifier": read_identifier(spec.nwb_path)}
    return any(wanted.items() <= e.items() for e in _stamps(spec))


def _stamp(spec: SessionSpec, identifier: str) -> None:
    """Record, before it is published, that the file with ``identifier`` is written from today's inputs.
    The entry of the file published now is kept, so that a run failing before it publishes its own file
    leaves the published file's state as it was."""
    from .nwb.io import read_identifier

    published = read_identifier(spec.nwb_path) if spec.nwb_path.exists() else None
    kept = [e for e in _stamps(spec) if published is not None and e.get("identifier") == published]
    entry = {"digest": session_digest(spec), "identifier": identifier}
    _write_json(spec.stamp_path, {"nwb": str(spec.nwb_path), "files": [*kept[-1:], entry]})


def session_state(spec: SessionSpec) -> str:
    """``"missing"`` (no NWB file yet), ``"current"`` (the NWB file there was written by this spec from
    today's inputs, and its summary PNGs exist), ``"unplotted"`` (the same, but a summary PNG is missing)
    or ``"stale"`` (an NWB file exists, but the spec or its inputs changed since, or it was written some
    other way, e.g. by a facemap-nwb without session stamps).

    The stamp (:attr:`SessionSpec.stamp_path`) is written just before the NWB file is published and names
    that file's identifier, so a run that dies or fails before publishing never makes an older file current.
    """
    if not spec.nwb_path.exists():
        return "missing"
    if not _stamped(spec):
        return "stale"
    return "current" if all(spec.summary_path(t).exists() for t in spec.tasks) else "unplotted"


@dataclass
class SessionResult:
    """What :func:`run_session` wrote: the NWB file, one summary PNG and one cache folder per task, and
    which tasks reused their cached results."""

    nwb_path: Path
    summary_pngs: list[Path]
    task_folders: list[Path]
    reused_tasks: list[str]
    task_ids: list[str]

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


def _cached_results(folder: Path, digest: str):
    from .nwb.io import read_facemap_nwb

    cached = cached_results_path(folder, digest)
    if cached.exists():
        try:
            return read_facemap_nwb(cached)
        except (ValueError, OSError):  # a damaged cache is recomputed
            return None
    return None


def _write_json(path: Path, value: dict) -> None:
    from .atomic import atomic_output

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=True) as temporary:
        temporary.write_text(json.dumps(value, indent=1, default=str))


def _store_results(folder: Path, digest: str, inputs: dict, results, recordings, owner: str) -> None:
    """Store a task's results under their hash (atomically), then remove the results this spec (``owner``)
    stored in this folder for earlier inputs. Results that other specs stored here are kept: two specs
    with different parameters for one video never undo each other's caches."""
    from .convert import write_results_nwb

    cached = cached_results_path(folder, digest)
    start = {"NWBFile": {"session_start_time": "1970-01-01T00:00:00+00:00"}}
    write_results_nwb(cached, results, recordings, metadata=start, overwrite=True)
    _write_json(cached.with_suffix(".json"), {"hash": digest, "spec": owner, "inputs": inputs})
    for stamp in folder.glob("results-*.json"):
        if stamp == cached.with_suffix(".json"):
            continue
        try:
            other = json.loads(stamp.read_text()).get("spec")
        except (OSError, ValueError, AttributeError):
            continue
        if other == owner:
            stamp.with_suffix(".nwb").unlink(missing_ok=True)
            stamp.unlink(missing_ok=True)
    for legacy in ("results.json", "results.nwb"):  # facemap-nwb before content-addressed caches
        (folder / legacy).unlink(missing_ok=True)


def run_session(
    spec: SessionSpec | str | os.PathLike,
    *,
    force: bool = False,
    overwrite: bool = False,
    progress: bool = False,
    backend: str | None = None,
):
    """Run one session end to end; returns a :class:`SessionResult`. ``backend="zarr"`` writes NWB Zarr."""
    from .atomic import check_output_path
    from .convert import TaskOutput, check_views, write_session_nwb
    from .engines import process_recordings
    from .loaders.facemap import load_facemap_results
    from .plot import plot_summary
    from .video import probe_recording

    spec = spec if isinstance(spec, SessionSpec) else load_session_spec(spec)
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

    if not (force or overwrite) and _stamped(spec):  # up to date: nothing to redo but a missing summary
        return SessionResult(spec.nwb_path, [plot(t, False) for t in spec.tasks], folders, ids, ids)
    nwb_path = check_output_path(spec.nwb_path, overwrite=overwrite)
    # Trigger mode decodes every frame in the engine, which checks the count: count packets here (one
    # decode, not two). Load mode has no decode of its own, so the probe decodes to check the count.
    loaded = {i for task in spec.tasks if task.mode == "load" for i in spec.task_views(task)}
    recordings = [
        probe_recording(r["files"], name=r["name"], device=r["device"], decode=i in loaded)
        for i, r in enumerate(spec.recordings)
    ]
    outputs, reused = [], []
    for task, folder in zip(spec.tasks, folders):
        views = [recordings[i] for i in spec.task_views(task)]
        folder.mkdir(parents=True, exist_ok=True)
        inputs = task_inputs(task, spec.task_recordings(task))
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
            _store_results(folder, digest, inputs, results, views, owner=str(spec.path))
        description = task.description or None
        outputs.append(TaskOutput(results, task.task_id, task.mode, description, views=spec.task_views(task)))
    # The stamp goes first and names the new file's identifier: if this run dies before the file is
    # published, the stamp matches no file and the session is not taken as current.
    identifier = str(uuid.uuid4())
    _stamp(spec, identifier)
    metadata = {"NWBFile": {**spec.session, "identifier": identifier}, "Subject": dict(spec.subject)}
    write_session_nwb(nwb_path, outputs, recordings, metadata=metadata, overwrite=overwrite, backend=spec.backend)
    return SessionResult(nwb_path, [plot(t, True) for t in spec.tasks], folders, reused, ids)
