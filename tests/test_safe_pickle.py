"""The safe ``*_proc.npy`` loader: Facemap results load exactly; crafted pickles are refused before any code runs."""

from __future__ import annotations

import builtins
import io
import os
import pickle
import pickletools
import shlex
import subprocess
import sys
import tempfile
from collections import OrderedDict

import numpy as np
import pytest
from numpy.lib import format as npy_format
from numpy.testing import assert_array_equal

from facemap_nwb.loaders.safe_pickle import ProcFileError, UnsafePickleError, load_proc_npy

from .mutations import mutate_bytes

# numpy's own pickling callables, taken from what numpy itself pickles so the crafted files name them
# exactly as this numpy does (numpy.core.* under numpy 1, numpy._core.* under numpy 2).
RECONSTRUCT = np.empty(1).__reduce__()[0]
SCALAR = np.float64(1).__reduce__()[0]
FROMBUFFER = np.empty(1).__reduce_ex__(5)[0]


class Reduce:
    """Pickles as ``func(*args)``, followed by a BUILD with ``state`` when one is given."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def facemap_like() -> dict:
    """A dict shaped like Facemap's proc dict, with every kind of value Facemap stores."""
    rng = np.random.default_rng(7)
    avgframe = rng.random((101, 99), dtype=np.float32)
    shared = rng.random(20)
    return {
        "filenames": [
            ["/data/cam0_part1.mp4", "/data/cam0_part2.mp4"],
            ["/data/cam1_part1.mp4", "/data/cam1_part2.mp4"],
        ],
        "save_path": "/data/out",
        "Ly": [406, 240],
        "Lx": [396, 320],
        "sbin": 4,
        "fullSVD": True,
        "save_mat": False,
        "iframes": None,
        "Lybin": np.array([101, 60], dtype=np.int32),
        "sybin": np.array([0, 101]),
        "LYbin": np.int64(161),
        "LXbin": np.int64(99),
        "avgframe": [avgframe, rng.random((60, 80), dtype=np.float32)],
        "avgframe_reshape": avgframe.copy(),
        "motion": [rng.random(50, dtype=np.float32) for _ in range(3)],
        "motSv": rng.random(10, dtype=np.float32),
        "motSVD": [rng.standard_normal((50, 10), dtype=np.float32) for _ in range(3)],
        "motMask_reshape": [rng.standard_normal((19, 30, 10), dtype=np.float32) for _ in range(3)],
        "motMask_fortran": np.asfortranarray(rng.standard_normal((30, 10), dtype=np.float32)),
        "motMask_strided": rng.standard_normal((30, 20), dtype=np.float32)[:, ::2],
        "empty": np.zeros((0, 5), dtype=np.float32),
        "pupil": [
            {
                "area": rng.random(50),
                "com": rng.random((50, 2)),
                "axdir": rng.random((50, 2, 2)),
                "axlen": rng.random((50, 2)),
                "area_smooth": rng.random(50),
                "com_smooth": rng.random((50, 2)),
            }
        ],
        "running": [rng.random((50, 2))],
        "blink": [rng.random(50)],
        "rois": [
            {
                "rind": 1,
                "rtype": "motion SVD",
                "iROI": 0,
                "ivid": 0,
                "color": (255, 0, 0),
                "yrange": np.arange(10, 90, dtype=np.int32),
                "xrange": np.arange(5, 125, dtype=np.int32),
                "saturation": 0.0,
                "pupil_sigma": 2.0,
                "ellipse": rng.random((80, 120)) > 0.5,
            },
            {
                "rind": 0,
                "rtype": "Pupil",
                "iROI": 1,
                "ivid": 0,
                "color": (0, 255, 0),
                "yrange": np.arange(30, dtype=np.int32),
                "xrange": np.arange(40, dtype=np.int32),
                "saturation": 80.0,
                "pupil_sigma": 2.0,
                "ellipse": np.zeros((30, 40), dtype=bool),
            },
        ],
        # The same array twice: np.load keeps it one object, and so must the loader.
        "shared_a": shared,
        "shared_b": shared,
    }


