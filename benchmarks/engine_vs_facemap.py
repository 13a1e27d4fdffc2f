"""The native engine against ``facemap.process.run``, on any video, in one run on one machine.

    python benchmarks/engine_vs_facemap.py VIDEO [VIDEO ...] [--sbin N] [--movie-svd] [--no-motion-svd]
                                           [--rois PARAMS.yaml] [--engines native,facemap] [--keep DIR]

VIDEO... are one camera's sequential files. Each engine runs in its own subprocess, one after the
other, on the same input. For each it prints the time of the processing call alone (video in,
results in memory: probing included for ours; Facemap's own ``save`` is held back and timed apart),
the time of the whole command (process start to finish: imports, processing and writing the output,
NWB for ours and ``_proc.npy`` for Facemap), and the peak resident memory; then the ratios, the
decode-only time of the video, where our time went (decoding, averages, SVD, projection), and the
parity figures of the native results against Facemap's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


def _parameters(args):
    from dataclasses import replace

    from facemap_nwb.params import FacemapParameters

    params = FacemapParameters.from_file(args.rois) if args.rois else FacemapParameters()
    return replace(params, spatial_bin=args.sbin, motion_svd=args.motion_svd, movie_svd=args.movie_svd)


def _peak_mb() -> float:
    from facemap_nwb.engines.frames import peak_memory_mb  # VmHWM: not inherited from this benchmark

    return peak_memory_mb()


def facemap_worker(args) -> None:
    """Runs in the subprocess: facemap.process.run, its own save timed apart, timings to a JSON file."""
    import contextlib
    import io

    from facemap import process

    out = Path(args.keep)
    params = _parameters(args)
    held = {}
    real_save = process.save
    process.save = lambda proc, savepath=None: held.update(proc=proc) or ""
    proc = {
        "sbin": params.spatial_bin,
        "fullSVD": params.multivideo_svd,
        "save_mat": False,
        "rois": params.facemap_rois(),
        "sy": [0],
        "sx": [0],
        "savepath": str(out),
    }
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        process.run(
            [[str(v)] for v in args.videos],
            sbin=params.spatial_bin,
            motSVD=params.motion_svd,
            movSVD=params.movie_svd,
            proc=proc,
        )
    processing = time.perf_counter() - start
    saved = real_save(held["proc"], str(out))
    report = {"processing": processing, "output": saved, "peak_mb": _peak_mb()}
    (out / "facemap.json").write_text(json.dumps(report))


def _command(engine: str, argv: list[str], folder: Path) -> list[str]:
    if engine == "facemap":
        return [sys.executable, str(HERE), *argv, "--worker", "facemap", "--keep", str(folder)]
    # Ours is the real command a user runs: facemap-nwb process (NWB written and validated).
    videos, options = [a for a in argv if not a.startswith("-") and Path(a).exists()], []
    args = iter(argv[len(videos) :])
    for item in args:
        if item == "--sbin":
            options += ["--sbin", next(args)]
        elif item == "--rois":
            options += ["--rois", next(args)]
        else:
            options.append(item)
    return [
        sys.executable,
        "-m",
        "facemap_nwb",
        "process",
        *videos,
        *options,
        "--quiet",
        "--session-start",
        "2024-01-01T00:00:00+00:00",
        "--overwrite",
        "-o",
        str(folder / "native.nwb"),
        "--timings-json",
        str(folder / "native.json"),
    ]


def run_engine(engine: str, argv: list[str], folder: Path) -> dict:
    start = time.perf_counter()
    subprocess.run(_command(engine, argv, folder), check=True)
    report = json.loads((folder / f"{engine}.json").read_text())
    report["command"] = time.perf_counter() - start
    report.setdefault("output", str(folder / "native.nwb"))
    return report


def decode_only(videos) -> float:
    from facemap_nwb import GrayFrameReader, probe_recording

    recording = probe_recording(videos, decode=False)
    start = time.perf_counter()
    for _ in GrayFrameReader(recording).iter_chunks(256):
        pass
    return time.perf_counter() - start


def _r(a, b) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.corrcoef(a[ok], b[ok])[0, 1])


def parity(native_nwb: str, facemap_npy: str) -> list[tuple[str, float, str]]:
    """(figure, value, floor) rows: native results against Facemap's on the same input."""
    from facemap_nwb.loaders.facemap import load_facemap_results
    from facemap_nwb.nwb.io import read_facemap_nwb

    ours, theirs = read_facemap_nwb(native_nwb), load_facemap_results(facemap_npy)
    rows = []
    for region, trace in theirs.motion_energy.items():
        rows.append(
            (f"motion energy r, {theirs.regions[region].name}", _r(trace, ours.motion_energy[region]), ">= 0.9999")
        )
    rows.append(("average frame max |diff|", float(np.abs(ours.average_frame - theirs.average_frame).max()), "<= 1.0"))
    rows.append(
        ("average motion max |diff|", float(np.abs(ours.average_motion - theirs.average_motion).max()), "<= 1.0")
    )
    for kind in ("motion", "movie"):
        for a, b in zip(theirs.svds(kind), ours.svds(kind)):
            k = min(10, a.n_components, b.n_components)
            temporal = min(abs(_r(a.projections[:, c], b.projections[:, c])) for c in range(k))
            spatial = min(abs(_r(a.masks[c], b.masks[c])) for c in range(k))
            name = theirs.regions[a.region].name
            rows.append((f"{kind} SVD top-{k} temporal min |r|, {name}", temporal, ">= 0.99"))
            rows.append((f"{kind} SVD top-{k} masks min |r|, {name}", spatial, ">= 0.99"))
    for a, b in zip(theirs.pupils, ours.pupils):
        rows.append(("pupil area r", _r(a.area, b.area), ">= 0.99"))
        rows.append(("pupil centre r (y, x)", min(_r(a.center[:, i], b.center[:, i]) for i in (0, 1)), ">= 0.99"))
    for region, trace in theirs.blinks.items():
        rows.append(("blink r", _r(trace, ours.blinks[region]), ">= 0.999"))
    for region, trace in theirs.running.items():
        rows.append(("running r (dy, dx)", min(_r(trace[:, i], ours.running[region][:, i]) for i in (0, 1)), ">= 0.99"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--sbin", type=int, default=4)
    parser.add_argument("--movie-svd", action=argparse.BooleanOptionalAction, default=False)
    parser.add_argument("--motion-svd", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--rois", help="parameters/ROIs (YAML or JSON) for both engines")
    parser.add_argument("--engines", default="native,facemap")
    parser.add_argument("--keep", help="folder for the outputs (default: a temporary one)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        facemap_worker(args)
        return
    write = sys.stdout.write
    folder = Path(args.keep or tempfile.mkdtemp(prefix="facemap-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    argv = [*args.videos, "--sbin", str(args.sbin)]
    argv += ["--movie-svd"] if args.movie_svd else ["--no-movie-svd"]
    argv += ["--motion-svd"] if args.motion_svd else ["--no-motion-svd"]
    argv += ["--rois", args.rois] if args.rois else []
    reports = {engine: run_engine(engine, argv, folder) for engine in args.engines.split(",")}
    decode = decode_only(args.videos)
    write(f"\n{', '.join(args.videos)}: sbin={args.sbin} motion_svd={args.motion_svd} movie_svd={args.movie_svd}")
    write(f" rois={args.rois or 'none'}; {os.cpu_count()} cores\n")
    write(f"{'engine':10s} {'processing s':>13s} {'command s':>10s} {'peak MB':>9s}\n")
    for engine, rep in reports.items():
        write(f"{engine:10s} {rep['processing']:13.2f} {rep['command']:10.2f} {rep['peak_mb']:9.0f}\n")
    if {"native", "facemap"} <= reports.keys():
        n, f = reports["native"], reports["facemap"]
        write(
            f"ratios (facemap / native): processing {f['processing'] / n['processing']:.1f}x, "
            f"command {f['command'] / n['command']:.1f}x, native peak memory {100 * n['peak_mb'] / f['peak_mb']:.0f}% "
            "of facemap's\n"
        )
    write(f"decode-only (grayscale, all frames): {decode:.2f} s\n")
    if "native" in reports:
        t, total = reports["native"]["timings"], reports["native"]["processing"]
        shares = {k: t.get(k, 0.0) for k in ("decode", "averages", "svd", "projection")}
        write("native time: " + ", ".join(f"{k} {v:.2f} s ({100 * v / total:.0f}%)" for k, v in shares.items()))
        write(f", other {total - sum(shares.values()):.2f} s; video decoded {t.get('decodes', 0)} time(s)\n")
        write("  (projection includes motion energy, pupil, blink and running: the last pass over all frames)\n")
    if {"native", "facemap"} <= reports.keys():
        write("parity (native vs facemap):\n")
        for name, value, floor in parity(reports["native"]["output"], reports["facemap"]["output"]):
            write(f"  {name:48s} {value:10.5f}   floor {floor}\n")


if __name__ == "__main__":
    main()
