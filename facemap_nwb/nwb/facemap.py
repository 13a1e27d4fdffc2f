"""Facemap results in NWB (ndx-facemap 1.0.0): the results model to one ``FacemapTask``, and back.

A task contains everything its run made, so a reader goes from the task to every object by
containment or link, never by rebuilding a name (``M = nwbfile.processing["behavior"]``)::

    M["FacemapTask"]                       FacemapTask (parameters as JSON, flags, task_id, task_mode)
    ├── run                                FacemapRun (engine, engine_version, processing_time, source_file)
    ├── view0, view1, ...                  FacemapView (view_index, height, width; link 'video' -> ImageSeries)
    ├── regions                            FacemapRegions (one row per region: ranges, bins, ellipse masks)
    ├── summary_images                     Images: average_frame, average_motion (GrayscaleImage)
    ├── MotionEnergy_<region>              FacemapTimeSeries  signal='motion_energy'
    ├── PupilArea_<region>, ...            FacemapTimeSeries  signal='pupil_area' | 'pupil_area_smooth' |
    │                                                         'pupil_axes_length' | 'pupil_axes_direction'
    ├── PupilCenter_<region>, ...          FacemapSpatialSeries signal='pupil_center' | 'pupil_center_smooth'
    ├── Blink_<region>                     FacemapTimeSeries  signal='blink'
    ├── Running_<region>                   FacemapTimeSeries  signal='running' (dy, dx)
    └── MotionSVD_<region>, MovieSVD_...   FacemapSVDSeries   svd_type='motion' | 'movie'

Every series links its row of ``regions`` (``series.region``); the SVD series also link their video.
The names are for people: readers select by type, ``signal`` / ``svd_type`` and ``region``. A file
may hold several tasks (other parameters, another camera); each is its own ``FacemapTask`` group
(``FacemapTask`` for the first, ``FacemapTask_<task_id>`` for later ones unless named) and nothing
inside carries a suffix.

Values are what their labels say:

* Pupil centres are (y, x) pixels of the camera view's frame: Facemap's values, which are relative
  to the pupil ROI's top-left pixel, plus that origin (``roi_origin``). Where float64 rounding of
  the shift would not give Facemap's values back bit for bit, they are also kept as stored
  (``roi_relative``), so that loading is exact.
* Motion energy and motion SVDs state their frame alignment (``frame_alignment``), masks their
  normalisation (``masks.normalization``), singular values their source (``singular_values.source``).
* Ellipse masks are boolean rows of the regions table; the task's ``parameters`` JSON leaves them out.
* A pupil value the source does not have (MATLAB Facemap's smoothed centre, axes lengths and directions)
  has no series; the reader gives None for it.

Every signal shares the video's timing: its rate and starting time when the video is regular, a
link to the video's timestamps otherwise; timestamps given explicitly (aligned ones) are stored once,
on the task's first series, and every other series links to them. Arrays are written as the
results hold them (float32 for motion and SVDs, float64 for pupil, blink and running, as Facemap
makes them), so they read back exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
from hdmf.common import DynamicTableRegion
from pynwb import NWBFile, ProcessingModule, TimeSeries
from pynwb.base import Images
from pynwb.image import GrayscaleImage, ImageSeries

from ..kinds import SIGNALS
from ..params import ROI, FacemapParameters, inscribed_ellipse
from ..results import FacemapResults, PupilSignals, Region, SVDComponents
from .extension import (
    FacemapRegions,
    FacemapRun,
    FacemapSpatialSeries,
    FacemapSVDSeries,
    FacemapTask,
    FacemapTimeSeries,
    FacemapView,
)

__all__ = ["SIGNALS", "add_facemap_results", "facemap_task_ids", "facemap_tasks", "results_from_nwbfile"]

TASK_NAME = "FacemapTask"
_SVD_PREFIX = {"motion": "MotionSVD_", "movie": "MovieSVD_"}
_NAN = float("nan")
FRAME_ALIGNMENTS = {
    "facemap": "Facemap's alignment: values 0..498 are the difference between frames t+1 and t, value 499 is 0 "
    "(Facemap's first chunk is shifted by one), from 500 on value t is the difference between frames t and t-1; "
    "motion projections of frame 0 repeat frame 1.",
    "previous": "Value t is the difference between frames t and t-1; value 0 is 0 (projections of frame 0 repeat "
    "frame 1).",
}
# Pupil signals: model attribute -> (series name prefix, 'signal', unit, description)
_PUPIL_SERIES = {
    "area": ("PupilArea", "pupil_area", "pixels^2", "Pupil area in pixels (Facemap 'area')."),
    "area_smooth": ("PupilAreaSmooth", "pupil_area_smooth", "pixels^2", "Smoothed pupil area (Facemap 'area_smooth')."),
    "axes_length": ("PupilAxesLength", "pupil_axes_length", "pixels", "Lengths of the pupil ellipse's axes ('axlen')."),
    "axes_direction": (
        "PupilAxesDirection",
        "pupil_axes_direction",
        "n.a.",
        "Unit vectors of the pupil ellipse's axes, (y, x) per axis ('axdir').",
    ),
}
_CENTER_SERIES = {
    "center": ("PupilCenter", "pupil_center", "Pupil centre (Facemap 'com')"),
    "center_smooth": ("PupilCenterSmooth", "pupil_center_smooth", "Smoothed pupil centre (Facemap 'com_smooth')"),
}
_TRACES = {  # model attribute -> (series name prefix, 'signal', unit, description)
    "motion_energy": (
        "MotionEnergy",
        "motion_energy",
        "a.u.",
        "Motion energy in region '{}': sum over its binned pixels of absolute frame differences (Facemap 'motion').",
    ),
    "blinks": (
        "Blink",
        "blink",
        "a.u.",
        "Blink trace of region '{}': summed darkness below the saturation threshold (Facemap 'blink').",
    ),
    "running": (
        "Running",
        "running",
        "pixels",
        "Running of region '{}': (dy, dx) shift between consecutive frames in pixels (Facemap 'running').",
    ),
}


def _tasks(module) -> dict[str, FacemapTask]:
    """The Facemap tasks of a processing module by task id."""
    return {str(i.task_id): i for i in module.data_interfaces.values() if isinstance(i, FacemapTask)}


def _module(nwbfile: NWBFile, name: str) -> ProcessingModule:
    if name in nwbfile.processing:
        return nwbfile.processing[name]
    return nwbfile.create_processing_module(name=name, description="Behavioral signals extracted from face videos.")


class _Timing:
    """The timing keywords of every series of one task: rate and start, the video's timestamps, or timestamps
    stored once on the first series and linked from the others."""

    def __init__(self, videos: Sequence[ImageSeries], rate: float | None, timestamps, starting_time: float):
        self._first = None
        if timestamps is not None:
            self._kwargs = {"timestamps": timestamps}
        elif rate is not None:
            self._kwargs = {"rate": float(rate), "starting_time": float(starting_time)}
        elif not videos:
            raise ValueError("Give the video ImageSeries, a rate or timestamps: the signals need frame times.")
        elif videos[0].rate is not None:
            self._kwargs = {"rate": float(videos[0].rate), "starting_time": float(videos[0].starting_time or 0.0)}
        else:
            self._kwargs = {"timestamps": videos[0]}  # links to the video's own timestamps

    def __call__(self) -> dict:
        if self._first is not None:
            return {"timestamps": self._first}
        return dict(self._kwargs)

    def made(self, series: TimeSeries) -> TimeSeries:
        stored = self._kwargs.get("timestamps")
        if self._first is None and stored is not None and not isinstance(stored, TimeSeries):
            self._first = series  # the others link to this series' timestamps
        return series


def _roi_of(results: FacemapResults, region: Region) -> ROI | None:
    rois = results.parameters.rois
    return rois[region.number] if 0 <= region.number < len(rois) else None


def _regions_table(results: FacemapResults) -> FacemapRegions:
    table = FacemapRegions(name="regions", description="The full frame and the ROIs Facemap processed.")
    masks = []
    for region in results.regions:
        roi = _roi_of(results, region) if region.type in ("pupil", "blink") else None
        saturation = region.saturation if region.saturation is not None else getattr(roi, "saturation", None)
        sigma = region.pupil_sigma if region.pupil_sigma is not None else getattr(roi, "pupil_sigma", None)
        if region.type != "pupil":
            sigma = None
        masks.append(np.zeros(0, dtype=bool) if roi is None else np.asarray(roi.mask, dtype=bool).ravel())
        ybins = region.y_bin_range if region.y_bin_range is not None else (-1, -1)
        xbins = region.x_bin_range if region.x_bin_range is not None else (-1, -1)
        i32 = np.int32  # the spec's dtypes, stored as declared
        table.add_row(
            roi_number=i32(region.number),
            roi_name=region.name,
            roi_type=region.type,
            camera_view=i32(region.video_index),
            y_start=i32(region.y_range[0]),
            y_stop=i32(region.y_range[1]),
            x_start=i32(region.x_range[0]),
            x_stop=i32(region.x_range[1]),
            y_bin_start=i32(ybins[0]),
            y_bin_stop=i32(ybins[1]),
            x_bin_start=i32(xbins[0]),
            x_bin_stop=i32(xbins[1]),
            saturation=np.float32(_NAN if saturation is None else saturation),
            pupil_sigma=np.float32(_NAN if sigma is None else sigma),
        )
    if any(m.size for m in masks):
        table.add_column(
            name="ellipse",
            description="Ellipse mask of a pupil or blink ROI, row-major over its (y_stop - y_start, x_stop - "
            "x_start) rectangle: true where a pixel is used; empty for other regions.",
            data=[m.tolist() for m in masks],
            index=True,
        )
    return table


def _parameters_json(params: FacemapParameters) -> str:
    """The parameters as JSON without the ROI ellipse masks (they are rows of the regions table)."""
    import json

    values = params.to_dict()
    for roi in values["rois"]:
        roi.pop("ellipse", None)
    return json.dumps(values, sort_keys=True)


def _task(results: FacemapResults, regions: FacemapRegions, task_id: str, mode: str, description, name, views):
    if mode not in ("load", "trigger"):
        raise ValueError(f"Task mode must be 'load' or 'trigger', not {mode!r}.")
    params = results.parameters
    run = dict(name="run", engine=results.engine, source_file=results.source_file)
    if results.engine_version:
        run["engine_version"] = results.engine_version
    if results.processing_time is not None:
        run["processing_time"] = results.processing_time
    task = FacemapTask(
        name=name,
        task_id=str(task_id),
        task_mode=mode,
        description=description or f"Facemap processing task {task_id} ({mode} mode).",
        motion_svd=params.motion_svd,
        movie_svd=params.movie_svd,
        multivideo_svd=params.multivideo_svd,
        spatial_bin=np.int32(params.spatial_bin),
        n_components=np.int32(params.n_components),
        parameters=_parameters_json(params),
        regions=regions,
        run=FacemapRun(**run),
    )
    for index, (height, width) in enumerate(results.view_shapes):
        view = dict(name=f"view{index}", view_index=np.int32(index), height=np.int32(height), width=np.int32(width))
        if index < len(views):
            view["video"] = views[index]
        task.add_facemap_views(FacemapView(**view))
    return task


def _region_link(table: FacemapRegions, index: int) -> DynamicTableRegion:
    return DynamicTableRegion(name="region", data=[index], description="The series' row of the task's regions.",
                              table=table)  # fmt: skip


def _video_of(region: Region, videos: Sequence[ImageSeries]) -> ImageSeries | None:
    if not videos:
        return None
    return videos[max(region.video_index, 0)] if region.video_index < len(videos) else videos[0]


def _mask_normalization(svd: SVDComponents, masks: np.ndarray) -> str:
    if svd.singular_values_source == "mask_norms":
        return "singular_values"
    norms = np.linalg.norm(masks.reshape(masks.shape[0], -1), axis=1) if masks.size else np.ones(0)
    return "unit" if np.allclose(norms, 1.0, rtol=1e-3) else "singular_values"


def _svd_series(svd: SVDComponents, region: Region, table, timing: _Timing, videos, n_components, alignment):
    k = svd.n_components if n_components is None else min(n_components, svd.n_components)
    what = "motion (absolute frame differences)" if svd.svd_type == "motion" else "raw movie"
    masks = np.asarray(svd.masks[:k], dtype=np.float32)
    normalization = _mask_normalization(svd, masks)
    scale = "unit masks" if normalization == "unit" else "masks scaled by their singular values (Facemap U * S)"
    description = (
        f"SVD of the {what} in region '{region.name}': projections of each frame on {k} components; {scale}; "
        f"singular values: {svd.singular_values_source}."
    )
    kwargs = dict(
        name=f"{_SVD_PREFIX[svd.svd_type]}{region.name}",
        description=description,
        data=_projection_data(svd.projections, k),
        unit="a.u.",
        svd_type=svd.svd_type,
        singular_values=np.asarray(svd.singular_values[:k], dtype=np.float32),
        singular_values__source=svd.singular_values_source,
        masks=_chunked_masks(masks),
        masks__normalization=normalization,
        region=_region_link(table, svd.region),
        **timing(),
    )
    if svd.svd_type == "motion":
        kwargs["frame_alignment"] = FRAME_ALIGNMENTS[alignment]
        kwargs["description"] += " Frame alignment: " + FRAME_ALIGNMENTS[alignment]
    video = _video_of(region, videos)
    if video is not None:
        kwargs["source_video"] = video
    return timing.made(FacemapSVDSeries(**kwargs))


def _projection_data(projections, k: int):
    """The first ``k`` projection columns: an array, or for projections kept in a temporary file (long videos)
    an hdmf chunk iterator, so that writing reads ~64 MB at a time (neuroconv then gives it its chunks and
    gzip like any other dataset)."""
    from ..engines.frames import SpilledArray

    if isinstance(projections, SpilledArray):
        return projections.chunk_iterator(k)
    return np.asarray(projections[:, :k], dtype=np.float32)


def _chunked_masks(masks: np.ndarray):
    # One chunk per component, so that reading one mask reads one chunk. Not compressed: SVD masks are
    # noise-like float32 and gzip saves about 15% of their size at ~50 MB/s, which made writing the file
    # slower than computing it (neuroconv's backend configuration covers 'data' and 'timestamps' only,
    # hence the explicit wrapping). Zarr ignores H5DataIO and uses its own default compressor.
    from hdmf.backends.hdf5 import H5DataIO

    if masks.size == 0:
        return masks
    return H5DataIO(masks, chunks=(1, *masks.shape[1:]))


def _add_pupils(task, results: FacemapResults, table, timing: _Timing):
    for pupil in results.pupils:
        region = results.regions[pupil.region]
        for attribute, (prefix, signal, unit, description) in _PUPIL_SERIES.items():
            if getattr(pupil, attribute) is None:
                continue  # a value the source does not have (MATLAB Facemap fits no axes)
            series = FacemapTimeSeries(
                name=f"{prefix}_{region.name}",
                data=getattr(pupil, attribute),
                description=description,
                unit=unit,
                signal=signal,
                region=_region_link(table, pupil.region),
                **timing(),
            )
            task.add_facemap_time_series(timing.made(series))
        origin = np.array([region.y_range[0], region.x_range[0]], dtype=np.int32)
        frame = (
            f"(y, x) in pixels of the camera view's frame, from its top-left pixel (0, 0), rows down and columns "
            f"right: Facemap's ROI-relative values plus the ROI's top-left pixel roi_origin = ({origin[0]}, "
            f"{origin[1]})."
        )
        for attribute, (prefix, signal, what) in _CENTER_SERIES.items():
            if getattr(pupil, attribute) is None:
                continue  # MATLAB Facemap smooths no centre
            relative = np.asarray(getattr(pupil, attribute))
            data = relative + origin
            kwargs = {}
            if not np.array_equal(data - origin, relative, equal_nan=True):
                kwargs["roi_relative"] = relative
            series = FacemapSpatialSeries(
                name=f"{prefix}_{region.name}",
                data=data,
                description=f"{what}, in pixels of the frame (y, x).",
                unit="pixels",
                reference_frame=frame,
                signal=signal,
                roi_origin=origin,
                region=_region_link(table, pupil.region),
                **kwargs,
                **timing(),
            )
            task.add_facemap_spatial_series(timing.made(series))


def _add_traces(task, attribute: str, traces: dict[int, np.ndarray], results, table, timing: _Timing):
    prefix, signal, unit, description = _TRACES[attribute]
    for index, data in traces.items():
        region = results.regions[index]
        kwargs = {}
        text = description.format(region.name)
        if signal == "motion_energy":
            kwargs["frame_alignment"] = FRAME_ALIGNMENTS[results.frame_alignment]
            text += " Frame alignment: " + FRAME_ALIGNMENTS[results.frame_alignment]
        series = FacemapTimeSeries(
            name=f"{prefix}_{region.name}",
            data=data,
            description=text,
            unit=unit,
            signal=signal,
            region=_region_link(table, index),
            **kwargs,
            **timing(),
        )
        task.add_facemap_time_series(timing.made(series))


def _summary(results: FacemapResults) -> Images | None:
    images = []
    for name, image, what, key in (
        ("average_frame", results.average_frame, "Average frame", "avgframe_reshape"),
        ("average_motion", results.average_motion, "Average absolute frame difference", "avgmotion_reshape"),
    ):
        if image is not None:
            description = f"{what}, binned by {results.parameters.spatial_bin} pixels (Facemap '{key}')."
            images.append(GrayscaleImage(name=name, data=np.asarray(image, dtype=np.float32), description=description))
    if not images:
        return None
    return Images(name="summary_images", images=images, description="Facemap summary frames.")


def _task_name(module, task_id: str, name: str | None) -> str:
    if name is None:
        name = TASK_NAME if TASK_NAME not in module.data_interfaces else f"{TASK_NAME}_{task_id}"
    if "/" in name:
        raise ValueError(f"The task name {name!r} contains '/', which NWB names cannot hold; choose another name.")
    if name in module.data_interfaces:
        raise ValueError(
            f"The NWB file's '{module.name}' module already holds an object named {name!r}; give this Facemap task "
            "another name."
        )
    return name


def add_facemap_results(
    nwbfile: NWBFile,
    results: FacemapResults,
    *,
    videos: Sequence[ImageSeries] = (),
    task_id: str = "0",
    task_mode: str = "load",
    description: str | None = None,
    signals: Iterable[str] = SIGNALS,
    n_components: int | None = None,
    rate: float | None = None,
    timestamps=None,
    starting_time: float = 0.0,
    module_name: str = "behavior",
    name: str | None = None,
    check_videos: bool = True,
) -> FacemapTask:
    """Write Facemap results into ``nwbfile``'s behaviour module as one ``FacemapTask``.

    Parameters
    ----------
    nwbfile : NWBFile
    results : FacemapResults
    videos : sequence of ImageSeries
        The video of each simultaneous view, in Facemap's order; the task's views and the SVDs link to
        them and the signals take their timing from the first.
    task_id, task_mode, description : str
        The processing task (``task_mode`` is ``"load"`` or ``"trigger"``).
    signals : iterable of str
        Which of :data:`SIGNALS` to write (all by default).
    n_components : int, optional
        Keep at most this many SVD components.
    rate, timestamps, starting_time
        Frame timing, instead of the video's (e.g. aligned timestamps: stored once, linked by the others).
    name : str, optional
        Name of the task group: ``FacemapTask`` when the module has none yet, else ``FacemapTask_<task_id>``.
        Readers find tasks by type and ``task_id``, never by name.
    check_videos : bool
        Refuse videos whose frame count differs from the results' (off for stub conversions, whose signals
        cover the first frames of a longer video).
    """
    signals = set(signals)
    unknown = signals - set(SIGNALS)
    if unknown:
        raise ValueError(f"Unknown signals {sorted(unknown)}; choose from {', '.join(SIGNALS)}.")
    if n_components is not None and n_components < 1:
        raise ValueError(f"n_components must be at least 1, not {n_components}.")
    if results.frame_alignment not in FRAME_ALIGNMENTS:
        raise ValueError(f"frame_alignment must be one of {sorted(FRAME_ALIGNMENTS)}, not {results.frame_alignment!r}.")
    module = _module(nwbfile, module_name)
    if str(task_id) in _tasks(module):
        raise ValueError(
            f"The NWB file's '{module_name}' module already holds Facemap task {str(task_id)!r}; give each task "
            "its own task_id (with several FacemapInterfaces: give each its own metadata_key and set task_id in "
            "metadata['Behavior'][metadata_key])."
        )
    name = _task_name(module, str(task_id), name)
    for video in videos if check_videos else ():
        frames = video.num_samples
        if frames is not None:
            results.check_frame_count(int(frames), what=f"video '{video.name}'")
    timing = _Timing(videos, rate, timestamps, starting_time)
    table = _regions_table(results)
    task = _task(results, table, task_id, task_mode, description, name, list(videos))
    if "summary" in signals:
        summary = _summary(results)
        if summary is not None:
            task.summary_images = summary
    if "motion_energy" in signals:
        _add_traces(task, "motion_energy", results.motion_energy, results, table, timing)
    for kind in ("motion", "movie"):
        if f"{kind}_svd" in signals:
            for svd in results.svds(kind):
                series = _svd_series(
                    svd, results.regions[svd.region], table, timing, videos, n_components, results.frame_alignment
                )
                task.add_facemap_svd_series(series)
    if "pupil" in signals:
        _add_pupils(task, results, table, timing)
    if "blink" in signals:
        _add_traces(task, "blinks", results.blinks, results, table, timing)
    if "running" in signals:
        _add_traces(task, "running", results.running, results, table, timing)
    module.add(task)
    return task


# ----------------------------------------------------------------------------------------------- reading

_REGION_COLUMNS = (
    "roi_number",
    "roi_name",
    "roi_type",
    "camera_view",
    "y_start",
    "y_stop",
    "x_start",
    "x_stop",
    "y_bin_start",
    "y_bin_stop",
    "x_bin_start",
    "x_bin_stop",
    "saturation",
    "pupil_sigma",
)


def _regions_from_table(table) -> tuple[list[Region], list[np.ndarray | None]]:
    """The regions and the ellipse mask of each (None where the table has none)."""
    columns = {name: table[name].data[:] for name in _REGION_COLUMNS}
    rows = len(columns["roi_number"])
    ellipses: list[np.ndarray | None] = [None] * rows
    if "ellipse" in table.colnames:
        column = table["ellipse"]
        flat, ends = np.asarray(column.target.data[:], dtype=bool), np.asarray(column.data[:], dtype=np.int64)
        starts = np.concatenate([[0], ends[:-1]])
        ellipses = [flat[a:b] if b > a else None for a, b in zip(starts, ends, strict=True)]

    def pair(start, stop):
        return None if start < 0 else (int(start), int(stop))

    def optional(value):
        return None if np.isnan(value) else float(value)

    regions = []
    for i in range(rows):
        c = {k: v[i] for k, v in columns.items()}
        regions.append(
            Region(
                number=int(c["roi_number"]),
                name=str(c["roi_name"]),
                type=str(c["roi_type"]),
                video_index=int(c["camera_view"]),
                y_range=(int(c["y_start"]), int(c["y_stop"])),
                x_range=(int(c["x_start"]), int(c["x_stop"])),
                y_bin_range=pair(c["y_bin_start"], c["y_bin_stop"]),
                x_bin_range=pair(c["x_bin_start"], c["x_bin_stop"]),
                saturation=optional(c["saturation"]),
                pupil_sigma=optional(c["pupil_sigma"]),
            )
        )
    return regions, ellipses


def _parameters(text: str, regions: list[Region], ellipses) -> FacemapParameters:
    """The task's parameters with each ROI's ellipse mask put back from the regions table (a mask equal to the
    inscribed ellipse, the default, stays implicit)."""
    import json

    values = json.loads(text)
    rois = values.get("rois", [])
    for region, mask in zip(regions, ellipses, strict=True):
        if mask is None or not 0 <= region.number < len(rois):
            continue
        height, width = region.y_range[1] - region.y_range[0], region.x_range[1] - region.x_range[0]
        mask = mask.reshape(height, width)
        if not np.array_equal(mask, inscribed_ellipse(height, width)):
            rois[region.number]["ellipse"] = mask.tolist()
    return FacemapParameters.from_dict(values, source="The NWB file's Facemap task parameters")


def _read(dataset, lazy: bool):
    return dataset if lazy else dataset[()]


def _row(series) -> int:
    return int(series.region.data[0])


def _pupils_from(task, lazy: bool) -> list[PupilSignals]:
    parts: dict[int, dict] = {}
    signal_to_attribute = {v[1]: k for k, v in _PUPIL_SERIES.items()}
    for series in task.facemap_time_series.values():
        if series.signal in signal_to_attribute:
            parts.setdefault(_row(series), {})[signal_to_attribute[series.signal]] = _read(series.data, lazy)
    center_to_attribute = {v[1]: k for k, v in _CENTER_SERIES.items()}
    for series in task.facemap_spatial_series.values():
        if series.signal not in center_to_attribute:
            continue
        if series.roi_relative is not None:
            values = _read(series.roi_relative, lazy)
        else:
            values = series.data[()] - np.asarray(series.roi_origin, dtype=np.int32)
        parts.setdefault(_row(series), {})[center_to_attribute[series.signal]] = values
    return [PupilSignals(region=row, **values) for row, values in sorted(parts.items())]


def _traces_from(task, signal: str, lazy: bool) -> dict[int, np.ndarray]:
    found = {_row(s): _read(s.data, lazy) for s in task.facemap_time_series.values() if s.signal == signal}
    return dict(sorted(found.items()))


def _svds_from(task, kind: str, lazy: bool) -> list[SVDComponents]:
    out = [
        SVDComponents(
            svd_type=kind,
            region=_row(series),
            projections=_read(series.data, lazy),
            singular_values=series.singular_values[()],
            masks=_read(series.masks, lazy),
            singular_values_source=str(series.singular_values__source),
        )
        for series in task.facemap_svd_series.values()
        if series.svd_type == kind
    ]
    return sorted(out, key=lambda s: s.region)


def _frames_and_rate(task) -> tuple[int, float | None]:
    """Frames of the task's signals and their rate (None when they have timestamps)."""
    for series in task.series.values():
        if series.num_samples is not None:
            return int(series.num_samples), (float(series.rate) if series.rate is not None else None)
    return 0, None