def assert_same(actual, expected, where="proc"):
    """Compare recursively: same types, same keys and lengths, arrays equal in dtype, shape and values."""
    assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"
    if isinstance(expected, dict):
        assert list(actual) == list(expected), where
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for index, (a, e) in enumerate(zip(actual, expected)):
            assert_same(a, e, f"{where}[{index}]")
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, where
        if expected.dtype.hasobject:
            for a, e in zip(actual.ravel(), expected.ravel()):
                assert_same(a, e, f"{where}[...]")
        else:
            assert_array_equal(actual, expected, err_msg=where)
    elif isinstance(expected, (set, frozenset)):
        assert actual == expected, where
    else:
        assert actual == expected, where


def object_array(value) -> np.ndarray:
    holder = np.empty((), dtype=object)
    holder[()] = value
    return holder


def write_npy(path, pickled: bytes):
    """Write an .npy file by hand: the header of a 0-d object array, then ``pickled``."""
    with open(path, "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        f.write(pickled)
    return path


def write_pickle(path, obj, protocol=3):
    return write_npy(path, pickle.dumps(object_array(obj), protocol=protocol))


def np_load_in_subprocess(path):
    """Load ``path`` the unsafe way, in a separate Python, as the control for the refusal tests."""
    code = "import sys, numpy; numpy.load(sys.argv[1], allow_pickle=True)"
    return subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------------------------------------
# Real results load exactly
# ---------------------------------------------------------------------------------------------


def test_facemap_like_dict_round_trips(tmp_path):
    expected = facemap_like()
    path = tmp_path / "cam_proc.npy"
    np.save(path, expected)

    loaded = load_proc_npy(path)

    assert_same(loaded, expected)
    assert_same(loaded, np.load(path, allow_pickle=True).item())
    assert loaded["shared_a"] is loaded["shared_b"]
    assert loaded["avgframe"][0].flags.writeable
    assert load_proc_npy(str(path)).keys() == expected.keys()


@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_pickle_protocols_load(tmp_path, protocol):
    expected = facemap_like()
    pickled = pickle.dumps(object_array(expected), protocol=protocol)
    path = write_npy(tmp_path / f"p{protocol}_proc.npy", pickled)

    loaded = load_proc_npy(path)

    assert_same(loaded, expected)
    assert_same(loaded, pickle.loads(pickled).item())


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_plain_values_of_every_kind_load(tmp_path, protocol):
    expected = {
        "complex": 1 + 2j,
        "big_int": 2**100,
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "ordered": OrderedDict([("b", 1), ("a", [np.arange(3)])]),
        "bytes": b"\x00\xffraw",
        "empty_bytes": b"",
        "bytearray": bytearray(b"xyz"),
        "float64": np.float64(2.5),
        "bool_": np.bool_(True),
        "str_": np.str_("caf\u00e9"),
        "dtype": np.dtype(">i4"),
        "unicode": np.array(["a", "bcd"]),
        "big_endian": np.arange(300, dtype=">f8"),
        "object_array": np.array([[1, "a"], [None, [1, 2]]], dtype=object),
        "nested_arrays": np.array([np.arange(2), np.arange(3.0)], dtype=object),
        "tuple_key": {(1, "a"): "value"},
    }
    pickled = pickle.dumps(object_array(expected), protocol=protocol)
    path = write_npy(tmp_path / "plain_proc.npy", pickled)

    loaded = load_proc_npy(path)

    assert_same(loaded, pickle.loads(pickled).item())
    # numpy itself unpickles a big-endian array as a native one; everything else is as saved.
    assert_array_equal(loaded.pop("big_endian"), expected.pop("big_endian"))
    assert_same(loaded, expected)
    assert loaded["dtype"] == np.dtype(">i4")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (np.datetime64("2024-01-02T03:04:05", "ns"), "datetime data type"),
        (np.array(["2024-01-01", "2024-06-01"], dtype="M8[D]"), "datetime data type"),
        (np.array([1, 2], dtype="m8[s]"), "timedelta data type"),
        (np.array([(1, 2.0), (3, 4.0)], dtype=[("x", "<i4"), ("y", "<f8")]), "void or structured"),
        (np.zeros(2, dtype=[("xy", "<f4", (2,))]), "void or structured"),
        (np.zeros(2, dtype="V8"), "void or structured"),
        (np.void(b"abcd"), "void or structured"),
    ],
    ids=["datetime_scalar", "datetimes", "timedeltas", "structured", "subarray_field", "void", "void_scalar"],
)
@pytest.mark.parametrize("protocol", [2, 5])
def test_data_types_facemap_never_writes_are_refused(tmp_path, value, match, protocol):
    # Facemap writes bool, integer, float, complex, bytes, str and object arrays only; the loader keeps
    # to those, so what it accepts stays small enough to audit.
    path = write_pickle(tmp_path / "dtype_proc.npy", {"x": value}, protocol=protocol)

    with pytest.raises(UnsafePickleError, match=match) as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value) and "Facemap never writes" in str(caught.value)


