"""Probe face-camera videos and stream their frames as grayscale, the way Facemap reads them.

A *video file* is one container on disk; a *recording* is one camera's video, split into one
or more sequential files (element-facemap's ``VideoRecording`` and ``VideoRecording.File``).
:func:`probe_video` measures one file (element-facemap's ``RecordingInfo``), :func:`probe_recording`
checks that sequential files fit together, and :class:`GrayFrameReader` streams grayscale frames
in chunks for the processing engines.

Decisions worth knowing:

* A video is one media file: every file is opened with FFmpeg's ``format_whitelist`` set to the
  single-file containers in ``_VIDEO_DEMUXERS`` and the ``file`` protocol only, so concat lists,
  playlists and image sequences (which make FFmpeg open other files) are refused, never played.
* The frame count is the number of frames that really decode, never the container header's
  figure. Every read (the packet count of ``probe_video(decode=False)``, the decode of
  ``decode=True`` and :class:`GrayFrameReader`) goes through one check, ``_check_complete``: a
  file that holds fewer frames than its header lists, or whose timestamps cover less than its
  declared duration, or where FFmpeg says the container ended early, is reported as a truncated
  or corrupt file instead of being silently shortened; so is a decode error.
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

import errno
import math
import os
import stat
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
    frame_count_verified : bool
        True when ``frame_count`` is the number of frames that decoded (``probe_video(decode=True)``);
        False when it is the number of stored frames (packets) counted without decoding, which
        :class:`GrayFrameReader` checks when it decodes.
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
    frame_count_verified: bool = True

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
            "frame_count_verified": self.frame_count_verified,
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
    """The absolute path of a regular, non-empty, readable file, or a VideoError that says what it is instead."""
    try:
        status = path.stat()  # follows symbolic links
    except FileNotFoundError:
        if path.is_symlink():
            raise VideoError(
                f"'{path}' is a symbolic link to '{os.readlink(path)}', which does not exist. "
                "Point the link at the video file, or pass the video file itself."
            ) from None
        raise FileNotFoundError(
            f"Video file not found: '{path}'. Check the path, or the root folders it is searched in."
        ) from None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise VideoError(
                f"'{path}' is a symbolic link that points back to itself (a loop of links). "
                "Replace it with a link to the video file, or pass the video file itself."
            ) from None
        raise VideoError(f"'{path}' cannot be read ({err.strerror}). Check the path and its permissions.") from None
    if stat.S_ISDIR(status.st_mode):
        raise VideoError(f"'{path}' is a folder, not a video file. Pass the video files inside it.")
    if not stat.S_ISREG(status.st_mode):
        raise VideoError(
            f"'{path}' is not a regular file (a named pipe, a device or a socket), so it cannot be a recorded "
            "video. Pass the video file itself."
        )
    if status.st_size == 0:
        raise VideoError(f"Video file '{path}' is empty (0 bytes). Copy the recording again.")
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as err:
        raise VideoError(f"'{path}' cannot be read ({err.strerror}). Check its permissions.") from None
    return path.resolve()


# The FFmpeg demuxers that read one self-contained media file. Every file is opened with this list as
# FFmpeg's ``format_whitelist`` and with the ``file`` protocol only, so a demuxer that plays other files
# (concat lists, HLS and DASH playlists, image sequences, tee, devices, network streams) never opens
# anything. FFmpeg matches each comma-separated name against each name of a demuxer: "mov" is the
# mov/mp4/m4a/3gp/3g2/mj2 demuxer, "matroska" also reads WebM.
_VIDEO_DEMUXERS = (
    "mov",  # .mp4 .mov .m4v .3gp (QuickTime / ISO base media)
    "avi",
    "matroska",  # .mkv .webm
    "mpeg",  # MPEG program stream (.mpg .vob)
    "mpegts",  # MPEG transport stream (.ts .m2ts)
    "flv",
    "asf",  # .wmv .asf
    "ogg",
    "nut",
    "ivf",  # VP8/VP9/AV1 in IVF
    "yuv4mpegpipe",  # .y4m
    "h264",  # raw Annex B elementary streams ...
    "hevc",
    "mjpeg",
    "m4v",
    "mpegvideo",
    "obu",
)
_OPEN_OPTIONS = {"format_whitelist": ",".join(_VIDEO_DEMUXERS), "protocol_whitelist": "file"}
# What a refused demuxer reads, in words, for the message.
_NOT_A_VIDEO = {
    "concat": "an FFmpeg concat list (a text file that names other files)",
    "hls": "an HLS playlist (m3u8, a text file that names other files)",
    "dash": "a DASH manifest (a text file that names other files)",
    "image2": "an image, or a pattern that names a sequence of images",
}
# Demuxers of raw elementary streams: no container, so no header that says how many frames there are. FFmpeg
# falls back to them when a container's header is damaged (it finds JPEG or H.264 data inside), so they are
# read only from a file named like one (the demuxer's own extensions, e.g. ".h264", ".mjpeg").
_RAW_STREAM_DEMUXERS = ("h264", "hevc", "mjpeg", "m4v", "mpegvideo", "obu")
# Refuse frames larger than 8192 x 8192: more is a corrupt header, or a video no face camera makes.
_MAX_FRAME_PIXELS = 8192 * 8192


def _text_start(path: Path) -> str | None:
    """The file's first line when the file starts as text (a list, a playlist, notes), else None."""
    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head or b"\0" in head:
        return None
    text = head.decode("utf-8", errors="ignore")
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    if printable < 0.95 * len(text):
        return None
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first[:40]


