"""Facemap outputs built by hand (no Facemap needed): mapping rules, the anchors' faults done better,
bad results files, and the NWB round trip on both backends."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from facemap_nwb.cli import main
from facemap_nwb.convert import convert_facemap_output
from facemap_nwb.loaders.facemap import load_facemap_results
from facemap_nwb.nwb.io import read_facemap_nwb

from .conftest import CREATION
from .test_recording_nwb import SESSION, SUBJECT, metadata_file, serious_inspector_messages

METADATA = {"NWBFile": dict(SESSION), "Subject": SUBJECT}
T = 40  # frames


def _roi(rind, x, y, w, h, **extra):
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    ellipse = ((yy + 0.5 - h / 2) / (h / 2)) ** 2 + ((xx + 0.5 - w / 2) / (w / 2)) ** 2 <= 1
    roi = dict(rind=rind, rtype="x", iROI=0, ivid=0, color=(255, 0, 0), saturation=90.0, pupil_sigma=2.0)
    roi.update(yrange=np.arange(y, y + h, dtype=np.int32), xrange=np.arange(x, x + w, dtype=np.int32), ellipse=ellipse)
    roi.update(extra)
    return roi


def hand_built_proc(frames: int = T, *, multi_segment: bool = True) -> dict:
    """A Facemap-shaped dict for a 60 x 80 video, sbin 2: full frame plus two motion ROIs and one of each
    other kind. Component counts (7, 5, 3) differ from every spatial size so a wrong axis shows."""
    rng = np.random.default_rng(7)  # the same dict on every call
    f32 = np.float32
    shapes = [(30, 40, 7), (6, 9, 5), (4, 5, 3)]  # (bins y, bins x, components) of full frame, motion0, motion1
    masks = [rng.normal(size=s).astype(f32) for s in shapes]
    projections = [rng.normal(size=(frames, s[2])).astype(f32) for s in shapes]
    movie_masks = [rng.normal(size=s).astype(f32) for s in shapes]
    movie_projections = [rng.normal(size=(frames, s[2])).astype(f32) for s in shapes]
    rois = [
        _roi(1, 10, 20, 18, 12, yrange_bin=np.arange(10, 16), xrange_bin=np.arange(5, 14)),
        _roi(0, 40, 5, 10, 8),
        _roi(2, 50, 5, 10, 8),
        _roi(3, 60, 30, 16, 16),
        _roi(1, 30, 40, 10, 8, yrange_bin=np.arange(20, 24), xrange_bin=np.arange(15, 20)),
    ]
    sv = np.array([9.0, 5.0, 2.0] + [0.0] * 497, f32) if multi_segment else np.zeros(500, f32)
    return {
        "filenames": [["face.mp4"]],
        "save_path": None,
        "Ly": [60],
        "Lx": [80],
        "sbin": 2,
        "fullSVD": True,
        "save_mat": False,
        "Lybin": np.array([30], np.int32),
        "Lxbin": np.array([40], np.int32),
        "sybin": np.array([0]),
        "sxbin": np.array([0]),
        "LYbin": 30,
        "LXbin": 40,
        "avgframe": [rng.random((30, 40)).astype(f32)],
        "avgmotion": [rng.random((30, 40)).astype(f32)],
        "avgframe_reshape": rng.random((30, 40)).astype(f32),
        "avgmotion_reshape": rng.random((30, 40)).astype(f32),
        "motion": [rng.random(frames).astype(f32) for _ in range(3)],
        "motSv": sv[:3] if multi_segment else sv,
        "movSv": sv[:3] if multi_segment else sv,
        "motMask": [m.reshape(-1, m.shape[-1]) for m in masks],
        "movMask": [m.reshape(-1, m.shape[-1]) for m in movie_masks],
        "motMask_reshape": masks,
        "movMask_reshape": movie_masks,
        "motSVD": projections,
        "movSVD": movie_projections,
        "pupil": [
            {
                "area": rng.random(frames),
                "com": rng.random((frames, 2)),
                "axdir": rng.random((frames, 2, 2)),
                "axlen": rng.random((frames, 2)),
                "area_smooth": rng.random(frames),
                "com_smooth": rng.random((frames, 2)),
            }
        ],
        "running": [rng.random((frames, 2))],
        "blink": [rng.random(frames)],
        "rois": rois,
        "sy": np.array([0]),
        "sx": np.array([0]),
    }


@pytest.fixture
def proc_file(tmp_path):
    def make(frames=T, **kwargs):
        path = tmp_path / "face_proc.npy"
        np.save(path, hand_built_proc(frames, **kwargs), allow_pickle=True)
        return path

    return make


@pytest.fixture
def video(face_video):
    return face_video("face.mp4", n_frames=T, height=60, width=80, creation_time=CREATION)


def test_component_axis_each_region_and_movie_svd(proc_file, video, tmp_path):
    proc = hand_built_proc()
    out = convert_facemap_output(proc_file(), [video], tmp_path / "a.nwb", metadata=METADATA)
    back = read_facemap_nwb(out)
    names = [r.name for r in back.regions]
    assert names == ["full_frame", "motion0", "pupil0", "blink0", "running0", "motion1"]
    slot_region = {0: 0, 1: 1, 2: 5}  # Facemap's slot j -> our region row
    for slot, region in slot_region.items():
        assert_array_equal(back.motion_energy[region], proc["motion"][slot], err_msg=f"motion trace of slot {slot}")
        for kind, key in (("motion", "mot"), ("movie", "mov")):
            (svd,) = [s for s in back.svds(kind) if s.region == region]
            k = proc[f"{key}SVD"][slot].shape[1]
            assert svd.projections.shape == (T, k)
            assert svd.masks.shape == (k, *proc[f"{key}Mask_reshape"][slot].shape[:2])
            for component in range(k):  # component j of the masks is Facemap's [:, :, j]
                assert_array_equal(svd.masks[component], proc[f"{key}Mask_reshape"][slot][:, :, component])
                assert_array_equal(svd.projections[:, component], proc[f"{key}SVD"][slot][:, component])
    assert back.movie_svd, "movie SVD must be written"


def test_singular_values_never_on_the_wrong_region(proc_file, video, tmp_path):
    proc = hand_built_proc()
    back = read_facemap_nwb(convert_facemap_output(proc_file(), [video], tmp_path / "s.nwb", metadata=METADATA))
    for kind, key in (("motion", "mot"), ("movie", "mov")):
        by_region = {s.region: s for s in back.svds(kind)}
        # Facemap's motSv belongs to the last region of its loop (slot 2 = motion1, region row 5).
        assert by_region[5].singular_values_source == "facemap"
        assert_array_equal(by_region[5].singular_values, proc[f"{key}Sv"])
        for slot, region in ((0, 0), (1, 1)):
            assert by_region[region].singular_values_source == "projection_norms"
            expected = np.sqrt((proc[f"{key}SVD"][slot].astype(np.float64) ** 2).sum(axis=0))
            assert_allclose(by_region[region].singular_values, expected, rtol=1e-6)


def test_one_segment_singular_values_from_mask_norms(proc_file, video, tmp_path):
    proc = hand_built_proc(multi_segment=False)
    back = load_facemap_results(proc_file(multi_segment=False))
    for svd, slot in zip(back.motion_svd, (0, 1, 2), strict=True):
        assert svd.singular_values_source == "mask_norms"
        m = proc["motMask"][slot].astype(np.float64)
        assert_allclose(svd.singular_values, np.sqrt((m**2).sum(axis=0)), rtol=1e-6)


def test_frame_count_mismatch_is_refused(proc_file, face_video, tmp_path, capsys):
    longer = face_video("longer.mp4", n_frames=T + 5, height=60, width=80, creation_time=CREATION)
    with pytest.raises(ValueError, match=rf"results hold {T} frames but the video .* has {T + 5}"):
        convert_facemap_output(proc_file(), [longer], tmp_path / "x.nwb", metadata=METADATA)
    out = tmp_path / "cli.nwb"
    assert main(["convert", str(proc_file()), "--video", str(longer), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{T} frames" in err and f"{T + 5}" in err and "longer.mp4" in err
    assert not list(tmp_path.glob("*.nwb")) and not list(tmp_path.glob(".*partial*"))


def test_frame_size_mismatch_is_refused(proc_file, face_video, tmp_path):
    other = face_video("other.mp4", n_frames=T, height=64, width=80, creation_time=CREATION)
    with pytest.raises(ValueError, match=r"view 0 is 80x60 pixels but the video .*other.mp4' is 80x64"):
        convert_facemap_output(proc_file(), [other], tmp_path / "x.nwb", metadata=METADATA)


def test_frame_rate_is_a_float(proc_file, face_video, tmp_path):
    video = face_video("ntsc.mp4", n_frames=T, height=60, width=80, rate=30000 / 1001, creation_time=CREATION)
    out = convert_facemap_output(proc_file(), [video], tmp_path / "ntsc.nwb", metadata=METADATA)
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert_allclose(nwb.acquisition["FaceCamera"].rate, 30000 / 1001, rtol=1e-12)
        task = nwb.processing["behavior"]["FacemapTask"]
        assert_allclose(task.facemap_time_series["MotionEnergy_full_frame"].rate, 30000 / 1001, rtol=1e-12)


# Region rows and Facemap's SVD slots of hand_built_proc(): the full frame, then its ROIs in order.
REGION_NAMES = ["full_frame", "motion0", "pupil0", "blink0", "running0", "motion1"]
REGION_TYPES = ["full_frame", "motion", "pupil", "blink", "running", "motion"]
SVD_SLOTS = {0: 0, 1: 1, 2: 5}  # Facemap's slot j (motion, motSVD, movSVD) -> region row


def _projection_norms(projections) -> np.ndarray:
    return np.sqrt((np.asarray(projections, np.float64) ** 2).sum(axis=0))


def _expected_contents(proc: dict) -> dict:
    """What the task group in /processing/behavior must hold, from the hand-built dict and the ndx-facemap spec
    alone (paths relative to the task group ``FacemapTask``)."""
    out = {}
    for slot, region in SVD_SLOTS.items():
        name = REGION_NAMES[region]
        out[f"FacemapTask/MotionEnergy_{name}/data"] = proc["motion"][slot]
        for kind, key in (("Motion", "mot"), ("Movie", "mov")):
            out[f"FacemapTask/{kind}SVD_{name}/data"] = proc[f"{key}SVD"][slot]
            masks = np.moveaxis(proc[f"{key}Mask_reshape"][slot], -1, 0)  # component first
            out[f"FacemapTask/{kind}SVD_{name}/masks"] = masks
    pupil = proc["pupil"][0]
    for series, key in (("PupilArea", "area"), ("PupilAreaSmooth", "area_smooth"), ("PupilAxesLength", "axlen"),
                        ("PupilAxesDirection", "axdir")):  # fmt: skip
        out[f"FacemapTask/{series}_pupil0/data"] = pupil[key]
    # Facemap's centre is relative to the pupil ROI: the file holds it in frame pixels, shifted by the ROI's
    # first row and column (yrange[0], xrange[0]).
    origin = np.array([proc["rois"][pupil_roi]["yrange"][0], proc["rois"][pupil_roi]["xrange"][0]], np.float64)
    out["FacemapTask/PupilCenter_pupil0/data"] = pupil["com"] + origin
    out["FacemapTask/PupilCenterSmooth_pupil0/data"] = pupil["com_smooth"] + origin
    out["FacemapTask/Blink_blink0/data"] = proc["blink"][0]
    out["FacemapTask/Running_running0/data"] = proc["running"][0]
    out["FacemapTask/summary_images/average_frame"] = proc["avgframe_reshape"]
    out["FacemapTask/summary_images/average_motion"] = proc["avgmotion_reshape"]
    return out


pupil_roi = 1  # the pupil ROI's index in hand_built_proc()["rois"]


def _expected_regions(proc: dict) -> dict:
    """The regions table: pixel ranges from each ROI's yrange/xrange, bins from yrange_bin/xrange_bin (-1 where
    there is no SVD), saturation of pupil and blink ROIs and the pupil's sigma (NaN otherwise), as the spec says."""
    rois = proc["rois"]
    height, width, bins_y, bins_x = proc["Ly"][0], proc["Lx"][0], proc["LYbin"], proc["LXbin"]
    columns = {
        "roi_name": REGION_NAMES,
        "roi_type": REGION_TYPES,
        "roi_number": [-1, *range(len(rois))],
        "camera_view": [0] * (len(rois) + 1),
        "y_start": [0] + [r["yrange"][0] for r in rois],
        "y_stop": [height] + [r["yrange"][-1] + 1 for r in rois],
        "x_start": [0] + [r["xrange"][0] for r in rois],
        "x_stop": [width] + [r["xrange"][-1] + 1 for r in rois],
        "y_bin_start": [0] + [r["yrange_bin"][0] if "yrange_bin" in r else -1 for r in rois],
        "y_bin_stop": [bins_y] + [r["yrange_bin"][-1] + 1 if "yrange_bin" in r else -1 for r in rois],
        "x_bin_start": [0] + [r["xrange_bin"][0] if "xrange_bin" in r else -1 for r in rois],
        "x_bin_stop": [bins_x] + [r["xrange_bin"][-1] + 1 if "xrange_bin" in r else -1 for r in rois],
    }
    kinds = REGION_TYPES[1:]
    columns["saturation"] = [np.nan] + [
        r["saturation"] if k in ("pupil", "blink") else np.nan for r, k in zip(rois, kinds, strict=True)
    ]
    columns["pupil_sigma"] = [np.nan] + [
        r["pupil_sigma"] if k == "pupil" else np.nan for r, k in zip(rois, kinds, strict=True)
    ]
    return {f"FacemapTask/regions/{name}": np.array(values) for name, values in columns.items()}