def test_scalar_whose_bytes_do_not_match_its_type_is_refused(tmp_path):
    path = write_pickle(tmp_path / "scalar_proc.npy", {"x": Reduce(SCALAR, (np.dtype("U100"), b"abcd"))})
    with pytest.raises(ProcFileError, match="comes with 4 bytes, not 400") as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_npy_header_versions_load(tmp_path, version):
    expected = facemap_like()
    path = tmp_path / "v_proc.npy"
    with open(path, "wb") as f:
        npy_format.write_array(f, object_array(expected), version=version, allow_pickle=True)
    assert npy_format.read_magic(open(path, "rb")) == version

    assert_same(load_proc_npy(path), expected)


def test_numpy_1_and_numpy_2_module_names_both_load(tmp_path):
    # np.save uses protocol 3, where globals are spelled as text lines, so one spelling can be
    # swapped for the other to get the file the other numpy major version writes.
    expected = facemap_like()
    proc = dict(expected, buffer=Reduce(FROMBUFFER, (b"\x00" * 16, np.dtype("f8"), (2,), "C")))
    expected["buffer"] = np.zeros(2)
    pickled = pickle.dumps(object_array(proc), protocol=3)
    this, other = (b"numpy._core.", b"numpy.core.") if b"numpy._core." in pickled else (b"numpy.core.", b"numpy._core.")
    assert pickled.count(this) == 3  # _reconstruct, scalar and _frombuffer
    for name, data in [("this", pickled), ("other", pickled.replace(this, other))]:
        assert_same(load_proc_npy(write_npy(tmp_path / f"{name}_proc.npy", data)), expected)


# ---------------------------------------------------------------------------------------------
# Malicious files are refused and their code does not run
# ---------------------------------------------------------------------------------------------


def _payloads(marker):
    code = f"open({str(marker)!r}, 'w').close()"
    payloads = {
        "builtins.exec": Reduce(builtins.exec, (code,)),
        "subprocess.check_call": Reduce(subprocess.check_call, ([sys.executable, "-c", code],)),
    }
    if os.name == "posix":
        command = f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"
        payloads[f"{os.system.__module__}.system"] = Reduce(os.system, (command,))
    return payloads


