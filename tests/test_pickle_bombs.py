"""Pickle bombs: small ``_proc.npy`` files that expand, nest, hash or allocate without bound are refused fast.

Each bomb is loaded with :func:`facemap_nwb.loaders.facemap.load_facemap_results` (the safe loader,
then the arrays the results model makes) in a fresh interpreter under resource limits: its address
space may grow by 500 MB over what the imports take and its CPU time by 5 s. The refusal must be
the loader's own (a ``ValueError`` naming the file and the reason), within 5 s of CPU time (not wall
time, which a busy machine stretches), without the memory limit being what stopped it.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import numpy as np
import pytest
from numpy.lib import format as npy_format

from .conftest import REPO

# numpy's own pickling callables, named as this numpy names them.
RECONSTRUCT = np.empty(1).__reduce__()[0]
FROMBUFFER = np.empty(1).__reduce_ex__(5)[0]
MEMORY_MB = 500
SECONDS = 5

CHILD = r"""
import json, resource, sys, time

from facemap_nwb.loaders.facemap import load_facemap_results


def vm_bytes():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024


memory, seconds = int(sys.argv[2]), float(sys.argv[3])
limit = vm_bytes() + memory * 2**20
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = int(usage.ru_utime + usage.ru_stime + seconds) + 1
resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
rss_before = usage.ru_maxrss
start = time.process_time()  # CPU time: wall time grows on a busy machine, this does not
try:
    load_facemap_results(sys.argv[1])
    outcome = {"refused": False}
except ValueError as error:
    outcome = {"refused": True, "type": type(error).__name__, "message": str(error)}
except MemoryError as error:
    outcome = {"refused": False, "type": "MemoryError", "message": str(error)}
