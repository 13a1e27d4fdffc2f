"""Facemap results in NWB: the results model to the ``behavior`` processing module, and back.

Layout (``M = nwbfile.processing["behavior"]``; ``<region>`` is the region's name, e.g. ``full_frame``,
``motion0``, ``pupil0``):

=========================================  ===========================================================
what                                       where
=========================================  ===========================================================
task, parameters, engine, processing time  ``M["FacemapTask"]`` (ndx-facemap ``FacemapTask``; its ``run``)
regions (ROIs and the full frame)          ``M["FacemapTask"].regions`` (ndx-facemap ``FacemapRegions``)
motion energy                              ``M["MotionEnergy"]["<region>"]`` (``TimeSeries``)
motion / movie SVD                         ``M["MotionSVD_<region>"]`` / ``M["MovieSVD_<region>"]``
                                           (ndx-facemap ``FacemapSVDSeries``: ``data`` projections,
                                           ``singular_values``, ``masks``, ``region``, ``source_video``)
average frame, average motion              ``M["FacemapSummaryImages"]["average_frame" | "average_motion"]``
pupil area (raw and smoothed), axes        ``M["PupilTracking"]["<region>_area" | "_area_smooth" |
                                           "_axes_length" | "_axes_direction"]``
pupil centre (raw and smoothed)            ``M["EyeTracking"]["<region>_center" | "_center_smooth"]``
blink                                      ``M["Blink"]["<region>"]``
running (dy, dx)                           ``M["Running"]["<region>"]``
=========================================  ===========================================================

A file may hold several tasks (element-facemap's tasks on one session: other parameters, another
camera). Each task's objects then carry the task's name suffix, :func:`task_suffix` (``_task-<id>``),
at the end of every name above: ``M["FacemapTask_task-1"]``, ``M["MotionEnergy_task-1"]["<region>"]``,
``M["MotionSVD_<region>_task-1"]``, ``M["PupilTracking_task-1"]["<region>_area"]``, ... A file with one
task has no suffix. Readers find a task by its ``task_id`` (:func:`facemap_task_ids` lists them) and
its other objects by the suffix of its ``FacemapTask`` object's name.

Every signal shares the video's timing: its rate and starting time when the video is regular, a
link to the video's timestamps otherwise (or timestamps given explicitly, e.g. aligned ones).
Arrays are written as the results hold them (float32 for motion and SVDs, float64 for pupil,
blink and running, as Facemap makes them), so they read back exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
from hdmf.common import DynamicTableRegion
from pynwb import NWBFile, ProcessingModule, TimeSeries
from pynwb.base import Images
from pynwb.behavior import BehavioralTimeSeries, EyeTracking, PupilTracking, SpatialSeries
from pynwb.image import GrayscaleImage, ImageSeries

from ..params import FacemapParameters
from ..results import FacemapResults, PupilSignals, Region, SVDComponents
from .extension import FacemapRegions, FacemapRun, FacemapSVDSeries, FacemapTask

from ..kinds import SIGNALS

__all__ = ["SIGNALS", "add_facemap_results", "facemap_task_ids", "results_from_nwbfile", "task_suffix"]

TASK_NAME = "FacemapTask"
SUMMARY_NAME = "FacemapSummaryImages"
_SVD_PREFIX = {"motion": "MotionSVD_", "movie": "MovieSVD_"}
_NAN = float("nan")


def task_suffix(task_id: str) -> str:
    """The suffix of a task's object names in a file holding several tasks: ``_task-<id>``."""
    return f"_task-{task_id}"


def _tasks(module) -> dict[str, FacemapTask]:
    """The Facemap tasks of a processing module by task id."""
    return {str(i.task_id): i for i in module.data_interfaces.values() if isinstance(i, FacemapTask)}


def _module(nwbfile: NWBFile, name: str) -> ProcessingModule:
    if name in nwbfile.processing:
        return nwbfile.processing[name]
    return nwbfile.create_processing_module(name=name, description="Behavioral signals extracted from face videos.")


def _timing(videos: Sequence[ImageSeries], rate: float | None, timestamps, starting_time: float) -> dict:
    if timestamps is not None:
        return {"timestamps": timestamps}
    if rate is not None:
        return {"rate": float(rate), "starting_time": float(starting_time)}
    if not videos:
        raise ValueError("Give the video ImageSeries, a rate or timestamps: the signals need frame times.")
    video = videos[0]
    if video.rate is not None:
        return {"rate": float(video.rate), "starting_time": float(video.starting_time or 0.0)}
    return {"timestamps": video}  # links to the video's own timestamps


