"""Facemap outputs (``*_proc.npy`` and ``*_proc.mat``) into :class:`~facemap_nwb.results.FacemapResults`.

``_proc.npy`` is read with :func:`facemap_nwb.loaders.safe_pickle.load_proc_npy`, which never runs
pickled code; ``_proc.mat`` with SciPy (MATLAB files hold no code) after a bounded scan of its
elements (declared lengths, compressed sizes). A ``.mat`` whose only variable is a ``proc`` struct is
MATLAB Facemap's (v7 through SciPy, v7.3 through the safe HDF5 reader
:mod:`facemap_nwb.loaders.matlab_files`) and is mapped by :mod:`facemap_nwb.loaders.matlab`.
Every value is then read through typed accessors that name the Facemap key at fault (a string
where a number belongs, a list where an array belongs, complex or object arrays, NaN or infinite
counts, wrong nesting), and the model is checked as a whole by :meth:`FacemapResults.validate`.
Anything malformed or impossible raises :class:`FacemapOutputError` (a ``ValueError``) naming the
file, the key, the value and the fix.

How Facemap's keys map onto the model (lists are indexed as Facemap indexes them):

* ``motion[0]``, ``motSVD[0]``, ``movSVD[0]``, ``motMask_reshape[0]``, ``movMask_reshape[0]``: the
  full frame (present when ``fullSVD``); index ``j >= 1``: the j-th ROI of type motion in ``rois``.
* ``pupil[k]``, ``blink[k]``, ``running[k]``: the k-th ROI of that type.
* ``avgframe_reshape`` / ``avgmotion_reshape``: average frame and average motion (binned).

Singular values (Facemap 1.0.8 keeps one ``motSv``/``movSv`` vector for all regions):

* all zeros (the video fits one SVD chunk, under 2000 frames): Facemap then skipped its final
  SVD, so its masks are ``U * S`` and each column's norm *is* the singular value: we take the
  mask norms for every region (``source = "mask_norms"``);
* otherwise the vector belongs to the last region in Facemap's loop (the last motion ROI, or the
  full frame when there are none) and is kept there (``"facemap"``); every other region gets the
  norms of its projections over all frames (``"projection_norms"``).

Frame alignment quirk, kept as is: Facemap's motion energy for frames ``0 .. 498`` is the
difference to the *next* frame, index 499 is always 0, and from 500 on it is the difference to
the *previous* frame; its projections repeat the first row instead.
"""

from __future__ import annotations

import math
import os
import re
import struct
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..params import ROI, FacemapParameters
from ..results import FacemapResults, PupilSignals, Region, ResultsError, SVDComponents, binned_frame_shape
from .matlab_files import is_mat73_header
from .safe_pickle import ProcFileError

__all__ = [
    "load_facemap_results",
    "results_from_proc",
    "read_proc_file",
    "FacemapOutputError",
    "FACEMAP_N_COMPONENTS",
]

FACEMAP_N_COMPONENTS = 500  # facemap.process.run asks for 500 components, always
_LIST_KEYS = (
    "avgframe",
    "avgmotion",
    "motion",
    "motMask_reshape",
    "movMask_reshape",
    "motMask",
    "movMask",
    "motSVD",
    "movSVD",
    "running",
    "blink",
)
_FIX = "Facemap writes no such value: pass the results file Facemap wrote, or run Facemap on the video again"
# Facemap writes .mat files uncompressed (scipy's savemat default); one that MATLAB re-saved is
# compressed. What its compressed elements may expand to: far more than any real ratio, far less
# than a zlib bomb needs (SciPy inflates each element whole, in memory).
_MAT_INFLATE_FACTOR = 20
_MAT_INFLATE_ALLOWANCE = 64 * 2**20


class FacemapOutputError(ProcFileError):
    """A Facemap output file whose contents are missing, malformed or impossible.

    Parameters
    ----------
    message : str
        The full explanation, naming the file, the key, the value and the fix.
    path : str, optional
        The file.
    key : str, optional
        The Facemap key at fault (``sbin``, ``motion[1]``, ``rois[0]['yrange']``, ...).
    """

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None):
        super().__init__(message)
        self.path, self.key = path, key


# ------------------------------------------------------------------------------------------------ files