def _stored(path, backend: str) -> tuple[dict, dict]:
    """Every dataset under /processing/behavior and the ``rate`` of every series, read with h5py or zarr
    directly (neither pynwb nor this package's reader)."""
    arrays, rates = {}, {}

    def keep(name, read, attrs):
        if name.endswith("/starting_time"):
            rates[name.rsplit("/", 1)[0]] = float(attrs["rate"])
        else:
            arrays[name] = read()

    if backend == "hdf5":
        import h5py

        with h5py.File(path, "r") as f:

            def visit(name, item):
                if isinstance(item, h5py.Dataset):
                    text = h5py.check_string_dtype(item.dtype) is not None
                    keep(name, lambda: item.asstr()[()] if text else item[()], item.attrs)

            f["processing/behavior"].visititems(visit)
    else:
        import zarr

        def walk(group, prefix):
            for name, item in group.items():
                if isinstance(item, zarr.Array):
                    keep(prefix + name, lambda: item[...], item.attrs)
                else:
                    walk(item, f"{prefix}{name}/")

        walk(zarr.open_group(str(path), mode="r")["processing/behavior"], "")
    return arrays, rates


def _assert_stored_equals_proc(path, backend, proc):
    arrays, rates = _stored(path, backend)
    for name, expected in _expected_contents(proc).items():
        assert name in arrays, f"{name} is missing from the {backend} file"
        assert_array_equal(arrays[name], expected, err_msg=name, strict=True)  # values, shape and dtype
    for slot, region in SVD_SLOTS.items():
        for kind, key in (("Motion", "mot"), ("Movie", "mov")):
            name = f"FacemapTask/{kind}SVD_{REGION_NAMES[region]}/singular_values"
            # Facemap's motSv/movSv belong to the last region of its loop (slot 2); for the others the
            # singular values are the projections' norms.
            expected = proc[f"{key}Sv"] if slot == 2 else _projection_norms(proc[f"{key}SVD"][slot])
            assert_allclose(arrays[name], expected, rtol=1e-6, err_msg=name)
    series = {n.split("/")[1] for n in arrays if "SVD_" in n}
    assert series == {f"{k}SVD_{REGION_NAMES[r]}" for k in ("Motion", "Movie") for r in SVD_SLOTS.values()}
    for slot, region in SVD_SLOTS.items():
        for kind in ("Motion", "Movie"):
            name = f"FacemapTask/{kind}SVD_{REGION_NAMES[region]}/region"
            assert_array_equal(arrays[name], [region], err_msg="region row")
        assert_array_equal(arrays[f"FacemapTask/MotionEnergy_{REGION_NAMES[region]}/region"], [region])
    for name, row in (("PupilArea_pupil0", 2), ("PupilCenter_pupil0", 2), ("Blink_blink0", 3), ("Running_running0", 4)):
        assert_array_equal(arrays[f"FacemapTask/{name}/region"], [row], err_msg=f"{name}: region row")
    for name, expected in _expected_regions(proc).items():
        assert_array_equal(arrays[name], expected, err_msg=name)
    assert rates and set(rates.values()) == {30.0}, f"series rates {rates}: the video's rate is 30 frames/s"