def _regions_table(results: FacemapResults, videos: Sequence[ImageSeries]) -> FacemapRegions:
    table = FacemapRegions(name="regions", description="The full frame and the ROIs Facemap processed.")

    def bins(value):
        return value if value is not None else (-1, -1)

    for region in results.regions:
        row = dict(
            roi_number=region.number,
            roi_name=region.name,
            roi_type=region.type,
            camera_view=region.video_index,
            y_start=region.y_range[0],
            y_stop=region.y_range[1],
            x_start=region.x_range[0],
            x_stop=region.x_range[1],
            y_bin_start=bins(region.y_bin_range)[0],
            y_bin_stop=bins(region.y_bin_range)[1],
            x_bin_start=bins(region.x_bin_range)[0],
            x_bin_stop=bins(region.x_bin_range)[1],
            saturation=_NAN if region.saturation is None else region.saturation,
            pupil_sigma=_NAN if region.pupil_sigma is None else region.pupil_sigma,
        )
        if videos:
            row["source_video"] = videos[max(region.video_index, 0)] if region.video_index < len(videos) else videos[0]
        table.add_row(**row)
    return table


def _task(results: FacemapResults, regions: FacemapRegions, task_id: str, mode: str, description: str | None, name):
    if mode not in ("load", "trigger"):
        raise ValueError(f"Task mode must be 'load' or 'trigger', not {mode!r}.")
    params = results.parameters
    run = FacemapRun(
        name="run",
        engine=results.engine,
        engine_version=results.engine_version or None,
        processing_time=results.processing_time.isoformat() if results.processing_time else None,
        source_file=results.source_file,
    )
    return FacemapTask(
        name=name,
        task_id=str(task_id),
        task_mode=mode,
        description=description or f"Facemap processing task {task_id} ({mode} mode).",
        motion_svd=params.motion_svd,
        movie_svd=params.movie_svd,
        multivideo_svd=params.multivideo_svd,
        spatial_bin=params.spatial_bin,
        n_components=params.n_components,
        parameters=params.to_json(),
        regions=regions,
        run=run,
    )


def _svd_series(svd: SVDComponents, region: Region, table, timing, videos, n_components, suffix: str):
    k = svd.n_components if n_components is None else min(n_components, svd.n_components)
    what = "motion (absolute frame differences)" if svd.svd_type == "motion" else "raw movie"
    kwargs = dict(
        name=f"{_SVD_PREFIX[svd.svd_type]}{region.name}{suffix}",
        description=f"SVD of the {what} in region '{region.name}': projections of each frame on {k} components.",
        data=np.asarray(svd.projections[:, :k], dtype=np.float32),
        unit="a.u.",
        svd_type=svd.svd_type,
        singular_values=np.asarray(svd.singular_values[:k], dtype=np.float32),
        singular_values__source=svd.singular_values_source,
        masks=_chunked_masks(np.asarray(svd.masks[:k], dtype=np.float32)),
        region=DynamicTableRegion(name="region", data=[svd.region], description="The SVD's region.", table=table),
        **timing,
    )
    if videos:
        kwargs["source_video"] = videos[max(region.video_index, 0)] if region.video_index < len(videos) else videos[0]
    return FacemapSVDSeries(**kwargs)


def _chunked_masks(masks: np.ndarray):
    # One chunk per component, so that reading one mask reads one chunk. Not compressed: SVD masks are
    # noise-like float32 and gzip saves about 15% of their size at ~50 MB/s, which made writing the file
    # slower than computing it (neuroconv's backend configuration covers 'data' and 'timestamps' only,
    # hence the explicit wrapping). Zarr ignores H5DataIO and uses its own default compressor.
    from hdmf.backends.hdf5 import H5DataIO

    if masks.size == 0:
        return masks
    return H5DataIO(masks, chunks=(1, *masks.shape[1:]))


def _series(name, data, description, timing, unit="a.u.", cls=TimeSeries, **extra):
    return cls(name=name, data=data, description=description, unit=unit, **timing, **extra)