def read_proc_file(path: str | os.PathLike) -> dict:
    """Facemap's proc dict from a ``_proc.npy`` (safely) or ``_proc.mat`` file.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ProcFileError
        Unsafe, truncated, corrupt or unsupported files (a ``ValueError``); the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Facemap output not found: '{path}'.")
    if path.is_dir():
        raise FacemapOutputError(f"'{path}' is a folder, not a Facemap output: pass its '_proc.npy' file.")
    if path.suffix == ".npy":
        from .safe_pickle import load_proc_npy

        return load_proc_npy(path)
    if path.suffix == ".mat":
        return _read_mat(path)
    raise FacemapOutputError(f"'{path}' is not a Facemap output: expected a '_proc.npy' or '_proc.mat' file.")


def _mat_refusal(path: Path, problem: str) -> FacemapOutputError:
    return FacemapOutputError(
        f"'{path}' is not a Facemap _proc.mat file this loader reads: {problem}. Pass the _proc.mat (or _proc.npy) "
        "Facemap wrote; if it was cut short, run Facemap on the video again.",
        path=str(path),
    )


# MAT-file v5 element types (miINT8 ... miUTF32) and the bytes of one value of each.
_MI_SIZES = {1: 1, 2: 1, 3: 2, 4: 2, 5: 4, 6: 4, 7: 4, 9: 8, 12: 8, 13: 8, 16: 1, 17: 2, 18: 4}
_MI_MATRIX, _MI_COMPRESSED, _MI_UTF8 = 14, 15, 16
# Array classes (mxCELL_CLASS ...): what a Facemap _proc.mat (scipy's savemat) holds.
_MX_CELL, _MX_STRUCT, _MX_OBJECT, _MX_CHAR = 1, 2, 3, 4
_MX_NUMERIC = frozenset(range(6, 16))  # double, single, int8 ... uint64
_MX_NAMES = {5: "sparse matrix", 16: "function handle", 17: "opaque object"}
_MAT_MAX_DEPTH = 32


class _MatScan:
    """Checks every element of a MATLAB 5 file against its declared sizes before SciPy reads it.

    SciPy's compiled reader trusts the sizes inside an array element (a damaged one can crash
    the interpreter), so each array's flags, dimensions, name and data are read here first: every
    size must fit its parent, numeric and text data must hold exactly what the dimensions say,
    cells and structs as many elements as they declare, nesting at most ``_MAT_MAX_DEPTH`` deep,
    and compressed elements may inflate to at most the budget. Sparse matrices, function handles
    and opaque objects (which Facemap never writes) are refused.
    """

    def __init__(self, path: Path, order: str, budget: int):
        self.path, self.order, self.budget = path, order, budget

    def fail(self, problem: str):
        raise _mat_refusal(self.path, problem)

    def tag(self, data, pos: int, end: int) -> tuple[int, int, int, int]:
        """(type, byte count, data start, next element) of the element at ``pos``, inside ``[pos, end)``."""
        if pos + 8 > end:
            self.fail(f"an element at byte {pos} runs past the end of its parent (truncated or corrupt)")
        first, second = struct.unpack_from(self.order + "II", data, pos)
        if first >> 16:  # a small data element: up to 4 bytes of data inside the tag
            if first >> 16 > 4:
                self.fail(f"the small element at byte {pos} claims {first >> 16} bytes, more than its 4")
            return first & 0xFFFF, first >> 16, pos + 4, pos + 8
        if second > end - pos - 8:
            self.fail(
                f"the element at byte {pos} claims {second} bytes but only {end - pos - 8} are left (truncated "
                "or corrupt)"
            )
        return first, second, pos + 8, min(end, pos + 8 + second + (-second % 8))

    def data(self, data, pos: int, end: int, count: int, what: str, kinds=None) -> int:
        mdtype, nbytes, _, after = self.tag(data, pos, end)
        size = _MI_SIZES.get(mdtype)
        if size is None or (kinds is not None and mdtype not in kinds):
            self.fail(f"the {what} at byte {pos} has the element type {mdtype}, not one MATLAB writes there")
        if mdtype == _MI_UTF8 and count <= nbytes <= 4 * count:
            return after
        if nbytes != count * size:
            self.fail(f"the {what} at byte {pos} holds {nbytes} bytes, not the {count * size} its dimensions need")
        return after

    def matrix(self, data, pos: int, end: int, depth: int) -> None:
        """Check the content ``[pos, end)`` of one miMATRIX element."""
        if pos == end:
            return  # an empty array (an empty cell)
        if depth > _MAT_MAX_DEPTH:
            self.fail(f"its cells or structs nest more than {_MAT_MAX_DEPTH} levels deep")
        mdtype, nbytes, start, pos = self.tag(data, pos, end)
        if mdtype != 6 or nbytes != 8:
            self.fail(f"an array at byte {start - 8} does not start with its flags")
        flags = struct.unpack_from(self.order + "I", data, start)[0]
        kind, is_complex = flags & 0xFF, bool(flags & 0x800)
        mdtype, nbytes, start, pos = self.tag(data, pos, end)
        if mdtype != 5 or nbytes % 4 or nbytes < 8:
            self.fail(f"an array at byte {start - 8} has no valid dimensions")
        dims = struct.unpack_from(f"{self.order}{nbytes // 4}i", data, start)
        if min(dims) < 0 or math.prod(max(d, 1) for d in dims) > 2**40:
            self.fail(f"an array at byte {start - 8} has the dimensions {dims[:8]}")
        count = math.prod(dims)
        pos = self.tag(data, pos, end)[3]  # its name
        if kind in _MX_NUMERIC:
            pos = self.data(data, pos, end, count, "numeric data")
            if is_complex:
                self.data(data, pos, end, count, "imaginary part")
        elif kind == _MX_CHAR:
            self.data(data, pos, end, count, "text", kinds=(1, 2, 3, 4, 16, 17, 18))
        elif kind == _MX_CELL:
            self.children(data, pos, end, count, depth)
        elif kind in (_MX_STRUCT, _MX_OBJECT):
            if kind == _MX_OBJECT:
                pos = self.tag(data, pos, end)[3]  # the class name
            mdtype, nbytes, start, pos = self.tag(data, pos, end)
            length = struct.unpack_from(self.order + "i", data, start)[0] if mdtype == 5 and nbytes == 4 else 0
            mdtype, nbytes, _, pos = self.tag(data, pos, end)
            if length < 1 or mdtype != 1 or nbytes % length:
                self.fail(f"a struct at byte {start - 8} has no valid field names")
            self.children(data, pos, end, count * (nbytes // length), depth)
        else:
            self.fail(f"it holds a MATLAB {_MX_NAMES.get(kind, f'array of class {kind}')}, which Facemap never writes")

    def children(self, data, pos: int, end: int, count: int, depth: int) -> None:
        for _ in range(count):
            mdtype, nbytes, start, after = self.tag(data, pos, end)
            if mdtype != _MI_MATRIX:
                self.fail(f"a cell or struct element at byte {pos} is not an array")
            self.matrix(data, start, start + nbytes, depth + 1)
            pos = after

    def elements(self, data, pos: int, end: int, top: bool = True) -> None:
        """Check the top-level elements in ``[pos, end)``; compressed ones are inflated (bounded) and checked."""
        while pos < end:
            mdtype, nbytes, start, after = self.tag(data, pos, end)
            if mdtype == _MI_MATRIX:
                self.matrix(data, start, start + nbytes, 0)
            elif mdtype == _MI_COMPRESSED and top:
                inner = self.inflate(data[start : start + nbytes], pos)
                self.elements(inner, 0, len(inner), top=False)
            else:
                self.fail(f"the element at byte {pos} has the type {mdtype}, not a MATLAB array")
            pos = after if mdtype != _MI_COMPRESSED else start + nbytes

    def inflate(self, compressed, position: int) -> bytes:
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(compressed, self.budget + 1)
        except zlib.error as err:
            self.fail(f"the compressed element at byte {position} is corrupt ({err})")
        if len(out) > self.budget:
            self.fail(
                f"the compressed element at byte {position} ({len(compressed)} bytes) inflates to more than "
                f"{self.budget} bytes, far beyond what a results file holds (a zlib bomb)"
            )
        self.budget -= len(out)
        return out


def _check_mat_file(path: Path) -> None:
    """Refuse what SciPy would misread, crash on, fail on with a traceback, or inflate without bound.

    Reads the 128-byte header (MATLAB v7.3 files are HDF5, which SciPy does not read), then checks
    every element with :class:`_MatScan` over a memory map of the file (nothing is copied but the
    inflated content of compressed elements, within a budget proportional to the file size).
    """
    import mmap

    size = path.stat().st_size
    if size == 0:
        raise _mat_refusal(path, "the file is empty")
    with open(path, "rb") as f:
        header = f.read(128)
        if is_mat73_header(header):
            raise _mat_refusal(path, "it is a MATLAB v7.3 (HDF5) file, which is read elsewhere")
        if len(header) < 128 or header[126:128] not in (b"IM", b"MI"):
            raise _mat_refusal(path, f"its {min(len(header), 128)}-byte header is not a MATLAB 5 header")
        if size == 128:
            return
        scan = _MatScan(
            path, "<" if header[126:128] == b"IM" else ">", _MAT_INFLATE_FACTOR * size + _MAT_INFLATE_ALLOWANCE
        )
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            scan.elements(data, 128, size)


def _read_mat73(path: Path) -> dict:
    """A v7.3 (HDF5) file: only MATLAB Facemap's (a single ``proc`` struct) is read, safely."""
    from .matlab import matlab_proc
    from .matlab_files import read_mat73

    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py comes with pynwb
        raise _mat_refusal(path, "it is a MATLAB v7.3 (HDF5) file, and reading one needs h5py") from None
    try:
        with h5py.File(path, "r") as f:
            names = sorted(k for k in f.keys() if not k.startswith("#"))
    except (OSError, ValueError, RuntimeError) as err:
        raise _mat_refusal(
            path, f"it is a MATLAB v7.3 (HDF5) file that HDF5 cannot open (truncated or corrupt: {err})"
        ) from None
    if names != ["proc"]:
        raise _mat_refusal(
            path,
            f"it is a MATLAB v7.3 (HDF5) file holding the variable(s) {names[:8]}, not MATLAB Facemap's single 'proc' "
            "struct; other v7.3 files are not supported (Python Facemap writes version 5 files: save it from "
            "MATLAB with save(file, '-v7'), or pass the _proc.npy Facemap wrote beside it)",
        )
    proc = read_mat73(path, names=("proc",))["proc"]
    return _as_matlab_proc(path, proc, matlab_proc)


