"""ndx-facemap 1.0.0: every value is what its label says, in the file (issue #10, item 3), checked against the
hand-built Facemap dict of test_facemap_model and closed forms, read back with h5py/zarr and plain pynwb."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from facemap_nwb.cli import main
from facemap_nwb.convert import convert_facemap_output, write_results_nwb
from facemap_nwb.nwb.io import read_facemap_nwb

from .conftest import REPO
from .test_facemap_model import METADATA, T, hand_built_proc, proc_file, video  # noqa: F401 - fixtures

PUPIL_ROI = 1  # hand_built_proc()["rois"][1] is the pupil ROI, [2] the blink ROI


@pytest.fixture(params=["hdf5", "zarr"])
def written(request, proc_file, video, tmp_path):  # noqa: F811 - fixtures imported above
    name = "labels.nwb" if request.param == "hdf5" else "labels.nwb.zarr"
    out = convert_facemap_output(proc_file(), [video], tmp_path / name, metadata=METADATA, backend=request.param)
    return out, request.param


def _open(path, backend):
    if backend == "zarr":
        from hdmf_zarr.nwb import NWBZarrIO

        return NWBZarrIO(str(path), mode="r", load_namespaces=True)
    from pynwb import NWBHDF5IO

    return NWBHDF5IO(str(path), "r", load_namespaces=True)


def test_pupil_centre_is_in_frame_pixels_and_loads_back_bit_for_bit(written):
    """Facemap's 'com' is relative to the pupil ROI: the file holds it shifted by the ROI's first row and column,
    says so, and the loader gives Facemap's own values back exactly (the hand-built values are full-precision
    float64, so the shift alone is not exact and Facemap's values are kept beside it)."""
    path, backend = written
    proc = hand_built_proc()
    roi = proc["rois"][PUPIL_ROI]
    origin = np.array([roi["yrange"][0], roi["xrange"][0]])
    with _open(path, backend) as io:
        task = io.read().processing["behavior"]["FacemapTask"]
        center = task.facemap_spatial_series["PupilCenter_pupil0"]
        assert_array_equal(center.data[:], proc["pupil"][0]["com"] + origin)
        assert_array_equal(center.roi_origin[:], origin)
        assert f"roi_origin = ({origin[0]}, {origin[1]})" in center.reference_frame
        assert "frame" in center.reference_frame and "top-left pixel (0, 0)" in center.reference_frame
        assert center.roi_relative is not None
        assert_array_equal(center.roi_relative[:], proc["pupil"][0]["com"])
    back = read_facemap_nwb(path)
    assert_array_equal(back.pupils[0].center, proc["pupil"][0]["com"], strict=True)
    assert_array_equal(back.pupils[0].center_smooth, proc["pupil"][0]["com_smooth"], strict=True)


def test_an_exact_shift_stores_no_copy(proc_file, video, tmp_path):  # noqa: F811
    """Where adding the ROI origin is exact (values on a quarter-pixel grid, as a hand-built case), the file holds
    the frame coordinates alone and the loader subtracts the origin."""
    proc = hand_built_proc()
    grid = np.round(proc["pupil"][0]["com"] * 4) / 4
    proc["pupil"][0]["com"] = proc["pupil"][0]["com_smooth"] = grid
    path = tmp_path / "grid_proc.npy"
    np.save(path, proc, allow_pickle=True)
    out = convert_facemap_output(path, [video], tmp_path / "grid.nwb", metadata=METADATA)
    with _open(out, "hdf5") as io:
        center = io.read().processing["behavior"]["FacemapTask"].facemap_spatial_series["PupilCenter_pupil0"]
        assert center.roi_relative is None
    assert_array_equal(read_facemap_nwb(out).pupils[0].center, grid, strict=True)


def test_ellipse_masks_are_boolean_rows_and_parameters_are_short(written):
    path, backend = written
    proc = hand_built_proc()
    with _open(path, backend) as io:
        task = io.read().processing["behavior"]["FacemapTask"]
        regions = task.regions
        names = list(regions["roi_name"][:])
        ellipses = regions["ellipse"]
        for k, roi in enumerate(proc["rois"]):
            row = ellipses[k + 1]
            if roi["rind"] in (0, 2):  # pupil and blink ROIs use their ellipse
                assert np.asarray(row).dtype == bool, names[k + 1]
                assert_array_equal(np.asarray(row), roi["ellipse"].ravel(), err_msg=names[k + 1])
            else:
                assert len(row) == 0, f"{names[k + 1]} has no ellipse"
        parameters = json.loads(task.parameters)
        assert len(task.parameters) < 2000, f"parameters take {len(task.parameters)} characters"
        assert all("ellipse" not in roi for roi in parameters["rois"])
        # The values Facemap's ROIs hold are in the regions table, not NaN.
        saturation, sigma = regions["saturation"][:], regions["pupil_sigma"][:]
        assert_array_equal(saturation[[2, 3]], [proc["rois"][1]["saturation"], proc["rois"][2]["saturation"]])
        assert sigma[2] == proc["rois"][1]["pupil_sigma"] and np.isnan(sigma[3])
    back = read_facemap_nwb(path)
    for roi, facemap in zip(back.parameters.rois, proc["rois"], strict=True):
        assert_array_equal(roi.mask, facemap["ellipse"], err_msg=f"ellipse of {roi.name} read back")


