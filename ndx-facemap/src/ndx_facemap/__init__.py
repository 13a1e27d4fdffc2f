"""ndx-facemap: the NWB extension for Facemap face-video analysis.

Importing the package loads the namespace shipped inside it (``ndx_facemap/spec/``) and exposes a class for
every type. Plain data types come from :func:`pynwb.get_class`; none needs behaviour of its own yet.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pynwb import get_class, load_namespaces

__all__ = [
    "NAMESPACE",
    "SPEC_PATH",
    "FacemapRegions",
    "FacemapRun",
    "FacemapSVDSeries",
    "FacemapTask",
    "__version__",
]

try:
    __version__ = version("ndx-facemap")
except PackageNotFoundError:  # pragma: no cover - running from a source tree that is not installed
    __version__ = "0+unknown"

NAMESPACE = "ndx-facemap"
SPEC_PATH = Path(__file__).resolve().parent / "spec" / f"{NAMESPACE}.namespace.yaml"

load_namespaces(str(SPEC_PATH))

FacemapRegions = get_class("FacemapRegions", NAMESPACE)
FacemapRun = get_class("FacemapRun", NAMESPACE)
FacemapTask = get_class("FacemapTask", NAMESPACE)
FacemapSVDSeries = get_class("FacemapSVDSeries", NAMESPACE)

# Classes made by get_class say they live in module 'abc'; they live here.
for _cls in (FacemapRegions, FacemapRun, FacemapTask, FacemapSVDSeries):
    _cls.__module__ = __name__
