"""MATLAB Facemap's ``_proc.mat`` (v7 and v7.3) into the results model, into NWB and back, and refused cleanly
when damaged.

The files are built by hand (:mod:`tests.matlab_files`) as MATLAB Facemap lays out its ``proc`` struct;
what the tests expect comes from those inputs (``EXPECTED``: positions worked out by hand), never from
the loader's output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from facemap_nwb.cli import main
from facemap_nwb.convert import convert_facemap_output
from facemap_nwb.loaders.facemap import FacemapOutputError, load_facemap_results, read_proc_file
from facemap_nwb.loaders.matlab import MatlabFacemapProc
from facemap_nwb.loaders.matlab_files import read_mat73
from facemap_nwb.nwb.io import read_facemap_nwb
from facemap_nwb.synthetic import make_face_video

from .adversarial import refuse
from .conftest import CREATION
from .matlab_files import EXPECTED, PARTS, SC, T, VIEWS, Cell, matlab_proc, row, truth, write_v7, write_v73
from .test_recording_nwb import SESSION, SUBJECT, metadata_file, serious_inspector_messages

METADATA = {"NWBFile": dict(SESSION), "Subject": SUBJECT}
NAMES = ["full_frame", "running0", "motion0", "motion1", "pupil0", "blink0"]


@pytest.fixture(params=["v7", "v73"])
def fmt(request) -> str:
    return request.param


def write(fmt: str, path: Path, proc: dict, **kwargs) -> Path:
    return (write_v7 if fmt == "v7" else write_v73)(path, proc, **kwargs)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> list[list[Path]]:
    """The two views of matlab_proc(): 60 x 80 and 50 x 66 pixels, each in two files of 25 and 15 frames."""
    folder = tmp_path_factory.mktemp("matlab_videos")
    out = []
    for view, (height, width) in enumerate(VIEWS):
        parts, first = [], 0
        for i, n in enumerate(PARTS):
            created = CREATION if i == 0 else None
            path = folder / f"cam{view + 1}_{i + 1}.mp4"
            parts.append(
                make_face_video(path, n_frames=n, height=height, width=width, first_frame=first, creation_time=created)
            )
            first += n
        out.append(parts)
    return out


# ------------------------------------------------------------------------------------------ the reader


def _same(x, y, where: str) -> None:
    """The same nested structure of dicts, lists, object arrays, arrays (shape, dtype, values) and scalars."""
    assert type(x) is type(y), f"{where}: {type(x).__name__} vs {type(y).__name__}"
    if isinstance(x, dict):
        assert set(x) == set(y), f"{where}: fields {sorted(set(x) ^ set(y))} differ"
        for key in x:
            _same(x[key], y[key], f"{where}.{key}")
    elif isinstance(x, list):
        assert len(x) == len(y), f"{where}: {len(x)} vs {len(y)} elements"
        for i, (a, b) in enumerate(zip(x, y)):
            _same(a, b, f"{where}({i + 1})")
    elif isinstance(x, np.ndarray):
        assert x.shape == y.shape and x.dtype == y.dtype, f"{where}: {x.shape} {x.dtype} vs {y.shape} {y.dtype}"
        if x.dtype == object:
            for index in np.ndindex(*x.shape):
                _same(x[index], y[index], f"{where}{{{index}}}")
        else:
            assert_array_equal(x, y, err_msg=where)
    else:
        assert x == y or (x != x and y != y), f"{where}: {x!r} vs {y!r}"


@pytest.mark.parametrize("views", [1, 2])
def test_v73_reads_as_scipy_reads_v7(tmp_path, views):
    """The v7.3 reader gives exactly what SciPy's loadmat(squeeze_me=True, simplify_cells=True) gives for the
    same struct saved as v7: one mapper serves both."""
    from scipy.io import loadmat

    proc = matlab_proc(views)
    v7 = loadmat(str(write_v7(tmp_path / "a.mat", proc)), squeeze_me=True, simplify_cells=True)["proc"]
    v73 = read_mat73(write_v73(tmp_path / "b.mat", proc))["proc"]
    _same(v7, v73, "proc")
    # MATLAB's orientation, whatever the storage: motSVD{1} is frames x components, wpix{2} is 12 x 16 bins.
    assert v73["motSVD"][0].shape == (T, 7)
    if views == 2:
        assert v73["wpix"][1].shape == (12, 16) and v73["files"].shape == (2, 2)
        assert v73["files"][1, 0] == "/data/m1/cam2_1.avi"  # files{2,1}: view 2, first file


def test_read_proc_file_dispatches(tmp_path, fmt):
    proc = read_proc_file(write(fmt, tmp_path / "face_proc.mat", matlab_proc()))
    assert isinstance(proc, MatlabFacemapProc) and "locROI" in proc


# ------------------------------------------------------------------------------------------ the mapping


def _results_equal(a, b) -> None:
    assert a.parameters == b.parameters and a.regions == b.regions
    assert (a.frame_count, a.view_shapes, a.video_files, a.engine) == (b.frame_count, b.view_shapes, b.video_files,
                                                                      b.engine)  # fmt: skip
    for x, y in zip(a.motion_svd, b.motion_svd, strict=True):
        for name in ("projections", "singular_values", "masks"):
            assert_array_equal(getattr(x, name), getattr(y, name), err_msg=name, strict=True)
        assert (x.region, x.singular_values_source) == (y.region, y.singular_values_source)
    for name in ("average_frame", "average_motion"):
        assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name, strict=True)
    for x, y in zip(a.pupils, b.pupils, strict=True):
        for name in ("area", "area_smooth", "center"):
            assert_array_equal(getattr(x, name), getattr(y, name), err_msg=f"pupil {name}", strict=True)
    for name in ("blinks", "running", "motion_energy"):
        assert getattr(a, name).keys() == getattr(b, name).keys()
        for key in getattr(a, name):
            assert_array_equal(getattr(a, name)[key], getattr(b, name)[key], err_msg=name, strict=True)


@pytest.mark.parametrize("views", [1, 2])
def test_both_formats_load_to_identical_results(tmp_path, views):
    proc = matlab_proc(views)
    a = load_facemap_results(write_v7(tmp_path / "a_proc.mat", proc))
    b = load_facemap_results(write_v73(tmp_path / "b_proc.mat", proc))
    _results_equal(a, b)


def test_regions_and_rois_from_hand_worked_positions(tmp_path, fmt):
    results = load_facemap_results(write(fmt, tmp_path / "face_proc.mat", matlab_proc()))
    assert results.engine == "facemap-matlab" and results.frame_alignment == "previous"
    assert results.frame_count == T == sum(PARTS)
    assert results.view_shapes == VIEWS and results.parameters.spatial_bin == SC
    assert [r.name for r in results.regions] == NAMES
    assert results.video_files == [
        ["/data/m1/cam1_1.avi", "/data/m1/cam2_1.avi"],
        ["/data/m1/cam1_2.avi", "/data/m1/cam2_2.avi"],
    ]
    regions = {r.name: r for r in results.regions}
    for name, want in EXPECTED.items():
        if name not in regions:
            continue
        region = regions[name]
        assert (region.y_range, region.x_range, region.video_index) == (want["y"], want["x"], want["view"]), name
        if "y_bin" in want:
            assert (region.y_bin_range, region.x_bin_range) == (want["y_bin"], want["x_bin"]), name
        else:
            assert region.y_bin_range is None and region.x_bin_range is None, name
    full = regions["full_frame"]
    assert full.video_index == -1 and (full.y_bin_range, full.x_bin_range) == ((0, 15), (0, 36))
    rois = {r.name: r for r in results.parameters.rois}
    assert rois["pupil0"].saturation == pytest.approx(EXPECTED["pupil_threshold"])
    assert rois["blink0"].saturation == pytest.approx(EXPECTED["blink_threshold"])
    assert rois["pupil0"].pupil_sigma == 4.0  # proc.thres
    assert regions["pupil0"].saturation == pytest.approx(EXPECTED["pupil_threshold"])
    assert rois["pupil0"].mask.shape == (12, 18) and rois["pupil0"].mask.all()  # MATLAB uses the whole rectangle
    assert results.motion_energy == {}  # MATLAB Facemap computes none


def test_multivideo_masks_scattered_onto_the_binned_frame(tmp_path, fmt):
    proc = matlab_proc()
    results = load_facemap_results(write(fmt, tmp_path / "face_proc.mat", proc))
    u1, (v1, _, _) = truth(proc)["u1"], truth(proc)["v"]
    full = results.motion_svd[0]
    assert full.region == 0 and full.masks.shape == (7, *EXPECTED["binned_frame"])
    assert_array_equal(full.projections, v1)
    for index, (y, x) in EXPECTED["mask_rows"].items():
        assert_array_equal(full.masks[:, y, x], u1[index], err_msg=f"uMotMask{{1}} row {index + 1} -> bin ({y}, {x})")
    assert not full.masks[:, EXPECTED["excluded_bin"][0], EXPECTED["excluded_bin"][1]].any(), "eROI bin not zero"
    assert np.count_nonzero(full.masks[0]) == sum(EXPECTED["npix"]), "zero outside the multivideo mask"
    assert not full.masks[:, 12:, 20:].any(), "below view 2's 12 bin rows is outside every view"
    assert_allclose(np.linalg.norm(full.masks.reshape(7, -1), axis=1), 1.0, rtol=1e-5)  # normc columns, kept
    assert full.singular_values_source == "projection_norms"
    assert_allclose(full.singular_values, np.linalg.norm(v1.astype(np.float64), axis=0), rtol=1e-6)


def test_roi_svds_and_summary_images(tmp_path, fmt):
    proc = matlab_proc()
    results = load_facemap_results(write(fmt, tmp_path / "face_proc.mat", proc))
    t = truth(proc)
    _, motion0, motion1 = results.motion_svd
    assert (motion0.region, motion1.region) == (NAMES.index("motion0"), NAMES.index("motion1"))
    for svd, u, v in ((motion0, t["u2"], t["v"][1]), (motion1, t["u4"], t["v"][2])):
        assert_array_equal(svd.projections, v)
        assert_array_equal(svd.masks, np.moveaxis(u, -1, 0))  # (h, w, components) -> (components, h, w)
    assert motion0.masks.shape == (5, 6, 8) and motion1.masks.shape == (3, 3, 4)
    (y0, x0), (y1, x1) = EXPECTED["view_origins"]
    for image, blocks in ((results.average_frame, t["avg"]), (results.average_motion, t["avgm"])):
        assert image.shape == EXPECTED["binned_frame"]
        assert_array_equal(image[y0 : y0 + 15, x0 : x0 + 20], blocks[0])
        assert_array_equal(image[y1 : y1 + 12, x1 : x1 + 16], blocks[1])
        assert not image[12:, 20:].any()


def test_pupil_blink_and_running(tmp_path, fmt):
    proc = matlab_proc()
    results = load_facemap_results(write(fmt, tmp_path / "face_proc.mat", proc))
    (pupil,) = results.pupils
    assert pupil.region == NAMES.index("pupil0")
    assert_array_equal(pupil.area, proc["pupil"]["area_raw"][:, 0])
    assert_array_equal(pupil.area_smooth, proc["pupil"]["area"][:, 0])
    assert tuple(pupil.center[0]) == EXPECTED["pupil_center_0"]
    assert_array_equal(pupil.center[2:], proc["pupil"]["com"][2:, ::-1] - 1.0)
    assert np.isnan(pupil.center[1]).all() and np.isnan(pupil.area[1]), "frames the fit failed stay NaN"
    assert pupil.center_smooth is None and pupil.axes_length is None and pupil.axes_direction is None
    assert_array_equal(results.blinks[NAMES.index("blink0")], proc["blink"].elements[1]["area"][:, 0])
    assert_array_equal(results.running[NAMES.index("running0")], proc["runSpeed"])
    assert results.missing_values() == {"pupil0 area": 1, "pupil0 center": 2}


def test_one_view_one_file(tmp_path, fmt):
    """MATLAB's 1x1 cells (nX, wpix, files) and 1x1 arrays, which SciPy squeezes away."""
    proc = matlab_proc(views=1)
    results = load_facemap_results(write(fmt, tmp_path / "face_proc.mat", proc))
    assert results.view_shapes == [VIEWS[0]] and results.video_files == [["/data/m1/cam1.avi"]]
    full = results.regions[0]
    assert (full.video_index, full.y_range, full.x_range, full.x_bin_range) == (0, (0, 60), (0, 80), (0, 20))
    assert all(r.video_index == 0 for r in results.regions)
    assert_array_equal(results.average_frame, truth(proc)["avg"][0])
    assert results.motion_svd[0].masks.shape == (7, 15, 20)


