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

__all__ = [
    "Region",
    "SVDComponents",
    "PupilSignals",
    "FacemapResults",
    "ResultsError",
    "SINGULAR_VALUE_SOURCES",
    "binned_frame_shape",
]

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
    """Facemap's pupil fit for one pupil ROI (pixels, (y, x) order; centres relative to the ROI's top-left pixel,
    as Facemap stores them: the NWB writer adds the ROI's origin).

    ``center_smooth``, ``axes_length`` and ``axes_direction`` are None where the source has no such
    value (MATLAB Facemap fits no smoothed centre and no ellipse axes); nothing is written for them then.
    """

    region: int
    area: np.ndarray  # (frames,)
    area_smooth: np.ndarray  # (frames,)
    center: np.ndarray  # (frames, 2): Facemap 'com'
    center_smooth: np.ndarray | None = None  # (frames, 2): Facemap 'com_smooth'
    axes_length: np.ndarray | None = None  # (frames, 2): Facemap 'axlen'
    axes_direction: np.ndarray | None = None  # (frames, 2, 2): Facemap 'axdir'


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
    # How frame differences (motion energy, motion projections) align to frames: "facemap" (Facemap's
    # quirk, see the module docstring) or "previous" (value t is |frame t - frame t-1|, value 0 is 0).
    frame_alignment: str = "facemap"
    # Facemap pose keypoints stored beside the task (ndx-pose PoseEstimation), when read from NWB:
    # facemap_nwb.pose.FacemapPose objects. Not part of the task; written separately (convert.PoseOutput).
    keypoints: list = field(default_factory=list)

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

    def first_frames(self, n: int) -> FacemapResults:
        """The results of the first ``n`` frames only (every signal and projection cut, masks, averages and
        regions kept): what a stub conversion writes."""
        from dataclasses import replace

        n = max(1, min(int(n), self.frame_count))

        def cut(traces: dict) -> dict:
            return {k: np.asarray(v[:n]) for k, v in traces.items()}

        def cut_svds(svds: list[SVDComponents]) -> list[SVDComponents]:
            return [replace(s, projections=np.asarray(s.projections[:n])) for s in svds]

        pupils = [
            replace(p, **{k: np.asarray(getattr(p, k)[:n]) for k, _, _ in _PUPIL_KEYS if getattr(p, k) is not None})
            for p in self.pupils
        ]
        return replace(
            self,
            frame_count=n,
            motion_energy=cut(self.motion_energy),
            motion_svd=cut_svds(self.motion_svd),
            movie_svd=cut_svds(self.movie_svd),
            pupils=pupils,
            blinks=cut(self.blinks),
            running=cut(self.running),
        )

    def svds(self, svd_type: str) -> list[SVDComponents]:
        return self.motion_svd if svd_type == "motion" else self.movie_svd

    def check_frame_count(self, frame_count: int, *, what: str) -> None:
        """Raise ValueError naming both counts when ``frame_count`` (of the video) differs from the results'."""
        if frame_count != self.frame_count:
            origin = f" (the results of '{self.source_file}')" if self.source_file else ""
            raise ValueError(
                f"The results hold {self.frame_count} frames but {what} has {frame_count}: they do not belong "
                f"together{origin}. Pass the video(s) Facemap processed, in order."
            )

    def validate(self, view_shapes=None, *, source: str | None = None) -> None:
        """Refuse results that no Facemap run (nor engine) can make, before anything is written.

        One check of every array against the views, the frame count and the parameters: each
        signal has one value per frame; motion energy and blink traces are 1-D, running
        ``(frames, 2)``, pupil centres and axes ``(frames, 2)``, axis directions ``(frames, 2, 2)``;
        SVD projections are ``(frames, components)`` with as many singular values and masks
        ``(components, binned height, binned width)`` of their region's bin ranges (the binned
        frame for the full frame); average frame and motion are the binned frame. Only real
        numbers are accepted (no complex, object or text arrays), finite everywhere but in the
        pupil fit, where Facemap writes NaN for frames it cannot fit (see :meth:`missing_values`).
        The spatial bin lies between 1 and each frame's size, every ROI inside its view's frame and
        every bin range inside the binned frame.

        Parameters
        ----------
        view_shapes : sequence of (int, int), optional
            ``(height, width)`` of each view, for results that do not record them (read from NWB);
            the results' own ``view_shapes`` by default. Without either, the checks that need the
            frame size are skipped.
        source : str, optional
            The file the results came from, named in the message (the results' ``source_file``
            by default).

        Raises
        ------
        ResultsError
            A ``ValueError`` naming the file, the Facemap key, the value at fault and the fix.
        """
        validator = _Validator(self, view_shapes, source if source is not None else self.source_file)
        validator.check_views()
        validator.check_regions()
        validator.check_signals()
        validator.check_svds()
        validator.check_summary()

    def missing_values(self) -> dict[str, int]:
        """NaN counts of the signals where Facemap marks frames it could not fit (the pupil fit).

        Returns
        -------
        dict of str to int
            ``"<region> <signal>"`` (for example ``"pupil0 area"``, ``"pupil0 center"``) to the
            number of NaN values it holds; only signals that hold any are listed.
        """
        missing = {}
        for pupil in self.pupils:
            name = self.regions[pupil.region].name if 0 <= pupil.region < len(self.regions) else str(pupil.region)
            for attribute, _, _ in _PUPIL_KEYS:
                if getattr(pupil, attribute) is None:
                    continue
                count = _scan(getattr(pupil, attribute))[0]
                if count:
                    missing[f"{name} {attribute}"] = count
        return missing