def test_every_series_states_what_it_holds(written):
    """Region links, Facemap's key names, frame alignment, mask normalisation, singular-value source, the run's
    datetime and engine, the view shapes: all in the file."""
    path, backend = written
    with _open(path, backend) as io:
        task = io.read().processing["behavior"]["FacemapTask"]
        for series in task.series.values():
            assert series.region.table is task.regions, series.name
        images = task.summary_images
        assert "'avgframe_reshape'" in images["average_frame"].description
        assert "'avgmotion_reshape'" in images["average_motion"].description
        energy = task.facemap_time_series["MotionEnergy_full_frame"]
        assert energy.signal == "motion_energy" and "499 is 0" in energy.frame_alignment
        assert "499 is 0" in energy.description
        for svd in task.facemap_svd_series.values():
            assert svd.masks__normalization in ("unit", "singular_values")
            assert svd.singular_values__source in ("facemap", "projection_norms", "mask_norms", "computed")
            assert (svd.frame_alignment is not None) == (svd.svd_type == "motion"), svd.name
        assert task.facemap_time_series["Blink_blink0"].frame_alignment is None
        assert [(v.view_index, v.height, v.width) for v in task.views] == [(0, 60, 80)]
        assert task.run.engine == "facemap" and task.run.engine_version is None
        from datetime import datetime

        assert isinstance(task.run.processing_time, datetime)
    assert read_facemap_nwb(path).view_shapes == [(60, 80)]


def test_masks_normalisation_follows_the_values(tmp_path, face_video):
    """Unit masks (the native engine) say 'unit'; Facemap's one-segment masks, whose norms are the singular
    values, say 'singular_values'."""
    from facemap_nwb.engines import process_recordings
    from facemap_nwb.params import FacemapParameters
    from facemap_nwb.video import probe_recording

    recording = probe_recording([face_video("n.mp4", n_frames=30, height=40, width=48, creation_time=METADATA_START)])
    results = process_recordings([recording], FacemapParameters(spatial_bin=4, n_components=3), progress=False)
    out = write_results_nwb(tmp_path / "native.nwb", results, [recording], metadata={"Subject": METADATA["Subject"]})
    with _open(out, "hdf5") as io:
        task = io.read().processing["behavior"]["FacemapTask"]
        (svd,) = task.facemap_svd_series.values()
        norms = np.linalg.norm(svd.masks[:].reshape(3, -1), axis=1)
        np.testing.assert_allclose(norms, 1, rtol=1e-4)
        assert svd.masks__normalization == "unit" and svd.singular_values__source == "computed"
        assert task.run.engine == "facemap_nwb.native" and task.run.engine_version  # always filled for our engine


def test_one_segment_facemap_masks_are_scaled(proc_file, video, tmp_path):  # noqa: F811
    out = convert_facemap_output(proc_file(multi_segment=False), [video], tmp_path / "one.nwb", metadata=METADATA)
    with _open(out, "hdf5") as io:
        for svd in io.read().processing["behavior"]["FacemapTask"].facemap_svd_series.values():
            assert svd.singular_values__source == "mask_norms" and svd.masks__normalization == "singular_values"


def test_a_pre_1_0_file_is_refused_with_the_fix(tmp_path, capsys):
    """Files in the development format 0.1.0 are not read: one message naming the file, its format and the fix."""
    old = REPO / "tests" / "data" / "facemap_nwb_0.1.0.nwb"
    if not old.exists():
        pytest.skip("the 0.1.0 file is not in this checkout")
    with pytest.raises(ValueError, match=r"ndx-facemap format 0\.1\.0.*convert the Facemap output again"):
        read_facemap_nwb(old)
    assert main(["plot", str(old), "-o", str(tmp_path / "x.png")]) == 1
    err = capsys.readouterr().err
    assert "0.1.0" in err and str(old) in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_the_spec_documents_stop_as_exclusive():
    import yaml

    spec = yaml.safe_load((REPO / "schemas" / "ndx-facemap.extensions.yaml").read_text())
    (regions,) = [g for g in spec["groups"] if g.get("neurodata_type_def") == "FacemapRegions"]
    docs = {d["name"]: d["doc"] for d in regions["datasets"]}
    for axis in ("y", "x"):
        assert "First" in docs[f"{axis}_start"] and "exclusive" in docs[f"{axis}_stop"]
        assert docs[f"{axis}_start"] != docs[f"{axis}_stop"]


METADATA_START = __import__("datetime").datetime(2024, 1, 2, 3, 4, 5, tzinfo=__import__("datetime").timezone.utc)