# ------------------------------------------------------------------------------------------ NWB round trip


def _plain_pynwb(path: Path, backend: str) -> dict:
    """The task's series read with plain pynwb (hdmf-zarr for Zarr), not this package's reader."""
    if backend == "zarr":
        from hdmf_zarr.nwb import NWBZarrIO as IO
    else:
        from pynwb import NWBHDF5IO as IO
    with IO(str(path), mode="r", load_namespaces=True) as io:
        task = io.read().processing["behavior"]["FacemapTask"]
        out = {"run": (task.run.engine, task.run.source_file)}
        for group in (task.facemap_time_series, task.facemap_spatial_series, task.facemap_svd_series):
            for name, series in group.items():
                out[name] = np.asarray(series.data[:])
                if hasattr(series, "masks") and series.masks is not None:
                    out[f"{name}/masks"] = np.asarray(series.masks[:])
        out["regions"] = {c: list(task.regions[c].data[:]) for c in ("roi_name", "y_start", "y_stop", "x_start")}
    return out


@pytest.mark.parametrize("backend", ["hdf5", "zarr"])
def test_round_trip_both_backends(tmp_path, videos, backend, fmt):
    proc = matlab_proc()
    source = write(fmt, tmp_path / "face_proc.mat", proc)
    loaded = load_facemap_results(source)
    name = "m.nwb" if backend == "hdf5" else "m.nwb.zarr"
    out = convert_facemap_output(source, videos, tmp_path / name, metadata=METADATA, backend=backend)
    if backend == "hdf5":
        assert serious_inspector_messages(out) == []
    with read_facemap_nwb(out) as back:
        assert [r.name for r in back.regions] == NAMES and back.regions == loaded.regions
        assert back.engine == "facemap-matlab" and back.frame_alignment == "previous" and back.frame_count == T
        for x, y in zip(loaded.motion_svd, back.motion_svd, strict=True):
            assert_array_equal(y.projections, x.projections)
            assert_array_equal(y.masks, x.masks)
            assert_array_equal(y.singular_values, x.singular_values)
            assert y.singular_values_source == "projection_norms"
        (pupil,) = back.pupils
        assert_array_equal(pupil.center, loaded.pupils[0].center)
        assert pupil.center_smooth is None and pupil.axes_length is None and pupil.axes_direction is None
        assert_array_equal(back.average_frame, loaded.average_frame)
        assert back.parameters.rois[4].mask.all()  # the pupil's whole rectangle, read back
    plain = _plain_pynwb(out, backend)
    assert plain["run"] == ("facemap-matlab", "face_proc.mat")
    assert tuple(plain["PupilCenter_pupil0"][0]) == EXPECTED["pupil_center_frame_0"]  # frame pixels (y, x)
    assert not any(n.startswith(("PupilCenterSmooth", "PupilAxes", "MotionEnergy")) for n in plain)
    assert_array_equal(plain["MotionSVD_full_frame"], truth(proc)["v"][0])
    for index, (y, x) in EXPECTED["mask_rows"].items():
        assert_array_equal(plain["MotionSVD_full_frame/masks"][:, y, x], truth(proc)["u1"][index])
    assert_array_equal(plain["Blink_blink0"], proc["blink"].elements[1]["area"][:, 0])
    assert_array_equal(plain["Running_running0"], proc["runSpeed"])
    assert plain["regions"]["roi_name"] == NAMES
    assert plain["regions"]["y_start"][NAMES.index("pupil0")] == EXPECTED["pupil0"]["y"][0]