outcome["cpu_seconds"] = time.process_time() - start
outcome["rss_growth_mb"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
print(json.dumps(outcome))
"""


class Reduce:
    """Pickles as ``func(*args)``, with a BUILD of ``state`` when one is given."""

    def __init__(self, func, args, state=None):
        self.func, self.args, self.state = func, args, state

    def __reduce__(self):
        return (self.func, self.args) if self.state is None else (self.func, self.args, self.state)


def _holder(value) -> np.ndarray:
    holder = np.empty((), dtype=object)
    holder[()] = value
    return holder


def _dumps(proc: dict, protocol: int = 4) -> bytes:
    return pickle.dumps(_holder(proc), protocol=protocol)


def _proc(**signals) -> dict:
    return {"sbin": 1, "Ly": [60], "Lx": [80], **signals}


def shared_lists() -> bytes:
    """A list holding the same list 1000 times, four levels: 10**12 elements under np.asarray."""
    x = [0.0] * 1000
    for _ in range(3):
        x = [x] * 1000
    return _dumps(_proc(motion=[x]))


def shared_dicts() -> bytes:
    x = {str(i): 0 for i in range(1000)}
    for _ in range(3):
        x = {str(i): x for i in range(1000)}
    return _dumps(_proc(motion=[], extra=x))


def shared_in_object_array() -> bytes:
    """An object array whose 1000 items are the same list of lists of lists."""
    x = [0.0] * 1000
    for _ in range(2):
        x = [x] * 1000
    items = np.empty(1000, dtype=object)
    for i in range(1000):
        items[i] = x
    return _dumps(_proc(motion=items))


def shared_string() -> bytes:
    """One 1 MB string referenced 10000 times: np.asarray would make a 40 GB text array."""
    text = "x" * 2**20
    return _dumps(_proc(motion=[], filenames=[[text] * 10000]))


def shared_array() -> bytes:
    """One 8 MB array referenced 1000 times in a list: stacked, 8 GB."""
    array = np.zeros(2**20)
    return _dumps(_proc(motion=[[array] * 1000]))


def hash_bomb() -> bytes:
    """A dict key that is a tuple of tuples sharing each other, 80 levels: hashing it takes 2**80 steps."""
    out = bytearray(b"\x80\x02K\x00K\x00\x86q\x00")
    for k in range(80):
        out += b"h" + bytes([k]) + b"h" + bytes([k]) + b"\x86q" + bytes([k + 1])
    return bytes(out + b"}h" + bytes([80]) + b"K\x01s.")


def frozenset_bomb() -> bytes:
    """The same shared tuples inside a frozenset (hashed while unpickling)."""
    out = bytearray(b"\x80\x04K\x00K\x00\x86\x94")
    for k in range(80):
        out += b"h" + bytes([k]) + b"h" + bytes([k]) + b"\x86\x94"
    return bytes(out + b"(h" + bytes([80]) + b"\x91.")


def deep_lists() -> bytes:
    """200000 nested lists: a recursive walk would exhaust the stack."""
    return b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b"."


def deep_tuple_key() -> bytes:
    """200000 nested tuples as a dict key: hashing it recurses in C without a limit."""
    return b"\x80\x02}K\x00" + b"\x85" * 200_000 + b"K\x01s."


def cycle() -> bytes:
    """A list that holds itself, inside the dict."""
    return b"\x80\x02}X\x06\x00\x00\x00motion]q\x00h\x00as."


def huge_shape_small_buffer() -> bytes:
    array = Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (10**6, 10**6), np.dtype("f8"), False, b"\x00" * 8))
    return _dumps(_proc(motion=[array]))


def huge_shape_frombuffer() -> bytes:
    return _dumps(_proc(motion=[Reduce(FROMBUFFER, (b"\x00" * 8, np.dtype("f8"), (10**9,), "C"))]), protocol=5)


def huge_object_array() -> bytes:
    array = Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (10**12,), np.dtype("O"), False, [0]))
    return _dumps(_proc(motion=[array]))


def zero_size_huge_dims() -> bytes:
    """Arrays of no elements but 2**40 x 2**40 dimensions where the model expects a frame."""
    empty = Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (0, 2**40, 2**40), np.dtype("f4"), False, b""))
    return _dumps(_proc(motion=[np.zeros(5, np.float32)], avgframe_reshape=empty, motMask_reshape=[empty]))


def huge_itemsize() -> bytes:
    array = Reduce(RECONSTRUCT, (np.ndarray, (0,), b"b"), (1, (1,), np.dtype("U99999999"), False, b"abcd"))
    return _dumps(_proc(motion=[array]))


def huge_length_field() -> bytes:
    return b"\x80\x04\x8e" + (2**40).to_bytes(8, "little") + b"abc."


def huge_unicode_length() -> bytes:
    return b"\x80\x04\x8d" + (2**40).to_bytes(8, "little") + b"abc."


def memo_index_far_ahead() -> bytes:
    return b"\x80\x02}r" + (2**31 - 1).to_bytes(4, "little") + b"."


def huge_integer_text() -> bytes:
    """Protocol 0's decimal integers: a million digits (quadratic to parse without a limit)."""
    return b"(dp0\nVsbin\np1\nI" + b"9" * 10**6 + b"\ns."


def mat_zlib_bomb() -> bytes:
    """A MATLAB 5 file whose one compressed element (200 kB) inflates to 200 MB."""
    import struct
    import zlib

    packer = zlib.compressobj(9)
    compressed = b"".join(packer.compress(bytes(2**23)) for _ in range(25)) + packer.flush()
    header = b"MATLAB 5.0 MAT-file, Platform: posix".ljust(116) + bytes(8) + b"\x00\x01IM"
    return header + struct.pack("<II", 15, len(compressed)) + compressed


BOMBS = {
    "shared_lists": (shared_lists, "reference bomb"),
    "shared_dicts": (shared_dicts, "reference bomb"),
    "shared_in_object_array": (shared_in_object_array, "reference bomb"),
    "shared_string": (shared_string, "reference bomb"),
    "shared_array": (shared_array, "reference bomb"),
    "hash_bomb": (hash_bomb, "reference bomb"),
    "frozenset_bomb": (frozenset_bomb, "reference bomb"),
    "deep_lists": (deep_lists, "nesting"),
    "deep_tuple_key": (deep_tuple_key, "nesting"),
    "cycle": (cycle, "holds itself"),
    "huge_shape_small_buffer": (huge_shape_small_buffer, "does not come with"),
    "huge_shape_frombuffer": (huge_shape_frombuffer, "truncated or corrupt"),
    "huge_object_array": (huge_object_array, "does not come with a list"),
    "zero_size_huge_dims": (zero_size_huge_dims, "larger than any results file holds"),
    "huge_itemsize": (huge_itemsize, "does not come with"),
    "huge_length_field": (huge_length_field, "claims 1099511627776 more bytes"),
    "huge_unicode_length": (huge_unicode_length, "claims 1099511627776 more bytes"),
    "memo_index_far_ahead": (memo_index_far_ahead, "memo index"),
    "huge_integer_text": (huge_integer_text, "truncated or corrupt"),
    "mat_zlib_bomb": (mat_zlib_bomb, "zlib bomb"),
}


def _write(path, pickled: bytes):
    with open(path, "wb") as f:
        npy_format.write_array_header_1_0(f, {"descr": "|O", "fortran_order": False, "shape": ()})
        f.write(pickled)
    return path


def load_limited(path) -> dict:
    """Load ``path`` in a fresh interpreter limited to +500 MB of address space and +5 s of CPU time."""
    run = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(MEMORY_MB), str(SECONDS)],
        capture_output=True,
        text=True,
        timeout=120,  # the interpreter's start and imports on a busy machine; the load itself is timed inside
        cwd=REPO,
    )
    assert run.returncode == 0, f"the loader died (code {run.returncode}): {run.stderr[-2000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status and uses Linux resource limits")
