"""Synthetic MATLAB Facemap ``proc`` structs, laid out as MATLAB Facemap's code lays them out, and written as
MATLAB writes them: v7 (compressed MAT 5, through SciPy's ``savemat``) and v7.3 (HDF5, through h5py with
MATLAB's user block, ``MATLAB_class`` attributes, ``#refs#``, reversed dimensions and empty markers).

The values are described in MATLAB's terms (arrays in MATLAB's orientation, 1-based positions); every
number a test expects from them is written out below by hand (:data:`EXPECTED`), never computed by the
loader under test.

MATLAB values are Python values here: a 2-D numpy array (its dtype is the class; ``bool`` is ``logical``),
``str`` (``char``), :class:`Cell`, ``dict`` (a 1x1 struct) and :class:`StructArray`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = ["Cell", "StructArray", "matlab_proc", "write_v7", "write_v73", "EXPECTED", "T", "PARTS", "SC", "VIEWS"]

T = 40  # frames
PARTS = (25, 15)  # frames of the two sequential files of each view
SC = 4  # spatial bin
VIEWS = [(60, 80), (50, 66)]  # (height, width); view 2's 66 / 4 leaves two columns out of the bins
BINS = [(15, 20), (12, 16)]
HEADER = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema 1.00 ."


@dataclass
class Cell:
    """A MATLAB cell array: its shape and its elements in MATLAB's (column-major) order."""

    shape: tuple[int, int]
    items: list = field(default_factory=list)


@dataclass
class StructArray:
    """A 1 x n MATLAB struct array."""

    elements: list[dict]


def row(*items) -> Cell:
    return Cell((1, len(items)), list(items))


def col(values, dtype=np.float64) -> np.ndarray:
    return np.asarray(values, dtype=dtype).reshape(-1, 1)


def _unit_columns(a: np.ndarray) -> np.ndarray:
    return (a / np.linalg.norm(a, axis=0, keepdims=True)).astype(np.float32)  # MATLAB's normc


# What the loader must make of matlab_proc(views=2), worked out by hand from the values below.
EXPECTED = {
    # locROI{2} = [2.5 2.4 8.2 5.5] binned; MATLAB's round gives [3 2 8 6] (numpy's would give 2 for 2.5):
    # bin rows 2..7, columns 3..10 (1-based) -> 0-based bins [1, 7) x [2, 10), pixels x 4.
    "motion0": {"y_bin": (1, 7), "x_bin": (2, 10), "y": (4, 28), "x": (8, 40), "view": 0},
    # locROI{4} = [10.5 6.5 4 3] on view 2 -> round [11 7 4 3]: bins [6, 9) x [10, 14).
    "motion1": {"y_bin": (6, 9), "x_bin": (10, 14), "y": (24, 36), "x": (40, 56), "view": 1},
    # locROI{5} = [3.6 2.2 4.5 3.1] -> max(1, floor(locROI * 4)) = [14 8 18 12] full-resolution pixels:
    # rows 8..19, columns 14..31 (1-based).
    "pupil0": {"y": (7, 19), "x": (13, 31), "view": 0},
    # locROI{1} = [2.3 1.6 6.2 5.9] on view 2 -> floor(x 4) = [9 6 24 23]: rows 6..28, columns 9..32.
    "running0": {"y": (5, 28), "x": (8, 32), "view": 1},
    # locROI{8} = [12.2 1.3 2.6 2.2] on view 2 -> [48 5 10 8]: rows 5..12, columns 48..57.
    "blink0": {"y": (4, 12), "x": (47, 57), "view": 1},
    # saturation(5) = 0.3: pupil pixels darker than 255 - 0.3 * 255; saturation(8) = 0.6: blink below 0.4 * 255.
    "pupil_threshold": 255 - 76.5,
    "blink_threshold": 102.0,
    # Views placed side by side in bins: view 1 at (0, 0), view 2 at (0, 20); the picture is 15 x 36 bins.
    "binned_frame": (15, 36),
    "view_origins": [(0, 0), (0, 20)],
    # wpix{1}: all of view 1's 15 x 20 bins but eROI{1} = [2.5 3.5 4 2] -> round [3 4 4 2]: rows 4..5,
    # columns 3..6 (1-based) out: 292 pixels. wpix{2}: ROI{2} = [2 2 6 4] and [9 5 5 6]: 24 + 30 pixels.
    "npix": (292, 54),
    # uMotMask{1} row -> binned (row, column) of the combined picture (column-major over wpix{1}, then wpix{2}):
    # row 0: view 1 (0, 0); row 33: view 1 column 2 after its rows 0..2 (rows 3, 4 excluded) -> (5, 2);
    # row 292: view 2's first pixel (1, 1) -> (1, 21); the last row: view 2's (9, 12) -> (9, 32).
    "mask_rows": {0: (0, 0), 33: (5, 2), 292: (1, 21), 345: (9, 32)},
    "excluded_bin": (3, 2),  # inside eROI{1}: zero in every component
    # pupil(1).com(1, :) = [5 3] = (x, y) 1-based in the pupil's crop -> (y, x) 0-based (2, 4); in the frame
    # (7 + 2, 13 + 4).
    "pupil_center_0": (2.0, 4.0),
    "pupil_center_frame_0": (9.0, 17.0),
}


