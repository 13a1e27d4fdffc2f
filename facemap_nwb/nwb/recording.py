"""Video recordings in NWB (element-facemap's ``VideoRecording``, ``VideoRecording.File`` and
``RecordingInfo``), written with core NWB types only so that every NWB reader understands them.

Where each ``RecordingInfo`` field lives:

==================  =============================================================================
field               location
==================  =============================================================================
files               ``acquisition[<name>].external_file`` (paths relative to the NWB file's folder), the
                    only place a path is stored: ``VideoFiles`` rows refer to their file by
                    ``starting_frame``, so a tool that rewrites the paths (``dandi organize
                    --update-external-file-paths``) cannot leave a stale copy behind
starting frames     ``acquisition[<name>].external_file.attrs["starting_frame"]``
camera              ``acquisition[<name>].device`` -> ``devices[<camera>]``
width, height       ``acquisition[<name>].dimension`` = ``[width, height]`` (NWB's x, y order)
frame count         ``acquisition[<name>].num_samples`` (regular rate) or ``len(timestamps)``
frame rate          ``acquisition[<name>].rate`` (regular) ; per file: ``VideoFiles["rate"]``
per-frame times     ``acquisition[<name>].timestamps`` when the rate is not regular
start time          ``acquisition[<name>].starting_time`` (seconds after the session start);
                    the container's creation time per file: ``VideoFiles["creation_date"]``
per file            ``acquisition["VideoFiles"]``: one row per file with recording,
                    starting_frame, frame_count, height, width, rate, duration, creation_date
                    (ISO 8601, empty when the container has none), codec, pixel_format
==================  =============================================================================

Files written by facemap-nwb 0.1 also have an ``external_file`` column in ``VideoFiles``; the reader
ignores it and takes every path from the ImageSeries, so such files read right after
``dandi organize`` too.
"""

from __future__ import annotations

import os
from datetime import datetime
from fractions import Fraction
from pathlib import Path

import numpy as np
from hdmf.common import DynamicTable
from pynwb import NWBFile
from pynwb.device import Device
from pynwb.image import ImageSeries

from ..video import VideoFileInfo, VideoRecording

__all__ = ["add_recording", "read_recordings_from_nwbfile", "VIDEO_FILES_TABLE"]

VIDEO_FILES_TABLE = "VideoFiles"

_COLUMNS = {
    "recording": "Name of the ImageSeries (one camera's recording) the file belongs to.",
    "starting_frame": (
        "Index of the file's first frame in its recording; the file is the recording ImageSeries' external_file "
        "entry with this starting_frame (paths are stored there only)."
    ),
    "frame_count": "Number of frames that decode from the file.",
    "height": "Frame height in pixels.",
    "width": "Frame width in pixels.",
    "rate": "Average frame rate of the file's video stream, in frames per second.",
    "duration": "Seconds from the file's first frame to the end of its last frame.",
    "creation_date": "The container's creation time (ISO 8601), empty when the container has none.",
    "codec": "FFmpeg name of the video codec.",
    "pixel_format": "FFmpeg name of the pixel format.",
}


def _relative(path: Path, nwb_dir: Path | None) -> str:
    if nwb_dir is None:  # the NWB file's folder is unknown: an absolute path at least stays valid here
        return Path(path).resolve().as_posix()
    return Path(os.path.relpath(Path(path).resolve(), Path(nwb_dir).resolve())).as_posix()


def _files_table(nwbfile: NWBFile) -> DynamicTable:
    if VIDEO_FILES_TABLE in nwbfile.acquisition:
        return nwbfile.acquisition[VIDEO_FILES_TABLE]
    table = DynamicTable(
        name=VIDEO_FILES_TABLE, description="The video files of each camera recording and what was probed from them."
    )
    for column, description in _COLUMNS.items():
        table.add_column(name=column, description=description)
    nwbfile.add_acquisition(table)
    return table


def _device(nwbfile: NWBFile, name: str) -> Device:
    if name in nwbfile.devices:
        return nwbfile.devices[name]
    return nwbfile.create_device(name=name, description="Camera filming the subject's face.")


