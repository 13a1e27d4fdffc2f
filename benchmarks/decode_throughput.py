"""Decode-only throughput of the grayscale streaming reader next to OpenCV's read + cvtColor loop.

    python benchmarks/decode_throughput.py VIDEO [VIDEO ...] [--repeat 3] [--chunk 256]

Prints, for each video, frames per second of: probing (full decode, no pixels), our reader
(luma table or BGR path, as chosen automatically), our reader forced to the BGR path, and the
OpenCV loop Facemap uses (``VideoCapture.read`` then ``cvtColor(COLOR_BGR2GRAY)``), with the
ratio to OpenCV. Best of ``--repeat`` runs, all in this one process.
"""

from __future__ import annotations

import argparse
import os
import sys
import time


def best_time(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def opencv_loop(path: str) -> int:
    import cv2

    capture = cv2.VideoCapture(path)
    count = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        count += 1
    capture.release()
    return count


def ours(recording, mode: str, chunk: int) -> int:
    from facemap_nwb import GrayFrameReader

    return sum(len(frames) for _, frames in GrayFrameReader(recording, mode=mode).iter_chunks(chunk))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=256)
    args = parser.parse_args()
    from facemap_nwb import probe_recording

    write = sys.stdout.write
    write(f"cores: {os.cpu_count()}, best of {args.repeat}\n")
    for video in args.videos:
        recording = probe_recording([video])
        n = recording.frame_count
        write(f"\n{video}: {n} frames, {recording.width}x{recording.height}, {recording.files[0].codec}\n")
        results = {
            "probe (decode, no pixels)": best_time(lambda: probe_recording([video]), args.repeat),
            "facemap_nwb reader (auto)": best_time(lambda: ours(recording, "auto", args.chunk), args.repeat),
            "facemap_nwb reader (bgr path)": best_time(lambda: ours(recording, "bgr", args.chunk), args.repeat),
            "OpenCV read + cvtColor": best_time(lambda: opencv_loop(video), args.repeat),
        }
        reference = results["OpenCV read + cvtColor"]
        for name, seconds in results.items():
            write(f"  {name:32s} {seconds:7.3f} s  {n / seconds:9.0f} frames/s  {reference / seconds:5.2f}x OpenCV\n")


if __name__ == "__main__":
    main()
