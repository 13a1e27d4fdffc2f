"""A safe reader of MATLAB v7.3 MAT-files (HDF5), giving what SciPy's ``loadmat`` gives for a v7 file.

MATLAB's ``save(file, '-v7.3', ...)`` writes an HDF5 file behind a 512-byte user block (``MATLAB 7.3
MAT-file, ...``). Each variable is an object at the root with the attribute ``MATLAB_class``:

* numeric (``double``, ``single``, ``int8`` ... ``uint64``) and ``logical`` (``uint8``) arrays, their
  dimensions reversed (the dataset's shape is MATLAB's backwards, so its transpose is MATLAB's array);
* ``char`` arrays as ``uint16`` code units (``MATLAB_int_decode`` = 2);
* ``cell`` arrays as datasets of object references (dimensions reversed) to objects in ``#refs#``;
* ``struct``: a group whose members are the fields (a 1x1 struct), or, for a struct array, whose
  members are datasets of object references (one per element) without a ``MATLAB_class``;
* empty arrays as a ``uint64`` dataset holding the dimensions, with ``MATLAB_empty`` = 1.

:func:`read_mat73` turns these into the structures ``scipy.io.loadmat(squeeze_me=True,
simplify_cells=True)`` makes of a v7 file: arrays in MATLAB's orientation with singleton dimensions
squeezed, 1x1 arrays as Python numbers, ``logical`` as ``uint8`` 0/1 (as SciPy reads it), ``char`` as
``str``, cells as object arrays (one element: the element itself), structs as dicts and struct arrays
as lists of dicts; so one mapper serves both formats.

Nothing in the file is executed or followed outside it, and everything is bounded before it is read:
only hard links (no external or soft links), no external storage, no virtual datasets, no filters but
deflate, shuffle and Fletcher-32 (an HDF5 filter plugin would load code), object references at most
``MAX_DEPTH`` deep and never in a loop, at most ``MAX_OBJECTS`` objects, and datasets whose declared
size fits a budget proportional to the file's size (a compressed dataset cannot inflate beyond it).
Sparse matrices, function handles, objects and anything not of a class MATLAB Facemap writes are
refused. Each refusal is a :class:`~facemap_nwb.loaders.facemap.FacemapOutputError` naming the file,
the field (``proc.locROI{3}``, ``proc.pupil(2).com``: MATLAB's 1-based indexing), the value and the fix.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["read_mat73", "MAX_DEPTH", "MAX_OBJECTS", "is_mat73_header", "check_hdf5_storage"]

MAX_DEPTH = 32  # cells and structs nested deeper than this are refused
MAX_OBJECTS = 100_000  # HDF5 objects read in one file (a DAG of references cannot fan out beyond it)
_MAX_MEMBERS = 10_000  # fields of one struct
_MAX_NDIM = 8
_INFLATE_FACTOR = 20  # as for v7 files: far beyond any real compression ratio, far below a bomb
_INFLATE_ALLOWANCE = 64 * 2**20
_ATTRIBUTE_BYTES = 1024
_ZLIB_RATIO = 1100  # deflate inflates at most ~1032-fold
_CHUNK_SLACK = 16 * 2**20  # what a chunk may harmlessly inflate beyond its size before it is checked
_NUMERIC = {
    "double": np.float64,
    "single": np.float32,
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "uint16": np.uint16,
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "uint64": np.uint64,
}
_ALLOWED_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32"}  # what MATLAB's HDF5 writer uses
_FIX = "save it again from MATLAB (save(file, '-v7.3', 'proc') or '-v7'), or pass the _proc.mat MATLAB Facemap wrote"


def is_mat73_header(header: bytes) -> bool:
    """Whether the first 128 bytes of a ``.mat`` file are a v7.3 (HDF5) header."""
    return header[:10] == b"MATLAB 7.3" or (len(header) >= 128 and header[124:126] in (b"\x00\x02", b"\x02\x00"))


def _refusal(path: Path, field: str | None, problem: str, fix: str = _FIX):
    from .facemap import FacemapOutputError

    if field and len(field) > 80:
        field = field[:40] + "..." + field[-30:]
    where = f" ({field})" if field else ""
    return FacemapOutputError(
        f"'{path}' is not a MATLAB v7.3 _proc.mat file this loader reads{where}: {problem}. Fix: {fix}.",
        path=str(path),
        key=field,
    )


def check_hdf5_storage(dataset, budget: int, fail, *, what: str, fix: str, max_ndim: int = _MAX_NDIM) -> int:
    """Check an h5py dataset before any of its data is read; return its size in bytes.

    Refused through ``fail(problem[, fix])`` (which raises): data in external files, virtual datasets, HDF5
    filters other than deflate, shuffle and Fletcher-32 (another would load a plugin), more than
    ``max_ndim`` dimensions, a declared size beyond ``budget`` (``what`` names what the file is, ``fix``
    what to do), and deflated chunks that inflate beyond their declared size (HDF5's deflate filter grows
    its buffer until the stream ends, whatever the chunk's size), which are inflated here, bounded, first.
    Shared by every reader of user-given HDF5 (MATLAB v7.3 files, Facemap pose files).
    """
    try:
        external = dataset.external
        virtual = dataset.is_virtual
        plist = dataset.id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
        shape, itemsize = dataset.shape, dataset.dtype.itemsize
    except (OSError, ValueError, TypeError, RuntimeError) as err:
        fail(f"its storage cannot be read (truncated or corrupt: {err})")
    if external:
        fail(f"its data lie in external file(s) {[e[0] for e in external][:3]}, which are never read")
    if virtual:
        fail("it is a virtual dataset (its data would come from other files)")
    unknown = [f for f in filters if f not in _ALLOWED_FILTERS]
    if unknown:
        fail(
            f"it needs the HDF5 filter(s) {unknown}, which would load a plugin; only "
            f"{', '.join(_ALLOWED_FILTERS.values())} are read"
        )
    if shape is None or not 1 <= len(shape) <= max_ndim:
        fail(f"its shape is {shape}, where 1 to {max_ndim} dimensions are expected")
    size = math.prod(shape) * itemsize
    if size > budget:
        fail(
            f"it declares {shape} values ({size} bytes), beyond what {what} can hold (a decompression bomb, or damage)",
            fix,
        )
    if 1 in filters:
        _check_chunks(dataset, filters, fail, fix)
    return size


def _check_chunks(dataset, filters: list[int], fail, fix: str) -> None:
    import zlib

    position = filters.index(1)
    if any(f != 3 for f in filters[position + 1 :]):
        fail(f"its filters {filters} shuffle compressed data, which no writer does")
    checksum = 3 in filters[position + 1 :]
    try:
        chunk_bytes = math.prod(dataset.chunks) * dataset.dtype.itemsize
        count = dataset.id.get_num_chunks()
    except (OSError, ValueError, TypeError, RuntimeError) as err:
        fail(f"its chunks cannot be listed (truncated or corrupt: {err})")
    for index in range(count):
        try:
            info = dataset.id.get_chunk_info(index)
            if info.filter_mask & (1 << position) or info.size * _ZLIB_RATIO <= chunk_bytes + _CHUNK_SLACK:
                continue  # stored uncompressed, or too small to inflate to harm
            _, raw = dataset.id.read_direct_chunk(info.chunk_offset)
        except (OSError, ValueError, TypeError, RuntimeError) as err:
            fail(f"its chunk {index} cannot be read (truncated or corrupt: {err})")
        if checksum and not info.filter_mask & (1 << filters.index(3, position)):
            raw = raw[:-4]
        try:
            inflated = len(zlib.decompressobj().decompress(raw, chunk_bytes + 1))
        except zlib.error as err:
            fail(f"its chunk {index} is corrupt ({err})")
        if inflated > chunk_bytes:
            fail(
                f"its chunk {index} ({info.size} bytes stored) inflates beyond the {chunk_bytes} bytes it declares "
                "(a decompression bomb)",
                fix,
            )


def read_mat73(path, *, names: tuple[str, ...] | None = None) -> dict:
    """The variables of a MATLAB v7.3 file, as SciPy's ``loadmat(squeeze_me=True, simplify_cells=True)``
    gives those of a v7 file (see the module docstring); only ``names`` when given (others are not read).

    Raises
    ------
    FacemapOutputError
        A ``ValueError`` naming the file, the field, the value and the fix: not HDF5, truncated or
        corrupt, or holding anything unsafe or not written by MATLAB.
    """
    import h5py

    path = Path(path)
    budget = _INFLATE_FACTOR * path.stat().st_size + _INFLATE_ALLOWANCE
    try:
        handle = h5py.File(path, "r")
    except (OSError, ValueError) as err:
        raise _refusal(path, None, f"HDF5 cannot open it, so it is truncated or corrupt ({err})") from None
    with handle:
        reader = _Reader(path, handle, budget)
        return reader.variables(names)


class _Reader:
    def __init__(self, path: Path, handle, budget: int):
        self.path, self.file, self.budget = path, handle, budget
        self.objects = 0
        self.stack: set = set()

    def fail(self, field: str | None, problem: str, fix: str = _FIX):
        raise _refusal(self.path, field, problem, fix)

    # -- links, attributes, storage

    def member(self, group, name: str, field: str):
        import h5py

        try:
            link = group.get(name, getlink=True)
        except (OSError, KeyError, ValueError, RuntimeError) as err:
            self.fail(field, f"its link cannot be read ({err})")
        if isinstance(link, h5py.ExternalLink):
            self.fail(field, f"it is an external link to '{link.filename}:{link.path}', which is never followed")
        if isinstance(link, h5py.SoftLink):
            self.fail(field, f"it is a soft link to '{link.path}'; MATLAB writes only hard links and references")
        if not isinstance(link, h5py.HardLink):
            self.fail(field, f"it is a link of an unknown kind ({type(link).__name__})")
        try:
            return group[name]
        except (OSError, KeyError, ValueError, RuntimeError) as err:
            self.fail(field, f"it cannot be opened (truncated or corrupt: {err})")

    def attribute(self, obj, name: str, field: str):
        import h5py

        try:
            if name not in obj.attrs:
                return None
            attr = h5py.h5a.open(obj.id, name.encode())
            if attr.get_storage_size() > _ATTRIBUTE_BYTES:
                self.fail(field, f"its attribute {name} holds {attr.get_storage_size()} bytes, not a MATLAB tag")
            string = h5py.check_string_dtype(attr.dtype)
            if attr.dtype.kind == "O" or (string is not None and string.length is None):
                self.fail(field, f"its attribute {name} is of variable length, which MATLAB never writes")
            value = obj.attrs[name]
        except (OSError, KeyError, ValueError, TypeError, RuntimeError) as err:
            self.fail(field, f"its attribute {name} cannot be read (truncated or corrupt: {err})")
        return value

    def matlab_class(self, obj, field: str) -> str:
        value = self.attribute(obj, "MATLAB_class", field)
        if value is None:
            self.fail(field, "it has no MATLAB_class attribute, so MATLAB did not write it")
        if isinstance(value, np.ndarray):
            value = value.reshape(-1)[0] if value.size == 1 else b""
        if isinstance(value, (bytes, np.bytes_)):
            try:
                value = bytes(value).decode("ascii")
            except UnicodeDecodeError:
                value = "?"
        return str(value)

    def flag(self, obj, name: str, field: str) -> bool:
        value = self.attribute(obj, name, field)
        if value is None:
            return False
        array = np.asarray(value)
        if array.dtype.kind not in "iub" or array.size != 1:
            self.fail(field, f"its attribute {name} is {array!r}, not a MATLAB flag")
        return bool(array.reshape(-1)[0])

    def check_storage(self, dataset, field: str) -> None:
        """Refuse what would be read from elsewhere, load code or inflate beyond the budget."""
        self.budget -= check_hdf5_storage(
            dataset,
            self.budget,
            lambda problem, fix=_FIX: self.fail(field, problem, fix),
            what=f"a {self.path.stat().st_size}-byte results file",
            fix="pass the _proc.mat MATLAB Facemap wrote",
            max_ndim=_MAX_NDIM,
        )

    def read(self, dataset, field: str) -> np.ndarray:
        try:
            return np.asarray(dataset[()])
        except (OSError, ValueError, TypeError, RuntimeError, MemoryError) as err:
            self.fail(field, f"its data cannot be read (truncated or corrupt: {err})")

    # -- objects

    def variables(self, names) -> dict:
        root = self.file
        try:
            keys = [k for k in root.keys() if not k.startswith("#")]
        except (OSError, RuntimeError) as err:
            self.fail(None, f"its root group cannot be read ({err})")
        if len(keys) > _MAX_MEMBERS:
            self.fail(None, f"it holds {len(keys)} variables")
        out = {}
        for key in keys:
            if names is not None and key not in names:
                continue
            out[key] = self.node(self.member(root, key, key), key, 0)
        return out

    def node(self, obj, field: str, depth: int):
        import h5py

        if depth > MAX_DEPTH:
            self.fail(field, f"its cells or structs nest more than {MAX_DEPTH} levels deep")
        self.objects += 1
        if self.objects > MAX_OBJECTS:
            self.fail(field, f"it holds more than {MAX_OBJECTS} MATLAB arrays (references fanning out)")
        try:
            info = h5py.h5o.get_info(obj.id)
            identity = (info.fileno, info.addr)
        except (OSError, ValueError, RuntimeError) as err:
            self.fail(field, f"it cannot be read ({err})")
        if identity in self.stack:
            self.fail(field, "its references lead back to itself (a reference loop)")
        self.stack.add(identity)
        from .facemap import FacemapOutputError

        try:
            return self._node(obj, field, depth)
        except FacemapOutputError:
            raise
        except (OSError, ValueError, TypeError, KeyError, IndexError, RuntimeError, OverflowError, MemoryError) as err:
            # HDF5 and h5py on damaged metadata (a datatype no numpy type holds, a broken header, ...)
            self.fail(field, f"it cannot be read (corrupt: {type(err).__name__}: {err})")
        finally:
            self.stack.discard(identity)

    def _node(self, obj, field: str, depth: int):
        import h5py

        kind = self.matlab_class(obj, field)
        if isinstance(obj, h5py.Group):
            if kind != "struct":
                self.fail(field, f"it is a MATLAB {kind!r} stored as a group, which MATLAB Facemap never writes")
            return self.struct(obj, field, depth)
        if not isinstance(obj, h5py.Dataset):
            self.fail(field, f"it is an HDF5 {type(obj).__name__}, not a MATLAB array")
        if self.attribute(obj, "MATLAB_sparse", field) is not None:
            self.fail(field, "it is a sparse matrix, which MATLAB Facemap never writes")
        if self.attribute(obj, "MATLAB_object_decode", field) is not None:
            self.fail(field, f"it is a MATLAB object of class {kind!r}, which MATLAB Facemap never writes")
        self.check_storage(obj, field)
        if self.flag(obj, "MATLAB_empty", field):
            return self.empty(obj, kind, field)
        if kind == "cell":
            return self.cell(obj, field, depth)
        if kind == "char":
            return self.char(obj, field)
        if kind == "logical":
            return self.numeric(obj, field, np.uint8, kind=kind, logical=True)
        if kind in _NUMERIC:
            return self.numeric(obj, field, _NUMERIC[kind], kind=kind)
        self.fail(field, f"it is of the MATLAB class {kind!r}, which MATLAB Facemap never writes")

    def empty(self, dataset, kind: str, field: str):
        dims = self.read(dataset, field)
        if dims.dtype.kind not in "iu" or dims.ndim != 1 or not 2 <= dims.size <= _MAX_NDIM or np.all(dims != 0):
            self.fail(field, f"it is marked empty but holds {dims!r}, not the dimensions of an empty array")
        if kind == "char":
            return ""
        if kind == "cell":
            return np.empty(0, dtype=object)
        if kind == "struct":
            return np.empty(0, dtype=object)
        if kind == "logical":
            return np.zeros(0, dtype=np.uint8)
        if kind in _NUMERIC:
            return np.zeros(0, dtype=_NUMERIC[kind])
        self.fail(field, f"it is an empty array of the MATLAB class {kind!r}, which MATLAB Facemap never writes")

    def numeric(self, dataset, field: str, dtype, *, kind: str, logical: bool = False):
        actual = dataset.dtype
        if actual.names is not None and set(actual.names) == {"real", "imag"}:
            self.fail(field, "it holds complex numbers, which MATLAB Facemap never writes")
        if actual.kind != np.dtype(dtype).kind or actual.itemsize != np.dtype(dtype).itemsize:
            self.fail(field, f"it is stored as {actual}, where MATLAB stores a {kind} array as {np.dtype(dtype)}")
        array = self.read(dataset, field).T  # MATLAB's orientation
        if logical and np.any(array > 1):  # kept as uint8 0/1, as SciPy reads a v7 logical
            self.fail(field, "it is a logical array holding values other than 0 and 1")
        return _squeeze(array.astype(array.dtype.newbyteorder("="), copy=False))

    def char(self, dataset, field: str):
        if dataset.dtype != np.uint16:
            self.fail(field, f"it is a char array stored as {dataset.dtype}, where MATLAB stores uint16")
        decode = self.attribute(dataset, "MATLAB_int_decode", field)
        if decode is not None and int(np.asarray(decode).reshape(-1)[0]) != 2:
            self.fail(field, f"its MATLAB_int_decode is {decode!r}, where MATLAB writes 2 (UTF-16)")
        codes = self.read(dataset, field).T
        if codes.ndim != 2:
            self.fail(field, f"it is a char array of {codes.ndim} dimensions; MATLAB Facemap writes text rows")
        try:
            rows = [codes[i].astype("<u2").tobytes().decode("utf-16-le") for i in range(codes.shape[0])]
        except UnicodeDecodeError as err:
            self.fail(field, f"its text is not valid UTF-16 ({err})")
        return rows[0] if len(rows) == 1 else np.array(rows)

    def references(self, dataset, field: str) -> np.ndarray:
        import h5py

        if h5py.check_ref_dtype(dataset.dtype) is not h5py.Reference:
            self.fail(field, f"it is a cell stored as {dataset.dtype}, where MATLAB stores object references")
        return self.read(dataset, field).T

    def target(self, ref, field: str):
        if not ref:
            self.fail(field, "it holds a null reference")
        try:
            return self.file[ref]
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
            self.fail(field, f"its reference leads nowhere (truncated or corrupt: {err})")

    def cell(self, dataset, field: str, depth: int):
        refs = self.references(dataset, field)
        out = np.empty(refs.shape, dtype=object)
        for index in np.ndindex(*refs.shape):
            label = f"{field}{{{_subscript(index, refs.shape)}}}"
            out[index] = self.node(self.target(refs[index], label), label, depth + 1)
        return _squeeze_cell(out)

    def struct(self, group, field: str, depth: int):
        import h5py

        try:
            names = list(group.keys())
        except (OSError, RuntimeError) as err:
            self.fail(field, f"its fields cannot be listed ({err})")
        if len(names) > _MAX_MEMBERS:
            self.fail(field, f"it has {len(names)} fields")
        members = {name: self.member(group, name, f"{field}.{name}") for name in names}

        def element_field(obj) -> bool:
            return (
                isinstance(obj, h5py.Dataset)
                and h5py.check_ref_dtype(obj.dtype) is h5py.Reference
                and "MATLAB_class" not in obj.attrs
            )

        array_fields = [name for name, obj in members.items() if element_field(obj)]
        if not array_fields:
            return {name: self.node(obj, f"{field}.{name}", depth + 1) for name, obj in members.items()}
        if len(array_fields) != len(members):
            self.fail(field, "it mixes the fields of a struct array with those of a single struct")
        tables = {}
        for name, obj in members.items():
            self.check_storage(obj, f"{field}.{name}")
            tables[name] = self.references(obj, f"{field}.{name}")
        shapes = {t.shape for t in tables.values()}
        if len(shapes) != 1:
            self.fail(field, f"its fields hold different numbers of elements {sorted(shapes)}")
        (shape,) = shapes
        elements = []
        for linear in range(math.prod(shape)):
            index = np.unravel_index(linear, shape, order="F")
            label = f"{field}({_subscript(index, shape)})"
            elements.append(
                {
                    name: self.node(self.target(t[index], f"{label}.{name}"), f"{label}.{name}", depth + 1)
                    for name, t in tables.items()
                }
            )
        return elements[0] if len(elements) == 1 else elements


def _subscript(index, shape) -> str:
    """MATLAB's 1-based index of ``index``: linear for vectors, ``i,j`` otherwise."""
    if sum(n > 1 for n in shape) <= 1:
        return str(int(np.ravel_multi_index(index, shape, order="F")) + 1 if shape else 1)
    return ",".join(str(int(i) + 1) for i in index)


def _squeeze(array: np.ndarray):
    """SciPy's ``squeeze_me``: singleton dimensions dropped, one value as a Python number, empty as (0,)."""
    if array.size == 0:
        return np.zeros(0, dtype=array.dtype)
    if array.size == 1:
        return array.reshape(()).item()
    return np.squeeze(array)


def _squeeze_cell(cells: np.ndarray):
    if cells.size == 1:
        return cells.reshape(-1)[0]
    if cells.size == 0:
        return np.empty(0, dtype=object)
    squeezed = np.empty(tuple(n for n in cells.shape if n != 1), dtype=object)
    for index in np.ndindex(*cells.shape):
        squeezed[tuple(i for i, n in zip(index, cells.shape) if n != 1)] = cells[index]
    return squeezed