def _not_readable(path: Path, err: av.error.FFmpegError, said: list[tuple[str, str]]) -> VideoError:
    """Say what a file that FFmpeg does not open as a video is, from FFmpeg's messages while opening it."""
    refused = next((name for name, message in said if "not on whitelist" in message), None)
    if refused is not None:  # FFmpeg recognised the file, as something that is not a single-file video
        if refused in _NOT_A_VIDEO or refused.endswith("_pipe"):
            what = _NOT_A_VIDEO.get(refused, "an image")
        else:
            what = f"'{refused}' data, not a video container"
        return VideoError(
            f"'{path}' is not a readable video: FFmpeg reads it as {what}. Only single video files are read "
            f"(containers: {', '.join(_VIDEO_DEMUXERS)}); pass the camera's video file itself."
        )
    first_line = _text_start(path)
    if first_line is not None:
        return VideoError(
            f"'{path}' is not a readable video: it is a text file (it starts with {first_line!r}). "
            "Pass the camera's video file itself, not a list, a playlist or notes."
        )
    reason = f"[{said[-1][0]}] {said[-1][1]}".rstrip(".") if said else _ffmpeg_reason(err)
    return VideoError(
        f"'{path}' is not a readable video ({reason}). It may be truncated, corrupt or not a "
        "video at all: check the file, or copy it again from the acquisition machine."
    )


def _open(path: Path, messages: list | None = None) -> av.container.InputContainer:
    """Open a checked file as a single-file video container with a decodable video stream of sane size.

    FFmpeg's messages while it reads the header (e.g. Matroska's "File ended prematurely") are appended
    to ``messages`` for :func:`_check_complete`.
    """
    said: list[tuple[str, str]] = []
    try:
        with _ffmpeg_log(), av.logging.Capture(local=True) as logs:  # the open's messages belong to this file
            try:
                container = av.open(str(path), container_options=dict(_OPEN_OPTIONS), metadata_errors="replace")
            finally:
                said.extend((str(entry[1]), str(entry[2]).strip()) for entry in logs)
                if messages is not None:
                    messages.extend((name, message, 0, 0) for name, message in said)
    except av.error.FFmpegError as err:
        raise _not_readable(path, err, said) from err
    try:
        _check_video_stream(container, path)
    except BaseException:
        container.close()
        raise
    return container


def _check_video_stream(container: av.container.InputContainer, path: Path) -> None:
    demuxer = container.format.name
    extensions = sorted(container.format.extensions or ())
    if demuxer in _RAW_STREAM_DEMUXERS and path.suffix.lower().lstrip(".") not in extensions:
        raise VideoError(
            f"'{path}' is not a readable video: its container header is missing or damaged (FFmpeg finds only "
            f"raw {demuxer} data in it, which says nothing of the frames it should hold). Copy it again from the "
            f"acquisition machine; a raw {demuxer} stream must be named .{extensions[0] if extensions else demuxer}."
        )
    if not container.streams.video:
        raise VideoError(
            f"'{path}' holds no video frames (the container has no video stream). "
            "Check that the recording was saved completely, and pass the camera's video file."
        )
    context = container.streams.video[0].codec_context
    if context is None:
        raise VideoError(
            f"'{path}' is truncated or corrupt: its video stream names no codec FFmpeg can decode. "
            "Copy it again from the acquisition machine."
        )
    width, height = int(context.width or 0), int(context.height or 0)
    if width < 1 or height < 1 or width * height > _MAX_FRAME_PIXELS:
        raise VideoError(
            f"'{path}' declares frames of {width}x{height} pixels, which is not a frame size a camera records "
            "(at least 1x1, at most 8192x8192 pixels): its header is corrupt. Copy it again, or "
            "re-encode it at its real size (ffmpeg -vf scale=W:H)."
        )