def add_recording(
    nwbfile: NWBFile,
    recording: VideoRecording,
    *,
    nwb_dir: str | os.PathLike | None,
    starting_time: float | None = None,
    description: str | None = None,
    timestamps=None,
    rate: float | None = None,
    external_file: list[str] | None = None,
) -> ImageSeries:
    """Add one camera recording to ``nwbfile`` as an external-file ``ImageSeries`` with its device.

    Parameters
    ----------
    nwbfile : NWBFile
        The file to add to.
    recording : VideoRecording
        The recording, as probed.
    nwb_dir : path or None
        Folder the NWB file will be written to; video paths are stored relative to it (DANDI's
        convention). None stores absolute paths, for when that folder is not known yet.
    starting_time : float, optional
        Seconds from the session start to the recording's first frame. Defaults to the difference
        between the recording's creation time and ``nwbfile.session_start_time`` when the
        container has a creation time at or after the session start, else 0.
    description : str, optional
        Description of the ImageSeries.
    timestamps : array, optional
        Frame times to store instead of the recording's own (aligned ones; irregular ones are stored once
        here, and the signals derived from the video link to them).
    rate : float, optional
        With ``starting_time``: a regular frame clock to store instead of the recording's own (aligned).
    external_file : list of str, optional
        The path to store for each file, as it is (e.g. where the file lies in a Dandiset, relative to the
        NWB file's folder); by default each probed file's path relative to ``nwb_dir``. They are stored in
        the ImageSeries' ``external_file`` only; ``VideoFiles`` rows point to them by ``starting_frame``.
    """
    if recording.name in nwbfile.acquisition:
        raise ValueError(
            f"The NWB file already has an acquisition named '{recording.name}'; give each camera its own name."
        )
    if external_file is None:
        external_file = [_relative(p, nwb_dir) for p in recording.paths]
    external_file = [str(p) for p in external_file]
    if len(external_file) != len(recording.files):
        raise ValueError(
            f"Recording '{recording.name}' has {len(recording.files)} file(s) but {len(external_file)} external_file "
            "path(s) were given; give one path per file."
        )
    if starting_time is None:
        starting_time = _offset(recording.start_time, nwbfile.session_start_time)
    if timestamps is not None:
        timing = {"timestamps": np.asarray(timestamps, dtype=np.float64)}
    elif rate is not None:
        timing = {"rate": float(rate), "starting_time": float(starting_time), "num_samples": recording.frame_count}
    else:
        timing = (
            {"rate": recording.rate, "starting_time": starting_time, "num_samples": recording.frame_count}
            if recording.is_regular
            else {"timestamps": recording.timestamps + starting_time}
        )
    series = ImageSeries(
        name=recording.name,
        description=description or f"Video of camera '{recording.device}' in {len(recording.files)} file(s).",
        external_file=external_file,
        starting_frame=recording.starting_frames,
        format="external",
        dimension=[recording.width, recording.height],
        device=_device(nwbfile, recording.device),
        unit="n.a.",
        **timing,
    )
    nwbfile.add_acquisition(series)
    table = _files_table(nwbfile)
    for info, first in zip(recording.files, recording.starting_frames):
        table.add_row(
            recording=recording.name,
            starting_frame=first,
            frame_count=info.frame_count,
            height=info.height,
            width=info.width,
            rate=info.rate,
            duration=info.duration,
            creation_date=info.creation_time.isoformat() if info.creation_time else "",
            codec=info.codec,
            pixel_format=info.pixel_format,
        )
    return series


def _offset(start: datetime | None, session_start: datetime) -> float:
    if start is None or session_start is None:
        return 0.0
    seconds = (start - session_start).total_seconds()
    return seconds if seconds >= 0 else 0.0


def read_recordings_from_nwbfile(nwbfile: NWBFile, *, nwb_dir: str | os.PathLike) -> list[VideoRecording]:
    """The camera recordings of an open NWB file, with the probed fields read back.

    Video paths are resolved against ``nwb_dir``; the files are not opened.
    """
    if VIDEO_FILES_TABLE not in nwbfile.acquisition:
        return []
    rows = nwbfile.acquisition[VIDEO_FILES_TABLE].to_dataframe()
    recordings = []
    for name in dict.fromkeys(rows["recording"]):
        series = nwbfile.acquisition[name]
        mine = rows[rows["recording"] == name].sort_values("starting_frame")
        times = None if series.timestamps is None else np.asarray(series.timestamps[:], dtype=float)
        paths = _paths_by_starting_frame(series)
        files = tuple(_file_from_row(row, nwb_dir, times, paths) for row in mine.itertuples())
        recordings.append(VideoRecording(name=name, files=files, device=series.device.name))
    return recordings


def _paths_by_starting_frame(series: ImageSeries) -> dict[int, str]:
    """The ImageSeries' own file paths (the only authoritative ones), keyed by each file's first frame."""
    paths = [str(p.decode() if isinstance(p, bytes) else p) for p in series.external_file[:]]
    starts = [0] if series.starting_frame is None else [int(s) for s in series.starting_frame[:]]
    if len(starts) != len(paths):
        raise ValueError(
            f"ImageSeries '{series.name}' has {len(paths)} external_file path(s) but {len(starts)} starting_frame "
            "value(s); the file was edited by hand or damaged: write it again."
        )
    return dict(zip(starts, paths))


def _file_from_row(row, nwb_dir, recording_times: np.ndarray | None, paths: dict[int, str]) -> VideoFileInfo:
    if int(row.starting_frame) not in paths:
        raise ValueError(
            f"VideoFiles lists a file of '{row.recording}' starting at frame {row.starting_frame}, but its ImageSeries "
            f"has files starting at frames {sorted(paths)}; the file was edited by hand or damaged: write it again."
        )
    if recording_times is None:
        timestamps = np.arange(row.frame_count) / row.rate
    else:
        segment = recording_times[row.starting_frame : row.starting_frame + row.frame_count]
        timestamps = segment - segment[0]
    return VideoFileInfo(
        path=(Path(nwb_dir) / paths[int(row.starting_frame)]).resolve(),
        height=int(row.height),
        width=int(row.width),
        frame_count=int(row.frame_count),
        rate=float(row.rate),
        duration=float(row.duration),
        creation_time=datetime.fromisoformat(row.creation_date) if row.creation_date else None,
        codec=str(row.codec),
        pixel_format=str(row.pixel_format),
        timestamps=timestamps,
        time_base=Fraction(1, 1_000_000),
    )
