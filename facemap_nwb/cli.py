"""The ``facemap-nwb`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .kinds import SIGNALS as _SIGNALS

__all__ = ["main"]

EXIT_OK, EXIT_ERROR, EXIT_UNEXPECTED = 0, 1, 2


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _format_table(rows: list[dict], columns: Sequence[str]) -> str:
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)


_INFO_COLUMNS = ("path", "width", "height", "frame_count", "rate", "duration", "creation_time", "codec", "pixel_format")


def _cmd_info(args: argparse.Namespace) -> int:
    from .video import probe_recording, probe_video

    decode = not args.fast
    if args.recording:
        recording = probe_recording(args.videos, name=args.recording, decode=decode)
        files = list(recording.files)
    else:
        recording, files = None, [probe_video(v, decode=decode) for v in args.videos]
    rows = [f.as_dict() for f in files]
    for row, info in zip(rows, files):
        row["rate"], row["duration"] = f"{info.rate:.6g}", f"{info.duration:.3f}"
        row["creation_time"] = row["creation_time"] or "-"
        # --fast counts stored frames (packets) without decoding them: say which counts are verified.
        row["counted"] = "decoded" if info.frame_count_verified else "packets"
    if args.json:
        payload = {"files": [f.as_dict() for f in files]}
        if recording is not None:
            payload["recording"] = {
                "name": recording.name,
                "frame_count": recording.frame_count,
                "starting_frames": recording.starting_frames,
                "rate": recording.rate,
                "duration": recording.duration,
                "height": recording.height,
                "width": recording.width,
                "start_time": recording.start_time.isoformat() if recording.start_time else None,
                "frame_count_verified": all(f.frame_count_verified for f in files),
            }
        _out(json.dumps(payload, indent=2))
        return EXIT_OK
    columns = list(_INFO_COLUMNS)
    if not decode:  # the counts are not verified: say so next to them
        columns.insert(columns.index("frame_count") + 1, "counted")
    _out(_format_table(rows, columns))
    if not decode:
        _out("\n'counted: packets': stored frames, not decoded (--fast); run without --fast to decode and verify them.")
    if recording is not None:
        _out(
            f"\nrecording '{recording.name}': {len(files)} file(s), {recording.frame_count} frames, "
            f"starting frames {recording.starting_frames}, {recording.rate:.6g} frames/s, {recording.duration:.3f} s"
        )
    return EXIT_OK


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    result = run_demo(args.output_dir, overwrite=args.overwrite)
    rec = result.recording
    _out(f"Demo folder: {result.folder}")
    for info in rec.files:
        _out(f"  made {info.path.name}: {info.frame_count} frames, {info.width}x{info.height}, {info.rate:g} frames/s")
    _out(f"Wrote {result.nwb_path}")
    _out(
        f"  recording '{rec.name}' ({rec.frame_count} frames, starting frames {rec.starting_frames}) "
        f"on camera '{rec.device}'"
    )
    res = result.results
    _out(
        f"  facial signals ({res.engine} {res.engine_version}): motion energy of {len(res.motion_energy)} region(s), "
        f"motion SVD {[s.n_components for s in res.motion_svd]} and "
        f"movie SVD {[s.n_components for s in res.movie_svd]} "
        f"components, {len(res.pupils)} pupil, {len(res.blinks)} blink, {len(res.running)} running"
    )
    _out("  pynwb validation: passed")
    serious = [m for m in result.inspector_messages if m.importance.name in ("CRITICAL", "BEST_PRACTICE_VIOLATION")]
    _out(f"  nwbinspector: {len(result.inspector_messages)} message(s), {len(serious)} critical or violations")
    for message in serious:
        _out(f"    {message.importance.name}: {message.check_function_name}: {message.message}")
    _out(f"Wrote {result.summary_png} (summary of the NWB file)")
    return EXIT_ERROR if serious else EXIT_OK


def _load_metadata(path: str | None) -> dict:
    """NWBFile and Subject metadata from a neuroconv-style YAML or JSON file, checked against its declared
    schema (:class:`facemap_nwb.models.MetadataModel`) before any work starts."""
    if path is None:
        return {}
    from .inputs import read_user_file, validate
    from .models import MetadataModel

    values = read_user_file(path, "metadata file")
    model = validate(MetadataModel, {} if values is None else values, source=f"Metadata file '{path}'")
    return model.model_dump(exclude_none=True)


def _metadata_with_start(args: argparse.Namespace) -> dict:
    """The metadata file's content, with ``--session-start`` (already parsed) taking precedence."""
    metadata = _load_metadata(args.metadata)
    if getattr(args, "session_start", None) is not None:
        metadata.setdefault("NWBFile", {})["session_start_time"] = args.session_start
    return metadata