def _as_matlab_proc(path: Path, proc, convert) -> dict:
    try:
        return convert(proc)
    except ResultsError as err:
        raise FacemapOutputError(err.message_for(str(path)), path=str(path), key=err.key) from None


def _read_mat(path: Path) -> dict:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    with open(path, "rb") as f:
        if is_mat73_header(f.read(128)):
            return _read_mat73(path)
    _check_mat_file(path)
    try:
        raw = loadmat(str(path), squeeze_me=True, simplify_cells=True)
    except (MatReadError, ValueError, TypeError, OSError, NotImplementedError, EOFError, zlib.error) as err:
        raise _mat_refusal(path, f"SciPy cannot read it ({type(err).__name__}: {err})") from err
    except (IndexError, KeyError, AttributeError, OverflowError, struct.error, MemoryError, RecursionError) as err:
        raise _mat_refusal(path, f"it is corrupt ({type(err).__name__}: {err})") from err
    except NameError as err:  # SciPy's compiled reader on an unknown array class (UnboundLocalError)
        raise _mat_refusal(path, f"it holds an array of a kind SciPy does not know ({err})") from err
    variables = [key for key in raw if not key.startswith("__")]
    if variables == ["proc"]:  # MATLAB Facemap saves one struct; Python Facemap each key as a variable
        from .matlab import matlab_proc

        return _as_matlab_proc(path, raw["proc"], matlab_proc)
    proc: dict = {}
    lists: dict[str, dict[int, object]] = {}
    for key, value in raw.items():
        if key.startswith("__"):
            continue
        match = re.fullmatch(r"(.+)_(\d{1,6})", key)
        if match and match.group(1) in _LIST_KEYS:
            lists.setdefault(match.group(1), {})[int(match.group(2))] = value
        else:
            proc[key] = value
    for key, items in lists.items():
        if sorted(items) != list(range(len(items))):
            raise FacemapOutputError(
                f"'{path}' is not a Facemap output this loader understands: its '{key}_<n>' entries are numbered "
                f"{sorted(items)[:10]}, not 0, 1, 2, ... as Facemap writes them. {_FIX}.",
                path=str(path),
                key=key,
            )
        proc[key] = [items[i] for i in range(len(items))]
    # savemat squeezes singletons and turns one-element lists of dicts into a dict; Facemap writes 0 for no ROIs.
    for key in ("pupil", "rois"):
        value = proc.get(key)
        if isinstance(value, dict):
            proc[key] = [value]
        elif isinstance(value, (int, float)) or (isinstance(value, np.ndarray) and value.size == 0):
            proc[key] = [] if key == "pupil" else None
    for key in ("motSVD", "movSVD", "motMask_reshape", "movMask_reshape", "motion", "blink", "running"):
        proc.setdefault(key, [])
    return proc


