"""ndx-facemap on its own (the environment may hold nothing but pynwb and this package): unit tests of the
classes and mocks, round trips, and the back-compat read of a small file facemap-nwb wrote."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from pynwb import NWBHDF5IO
from pynwb.testing.mock.file import mock_NWBFile

import ndx_facemap
from ndx_facemap.testing import mock_FacemapRegions, mock_FacemapRun, mock_FacemapSVDSeries, mock_FacemapTask

DATA = Path(__file__).resolve().parent / "data"


def test_namespace_ships_inside_the_package():
    assert ndx_facemap.SPEC_PATH.is_file()
    assert ndx_facemap.SPEC_PATH.parent.parent == Path(ndx_facemap.__file__).resolve().parent


def test_classes_are_named_and_typed():
    for cls in (ndx_facemap.FacemapTask, ndx_facemap.FacemapRun, ndx_facemap.FacemapRegions,
                ndx_facemap.FacemapSVDSeries):  # fmt: skip
        assert cls.__name__.startswith("Facemap") and cls.namespace == "ndx-facemap"


def test_mocks_build_valid_objects():
    task = mock_FacemapTask()
    assert task.run.engine == "facemap_nwb.native" and len(task.regions) == 2
    svd = mock_FacemapSVDSeries(task=task, region=1, n_frames=7, n_components=2)
    assert svd.data.shape == (7, 2) and svd.masks.shape == (2, 12, 14)
    np.testing.assert_allclose(np.linalg.norm(svd.masks.reshape(2, -1), axis=1), 1, rtol=1e-6)
    assert mock_FacemapRun(engine="facemap").engine == "facemap"
    assert list(mock_FacemapRegions()["roi_name"][:]) == ["full_frame", "whiskers"]


def test_task_without_required_fields_is_refused():
    with pytest.raises(TypeError, match="missing argument 'task_id'"):
        ndx_facemap.FacemapTask(name="FacemapTask", task_mode="load")


def test_round_trip_hdf5(tmp_path):
    nwbfile = mock_NWBFile()
    task = mock_FacemapTask(nwbfile=nwbfile, task_id="face")
    svd = mock_FacemapSVDSeries(nwbfile=nwbfile, task=task, region=0, n_frames=5, n_components=3)
    path = tmp_path / "mock.nwb"
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    with NWBHDF5IO(str(path), "r") as io:
        back = io.read().processing["behavior"]
        read_task, read_svd = back["FacemapTask"], back["MotionSVD_full_frame"]
        assert isinstance(read_task, ndx_facemap.FacemapTask) and isinstance(read_svd, ndx_facemap.FacemapSVDSeries)
        for field in ("task_id", "task_mode", "spatial_bin", "n_components", "motion_svd", "parameters"):
            assert getattr(read_task, field) == getattr(task, field), field
        assert read_task.run.engine == task.run.engine and read_task.run.processing_time == task.run.processing_time
        assert_array_equal(read_task.regions["x_bin_stop"][:], task.regions["x_bin_stop"][:])
        assert_array_equal(read_svd.data[:], svd.data)
        assert_array_equal(read_svd.masks[:], svd.masks)
        assert_array_equal(read_svd.singular_values[:], svd.singular_values)
        assert read_svd.region.table is read_task.regions and list(read_svd.region.data[:]) == [0]


def test_a_file_facemap_nwb_wrote_reads_with_only_pynwb_and_ndx_facemap():
    """The back-compat file (written by facemap-nwb 0.1, tests/make_test_file.py): from its task to its run,
    regions and the SVD series that point at its regions table, with ndx_facemap classes."""
    with NWBHDF5IO(str(DATA / "facemap_nwb_0.1.0.nwb"), "r") as io:
        behavior = io.read().processing["behavior"]
        (task,) = [o for o in behavior.data_interfaces.values() if isinstance(o, ndx_facemap.FacemapTask)]
        assert (task.task_id, task.task_mode, task.spatial_bin, task.n_components) == ("face", "load", 2, 5)
        assert task.run.engine == "facemap_nwb.native"
        names = list(task.regions["roi_name"][:])
        assert names == ["full_frame", "whiskers", "pupil", "eyelid", "wheel"]
        svds = [o for o in behavior.data_interfaces.values()
                if isinstance(o, ndx_facemap.FacemapSVDSeries) and o.region.table is task.regions]  # fmt: skip
        assert sorted((s.svd_type, names[s.region.data[0]]) for s in svds) == [
            ("motion", "full_frame"), ("motion", "whiskers"), ("movie", "full_frame"), ("movie", "whiskers")
        ]  # fmt: skip
        for svd in svds:
            assert svd.data.shape == (40, 5) and svd.masks.shape[0] == 5


PRINT_TASK = """
import ndx_facemap
from pynwb import NWBHDF5IO
with NWBHDF5IO({path!r}, "r") as io:
    behavior = io.read().processing["behavior"]
    task = next(o for o in behavior.data_interfaces.values() if isinstance(o, ndx_facemap.FacemapTask))
    print(type(task).__module__, type(task).__name__)
    print(task)
"""


def test_printing_a_task_is_short_and_names_the_real_class():
    run = subprocess.run(
        [sys.executable, "-c", PRINT_TASK.format(path=str(DATA / "facemap_nwb_0.1.0.nwb"))],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = run.stdout.splitlines()
    assert lines[0].split()[1] == "FacemapTask" and "abc" not in lines[0], lines[0]
    assert len(lines) < 40, f"printing one task took {len(lines)} lines"


def test_this_environment_may_lack_facemap_nwb():
    """Where CI runs these tests with only pynwb and ndx-facemap, facemap_nwb is not importable: nothing above
    needed it."""
    if importlib.util.find_spec("av") is not None:
        pytest.skip("PyAV is installed: this is not the pynwb-only environment")
    with pytest.raises(ImportError):
        import facemap_nwb.video  # noqa: F401 - needs PyAV, absent here


def test_the_readme_example_runs(tmp_path, monkeypatch):
    """The README's Python example, on the back-compat file copied to the name it reads."""
    import re
    import shutil

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    shutil.copy(DATA / "facemap_nwb_0.1.0.nwb", tmp_path / "session.nwb")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
