"""Damaged and impossible Facemap outputs through ``facemap-nwb convert``: every one refused cleanly.

Each case goes through the command line with :func:`tests.adversarial.refuse`: exit code 1, one
message naming the file, no traceback, nothing left behind. The damaged files are made from a
Facemap-shaped dict built by hand (:func:`tests.test_facemap_model.hand_built_proc`, no Facemap
needed, so the numpy-2 environment runs them too) and from Facemap's own ``_proc.npy`` and
``_proc.mat`` of a synthetic video (``@pytest.mark.facemap``, made once per session).
Live pickle payloads must be refused without running: a marker file they would create stays absent.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from facemap_nwb.cli import main
from facemap_nwb.loaders.facemap import FacemapOutputError, load_facemap_results
from facemap_nwb.synthetic import make_face_video

from .adversarial import refuse
from .mutations import mutate_bytes
from .conftest import CREATION, trusted_proc
from .test_facemap_model import T, hand_built_proc
from .test_recording_nwb import metadata_file

START = "2024-01-01T00:00:00+00:00"


def convert_argv(proc: Path, video: Path, folder: Path) -> list:
    meta = metadata_file(folder)
    return ["convert", proc, "--video", video, "-o", folder / "out.nwb", "--session-start", START, "--metadata", meta]


def refuse_proc(proc: Path, video: Path, folder: Path, capsys, *names: str):
    """Convert ``proc`` and check the refusal names the file (and each of ``names``)."""
    result = refuse(convert_argv(proc, video, folder), folder, names=[proc.name, *names], capsys=capsys)
    assert "error:" in result.stderr
    return result


@pytest.fixture(scope="module")
def hand_video(tmp_path_factory) -> Path:
    """The 60 x 80, 40-frame video hand_built_proc() describes."""
    folder = tmp_path_factory.mktemp("hand_video")
    return make_face_video(folder / "face.mp4", n_frames=T, height=60, width=80, creation_time=CREATION)


def write_proc(path: Path, proc) -> Path:
    np.save(path, proc, allow_pickle=True)
    return path


# ------------------------------------------------------------------------------------------------ mutations
# Each takes a deep copy of a proc dict (hand-built or Facemap's own) and damages it in place. Facemap's
# slot 0 is the full frame and slot 1 the first motion ROI in both; ROI 0 is a motion ROI in both.


def _first(proc, rind):
    return next(i for i, r in enumerate(proc["rois"]) if r["rind"] == rind)


def _set(key, value):
    def mutate(proc):
        proc[key] = value

    return mutate


def _drop(key):
    def mutate(proc):
        del proc[key]

    return mutate


def _item(key, index, change):
    def mutate(proc):
        proc[key][index] = change(proc[key][index])

    return mutate


def _pupil(key, change):
    def mutate(proc):
        proc["pupil"][0][key] = change(proc["pupil"][0][key])

    return mutate


def _roi(rind, key, change):
    def mutate(proc):
        roi = proc["rois"][_first(proc, rind)]
        roi[key] = change(roi.get(key))

    return mutate


def _with_inf(array):
    array = np.array(array, copy=True)
    array.reshape(-1)[array.size // 2] = np.inf
    return array


def _with_nan(array):
    array = np.array(array, copy=True)
    array.reshape(-1)[0] = np.nan
    return array


def _drop_both_masks(proc):
    del proc["motMask_reshape"], proc["motMask"]


def _extra_pupil(proc):
    proc["pupil"].append(copy.deepcopy(proc["pupil"][0]))


def _motion_masks_of_wrong_bins(proc):
    proc["motMask_reshape"][1] = proc["motMask_reshape"][1][:-1]
    proc["motMask"][1] = proc["motMask"][1][: -proc["motMask_reshape"][1].shape[1]]


def _roi_outside(proc):
    roi = proc["rois"][_first(proc, 0)]
    roi["xrange"] = roi["xrange"] + (proc["Lx"][0] - roi["xrange"][0] - 2)


def _bins_outside(proc):
    roi = proc["rois"][_first(proc, 1)]
    roi["yrange_bin"] = roi["yrange_bin"] + proc["Ly"][0]


def _all_traces_shorter(proc):
    for key in ("motion", "motSVD", "movSVD", "blink", "running"):
        proc[key] = [a[:-3] for a in proc[key]]
    proc["pupil"] = [{k: v[:-3] for k, v in p.items()} for p in proc["pupil"]]


MUTATIONS = {
    # keys removed
    "no_sbin": _drop("sbin"),
    "no_Ly": _drop("Ly"),
    "no_Lx": _drop("Lx"),
    "no_motion": _drop("motion"),
    "no_rois": _drop("rois"),
    "no_pupil": _drop("pupil"),
    "no_blink": _drop("blink"),
    "no_running": _drop("running"),
    "no_masks": _drop_both_masks,
    "no_pupil_area": lambda p: p["pupil"][0].pop("area"),
    "no_roi_yrange": lambda p: p["rois"][0].pop("yrange"),
    "no_roi_rind": lambda p: p["rois"][0].pop("rind"),
    # the spatial bin
    "sbin_0": _set("sbin", 0),
    "sbin_-1": _set("sbin", -1),
    "sbin_1e6": _set("sbin", 10**6),
    "sbin_float_1e6": _set("sbin", 1e6),
    "sbin_inf": _set("sbin", float("inf")),
    "sbin_nan": _set("sbin", float("nan")),
    "sbin_text": _set("sbin", "4"),
    "sbin_none": _set("sbin", None),
    "sbin_list": _set("sbin", [2]),
    "sbin_bool": _set("sbin", True),
    "sbin_fraction": _set("sbin", 2.5),
    # frame sizes
    "Ly_text": _set("Ly", "60"),
    "Ly_none": _set("Ly", None),
    "Ly_empty": _set("Ly", []),
    "Ly_negative": _set("Ly", [-60]),
    "Ly_zero": _set("Ly", [0]),
    "Ly_nested": _set("Ly", [[60]]),
    "Lx_nan": _set("Lx", [float("nan")]),
    "Lx_two_views": _set("Lx", [80, 80]),
    "fullSVD_text": _set("fullSVD", "yes"),
    "LYbin_wrong": _set("LYbin", 31),
    # motion energy
    "motion_text": _set("motion", "motion"),
    "motion_dict": _set("motion", {"0": np.zeros(3)}),
    "motion_truncated": _item("motion", 0, lambda a: a[:-1]),
    "motion_2d": _item("motion", 0, lambda a: np.stack([a, a], 1)),
    "motion_complex": _item("motion", 0, lambda a: a.astype(np.complex64) + 1j),
    "motion_inf": _item("motion", 1, _with_inf),
    "motion_nan": _item("motion", 0, _with_nan),
    "motion_strings": _item("motion", 0, lambda a: a.astype(str)),
    "motion_objects": _item("motion", 0, lambda a: a.astype(object)),
    "motion_list": _item("motion", 0, lambda a: a.tolist()),
    "motion_none_item": _item("motion", 0, lambda a: None),
    "motion_too_many": lambda p: p["motion"].extend(p["motion"] * 3),
    "motion_float64_overflow": _item("motion", 0, lambda a: np.full(a.shape, 1e300)),
    # SVDs
    "motSVD_transposed": _item("motSVD", 0, lambda a: np.ascontiguousarray(a.T)),
    "motSVD_truncated": _item("motSVD", 1, lambda a: a[:-2]),
    "motSVD_inf": _item("motSVD", 0, _with_inf),
    "motSVD_1d": _item("motSVD", 1, lambda a: a[:, 0]),
    "movSVD_complex": _item("movSVD", 0, lambda a: a * (1 + 1j)),
    "motMask_wrong_bins": _motion_masks_of_wrong_bins,
    "motMask_wrong_components": _item("motMask_reshape", 0, lambda a: a[:, :, :-1]),
    "motMask_nan": _item("motMask_reshape", 1, _with_nan),
    "motMask_objects": _item("motMask_reshape", 0, lambda a: a.astype(object)),
    "movMask_2d_and_no_flat_masks": lambda p: (
        p["movMask_reshape"].__setitem__(0, p["movMask_reshape"][0][:, :, 0]),
        p.pop("movMask"),
    ),
    "motSv_inf": lambda p: p.__setitem__("motSv", _with_inf(p["motSv"]) + 1),
    # pupil, blink, running
    "pupil_area_truncated": _pupil("area", lambda a: a[:-1]),
    "pupil_area_inf": _pupil("area", _with_inf),
    "pupil_com_3_columns": _pupil("com", lambda a: np.concatenate([a, a[:, :1]], 1)),
    "pupil_axdir_2d": _pupil("axdir", lambda a: a[:, 0]),
    "pupil_axlen_transposed": _pupil("axlen", lambda a: np.ascontiguousarray(a.T)),
    "pupil_text": _pupil("area_smooth", lambda a: "large"),
    "pupil_not_a_dict": lambda p: p.__setitem__("pupil", [np.zeros(3)]),
    "pupil_dict_not_list": lambda p: p.__setitem__("pupil", p["pupil"][0]),
    "pupil_too_many": _extra_pupil,
    "blink_truncated": _item("blink", 0, lambda a: a[:-1]),
    "blink_nan": _item("blink", 0, _with_nan),
    "blink_2d": _item("blink", 0, lambda a: a[:, None]),
    "running_1d": _item("running", 0, lambda a: a[:, 0]),
    "running_3_columns": _item("running", 0, lambda a: np.concatenate([a, a[:, :1]], 1)),
    "running_inf": _item("running", 0, _with_inf),
    "running_wrong_length_list": lambda p: p["running"].append(p["running"][0]),
    "all_traces_shorter_than_video": _all_traces_shorter,
    # summary images
    "avgframe_wrong_shape": _set("avgframe_reshape", np.zeros((30, 41), np.float32)),
    "avgframe_transposed": lambda p: p.__setitem__("avgframe_reshape", np.ascontiguousarray(p["avgframe_reshape"].T)),
    "avgmotion_inf": lambda p: p.__setitem__("avgmotion_reshape", _with_inf(p["avgmotion_reshape"])),
    "avgframe_complex": lambda p: p.__setitem__("avgframe_reshape", p["avgframe_reshape"] + 0j),
    # ROIs
    "roi_outside_frame": _roi_outside,
    "roi_negative": _roi(0, "yrange", lambda a: a - a[0] - 3),
    "roi_not_contiguous": _roi(0, "yrange", lambda a: a * 2),
    "roi_text_range": _roi(0, "xrange", lambda a: "0:10"),
    "roi_unknown_kind": _roi(2, "rind", lambda v: 7),
    "roi_second_camera": _roi(3, "ivid", lambda v: 1),
    "roi_saturation_300": _roi(0, "saturation", lambda v: 300.0),
    "roi_pupil_sigma_0": _roi(0, "pupil_sigma", lambda v: 0.0),
    "roi_bins_outside": _bins_outside,
    "roi_not_a_dict": lambda p: p["rois"].__setitem__(0, "motion"),
    "rois_dict": lambda p: p.__setitem__("rois", p["rois"][0]),
    "filenames_numbers": _set("filenames", [[1]]),
}
# The Facemap key each refusal must name (beside the file), where one is unambiguous.
NAMED = {
    "sbin_1e6": "sbin",
    "sbin_text": "sbin",
    "Ly_text": "Ly",
    "motion_complex": "motion[0]",
    "motion_truncated": "motion[0]",
    "motion_2d": "motion[0]",
    "motion_inf": "motion[1]",
    "motSVD_transposed": "motSVD[0]",
    "pupil_area_truncated": "pupil[0]['area']",
    "blink_nan": "blink[0]",
    "running_1d": "running[0]",
    "avgframe_wrong_shape": "avgframe_reshape",
    "roi_outside_frame": "rois[",
    "roi_bins_outside": "yrange_bin",
}


def damaged(base: dict, name: str) -> dict:
    proc = copy.deepcopy(base)
    MUTATIONS[name](proc)
    return proc


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_damaged_hand_built_proc_is_refused(name, hand_video, tmp_path, capsys):
    proc = write_proc(tmp_path / f"{name}_proc.npy", damaged(hand_built_proc(), name))
    names = [NAMED[name]] if name in NAMED else []
    refuse_proc(proc, hand_video, tmp_path, capsys, *names)


def test_the_undamaged_hand_built_proc_converts(hand_video, tmp_path, capsys):
    proc = write_proc(tmp_path / "good_proc.npy", hand_built_proc())
    assert main([str(a) for a in convert_argv(proc, hand_video, tmp_path)]) == 0, capsys.readouterr().err
    assert (tmp_path / "out.nwb").exists()


def test_nan_in_the_pupil_fit_is_kept_and_counted(hand_video, tmp_path, capsys):
    # Facemap writes NaN where the pupil fit fails (blank frames): legitimate, kept and counted.
    proc = hand_built_proc()
    proc["pupil"][0]["area"][:3] = np.nan
    proc["pupil"][0]["com"][5] = np.nan
    path = write_proc(tmp_path / "blank_proc.npy", proc)
    results = load_facemap_results(path)
    assert results.missing_values() == {"pupil0 area": 3, "pupil0 center": 2}
    assert main([str(a) for a in convert_argv(path, hand_video, tmp_path)]) == 0, capsys.readouterr().err


def test_results_of_another_video_are_refused(tmp_path, capsys):
    video = make_face_video(tmp_path / "other.mp4", n_frames=T, height=64, width=80, creation_time=CREATION)
    proc = write_proc(tmp_path / "face_proc.npy", hand_built_proc())
    refuse_proc(proc, video, tmp_path, capsys, "other.mp4")


def test_direct_api_raises_the_loader_error_with_file_and_key(tmp_path):
    path = write_proc(tmp_path / "c_proc.npy", damaged(hand_built_proc(), "motion_complex"))
    with pytest.raises(FacemapOutputError) as caught:
        load_facemap_results(path)
    assert caught.value.key == "motion[0]" and str(path) in str(caught.value)
    assert "imaginary" in str(caught.value) and isinstance(caught.value, ValueError)


# ------------------------------------------------------------------------------------------- whole files


def _npy_bytes(proc) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, proc, allow_pickle=True)
    return buffer.getvalue()


def _header_length(data: bytes) -> int:
    f = io.BytesIO(data)
    npy_format.read_magic(f)
    npy_format.read_array_header_1_0(f)
    return f.tell()


def _flip(data: bytes, position: int) -> bytes:
    out = bytearray(data)
    out[position] ^= 0xFF
    return bytes(out)


def _whole_file_cases(data: bytes) -> dict[str, bytes]:
    start = _header_length(data)
    holder = np.empty(1, dtype=object)
    holder[0] = [1, 2]
    return {
        "empty": b"",
        "truncated_header": data[:20],
        "truncated_10pc": data[: len(data) // 10],
        "truncated_half": data[: len(data) // 2],
        "truncated_last_byte": data[:-1],
        "flip_magic": _flip(data, 1),
        "flip_header": _flip(data, 12),
        "flip_pickle_protocol": _flip(data, start + 1),
        "flip_pickle_first_opcode": _flip(data, start + 2),
        "stop_replaced": data[:-1] + b"\xff",
        "random_bytes": np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes(),
        "plain_float_array": _npy_bytes(np.arange(12.0).reshape(3, 4)),
        "object_array_of_a_list": _npy_bytes(holder),
        "zero_d_string": _npy_bytes(np.array("not a dict", dtype=object)),
        "pickled_list": data[:start] + pickle.dumps([1, 2, 3], protocol=3),
    }


WHOLE_FILE = list(_whole_file_cases(_npy_bytes(hand_built_proc())))


@pytest.mark.parametrize("name", WHOLE_FILE)
def test_damaged_whole_file_is_refused(name, hand_video, tmp_path, capsys):
    path = tmp_path / f"{name}_proc.npy"
    path.write_bytes(_whole_file_cases(_npy_bytes(hand_built_proc()))[name])
    refuse_proc(path, hand_video, tmp_path, capsys)


# ------------------------------------------------------------------------------------------------- .mat


def _facemap_mat(path, proc: dict):
    """A _proc.mat the way Facemap's save() writes one (lists of arrays split into key_0, key_1, ...)."""
    from scipy.io import savemat

    flat = {}
    for key, value in proc.items():
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            for i, item in enumerate(value):
                flat[f"{key}_{i}"] = item
        else:
            flat[key] = value if value is not None else 0
    savemat(path, flat)
    return path  # a path, or the file object given