def test_cli_converts_both_formats(tmp_path, videos, capsys, fmt):
    source = write(fmt, tmp_path / "face_proc.mat", matlab_proc())
    out = tmp_path / "cli.nwb"
    argv = ["convert", source, "-o", out, "--metadata", metadata_file(tmp_path)]
    for view in videos:
        argv += ["--video", *view]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    with read_facemap_nwb(out) as back:
        assert back.engine == "facemap-matlab" and len(back.motion_svd) == 3


# ------------------------------------------------------------------------------------------ refusals


def _set(path: str, value):
    def change(proc):
        *parents, last = path.split(".")
        target = proc
        for name in parents:
            target = target[name]
        target[last] = value

    return change


def _cell_item(field: str, index: int, value):
    def change(proc):
        proc[field].items[index - 1] = value

    return change


def _drop(field: str):
    return lambda proc: proc.pop(field)


def _seven_slots(proc):
    proc["locROI"] = row(*proc["locROI"].items[:7])


STRUCT_CASES = {
    # case: (change to the hand-built proc, the field the message must name)
    "nan_sc": (_set("sc", np.array([[np.nan]])), "proc.sc"),
    "locroi_outside_frame": (_cell_item("locROI", 5, np.array([[19.0, 2.2, 4.5, 3.1]])), "proc.locROI{5}"),
    "motion_locroi_outside": (_cell_item("locROI", 4, np.array([[14.0, 6.5, 4.0, 3.0]])), "proc.locROI{4}"),
    "locroi_not_four": (_cell_item("locROI", 2, np.array([[2.5, 2.4, 8.2]])), "proc.locROI{2}"),
    "motsvd_rows": (_cell_item("motSVD", 2, np.zeros((T - 1, 5), np.float32)), "proc.motSVD{2}"),
    "multivideo_rows": (_cell_item("motSVD", 1, np.zeros((T + 3, 7), np.float32)), "proc.motSVD{1}"),
    "mask_size": (_cell_item("wpix", 2, np.ones((12, 15), bool)), "proc.wpix{2}"),
    "npix_mismatch": (_set("npix", np.array([[292.0, 53.0]])), "proc.npix(2)"),
    "roi_mask_size": (_cell_item("uMotMask", 4, np.zeros((3, 5, 3), np.float32)), "proc.uMotMask{4}"),
    "missing_motsvd": (_cell_item("motSVD", 4, np.zeros((0, 0), np.float32)), "proc.motSVD{4}"),
    "roifile_view": (_set("ROIfile", np.array([[2.0, 1, 0, 2, 3, 0, 0, 2]]).T), "proc.ROIfile(5)"),
    "saturation_fraction": (_set("saturation", np.full((100, 1), 3.0)), "proc.saturation(5)"),
    "pupil_com_shape": (_set("pupil.com", np.zeros((T, 3), np.float32)), "proc.pupil(1).com"),
    "no_locroi": (_drop("locROI"), "proc.locROI"),
    "seven_slots": (_seven_slots, "proc.locROI"),
    "avgframe_length": (_set("avgframe", np.zeros((100, 1), np.float32)), "proc.avgframe"),
    "files_shape": (_set("files", row("/a.avi", "/b.avi", "/c.avi")), "proc.files"),
    "no_wpix": (_drop("wpix"), "proc.wpix"),
    "no_run_speed": (_drop("runSpeed"), "proc.runSpeed"),
    "blink_missing": (_set("blink", {"area": np.ones((T, 1))}), "proc.blink(2).area"),
    "no_frames": (_set("nframes", np.zeros((2, 1), np.int64)), "proc.nframes"),
}