def _alignment(task) -> str:
    for series in [*task.facemap_time_series.values(), *task.facemap_svd_series.values()]:
        text = getattr(series, "frame_alignment", None)
        if text:
            return next((k for k, v in FRAME_ALIGNMENTS.items() if v == text), "facemap")
    return "facemap"


def facemap_tasks(nwbfile: NWBFile, *, module_name: str = "behavior") -> dict[str, FacemapTask]:
    """The Facemap tasks of an open NWB file by ``task_id`` (in the file's order), found by type."""
    if module_name not in nwbfile.processing:
        return {}
    return _tasks(nwbfile.processing[module_name])


def facemap_task_ids(nwbfile: NWBFile, *, module_name: str = "behavior") -> list[str]:
    """The ids of the Facemap tasks an open NWB file holds (in the file's order)."""
    return list(facemap_tasks(nwbfile, module_name=module_name))


def _processing_time(run) -> datetime | None:
    value = getattr(run, "processing_time", None) if run is not None else None
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def results_from_nwbfile(
    nwbfile: NWBFile, *, task_id: str | None = None, module_name: str = "behavior", lazy: bool = False
) -> FacemapResults:
    """The results model of one task from an open NWB file (large arrays stay on disk when ``lazy``).

    ``task_id`` picks the task; it may be left out when the file holds exactly one.
    """
    tasks = facemap_tasks(nwbfile, module_name=module_name)
    if not tasks:
        raise ValueError(f"The NWB file holds no Facemap task in processing['{module_name}'].")
    if task_id is None and len(tasks) > 1:
        raise ValueError(
            f"The NWB file holds Facemap tasks {list(tasks)}: choose one with task_id (--task-id in the CLI)."
        )
    if task_id is not None and str(task_id) not in tasks:
        raise ValueError(f"The NWB file holds no Facemap task {str(task_id)!r}; it holds {list(tasks)}.")
    task = tasks[str(task_id)] if task_id is not None else next(iter(tasks.values()))
    regions, ellipses = _regions_from_table(task.regions)
    summary = task.summary_images.images if task.summary_images is not None else {}
    run = task.run
    frame_count, frame_rate = _frames_and_rate(task)
    return FacemapResults(
        parameters=_parameters(task.parameters, regions, ellipses),
        frame_count=frame_count,
        frame_rate=frame_rate,
        view_shapes=[(int(v.height), int(v.width)) for v in task.views],
        regions=regions,
        motion_energy=_traces_from(task, "motion_energy", lazy),
        motion_svd=_svds_from(task, "motion", lazy),
        movie_svd=_svds_from(task, "movie", lazy),
        average_frame=summary["average_frame"].data[()] if "average_frame" in summary else None,
        average_motion=summary["average_motion"].data[()] if "average_motion" in summary else None,
        pupils=_pupils_from(task, lazy),
        blinks=_traces_from(task, "blink", lazy),
        running=_traces_from(task, "running", lazy),
        engine=run.engine if run else "",
        engine_version=(run.engine_version or "") if run else "",
        processing_time=_processing_time(run),
        source_file=run.source_file if run else None,
        frame_alignment=_alignment(task),
    )