def _ffmpeg_reason(err: Exception) -> str:
    if getattr(err, "facemap_reason", None):  # set by _pull: what FFmpeg said during that very call
        return str(err.facemap_reason).rstrip(".")
    text = str(err)
    if "last error log:" in text:
        return text.split("last error log:")[-1].strip().rstrip(".")
    return (getattr(err, "strerror", None) or text).strip().rstrip(".")


# --------------------------------------------------------------------------- FFmpeg's log while reading

_log_lock = threading.Lock()
_log_users = 0
_log_saved: tuple | None = None
_log_sink: av.logging.Capture | None = None
_log_sink_entries: list | None = None


@contextmanager
def _ffmpeg_log() -> Iterator[None]:
    """While any video is read, FFmpeg's errors are kept for the checks and never printed.

    PyAV's log level is process-wide, so the readers share one setting (counted, restored by the last one).
    Each reader captures its own thread's messages around each demux and decode call
    (:func:`_pull`), which is where a demuxer says the file ended early; messages of FFmpeg's own decoder
    threads land in a process-wide sink that is only there so that nothing reaches the terminal.
    """
    global _log_users, _log_saved, _log_sink, _log_sink_entries
    with _log_lock:
        if _log_users == 0:
            level = av.logging.get_level()
            _log_saved = (level, av.logging.get_skip_repeated())
            av.logging.set_level(av.logging.ERROR if level is None else max(level, av.logging.ERROR))
            av.logging.set_skip_repeated(False)  # else a second read of the same damaged file hears nothing
            _log_sink = av.logging.Capture(local=False)
            _log_sink_entries = _log_sink.__enter__()
        _log_users += 1
    try:
        yield
    finally:
        with _log_lock:
            _log_users -= 1
            if _log_users == 0:
                _log_sink.__exit__(None, None, None)
                _log_sink = _log_sink_entries = None
                av.logging.set_level(_log_saved[0])
                av.logging.set_skip_repeated(_log_saved[1])


@dataclass
class _Tally:
    """What one pass over a file found: packets and frames with their timestamps, FFmpeg's messages."""

    packets: int = 0
    frames: int = 0
    packet_ticks: list = field(default_factory=list)  # pts of the packets that have one
    frame_ticks: list = field(default_factory=list)  # pts of each decoded frame (None when absent)
    # (FFmpeg component, message, packets and frames counted when it was said), at ERROR level or worse
    messages: list = field(default_factory=list)


def _pull(tally: _Tally, function, *args):
    """Call a demux or decode step with this thread's FFmpeg messages captured into ``tally``.

    Only this call's own messages are captured: readers of several files interleave in one thread (views
    read in lockstep), so a capture must never stay open across a ``yield``. An FFmpegError raised by the
    step carries the last message of this very call as ``facemap_reason`` (PyAV's own "last error log" may come from
    another thread).
    """
    with av.logging.Capture(local=True) as logs:
        try:
            return function(*args)
        except av.error.FFmpegError as err:
            err.facemap_reason = f"[{logs[-1][1]}] {str(logs[-1][2]).strip()}" if logs else _ffmpeg_reason(err)
            raise
        finally:
            if logs:
                tally.messages.extend(
                    (str(entry[1]), str(entry[2]).strip(), tally.packets, tally.frames) for entry in logs
                )
            sink = _log_sink_entries
            if sink is not None and len(sink) > 1000:  # decoder threads' messages: not needed, keep memory flat
                del sink[:]


def _packets(container: av.container.InputContainer, path: Path, tally: _Tally) -> Iterator[av.Packet]:
    """The video stream's packets (the last one empty, to flush the decoder), counted into ``tally``."""
    stream = container.streams.video[0]
    packets = container.demux(stream)
    while True:
        try:
            packet = _pull(tally, next, packets, None)
        except av.error.FFmpegError as err:
            raise VideoError(
                f"'{path}' is truncated or corrupt: it cannot be read past its {tally.packets}th frame "
                f"({_ffmpeg_reason(err)}). Copy it again from the acquisition machine."
            ) from err
        if packet is None:
            return
        if packet.size:
            tally.packets += 1
            if packet.pts is not None:
                tally.packet_ticks.append(packet.pts)
        yield packet