@pytest.mark.parametrize("case", sorted(STRUCT_CASES))
def test_impossible_struct_is_refused(tmp_path, fmt, case):
    change, field = STRUCT_CASES[case]
    proc = matlab_proc()
    change(proc)
    path = write(fmt, tmp_path / f"{case}_proc.mat", proc)
    with pytest.raises(FacemapOutputError) as caught:
        load_facemap_results(path)
    message = str(caught.value)
    assert path.name in message and field in message, message
    assert "Fix" in message or "pass" in message, message


def _h5_edit(kind: str):
    """Damage the HDF5 content of a v7.3 file: returns (edit, field named)."""
    import h5py

    def replace(name, make):
        def edit(f, writer):
            del f["proc"][name]
            make(f, f["proc"], writer)

        return edit

    def tagged(obj, kind_name):
        obj.attrs["MATLAB_class"] = np.bytes_(kind_name)
        return obj

    def loop(f, proc, writer):
        cell = writer.refs.create_dataset("loop", shape=(1, 1), dtype=h5py.ref_dtype)
        tagged(cell, "cell")
        cell[0, 0] = cell.ref
        tagged(proc.create_dataset("avgmot", data=np.array([[cell.ref]]), dtype=h5py.ref_dtype), "cell")

    def deep(f, proc, writer):
        target = tagged(writer.refs.create_dataset("leaf", data=np.zeros((1, 1))), "double")
        for level in range(40):
            target = tagged(
                writer.refs.create_dataset(f"deep{level}", data=np.array([[target.ref]]), dtype=h5py.ref_dtype), "cell"
            )
        tagged(proc.create_dataset("avgmot", data=np.array([[target.ref]]), dtype=h5py.ref_dtype), "cell")

    cases = {
        "function_handle": (
            replace("sc", lambda f, p, w: tagged(p.create_dataset("sc", data=np.ones((1, 1))), "function_handle")),
            "proc.sc",
        ),  # fmt: skip
        "wrong_dtype": (
            replace("sc", lambda f, p, w: tagged(p.create_dataset("sc", data=np.ones((1, 1), np.int32)), "double")),
            "proc.sc",
        ),  # fmt: skip
        "char_as_uint8": (
            replace(
                "rootfolder",
                lambda f, p, w: tagged(
                    p.create_dataset("rootfolder", data=np.frombuffer(b"/data", np.uint8).reshape(-1, 1)), "char"
                ),
            ),
            "proc.rootfolder",
        ),  # fmt: skip
        "no_class": (replace("sc", lambda f, p, w: p.create_dataset("sc", data=np.ones((1, 1)))), "proc.sc"),
        "sparse": (
            replace(
                "sc",
                lambda f, p, w: tagged(p.create_dataset("sc", data=np.ones((1, 1))), "double").attrs.create(
                    "MATLAB_sparse", np.uint64(1)
                ),
            ),
            "proc.sc",
        ),  # fmt: skip
        "complex": (
            replace(
                "thres",
                lambda f, p, w: tagged(
                    p.create_dataset("thres", data=np.array([[(4.0, 1.0)]], dtype=[("real", "<f8"), ("imag", "<f8")])),
                    "double",
                ),
            ),
            "proc.thres",
        ),  # fmt: skip
        "reference_loop": (replace("avgmot", loop), "proc.avgmot{1}"),
        "too_deep": (replace("avgmot", deep), "proc.avgmot{1}"),
        "external_link": (
            replace("sc", lambda f, p, w: p.__setitem__("sc", h5py.ExternalLink("other.mat", "/sc"))),
            "proc.sc",
        ),  # fmt: skip
        "soft_link": (replace("nX", lambda f, p, w: p.__setitem__("nX", h5py.SoftLink("/proc/nY"))), "proc.nX"),
        "declared_bomb": (
            replace(
                "avgframe",
                lambda f, p, w: tagged(
                    p.create_dataset(
                        "avgframe", shape=(200_000, 20_000), dtype=np.float32, chunks=(1000, 1000), compression="gzip"
                    ),
                    "single",
                ),
            ),
            "proc.avgframe",
        ),  # fmt: skip
        "external_storage": (
            replace(
                "thres",
                lambda f, p, w: tagged(
                    p.create_dataset("thres", shape=(1, 1), dtype=np.float64, external=[("raw.bin", 0, 8)]), "double"
                ),
            ),
            "proc.thres",
        ),  # fmt: skip
        "plugin_filter": (
            replace(
                "avgframe",
                lambda f, p, w: tagged(
                    p.create_dataset("avgframe", data=np.zeros((1, 492), np.float32), compression="lzf"), "single"
                ),
            ),
            "proc.avgframe",
        ),  # fmt: skip
        "proc_not_struct": (
            lambda f, w: (f.__delitem__("proc"), w.write(f, "proc", row(np.ones((1, 1)))))[0],
            "proc",
        ),  # fmt: skip
    }
    return cases[kind]