def _validation_errors(path, backend: str) -> list:
    """pynwb's validator on the file (a Zarr store through hdmf-zarr's reader)."""
    from pynwb import validate

    if backend == "zarr":
        from hdmf_zarr.nwb import NWBZarrIO

        with NWBZarrIO(str(path), mode="r", load_namespaces=True) as io:
            errors = validate(io=io)
    else:
        errors = validate(path=str(path))
    return list(errors[0] if isinstance(errors, tuple) else errors)


def _assert_results_equal_proc(back, proc):
    """What this package's reader gives back, against the hand-built dict."""
    regions = _expected_regions(proc)
    assert [r.name for r in back.regions] == REGION_NAMES and [r.type for r in back.regions] == REGION_TYPES
    for i, region in enumerate(back.regions):
        y = (regions["FacemapTask/regions/y_start"][i], regions["FacemapTask/regions/y_stop"][i])
        x = (regions["FacemapTask/regions/x_start"][i], regions["FacemapTask/regions/x_stop"][i])
        assert (region.y_range, region.x_range) == (y, x), f"pixel ranges of {region.name}"
    assert back.frame_count == T and back.frame_rate == 30.0  # the video's rate
    assert sorted(back.motion_energy) == sorted(SVD_SLOTS.values())
    assert len(back.motion_svd) == len(back.movie_svd) == len(SVD_SLOTS)
    for slot, region in SVD_SLOTS.items():
        assert_array_equal(back.motion_energy[region][:], proc["motion"][slot], err_msg=f"motion energy, slot {slot}")
        for kind, key in (("motion", "mot"), ("movie", "mov")):
            (svd,) = [s for s in back.svds(kind) if s.region == region]
            what = f"{kind} SVD of slot {slot}"
            assert_array_equal(svd.projections[:], proc[f"{key}SVD"][slot], err_msg=f"{what}: projections")
            masks = np.moveaxis(proc[f"{key}Mask_reshape"][slot], -1, 0)
            assert_array_equal(svd.masks[:], masks, err_msg=f"{what}: masks")
            expected = proc[f"{key}Sv"] if slot == 2 else _projection_norms(proc[f"{key}SVD"][slot])
            assert_allclose(svd.singular_values[:], expected, rtol=1e-6, err_msg=f"{what}: singular values")
    (pupil,) = back.pupils
    assert pupil.region == 2
    fields = (("area", "area"), ("area_smooth", "area_smooth"), ("center", "com"), ("center_smooth", "com_smooth"))
    for field, key in (*fields, ("axes_length", "axlen"), ("axes_direction", "axdir")):
        assert_array_equal(getattr(pupil, field)[:], proc["pupil"][0][key], err_msg=f"pupil {field}")
    assert list(back.blinks) == [3] and list(back.running) == [4]
    assert_array_equal(back.blinks[3][:], proc["blink"][0], err_msg="blink")
    assert_array_equal(back.running[4][:], proc["running"][0], err_msg="running")
    assert_array_equal(back.average_frame[:], proc["avgframe_reshape"], err_msg="average frame")
    assert_array_equal(back.average_motion[:], proc["avgmotion_reshape"], err_msg="average motion")


