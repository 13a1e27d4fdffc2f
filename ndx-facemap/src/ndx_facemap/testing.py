"""Mock factories for every ndx-facemap type: ``mock_<Type>(*, nwbfile=None, ...)``, as ndx-pose has them.

Each returns a small, valid object built from fixed values (so a test knows what it holds); every argument can
be overridden by keyword. How ``nwbfile`` is used follows the format's layout, where a ``FacemapTask`` in
``processing["behavior"]`` contains everything else:

* ``mock_FacemapTask(nwbfile=...)`` adds the task to the file's ``behavior`` processing module (created when
  missing) and puts the mock video of each view in ``nwbfile.acquisition``, linked from the view;
* a signal series (``mock_FacemapTimeSeries``, ``mock_FacemapSpatialSeries``, ``mock_FacemapSVDSeries``) takes
  ``task=None``: it adds itself to that task, or to a new mock task (in ``nwbfile`` when given), and links its
  row of the task's regions;
* a part that only lives inside a task (``mock_FacemapRun``, ``mock_FacemapRegions``, ``mock_FacemapView``)
  goes, with ``nwbfile``, into a new mock task added to that file (a view may instead be given a ``task``).

The mock task processes one 120 x 160 camera view with spatial bin 4: its regions are the full frame, a motion
ROI ``whiskers`` and a pupil ROI ``pupil`` whose ellipse mask is the ellipse inscribed in its rectangle.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
from hdmf.common import DynamicTableRegion
from pynwb import NWBFile
from pynwb.base import Images
from pynwb.image import GrayscaleImage, ImageSeries

from . import (
    FacemapRegions,
    FacemapRun,
    FacemapSpatialSeries,
    FacemapSVDSeries,
    FacemapTask,
    FacemapTimeSeries,
    FacemapView,
)

__all__ = [
    "FRAME_ALIGNMENT",
    "MOCK_REGIONS",
    "inscribed_ellipse",
    "mock_FacemapRegions",
    "mock_FacemapRun",
    "mock_FacemapSVDSeries",
    "mock_FacemapSpatialSeries",
    "mock_FacemapTask",
    "mock_FacemapTimeSeries",
    "mock_FacemapView",
    "mock_video",
]

NAN = float("nan")
HEIGHT, WIDTH, SPATIAL_BIN = 120, 160, 4
#: The ``frame_alignment`` text of the mocks' motion energy and motion SVDs.
FRAME_ALIGNMENT = "Value t is the difference between frames t and t-1; value 0 is 0."

#: The rows of the mock regions table (a pupil ROI has no bins: Facemap makes no SVD of it).
MOCK_REGIONS = (
    dict(roi_number=-1, roi_name="full_frame", roi_type="full_frame", camera_view=0, y_start=0, y_stop=HEIGHT,
         x_start=0, x_stop=WIDTH, y_bin_start=0, y_bin_stop=HEIGHT // SPATIAL_BIN, x_bin_start=0,
         x_bin_stop=WIDTH // SPATIAL_BIN, saturation=NAN, pupil_sigma=NAN),
    dict(roi_number=0, roi_name="whiskers", roi_type="motion", camera_view=0, y_start=36, y_stop=88, x_start=100,
         x_stop=156, y_bin_start=9, y_bin_stop=21, x_bin_start=25, x_bin_stop=39, saturation=NAN, pupil_sigma=NAN),
    dict(roi_number=1, roi_name="pupil", roi_type="pupil", camera_view=0, y_start=20, y_stop=32, x_start=30,
         x_stop=46, y_bin_start=-1, y_bin_stop=-1, x_bin_start=-1, x_bin_stop=-1, saturation=100.0,
         pupil_sigma=2.0),
)  # fmt: skip

# 'signal' of a FacemapTimeSeries -> (series name prefix, unit, shape of one sample, dtype)
_TIME_SERIES = {
    "motion_energy": ("MotionEnergy", "a.u.", (), np.float32),
    "pupil_area": ("PupilArea", "pixels^2", (), np.float64),
    "pupil_area_smooth": ("PupilAreaSmooth", "pixels^2", (), np.float64),
    "pupil_axes_length": ("PupilAxesLength", "pixels", (2,), np.float64),
    "pupil_axes_direction": ("PupilAxesDirection", "n.a.", (2, 2), np.float64),
    "blink": ("Blink", "a.u.", (), np.float64),
    "running": ("Running", "pixels", (2,), np.float64),
}
_CENTERS = {"pupil_center": "PupilCenter", "pupil_center_smooth": "PupilCenterSmooth"}
_SVDS = {"motion": "MotionSVD", "movie": "MovieSVD"}


def inscribed_ellipse(height: int, width: int) -> np.ndarray:
    """The (height, width) bool mask of the ellipse inscribed in a rectangle: true at pixels whose centre lies
    inside it."""
    y = (np.arange(height) + 0.5 - height / 2) / (height / 2)
    x = (np.arange(width) + 0.5 - width / 2) / (width / 2)
    return y[:, None] ** 2 + x[None, :] ** 2 <= 1.0


def _behavior(nwbfile: NWBFile):
    if "behavior" not in nwbfile.processing:
        nwbfile.create_processing_module(name="behavior", description="Behavioral signals extracted from face videos.")
    return nwbfile.processing["behavior"]


def _in_file(task: FacemapTask, nwbfile: NWBFile | None) -> None:
    """Put a task that belongs to no file yet into ``nwbfile``'s behaviour module."""
    if nwbfile is not None and task.parent is None:
        _behavior(nwbfile).add(task)