H5_CASES = [
    "function_handle",
    "wrong_dtype",
    "char_as_uint8",
    "no_class",
    "sparse",
    "complex",
    "reference_loop",
    "too_deep",
    "external_link",
    "soft_link",
    "declared_bomb",
    "external_storage",
    "plugin_filter",
    "proc_not_struct",
]


@pytest.mark.parametrize("case", H5_CASES)
def test_unsafe_or_foreign_v73_is_refused(tmp_path, case):
    edit, field = _h5_edit(case)
    path = write_v73(tmp_path / f"{case}_proc.mat", matlab_proc(), edit=edit)
    (tmp_path / "raw.bin").write_bytes(np.float64(4.0).tobytes())  # what external storage would read
    with pytest.raises(FacemapOutputError) as caught:
        load_facemap_results(path)
    message = str(caught.value)
    assert path.name in message and field in message, message
    if case == "declared_bomb":
        assert path.stat().st_size < 2**20 and "bomb" in message


def test_reference_fan_out_is_bounded(tmp_path, monkeypatch):
    """A DAG of references (each level two references to the one below) would expand exponentially."""
    import h5py

    from facemap_nwb.loaders import matlab_files

    def fan(f, writer):
        target = writer.refs.create_dataset("leaf", data=np.zeros((1, 1)))
        target.attrs["MATLAB_class"] = np.bytes_("double")
        for level in range(12):
            target = writer.refs.create_dataset(f"fan{level}", data=np.array([[target.ref, target.ref]]).T,
                                                dtype=h5py.ref_dtype)  # fmt: skip
            target.attrs["MATLAB_class"] = np.bytes_("cell")
        del f["proc"]["avgmot"]
        f["proc"]["avgmot"] = target

    monkeypatch.setattr(matlab_files, "MAX_OBJECTS", 1000)
    path = write_v73(tmp_path / "fan_proc.mat", matlab_proc(), edit=fan)
    with pytest.raises(FacemapOutputError, match="more than 1000 MATLAB arrays"):
        load_facemap_results(path)