def _add_pupils(module, pupils: list[PupilSignals], regions, timing, suffix: str):
    tracking, eye = PupilTracking(name=f"PupilTracking{suffix}"), EyeTracking(name=f"EyeTracking{suffix}")
    for pupil in pupils:
        name = regions[pupil.region].name
        tracking.add_timeseries(_series(f"{name}_area", pupil.area, "Pupil area (Facemap 'area').", timing, "pixels^2"))
        tracking.add_timeseries(
            _series(
                f"{name}_area_smooth", pupil.area_smooth, "Smoothed pupil area ('area_smooth').", timing, "pixels^2"
            )
        )
        tracking.add_timeseries(
            _series(
                f"{name}_axes_length",
                pupil.axes_length,
                "Lengths of the pupil ellipse's axes ('axlen').",
                timing,
                "pixels",
            )
        )
        tracking.add_timeseries(
            _series(
                f"{name}_axes_direction",
                pupil.axes_direction,
                "Unit vectors of the pupil ellipse's axes, (y, x) per axis ('axdir').",
                timing,
                "n.a.",
            )
        )
        frame = "(y, x) in pixels from the top-left corner of the video frame"
        for suffix, data, what in (
            ("center", pupil.center, "'com'"),
            ("center_smooth", pupil.center_smooth, "'com_smooth'"),
        ):
            eye.add_spatial_series(
                _series(
                    f"{name}_{suffix}",
                    data,
                    f"Pupil centre ({what}).",
                    timing,
                    "pixels",
                    SpatialSeries,
                    reference_frame=frame,
                )
            )
    if pupils:
        module.add(tracking)
        module.add(eye)


def _add_traces(module, name: str, traces: dict[int, np.ndarray], regions, description: str, timing, unit="a.u."):
    if not traces:
        return
    container = BehavioralTimeSeries(name=name)
    for index, data in traces.items():
        container.add_timeseries(
            _series(regions[index].name, data, description.format(regions[index].name), timing, unit)
        )
    module.add(container)


def _add_summary(module, results: FacemapResults, suffix: str):
    images = []
    for name, image, what in (
        ("average_frame", results.average_frame, "Average frame"),
        ("average_motion", results.average_motion, "Average absolute frame difference"),
    ):
        if image is not None:
            key = name.replace("_", "")
            description = f"{what}, binned by {results.parameters.spatial_bin} pixels (Facemap '{key}_reshape')."
            images.append(GrayscaleImage(name=name, data=np.asarray(image, dtype=np.float32), description=description))
    if images:
        module.add(Images(name=f"{SUMMARY_NAME}{suffix}", images=images, description="Facemap summary frames."))


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
    video_column: bool = True,
    name_suffix: str = "",
) -> FacemapTask:
    """Write Facemap results into ``nwbfile``'s behaviour module.

    Parameters
    ----------
    nwbfile : NWBFile
    results : FacemapResults
    videos : sequence of ImageSeries
        The video of each simultaneous view, in Facemap's order; regions and SVDs link to them and the
        signals take their timing from the first.
    task_id, task_mode, description : str
        The processing task (``task_mode`` is ``"load"`` or ``"trigger"``).
    signals : iterable of str
        Which of :data:`SIGNALS` to write (all by default).
    n_components : int, optional
        Keep at most this many SVD components.
    rate, timestamps, starting_time
        Frame timing, instead of the video's (e.g. aligned timestamps).
    video_column : bool
        Give the regions table its ``source_video`` object-reference column. Leave it out for NWB Zarr:
        hdmf-zarr stores such columns with a pickle codec that current numcodecs refuses to read back
        (the SVD series still link to their video).
    name_suffix : str
        Appended to the name of every object this task writes; needed when the module already holds a
        Facemap task (use :func:`task_suffix`, as sessions with several tasks do).
    """
    signals = set(signals)
    unknown = signals - set(SIGNALS)
    if unknown:
        raise ValueError(f"Unknown signals {sorted(unknown)}; choose from {', '.join(SIGNALS)}.")
    if n_components is not None and n_components < 1:
        raise ValueError(f"n_components must be at least 1, not {n_components}.")
    if "/" in name_suffix:
        raise ValueError(f"name_suffix {name_suffix!r} contains '/', which NWB names cannot hold.")
    module = _module(nwbfile, module_name)
    existing = _tasks(module)
    if str(task_id) in existing:
        raise ValueError(
            f"The NWB file's '{module_name}' module already holds Facemap task {str(task_id)!r}; give each task "
            "its own task_id (with several FacemapInterfaces: give each its own metadata_key, and set task_id and "
            "name_suffix in metadata['Behavior'][metadata_key])."
        )
    if f"{TASK_NAME}{name_suffix}" in module.data_interfaces:
        raise ValueError(
            f"The NWB file's '{module_name}' module already holds a Facemap task named "
            f"'{TASK_NAME}{name_suffix}' (task {sorted(existing)}); give this task its own name_suffix, "
            f"e.g. task_suffix({str(task_id)!r}) = {task_suffix(str(task_id))!r}."
        )
    for video in videos:
        frames = video.num_samples
        if frames is not None:
            results.check_frame_count(int(frames), what=f"video '{video.name}'")
    timing = _timing(videos, rate, timestamps, starting_time)
    table = _regions_table(results, videos if video_column else ())
    task = _task(results, table, task_id, task_mode, description, f"{TASK_NAME}{name_suffix}")
    module.add(task)
    regions = results.regions
    if "motion_energy" in signals:
        text = "Motion energy in region '{}': sum over its binned pixels of absolute frame differences."
        _add_traces(module, f"MotionEnergy{name_suffix}", results.motion_energy, regions, text, timing)
    for kind in ("motion", "movie"):
        if f"{kind}_svd" in signals:
            for svd in results.svds(kind):
                series = _svd_series(svd, regions[svd.region], table, timing, videos, n_components, name_suffix)
                module.add(series)
    if "summary" in signals:
        _add_summary(module, results, name_suffix)
    if "pupil" in signals:
        _add_pupils(module, results.pupils, regions, timing, name_suffix)
    if "blink" in signals:
        text = "Blink trace of region '{}': summed darkness below the saturation threshold (Facemap 'blink')."
        _add_traces(module, f"Blink{name_suffix}", results.blinks, regions, text, timing)
    if "running" in signals:
        text = "Running of region '{}': (dy, dx) shift between consecutive frames in pixels (Facemap 'running')."
        _add_traces(module, f"Running{name_suffix}", results.running, regions, text, timing, unit="pixels")
    return task