# ------------------------------------------------------------------------------------------- validation

# What every refusal of impossible results says to do about it.
_FIX = (
    "Facemap never writes this, so the file is damaged, was edited or belongs to another video: run Facemap on "
    "the video again (or pass the results file it wrote for this video)."
)
# Rows (along the first axis) per block when scanning values, so that no scan allocates more than a
# few MiB however large the array (and lazily read NWB datasets are read block by block).
_SCAN_ELEMENTS = 1 << 22
_PUPIL_KEYS = (
    ("area", "area", 1),
    ("area_smooth", "area_smooth", 1),
    ("center", "com", 2),
    ("center_smooth", "com_smooth", 2),
    ("axes_length", "axlen", 2),
    ("axes_direction", "axdir", 3),
)
_OPTIONAL_PUPIL_KEYS = ("center_smooth", "axes_length", "axes_direction")


class ResultsError(ValueError):
    """Results that cannot be what Facemap (or an engine) made: a value of the wrong type, shape or range.

    Parameters
    ----------
    detail : str
        What is wrong and how to fix it, without the file's name.
    key : str
        The Facemap key (``motion[1]``, ``pupil[0]['area']``, ``sbin``, ...) of the value at fault.
    source : str, optional
        The results file, named first in the message.
    malformed : bool
        The value is not of a form Facemap writes (a loader's finding) rather than of an impossible
        size or range.
    """

    def __init__(self, detail: str, *, key: str, source: str | None = None, malformed: bool = False):
        self.detail, self.key, self.source, self.malformed = detail, key, source, malformed
        super().__init__(self.message_for(source))

    def message_for(self, source: str | None) -> str:
        """The message with ``source`` (a file) named first."""
        if self.malformed:
            where = f"'{source}' is not a Facemap output this loader understands" if source else "Not a Facemap output"
        else:
            where = f"'{source}' holds impossible Facemap results" if source else "Impossible Facemap results"
        return f"{where}: {self.detail}"


