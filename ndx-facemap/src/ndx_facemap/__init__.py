"""ndx-facemap: the NWB extension for Facemap face-video analysis.

Importing the package loads the namespace shipped inside it (``ndx_facemap/spec/``) and exposes a class for
every type. The classes come from :func:`pynwb.get_class`; ``FacemapTask`` adds two read-only conveniences,
``series`` (every signal series of the task by name) and ``views`` (its camera views in order).

From a task to everything it made (plain pynwb, no naming rule)::

    task.run                      # FacemapRun: engine, engine_version, processing_time, source_file
    task.regions                  # FacemapRegions: one row per region (full frame and ROIs)
    task.views                    # FacemapView per camera: view_index, height, width, link to its video
    task.summary_images           # Images: average_frame, average_motion
    task.facemap_time_series      # motion energy, pupil area/axes, blink, running (FacemapTimeSeries)
    task.facemap_spatial_series   # pupil centres in frame pixels (FacemapSpatialSeries)
    task.facemap_svd_series       # motion and movie SVDs (FacemapSVDSeries)
    series.region                 # every series links its row of task.regions
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pynwb import get_class, get_type_map, load_namespaces

__all__ = [
    "FORMAT_VERSION",
    "NAMESPACE",
    "SPEC_PATH",
    "FacemapRegions",
    "FacemapRun",
    "FacemapSVDSeries",
    "FacemapSpatialSeries",
    "FacemapTask",
    "FacemapTimeSeries",
    "FacemapView",
    "__version__",
]

try:
    __version__ = version("ndx-facemap")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
    __version__ = "0+unknown"

NAMESPACE = "ndx-facemap"
SPEC_PATH = Path(__file__).resolve().parent / "spec" / f"{NAMESPACE}.namespace.yaml"

load_namespaces(str(SPEC_PATH))

#: The version of the ndx-facemap format (the namespace's version, which files cache), e.g. "1.0.0".
FORMAT_VERSION = str(get_type_map().namespace_catalog.get_namespace(NAMESPACE)["version"])

FacemapRegions = get_class("FacemapRegions", NAMESPACE)
FacemapView = get_class("FacemapView", NAMESPACE)
FacemapRun = get_class("FacemapRun", NAMESPACE)
FacemapTimeSeries = get_class("FacemapTimeSeries", NAMESPACE)
FacemapSpatialSeries = get_class("FacemapSpatialSeries", NAMESPACE)
FacemapSVDSeries = get_class("FacemapSVDSeries", NAMESPACE)
FacemapTask = get_class("FacemapTask", NAMESPACE)

# Classes made by get_class say they live in module 'abc'; they live here.
for _cls in (FacemapRegions, FacemapView, FacemapRun, FacemapTimeSeries, FacemapSpatialSeries, FacemapSVDSeries,
             FacemapTask):  # fmt: skip
    _cls.__module__ = __name__


def _all_series(self) -> dict:
    """Every signal series of the task by name: its ``facemap_time_series``, ``facemap_spatial_series`` and
    ``facemap_svd_series`` together (each series' ``signal`` or ``svd_type`` says what it holds, its ``region``
    which row of ``regions`` it belongs to)."""
    return {**self.facemap_time_series, **self.facemap_spatial_series, **self.facemap_svd_series}


def _views(self) -> list:
    """The task's camera views in ``view_index`` order (each links its ``video``)."""
    return sorted(self.facemap_views.values(), key=lambda view: int(view.view_index))


def _names(values, width: int = 100) -> str:
    text = ", ".join(values) or "none"
    return text if len(text) <= width else text[: width - 3] + "..."


def _task_text(self) -> str:
    """A short summary of the task (one line per part) instead of hdmf's full listing of every field."""
    flags = [f for f in ("motion_svd", "movie_svd", "multivideo_svd") if getattr(self, f)]
    lines = [
        f"{self.name} {type(self).__module__}.{type(self).__name__}: task {self.task_id!r} ({self.task_mode} mode)",
        f"  spatial_bin {self.spatial_bin}, n_components {self.n_components}, {', '.join(flags) or 'no SVD'}",
    ]
    if self.run is not None:
        version = f" {self.run.engine_version}" if self.run.engine_version else ""
        when = f", made {self.run.processing_time}" if self.run.processing_time is not None else ""
        lines.append(f"  run: {self.run.engine}{version}{when}")
    for view in self.views:
        video = f", video {view.video.name!r}" if view.video is not None else ""
        lines.append(f"  {view.name}: {view.height} x {view.width} pixels{video}")
    lines.append(f"  regions: {_names([str(n) for n in self.regions['roi_name'][:]])}")
    if self.summary_images is not None:
        lines.append(f"  summary_images: {_names(self.summary_images.images)}")
    for field in ("facemap_time_series", "facemap_spatial_series", "facemap_svd_series"):
        found = getattr(self, field)
        lines.append(f"  {field} ({len(found)}): {_names(sorted(found))}")
    parameters = self.parameters if len(self.parameters) <= 100 else self.parameters[:97] + "..."
    lines.append(f"  parameters: {parameters}")
    return "\n".join(lines)


def _series_item(self, name: str):
    """``task[name]``: one of the task's signal series by name."""
    return self.series[name]


FacemapTask.series = property(_all_series)
FacemapTask.__getitem__ = _series_item
FacemapTask.views = property(_views)
FacemapTask.__str__ = _task_text
FacemapTask.__repr__ = _task_text