def test_file_level_damage_is_refused(tmp_path):
    good = write_v73(tmp_path / "good.mat", matlab_proc()).read_bytes()
    cases = {
        "truncated": good[: len(good) // 2],
        "header_only": good[:512],
        "flipped": good[:600] + bytes(b ^ 0xFF for b in good[600:4000]) + good[4000:],
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}_proc.mat"
        path.write_bytes(data)
        with pytest.raises(FacemapOutputError) as caught:
            load_facemap_results(path)
        assert path.name in str(caught.value), f"{name}: {caught.value}"
    other = write_v73(tmp_path / "other_proc.mat", {}, variables={"data": np.ones((2, 2))})
    with pytest.raises(FacemapOutputError, match=r"not MATLAB Facemap's single 'proc' struct.*not supported"):
        load_facemap_results(other)
    not_struct = write_v7(tmp_path / "scalar_proc.mat", {}, variables={"proc": np.array([[1.0]])})
    with pytest.raises(FacemapOutputError, match=r"scalar_proc\.mat.*'proc' is the float 1\.0.*1x1 struct"):
        load_facemap_results(not_struct)


@pytest.mark.parametrize(
    ("case", "field"), [("locroi_outside_frame", "proc.locROI{5}"), ("motsvd_rows", "proc.motSVD{2}")]
)
def test_cli_refuses_bad_file_in_one_line_leaving_nothing(tmp_path, videos, capsys, fmt, case, field):
    change, _ = STRUCT_CASES[case]
    proc = matlab_proc()
    change(proc)
    source = write(fmt, tmp_path / f"{case}_proc.mat", proc)
    argv = ["convert", source, "-o", tmp_path / "out.nwb", "--metadata", metadata_file(tmp_path)]
    for view in videos:
        argv += ["--video", *view]
    refuse(argv, tmp_path, names=[source.name, field], capsys=capsys)
    assert not (tmp_path / "out.nwb").exists()


def test_cli_refuses_truncated_v73(tmp_path, videos, capsys):
    data = write_v73(tmp_path / "whole.mat", matlab_proc()).read_bytes()
    source = tmp_path / "cut_proc.mat"
    source.write_bytes(data[: len(data) // 3])
    argv = ["convert", source, "-o", tmp_path / "out.nwb", "--metadata", metadata_file(tmp_path)]
    for view in videos:
        argv += ["--video", *view]
    refuse(argv, tmp_path, names=[source.name], capsys=capsys)


def test_cell_helper_orders_column_major():
    """The builders' own convention, which the expected positions rely on."""
    cell = Cell((2, 2), ["a", "b", "c", "d"])  # MATLAB {'a' 'c'; 'b' 'd'}
    from .matlab_files import _scipy_value

    assert _scipy_value(cell)[1, 0] == "b" and _scipy_value(cell)[0, 1] == "c"


def test_deflate_bomb_in_a_small_chunk_is_refused_before_hdf5_inflates_it(tmp_path):
    """HDF5's deflate filter inflates a chunk to whatever its stream holds (the declared size only cuts the
    result), so a 1968-byte chunk holding 100 MB of zeros must be caught before HDF5 reads it."""
    import zlib

    def edit(f, writer):
        del f["proc"]["avgframe"]
        shape = (1, 492)
        dataset = f["proc"].create_dataset("avgframe", shape=shape, dtype=np.float32, chunks=shape, compression="gzip")
        dataset.attrs["MATLAB_class"] = np.bytes_("single")
        stream = zlib.compressobj()
        data = b"".join(stream.compress(bytes(2**20)) for _ in range(100)) + stream.flush()
        dataset.id.write_direct_chunk((0, 0), data)

    path = write_v73(tmp_path / "bomb_proc.mat", matlab_proc(), edit=edit)
    with pytest.raises(FacemapOutputError, match=r"bomb_proc\.mat.*proc\.avgframe.*inflates beyond the 1968 bytes"):
        load_facemap_results(path)


def test_damaged_bytes_in_v73_are_refused_cleanly(tmp_path):
    """Bytes flipped in a v7.3 file's HDF5 metadata (after the 512-byte user block): every result is a load or a
    FacemapOutputError (a ValueError) naming the file, never another exception."""
    clean = write_v73(tmp_path / "clean_proc.mat", matlab_proc()).read_bytes()
    from .damage import damaged_copies

    path = tmp_path / "face_proc.mat"
    refused = 0
    for raw in damaged_copies(clean, count=200, start=512, stop=8192, seed=11):
        path.write_bytes(raw)
        try:
            load_facemap_results(path)
        except FacemapOutputError as err:
            assert str(path) in str(err)
            refused += 1
    assert refused > 0