def _processing_time(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)


def load_facemap_results(path: str | os.PathLike) -> FacemapResults:
    """Load a Facemap ``_proc.npy`` or ``_proc.mat`` file into the results model, checked.

    The processing time is the file's modification time (Facemap records none), as element-facemap's
    ``get_loader_result`` does.

    Raises
    ------
    FileNotFoundError
        When the file does not exist.
    ProcFileError
        A ``ValueError``: unsafe, corrupt, malformed or impossible files (:class:`FacemapOutputError`
        for their contents); the message names the file, the key, the value and the fix.
    """
    path = Path(path)
    proc = read_proc_file(path)
    try:
        results = results_from_proc(proc)
    except ResultsError as err:
        raise FacemapOutputError(err.message_for(str(path)), path=str(path), key=err.key) from None
    results.source_file = path.name
    results.processing_time = _processing_time(path)
    return results


# ------------------------------------------------------------------------------------------- accessors


def _fail(key: str, detail: str):
    raise ResultsError(f"{detail}. {_FIX}.", key=key, malformed=True)


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of {value.dtype} with shape {value.shape}"
    text = repr(value)
    return f"the {type(value).__name__} {text[:60] + '...' if len(text) > 60 else text}"


def _get(mapping: dict, key: str, where: str):
    if key not in mapping:
        _fail(where, f"the key '{where}' is missing")
    return mapping[key]


