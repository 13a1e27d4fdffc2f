"""Engines: video(s) + parameters -> results.

* ``native``: ours (:mod:`facemap_nwb.engines.native`), needs neither torch nor facemap.
* ``facemap``: runs ``facemap.process.run`` headless in a temporary folder and loads its output
  through the safe loader (the ``facemap`` extra).

Both record their name and version in the results.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..params import FacemapParameters
from ..results import FacemapResults
from ..video import VideoRecording
from .facemap import run_facemap, run_facemap_to_folder

__all__ = ["ENGINES", "process_recordings", "run_facemap", "run_facemap_to_folder"]

ENGINES = ("native", "facemap")


def process_recordings(
    recordings: Sequence[VideoRecording], params: FacemapParameters, *, engine: str = "native", **options
) -> FacemapResults:
    """Process one or more simultaneous recordings with the chosen engine."""
    if engine == "native":
        from .native import run_native

        return run_native(recordings, params, **options)
    if engine == "facemap":
        return run_facemap(recordings, params, quiet=not options.get("progress", False))
    raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}.")