@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_is_refused_fast_and_small(name, tmp_path):
    make, reason = BOMBS[name]
    if name.startswith("mat_"):
        path = tmp_path / f"{name}_proc.mat"
        path.write_bytes(make())
    else:
        path = _write(tmp_path / f"{name}_proc.npy", make())

    outcome = load_limited(path)

    assert outcome["refused"], f"not refused: {outcome}"
    assert str(path) in outcome["message"] and reason in outcome["message"], outcome["message"]
    assert "more memory than" not in outcome["message"], "the memory limit stopped it, not the loader"
    assert outcome["cpu_seconds"] < SECONDS, f"took {outcome['cpu_seconds']:.1f} s of CPU"
    assert outcome["rss_growth_mb"] < MEMORY_MB, f"resident memory grew by {outcome['rss_growth_mb']:.0f} MB"


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status and uses Linux resource limits")
def test_the_limits_leave_room_for_real_results(tmp_path):
    # Control: a real-sized Facemap-shaped file loads under the same limits, so a refusal above is the
    # loader's mechanism, not the limits.
    from .test_facemap_model import hand_built_proc

    path = tmp_path / "real_proc.npy"
    np.save(path, hand_built_proc(), allow_pickle=True)
    outcome = load_limited(path)
    assert not outcome["refused"] and "type" not in outcome, outcome


def test_shared_small_tuples_of_real_files_still_load(tmp_path):
    # Facemap's ROI dicts share one colour tuple (a constant in its code): reuse within bounds loads.
    from facemap_nwb.loaders.safe_pickle import load_proc_npy

    color = (255.0, 0.0, 0.0)
    proc = {"rois": [{"color": color, "i": i} for i in range(50)], "shared": [np.arange(10)] * 2}
    path = tmp_path / "shared_proc.npy"
    np.save(path, proc, allow_pickle=True)
    loaded = load_proc_npy(path)
    assert loaded["rois"][49]["color"] == color and loaded["shared"][0] is loaded["shared"][1]