# ----------------------------------------------------------------------------------------------- reading


def _region_from_row(row) -> Region:
    def pair(start, stop):
        return None if start < 0 else (int(start), int(stop))

    def optional(value):
        return None if np.isnan(value) else float(value)

    return Region(
        number=int(row.roi_number),
        name=str(row.roi_name),
        type=str(row.roi_type),
        video_index=int(row.camera_view),
        y_range=(int(row.y_start), int(row.y_stop)),
        x_range=(int(row.x_start), int(row.x_stop)),
        y_bin_range=pair(row.y_bin_start, row.y_bin_stop),
        x_bin_range=pair(row.x_bin_start, row.x_bin_stop),
        saturation=optional(row.saturation),
        pupil_sigma=optional(row.pupil_sigma),
    )


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


def _regions_from_table(table) -> list[Region]:
    # Column by column rather than to_dataframe(): the object-reference column 'source_video' is stored
    # with a pickle codec by hdmf-zarr, which current numcodecs refuses to decode.
    from types import SimpleNamespace

    columns = {name: table[name].data[:] for name in _REGION_COLUMNS}
    rows = len(columns["roi_number"])
    return [_region_from_row(SimpleNamespace(**{k: v[i] for k, v in columns.items()})) for i in range(rows)]


def _read(dataset, lazy: bool):
    return dataset if lazy else dataset[()]


def _traces(module, name: str, index_of: dict[str, int], lazy: bool) -> dict[int, np.ndarray]:
    if name not in module.data_interfaces:
        return {}
    return {index_of[k]: _read(ts.data, lazy) for k, ts in module[name].time_series.items()}


def _pupils_from(module, index_of: dict[str, int], lazy: bool, suffix: str) -> list[PupilSignals]:
    if f"PupilTracking{suffix}" not in module.data_interfaces:
        return []
    tracking, eye = module[f"PupilTracking{suffix}"].time_series, module[f"EyeTracking{suffix}"].spatial_series
    names = [k[: -len("_area")] for k in tracking if k.endswith("_area")]
    return [
        PupilSignals(
            region=index_of[n],
            area=_read(tracking[f"{n}_area"].data, lazy),
            area_smooth=_read(tracking[f"{n}_area_smooth"].data, lazy),
            center=_read(eye[f"{n}_center"].data, lazy),
            center_smooth=_read(eye[f"{n}_center_smooth"].data, lazy),
            axes_length=_read(tracking[f"{n}_axes_length"].data, lazy),
            axes_direction=_read(tracking[f"{n}_axes_direction"].data, lazy),
        )
        for n in sorted(names, key=lambda n: index_of[n])
    ]