@pytest.mark.parametrize("callable_name", ["builtins.exec", "subprocess.check_call", "os.system"])
def test_code_in_the_pickle_does_not_run(tmp_path, callable_name):
    marker = tmp_path / "pwned"
    payloads = _payloads(marker)
    if callable_name == "os.system":
        if os.name != "posix":
            pytest.skip("the os.system payload uses a POSIX shell")
        callable_name = f"{os.system.__module__}.system"
    proc = facemap_like()
    proc["motion"] = payloads[callable_name]
    path = write_pickle(tmp_path / "evil_proc.npy", proc)

    with pytest.raises(UnsafePickleError) as caught:
        load_proc_npy(path)

    assert not marker.exists(), "the payload ran"
    message = str(caught.value)
    assert str(path) in message and callable_name in message and "Facemap" in message
    assert caught.value.refused == callable_name and caught.value.path == str(path)
    assert isinstance(caught.value, ValueError)
    # Control: the same file really is dangerous, so the test above would catch a loader that ran it.
    result = np_load_in_subprocess(path)
    assert result.returncode == 0, result.stderr
    assert marker.exists(), "control failed: np.load(allow_pickle=True) did not run the payload"


def test_payload_nested_deep_in_the_dict_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    proc = facemap_like()
    proc["rois"][1]["extra"] = [0, ("a", [{"deeper": [1.0, _payloads(marker)["builtins.exec"]]}])]
    path = write_pickle(tmp_path / "nested_proc.npy", proc)

    with pytest.raises(UnsafePickleError, match="builtins.exec") as caught:
        load_proc_npy(path)

    assert not marker.exists()
    assert str(path) in str(caught.value)
    assert np_load_in_subprocess(path).returncode == 0 and marker.exists(), "control failed"


@pytest.mark.parametrize(
    ("module", "name", "refused"),
    [
        ("builtins", "eval", "builtins.eval"),
        ("__builtin__", "eval", "builtins.eval"),
        ("builtins", "getattr", "builtins.getattr"),
        ("posix", "system", "posix.system"),
        ("nt", "system", "nt.system"),
        ("subprocess", "Popen", "subprocess.Popen"),
        ("copyreg", "_reconstructor", "copyreg._reconstructor"),
        ("numpy", "load", "numpy.load"),
        ("numpy.testing._private.utils", "runstring", "numpy.testing._private.utils.runstring"),
        ("numpy.ma.core", "_mareconstruct", "numpy.ma.core._mareconstruct"),
        ("numpy.core.multiarray", "_reconstruct.__globals__", "numpy.core.multiarray._reconstruct.__globals__"),
        ("a_module_that_is_never_imported", "f", "a_module_that_is_never_imported.f"),
    ],
)
def test_globals_outside_the_allowlist_are_refused(tmp_path, module, name, refused):
    # PROTO 2, GLOBAL module name, EMPTY_TUPLE, REDUCE, STOP: call module.name().
    path = write_npy(tmp_path / "global_proc.npy", b"\x80\x02c%s\n%s\n)R." % (module.encode(), name.encode()))

    with pytest.raises(UnsafePickleError) as caught:
        load_proc_npy(path)

    assert caught.value.refused == refused
    assert str(path) in str(caught.value) and refused in str(caught.value)
    assert "a_module_that_is_never_imported" not in sys.modules


def test_object_dtype_with_forged_flags_is_refused(tmp_path):
    # An object dtype whose pickled flags say "plain data" would make numpy read these bytes as
    # object addresses and crash; the loader rebuilds every dtype and refuses the forged one.
    forged = Reduce(np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 0))
    array = Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (2,), forged, False, b"A" * 16))
    path = write_pickle(tmp_path / "forged_proc.npy", {"motion": array})

    with pytest.raises(UnsafePickleError, match="numpy.dtype") as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value)


def test_pickle_cannot_rewrite_numpy_builtin_types(tmp_path):
    # dtype('f8', False, False) is numpy's shared float64 type; a BUILD on it would change it for
    # the whole process. The loader always copies, then refuses the forged flags.
    forged = Reduce(np.dtype, ("f8", False, False), (3, "<", None, None, None, -1, -1, 63))
    path = write_pickle(tmp_path / "singleton_proc.npy", {"x": forged})

    with pytest.raises(UnsafePickleError, match="numpy.dtype"):
        load_proc_npy(path)
    assert np.dtype("f8").flags == np.dtype("f4").flags == 0
    assert np.zeros(3).sum() == 0


