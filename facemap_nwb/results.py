"""One in-memory model of everything Facemap produces; loaders fill it, engines make it, the NWB layer
writes and reads it. Nothing else passes Facemap's dicts around.

Conventions (Facemap's, kept so that results are interchangeable):

* Frame index ``t`` of a motion trace or motion projection is the difference between frames ``t``
  and ``t - 1``; Facemap's first chunk is shifted by one and leaves a zero at index 499 of the
  motion energy (see :mod:`facemap_nwb.loaders.facemap` for details). Arrays are stored as made.
* Pixel coordinates are (y, x) = (row, column) of the video frame; pupil centres follow that order.
* SVD masks are stored with the component axis first: (components, height, width) in spatial bins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from .params import FacemapParameters

__all__ = ["Region", "SVDComponents", "PupilSignals", "FacemapResults", "SINGULAR_VALUE_SOURCES"]

SINGULAR_VALUE_SOURCES = ("facemap", "mask_norms", "projection_norms", "computed")


@dataclass
class Region:
    """The full frame or one ROI, as processed.

    ``y_range``/``x_range`` are pixel ranges ``(start, stop)`` in the view; ``*_bin_range`` the
    spatial-bin ranges used for SVDs (None where no SVD is made).
    """

    number: int
    name: str
    type: str
    video_index: int
    y_range: tuple[int, int]
    x_range: tuple[int, int]
    y_bin_range: tuple[int, int] | None = None
    x_bin_range: tuple[int, int] | None = None
    saturation: float | None = None
    pupil_sigma: float | None = None


@dataclass
class SVDComponents:
    """The SVD of one region's motion or movie."""

    svd_type: str  # "motion" or "movie"
    region: int  # index into FacemapResults.regions
    projections: np.ndarray  # (frames, components)
    singular_values: np.ndarray  # (components,)
    masks: np.ndarray  # (components, height, width)
    singular_values_source: str = "computed"

    def __post_init__(self):
        if self.svd_type not in ("motion", "movie"):
            raise ValueError(f"svd_type must be 'motion' or 'movie', not {self.svd_type!r}.")
        if self.singular_values_source not in SINGULAR_VALUE_SOURCES:
            raise ValueError(f"singular_values_source must be one of {SINGULAR_VALUE_SOURCES}.")

    @property
    def n_components(self) -> int:
        return int(self.projections.shape[1])


@dataclass
class PupilSignals:
    """Facemap's pupil fit for one pupil ROI (pixels of the video frame, (y, x) order)."""

    region: int
    area: np.ndarray  # (frames,)
    area_smooth: np.ndarray  # (frames,)
    center: np.ndarray  # (frames, 2): Facemap 'com'
    center_smooth: np.ndarray  # (frames, 2): Facemap 'com_smooth'
    axes_length: np.ndarray  # (frames, 2): Facemap 'axlen'
    axes_direction: np.ndarray  # (frames, 2, 2): Facemap 'axdir'


@dataclass
class FacemapResults:
    """Everything a Facemap run produced, with the parameters and the engine that made it."""

    parameters: FacemapParameters
    frame_count: int
    view_shapes: list[tuple[int, int]]  # (height, width) of each simultaneous view
    regions: list[Region]
    motion_energy: dict[int, np.ndarray] = field(default_factory=dict)  # region index -> (frames,)
    motion_svd: list[SVDComponents] = field(default_factory=list)
    movie_svd: list[SVDComponents] = field(default_factory=list)
    average_frame: np.ndarray | None = None  # binned, all views placed (Facemap 'avgframe_reshape')
    average_motion: np.ndarray | None = None  # Facemap 'avgmotion_reshape'
    pupils: list[PupilSignals] = field(default_factory=list)
    blinks: dict[int, np.ndarray] = field(default_factory=dict)  # region index -> (frames,)
    running: dict[int, np.ndarray] = field(default_factory=dict)  # region index -> (frames, 2): dy, dx
    engine: str = "facemap"
    engine_version: str = ""
    processing_time: datetime | None = None
    source_file: str | None = None
    video_files: list[list[str]] = field(default_factory=list)  # Facemap 'filenames': [sequential][view]
    frame_rate: float | None = None  # frames per second of the signals, when read from a regular NWB series

    def attach_io(self, io) -> None:
        """Keep the open NWB reader whose datasets back this object's lazy arrays."""
        self._io = io

    def close(self) -> None:
        """Close the NWB file behind lazily read arrays (no-op otherwise)."""
        io = getattr(self, "_io", None)
        if io is not None:
            io.close()
            self._io = None

    def __enter__(self) -> FacemapResults:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def svds(self, svd_type: str) -> list[SVDComponents]:
        return self.motion_svd if svd_type == "motion" else self.movie_svd

    def check_frame_count(self, frame_count: int, *, what: str) -> None:
        """Raise ValueError naming both counts when ``frame_count`` (of the video) differs from the results'."""
        if frame_count != self.frame_count:
            raise ValueError(
                f"The results hold {self.frame_count} frames but {what} has {frame_count}: they do not belong "
                "together. Pass the video(s) Facemap processed, in order."
            )
