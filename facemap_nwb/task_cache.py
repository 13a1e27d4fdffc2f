"""Memoized task results and session stamps (element-facemap's ``FacemapProcessing`` is computed once per
task): what a task's results and a session's NWB file were made from, and where they are kept. See
:mod:`facemap_nwb.session` for the rules.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .session_spec import SessionSpec, TaskSpec

__all__ = [
    "task_inputs",
    "task_hash",
    "cached_results_path",
    "task_folder",
    "session_digest",
    "session_state",
    "videos_in_place",
]


def _file_key(path: Path, name: Path | None = None) -> dict:
    """A file's path (or the ``name`` it goes by), size and modification time."""
    stat = path.stat()
    return {"path": str(name or path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _video_keys(recording: dict) -> list[dict]:
    """The keys of a recording's files; ``keys`` (see :meth:`SessionSpec.cache_recordings`) names them."""
    return [_file_key(f, k) for f, k in zip(recording["files"], recording.get("keys", recording["files"]))]


def task_inputs(task: TaskSpec, recordings: list[dict]) -> dict:
    """Everything a task's results depend on."""
    return {
        "parameters": task.parameters.to_dict(),
        "mode": task.mode,
        "engine": task.engine,
        "videos": [key for r in recordings for key in _video_keys(r)],
        "proc_file": _file_key(task.proc_file) if task.proc_file else None,
        "format": _format_version(),  # results cached in another ndx-facemap format are recomputed
    }


def _format_version() -> str:
    from .nwb.io import FORMAT_VERSION

    return FORMAT_VERSION


def _digest(inputs: dict) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def task_hash(task: TaskSpec, recordings: list[dict]) -> str:
    """Hash of everything a task's results depend on."""
    return _digest(task_inputs(task, recordings))


def cached_results_path(folder: Path, digest: str) -> Path:
    """The memoized results of a task for the inputs with this hash (content-addressed)."""
    return folder / f"results-{digest[:20]}.nwb"


def task_folder(spec: SessionSpec, task: TaskSpec) -> Path:
    """Where a task keeps its memoized results: ``<processed>/<its first video's folder>/facemap_<id>`` (the
    folder relative to its root, also once ``videos: move`` moved the video into the Dandiset)."""
    first = spec.task_recordings(task)[0]
    if first.get("relative"):
        return spec.paths.processed_root / Path(first["relative"][0]).parent / f"facemap_{task.task_id}"
    return spec.paths.output_dir(first["files"][0], task.task_id)


def session_digest(spec: SessionSpec) -> str:
    """Hash of everything a session's NWB file depends on: each task's inputs, the metadata, the cameras,
    the format, and how its videos are in the Dandiset (their mode)."""
    keyed = [dict(r, keys=k) for r, k in zip(spec.recordings, _session_keys(spec))]
    return _digest(
        {
            # A task's pose file is not part of its cached results, only of the session's file.
            "tasks": [
                [t.task_id, task_hash(t, spec.cache_recordings(t)), spec.task_views(t), t.description] + _pose_keys(t)
                for t in spec.tasks
            ],
            "subject": spec.subject,
            "session": spec.session,
            "recordings": [[r["name"], r["device"], _video_keys(r)] for r in keyed],
            "backend": spec.backend,
            "videos": spec.videos,
        }
    )


def _pose_keys(task: TaskSpec) -> list[dict]:
    """A task's pose file and its metadata pickle (when there is one); nothing for a task without one, so that
    the digests of sessions without pose files are what they were."""
    if task.pose_file is None:
        return []
    from .loaders.pose import metadata_path_for

    metadata = metadata_path_for(task.pose_file)
    return [_file_key(task.pose_file)] + ([_file_key(metadata)] if metadata.exists() else [])


def _session_keys(spec: SessionSpec) -> list[list[Path]]:
    return [spec.video_targets(i) if spec.videos == "move" else r["files"] for i, r in enumerate(spec.recordings)]


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
    today's inputs, its videos are in the Dandiset and its summary PNGs exist), ``"unplaced"`` (the same, but
    a video is missing from the Dandiset), ``"unplotted"`` (the same, but a summary PNG is missing)
    or ``"stale"`` (an NWB file exists, but the spec or its inputs changed since, or it was written some
    other way, e.g. by a facemap-nwb without session stamps).

    The stamp (:attr:`SessionSpec.stamp_path`) is written just before the NWB file is published and names
    that file's identifier, so a run that dies or fails before publishing never makes an older file current.
    """
    if not spec.nwb_path.exists():
        return "missing"
    if not _stamped(spec):
        return "stale"
    if not videos_in_place(spec):
        return "unplaced"
    return "current" if all(spec.summary_path(t).exists() for t in spec.tasks) else "unplotted"


def videos_in_place(spec: SessionSpec) -> bool:
    """Every video of the session is in the Dandiset as its mode puts it (see
    :func:`facemap_nwb.dandiset.video_in_place`)."""
    from .dandiset import video_in_place

    return all(video_in_place(source, target, spec.videos) for source, target in spec.video_pairs())


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

    with atomic_output(path, overwrite=True) as temporary:
        temporary.write_text(json.dumps(value, indent=1, default=str))


def _store_results(
    folder: Path, digest: str, inputs: dict, results, recordings, owner: str, metadata: dict | None = None
) -> None:
    """Store a task's results under their hash (atomically), then remove the results this spec (``owner``)
    stored in this folder for earlier inputs. Results that other specs stored here are kept: two specs
    with different parameters for one video never undo each other's caches. ``metadata`` (the session's
    start and subject) makes the cache a complete NWB file that nwbinspector's DANDI checks accept; it is not
    part of the hash (the session file takes its metadata from the spec, never from the cache)."""
    from .convert import write_results_nwb

    cached = cached_results_path(folder, digest)
    start = {"NWBFile": {"session_start_time": "1970-01-01T00:00:00+00:00"}}
    metadata = metadata or {}
    start["NWBFile"].update({k: v for k, v in metadata.get("NWBFile", {}).items() if k != "identifier"})
    if metadata.get("Subject"):
        start["Subject"] = dict(metadata["Subject"])
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