def test_forged_dtype_in_a_scalar_or_buffer_is_refused(tmp_path):
    forged = Reduce(np.dtype, ("O8", False, True), (3, "|", None, None, None, -1, -1, 0))
    scalar = write_pickle(tmp_path / "scalar_proc.npy", {"x": Reduce(SCALAR, (forged, b"A" * 8))})
    buffer = write_pickle(tmp_path / "buffer_proc.npy", {"x": Reduce(FROMBUFFER, (b"A" * 8, forged, (1,), "C"))})
    plain = write_pickle(tmp_path / "object_proc.npy", {"x": Reduce(FROMBUFFER, (b"A" * 8, np.dtype("O"), (1,), "C"))})
    for path in (scalar, buffer, plain):
        with pytest.raises(UnsafePickleError, match="numpy"):
            load_proc_npy(path)


@pytest.mark.parametrize(
    ("spec", "state", "error", "match"),
    [
        ("O8", (3, "|", None, None, None, -1, -1, 0), UnsafePickleError, "flags or size"),
        ("f8", (3, "<", None, None, None, 16, -1, 0), UnsafePickleError, "flags or size"),
        ("V16", (3, "|", None, (), {}, 16, 1, 0), UnsafePickleError, "void or structured"),
        ("f8", (1, "<", None, None, None, -1, -1, 0), ProcFileError, "state in a form"),
        ("3f4,(2,)i4", (3, "|", None, None, None, -1, -1, 0), UnsafePickleError, "type string"),
    ],
    ids=["object_flags_cleared", "size_changed", "struct_without_fields", "old_state_version", "rich_type_string"],
)
def test_malformed_dtype_states_are_refused(tmp_path, spec, state, error, match):
    # Each of these reaches numpy's dtype.__setstate__ under np.load; some crash numpy. The loader
    # never hands a pickled state to numpy: it reads it and asks numpy for the type it describes.
    array = Reduce(
        RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (1,), Reduce(np.dtype, (spec, False, True), state), False, b"A" * 8)
    )
    path = write_pickle(tmp_path / "dtype_proc.npy", {"x": array})

    with pytest.raises(error, match=match) as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value)


def test_huge_length_field_is_a_truncated_file_not_a_memory_error(tmp_path):
    # PROTO 4, BINBYTES8 claiming 2**40 bytes, then 3 bytes: Python's unpickler would try to
    # allocate a terabyte before noticing the file is short.
    path = write_npy(tmp_path / "length_proc.npy", b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b"abc.")

    with pytest.raises(ProcFileError, match="claims 1099511627776 more bytes") as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value)


def test_memo_index_far_ahead_is_refused(tmp_path):
    # PROTO 2, EMPTY_DICT, LONG_BINPUT 10**7, STOP: Python's unpickler grows its memo table to the
    # index (8 bytes a slot), so 2**31 here would cost 16 GiB; a real pickle numbers entries 0, 1, 2...
    path = write_npy(tmp_path / "memo_proc.npy", b"\x80\x02}r" + (10**7).to_bytes(4, "little") + b".")

    with pytest.raises(ProcFileError, match="memo index 10000000") as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value)


def test_ndarray_class_cannot_be_called_directly(tmp_path):
    # numpy.ndarray(shape, dtype, buffer) would make an array over arbitrary bytes.
    path = write_pickle(tmp_path / "ndarray_proc.npy", {"x": Reduce(np.ndarray, ((1,), np.dtype("f8"), b"A" * 8))})

    with pytest.raises(UnsafePickleError, match="numpy.ndarray"):
        load_proc_npy(path)


def test_pickle_cannot_change_the_stand_ins(tmp_path):
    # PROTO 2, GLOBAL numpy dtype, EMPTY_DICT, BINUNICODE 'a', BININT1 1, SETITEM, BUILD, STOP.
    path = write_npy(tmp_path / "build_proc.npy", b"\x80\x02cnumpy\ndtype\n}X\x01\x00\x00\x00aK\x01sb.")

    with pytest.raises(UnsafePickleError, match="numpy.dtype"):
        load_proc_npy(path)


