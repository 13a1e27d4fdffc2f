"""The ndx-facemap extension, from its own distribution (``pip install ./ndx-facemap``; it needs only pynwb).

Importing :mod:`ndx_facemap` loads the namespace shipped inside it and makes its classes."""

from __future__ import annotations

try:
    import ndx_facemap
except ImportError as err:  # pragma: no cover - a dependency of facemap-nwb
    raise ImportError(
        "facemap-nwb needs the ndx-facemap extension: pip install ./ndx-facemap (from the facemap-nwb repository)."
    ) from err

from ndx_facemap import (
    NAMESPACE,
    SPEC_PATH,
    FacemapRegions,
    FacemapRun,
    FacemapSpatialSeries,
    FacemapSVDSeries,
    FacemapTask,
    FacemapTimeSeries,
    FacemapView,
)

__all__ = [
    "NAMESPACE",
    "SPEC_PATH",
    "FacemapRegions",
    "FacemapRun",
    "FacemapSpatialSeries",
    "FacemapSVDSeries",
    "FacemapTask",
    "FacemapTimeSeries",
    "FacemapView",
    "ndx_facemap",
]
