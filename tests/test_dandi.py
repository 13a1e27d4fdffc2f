"""DANDI readiness: session files validated by `dandi validate` and by nwbinspector's DANDI configuration."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("dandi", reason="needs the 'dandi' extra (an environment without Facemap: numpy 2)")

from facemap_nwb.session import run_session  # noqa: E402

from .sessions import make_sessions  # noqa: E402


@pytest.mark.parametrize("backend", ["hdf5", "zarr"])
def test_dandi_validate_and_inspector_on_session_files(tmp_path, backend):
    from nwbinspector import Importance, inspect_nwbfile, load_config

    paths = [run_session(spec, backend=backend).nwb_path for spec in make_sessions(tmp_path, 2)]
    assert all(p.name.endswith(".nwb" if backend == "hdf5" else ".nwb.zarr") for p in paths)
    dandiset = paths[0].parent.parent
    (dandiset / "dandiset.yaml").write_text("identifier: 'DANDI:000000'\nname: test\ndescription: facemap-nwb test\n")
    dandi = os.path.join(os.path.dirname(sys.executable), "dandi")
    run = subprocess.run([dandi, "validate", str(dandiset)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "No errors found" in run.stdout + run.stderr, run.stdout + run.stderr
    serious = (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION, Importance.ERROR)
    for path in paths:
        if backend == "hdf5":
            messages = list(inspect_nwbfile(nwbfile_path=str(path), config=load_config("dandi")))
        else:  # nwbinspector 0.7 cannot open Zarr itself (it passes HDF5 options to ZarrIO): open it for it
            from hdmf_zarr.nwb import NWBZarrIO
            from nwbinspector import inspect_nwbfile_object

            with NWBZarrIO(str(path), mode="r") as io:
                messages = list(inspect_nwbfile_object(io.read(), config=load_config("dandi")))
        assert [m for m in messages if m.importance in serious] == [], messages