def test_array_subclasses_are_refused(tmp_path):
    path = tmp_path / "masked_proc.npy"
    np.save(path, object_array({"x": np.ma.masked_array([1.0, 2.0], mask=[False, True])}))

    with pytest.raises(UnsafePickleError, match="numpy.ma"):
        load_proc_npy(path)


# ---------------------------------------------------------------------------------------------
# Files that are not Facemap results give a clear error naming the file
# ---------------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope_proc.npy"
    with pytest.raises(FileNotFoundError) as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.999])
def test_truncated_file(tmp_path, fraction):
    whole = tmp_path / "whole_proc.npy"
    np.save(whole, facemap_like())
    data = whole.read_bytes()
    path = tmp_path / "cut_proc.npy"
    path.write_bytes(data[: int(len(data) * fraction)])

    with pytest.raises(ProcFileError) as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value)
    assert "truncated" in str(caught.value) or "not a readable .npy" in str(caught.value)
    assert not isinstance(caught.value, UnsafePickleError)


@pytest.mark.parametrize(
    "content", [b"", b"not an npy file\n" * 10, b"\x93NUMPY\x09\x00garbage"], ids=["empty", "text", "bad_version"]
)
def test_not_an_npy_file(tmp_path, content):
    path = tmp_path / "text_proc.npy"
    path.write_bytes(content)
    with pytest.raises(ProcFileError, match="not a readable .npy file") as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value)


def test_pickle_of_a_list_is_not_a_dict(tmp_path):
    bare = write_npy(tmp_path / "list_proc.npy", pickle.dumps([1, 2, 3], protocol=3))
    wrapped = write_pickle(tmp_path / "wrapped_list_proc.npy", [np.arange(3), "a"])
    for path in (bare, wrapped):
        with pytest.raises(ProcFileError, match="holds a list, not the dict") as caught:
            load_proc_npy(path)
        assert str(path) in str(caught.value)


def test_object_array_of_many_items_is_not_a_dict(tmp_path):
    path = tmp_path / "many_proc.npy"
    np.save(path, np.array([{"a": 1}, {"b": 2}], dtype=object))
    with pytest.raises(ProcFileError, match=r"shape \(2,\), not the dict") as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value)


def test_plain_float_array(tmp_path):
    path = tmp_path / "floats_proc.npy"
    np.save(path, np.arange(12.0).reshape(3, 4))
    with pytest.raises(ProcFileError, match=r"plain float64 array of shape \(3, 4\)") as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value)
    assert not isinstance(caught.value, UnsafePickleError)


def test_deeply_nested_data_is_refused_not_a_crash(tmp_path):
    deep = []
    for _ in range(300):
        deep = [deep]
    path = write_pickle(tmp_path / "deep_proc.npy", {"x": deep}, protocol=4)
    with pytest.raises(UnsafePickleError, match="nesting"):
        load_proc_npy(path)


# ---------------------------------------------------------------------------------------------
# Reference bombs, cycles and depth are refused before anything is built
# ---------------------------------------------------------------------------------------------


def test_shared_lists_that_expand_to_billions_are_refused(tmp_path):
    x = [0.0] * 1000
    for _ in range(3):
        x = [x] * 1000  # 10**12 elements once np.asarray expands it; the pickle is 15 kB
    path = write_pickle(tmp_path / "bomb_proc.npy", {"motion": [x]}, protocol=4)

    with pytest.raises(UnsafePickleError, match="reference bomb") as caught:
        load_proc_npy(path)
    assert str(path) in str(caught.value) and "references to lists, dicts and tuples" in str(caught.value)


def test_sharing_within_bounds_loads(tmp_path):
    # What real files share (an ROI colour tuple, an array under two keys) stays well inside the bound.
    x = [0.0] * 100
    proc = {"motion": [x] * 100, "color": [(255.0, 0.0, 0.0)] * 10}
    loaded = load_proc_npy(write_pickle(tmp_path / "shared_proc.npy", proc, protocol=4))
    assert loaded["motion"][0] is loaded["motion"][99] and len(loaded["motion"][5]) == 100