def _frames(
    container: av.container.InputContainer, path: Path, tally: _Tally, size: tuple[int, int]
) -> Iterator[av.VideoFrame]:
    """Decode the video stream (threaded), counting packets and frames into ``tally``.

    Raises VideoError for a frame that does not decode or that differs from ``size`` (height, width).
    """
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    try:
        for packet in _packets(container, path, tally):
            try:
                frames = _pull(tally, stream.decode, packet)
            except av.error.FFmpegError as err:
                raise VideoError(
                    f"Frame {tally.frames} of '{path}' does not decode ({_ffmpeg_reason(err)}): the file is truncated "
                    "or corrupt. Copy it again, or cut it before that frame (e.g. with ffmpeg -frames:v)."
                ) from err
            for frame in frames:
                if (frame.height, frame.width) != size:
                    raise VideoError(
                        f"Frame {tally.frames} of '{path}' is {frame.width}x{frame.height} pixels but the file "
                        f"declares {size[1]}x{size[0]}: the file is corrupt, or changes frame size. Re-encode it at "
                        "one size (ffmpeg -vf scale=W:H)."
                    )
                tally.frames += 1
                tally.frame_ticks.append(frame.pts)
                yield frame
    finally:
        # Wait for FFmpeg's decoder threads with the GIL released: PyAV frees a codec context with the GIL
        # held, and a decoder thread still at work then would wait for the GIL to log (a deadlock).
        stream.codec_context.flush_buffers()


# ------------------------------------------------------------------------------ is the file complete?


@dataclass(frozen=True)
class _Promise:
    """What a container's header says the video holds (0 where it does not say)."""

    frames: int  # the stream's frame count (MP4/MOV sample tables, AVI headers, ...)
    seconds: float  # the declared duration, used when the header has no frame count (Matroska, FLV, ...)
    rate: float
    time_base: Fraction
    demuxer: str = ""  # FFmpeg's name of the container reader (its messages carry this name)


def _promise(container: av.container.InputContainer) -> _Promise:
    stream = container.streams.video[0]
    time_base = Fraction(stream.time_base or Fraction(1, 1_000_000))
    rate = stream.average_rate or stream.guessed_rate
    seconds = 0.0
    if stream.duration:
        seconds = float(stream.duration * time_base)
    elif _parse_clock(stream.metadata.get("DURATION")):  # Matroska's per-track tag
        seconds = _parse_clock(stream.metadata.get("DURATION"))
    elif container.duration and len(container.streams) == 1:  # the container's, only when no other track
        seconds = container.duration / 1_000_000
    return _Promise(
        frames=int(stream.frames or 0),
        seconds=seconds,
        rate=float(rate or 0),
        time_base=time_base,
        demuxer=container.format.name,
    )


def _parse_clock(value: str | None) -> float:
    """Seconds in an ``HH:MM:SS.fraction`` tag, 0.0 when absent or malformed."""
    try:
        hours, minutes, seconds = (value or "").split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return 0.0


def _covered_seconds(ticks: list, promise: _Promise) -> float | None:
    """Seconds from the first frame to the end of the last (one frame interval added), from timestamps."""
    if not ticks or not promise.rate > 0:
        return None
    return float((max(ticks) - min(ticks)) * promise.time_base) + 1.0 / promise.rate


def _check_complete(path: Path, promise: _Promise, tally: _Tally, *, decoded: bool) -> None:
    """Refuse a file that holds less than its container promised: the one check of every read.

    Used by the packet count (:func:`probe_video` with ``decode=False``), the decode
    (``decode=True``) and :class:`GrayFrameReader`. The evidence, first found first reported:

    * FFmpeg said the container ended early (:data:`_TRUNCATION_MARKERS` in its messages), or its container
      reader (demuxer) reported an error: the container's structure is damaged, and the frames it lost leave
      no trace in the other figures (a decoder's errors are damaged pixels, which decode);
    * fewer frames than the header's frame count, beyond :data:`_MAX_HEADER_SHORTFALL` (edit lists, open
      GOPs);
    * when the header has no frame count: timestamps that cover less than the declared duration, beyond
      four frame intervals or 2 % (B-frame delays, Matroska's milliseconds, a variable rate's last frame);
    * when decoding: fewer frames than stored packets, beyond :data:`_MAX_HEADER_SHORTFALL`.
    """
    count = tally.frames if decoded else tally.packets
    verb = "decode" if decoded else "are stored"
    said = next((m for m in tally.messages if any(k in m[1].lower() for k in _TRUNCATION_MARKERS)), None)
    said = said or next((m for m in tally.messages if m[0] == promise.demuxer), None)
    fix = (
        "Copy it again from the acquisition machine, or keep the frames that remain by re-muxing them "
        "(ffmpeg -i IN -c copy OUT) and pass that file."
    )
    if said is not None:
        index = said[3] if decoded else said[2]
        raise VideoError(
            f"Frame {index} of '{path}' does not decode: the file is truncated or corrupt (FFmpeg reports "
            f"'{said[1]}'). {fix}"
        )
    covered = _covered_seconds(
        [t for t in tally.frame_ticks if t is not None] if decoded else tally.packet_ticks, promise
    )
    reason = None
    if promise.frames and count < promise.frames - _MAX_HEADER_SHORTFALL:
        reason = f"its header lists {promise.frames} frames but only {count} {verb}"
    elif not promise.frames and promise.seconds and covered is not None:
        tolerance = max(4.0 / promise.rate, 0.02 * promise.seconds)
        if covered < promise.seconds - tolerance:
            reason = (
                f"its header promises {promise.seconds:.3f} s of video but the {count} frames that {verb} "
                f"cover {covered:.3f} s"
            )
    if reason is None and decoded and tally.frames < tally.packets - _MAX_HEADER_SHORTFALL:
        reason = f"only {tally.frames} of its {tally.packets} stored frames decode"
    if reason is not None:
        raise VideoError(f"'{path}' is truncated or corrupt: {reason}. {fix}")


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


