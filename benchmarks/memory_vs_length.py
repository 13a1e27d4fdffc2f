"""Peak memory and time of `facemap-nwb process` against video length, on synthetic face videos.

    python benchmarks/memory_vs_length.py [--frames 2000 20000] [--size 120x160] [--sbin 2]
                                          [--memory-budget MiB] [--keep DIR]

Makes one synthetic video per length (same scene, same size), runs the real command on each in its own
process (motion SVD, full frame, native engine; NWB written and validated) and prints peak resident
memory, wall time, the time of the processing call, and the ratios to the shortest video. The memory
budget is the amount of binned frames the engine keeps in memory; a video over it keeps them (and its
SVD projections) in temporary files, read back in pieces, so memory stays flat; every frame is decoded
once either way.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(video: Path, out: Path, args) -> dict:
    timings = out.with_suffix(".json")
    command = [sys.executable, "-m", "facemap_nwb", "process", str(video), "-o", str(out), "--overwrite", "--quiet"]
    command += ["--sbin", str(args.sbin), "--no-movie-svd", "--session-start", "2024-01-01T00:00:00+00:00"]
    command += ["--timings-json", str(timings)]
    if args.memory_budget is not None:
        command += ["--memory-budget", str(args.memory_budget)]
    start = time.perf_counter()
    subprocess.run(command, check=True)
    report = json.loads(timings.read_text())
    report["command"] = time.perf_counter() - start
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--size", default="120x160", help="HEIGHTxWIDTH of the synthetic video")
    parser.add_argument("--sbin", type=int, default=2)
    parser.add_argument("--memory-budget", type=float, help="MiB of binned frames kept in memory")
    parser.add_argument("--keep", help="folder for videos and outputs (default: a temporary one)")
    args = parser.parse_args()
    from facemap_nwb.synthetic import make_face_video

    height, width = (int(v) for v in args.size.split("x"))
    folder = Path(args.keep or tempfile.mkdtemp(prefix="facemap-length-"))
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.frames:
        video = folder / f"face_{n}.mp4"
        if not video.exists():
            make_face_video(video, n_frames=n, height=height, width=width)
        rows.append((n, run(video, folder / f"face_{n}.nwb", args)))
    write = sys.stdout.write
    budget = "engine default" if args.memory_budget is None else f"{args.memory_budget:g} MiB"
    write(f"\nsynthetic {width}x{height}, sbin {args.sbin}, motion SVD, memory budget {budget}\n")
    write(f"{'frames':>8s} {'peak MB':>9s} {'command s':>10s} {'processing s':>13s} {'decodes':>8s}\n")
    for n, rep in rows:
        decodes = rep["timings"].get("decodes", "")
        write(f"{n:8d} {rep['peak_mb']:9.0f} {rep['command']:10.2f} {rep['processing']:13.2f} {decodes!s:>8s}\n")
    n0, first = rows[0]
    for n, rep in rows[1:]:
        write(
            f"{n} vs {n0} frames ({n / n0:.0f}x longer): peak memory {rep['peak_mb'] / first['peak_mb']:.2f}x, "
            f"processing time {rep['processing'] / first['processing']:.1f}x, "
            f"command {rep['command'] / first['command']:.1f}x\n"
        )


if __name__ == "__main__":
    main()