def _cmd_recording(args: argparse.Namespace) -> int:
    from .atomic import check_nwb_name, check_output_path
    from .nwb.io import write_recordings_nwb
    from .video import probe_recording

    check_output_path(args.output, overwrite=args.overwrite)
    for name, what in ((args.name, "recording name (--name)"), (args.device, "camera name (--device)")):
        if name is not None:
            check_nwb_name(name, what)
    metadata = _metadata_with_start(args)
    recording = probe_recording(args.videos, name=args.name, device=args.device)
    write_recordings_nwb(
        args.output, recording, overwrite=args.overwrite, subject=metadata.get("Subject"), **metadata.get("NWBFile", {})
    )
    _out(
        f"Wrote {args.output}: recording '{recording.name}', {len(recording.files)} file(s), "
        f"{recording.frame_count} frames"
    )
    return EXIT_OK


def _missing_values_note(results) -> str:
    """How many NaN values the signals hold (Facemap's pupil fit makes them on frames it cannot fit)."""
    missing = results.missing_values()
    if not missing:
        return "  no missing values (NaN) in any signal"
    listing = ", ".join(f"{name}: {count}" for name, count in missing.items())
    return f"  missing values (NaN, kept as Facemap made them): {listing}"


def _cmd_convert(args: argparse.Namespace) -> int:
    from .atomic import check_output_path
    from .convert import convert_facemap_output
    from .loaders.facemap import load_facemap_results
    from .loaders.pose import is_pose_file, read_facemap_pose

    check_output_path(args.output, overwrite=args.overwrite)
    metadata = _metadata_with_start(args)
    pose_files = [f for f in args.proc_file if is_pose_file(f)]
    proc_files = [f for f in args.proc_file if not is_pose_file(f)]
    if len(proc_files) > 1:
        raise ValueError(
            f"Got {len(proc_files)} Facemap results files ({', '.join(proc_files)}); convert takes one (with any "
            "number of _FacemapPose.h5 files): write a session spec (facemap-nwb session) for several tasks."
        )
    proc_file = proc_files[0] if proc_files else None
    results = load_facemap_results(proc_file) if proc_file else None
    poses = [read_facemap_pose(f) for f in pose_files]
    output = convert_facemap_output(
        proc_file,
        args.video,
        args.output,
        metadata=metadata,
        task_id=args.task_id,
        signals=args.signals.split(",") if args.signals else _SIGNALS,
        n_components=args.n_components,
        backend=args.backend,
        overwrite=args.overwrite,
        results=results,
        pose_files=pose_files,
        poses=poses,
    )
    what = [f"Facemap results from {proc_file}"] if proc_file else []
    what += [f"{len(p.bodyparts)} keypoints on {p.frame_count} frames from {f}" for p, f in zip(poses, pose_files)]
    _out(f"Wrote {output}: {'; '.join(what)} with {sum(len(v) for v in args.video)} video file(s)")
    if results is not None:
        _out(_missing_values_note(results))
    return EXIT_OK


def _process_parameters(args: argparse.Namespace):
    from dataclasses import replace

    from .params import FacemapParameters

    if args.rois and Path(args.rois).name.endswith(("_proc.npy", "_proc.mat")):
        from .loaders.facemap import load_facemap_results

        params = load_facemap_results(args.rois).parameters
    elif args.rois:
        params = FacemapParameters.from_file(args.rois)
    else:
        params = FacemapParameters()
    changes = {}
    if args.sbin is not None:
        changes["spatial_bin"] = args.sbin
    if args.motion_svd is not None:
        changes["motion_svd"] = args.motion_svd
    if args.movie_svd is not None:
        changes["movie_svd"] = args.movie_svd
    if args.n_components is not None:
        changes["n_components"] = args.n_components
    return replace(params, **changes) if changes else params