def _task_for(task: FacemapTask | None, nwbfile: NWBFile | None) -> FacemapTask:
    if task is None:
        return mock_FacemapTask(nwbfile=nwbfile)
    _in_file(task, nwbfile)
    return task


def _row(task: FacemapTask, region: int | str) -> int:
    """The row of the task's regions a region index or name stands for."""
    if isinstance(region, str):
        names = [str(n) for n in task.regions["roi_name"][:]]
        if region not in names:
            raise ValueError(f"The task has no region {region!r}; it has {names}.")
        return names.index(region)
    if not 0 <= region < len(task.regions):
        raise ValueError(f"The task's regions have {len(task.regions)} rows, not a row {region}.")
    return int(region)


def _region_link(task: FacemapTask, row: int) -> DynamicTableRegion:
    return DynamicTableRegion(name="region", data=[row], description="The series' row of the task's regions.",
                              table=task.regions)  # fmt: skip


def _timing(rate, starting_time, timestamps) -> dict:
    if timestamps is not None:
        return {"timestamps": timestamps}
    return {"rate": float(rate), "starting_time": float(starting_time)}


def mock_video(
    *, nwbfile: NWBFile | None = None, name: str = "FaceCamera", n_frames: int = 10, height: int = HEIGHT,
    width: int = WIDTH, rate: float = 30.0,
) -> ImageSeries:  # fmt: skip
    """An external video (``ImageSeries`` referring to ``<name>.mp4``); with ``nwbfile`` it is added to the file's
    acquisition."""
    video = ImageSeries(
        name=name,
        description=f"Mock video of camera {name!r}.",
        unit="n.a.",
        format="external",
        external_file=[f"{name}.mp4"],
        starting_frame=[0],
        dimension=[width, height],
        rate=float(rate),
        num_samples=n_frames,
    )
    if nwbfile is not None:
        nwbfile.add_acquisition(video)
    return video


def mock_FacemapRun(
    *,
    nwbfile: NWBFile | None = None,
    name: str = "run",
    engine: str = "facemap_nwb.native",
    engine_version: str | None = "1.0.0",
    processing_time: datetime | None = datetime(2024, 5, 6, 12, 30, tzinfo=timezone.utc),
    source_file: str | None = "face_proc.npy",
) -> FacemapRun:
    """A run of the native engine at a fixed time. ``None`` leaves an optional attribute out (as a file where the
    engine's version is unknown). With ``nwbfile`` it goes into a new mock task in that file."""
    values = dict(engine_version=engine_version, processing_time=processing_time, source_file=source_file)
    run = FacemapRun(name=name, engine=engine, **{k: v for k, v in values.items() if v is not None})
    if nwbfile is not None:
        mock_FacemapTask(nwbfile=nwbfile, run=run)
    return run


