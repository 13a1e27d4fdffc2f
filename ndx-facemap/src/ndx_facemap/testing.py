"""Mock factories for every ndx-facemap type: ``mock_<Type>(*, nwbfile=None, ...)``, as ndx-pose has them.

Each returns a small, valid object; with ``nwbfile`` it is also added to that file (a task goes into the
``behavior`` processing module, created when missing). Every argument can be overridden by keyword.
"""

from __future__ import annotations

import json

import numpy as np
from hdmf.common import DynamicTableRegion
from pynwb import NWBFile

from . import FacemapRegions, FacemapRun, FacemapSVDSeries, FacemapTask

__all__ = ["mock_FacemapRun", "mock_FacemapRegions", "mock_FacemapTask", "mock_FacemapSVDSeries"]


def _behavior(nwbfile: NWBFile):
    if "behavior" not in nwbfile.processing:
        nwbfile.create_processing_module(name="behavior", description="Behavioral signals extracted from face videos.")
    return nwbfile.processing["behavior"]


def mock_FacemapRun(*, name: str = "run", engine: str = "facemap_nwb.native", **kwargs) -> FacemapRun:
    """A run of the native engine at a fixed time."""
    values = dict(engine_version="0.1.0", processing_time="2024-05-06T12:30:00+00:00")
    return FacemapRun(name=name, engine=engine, **{**values, **kwargs})


def mock_FacemapRegions(*, name: str = "regions", rows: list[dict] | None = None, **kwargs) -> FacemapRegions:
    """The full frame of a 120 x 160 view (spatial bin 4) and one motion ROI."""
    table = FacemapRegions(name=name, description=kwargs.pop("description", "Mock regions."), **kwargs)
    nan = float("nan")
    rows = rows or [
        dict(roi_number=-1, roi_name="full_frame", roi_type="full_frame", camera_view=0, y_start=0, y_stop=120,
             x_start=0, x_stop=160, y_bin_start=0, y_bin_stop=30, x_bin_start=0, x_bin_stop=40, saturation=nan,
             pupil_sigma=nan),
        dict(roi_number=0, roi_name="whiskers", roi_type="motion", camera_view=0, y_start=36, y_stop=88,
             x_start=100, x_stop=156, y_bin_start=9, y_bin_stop=21, x_bin_start=25, x_bin_stop=39, saturation=nan,
             pupil_sigma=nan),
    ]  # fmt: skip
    for row in rows:
        table.add_row(**row)
    return table


def mock_FacemapTask(
    *, nwbfile: NWBFile | None = None, name: str = "FacemapTask", task_id: str = "0", **kwargs
) -> FacemapTask:
    """A trigger-mode task (spatial bin 4, motion SVD) with a mock run and regions."""
    values = dict(
        task_mode="trigger",
        description="Mock Facemap task.",
        motion_svd=True,
        movie_svd=False,
        multivideo_svd=True,
        spatial_bin=4,
        n_components=3,
        parameters=json.dumps({"spatial_bin": 4, "n_components": 3, "rois": []}),
    )
    values.update(kwargs)
    values.setdefault("regions", mock_FacemapRegions())
    values.setdefault("run", mock_FacemapRun())
    task = FacemapTask(name=name, task_id=task_id, **values)
    if nwbfile is not None:
        _behavior(nwbfile).add(task)
    return task


def mock_FacemapSVDSeries(
    *,
    nwbfile: NWBFile | None = None,
    name: str = "MotionSVD_full_frame",
    task: FacemapTask | None = None,
    region: int = 0,
    n_frames: int = 10,
    n_components: int = 3,
    **kwargs,
) -> FacemapSVDSeries:
    """The motion SVD of one region of ``task`` (a new mock task when None): random projections, unit masks
    over the region's binned pixels, singular values largest first."""
    if task is None:
        task = mock_FacemapTask(nwbfile=nwbfile)
    table = task.regions
    height = int(table["y_bin_stop"][region] - table["y_bin_start"][region])
    width = int(table["x_bin_stop"][region] - table["x_bin_start"][region])
    rng = np.random.default_rng(0)
    masks = rng.standard_normal((n_components, height, width)).astype(np.float32)
    masks /= np.linalg.norm(masks.reshape(n_components, -1), axis=1)[:, None, None]
    values = dict(
        description="Mock motion SVD.",
        data=rng.standard_normal((n_frames, n_components)).astype(np.float32),
        unit="a.u.",
        rate=30.0,
        svd_type="motion",
        singular_values=np.sort(rng.uniform(1, 10, n_components)).astype(np.float32)[::-1].copy(),
        singular_values__source="computed",
        masks=masks,
        region=DynamicTableRegion(name="region", data=[region], description="The SVD's region.", table=table),
    )
    values.update(kwargs)
    series = FacemapSVDSeries(name=name, **values)
    if nwbfile is not None:
        _behavior(nwbfile).add(series)
    return series
