"""Small synthetic face-camera videos for the demo and the tests.

The scene is a cartoon of what a face camera sees, with known, smooth dynamics: a bright face
on a dark background, an eye whose pupil grows, shrinks and drifts, blinks at known frames,
whiskers that sweep back and forth, and a striped wheel under the paws that moves at a known
speed. Frame ``t`` of the movie depends only on ``t``, so a movie cut into sequential files
(``first_frame``) is the same movie as one file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = ["face_frame", "make_face_video", "BLINK_PERIOD", "BLINK_LENGTH"]

BLINK_PERIOD = 60  # a blink starts every BLINK_PERIOD frames ...
BLINK_LENGTH = 4  # ... and closes the eye for BLINK_LENGTH frames


def _scene_geometry(height: int, width: int) -> dict:
    return {
        "face": (0.45 * height, 0.5 * width, 0.38 * height, 0.42 * width),
        "eye": (0.33 * height, 0.36 * width, 0.09 * height, 0.12 * width),
        "whisker_origin": (0.52 * height, 0.68 * width),
        "wheel_top": int(0.82 * height),
    }


def face_frame(t: int, height: int = 120, width: int = 160, *, seed: int = 0) -> np.ndarray:
    """Frame ``t`` of the synthetic face movie, as (height, width) uint8 gray values."""
    g = _scene_geometry(height, width)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = 30.0 + 25.0 * x / width + 10.0 * y / height
    fy, fx, fh, fw = g["face"]
    img = np.where(((y - fy) / fh) ** 2 + ((x - fx) / fw) ** 2 <= 1.0, 150.0, img)
    ey, ex, eh, ew = g["eye"]
    eye = ((y - ey) / eh) ** 2 + ((x - ex) / ew) ** 2 <= 1.0
    blinking = (t % BLINK_PERIOD) < BLINK_LENGTH and t >= BLINK_PERIOD
    if not blinking:
        img = np.where(eye, 200.0, img)
        radius = eh * (0.55 + 0.25 * np.sin(2 * np.pi * t / 40.0))
        px = ex + 0.25 * ew * np.sin(2 * np.pi * t / 55.0)
        img = np.where(eye & ((y - ey) ** 2 + (x - px) ** 2 <= radius**2), 15.0, img)
    wy, wx = g["whisker_origin"]
    angle = 0.35 * np.sin(2 * np.pi * t / 9.0)
    for k, base in enumerate((-0.5, -0.2, 0.1, 0.4)):
        theta = base + angle
        dy, dx = np.sin(theta), np.cos(theta)
        along = (x - wx) * dx + (y - wy) * dy
        across = np.abs(-(x - wx) * dy + (y - wy) * dx)
        img = np.where((along > 0) & (along < 0.3 * width) & (across < 0.8), 235.0 - 10 * k, img)
    top = g["wheel_top"]
    shift = 1.5 * t + 4.0 * np.sin(2 * np.pi * t / 70.0)
    stripes = 90.0 + 60.0 * np.sin(2 * np.pi * (x[top:] - shift) / 14.0)
    img[top:] = stripes
    noise = np.random.default_rng([seed, t]).normal(0.0, 2.0, size=img.shape)
    return np.clip(img + noise, 0, 255).astype(np.uint8)


def make_face_video(
    path: str | os.PathLike,
    *,
    n_frames: int = 150,
    height: int = 120,
    width: int = 160,
    rate: float = 30.0,
    first_frame: int = 0,
    creation_time: datetime | None = None,
    timestamps: Sequence[float] | None = None,
    codec: str = "libx264",
    color: bool = False,
    seed: int = 0,
) -> Path:
    """Write a synthetic face video and return its path.

    Parameters
    ----------
    path : path
        Output file; the container follows its extension (``.mp4``, ``.mkv``, ``.avi``).
    n_frames : int
        Number of frames.
    height, width : int
        Frame size (even numbers, for 4:2:0 chroma).
    rate : float
        Frame rate in frames per second (the nominal rate when ``timestamps`` is given).
    first_frame : int
        Index of the first frame in the whole synthetic movie, to cut it into sequential files.
    creation_time : datetime, optional
        Written as the container's ``creation_time`` tag.
    timestamps : sequence of float, optional
        Presentation time of every frame in seconds (millisecond resolution), for variable
        frame rate videos.
    codec : str
        FFmpeg encoder, ``"libx264"`` by default; ``"mpeg4"`` for AVI.
    color : bool
        Tint the scene so that the colour planes are not neutral.
    seed : int
        Seed of the sensor noise.
    """
    path = Path(path)
    if timestamps is not None and len(timestamps) != n_frames:
        raise ValueError(f"timestamps has {len(timestamps)} values for {n_frames} frames; give one per frame.")
    with av.open(str(path), "w") as container:
        if creation_time is not None:
            stamp = creation_time.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            container.metadata["creation_time"] = stamp
        stream = container.add_stream(codec, rate=Fraction(rate).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if timestamps is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(n_frames):
            gray = face_frame(first_frame + i, height, width, seed=seed)
            if color:
                rgb = np.stack([gray, (gray * 0.75).astype(np.uint8), (gray * 0.45).astype(np.uint8)], axis=-1)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            else:
                frame = av.VideoFrame.from_ndarray(gray, format="gray")
            if timestamps is not None:
                frame.pts = int(round(timestamps[i] * 1000))
                frame.time_base = Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def default_creation_time() -> datetime:
    """A fixed creation time for reproducible demo videos."""
    return datetime(2024, 5, 6, 12, 30, 0, tzinfo=timezone.utc)