def matlab_proc(views: int = 2, seed: int = 3) -> dict:
    """MATLAB Facemap's ``proc`` after processing (``saveROI.m``): 8 ROI slots, a running ROI (slot 1),
    two motion ROIs (slots 2 and 4; slot 3 off), a pupil (slot 5) and a blink (slot 8, so blink(1) is empty),
    the multivideo SVD over two views (7 components; motion ROIs 5 and 3), ``T`` frames in two files.

    ``views=1`` keeps view 1 only (every ROI on it, one file of ``T`` frames): MATLAB's 1x1 cells and
    1x1 arrays, which SciPy squeezes away.
    """
    rng = np.random.default_rng(seed)
    f32 = np.float32
    nv = views
    wpix1 = np.ones(BINS[0], dtype=bool)
    wpix1[3:5, 2:6] = False  # eROI{1}, see EXPECTED
    wpix2 = np.zeros(BINS[1], dtype=bool)
    wpix2[1:5, 1:7] = True  # ROI{2}{1} = [2 2 6 4]
    wpix2[4:10, 8:13] = True  # ROI{2}{2} = [9 5 5 6]
    wpix = [wpix1, wpix2][:nv]
    npix = [int(w.sum()) for w in wpix]
    tpix = [b[0] * b[1] for b in BINS[:nv]]
    avg = [rng.random(b).astype(f32) * 200 for b in BINS[:nv]]
    avgm = [rng.random(b).astype(f32) * 5 for b in BINS[:nv]]
    u1 = _unit_columns(rng.normal(size=(sum(npix), 7)))
    u2 = _unit_columns(rng.normal(size=(6 * 8, 5))).reshape(6, 8, 5, order="F")
    u4 = _unit_columns(rng.normal(size=(3 * 4, 3))).reshape(3, 4, 3, order="F")
    v1, v2, v4 = (rng.normal(size=(T, k)).astype(f32) for k in (7, 5, 3))
    com = (rng.random((T, 2)) * 10 + 1).astype(f32)
    com[0] = (5.0, 3.0)
    com[1] = np.nan  # a frame the Gaussian fit could not fit
    area_raw = rng.random((T, 1)) * 50
    area_raw[1] = np.nan
    second = 2 if nv == 2 else 1
    files = (
        Cell((2, 2), ["/data/m1/cam1_1.avi", "/data/m1/cam2_1.avi", "/data/m1/cam1_2.avi", "/data/m1/cam2_2.avi"])
        if nv == 2
        else Cell((1, 1), ["/data/m1/cam1.avi"])
    )
    saturation = np.zeros((100, 1))
    saturation[4], saturation[7] = 0.3, 0.6
    locroi = [
        np.array([[2.3, 1.6, 6.2, 5.9]]),
        np.array([[2.5, 2.4, 8.2, 5.5]]),
        np.zeros((0, 0)),
        np.array([[10.5, 6.5, 4.0, 3.0]]),
        np.array([[3.6, 2.2, 4.5, 3.1]]),
        np.zeros((0, 0)),
        np.zeros((0, 0)),
        np.array([[12.2, 1.3, 2.6, 2.2]]),
    ]
    proc = {
        "files": files,
        "nframes": col(PARTS if nv == 2 else [T], np.int64),
        "rootfolder": "/data/m1",
        "nX": row(*[np.array([[float(w)]]) for _, w in VIEWS[:nv]]),
        "nY": row(*[np.array([[float(h)]]) for h, _ in VIEWS[:nv]]),
        "sc": np.array([[float(SC)]]),
        "useGPU": np.array([[0.0]]),
        "ROI": row(row(np.array([[1.0, 1, 20, 15]])), row(np.array([[2.0, 2, 6, 4]]), np.array([[9.0, 5, 5, 6]])))
        if nv == 2
        else row(row(np.array([[1.0, 1, 20, 15]]))),
        "eROI": row(row(np.array([[2.5, 3.5, 4, 2]])), row(np.zeros((0, 0))))
        if nv == 2
        else row(row(np.array([[2.5, 3.5, 4, 2]]))),
        "locROI": row(*locroi),
        "ROIfile": col([second, 1, 0, second, 1, 0, 0, second]),
        "plotROIs": col([1, 1, 0, 1, 1, 0, 0, 1], bool),
        "saturation": saturation,
        "thres": np.array([[4.0]]),
        "tpix": np.array([tpix], dtype=np.float64),
        "npix": np.array([npix], dtype=np.float64),
        "wpix": row(*wpix),
        "avgmot": row(
            rng.random((sum(npix), 1)).astype(f32),
            rng.random((48, 1)).astype(f32),
            np.zeros((0, 0)),
            rng.random((12, 1)).astype(f32),
        ),  # fmt: skip
        "motSVD": row(v1, v2, np.zeros((0, 0), f32), v4),
        "uMotMask": row(u1, u2, np.zeros((0, 0), f32), u4),
        "avgframe": np.concatenate([a.reshape(-1, 1, order="F") for a in avg]),
        "avgmotion": np.concatenate([a.reshape(-1, 1, order="F") for a in avgm]),
        "runSpeed": rng.integers(-3, 4, size=(T, 2)).astype(f32),
        "pupil": {"area": rng.random((T, 1)) * 50, "com": com, "area_raw": area_raw},
        "blink": StructArray([{"area": np.zeros((0, 0))}, {"area": rng.integers(0, 80, size=(T, 1)).astype(float)}]),
    }
    # What the tests compare against (the same arrays, in the model's terms by hand).
    proc["_truth"] = {"avg": avg, "avgm": avgm, "u1": u1, "u2": u2, "u4": u4, "v": (v1, v2, v4), "wpix": wpix}
    return proc