def _whole(value, key: str, minimum: int = 0) -> int:
    """An integer Facemap wrote as int, numpy integer, 1-element array (``.mat``) or integral float."""
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        value = value.reshape(-1)[0]
    if isinstance(value, (bool, np.bool_)):
        _fail(key, f"'{key}' is {value!r}, not a whole number")
    if isinstance(value, (int, np.integer)):
        number = int(value)
    elif isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        number = int(value)
    else:
        _fail(key, f"'{key}' is {_describe(value)}, not a whole number")
    if number < minimum:
        _fail(key, f"'{key}' is {number}, but it must be at least {minimum}")
    return number


def _number(value, key: str, low: float, high: float, *, open_low: bool = False) -> float:
    if isinstance(value, np.ndarray) and value.size == 1 and value.dtype.kind in "iuf":
        value = value.reshape(-1)[0]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        _fail(key, f"'{key}' is {_describe(value)}, not a number")
    number = float(value)
    if not math.isfinite(number) or number < low or number > high or (open_low and number == low):
        _fail(key, f"'{key}' is {number}, outside {'(' if open_low else '['}{low}, {high}]")
    return number


def _flag(value, key: str) -> bool:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, (int, np.integer)) and int(value) in (0, 1)):
        return bool(value)
    _fail(key, f"'{key}' is {_describe(value)}, not true or false")


def _wholes(value, key: str, minimum: int) -> list[int]:
    """A list of integers (``Ly``, ``Lx``); ``.mat`` files squeeze a one-element list to a number."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf" and value.ndim <= 1:
        value = value.reshape(-1).tolist()
    elif not isinstance(value, (list, tuple)):
        value = [value]
    if not value:
        _fail(key, f"'{key}' is empty, but Facemap writes one value per camera view")
    return [_whole(v, f"{key}[{i}]", minimum) for i, v in enumerate(value)]


def _array(value, key: str, kinds: str = "iuf") -> np.ndarray:
    """A numpy array of one of ``kinds`` (real numbers by default); lists, text and objects are refused."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        value = np.asarray(value)  # .mat files squeeze one-element arrays to numbers
    if not isinstance(value, np.ndarray):
        _fail(key, f"'{key}' is {_describe(value)}, where Facemap writes a numpy array")
    if value.dtype.kind not in kinds:
        what = {"c": "complex numbers (the imaginary part would be lost)", "O": "Python objects"}.get(
            value.dtype.kind, "text" if value.dtype.kind in "SU" else f"{value.dtype} values"
        )
        _fail(key, f"'{key}' is an array of {what} (data type {value.dtype}), where Facemap writes real numbers")
    return value


def _as_float(value, key: str, dtype) -> np.ndarray:
    array = _array(value, key)
    try:
        with np.errstate(over="raise"):
            return np.asarray(array, dtype=dtype)
    except FloatingPointError:
        _fail(key, f"'{key}' holds values beyond the range of {np.dtype(dtype)}, the type Facemap writes there")
    except (ValueError, MemoryError) as err:  # e.g. an empty array of huge dimensions (.mat)
        _fail(key, f"'{key}' ({_describe(array)}) cannot be read as {np.dtype(dtype)} ({err})")