def _v73(path: Path) -> Path:
    import h5py

    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."
    with h5py.File(path, "w", userblock_size=512) as f:
        f["Ly"] = np.array([[60.0]])
    with open(path, "r+b") as f:
        f.write(header.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    return path


def _mat_cases(folder: Path, proc: dict) -> dict:
    good = _facemap_mat(folder / "whole.mat", proc)
    data = good.read_bytes()
    cases = {
        "empty": b"",
        "truncated_header": data[:60],
        "truncated_half": data[: len(data) // 2],
        "truncated_last_bytes": data[:-7],
        "random_bytes": np.random.default_rng(2).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "text": b"Ly = 60\n" * 40,
        "v73_hdf5": _v73(folder / "v73.mat").read_bytes(),
    }
    for name, change in {
        "no_Ly": _drop("Ly"),
        "Ly_text": _set("Ly", "60"),
        "sbin_text": _set("sbin", "two"),
        "motion_complex": _item("motion", 0, lambda a: a + 1j),
        "masks_wrong_shape": _item("motMask_reshape", 1, lambda a: a[:-1]),
    }.items():
        altered = copy.deepcopy(proc)
        change(altered)
        cases[name] = _facemap_mat(folder / f"{name}.mat", altered).read_bytes()
    # Keys numbered with a gap (motion_0, motion_2): the slots would shift silently.
    gap = _facemap_mat(folder / "gap.mat", proc)
    cases["numbered_with_gap"] = gap.read_bytes().replace(b"motion_1", b"motion_5")
    return cases


MAT_CASES = [
    "empty",
    "truncated_header",
    "truncated_half",
    "truncated_last_bytes",
    "random_bytes",
    "text",
    "v73_hdf5",
    "no_Ly",
    "Ly_text",
    "sbin_text",
    "motion_complex",
    "masks_wrong_shape",
    "numbered_with_gap",
]


@pytest.fixture(scope="module")
def mat_cases(tmp_path_factory):
    return _mat_cases(tmp_path_factory.mktemp("mat_cases"), hand_built_proc())


@pytest.mark.parametrize("name", MAT_CASES)
def test_damaged_mat_is_refused(name, mat_cases, hand_video, tmp_path, capsys):
    path = tmp_path / f"{name}_proc.mat"
    path.write_bytes(mat_cases[name])
    result = refuse_proc(path, hand_video, tmp_path, capsys)
    if name == "v73_hdf5":
        assert "v7.3" in result.stderr and "not supported" in result.stderr


def test_undamaged_mat_converts(mat_cases, hand_video, tmp_path, capsys):
    path = tmp_path / "good_proc.mat"
    path.write_bytes(_facemap_mat(tmp_path / "w.mat", hand_built_proc()).read_bytes())
    assert main([str(a) for a in convert_argv(path, hand_video, tmp_path)]) == 0, capsys.readouterr().err


# --------------------------------------------------------------------------------------- live payloads


def _command(marker: Path) -> str:
    code = f"open({str(marker)!r}, 'w').close()"
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


class _System:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _pickled(value, protocol: int) -> bytes:
    holder = np.empty((), dtype=object)
    holder[()] = value
    return pickle.dumps(holder, protocol=protocol)


def _payloads(marker: Path) -> dict[str, bytes]:
    """Pickles that run ``os.system`` under np.load, each through another instruction."""
    command = _command(marker).encode()
    quoted = repr(command.decode()).encode()
    module = os.system.__module__.encode()  # posix
    out = {f"reduce_protocol_{p}": _pickled({"motion": [_System(command.decode())]}, p) for p in range(6)}
    length = len(command).to_bytes(4, "little")
    out.update(
        {
            # GLOBAL 'posix system', a text string, TUPLE1, REDUCE
            "global_reduce": b"c" + module + b"\nsystem\nS" + quoted + b"\n\x85R.",
            # STACK_GLOBAL: module and name as strings on the stack
            "stack_global": b"\x80\x04\x8c"
            + bytes([len(module)])
            + module
            + b"\x8c\x06system\x93X"
            + length
            + command
            + b"\x85R.",
            # INST: MARK, args, 'i' module name -> calls module.name(*args)
            "inst": b"(S" + quoted + b"\ni" + module + b"\nsystem\n.",
            # OBJ: MARK, callable, args, 'o'
            "obj": b"(c" + module + b"\nsystem\nS" + quoted + b"\no.",
            # NEWOBJ: cls.__new__(cls, *args) of a class the file names; refused as a global all the same
            "newobj": b"\x80\x02csubprocess\nPopen\nS" + quoted + b"\n\x85\x81.",
            # BUILD with a __setstate__ of a refused class, nested deep inside a dict
            "nested_in_dict": _pickled({"rois": [{"extra": [_System(command.decode())]}]}, 4),
        }
    )
    return out


PAYLOADS = list(_payloads(Path("/x")))


@pytest.mark.skipif(os.name != "posix", reason="the payloads call os.system through a POSIX shell")
@pytest.mark.parametrize("name", PAYLOADS)
def test_live_payload_is_refused_without_running(name, hand_video, tmp_path, capsys):
    marker = tmp_path / "pwned"
    pickled = _payloads(marker)[name]
    path = tmp_path / f"{name}_proc.npy"
    with open(path, "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        f.write(pickled)
    result = refuse_proc(path, hand_video, tmp_path, capsys)
    assert not marker.exists(), "the pickled code ran"
    assert "Refusing to load" in result.stderr


@pytest.mark.skipif(os.name != "posix", reason="the payloads call os.system through a POSIX shell")
def test_payloads_are_live(tmp_path):
    # Control: numpy's own loader runs them, so the refusals above are real refusals.
    names = ["reduce_protocol_0", "reduce_protocol_5", "stack_global", "inst", "obj"]
    for name in names:
        marker = tmp_path / f"pwned_{name}"
        path = tmp_path / f"{name}_proc.npy"
        with open(path, "wb") as f:
            npy_format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
            f.write(_payloads(marker)[name])
        code = "import sys, numpy\ntry:\n    numpy.load(sys.argv[1], allow_pickle=True)\nexcept Exception:\n    pass"
        subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, timeout=120)
        assert marker.exists(), f"control failed: np.load did not run the {name} payload"


# ------------------------------------------------------------------------------------- Facemap's own output

FACEMAP_MUTATIONS = [
    "sbin_0",
    "sbin_1e6",
    "sbin_nan",
    "sbin_text",
    "Ly_text",
    "motion_truncated",
    "motion_2d",
    "motion_complex",
    "motSVD_inf",
    "motMask_wrong_bins",
    "pupil_axdir_2d",
    "blink_truncated",
    "running_1d",
    "avgframe_wrong_shape",
    "roi_outside_frame",
    "roi_bins_outside",
    "no_Ly",
    "all_traces_shorter_than_video",
]


@pytest.fixture(scope="module")
def facemap_base(synthetic_facemap):
    pytest.importorskip("facemap", reason="needs Facemap (the 'facemap' extra)")
    return trusted_proc(synthetic_facemap["npy"])


@pytest.mark.facemap
@pytest.mark.parametrize("name", FACEMAP_MUTATIONS)
def test_damaged_facemap_output_is_refused(name, facemap_base, synthetic_facemap, tmp_path, capsys):
    path = write_proc(tmp_path / f"{name}_proc.npy", damaged(facemap_base, name))
    names = [NAMED[name]] if name in NAMED else []
    refuse_proc(path, synthetic_facemap["video"], tmp_path, capsys, *names)


@pytest.mark.facemap
@pytest.mark.parametrize("name", ["truncated_half", "truncated_last_byte", "flip_pickle_first_opcode", "stop_replaced"])
def test_damaged_facemap_file_is_refused(name, synthetic_facemap, tmp_path, capsys):
    pytest.importorskip("facemap", reason="needs Facemap (the 'facemap' extra)")
    path = tmp_path / f"{name}_proc.npy"
    path.write_bytes(_whole_file_cases(synthetic_facemap["npy"].read_bytes())[name])
    refuse_proc(path, synthetic_facemap["video"], tmp_path, capsys)


@pytest.mark.facemap
@pytest.mark.parametrize("name", ["truncated_half", "truncated_last_bytes", "no_Ly", "Ly_text", "motion_complex"])
def test_damaged_facemap_mat_is_refused(name, synthetic_facemap, tmp_path, capsys):
    pytest.importorskip("facemap", reason="needs Facemap (the 'facemap' extra)")
    data = synthetic_facemap["mat"].read_bytes()
    if name.startswith("truncated"):
        data = data[: len(data) // 2] if name == "truncated_half" else data[:-7]
    else:
        proc = trusted_proc(synthetic_facemap["npy"])
        MUTATIONS[name](proc)
        data = _facemap_mat(tmp_path / "m.mat", proc).read_bytes()
    path = tmp_path / f"{name}_proc.mat"
    path.write_bytes(data)
    refuse_proc(path, synthetic_facemap["video"], tmp_path, capsys)


@pytest.mark.facemap
def test_facemap_output_itself_converts(synthetic_facemap, tmp_path, capsys):
    pytest.importorskip("facemap", reason="needs Facemap (the 'facemap' extra)")
    for kind in ("npy", "mat"):
        argv = convert_argv(synthetic_facemap[kind], synthetic_facemap["video"], tmp_path)
        argv[5] = tmp_path / f"out_{kind}.nwb"
        assert main([str(a) for a in argv]) == 0, capsys.readouterr().err


# ----------------------------------------------------------------------------- damaged .mat: no crash, ever


def _small_mat(folder: Path) -> bytes:
    return _facemap_mat(folder / "small.mat", hand_built_proc(frames=6)).read_bytes()


def _load_or_refuse(path: Path) -> None:
    try:
        load_facemap_results(path)
    except ValueError as error:  # the loader's own refusals (ProcFileError, FacemapOutputError)
        assert str(path) in str(error)


@pytest.mark.parametrize(
    "damage",
    [lambda d: d[:337] + d[345:], lambda d: d[:168233] + bytes([206]) + d[168234:]],
    ids=["sizes_shifted", "array_class_byte"],
)
def test_mat_damage_that_crashed_scipy_is_refused(damage, tmp_path):
    # Two damaged files on which SciPy's compiled reader died with a segmentation fault (found by
    # fuzzing): the element scan refuses them before SciPy reads anything.
    path = tmp_path / "crash_proc.mat"
    path.write_bytes(damage(_small_mat(tmp_path)))
    with pytest.raises(ValueError, match="truncated or corrupt") as caught:
        load_facemap_results(path)
    assert str(path) in str(caught.value)


try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.configuration import set_hypothesis_home_dir

    # Hypothesis caches what it learns in a folder; keep it out of the repository.
    set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "facemap-nwb-hypothesis"))
except ImportError:  # the property test is then skipped
    given = None

if given is None:

    @pytest.mark.skip(reason="property tests need hypothesis (pip install hypothesis)")
    def test_mat_properties_need_hypothesis():
        pass

else:

    @st.composite
    def _damaged_mat(draw, base: bytes):
        return mutate_bytes(draw, base)

    _MAT_BASE = _facemap_mat(io.BytesIO(), hand_built_proc(frames=6)).getvalue()

    @settings(
        max_examples=200, deadline=2000, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=_damaged_mat(_MAT_BASE))
    def test_damaged_mat_loads_or_is_refused_cleanly(tmp_path, data):
        path = tmp_path / "damaged_proc.mat"
        path.write_bytes(data)
        _load_or_refuse(path)