def truth(proc: dict) -> dict:
    return proc["_truth"]


def _without_truth(proc: dict) -> dict:
    return {k: v for k, v in proc.items() if k != "_truth"}


# ---------------------------------------------------------------------------------------------- v7


def _scipy_value(value):
    if isinstance(value, Cell):
        out = np.empty(value.shape, dtype=object)
        for i, item in enumerate(value.items):
            out[np.unravel_index(i, value.shape, order="F")] = _scipy_value(item)
        return out
    if isinstance(value, StructArray):
        names = list(value.elements[0])
        out = np.empty((1, len(value.elements)), dtype=[(n, object) for n in names])
        for i, element in enumerate(value.elements):
            out[0, i] = tuple(_scipy_value(element[n]) for n in names)
        return out
    if isinstance(value, dict):
        return {k: _scipy_value(v) for k, v in value.items()}
    return value


def write_v7(path, proc: dict, *, variables: dict | None = None) -> Path:
    """``save(path, '-v7', 'proc')``: compressed MAT 5 (SciPy writes what MATLAB's reader reads)."""
    from scipy.io import savemat

    content = variables if variables is not None else {"proc": _without_truth(proc)}
    savemat(str(path), {k: _scipy_value(v) for k, v in content.items()}, do_compression=True)
    return Path(path)


# -------------------------------------------------------------------------------------------- v7.3


