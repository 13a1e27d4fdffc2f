"""Load the ndx-facemap namespace (shipped in the wheel, or from the repository's ``schemas/`` in an
editable install) and expose its classes."""

from __future__ import annotations

from pathlib import Path

from pynwb import get_class, load_namespaces

__all__ = ["NAMESPACE", "SPEC_PATH", "FacemapRegions", "FacemapRun", "FacemapTask", "FacemapSVDSeries"]

NAMESPACE = "ndx-facemap"
_FILE = f"{NAMESPACE}.namespace.yaml"


def _spec_path() -> Path:
    installed = Path(__file__).resolve().parents[1] / "schemas" / _FILE
    if installed.exists():
        return installed
    return Path(__file__).resolve().parents[2] / "schemas" / _FILE  # editable install: the repository folder


SPEC_PATH = _spec_path()
load_namespaces(str(SPEC_PATH))

FacemapRegions = get_class("FacemapRegions", NAMESPACE)
FacemapRun = get_class("FacemapRun", NAMESPACE)
FacemapTask = get_class("FacemapTask", NAMESPACE)
FacemapSVDSeries = get_class("FacemapSVDSeries", NAMESPACE)