def _list(value, key: str) -> list:
    """A Facemap list; ``None`` and empty arrays (``.mat``) are empty lists, one array a list of one (``.mat``)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return list(value.reshape(-1))
        return [] if value.size == 0 else [value]
    _fail(key, f"'{key}' is {_describe(value)}, where Facemap writes a list")


def _dict(value, key: str) -> dict:
    if not isinstance(value, dict):
        _fail(key, f"'{key}' is {_describe(value)}, where Facemap writes a dict")
    return value


def _pixel_range(value, key: str, *, allow_empty: bool = False) -> np.ndarray:
    values = _array(np.atleast_1d(value) if isinstance(value, (int, np.integer)) else value, key, "iu").reshape(-1)
    if values.size == 0 and allow_empty:
        return values
    if values.size == 0 or values[0] < 0 or np.any(np.diff(values) != 1):
        _fail(key, f"'{key}' ({_describe(values)}) is not a contiguous range of pixel indices >= 0")
    return values


# ---------------------------------------------------------------------------------------------- the model


def _roi(raw, index: int, name_counts: dict[str, int]) -> tuple[ROI, dict]:
    key = f"rois[{index}]"
    raw = _dict(raw, key)
    rind = _whole(_get(raw, "rind", f"{key}['rind']"), f"{key}['rind']")
    if rind not in (0, 1, 2, 3):
        _fail(f"{key}['rind']", f"'{key}['rind']' is {rind}, not one of Facemap's ROI kinds 0 to 3")
    clean = {
        "rind": rind,
        "yrange": _pixel_range(_get(raw, "yrange", f"{key}['yrange']"), f"{key}['yrange']"),
        "xrange": _pixel_range(_get(raw, "xrange", f"{key}['xrange']"), f"{key}['xrange']"),
        "ivid": _whole(raw.get("ivid", 0), f"{key}['ivid']"),
        "saturation": _number(raw.get("saturation", 0.0), f"{key}['saturation']", 0, 255),
        "pupil_sigma": _number(raw.get("pupil_sigma", 2.0), f"{key}['pupil_sigma']", 0, 1e6, open_low=True),
    }
    ellipse = raw.get("ellipse")
    if ellipse is not None:
        ellipse = _array(ellipse, f"{key}['ellipse']", "biu")
        if ellipse.dtype.kind != "b" and np.any((ellipse != 0) & (ellipse != 1)):
            _fail(f"{key}['ellipse']", f"'{key}['ellipse']' holds values other than 0 and 1")
        clean["ellipse"] = ellipse.astype(bool)
    for axis in ("y", "x"):
        if f"{axis}range_bin" in raw:
            name = f"{key}['{axis}range_bin']"
            clean[f"{axis}range_bin"] = _pixel_range(raw[f"{axis}range_bin"], name, allow_empty=True)
    try:
        roi = ROI.from_facemap(clean)
        count = name_counts.get(roi.type, 0)
        name_counts[roi.type] = count + 1
        return ROI.from_facemap(clean, name=f"{roi.type}{count}"), clean
    except ValueError as err:
        _fail(key, f"'{key}' is not a Facemap ROI: {err}")


def _bin_range(values) -> tuple[int, int] | None:
    return (int(values[0]), int(values[-1]) + 1) if values is not None and values.size else None


def _regions(proc: dict, sbin: int, views: list[tuple[int, int]], rois, clean_rois, full_frame: bool) -> list[Region]:
    regions = []
    if full_frame:
        one_view = len(views) == 1
        bins = binned_frame_shape(views, sbin) if sbin <= min(min(v) for v in views) else (0, 0)
        for key, computed in (("LYbin", bins[0]), ("LXbin", bins[1])):
            if key in proc and bins != (0, 0):
                stored = int(np.sum(_array(proc[key], key)))
                if stored != computed:
                    _fail(
                        key, f"'{key}' is {stored}, but views {views} (height, width) binned by {sbin} make {computed}"
                    )
        regions.append(
            Region(
                number=-1,
                name="full_frame",
                type="full_frame",
                video_index=0 if one_view else -1,
                y_range=(0, views[0][0] if one_view else bins[0] * sbin),
                x_range=(0, views[0][1] if one_view else bins[1] * sbin),
                y_bin_range=(0, bins[0]) if bins[0] else None,
                x_bin_range=(0, bins[1]) if bins[1] else None,
            )
        )
    for number, (roi, raw) in enumerate(zip(rois, clean_rois)):
        regions.append(roi_region(number, roi, _bin_range(raw.get("yrange_bin")), _bin_range(raw.get("xrange_bin"))))
    return regions


def roi_region(number: int, roi: ROI, y_bin_range, x_bin_range) -> Region:
    """The region of ROI ``number``: bin ranges for motion ROIs only, the threshold for pupil and blink
    ROIs, the fit's sigma for pupils (shared by the Python and MATLAB Facemap loaders)."""
    is_motion = roi.type == "motion"
    return Region(
        number=number,
        name=roi.name,
        type=roi.type,
        video_index=roi.video,
        y_range=(roi.y, roi.y + roi.height),
        x_range=(roi.x, roi.x + roi.width),
        y_bin_range=y_bin_range if is_motion else None,
        x_bin_range=x_bin_range if is_motion else None,
        saturation=roi.saturation if roi.type in ("pupil", "blink") else None,
        pupil_sigma=roi.pupil_sigma if roi.type == "pupil" else None,
    )


def _slot_arrays(proc: dict, key: str, slots: int, dtype) -> list[np.ndarray]:
    """Facemap's per-region list ``key`` (slot 0 the full frame, j the j-th motion ROI), as float arrays."""
    items = _list(proc.get(key), key)
    if len(items) > slots:
        _fail(key, f"'{key}' has {len(items)} entries, but the file has {slots - 1} motion ROI(s) and the full frame")
    return [_as_float(item, f"{key}[{slot}]", dtype) for slot, item in enumerate(items)]