def binned_frame_shape(view_shapes, spatial_bin: int) -> tuple[int, int]:
    """(height, width) in spatial bins of the picture Facemap makes of all views (its ``LYbin``, ``LXbin``).

    One view is ``(height // spatial_bin, width // spatial_bin)``; several are placed side by side
    as Facemap's ``video_placement`` places them.
    """
    bins = [(int(h) // spatial_bin, int(w) // spatial_bin) for h, w in view_shapes]
    if len(bins) == 1:
        return bins[0]
    from .engines.native import video_placement

    total_y, total_x, _, _ = video_placement([b[0] for b in bins], [b[1] for b in bins])
    return total_y, total_x


def _blocks(array):
    """The array's values, a block of rows at a time (numpy arrays and lazily read datasets alike)."""
    shape = tuple(array.shape)
    if not shape:
        yield np.asarray(array[()])
        return
    per_row = max(1, int(np.prod(shape[1:], dtype=np.int64)))
    step = max(1, _SCAN_ELEMENTS // per_row)
    for start in range(0, shape[0], step):
        yield np.asarray(array[start : start + step])


def _scan(array) -> tuple[int, int]:
    """(NaN count, infinity count) of a real array; integers hold neither."""
    if array.dtype.kind not in "fc" or 0 in tuple(array.shape):
        return 0, 0
    nan = inf = 0
    for block in _blocks(array):
        nan += int(np.count_nonzero(np.isnan(block)))
        inf += int(np.count_nonzero(np.isinf(block)))
    return nan, inf


class _Validator:
    """The one check of a :class:`FacemapResults`: every array against the views, the frame count and the parameters."""

    def __init__(self, results: FacemapResults, view_shapes, source: str | None):
        self.results, self.source = results, source
        self.views = [tuple(v) for v in (view_shapes if view_shapes is not None else results.view_shapes)]
        self.sbin = results.parameters.spatial_bin
        self.frames = results.frame_count
        self.binned = None
        self.slots = self._facemap_slots()

    def fail(self, key: str, detail: str, fix: str = _FIX):
        raise ResultsError(f"{detail} (Facemap key '{key}'). {fix}", key=key, source=self.source)

    def _facemap_slots(self) -> dict[int, int]:
        """Region -> its index in Facemap's lists: 0 the full frame, j the j-th motion ROI, k the k-th of a type."""
        slots, counts = {}, {}
        for index, region in enumerate(self.results.regions):
            if region.type == "full_frame":
                slots[index] = 0
            else:
                first = 1 if region.type == "motion" else 0
                slots[index] = counts.get(region.type, first)
                counts[region.type] = slots[index] + 1
        return slots

    def region_label(self, index) -> str:
        return f"region {self.results.regions[index].name!r}"

    # -- the frame, the views and the regions

    def check_views(self) -> None:
        if isinstance(self.frames, bool) or not isinstance(self.frames, (int, np.integer)) or self.frames < 0:
            self.fail("motion", f"the frame count is {self.frames!r}, not a whole number of frames")
        for index, shape in enumerate(self.views):
            if len(shape) != 2 or not all(isinstance(n, (int, np.integer)) and n >= 1 for n in shape):
                self.fail("Ly", f"view {index} has the frame size {shape!r}, not (height, width) in whole pixels")
            if self.sbin > min(shape):
                self.fail(
                    "sbin",
                    f"the spatial bin (sbin) is {self.sbin}, larger than view {index}'s {shape[1]}x{shape[0]}-pixel "
                    f"frame; Facemap's spatial bin is between 1 and the frame size",
                )
        if self.views:
            self.binned = binned_frame_shape(self.views, self.sbin)

    def check_regions(self) -> None:
        from .params import ROI_TYPES

        for index, region in enumerate(self.results.regions):
            key = "rois" if region.type == "full_frame" else f"rois[{region.number}]"
            if region.type != "full_frame" and region.type not in ROI_TYPES:
                self.fail(key, f"{self.region_label(index)} has the type {region.type!r}, not one of {ROI_TYPES}")
            ranges = {"y": region.y_range, "x": region.x_range}
            for axis, bins in (("y", region.y_bin_range), ("x", region.x_bin_range)):
                if bins is not None:
                    ranges[f"{axis} bin"] = bins
            for label, pair in ranges.items():
                if (
                    len(pair) != 2
                    or not all(isinstance(v, (int, np.integer)) for v in pair)
                    or not (0 <= pair[0] < pair[1])
                ):
                    self.fail(key, f"{self.region_label(index)} has the {label} range {pair!r}, not 0 <= start < stop")
            if self.views:
                self._check_inside(index, region, key)

    def _check_inside(self, index: int, region: Region, key: str) -> None:
        if region.type == "full_frame":
            if region.video_index not in (0, -1) or (region.video_index == 0 and len(self.views) > 1):
                self.fail(key, f"the full frame has the camera view {region.video_index}, not 0 (one view) or -1")
            height = self.views[0][0] if len(self.views) == 1 else sum(v[0] for v in self.views)
            width = self.views[0][1] if len(self.views) == 1 else sum(v[1] for v in self.views)
            bins = self.binned
        else:
            if not 0 <= region.video_index < len(self.views):
                self.fail(
                    f"{key}['ivid']",
                    f"{self.region_label(index)} is on camera view {region.video_index}, but the results have "
                    f"{len(self.views)} view(s)",
                )
            height, width = self.views[region.video_index]
            bins = (height // self.sbin, width // self.sbin)
        for axis, pair, limit in (("y", region.y_range, height), ("x", region.x_range, width)):
            if pair[1] > limit:
                self.fail(
                    f"{key}['{axis}range']",
                    f"{self.region_label(index)} covers {axis} pixels {pair[0]}..{pair[1] - 1}, outside its view's "
                    f"{width}x{height}-pixel frame (pixels 0..{limit - 1})",
                )
        for axis, pair, limit in (("y", region.y_bin_range, bins[0]), ("x", region.x_bin_range, bins[1])):
            if pair is not None and pair[1] > limit:
                self.fail(
                    f"{key}['{axis}range_bin']",
                    f"{self.region_label(index)} covers {axis} bins {pair[0]}..{pair[1] - 1}, outside the binned "
                    f"frame's {limit} bins (spatial bin {self.sbin})",
                )

    # -- arrays

    def array(self, key: str, what: str, array, shape: tuple, *, nan: bool = False) -> None:
        """Check one array's type, shape (None: any length) and values; NaN only where ``nan``."""
        if array is None or not hasattr(array, "dtype") or not hasattr(array, "shape"):
            self.fail(key, f"{what} is {type(array).__name__}, not an array of numbers")
        kind = array.dtype.kind
        if kind not in "iuf":
            names = {"c": "complex (its imaginary part would be lost)", "O": "Python objects", "b": "true/false"}
            name = names.get(kind, "text" if kind in "SU" else "not numbers")
            self.fail(key, f"{what} has the data type {array.dtype}: {name}, where Facemap writes real numbers")
        actual = tuple(int(n) for n in array.shape)
        if len(actual) != len(shape) or any(e is not None and a != e for a, e in zip(actual, shape)):
            if len(actual) == len(shape) and shape[0] == self.frames and actual[0] != self.frames:
                self.fail(
                    key,
                    f"{what} has {actual[0]} frames of values, but the results hold {self.frames} frames (their "
                    "longest signal); every Facemap signal has one value per frame",
                )
            expected = "(" + ", ".join("any" if e is None else str(e) for e in shape) + ("," if len(shape) == 1 else "")
            self.fail(key, f"{what} has the shape {actual}, where it must be {expected})")
        nans, infs = _scan(array)
        if infs or (nans and not nan):
            bad = "infinite" if infs else "NaN"
            allowed = " (Facemap marks no missing values here)" if nans and not infs else ""
            self.fail(key, f"{what} holds {infs or nans} {bad} value(s){allowed}, where Facemap writes finite numbers")

    def trace(self, key: str, what: str, array, columns: tuple = (), *, nan: bool = False) -> None:
        self.array(key, what, array, (self.frames, *columns), nan=nan)

    def check_signals(self) -> None:
        results, regions = self.results, self.results.regions

        def region_of(index, types, key, what):
            if not isinstance(index, (int, np.integer)) or not 0 <= index < len(regions):
                self.fail(key, f"{what} belongs to region {index!r}, which the results do not have")
            if regions[index].type not in types:
                self.fail(key, f"{what} belongs to {self.region_label(index)} of type {regions[index].type!r}")
            return self.slots[index]

        for index, trace in results.motion_energy.items():
            slot = region_of(index, ("full_frame", "motion"), "motion", "motion energy")
            self.trace(f"motion[{slot}]", f"the motion energy of {self.region_label(index)}", trace)
        for index, trace in results.blinks.items():
            slot = region_of(index, ("blink",), "blink", "a blink trace")
            self.trace(f"blink[{slot}]", f"the blink trace of {self.region_label(index)}", trace)
        for index, trace in results.running.items():
            slot = region_of(index, ("running",), "running", "a running trace")
            self.trace(f"running[{slot}]", f"the running trace (dy, dx) of {self.region_label(index)}", trace, (2,))
        seen = set()
        for pupil in results.pupils:
            slot = region_of(pupil.region, ("pupil",), "pupil", "a pupil fit")
            if pupil.region in seen:
                self.fail(f"pupil[{slot}]", f"{self.region_label(pupil.region)} has two pupil fits")
            seen.add(pupil.region)
            for attribute, facemap_key, ndim in _PUPIL_KEYS:
                if getattr(pupil, attribute) is None and attribute in _OPTIONAL_PUPIL_KEYS:
                    continue  # a value the source does not have (MATLAB Facemap)
                columns = ((), (2,), (2, 2))[ndim - 1]
                what = f"the pupil {attribute.replace('_', ' ')} of {self.region_label(pupil.region)}"
                self.trace(f"pupil[{slot}]['{facemap_key}']", what, getattr(pupil, attribute), columns, nan=True)

    def check_svds(self) -> None:
        regions = self.results.regions
        for kind, prefix in (("motion", "mot"), ("movie", "mov")):
            seen = set()
            for svd in self.results.svds(kind):
                index = svd.region
                if not isinstance(index, (int, np.integer)) or not 0 <= index < len(regions):
                    self.fail(f"{prefix}SVD", f"a {kind} SVD belongs to region {index!r}, which is not in the results")
                region, slot = regions[index], self.slots[index]
                if region.type not in ("full_frame", "motion") or index in seen:
                    self.fail(f"{prefix}SVD[{slot}]", f"{self.region_label(index)} cannot have (another) {kind} SVD")
                seen.add(index)
                what = f"the {kind} SVD of {self.region_label(index)}"
                self.array(
                    f"{prefix}SVD[{slot}]", f"the projection array of {what}", svd.projections, (self.frames, None)
                )
                k = int(svd.projections.shape[1])
                if k < 1:
                    self.fail(f"{prefix}SVD[{slot}]", f"{what} has no components")
                self.array(f"{prefix}Sv", f"the singular-value vector of {what}", svd.singular_values, (k,))
                if np.any(np.asarray(svd.singular_values) < 0):
                    self.fail(f"{prefix}Sv", f"{what} has negative singular values")
                shape = (k, *self._mask_shape(index))
                self.array(f"{prefix}Mask_reshape[{slot}]", f"the mask array of {what}", svd.masks, shape)

    def _mask_shape(self, index: int) -> tuple:
        region = self.results.regions[index]
        if region.type == "full_frame":
            return self.binned or (None, None)
        if region.y_bin_range is None or region.x_bin_range is None:
            self.fail(
                f"rois[{region.number}]['yrange_bin']",
                f"{self.region_label(index)} has an SVD but no spatial-bin ranges (yrange_bin, xrange_bin)",
            )
        return (region.y_bin_range[1] - region.y_bin_range[0], region.x_bin_range[1] - region.x_bin_range[0])

    def check_summary(self) -> None:
        shape = self.binned or (None, None)
        for key, what, image in (
            ("avgframe_reshape", "the average frame", self.results.average_frame),
            ("avgmotion_reshape", "the average motion", self.results.average_motion),
        ):
            if image is not None:
                self.array(key, f"{what} (in spatial bins of {self.sbin})", image, shape)