def _import_in_background(*modules: str):
    """Import the NWB layer in a thread while the engine runs: the engine spends its time in FFmpeg and
    BLAS, which release the GIL, so the imports cost the command little wall time."""
    import importlib
    import threading

    def work():
        for module in modules:
            try:
                importlib.import_module(module)
            except ImportError:  # reported properly when the module is used
                return

    thread = threading.Thread(target=work, name="facemap-nwb-imports", daemon=True)
    thread.start()
    return thread


def _cmd_process(args: argparse.Namespace) -> int:
    from .atomic import check_output_path
    from .convert import write_results_nwb
    from .engines import process_recordings
    from .video import probe_recording

    check_output_path(args.output, overwrite=args.overwrite)
    params = _process_parameters(args)
    metadata = _metadata_with_start(args)  # every file the user wrote is checked before any work starts
    warm_up = _import_in_background("scipy.linalg", "facemap_nwb.nwb.facemap", "neuroconv.tools.nwb_helpers")
    views = [args.videos, *(args.view or [])]
    names = ["FaceCamera"] if len(views) == 1 else [f"FaceCamera{i}" for i in range(len(views))]
    start = time.perf_counter()
    # Packets are counted here without decoding; the native engine decodes every frame and stops with the
    # file and frame index if a frame fails or the count differs (one decode instead of two). Facemap reads
    # frames with OpenCV, which never says a file is damaged: for it the probe decodes and checks first.
    decode = args.engine == "facemap"
    recordings = [probe_recording(files, name=name, decode=decode) for files, name in zip(views, names)]
    try:
        params.check_views([(r.height, r.width) for r in recordings])
    except ValueError as err:
        raise ValueError(f"Parameter file '{args.rois}': {err}" if args.rois else str(err)) from None
    options = {"progress": not args.quiet}
    if args.engine == "native":
        options["timings"] = {}
    if args.engine == "native" and args.memory_budget is not None:
        options["memory_budget"] = int(args.memory_budget * 2**20)
    results = process_recordings(recordings, params, engine=args.engine, **options)
    processing = time.perf_counter() - start
    warm_up.join()
    writing_start = time.perf_counter()
    write_results_nwb(
        args.output,
        results,
        recordings,
        metadata=metadata,
        task_id=args.task_id,
        task_mode="trigger",
        description=f"Facemap processing by the {args.engine} engine.",
        n_components=params.n_components,
        backend=args.backend,
        overwrite=args.overwrite,
    )
    if args.timings_json:  # for benchmarks/engine_vs_facemap.py
        from .engines.frames import peak_memory_mb

        peak = peak_memory_mb()
        writing = time.perf_counter() - writing_start
        report = {"processing": processing, "writing": writing, "timings": options.get("timings", {}), "peak_mb": peak}
        Path(args.timings_json).write_text(json.dumps(report))
    if not args.quiet:
        regions = len(results.regions)
        _out(f"Wrote {args.output}: {results.frame_count} frames, {regions} region(s), engine {results.engine}")
        _out(_missing_values_note(results))
    return EXIT_OK


def _cmd_schema(args: argparse.Namespace) -> int:
    from .session import SESSION_SCHEMA

    text = json.dumps(SESSION_SCHEMA, indent=2) + "\n"
    if args.output is None:
        _out(text.rstrip("\n"))
        return EXIT_OK
    from .atomic import atomic_output

    with atomic_output(args.output, overwrite=args.overwrite) as temporary:
        temporary.write_text(text, encoding="utf-8")
    _out(f"Wrote {args.output}")
    return EXIT_OK


def _cmd_plot(args: argparse.Namespace) -> int:
    from .atomic import check_output_path
    from .plot import plot_summary

    check_output_path(args.output, overwrite=args.overwrite)
    _out(f"Wrote {plot_summary(args.nwb_file, args.output, task_id=args.task_id, overwrite=args.overwrite)}")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace) -> int:
    from .session import run_session

    result = run_session(
        args.session,
        force=args.force,
        overwrite=args.overwrite,
        progress=not args.quiet,
        backend=args.backend,
        videos=args.videos,
        session_start=args.session_start,
    )
    _out(f"Wrote {result.nwb_path}")
    if result.videos:
        _out(f"  videos: {len(result.videos)} file(s) in {result.videos[0].parent}")
    for task_id, folder, png in zip(result.task_ids, result.task_folders, result.summary_pngs):
        state = "reused cached results" if task_id in result.reused_tasks else "results cached"
        _out(f"  task {task_id}: {state} in {folder}; summary {png}")
    return EXIT_OK


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch import format_summary, run_batch

    rows = run_batch(
        args.sessions,
        scheduler=args.scheduler,
        workers=args.workers,
        retries=args.retries,
        overwrite=args.overwrite,
        force=args.force,
        backend=args.backend,
        progress=not args.quiet,
        videos=args.videos,
        session_start=args.session_start,
    )
    _out(format_summary(rows))
    for row in rows:
        if row.details:  # unexpected errors: the traceback, for a bug report
            sys.stderr.write(f"\nTraceback of {row.spec}:\n{row.details}\n")
    return EXIT_ERROR if any(r.status == "failed" for r in rows) else EXIT_OK