def _svds_from(module, kind: str, regions: list[Region], lazy: bool, suffix: str) -> list[SVDComponents]:
    out = []
    for region in regions:
        series = module.data_interfaces.get(f"{_SVD_PREFIX[kind]}{region.name}{suffix}")
        if isinstance(series, FacemapSVDSeries) and series.svd_type == kind:
            out.append(
                SVDComponents(
                    svd_type=kind,
                    region=int(series.region.data[0]),
                    projections=_read(series.data, lazy),
                    singular_values=series.singular_values[()],
                    masks=_read(series.masks, lazy),
                    singular_values_source=str(series.singular_values__source),
                )
            )
    return sorted(out, key=lambda s: s.region)


def _task_series(module, regions: list[Region], suffix: str):
    """The task's own time series, found by their exact names (nested ones included)."""
    names = [f"{n}{suffix}" for n in ("MotionEnergy", "PupilTracking", "EyeTracking", "Blink", "Running")]
    names += [f"{prefix}{r.name}{suffix}" for prefix in _SVD_PREFIX.values() for r in regions]
    for name in names:
        interface = module.data_interfaces.get(name)
        if interface is None:
            continue
        series = [interface] if isinstance(interface, TimeSeries) else []
        for attribute in ("time_series", "spatial_series"):
            series += list(getattr(interface, attribute, {}).values())
        yield from series


def _frames_and_rate(module, regions: list[Region], suffix: str) -> tuple[int, float | None]:
    """Frames of the task's signals and their rate (None when they have timestamps)."""
    for series in _task_series(module, regions, suffix):
        if series.num_samples is not None:
            return int(series.num_samples), (float(series.rate) if series.rate is not None else None)
    return 0, None


def facemap_task_ids(nwbfile: NWBFile, *, module_name: str = "behavior") -> list[str]:
    """The ids of the Facemap tasks an open NWB file holds (in the file's order)."""
    if module_name not in nwbfile.processing:
        return []
    return list(_tasks(nwbfile.processing[module_name]))


def results_from_nwbfile(
    nwbfile: NWBFile, *, task_id: str | None = None, module_name: str = "behavior", lazy: bool = False
) -> FacemapResults:
    """The results model of one task from an open NWB file (large arrays stay on disk when ``lazy``).

    ``task_id`` picks the task; it may be left out when the file holds exactly one.
    """
    tasks = _tasks(nwbfile.processing[module_name]) if module_name in nwbfile.processing else {}
    if not tasks:
        raise ValueError(f"The NWB file holds no Facemap task in processing['{module_name}'].")
    if task_id is None and len(tasks) > 1:
        raise ValueError(
            f"The NWB file holds Facemap tasks {list(tasks)}: choose one with task_id (--task-id in the CLI)."
        )
    if task_id is not None and str(task_id) not in tasks:
        raise ValueError(f"The NWB file holds no Facemap task {str(task_id)!r}; it holds {list(tasks)}.")
    task = tasks[str(task_id)] if task_id is not None else next(iter(tasks.values()))
    suffix = task.name[len(TASK_NAME) :]
    module = nwbfile.processing[module_name]
    regions = _regions_from_table(task.regions)
    index_of = {r.name: i for i, r in enumerate(regions)}
    summary_name = f"{SUMMARY_NAME}{suffix}"
    summary = module[summary_name].images if summary_name in module.data_interfaces else {}
    run = task.run
    frame_count, frame_rate = _frames_and_rate(module, regions, suffix)
    motion_energy = _traces(module, f"MotionEnergy{suffix}", index_of, lazy)
    return FacemapResults(
        parameters=FacemapParameters.from_json(task.parameters),
        frame_count=frame_count,
        frame_rate=frame_rate,
        view_shapes=[],
        regions=regions,
        motion_energy=motion_energy,
        motion_svd=_svds_from(module, "motion", regions, lazy, suffix),
        movie_svd=_svds_from(module, "movie", regions, lazy, suffix),
        average_frame=summary["average_frame"].data[()] if "average_frame" in summary else None,
        average_motion=summary["average_motion"].data[()] if "average_motion" in summary else None,
        pupils=_pupils_from(module, index_of, lazy, suffix),
        blinks=_traces(module, f"Blink{suffix}", index_of, lazy),
        running=_traces(module, f"Running{suffix}", index_of, lazy),
        engine=run.engine if run else "",
        engine_version=(run.engine_version or "") if run else "",
        processing_time=datetime.fromisoformat(run.processing_time) if run and run.processing_time else None,
        source_file=run.source_file if run else None,
    )
