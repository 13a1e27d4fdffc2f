"""Workloads like real sessions, built from the shared videos (or any video) by the benchmarks.

    python benchmarks/workloads.py FOLDER [--data ../shared/data]

* ``a``: ``lp_test_vid.mp4`` three times as sequential files of one recording (2,982 frames: two SVD
  segments, so the multi-segment merge runs);
* ``b``: a 1024x1024 recording of 3,300 frames: ``centered_pair_small.mp4`` upscaled (bilinear, so the
  texture is the real video's) and played three times, encoded H.264 (yuv420p, CRF 18);
* ``c10k`` / ``c100k``: ``lp_test_vid.mp4`` repeated as 10 and 101 sequential files (9,940 and 100,394
  frames). The copies are hard links where the file system allows (the reader opens each file by its own
  path, so a link is a separate file to it), else copies.

Each workload is made once and reused (a file ``DONE`` marks a complete one).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def _sequential(folder: Path, source: Path, copies: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(copies):
        target = folder / f"{source.stem}_part{i:03d}{source.suffix}"
        if not target.exists():
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
        paths.append(target)
    return paths


def _upscaled(target: Path, source: Path, size: int, frames: int) -> None:
    import av
    import cv2
    import numpy as np

    from facemap_nwb import GrayFrameReader, probe_recording

    recording = probe_recording([source], decode=False)
    original = np.concatenate([chunk for _, chunk in GrayFrameReader(recording).iter_chunks(256)])
    temporary = target.with_suffix(".partial.mp4")
    with av.open(str(temporary), "w") as container:
        stream = container.add_stream("libx264", rate=int(round(recording.rate or 30)))
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for t in range(frames):
            big = cv2.resize(original[t % len(original)], (size, size), interpolation=cv2.INTER_LINEAR)
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(big), format="gray")
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    temporary.replace(target)


def build(folder: Path, data: Path = DEFAULT_DATA) -> dict[str, list[Path]]:
    """Make (or reuse) every workload under ``folder``; returns the sequential files of each."""
    lp, flies = data / "lp_test_vid.mp4", data / "centered_pair_small.mp4"
    for needed in (lp, flies):
        if not needed.is_file():
            raise SystemExit(f"{needed} is missing: give --data, the folder of the shared videos.")
    out = {
        "a": _sequential(folder / "a", lp, 3),
        "c10k": _sequential(folder / "c10k", lp, 10),
        "c100k": _sequential(folder / "c100k", lp, 101),
    }
    b = folder / "b" / "flies_1024x1024_3300.mp4"
    if not (folder / "b" / "DONE").exists():
        b.parent.mkdir(parents=True, exist_ok=True)
        _upscaled(b, flies, 1024, 3300)
        (folder / "b" / "DONE").write_text("")
    out["b"] = [b]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    for name, paths in build(args.folder, args.data).items():
        sys.stdout.write(f"{name}: {len(paths)} file(s), first {paths[0]}\n")


if __name__ == "__main__":
    main()