@pytest.mark.parametrize("backend", ["hdf5", "zarr"])
def test_round_trip_both_backends(proc_file, video, tmp_path, backend):
    """On both backends the file holds the written results field by field (read with h5py or zarr
    themselves), passes pynwb's validator, and the lazy reader gives the same values back."""
    proc = hand_built_proc()
    name = "rt.nwb" if backend == "hdf5" else "rt.nwb.zarr"
    out = convert_facemap_output(proc_file(), [video], tmp_path / name, metadata=METADATA, backend=backend)
    import h5py

    assert out.is_dir() == (backend == "zarr") and h5py.is_hdf5(out) == (backend == "hdf5")
    _assert_stored_equals_proc(out, backend, proc)
    assert _validation_errors(out, backend) == []
    if backend == "hdf5":  # nwbinspector reads HDF5 files only
        assert serious_inspector_messages(out) == []
    with read_facemap_nwb(out, lazy=True) as back:
        _assert_results_equal_proc(back, proc)


def test_signal_selection_and_components(proc_file, video, tmp_path):
    out = tmp_path / "some.nwb"
    code = main(
        [
            "convert",
            str(proc_file()),
            "--video",
            str(video),
            "-o",
            str(out),
            "--signals",
            "motion_svd,pupil",
            "--n-components",
            "2",
            "--metadata",
            str(metadata_file(tmp_path)),
        ]
    )
    assert code == 0
    back = read_facemap_nwb(out)
    assert back.motion_energy == {} and back.movie_svd == [] and back.blinks == {}
    assert [s.n_components for s in back.motion_svd] == [2, 2, 2]
    assert len(back.pupils) == 1


def test_malformed_results_file(tmp_path, video):
    bad = tmp_path / "bad_proc.npy"
    np.save(bad, {"sbin": 2, "Ly": [60]}, allow_pickle=True)
    with pytest.raises(ValueError, match=r"bad_proc.npy' is not a Facemap output this loader understands"):
        load_facemap_results(bad)
    other = tmp_path / "notes_proc.txt"
    other.write_text("x")
    with pytest.raises(ValueError, match="expected a '_proc.npy' or '_proc.mat'"):
        load_facemap_results(other)


def test_malicious_results_file_runs_no_code_and_leaves_no_output(tmp_path, video, capsys):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            import os

            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil_proc.npy"
    np.save(evil, {"sbin": 2, "motion": [Payload()]}, allow_pickle=True)
    out = tmp_path / "evil.nwb"
    assert main(["convert", str(evil), "--video", str(video), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "evil_proc.npy" in err and "os" in err and "system" in err
    assert not marker.exists(), "the pickled code ran"
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))