class _Parser(argparse.ArgumentParser):
    """Usage mistakes are bad input too: one line naming the option and the fix, exit code 1."""

    def error(self, message: str):
        sys.stderr.write(f"{self.prog}: error: {message}. See '{self.prog} --help'.\n")
        sys.exit(EXIT_ERROR)


def _iso_time(text: str):
    """``--session-start``: an ISO 8601 time with a time zone."""
    from datetime import datetime

    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time; write e.g. 2024-05-06T12:30:00+01:00")
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone; add one, e.g. 2024-05-06T12:30:00+01:00")
    return value


def _whole_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1")
    return value


def _mebibytes(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of MiB") from None
    if not math.isfinite(value) or not 0 < value <= 2**30:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of MiB above 0 (e.g. 128)")
    return value


def _session_start_option(
    parser: argparse.ArgumentParser, where: str = "the metadata file's NWBFile.session_start_time"
) -> None:
    parser.add_argument(
        "--session-start",
        type=_iso_time,
        metavar="ISO",
        help=f"Session start with time zone (default: {where}, else the first video's creation time).",
    )


def _videos_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--videos",
        choices=("symlink", "hardlink", "copy", "move"),
        metavar="MODE",
        help="How the videos get into the Dandiset beside the NWB file: symlink, hardlink, copy or move "
        "(default: the spec's 'videos', else symlink).",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="facemap-nwb", description="Facemap face-video analysis to NWB.")
    parser.add_argument("--debug", action="store_true", help="Show the traceback of unexpected errors.")
    parser.add_argument("--version", action="version", version=f"facemap-nwb {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    info = commands.add_parser("info", help="Print what each video holds (frames, rate, size, creation time).")
    info.add_argument("videos", nargs="+", metavar="VIDEO", help="Video files.")
    info.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
    info.add_argument(
        "--recording",
        metavar="NAME",
        help="Treat the videos as sequential files of one recording with this name (checks size and rate).",
    )
    info.add_argument("--fast", action="store_true", help="Count stored frames without decoding them.")
    info.set_defaults(handler=_cmd_info)

    rec = commands.add_parser("recording", help="Write one camera's recording (sequential files) to a new NWB file.")
    rec.add_argument("videos", nargs="+", metavar="VIDEO", help="The recording's video files, in order.")
    rec.add_argument("--output", "-o", required=True, metavar="OUT.nwb", help="NWB file to write.")
    rec.add_argument("--name", default="FaceCamera", help="Name of the ImageSeries (default: FaceCamera).")
    rec.add_argument("--device", default=None, help="Name of the camera (default: the --name).")
    _session_start_option(rec)
    rec.add_argument("--metadata", metavar="META.yaml", help="NWBFile and Subject metadata (neuroconv-style YAML).")
    rec.add_argument("--overwrite", action="store_true", help="Replace OUT.nwb if it exists.")
    rec.set_defaults(handler=_cmd_recording)

    convert = commands.add_parser(
        "convert", help="Convert a Facemap _proc.npy/_proc.mat and/or _FacemapPose.h5 and the video(s) to NWB."
    )
    convert.add_argument(
        "proc_file",
        nargs="+",
        metavar="FILE",
        help="Facemap output: a _proc.npy or _proc.mat (Python or MATLAB Facemap), and/or Facemap pose files "
        "(<video>_FacemapPose.h5, its _metadata.pkl read from beside it), one per camera.",
    )
    convert.add_argument(
        "--video",
        nargs="+",
        action="append",
        required=True,
        metavar="VIDEO",
        help="The video file(s) Facemap processed, in order; repeat --video for each simultaneous camera view.",
    )
    convert.add_argument("--output", "-o", required=True, metavar="OUT.nwb", help="NWB file to write.")
    convert.add_argument("--metadata", metavar="META.yaml", help="NWBFile and Subject metadata (neuroconv-style YAML).")
    convert.add_argument("--task-id", default="0", help="Identifier of the Facemap task (default: 0).")
    convert.add_argument(
        "--signals", help="Comma-separated signals to write (default: all): " + ",".join(_SIGNALS) + "."
    )
    convert.add_argument("--n-components", type=_whole_number, metavar="N", help="Keep at most N SVD components.")
    _session_start_option(convert)
    convert.add_argument("--backend", choices=("hdf5", "zarr"), default="hdf5", help="File format (default: hdf5).")
    convert.add_argument("--overwrite", action="store_true", help="Replace OUT.nwb if it exists.")
    convert.set_defaults(handler=_cmd_convert)

    proc = commands.add_parser(
        "process", help="Process video(s) (trigger mode) and write recording and signals to NWB."
    )
    proc.add_argument("videos", nargs="+", metavar="VIDEO", help="The camera's video file(s), in playback order.")
    proc.add_argument(
        "--view",
        nargs="+",
        action="append",
        metavar="VIDEO",
        help="Video file(s) of another simultaneous camera; repeat for each further camera.",
    )
    proc.add_argument("--output", "-o", required=True, metavar="OUT.nwb", help="NWB file to write.")
    proc.add_argument(
        "--rois", metavar="FILE", help="Parameters/ROIs (YAML or JSON), or an existing Facemap _proc file."
    )
    proc.add_argument("--sbin", type=_whole_number, help="Spatial bin in pixels (Facemap's sbin; default 1).")
    proc.add_argument(
        "--motion-svd", action=argparse.BooleanOptionalAction, default=None, help="SVD of motion (default on)."
    )
    proc.add_argument(
        "--movie-svd", action=argparse.BooleanOptionalAction, default=None, help="SVD of the movie (default off)."
    )
    proc.add_argument(
        "--n-components", type=_whole_number, metavar="N", help="SVD components (default: Facemap's 500)."
    )
    proc.add_argument("--engine", choices=("native", "facemap"), default="native", help="Engine (default: native).")
    proc.add_argument(
        "--memory-budget",
        type=_mebibytes,
        metavar="MiB",
        help=(
            "Binned frames the native engine keeps in memory (default 512); beyond, they go to a temporary file "
            "in $FACEMAP_NWB_TMPDIR or $TMPDIR. Every frame is decoded once either way."
        ),
    )
    proc.add_argument("--metadata", metavar="META.yaml", help="NWBFile and Subject metadata (neuroconv-style YAML).")
    proc.add_argument("--task-id", default="0", help="Identifier of the task (default: 0).")
    _session_start_option(proc)
    proc.add_argument("--backend", choices=("hdf5", "zarr"), default="hdf5", help="File format (default: hdf5).")
    proc.add_argument("--quiet", action="store_true", help="No progress bar and no summary.")
    proc.add_argument("--overwrite", action="store_true", help="Replace OUT.nwb if it exists.")
    proc.add_argument("--timings-json", help=argparse.SUPPRESS)
    proc.set_defaults(handler=_cmd_process)

    run = commands.add_parser("run", help="Run one session spec end to end (probe, process or load, NWB, plot).")
    run.add_argument("session", metavar="SESSION.yaml", help="Session spec (see facemap_nwb.session).")
    run.add_argument("--force", action="store_true", help="Recompute the task even if its results are cached.")
    run.add_argument("--overwrite", action="store_true", help="Replace the session's NWB file if it exists.")
    run.add_argument("--quiet", action="store_true", help="No progress bar.")
    run.add_argument("--backend", choices=("hdf5", "zarr"), default="hdf5", help="File format (default: hdf5).")
    _videos_option(run)
    _session_start_option(run, "the spec's session.session_start_time")
    run.set_defaults(handler=_cmd_run)

    batch = commands.add_parser("batch", help="Run many session specs on Dask (a local cluster by default).")
    batch.add_argument("sessions", nargs="+", metavar="SESSION.yaml", help="Session specs.")
    batch.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (default: a local cluster).")
    batch.add_argument("--workers", type=_whole_number, default=2, help="Workers of the local cluster (default: 2).")
    batch.add_argument("--retries", type=int, default=1, help="Retries of a failed session (default: 1).")
    batch.add_argument("--force", action="store_true", help="Recompute tasks even if their results are cached.")
    batch.add_argument("--overwrite", action="store_true", help="Redo sessions whose NWB file exists.")
    batch.add_argument("--backend", choices=("hdf5", "zarr"), default="hdf5", help="File format (default: hdf5).")
    batch.add_argument("--quiet", action="store_true", help="No progress bar (the summary is still printed).")
    _videos_option(batch)
    _session_start_option(batch, "each spec's session.session_start_time")
    batch.set_defaults(handler=_cmd_batch)

    schema = commands.add_parser(
        "schema", help="Print (or write) the JSON schema of session specs; schemas/session.schema.json holds it."
    )
    schema.add_argument("--output", "-o", metavar="FILE.json", help="Write it to this file instead of printing it.")
    schema.add_argument("--overwrite", action="store_true", help="Replace the file if it exists.")
    schema.set_defaults(handler=_cmd_schema)

    plot = commands.add_parser("plot", help="Draw a summary PNG of the Facemap results in an NWB file.")
    plot.add_argument("nwb_file", metavar="FILE.nwb", help="NWB file with Facemap results.")
    plot.add_argument("--output", "-o", required=True, metavar="summary.png", help="PNG file to write.")
    plot.add_argument("--task-id", help="The task to draw, when the file holds several.")
    plot.add_argument("--overwrite", action="store_true", help="Replace the PNG if it exists.")
    plot.set_defaults(handler=_cmd_plot)

    demo = commands.add_parser(
        "demo",
        help="Run the built-in example on a synthetic face video.",
        description="Make a synthetic face video (two files), process it, write face_part1.mp4, face_part2.mp4, "
        "sub-demo_ses-demo_behavior+image.nwb and its summary PNG sub-demo_ses-demo_behavior+image.png into DIR, "
        "and validate the NWB file. Existing files are never replaced without --overwrite.",
    )
    demo.add_argument(
        "--output-dir",
        "-o",
        metavar="DIR",
        default=None,
        help="Folder for the example's videos, NWB file and summary PNG (default: 'demo' in the current folder).",
    )
    demo.add_argument(
        "--overwrite", action="store_true", help="Replace the files of an earlier demo in DIR (refused otherwise)."
    )
    demo.set_defaults(handler=_cmd_demo)
    for sub in commands.choices.values():
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def _input_of(args: argparse.Namespace) -> str:
    """The input a command was given, for the message of an unexpected error."""
    for key in ("videos", "proc_file", "session", "sessions", "nwb_file"):
        value = getattr(args, key, None)
        if value:
            return ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return "its input"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Bad input (``ValueError``, ``OSError``: a file, a value, a disk) and a missing optional dependency print
    one line and give exit code 1; any other exception is a bug or an environment problem: one line naming
    the command and the input, exit code 2, and the traceback with ``--debug``.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error (already printed)
        return stop.code if isinstance(stop.code, int) else EXIT_OK if stop.code is None else EXIT_ERROR
    prefix = f"facemap-nwb {args.command}: error:"
    try:
        return args.handler(args)
    except BrokenPipeError:  # the reader of our output went away (e.g. `| head`): nothing left to say
        sys.stderr.close()
        return EXIT_OK
    except (ValueError, OSError, ImportError) as err:  # VideoError, InputError, FileExistsError, missing extras...
        sys.stderr.write(f"{prefix} {_one_line(err)}\n")
        return EXIT_ERROR
    except KeyboardInterrupt:
        sys.stderr.write(f"facemap-nwb {args.command}: interrupted; no output was published.\n")
        return 130
    except Exception as err:  # noqa: BLE001 - the one place that turns a bug into a message
        if args.debug:
            raise
        sys.stderr.write(
            f"facemap-nwb {args.command}: unexpected error on {_input_of(args)}: {type(err).__name__}: "
            f"{_one_line(err)}. Run again with --debug to see the traceback, and please report it.\n"
        )
        return EXIT_UNEXPECTED


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


if __name__ == "__main__":
    sys.exit(main())