def _read_ticks(container: av.container.InputContainer, path: Path, decode: bool, tally: _Tally) -> np.ndarray:
    """Read the whole file (decoding it, or only its packets), check it is complete, return the frames' pts.

    An empty array means no frames; -1 everywhere means frames without presentation times.
    """
    promise = _promise(container)
    context = container.streams.video[0].codec_context
    with _ffmpeg_log():
        if decode:
            for _ in _frames(container, path, tally, (context.height, context.width)):
                pass
        else:
            for _ in _packets(container, path, tally):
                pass
    _check_complete(path, promise, tally, decoded=decode)
    count = tally.frames if decode else tally.packets
    ticks = [t for t in tally.frame_ticks if t is not None] if decode else tally.packet_ticks
    if len(ticks) < count:  # some or all frames lack presentation times: assume a regular clock
        return np.full(count, -1, dtype=np.int64)
    return np.sort(np.asarray(ticks, dtype=np.int64)) if not decode else np.asarray(ticks, dtype=np.int64)


def probe_video(path: str | os.PathLike, *, decode: bool = True) -> VideoFileInfo:
    """Measure one video file.

    Parameters
    ----------
    path : str or PathLike
        The video file: one media container (MP4/MOV, AVI, MKV/WebM, MPEG, ...; see ``_VIDEO_DEMUXERS``).
        Lists and playlists that name other files are refused.
    decode : bool, default True
        Decode every frame, so that the frame count is the number of frames that really decode
        and damage is found now. With False only the packets are read (about 20 times faster);
        the count is then the number of stored frames (``frame_count_verified`` is False), and
        :class:`GrayFrameReader` checks it when it decodes. Either way a file that holds less than its
        header promises is refused as truncated.

    Returns
    -------
    VideoFileInfo

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    VideoError
        The file is a folder, empty, not a single video file, truncated, corrupt, or holds no frames.
    """
    path = _check_file(Path(path))
    tally = _Tally()
    with _open(path, tally.messages) as container:
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        pixel_format = stream.codec_context.format.name if stream.codec_context.format else ""
        height, width = stream.codec_context.height, stream.codec_context.width
        time_base = stream.time_base or Fraction(1, 1_000_000)
        creation_time = _creation_time(container)
        ticks = _read_ticks(container, path, decode, tally)
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
        frame_count_verified=decode,
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
            yield from self._file_frames(info, first, start, stop)

    def _file_frames(
        self, info: VideoFileInfo, first: int, start: int, stop: int
    ) -> Iterator[tuple[int, av.VideoFrame]]:
        """Frames ``[start, stop)`` (recording indices) of one file; a file read to its end is checked whole."""
        index, tally = first, _Tally()
        path = _check_file(info.path)
        with _ffmpeg_log(), _open(path, tally.messages) as container:
            promise = _promise(container)
            frames = _frames(container, info.path, tally, (info.height, info.width))
            try:
                for frame in frames:
                    if index >= stop:
                        return  # stopped before the end: what was read is all right so far
                    if index >= first + info.frame_count:
                        raise VideoError(
                            f"'{info.path}' holds more than the {info.frame_count} frames it was probed with: "
                            "the file changed since, or its packets and frames differ. Probe it with decode=True."
                        )
                    if index >= start:
                        yield index, frame
                    index += 1
            finally:
                frames.close()
        _check_complete(info.path, promise, tally, decoded=True)
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