def mock_FacemapRegions(
    *,
    nwbfile: NWBFile | None = None,
    name: str = "regions",
    description: str = "Mock regions: the full frame, a motion ROI and a pupil ROI.",
    rows: list[dict] | None = None,
    ellipses: list | None = None,
) -> FacemapRegions:
    """The regions table: :data:`MOCK_REGIONS` by default, whose pupil row has its inscribed ellipse as mask.

    ``rows`` replaces the rows (dicts of every column); ``ellipses`` gives one mask per row (a bool array over the
    row's rectangle, or None for none) and adds the ragged ``ellipse`` column; rows given without ``ellipses``
    make a table without it. With ``nwbfile`` the table goes into a new mock task in that file.
    """
    if rows is None:
        rows = [dict(row) for row in MOCK_REGIONS]
        if ellipses is None:
            ellipses = [
                inscribed_ellipse(r["y_stop"] - r["y_start"], r["x_stop"] - r["x_start"])
                if r["roi_type"] == "pupil" else None
                for r in rows
            ]  # fmt: skip
    table = FacemapRegions(name=name, description=description)
    for row in rows:
        table.add_row(**row)
    if ellipses is not None:
        if len(ellipses) != len(rows):
            raise ValueError(f"Give one ellipse (or None) per row: {len(rows)} rows, {len(ellipses)} ellipses.")
        table.add_column(
            name="ellipse",
            description="Ellipse mask of a pupil or blink ROI, row-major over its (y_stop - y_start, x_stop - "
            "x_start) rectangle: true where a pixel is used; empty for other regions.",
            data=[[] if mask is None else np.asarray(mask, dtype=bool).ravel().tolist() for mask in ellipses],
            index=True,
        )
    if nwbfile is not None:
        mock_FacemapTask(nwbfile=nwbfile, regions=table)
    return table


def mock_FacemapView(
    *,
    nwbfile: NWBFile | None = None,
    task: FacemapTask | None = None,
    name: str | None = None,
    view_index: int = 0,
    height: int = HEIGHT,
    width: int = WIDTH,
    video: ImageSeries | None = None,
) -> FacemapView:
    """One camera view (named ``view<view_index>``). It is added to ``task`` when given, else with ``nwbfile`` to
    a new mock task (without other views) in that file; ``video`` is the ImageSeries it links (none by
    default)."""
    view = FacemapView(
        name=name or f"view{view_index}",
        view_index=np.int32(view_index),
        height=np.int32(height),
        width=np.int32(width),
        **({"video": video} if video is not None else {}),
    )
    if task is not None:
        task.add_facemap_views(view)
        _in_file(task, nwbfile)
    elif nwbfile is not None:
        mock_FacemapTask(nwbfile=nwbfile, views=[view])
    return view