class _H5Writer:
    def __init__(self, handle):
        import h5py

        self.h5py, self.file = h5py, handle
        self.refs = handle.create_group("#refs#")
        self.count = 0
        empty = self.refs.create_dataset("a", data=np.array([0, 0], dtype=np.uint64))  # MATLAB's canonical empty
        self._tag(empty, "canonical empty")
        empty.attrs["MATLAB_empty"] = np.uint8(1)

    def _tag(self, obj, kind: str):
        obj.attrs["MATLAB_class"] = np.bytes_(kind)

    def _ref_name(self) -> str:
        self.count += 1
        n, name = self.count, ""
        while n:
            n, r = divmod(n, 26)
            name = "abcdefghijklmnopqrstuvwxyz"[r] + name
        return name + "_"  # never 'a', MATLAB's canonical empty

    def reference(self, value):
        name = self._ref_name()
        return self.write(self.refs, name, value).ref

    def write(self, parent, name: str, value):
        if isinstance(value, Cell):
            refs = np.empty(value.shape, dtype=self.h5py.ref_dtype)
            for i, item in enumerate(value.items):
                refs[np.unravel_index(i, value.shape, order="F")] = self.reference(item)
            obj = parent.create_dataset(name, data=refs.T, dtype=self.h5py.ref_dtype)
            self._tag(obj, "cell")
            return obj
        if isinstance(value, (dict, StructArray)):
            group = parent.create_group(name)
            self._tag(group, "struct")
            names = list(value if isinstance(value, dict) else value.elements[0])
            fields = np.empty(len(names), dtype=self.h5py.vlen_dtype(np.dtype("S1")))
            for i, n in enumerate(names):
                fields[i] = np.array(list(n.encode()), dtype="S1")
            group.attrs.create("MATLAB_fields", fields, dtype=self.h5py.vlen_dtype(np.dtype("S1")))
            if isinstance(value, dict):
                for n in names:
                    self.write(group, n, value[n])
            else:
                for n in names:
                    refs = np.empty((1, len(value.elements)), dtype=self.h5py.ref_dtype)
                    for i, element in enumerate(value.elements):
                        refs[0, i] = self.reference(element[n])
                    group.create_dataset(n, data=refs.T, dtype=self.h5py.ref_dtype)
            return group
        if isinstance(value, str):
            if not value:
                return self._empty(parent, name, "char", (0, 0))
            codes = np.frombuffer(value.encode("utf-16-le"), dtype="<u2").reshape(1, -1)
            obj = parent.create_dataset(name, data=codes.T)
            self._tag(obj, "char")
            obj.attrs["MATLAB_int_decode"] = np.int32(2)
            return obj
        value = np.asarray(value)
        kind = "logical" if value.dtype == bool else value.dtype.name
        kind = {"float64": "double", "float32": "single"}.get(kind, kind)
        if value.size == 0:
            return self._empty(parent, name, kind, value.shape)
        data = value.astype(np.uint8) if value.dtype == bool else value
        options = {"compression": "gzip", "shuffle": True} if data.size >= 64 else {}
        obj = parent.create_dataset(name, data=data.T, **options)
        self._tag(obj, kind)
        return obj

    def _empty(self, parent, name: str, kind: str, shape):
        obj = parent.create_dataset(name, data=np.array(shape, dtype=np.uint64))
        self._tag(obj, kind)
        obj.attrs["MATLAB_empty"] = np.uint8(1)
        return obj


def write_v73(path, proc: dict, *, variables: dict | None = None, edit=None) -> Path:
    """``save(path, '-v7.3', 'proc')``: HDF5 behind MATLAB's 512-byte user block. ``edit(file, writer)``
    may change the HDF5 content before it is closed (for damaged files)."""
    import h5py

    path = Path(path)
    content = variables if variables is not None else {"proc": _without_truth(proc)}
    with h5py.File(path, "w", userblock_size=512, libver="earliest") as f:
        writer = _H5Writer(f)
        for name, value in content.items():
            writer.write(f, name, value)
        if edit is not None:
            edit(f, writer)
    with open(path, "r+b") as f:
        f.write(HEADER.ljust(116) + b"\x00" * 8 + b"\x00\x02IM")
    return path
