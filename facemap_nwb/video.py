"""Probe face-camera videos and stream their frames as grayscale, the way Facemap reads them.

A *video file* is one container on disk; a *recording* is one camera's video, split into one
or more sequential files (element-facemap's ``VideoRecording`` and ``VideoRecording.File``).
:func:`probe_video` measures one file (element-facemap's ``RecordingInfo``), :func:`probe_recording`
checks that sequential files fit together, and :class:`GrayFrameReader` streams grayscale frames
in chunks for the processing engines.

Decisions worth knowing:

* The frame count is the number of frames that really decode, never the container header's
  figure. A decode error, or a header that promises more frames than decode, is reported as a
  truncated or corrupt file instead of being silently shortened.
* The frame rate is the stream's average rate (frames per second, a float). Timestamps are the
  presentation times of the frames in seconds, relative to the file's first frame.
* The duration is the time from the first frame to the end of the last one:
  ``timestamps[-1] - timestamps[0] + 1 / rate`` (``frame_count / rate`` for a regular video).
* A file is *regular* when every frame interval equals ``1 / rate`` within one tick of the
  stream's time base (containers such as Matroska store milliseconds, so 30 fps alternates
  between 33 and 34 ms).
* Grayscale matches Facemap, which reads BGR frames with OpenCV and converts them with
  ``cv2.COLOR_BGR2GRAY``. For 8-bit YUV video whose colour planes are neutral (the usual
  monochrome or infrared face camera) the gray value is a fixed function of the luma plane, so
  we read luma directly and map it through a 256-entry table; any other video goes through a
  BGR decode and OpenCV's own fixed-point gray formula. Both agree with OpenCV within one gray
  level.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = [
    "VideoError",
    "VideoFileInfo",
    "VideoRecording",
    "GrayFrameReader",
    "probe_video",
    "probe_recording",
]


class VideoError(ValueError):
    """A video file cannot be used: missing, unreadable, empty, truncated, or inconsistent."""


# Relative tolerance for "same frame rate" across the files of one recording.
_RATE_RTOL = 1e-3
# Containers may claim slightly more frames than decode (edit lists, open GOPs at the start);
# more missing than this means the file lost data.
_MAX_HEADER_SHORTFALL = 2
# FFmpeg log messages that mean the container ended before its data did.
_TRUNCATION_MARKERS = ("ended prematurely", "truncat", "moov atom not found", "partial file")


@dataclass(frozen=True)
class VideoFileInfo:
    """What one video file holds (element-facemap's ``RecordingInfo`` for a single file).

    Attributes
    ----------
    path : Path
        The file, as given to :func:`probe_video` (absolute).
    height, width : int
        Frame size in pixels.
    frame_count : int
        Number of frames that decode.
    rate : float
        Average frame rate in frames per second.
    duration : float
        Seconds from the first frame to the end of the last frame.
    creation_time : datetime or None
        The container's ``creation_time`` tag (time-zone aware), or None when it has none.
    codec : str
        FFmpeg's codec name, e.g. ``"h264"``.
    pixel_format : str
        FFmpeg's pixel format name, e.g. ``"yuv420p"``.
    timestamps : numpy.ndarray
        Presentation time of each frame in seconds, relative to the first frame (float64).
    time_base : Fraction
        The stream's time base, the resolution of the timestamps.
    """

    path: Path
    height: int
    width: int
    frame_count: int
    rate: float
    duration: float
    creation_time: datetime | None
    codec: str
    pixel_format: str
    timestamps: np.ndarray = field(repr=False)
    time_base: Fraction = Fraction(1, 1_000_000)

    @property
    def is_regular(self) -> bool:
        """True when every frame interval equals ``1 / rate`` within one time-base tick."""
        return _is_regular(self.timestamps, self.rate, self.time_base)

    def as_dict(self) -> dict:
        """The fields as JSON-ready values (timestamps left out)."""
        return {
            "path": str(self.path),
            "height": self.height,
            "width": self.width,
            "frame_count": self.frame_count,
            "rate": self.rate,
            "duration": self.duration,
            "creation_time": self.creation_time.isoformat() if self.creation_time else None,
            "codec": self.codec,
            "pixel_format": self.pixel_format,
            "regular": self.is_regular,
        }


@dataclass(frozen=True)
class VideoRecording:
    """One camera's recording: one or more sequential video files of the same size and rate.

    Build it with :func:`probe_recording`, which checks that the files fit together.

    Attributes
    ----------
    name : str
        A name for the recording, used as the NWB ``ImageSeries`` name (e.g. ``"FaceCamera"``).
    files : tuple of VideoFileInfo
        The files in playback order.
    device : str
        Name of the camera that made it (the NWB ``Device``).
    """

    name: str
    files: tuple[VideoFileInfo, ...]
    device: str = "FaceCamera"

    @property
    def height(self) -> int:
        return self.files[0].height

    @property
    def width(self) -> int:
        return self.files[0].width

    @property
    def rate(self) -> float:
        return self.files[0].rate

    @property
    def frame_counts(self) -> list[int]:
        return [f.frame_count for f in self.files]

    @property
    def frame_count(self) -> int:
        return sum(self.frame_counts)

    @property
    def starting_frames(self) -> list[int]:
        """Index, in the whole recording, of each file's first frame."""
        return [int(s) for s in np.concatenate([[0], np.cumsum(self.frame_counts)[:-1]])]

    @property
    def duration(self) -> float:
        return float(sum(f.duration for f in self.files))

    @property
    def start_time(self) -> datetime | None:
        """Creation time of the first file, when its container holds one."""
        return self.files[0].creation_time

    @property
    def is_regular(self) -> bool:
        return all(f.is_regular for f in self.files)

    @property
    def timestamps(self) -> np.ndarray:
        """Per-frame times in seconds from the first frame; each file starts where the last ended."""
        offsets = np.concatenate([[0.0], np.cumsum([f.duration for f in self.files])[:-1]])
        return np.concatenate([f.timestamps + off for f, off in zip(self.files, offsets)])

    @property
    def paths(self) -> list[Path]:
        return [f.path for f in self.files]


def _is_regular(timestamps: np.ndarray, rate: float, time_base: Fraction) -> bool:
    if len(timestamps) < 2:
        return True
    tolerance = float(time_base) * 1.001 + 1e-9
    return bool(np.max(np.abs(np.diff(timestamps) - 1.0 / rate)) <= tolerance)


def _check_file(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(
            f"Video file not found: '{path}'. Check the path, or the root folders it is searched in."
        )
    if path.is_dir():
        raise VideoError(f"'{path}' is a folder, not a video file. Pass the video files inside it.")
    if path.stat().st_size == 0:
        raise VideoError(f"Video file '{path}' is empty (0 bytes). Copy the recording again.")
    return path.resolve()


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as err:
        reason = _ffmpeg_reason(err)
        raise VideoError(
            f"'{path}' is not a readable video ({reason}). It may be truncated, corrupt or not a "
            "video at all: check the file, or copy it again from the acquisition machine."
        ) from err
    if not container.streams.video:
        container.close()
        raise VideoError(
            f"'{path}' holds no video frames (the container has no video stream). "
            "Check that the recording was saved completely, and pass the camera's video file."
        )
    return container


def _ffmpeg_reason(err: Exception) -> str:
    text = str(err)
    if "last error log:" in text:
        return text.split("last error log:")[-1].strip().rstrip(".")
    return (getattr(err, "strerror", None) or text).strip().rstrip(".")


def _creation_time(container: av.container.InputContainer) -> datetime | None:
    stream = container.streams.video[0]
    for metadata in (container.metadata, stream.metadata):
        value = metadata.get("creation_time")
        if value:
            try:
                stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            # FFmpeg writes UTC; a tag without a zone is read as UTC too.
            return stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
    return None


def _decode_timestamps(container: av.container.InputContainer, path: Path) -> np.ndarray:
    """Decode every frame (threaded) and return their presentation timestamps in ticks."""
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    pts: list[int | None] = []
    previous_level, previous_skip = av.logging.get_level(), av.logging.get_skip_repeated()
    av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)  # else a second probe of the same damaged file hears nothing
    try:
        with av.logging.Capture(local=False) as logs:
            try:
                for frame in container.decode(stream):
                    pts.append(frame.pts)
            except av.error.FFmpegError as err:
                raise VideoError(
                    f"Frame {len(pts)} of '{path}' does not decode ({_ffmpeg_reason(err)}): the file is "
                    "truncated or corrupt. Copy it again, or cut it before that frame (e.g. with ffmpeg -frames:v)."
                ) from err
    finally:
        av.logging.set_level(previous_level)
        av.logging.set_skip_repeated(previous_skip)
    messages = " ".join(str(entry[-1]) for entry in logs).lower()
    if any(marker in messages for marker in _TRUNCATION_MARKERS):
        raise VideoError(
            f"'{path}' is truncated: the container ends before its data ({len(pts)} frames decoded). "
            "Copy the file again from the acquisition machine."
        )
    if stream.frames and len(pts) < stream.frames - _MAX_HEADER_SHORTFALL:
        raise VideoError(
            f"'{path}' is truncated or corrupt: its header lists {stream.frames} frames but only "
            f"{len(pts)} decode. Copy the file again from the acquisition machine."
        )
    if any(p is None for p in pts):
        return np.array([], dtype=np.int64) if not pts else np.full(len(pts), -1, dtype=np.int64)
    return np.asarray(pts, dtype=np.int64)


def _demux_timestamps(container: av.container.InputContainer, path: Path) -> np.ndarray:
    """Presentation timestamps (ticks) of every video packet, sorted, without decoding."""
    stream = container.streams.video[0]
    try:
        pts = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
    except av.error.FFmpegError as err:
        raise VideoError(f"'{path}' cannot be read to the end ({_ffmpeg_reason(err)}): copy it again.") from err
    return np.sort(np.asarray(pts, dtype=np.int64))


def probe_video(path: str | os.PathLike, *, decode: bool = True) -> VideoFileInfo:
    """Measure one video file.

    Parameters
    ----------
    path : str or PathLike
        The video file.
    decode : bool, default True
        Decode every frame, so that the frame count is the number of frames that really decode
        and damage is found now. With False only the packets are read (about 20 times faster);
        the count is then the number of stored frames, and :class:`GrayFrameReader` checks it
        when it decodes.

    Returns
    -------
    VideoFileInfo

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    VideoError
        The file is a folder, empty, not a video, truncated, corrupt, or holds no frames.
    """
    path = _check_file(Path(path))
    with _open(path) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        pixel_format = stream.codec_context.format.name if stream.codec_context.format else ""
        height, width = stream.codec_context.height, stream.codec_context.width
        time_base = stream.time_base or Fraction(1, 1_000_000)
        creation_time = _creation_time(container)
        ticks = _decode_timestamps(container, path) if decode else _demux_timestamps(container, path)
        average_rate = stream.average_rate or stream.guessed_rate
    frame_count = len(ticks)
    if frame_count == 0:
        raise VideoError(f"'{path}' holds no decodable frames. Check that the recording was saved completely.")
    rate = float(average_rate) if average_rate else math.nan
    if np.all(ticks >= 0):
        timestamps = (ticks - ticks[0]) * float(time_base)
        if not rate > 0 and frame_count > 1:
            rate = (frame_count - 1) / timestamps[-1]
    else:  # no presentation times in the stream: assume a regular clock
        timestamps = np.arange(frame_count) / rate
    if not rate > 0:
        raise VideoError(f"'{path}' has no frame rate in its stream; re-encode it with an explicit rate (ffmpeg -r).")
    duration = float(timestamps[-1] - timestamps[0] + 1.0 / rate)
    return VideoFileInfo(
        path=path,
        height=int(height),
        width=int(width),
        frame_count=frame_count,
        rate=rate,
        duration=duration,
        creation_time=creation_time,
        codec=codec,
        pixel_format=pixel_format,
        timestamps=timestamps,
        time_base=Fraction(time_base),
    )


def probe_recording(
    paths: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    name: str = "FaceCamera",
    device: str | None = None,
    decode: bool = True,
) -> VideoRecording:
    """Probe one camera's recording made of one or more sequential files.

    Parameters
    ----------
    paths : path or sequence of paths
        The files in playback order.
    name : str, default "FaceCamera"
        Name of the recording (the NWB ``ImageSeries``).
    device : str, optional
        Name of the camera; defaults to ``name``.
    decode : bool, default True
        Passed to :func:`probe_video`.

    Raises
    ------
    VideoError
        A file differs from the first in frame size or frame rate, or cannot be read.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise VideoError(f"Recording '{name}' has no video files. Pass at least one file.")
    files = [probe_video(p, decode=decode) for p in paths]
    first = files[0]
    for other in files[1:]:
        if (other.height, other.width) != (first.height, first.width):
            raise VideoError(
                f"'{other.path}' is {other.width}x{other.height} pixels but '{first.path}' is "
                f"{first.width}x{first.height}: the files of recording '{name}' must have one frame size. "
                "Make it a recording of its own."
            )
        if not math.isclose(other.rate, first.rate, rel_tol=_RATE_RTOL):
            raise VideoError(
                f"'{other.path}' runs at {other.rate:g} frames/s but '{first.path}' at {first.rate:g}: "
                f"the files of recording '{name}' must have one frame rate. Make it a recording of its own."
            )
    return VideoRecording(name=name, files=tuple(files), device=device or name)


# OpenCV's fixed-point BGR -> gray weights (imgproc/src/color.hpp: R2Y, G2Y, B2Y with 14-bit shift).
_CV_B, _CV_G, _CV_R, _CV_SHIFT = 1868, 9617, 4899, 14
_NEUTRAL_CHROMA = 2  # max |chroma - 128| for the luma fast path


def _luma_table(full_range: bool) -> np.ndarray:
    """Gray value OpenCV produces for each 8-bit luma value when the chroma is neutral.

    FFmpeg's swscale expands limited-range luma with truncation, not rounding:
    ``floor((Y - 16) * 255 / 219)`` clipped to 0..255 (checked against OpenCV 4.9's decoder).
    """
    if full_range:
        return np.arange(256, dtype=np.uint8)
    values = np.floor((np.arange(256) - 16) * 255.0 / 219.0)
    return np.clip(values, 0, 255).astype(np.uint8)


try:  # OpenCV's table lookup and colour conversion are several times faster than numpy's.
    import cv2 as _cv2
except ImportError:  # pragma: no cover - opencv-python-headless is a dependency, but keep working without it
    _cv2 = None


def _apply_table(table: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
    if _cv2 is not None:
        _cv2.LUT(values, table, dst=out)
    else:
        np.take(table, values, out=out)


def _bgr_to_gray(bgr: np.ndarray, out: np.ndarray) -> None:
    if _cv2 is not None:
        _cv2.cvtColor(bgr, _cv2.COLOR_BGR2GRAY, dst=out)
        return
    acc = bgr[..., 0].astype(np.uint32) * _CV_B
    acc += bgr[..., 1].astype(np.uint32) * _CV_G
    acc += bgr[..., 2].astype(np.uint32) * _CV_R
    acc += 1 << (_CV_SHIFT - 1)
    np.right_shift(acc, _CV_SHIFT, out=acc)
    out[...] = acc


def _is_8bit_yuv(frame: av.VideoFrame) -> bool:
    name = frame.format.name
    return name in {"yuv420p", "yuvj420p", "yuv422p", "yuvj422p", "yuv444p", "yuvj444p"}


def _plane_pixels(plane) -> np.ndarray:
    """The plane's bytes without the padding at the end of each line."""
    return np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)[: plane.height, : plane.width]


def _chroma_is_neutral(frame: av.VideoFrame) -> bool:
    for plane in frame.planes[1:]:
        values = _plane_pixels(plane)
        if values.size and int(np.abs(values.astype(np.int16) - 128).max()) > _NEUTRAL_CHROMA:
            return False
    return True


class GrayFrameReader:
    """Stream a recording's frames as 8-bit grayscale, in chunks, with threaded decoding.

    Parameters
    ----------
    recording : VideoRecording, path, or sequence of paths
        What to read; paths are probed as one sequential recording.
    mode : {"auto", "luma", "bgr"}, default "auto"
        How gray values are made. ``"luma"`` maps the luma plane through a table (fast; equal to
        OpenCV's result within one level when the colour planes are neutral); ``"bgr"`` decodes to
        BGR and applies OpenCV's gray formula (any pixel format). ``"auto"`` picks ``"luma"`` for
        8-bit YUV files whose first frame has neutral chroma, else ``"bgr"``.

    Examples
    --------
    >>> reader = GrayFrameReader(["part1.mp4", "part2.mp4"])  # doctest: +SKIP
    >>> for start, frames in reader.iter_chunks(500):  # frames: (n, height, width) uint8
    ...     ...
    """

    def __init__(self, recording: VideoRecording | str | os.PathLike | Sequence, *, mode: str = "auto"):
        if not isinstance(recording, VideoRecording):
            recording = probe_recording(recording)
        if mode not in ("auto", "luma", "bgr"):
            raise ValueError(f"mode must be 'auto', 'luma' or 'bgr', not {mode!r}.")
        self.recording = recording
        self.mode = mode
        self._file_mode: str | None = None
        self._table: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(frames, height, width) of the whole recording."""
        return (self.recording.frame_count, self.recording.height, self.recording.width)

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """All frames in ``[start, stop)`` as one array (frames, height, width) uint8."""
        stop = self.recording.frame_count if stop is None else min(stop, self.recording.frame_count)
        out = np.empty((max(stop - start, 0), self.recording.height, self.recording.width), np.uint8)
        for first, chunk in self.iter_chunks(max(stop - start, 1), start=start, stop=stop):
            out[first - start : first - start + len(chunk)] = chunk
        return out

    def iter_chunks(
        self, chunk_size: int = 256, *, start: int = 0, stop: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index of first frame, frames)`` for consecutive chunks of ``chunk_size`` frames.

        Frame indices count over the whole recording; chunks may span file boundaries. Each yielded
        array is new (safe to keep).
        """
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, not {chunk_size}.")
        total = self.recording.frame_count
        stop = total if stop is None else min(stop, total)
        if not 0 <= start <= stop:
            raise ValueError(f"Frame range [{start}, {stop}) is outside the recording's {total} frames.")
        height, width = self.recording.height, self.recording.width
        chunk = np.empty((min(chunk_size, max(stop - start, 1)), height, width), np.uint8)
        filled, chunk_start = 0, start
        for index, frame in self._iter_frames(start, stop):
            if filled == 0:
                chunk_start = index
            self._convert(frame, chunk[filled])
            filled += 1
            if filled == len(chunk):
                yield chunk_start, chunk
                chunk = np.empty_like(chunk)
                filled = 0
        if filled:
            yield chunk_start, chunk[:filled]

    def _iter_frames(self, start: int, stop: int) -> Iterator[tuple[int, av.VideoFrame]]:
        for info, first in zip(self.recording.files, self.recording.starting_frames):
            if first + info.frame_count <= start:
                continue
            if first >= stop:
                break
            self._file_mode = None
            index = first
            with _open(info.path) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                try:
                    for frame in container.decode(stream):
                        if index >= stop:
                            break
                        if index >= first + info.frame_count:
                            raise VideoError(
                                f"'{info.path}' holds more than the {info.frame_count} frames it was probed with: "
                                "the file changed since, or its packets and frames differ. Probe it with decode=True."
                            )
                        if index >= start:
                            yield index, frame
                        index += 1
                except av.error.FFmpegError as err:
                    raise VideoError(
                        f"Frame {index - first} of '{info.path}' does not decode ({_ffmpeg_reason(err)}): "
                        "the file is truncated or corrupt. Copy it again."
                    ) from err
            if index < min(stop, first + info.frame_count):
                raise VideoError(
                    f"Frame {index - first} of '{info.path}' does not decode: only {index - first} of its "
                    f"{info.frame_count} frames do. The file is truncated or corrupt (or changed since it was "
                    "probed): copy it again, or cut it before that frame (e.g. with ffmpeg -frames:v)."
                )

    def _convert(self, frame: av.VideoFrame, out: np.ndarray) -> None:
        if self._file_mode is None:
            self._file_mode = self._pick_mode(frame)
        if self._file_mode == "bgr":
            _bgr_to_gray(frame.to_ndarray(format="bgr24"), out)
            return
        luma = _plane_pixels(frame.planes[0])
        if self._table is None:
            out[...] = luma
        else:
            _apply_table(self._table, luma, out)

    def _pick_mode(self, frame: av.VideoFrame) -> str:
        name = frame.format.name
        if name == "gray":
            self._table = None
            return "luma"
        if self.mode == "bgr" or not _is_8bit_yuv(frame):
            return "bgr"
        if self.mode == "auto" and not _chroma_is_neutral(frame):
            return "bgr"
        # AVColorRange: 2 is JPEG (full) range; yuvj* formats are full range by definition.
        full_range = name.startswith("yuvj") or frame.color_range == 2
        table = _luma_table(full_range)
        self._table = None if full_range else table
        return "luma"