def test_a_container_that_holds_itself_is_refused(tmp_path):
    looped = []
    looped.append(looped)
    path = write_pickle(tmp_path / "cycle_proc.npy", {"x": looped}, protocol=2)
    with pytest.raises(UnsafePickleError, match="holds itself"):
        load_proc_npy(path)


def test_array_with_empty_but_huge_dimensions_is_refused(tmp_path):
    empty = Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (0, 2**40, 2**40), np.dtype("f4"), False, b""))
    path = write_pickle(tmp_path / "empty_proc.npy", {"x": empty})
    with pytest.raises(ProcFileError, match="larger than any results file holds"):
        load_proc_npy(path)


# ---------------------------------------------------------------------------------------------
# Properties: valid data always loads as itself; damaged files load or raise ProcFileError, nothing else
# ---------------------------------------------------------------------------------------------

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from hypothesis.extra import numpy as hnp
    from hypothesis.configuration import set_hypothesis_home_dir

    # Hypothesis caches what it learns in a folder; keep it out of the repository.
    set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "facemap-nwb-hypothesis"))
except ImportError:  # not every environment has hypothesis: the property tests are then skipped
    given = None

_ALLOWED_TYPES = (dict, OrderedDict, list, tuple, set, frozenset, str, bytes, bytearray, int, float, complex, bool)


def assert_only_data(obj, depth=0):
    """Walk what the loader returned: only plain containers, numbers, text, numpy arrays, scalars and dtypes."""
    assert depth < 100
    if obj is None or type(obj) in (str, bytes, bytearray, int, float, complex, bool) or type(obj) is np.dtype:
        return
    if isinstance(obj, np.generic):
        assert type(obj).__module__ == "numpy" and obj.dtype.kind in "biufcSU", type(obj)
        return
    if type(obj) is np.ndarray:
        assert obj.dtype.kind in "biufcSUO", obj.dtype
        if obj.dtype.kind == "O":
            for item in obj.reshape(-1):
                assert_only_data(item, depth + 1)
        return
    assert type(obj) in _ALLOWED_TYPES, type(obj)
    items = obj.items() if isinstance(obj, dict) else [(None, v) for v in obj]
    for key, value in items:
        assert_only_data(key, depth + 1)
        assert_only_data(value, depth + 1)


def same(a, b) -> bool:
    """Equal in type and value, NaN equal to NaN, arrays equal in dtype, shape and bytes."""
    if type(a) is not type(b):
        return False
    if type(a) is np.ndarray:
        if a.dtype != b.dtype or a.shape != b.shape:
            return False
        if a.dtype.kind == "O":
            return all(same(x, y) for x, y in zip(a.reshape(-1), b.reshape(-1)))
        return a.tobytes() == b.tobytes()
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) or isinstance(a, np.floating):
        return a == b or (a != a and b != b)
    if isinstance(a, complex) or isinstance(a, np.complexfloating):
        return same(float(a.real), float(b.real)) and same(float(a.imag), float(b.imag))
    return bool(a == b)


if given is None:

    @pytest.mark.skip(reason="property tests need hypothesis (pip install hypothesis)")
    def test_properties_need_hypothesis():
        pass

