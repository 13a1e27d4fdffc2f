"""Load mode: Facemap's own outputs into NWB and back, checked against Facemap's dict key by key.

The reference is always Facemap's ``_proc.npy`` read with numpy's own loader (these are files the tests
just made with ``facemap.process.run``), never our loader's output.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from facemap_nwb.convert import convert_facemap_output
from facemap_nwb.nwb.io import read_facemap_nwb

from .conftest import REPO, trusted_proc
from .test_recording_nwb import SESSION, SUBJECT, serious_inspector_messages

pytestmark = pytest.mark.facemap
METADATA = {"NWBFile": {**SESSION, "session_start_time": "2024-01-01T10:00:00+00:00"}, "Subject": SUBJECT}


@pytest.fixture(scope="module")
def lp_nwb(lp_facemap, tmp_path_factory):
    folder = tmp_path_factory.mktemp("lp_nwb")
    out = {}
    for kind in ("npy", "mat"):
        out[kind] = convert_facemap_output(
            lp_facemap[kind], [lp_facemap["video"]], folder / f"lp_{kind}.nwb", metadata=METADATA
        )
    return out


def _slots(params):
    """Facemap's list index of each motion region: 0 the full frame, j >= 1 the j-th motion ROI.

    Facemap records no ROI names, so loaded regions are named by type and order (motion0, motion1, ...).
    """
    count = sum(r.type == "motion" for r in params.rois)
    return dict(enumerate(["full_frame"] + [f"motion{j}" for j in range(count)]))


def assert_matches_facemap(results, proc, params):
    names = {r.name: i for i, r in enumerate(results.regions)}
    for slot, name in _slots(params).items():
        region = names[name]
        assert_array_equal(results.motion_energy[region], proc["motion"][slot], err_msg=f"motion energy of {name}")
        for kind, prefix in (("motion", "mot"), ("movie", "mov")):
            (svd,) = [s for s in results.svds(kind) if s.region == region]
            assert_array_equal(svd.projections, proc[f"{prefix}SVD"][slot], err_msg=f"{kind} projections of {name}")
            masks = np.moveaxis(proc[f"{prefix}Mask_reshape"][slot], -1, 0)
            assert_array_equal(svd.masks, masks, err_msg=f"{kind} masks of {name}")
            # One SVD segment (under 2000 frames): Facemap reports zeros and its masks carry the values.
            assert not np.any(proc[f"{prefix}Sv"])
            expected = np.linalg.norm(proc[f"{prefix}Mask"][slot].astype(np.float64), axis=0)
            assert_allclose(svd.singular_values, expected, rtol=1e-6, err_msg=f"{kind} singular values of {name}")
            assert svd.singular_values_source == "mask_norms"
    assert_array_equal(results.average_frame, proc["avgframe_reshape"])
    assert_array_equal(results.average_motion, proc["avgmotion_reshape"])
    (pupil,) = results.pupils
    for ours, key in (
        ("area", "area"),
        ("area_smooth", "area_smooth"),
        ("center", "com"),
        ("center_smooth", "com_smooth"),
        ("axes_length", "axlen"),
        ("axes_direction", "axdir"),
    ):
        assert_array_equal(getattr(pupil, ours), proc["pupil"][0][key], err_msg=f"pupil {key}")
    assert_array_equal(results.blinks[names["blink0"]], proc["blink"][0], err_msg="blink")
    assert_array_equal(results.running[names["running0"]], proc["running"][0], err_msg="running")


@pytest.mark.parametrize("kind", ["npy", "mat"])
def test_every_array_equals_facemap(lp_facemap, lp_nwb, kind):
    proc = trusted_proc(lp_facemap["npy"])
    results = read_facemap_nwb(lp_nwb[kind])
    assert results.frame_count == 994
    assert_matches_facemap(results, proc, lp_facemap["params"])


@pytest.mark.parametrize("kind", ["npy", "mat"])
def test_every_parameter_and_roi_equals_its_input(lp_facemap, lp_nwb, kind):
    results = read_facemap_nwb(lp_nwb[kind])
    given = lp_facemap["params"]
    got = results.parameters
    assert (got.spatial_bin, got.motion_svd, got.movie_svd, got.multivideo_svd) == (4, True, True, True)
    assert len(got.rois) == len(given.rois)
    for a, b in zip(got.rois, given.rois, strict=True):
        assert (a.type, a.x, a.y, a.width, a.height, a.video) == (b.type, b.x, b.y, b.width, b.height, b.video)
        assert (a.saturation, a.pupil_sigma) == (b.saturation, b.pupil_sigma)
        assert_array_equal(a.mask, b.mask, err_msg=f"ellipse of {b.name}")
    proc = trusted_proc(lp_facemap["npy"])
    motion_rois = [r for r in proc["rois"] if r["rind"] == 1]
    motion_regions = [r for r in results.regions if r.type == "motion"]
    for raw, region in zip(motion_rois, motion_regions, strict=True):
        assert region.y_bin_range == (raw["yrange_bin"][0], raw["yrange_bin"][-1] + 1)
        assert region.x_bin_range == (raw["xrange_bin"][0], raw["xrange_bin"][-1] + 1)
    assert results.engine == "facemap" and results.source_file == f"lp_test_vid_proc.{kind}"
    assert results.processing_time is not None


def test_files_are_valid_and_smaller_than_facemaps(lp_facemap, lp_nwb):
    from pynwb import validate

    for path in lp_nwb.values():
        errors = validate(path=str(path))
        assert not (errors[0] if isinstance(errors, tuple) else errors), errors
        assert serious_inspector_messages(path) == []
        assert path.stat().st_size < lp_facemap["npy"].stat().st_size, "the NWB file is not smaller than the _proc.npy"


PLAIN = """
import json, sys
import numpy as np
from pynwb import NWBHDF5IO
import ndx_facemap
with NWBHDF5IO(sys.argv[1], "r", load_namespaces=True) as io:
    nwb = io.read()
    (task,) = [o for o in nwb.processing["behavior"].data_interfaces.values() if isinstance(o, ndx_facemap.FacemapTask)]
    names = list(task.regions["roi_name"][:])
    signals = {}
    for series in task.series.values():
        assert series.region.table is task.regions
        kind = getattr(series, "signal", None) or series.svd_type + "_svd"
        signals.setdefault(kind, []).append(names[int(series.region.data[0])])
    svds = {(s.svd_type, names[s.region.data[0]]): s for s in task.facemap_svd_series.values()}
    svd, movie = svds["motion", "motion0"], svds["movie", "full_frame"]
    center = next(s for s in task.facemap_spatial_series.values() if s.signal == "pupil_center")
    running = next(s for s in task.facemap_time_series.values() if s.signal == "running")
    out = {
        "facemap_nwb_imported": "facemap_nwb" in sys.modules,
        "signals": {k: sorted(v) for k, v in signals.items()},
        "motion_svd": list(svd.data.shape),
        "masks": list(svd.masks.shape),
        "normalization": svd.masks__normalization,
        "singular_values": len(svd.singular_values[:]),
        "movie_svd": list(movie.data.shape),
        "source_video": svd.source_video.name,
        "views": [[int(v.view_index), int(v.height), int(v.width), v.video.name] for v in task.views],
        "average_frame": list(task.summary_images["average_frame"].data.shape),
        "average_motion": list(task.summary_images["average_motion"].data.shape),
        "center": center.data[:].tolist(),
        "reference_frame": center.reference_frame,
        "running": list(running.data.shape),
        "regions": names,
        "spatial_bin": int(task.spatial_bin),
        "parameters": json.loads(task.parameters)["spatial_bin"],
        "parameters_length": len(task.parameters),
        "engine": task.run.engine,
        "engine_version": task.run.engine_version,
        "processing_time": type(task.run.processing_time).__name__,
    }
    print(json.dumps(out))
