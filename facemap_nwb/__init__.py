"""facemap_nwb: Facemap face-video analysis (recordings, motion energy, SVDs, pupil, blink,
running) into NWB files that DANDI accepts, neuroconv pipelines use and pynwb reads back."""

__version__ = "0.2.0"

from .paths import DataPaths
from .video import GrayFrameReader, VideoError, VideoFileInfo, VideoRecording, probe_recording, probe_video

__all__ = [
    "__version__",
    "DataPaths",
    "GrayFrameReader",
    "VideoError",
    "VideoFileInfo",
    "VideoRecording",
    "probe_recording",
    "probe_video",
    "write_recordings_nwb",
    "read_recordings",
]


def __getattr__(name):
    # The NWB layer imports pynwb, which takes a second; load it only when asked for.
    if name in ("write_recordings_nwb", "read_recordings"):
        from .nwb import io

        return getattr(io, name)
    raise AttributeError(f"module 'facemap_nwb' has no attribute {name!r}")