else:
    _DTYPES = st.sampled_from(
        ["?", "i1", "i2", "<i4", ">i8", "u1", "u2", "<u4", "u8", "<f2", "<f4", ">f8", "c8", "<c16", "S5", "<U3"]
    )
    _ARRAYS = _DTYPES.flatmap(lambda dtype: hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
    _HASHABLE = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5), st.binary(max_size=5))
    _LEAVES = st.one_of(
        _HASHABLE,
        st.floats(),
        st.complex_numbers(),
        _ARRAYS,
        _ARRAYS.map(lambda a: a.reshape(-1)[0] if a.size else np.float64(0)),  # numpy scalars
        st.binary(max_size=5).map(bytearray),
    )

    def _object_array(items):
        array = np.empty(len(items), dtype=object)
        for i, item in enumerate(items):
            array[i] = item
        return array

    _DATA = st.recursive(
        _LEAVES,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.lists(children, max_size=4).map(tuple),
            st.dictionaries(st.text(max_size=4), children, max_size=4),
            st.dictionaries(st.text(max_size=4), children, max_size=3).map(OrderedDict),
            st.frozensets(_HASHABLE, max_size=3),
            st.sets(_HASHABLE, max_size=3),
            st.lists(children, max_size=3).map(_object_array),
        ),
        max_leaves=20,
    )
    _QUICK = settings(
        max_examples=150, deadline=2000, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )

    @_QUICK
    @given(data=_DATA, protocol=st.integers(0, 5))
    def test_any_plain_data_loads_as_itself(tmp_path, data, protocol):
        pickled = pickle.dumps(object_array({"x": data}), protocol=protocol)
        path = write_npy(tmp_path / "data_proc.npy", pickled)

        loaded = load_proc_npy(path)

        assert_only_data(loaded)
        expected = pickle.loads(pickled).item()
        # numpy itself unpickles big-endian arrays as native ones; compare values there.
        assert same(loaded, expected) or _same_values(loaded, expected)

    def _same_values(a, b) -> bool:
        if type(a) is np.ndarray and type(b) is np.ndarray and a.dtype.kind != "O":
            return (
                a.shape == b.shape
                and a.dtype.kind == b.dtype.kind
                and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
            )
        if isinstance(a, dict) and isinstance(b, dict):
            return list(a) == list(b) and all(same(a[k], b[k]) or _same_values(a[k], b[k]) for k in a)
        if isinstance(a, (list, tuple)) and type(a) is type(b):
            return len(a) == len(b) and all(same(x, y) or _same_values(x, y) for x, y in zip(a, b))
        if type(a) is np.ndarray and type(b) is np.ndarray:
            return a.shape == b.shape and all(
                same(x, y) or _same_values(x, y) for x, y in zip(a.reshape(-1), b.reshape(-1))
            )
        return False

    def _small_proc_bytes() -> bytes:
        from .test_facemap_model import hand_built_proc

        buffer = io.BytesIO()
        np.save(buffer, hand_built_proc(frames=6), allow_pickle=True)
        return buffer.getvalue()

    _BASE = _small_proc_bytes()
    _HEADER = io.BytesIO(_BASE)
    npy_format.read_magic(_HEADER)
    npy_format.read_array_header_1_0(_HEADER)
    _OPCODE_POSITIONS = [position for _, _, position in pickletools.genops(io.BytesIO(_BASE[_HEADER.tell() :]))]
    _OPCODE_POSITIONS = [position + _HEADER.tell() for position in _OPCODE_POSITIONS]

    @st.composite
    def _mutated(draw):
        return mutate_bytes(draw, _BASE, _OPCODE_POSITIONS)

    @settings(
        max_examples=300, deadline=2000, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
    )
    @given(data=_mutated())
    def test_damaged_real_proc_loads_or_is_refused_cleanly(tmp_path, data):
        from facemap_nwb.loaders.facemap import load_facemap_results

        path = tmp_path / "damaged_proc.npy"
        path.write_bytes(data)
        try:
            loaded = load_proc_npy(path)
        except ProcFileError as error:
            assert str(path) in str(error)
        else:
            assert type(loaded) is dict
            assert_only_data(loaded)
        try:
            load_facemap_results(path)
        except ValueError as error:  # ProcFileError and the loader's FacemapOutputError
            assert str(path) in str(error)

    def test_mutation_base_is_a_loadable_proc(tmp_path):
        path = tmp_path / "base_proc.npy"
        path.write_bytes(_BASE)
        assert_only_data(load_proc_npy(path))
