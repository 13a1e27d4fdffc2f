"""DANDI readiness: every file of the six-session acceptance batch, HDF5 and Zarr, validated by
`dandi validate` and by nwbinspector's DANDI configuration."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("dandi", reason="needs the 'dandi' extra (an environment without Facemap: numpy 2)")
pytest.importorskip("dask.distributed", reason="batch runs need Dask (the 'batch' extra)")

from facemap_nwb.batch import run_batch  # noqa: E402

from .sessions import batch_kinds, make_sessions, nwb_files  # noqa: E402


def _inspect(path, backend: str) -> list:
    from nwbinspector import inspect_nwbfile, load_config

    if backend == "hdf5":
        return list(inspect_nwbfile(nwbfile_path=str(path), config=load_config("dandi")))
    # nwbinspector 0.7 cannot open Zarr itself (it passes HDF5 options to ZarrIO): open it for it
    from hdmf_zarr.nwb import NWBZarrIO
    from nwbinspector import inspect_nwbfile_object

    with NWBZarrIO(str(path), mode="r") as io:
        return list(inspect_nwbfile_object(io.read(), config=load_config("dandi")))


@pytest.mark.parametrize("backend", ["hdf5", "zarr"])
def test_dandi_validate_and_inspector_on_every_file_of_the_batch(tmp_path, backend):
    from nwbinspector import Importance

    specs = make_sessions(tmp_path, 6, kinds=batch_kinds())
    rows = run_batch(specs, workers=2, backend=backend)
    assert [r.status for r in rows] == ["done"] * 6, [r.error for r in rows]
    suffix = ".nwb" if backend == "hdf5" else ".nwb.zarr"
    paths = nwb_files(tmp_path, suffix)
    assert sorted(map(str, paths)) == sorted(r.nwb_path for r in rows) and len(paths) == 6
    dandiset = paths[0].parent.parent
    assert all(p.parent.parent == dandiset for p in paths)
    (dandiset / "dandiset.yaml").write_text("identifier: 'DANDI:000000'\nname: test\ndescription: facemap-nwb test\n")
    dandi = os.path.join(os.path.dirname(sys.executable), "dandi")
    run = subprocess.run([dandi, "validate", str(dandiset)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0 and "No errors found" in run.stdout + run.stderr, run.stdout + run.stderr
    # Every video is inside the Dandiset, beside its NWB file, so that an upload carries it.
    from dandi.files import find_dandi_files

    videos = [Path(f.filepath) for f in find_dandi_files(dandiset) if Path(f.filepath).suffix == ".mp4"]
    folders = sorted(v.relative_to(dandiset).parent.as_posix() for v in videos)  # one video per session
    assert folders == sorted(p.relative_to(dandiset).as_posix().split(".nwb")[0] for p in paths), folders
    # The session with a pose file (batch_kinds' "pose") holds its keypoints as ndx-pose, linked to its video.
    from facemap_nwb.nwb.io import read_facemap_pose_nwb

    with_pose = [p for p in paths if read_facemap_pose_nwb(p)]
    assert len(with_pose) == 1 and read_facemap_pose_nwb(with_pose[0])[0].video_name == "FaceCamera", with_pose
    serious = (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION, Importance.ERROR)
    for path in paths:
        messages = _inspect(path, backend)
        assert [m for m in messages if m.importance in serious] == [], (path.name, messages)