def _masks(proc: dict, prefix: str, slot: int, k: int, region: Region) -> np.ndarray:
    shape = None
    if region.y_bin_range is not None and region.x_bin_range is not None:
        shape = (region.y_bin_range[1] - region.y_bin_range[0], region.x_bin_range[1] - region.x_bin_range[0])
    reshaped = _list(proc.get(f"{prefix}Mask_reshape"), f"{prefix}Mask_reshape")
    if slot < len(reshaped) and np.ndim(reshaped[slot]) == 3:
        masks = _as_float(reshaped[slot], f"{prefix}Mask_reshape[{slot}]", np.float32)
        key = f"{prefix}Mask_reshape[{slot}]"
    else:
        flat = _list(proc.get(f"{prefix}Mask"), f"{prefix}Mask")
        key = f"{prefix}Mask[{slot}]"
        if slot >= len(flat):
            _fail(key, f"'{key}' is missing: the SVD in '{prefix}SVD[{slot}]' has no masks")
        masks = _as_float(flat[slot], key, np.float32)
        if shape is None or masks.ndim != 2 or masks.shape[0] != shape[0] * shape[1]:
            _fail(key, f"'{key}' ({_describe(masks)}) is not (pixels, components) of its region's bins {shape}")
        masks = masks.reshape(*shape, -1)
    if (
        masks.ndim != 3
        or masks.shape[-1] != k
        or (shape is not None and region.type != "full_frame" and masks.shape[:2] != shape)
    ):
        bins = "height, width" if shape is None else f"{shape[0]}, {shape[1]}"
        _fail(
            key,
            f"'{key}' has the shape {masks.shape}, not (height, width, components) = ({bins}, {k}) to match its "
            f"region's bins and the {k} components of '{prefix}SVD[{slot}]'",
        )
    return np.moveaxis(masks, -1, 0)


def _svd_list(proc: dict, kind: str, region_of_slot: dict[int, int], regions: list[Region]) -> list[SVDComponents]:
    prefix = "mot" if kind == "motion" else "mov"
    projections = _slot_arrays(proc, f"{prefix}SVD", 1 + sum(r.type == "motion" for r in regions), np.float32)
    reported = _as_float(proc.get(f"{prefix}Sv", np.zeros(0)), f"{prefix}Sv", np.float32).ravel()
    if not np.all(np.isfinite(reported)):
        _fail(f"{prefix}Sv", f"'{prefix}Sv' holds NaN or infinite singular values")
    one_chunk = reported.size == 0 or not np.any(reported)
    slots = [s for s in range(len(projections)) if s in region_of_slot and projections[s].size]
    out = []
    for slot in slots:
        v = projections[slot]
        if v.ndim != 2:
            _fail(f"{prefix}SVD[{slot}]", f"'{prefix}SVD[{slot}]' has the shape {v.shape}, not (frames, components)")
        masks = _masks(proc, prefix, slot, v.shape[1], regions[region_of_slot[slot]])
        if one_chunk:
            with np.errstate(over="ignore", invalid="ignore"):
                norms = np.linalg.norm(masks.reshape(masks.shape[0], -1).astype(np.float64), axis=1)
            values, source = norms.astype(np.float32), "mask_norms"
        elif slot == slots[-1] and reported.size >= v.shape[1]:
            values, source = reported[: v.shape[1]].copy(), "facemap"
        else:
            with np.errstate(over="ignore", invalid="ignore"):
                values = np.linalg.norm(v.astype(np.float64), axis=0).astype(np.float32)
            source = "projection_norms"
        out.append(SVDComponents(kind, region_of_slot[slot], v, values, masks, source))
    return out


def _typed_list(proc: dict, key: str, count: int, what: str) -> list:
    items = _list(proc.get(key), key)
    if len(items) != count:
        _fail(key, f"'{key}' has {len(items)} entries, but 'rois' has {count} {what} ROI(s): Facemap writes one each")
    return items


def _pupil(region: int, values, key: str) -> PupilSignals:
    values = _dict(values, key)

    def get(name):
        return _as_float(_get(values, name, f"{key}['{name}']"), f"{key}['{name}']", np.float64)

    return PupilSignals(
        region=region,
        area=get("area"),
        area_smooth=get("area_smooth"),
        center=get("com"),
        center_smooth=get("com_smooth"),
        axes_length=get("axlen"),
        axes_direction=get("axdir"),
    )


def _frame_count(results: FacemapResults) -> int:
    arrays = [*results.motion_energy.values(), *results.blinks.values(), *results.running.values()]
    arrays += [s.projections for s in results.motion_svd + results.movie_svd] + [p.area for p in results.pupils]
    lengths = [a.shape[0] for a in arrays if a.ndim >= 1 and a.size]
    if not lengths:
        _fail("motion", "it holds no signals (no motion, SVD, pupil, blink or running traces)")
    return int(max(lengths))


def _filenames(value, views: int) -> list[list[str]]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [[value]]
    elif isinstance(value, np.ndarray) and value.dtype.kind in "UO":
        flat = value.reshape(-1).tolist()
        value = [flat[i : i + views] for i in range(0, len(flat), views)] if len(flat) % views == 0 else [flat]
    rows = _list(value, "filenames")
    out = []
    for i, row in enumerate(rows):
        row = [row] if isinstance(row, str) else _list(row, f"filenames[{i}]")
        for j, name in enumerate(row):
            if not isinstance(name, str):
                _fail(f"filenames[{i}][{j}]", f"'filenames[{i}][{j}]' is {_describe(name)}, not a file name")
        out.append([str(name) for name in row])
    return out