"""


def test_plain_pynwb_finds_every_signal(lp_facemap, lp_nwb):
    """From the task (found by type) to every signal, with pynwb and ndx_facemap alone: each series links its
    region row, the pupil centre is in frame pixels (Facemap's ROI-relative 'com' plus the ROI's first row and
    column, computed here from the _proc.npy itself)."""
    run = subprocess.run([sys.executable, "-c", PLAIN, str(lp_nwb["npy"])], capture_output=True, text=True, check=True)
    seen = json.loads(run.stdout.strip().splitlines()[-1])
    assert seen["facemap_nwb_imported"] is False
    assert seen["signals"] == {
        "motion_energy": ["full_frame", "motion0", "motion1"],
        "motion_svd": ["full_frame", "motion0", "motion1"],
        "movie_svd": ["full_frame", "motion0", "motion1"],
        "pupil_area": ["pupil0"],
        "pupil_area_smooth": ["pupil0"],
        "pupil_axes_length": ["pupil0"],
        "pupil_axes_direction": ["pupil0"],
        "pupil_center": ["pupil0"],
        "pupil_center_smooth": ["pupil0"],
        "blink": ["blink0"],
        "running": ["running0"],
    }
    assert seen["motion_svd"] == [994, 500] and seen["masks"] == [500, 19, 30] and seen["singular_values"] == 500
    assert seen["movie_svd"] == [994, 500]
    assert seen["normalization"] == "singular_values", "Facemap's one-segment masks are U * S"
    assert seen["regions"] == ["full_frame", "motion0", "pupil0", "blink0", "running0", "motion1"]
    proc = trusted_proc(lp_facemap["npy"])
    assert seen["source_video"] == "FaceCamera" and seen["views"] == [[0, proc["Ly"][0], proc["Lx"][0], "FaceCamera"]]
    assert seen["average_frame"] == seen["average_motion"] == [101, 99]
    (pupil_roi,) = [r for r in proc["rois"] if r["rind"] == 0]
    origin = np.array([pupil_roi["yrange"][0], pupil_roi["xrange"][0]], dtype=np.float64)
    assert_array_equal(np.array(seen["center"]), proc["pupil"][0]["com"] + origin)
    assert f"({int(origin[0])}, {int(origin[1])})" in seen["reference_frame"]
    assert seen["running"] == [994, 2]
    assert seen["spatial_bin"] == seen["parameters"] == 4 and seen["engine"] == "facemap"
    assert seen["parameters_length"] < 2000, "the task's parameters should be short enough to read"
    assert seen["engine_version"] is None, "Facemap's _proc.npy records no version: the attribute is left out"
    assert seen["processing_time"] == "datetime"


def test_spec_is_generated_and_valid(tmp_path):
    from hdmf.testing.validate_spec import validate_spec
    import pynwb

    schema = __import__("pathlib").Path(pynwb.__file__).parent / "nwb-schema" / "nwb.schema.json"
    for name in ("ndx-facemap.namespace.yaml", "ndx-facemap.extensions.yaml"):
        validate_spec(REPO / "schemas" / name, schema)
    subprocess.run([sys.executable, str(REPO / "schemas" / "create_extension_spec.py"), str(tmp_path)], check=True)
    packaged = REPO / "ndx-facemap" / "src" / "ndx_facemap" / "spec"
    for name in ("ndx-facemap.namespace.yaml", "ndx-facemap.extensions.yaml"):
        assert (tmp_path / name).read_text() == (REPO / "schemas" / name).read_text(), f"{name} was edited by hand"
        assert (packaged / name).read_text() == (REPO / "schemas" / name).read_text(), (
            f"the ndx-facemap distribution's copy of {name} is stale: run python schemas/create_extension_spec.py"
        )