def _summary_images() -> Images:
    shape = (HEIGHT // SPATIAL_BIN, WIDTH // SPATIAL_BIN)
    frame = np.linspace(0, 255, shape[0] * shape[1], dtype=np.float32).reshape(shape)
    return Images(
        name="summary_images",
        description="Mock summary frames.",
        images=[
            GrayscaleImage(name="average_frame", data=frame, description="Mock average frame."),
            GrayscaleImage(name="average_motion", data=frame / 10, description="Mock average motion."),
        ],
    )


def mock_FacemapTask(
    *,
    nwbfile: NWBFile | None = None,
    name: str = "FacemapTask",
    task_id: str = "0",
    task_mode: str = "trigger",
    description: str = "Mock Facemap task.",
    motion_svd: bool = True,
    movie_svd: bool = False,
    multivideo_svd: bool = False,
    spatial_bin: int = SPATIAL_BIN,
    n_components: int = 3,
    parameters: str | None = None,
    regions: FacemapRegions | None = None,
    run: FacemapRun | None = None,
    views: list[FacemapView] | None = None,
    summary_images: Images | None | bool = None,
) -> FacemapTask:
    """A trigger-mode task (spatial bin 4, motion SVD of 3 components) with a mock run, the mock regions, one
    view of 120 x 160 pixels and summary images; ``parameters`` is JSON of those settings and the ROIs by default.

    ``views=[]`` makes a task without views, ``summary_images=False`` one without summary images. With
    ``nwbfile`` the task goes into its ``behavior`` module and the default view links a mock video added to the
    file's acquisition (``FaceCamera``, or the existing one of that name).
    """
    regions = regions if regions is not None else mock_FacemapRegions()
    if parameters is None:
        rois = [
            {"type": str(t), "name": str(n), "y": int(y), "x": int(x), "height": int(y1 - y), "width": int(x1 - x)}
            for t, n, y, y1, x, x1 in zip(*(regions[c][:] for c in ("roi_type", "roi_name", "y_start", "y_stop",
                                                                  "x_start", "x_stop")), strict=True)
            if t != "full_frame"
        ]  # fmt: skip
        settings = dict(spatial_bin=spatial_bin, n_components=n_components, motion_svd=motion_svd,
                        movie_svd=movie_svd, multivideo_svd=multivideo_svd)  # fmt: skip
        parameters = json.dumps({**settings, "rois": rois}, sort_keys=True)
    if summary_images is None:
        summary_images = _summary_images()
    task = FacemapTask(
        name=name,
        task_id=task_id,
        task_mode=task_mode,
        description=description,
        motion_svd=motion_svd,
        movie_svd=movie_svd,
        multivideo_svd=multivideo_svd,
        spatial_bin=np.int32(spatial_bin),
        n_components=np.int32(n_components),
        parameters=parameters,
        regions=regions,
        run=run if run is not None else mock_FacemapRun(),
        **({"summary_images": summary_images} if summary_images is not False else {}),
    )
    if views is None:
        video = None
        if nwbfile is not None:
            video = nwbfile.acquisition.get("FaceCamera") or mock_video(nwbfile=nwbfile)
        views = [mock_FacemapView(view_index=0, video=video)]
    for view in views:
        task.add_facemap_views(view)
    _in_file(task, nwbfile)
    return task


def mock_FacemapTimeSeries(
    *,
    nwbfile: NWBFile | None = None,
    task: FacemapTask | None = None,
    signal: str = "motion_energy",
    region: int | str = 0,
    name: str | None = None,
    data=None,
    n_frames: int = 10,
    unit: str | None = None,
    description: str | None = None,
    frame_alignment: str | None = None,
    rate: float = 30.0,
    starting_time: float = 0.0,
    timestamps=None,
) -> FacemapTimeSeries:
    """A signal of one region (row index or name) of ``task`` (a new mock task when None), added to the task.

    Data by default: ``arange`` values of the signal's sample shape and dtype (float32 motion energy, float64
    pupil, blink and running: (2,) for axes lengths and running, (2, 2) for axes directions). Motion energy
    states :data:`FRAME_ALIGNMENT` unless ``frame_alignment`` is given. ``timestamps`` (an array or another
    series, linked) replace ``rate`` and ``starting_time``. The name is ``<Prefix>_<region name>``.
    """
    if signal not in _TIME_SERIES:
        raise ValueError(f"Unknown signal {signal!r}; choose from {sorted(_TIME_SERIES)}.")
    task = _task_for(task, nwbfile)
    row = _row(task, region)
    prefix, default_unit, sample, dtype = _TIME_SERIES[signal]
    if data is None:
        size = n_frames * int(np.prod(sample, dtype=int))
        data = np.arange(size, dtype=dtype).reshape((n_frames, *sample)) / 4
    if frame_alignment is None and signal == "motion_energy":
        frame_alignment = FRAME_ALIGNMENT
    region_name = str(task.regions["roi_name"][row])
    series = FacemapTimeSeries(
        name=name or f"{prefix}_{region_name}",
        description=description or f"Mock {signal} of region {region_name!r}.",
        data=data,
        unit=unit or default_unit,
        signal=signal,
        region=_region_link(task, row),
        **({"frame_alignment": frame_alignment} if frame_alignment is not None else {}),
        **_timing(rate, starting_time, timestamps),
    )
    task.add_facemap_time_series(series)
    return series


def mock_FacemapSpatialSeries(
    *,
    nwbfile: NWBFile | None = None,
    task: FacemapTask | None = None,
    signal: str = "pupil_center",
    region: int | str = "pupil",
    name: str | None = None,
    relative=None,
    n_frames: int = 10,
    keep_relative: bool = False,
    description: str | None = None,
    rate: float = 30.0,
    starting_time: float = 0.0,
    timestamps=None,
) -> FacemapSpatialSeries:
    """A pupil centre of one region of ``task`` (a new mock task when None), added to the task.

    ``relative`` are Facemap's (y, x) values relative to the ROI's top-left pixel (by default a path around the
    middle of the ROI, float64); the series holds ``relative + roi_origin`` with ``roi_origin`` the region's
    (y_start, x_start), and keeps ``relative`` as ``roi_relative`` too when ``keep_relative``.
    """
    if signal not in _CENTERS:
        raise ValueError(f"Unknown signal {signal!r}; choose from {sorted(_CENTERS)}.")
    task = _task_for(task, nwbfile)
    row = _row(task, region)
    table = task.regions
    origin = np.array([table["y_start"][row], table["x_start"][row]], dtype=np.int32)
    if relative is None:
        size = np.array([table["y_stop"][row], table["x_stop"][row]]) - origin
        phase = np.linspace(0, 2 * np.pi, n_frames)
        relative = size / 2 + np.stack([np.sin(phase), np.cos(phase)], axis=1) * (size / 4)
    relative = np.asarray(relative, dtype=np.float64)
    region_name = str(table["roi_name"][row])
    series = FacemapSpatialSeries(
        name=name or f"{_CENTERS[signal]}_{region_name}",
        description=description or f"Mock {signal} of region {region_name!r}, in pixels of the frame (y, x).",
        data=relative + origin,
        unit="pixels",
        reference_frame="(y, x) in pixels of the camera view's frame, from its top-left pixel (0, 0).",
        signal=signal,
        roi_origin=origin,
        region=_region_link(task, row),
        **({"roi_relative": relative} if keep_relative else {}),
        **_timing(rate, starting_time, timestamps),
    )
    task.add_facemap_spatial_series(series)
    return series


def mock_FacemapSVDSeries(
    *,
    nwbfile: NWBFile | None = None,
    task: FacemapTask | None = None,
    svd_type: str = "motion",
    region: int | str = 0,
    name: str | None = None,
    n_frames: int = 10,
    n_components: int = 3,
    description: str | None = None,
    frame_alignment: str | None = None,
    source_video: ImageSeries | None | bool = None,
    seed: int = 0,
    rate: float = 30.0,
    starting_time: float = 0.0,
    timestamps=None,
) -> FacemapSVDSeries:
    """The SVD of one region of ``task`` (a new mock task when None), added to the task: random float32
    projections, unit masks over the region's binned pixels (``masks__normalization='unit'``) and singular values
    largest first (``singular_values__source='computed'``). A motion SVD states :data:`FRAME_ALIGNMENT` unless
    ``frame_alignment`` is given. It links the video of its region's view when the task's view has one
    (``source_video=False``: no link). The name is ``MotionSVD_<region>`` or ``MovieSVD_<region>``.
    """
    if svd_type not in _SVDS:
        raise ValueError(f"Unknown svd_type {svd_type!r}; choose from {sorted(_SVDS)}.")
    task = _task_for(task, nwbfile)
    row = _row(task, region)
    table = task.regions
    height = int(table["y_bin_stop"][row] - table["y_bin_start"][row])
    width = int(table["x_bin_stop"][row] - table["x_bin_start"][row])
    if table["y_bin_start"][row] < 0 or height <= 0 or width <= 0:
        raise ValueError(f"Region {table['roi_name'][row]!r} has no spatial bins: Facemap makes no SVD of it.")
    rng = np.random.default_rng(seed)
    masks = rng.standard_normal((n_components, height, width)).astype(np.float32)
    masks /= np.linalg.norm(masks.reshape(n_components, -1), axis=1)[:, None, None]
    if frame_alignment is None and svd_type == "motion":
        frame_alignment = FRAME_ALIGNMENT
    if source_video is None:
        view = int(max(table["camera_view"][row], 0))
        found = [v.video for v in task.views if int(v.view_index) == view and v.video is not None]
        source_video = found[0] if found else None
    region_name = str(table["roi_name"][row])
    series = FacemapSVDSeries(
        name=name or f"{_SVDS[svd_type]}_{region_name}",
        description=description or f"Mock {svd_type} SVD of region {region_name!r}.",
        data=rng.standard_normal((n_frames, n_components)).astype(np.float32),
        unit="a.u.",
        svd_type=svd_type,
        singular_values=np.sort(rng.uniform(1, 10, n_components)).astype(np.float32)[::-1].copy(),
        singular_values__source="computed",
        masks=masks,
        masks__normalization="unit",
        region=_region_link(task, row),
        **({"frame_alignment": frame_alignment} if frame_alignment is not None else {}),
        **({"source_video": source_video} if source_video not in (None, False) else {}),
        **_timing(rate, starting_time, timestamps),
    )
    task.add_facemap_svd_series(series)
    return series