def results_from_proc(proc: dict) -> FacemapResults:
    """Build the results model from Facemap's proc dict (as :func:`read_proc_file` returns it), checked.

    Raises
    ------
    ResultsError
        A ``ValueError`` naming the Facemap key at fault: a missing key, a value of the wrong type,
        shape or range, or results :meth:`FacemapResults.validate` refuses.
    """
    from .matlab import MatlabFacemapProc, results_from_matlab_proc

    try:
        if isinstance(proc, MatlabFacemapProc):
            results = results_from_matlab_proc(proc)
        else:
            results = _results(_dict(proc, "the file's contents"))
    except ResultsError:
        raise
    except (KeyError, TypeError, IndexError, ValueError, AttributeError, OverflowError, MemoryError) as err:
        # Every value goes through the accessors above; this is the net under them.
        detail = f"missing key {err}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
        raise ResultsError(f"{detail}. {_FIX}.", key="?", malformed=True) from err
    results.validate()
    return results


def _results(proc: dict) -> FacemapResults:
    sbin = _whole(_get(proc, "sbin", "sbin"), "sbin", minimum=1)
    ly, lx = _wholes(_get(proc, "Ly", "Ly"), "Ly", 1), _wholes(_get(proc, "Lx", "Lx"), "Lx", 1)
    if len(ly) != len(lx):
        _fail("Lx", f"'Ly' has {len(ly)} views but 'Lx' has {len(lx)}")
    views = list(zip(ly, lx))
    counts: dict[str, int] = {}
    parsed = [_roi(raw, i, counts) for i, raw in enumerate(_list(proc.get("rois"), "rois"))]
    rois, clean_rois = [p[0] for p in parsed], [p[1] for p in parsed]
    full_frame = _flag(proc.get("fullSVD", True), "fullSVD")
    regions = _regions(proc, sbin, views, rois, clean_rois, full_frame)
    offset = 1 if full_frame else 0
    by_type: dict[str, list[int]] = {}
    for index, region in enumerate(regions[offset:], start=offset):
        by_type.setdefault(region.type, []).append(index)
    # Facemap's slot 0 is the full frame, slot j >= 1 the j-th motion ROI.
    region_of_slot = {j + 1: index for j, index in enumerate(by_type.get("motion", []))}
    if full_frame:
        region_of_slot[0] = 0
    motion_svd = _svd_list(proc, "motion", region_of_slot, regions)
    movie_svd = _svd_list(proc, "movie", region_of_slot, regions)
    parameters = FacemapParameters(
        spatial_bin=sbin,
        motion_svd=bool(motion_svd) or not movie_svd,
        movie_svd=bool(movie_svd),
        multivideo_svd=full_frame,
        n_components=FACEMAP_N_COMPONENTS,
        rois=tuple(rois),
    )
    if proc.get("motion") is None:
        _fail("motion", "the key 'motion' is missing (Facemap always writes the motion energy list)")
    motion = _slot_arrays(proc, "motion", 1 + len(by_type.get("motion", [])), np.float32)
    pupils = _typed_list(proc, "pupil", len(by_type.get("pupil", [])), "pupil")
    blinks = _typed_list(proc, "blink", len(by_type.get("blink", [])), "blink")
    running = _typed_list(proc, "running", len(by_type.get("running", [])), "running")
    results = FacemapResults(
        parameters=parameters,
        frame_count=0,
        view_shapes=views,
        regions=regions,
        motion_energy={region_of_slot[s]: m for s, m in enumerate(motion) if s in region_of_slot and m.size},
        motion_svd=motion_svd,
        movie_svd=movie_svd,
        average_frame=_optional_image(proc, "avgframe_reshape"),
        average_motion=_optional_image(proc, "avgmotion_reshape"),
        pupils=[_pupil(i, p, f"pupil[{k}]") for k, (i, p) in enumerate(zip(by_type.get("pupil", []), pupils))],
        blinks={
            i: _as_float(b, f"blink[{k}]", np.float64) for k, (i, b) in enumerate(zip(by_type.get("blink", []), blinks))
        },
        running={
            i: _as_float(r, f"running[{k}]", np.float64)
            for k, (i, r) in enumerate(zip(by_type.get("running", []), running))
        },
        engine="facemap",
        video_files=_filenames(proc.get("filenames"), len(views)),
    )
    results.frame_count = _frame_count(results)
    return results


def _optional_image(proc: dict, key: str) -> np.ndarray | None:
    value = proc.get(key)
    return None if value is None else _as_float(value, key, np.float32)
