"""Load Facemap's ``*_proc.npy`` results without letting the file run code.

Facemap saves its results with ``np.save(path, proc_dict)``: a 0-d object array whose data is a
pickle of a plain dict of numpy arrays, lists, numbers and strings. ``np.load(path,
allow_pickle=True)`` unpickles that with the standard unpickler, which calls any function the
file names, so a crafted ``*_proc.npy`` can run any command. :func:`load_proc_npy` reads the same
files with an unpickler that knows only the handful of names numpy arrays and plain containers
need, and checks everything it builds.

Decisions worth knowing:

* Allowed names (anything else is refused with :class:`UnsafePickleError` before any module is
  imported): ``numpy.ndarray``, ``numpy.dtype``, ``_reconstruct`` and ``scalar`` from
  ``numpy.core.multiarray`` or ``numpy._core.multiarray`` (numpy 1 and numpy 2 spell them
  differently; both spellings load under either numpy), ``_frombuffer`` from
  ``numpy.core.numeric`` or ``numpy._core.numeric`` (pickle protocol 5), ``builtins.complex``,
  ``builtins.set``, ``builtins.frozenset`` and ``collections.OrderedDict``; and, in the forms
  pickle itself writes them, ``builtins.bytes``, ``builtins.bytearray`` and ``_codecs.encode``
  with the latin-1 codec (how protocols 0 to 4 spell ``bytes`` and ``bytearray`` values).
* The numpy names are never handed to the pickle as the real numpy objects; each is a stand-in
  that checks its arguments and builds the array, scalar or data type itself. The real ones
  trust the pickle: numpy's ``dtype.__setstate__`` takes any flags and sizes (an object type
  whose flags say "plain bytes" makes numpy read the file's bytes as memory addresses, and some
  malformed states crash numpy 2 outright), and ``numpy.ndarray(shape, dtype, buffer)`` makes an
  array over any bytes. So data types are rebuilt by numpy from their description (type
  string, byte order, fields, datetime unit) and the pickled state is never passed to numpy; a
  state whose object flags or size disagree with the rebuilt type is refused.
* Before anything is built, the pickle's instructions are read through once
  (:func:`pickletools.genops`) and the object graph they describe is sketched (containers and
  their items, which memo entries they reuse; no object is made). That pass refuses what
  Python's own unpickler, or numpy afterwards, would turn into a memory or time bomb before it
  could notice anything wrong: length fields longer than the rest of the file; memo indices far
  ahead of the objects stored so far (one such instruction in a 30-byte file makes the unpickler
  allocate and clear gigabytes); a container that holds itself; nesting deeper than
  ``_MAX_PICKLE_DEPTH``; and *reference bombs*, where lists, dicts or tuples reuse each other
  (memo gets) so that a small graph stands for billions of elements once ``np.asarray`` turns it
  into arrays, or once a tuple of tuples is hashed as a dict key. Every reference is counted with
  the full size of what it reaches (each string, bytes value and array buffer counts its length);
  that expanded size may be at most twice what the file holds plus ``_EXPANSION_ALLOWANCE``
  elements. Facemap's files reuse almost nothing (one colour tuple per ROI), so they are far
  below the limit. Loading therefore reads the file twice.
* Data types are limited to what Facemap writes: bool, integer, float, complex, bytes (``S``),
  str (``U``) and object. Datetime, structured, sub-array and void types are refused with a
  message; so are numpy scalars whose bytes do not match their type's size.
* The result is walked before it is returned. Only dicts (and ``OrderedDict``), lists, tuples,
  sets, frozensets, ``str``, ``bytes``, ``bytearray``, ``int``, ``float``, ``complex``,
  ``bool``, ``None``, numpy arrays (object arrays are walked element by element), numpy
  scalars and numpy data types are accepted; anything else is refused.
* Things numpy can pickle but Facemap never writes are refused: subclasses of ``ndarray``
  (masked arrays, matrices, memmaps), numpy 2's ``StringDType``, object scalars, and data type
  states from before numpy 1.7 (state versions other than 3 and 4). Data type metadata
  (``dtype.metadata``) is dropped.
* A file whose array is not an object array (for example a plain float array) is reported as
  not being a Facemap results file; its data is not read.
"""

from __future__ import annotations

import errno
import importlib
import math
import os
import pickle
import pickletools
import re
import tokenize
from collections import OrderedDict
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

__all__ = ["ProcFileError", "UnsafePickleError", "load_proc_npy", "load_plain_pickle"]

# numpy 1.26 also ships a numpy._core stub (so it can read numpy 2 pickles); it is meant for
# unpickling only, so the real module is picked by version rather than by whether it imports.
_NUMPY2 = np.lib.NumpyVersion(np.__version__) >= "2.0.0"
_numpy_scalar = importlib.import_module("numpy._core.multiarray" if _NUMPY2 else "numpy.core.multiarray").scalar

# The dtype flag bits that make numpy treat an item as a Python object pointer (NPY_ITEM_REFCOUNT,
# NPY_LIST_PICKLE, NPY_ITEM_IS_POINTER); a pickled state whose bits differ from numpy's own for
# that type was forged. The other bits differ harmlessly between numpy versions.
_OBJECT_FLAGS = 0x07

# Facemap's dict is five levels deep; anything far deeper is not a Facemap file, and the walk is
# recursive, so a limit keeps a hostile file from exhausting the stack.
_MAX_DEPTH = 32
# The same bound on the pickle's own graph, where an array is a few levels (its reduce call, its
# state tuple, its shape) and an object array's items one more: checked before anything is built,
# since hashing a deeply nested tuple (a dict key) recurses in C without a limit.
_MAX_PICKLE_DEPTH = 4 * _MAX_DEPTH
# References to what is already built may reach at most this many elements beyond twice what the
# file holds (a real Facemap file reuses only a few small tuples).
_EXPANSION_ALLOWANCE = 10_000_000
# The data type kinds Facemap's results hold: bool, signed and unsigned integers, floats, complex,
# bytes, str and object (lists of arrays).
_ALLOWED_KINDS = "biufcSUO"
# Array shapes: at most this many dimensions and elements (empty dimensions counted as 1).
_MAX_DIMENSIONS = 32
_MAX_ELEMENTS = 2**40

# The type strings numpy writes in a pickled dtype ('f8', 'O8', 'U5', 'V16', 'M8', ...; only some kinds load). Anything
# else is refused: numpy parses richer strings ('3f4,(2,)i4') partly with ast.literal_eval.
_DTYPE_SPEC = re.compile(r"[A-Za-z]\d{0,12}")

_FIX = (
    "A file Facemap wrote never needs this, so the file was made by something else or has been tampered with. "
    "Re-create it by running Facemap on the video again (or re-saving the results from the Facemap GUI); "
    "only if you trust where the file came from completely, load it with numpy.load(path, allow_pickle=True)."
)


class ProcFileError(ValueError):
    """A file that is not a readable Facemap results (``*_proc.npy``) file.

    Raised for truncated or corrupt files, files that hold something other than a dict, and
    ``.npy`` files holding a plain (non-object) array.
    """


class UnsafePickleError(ProcFileError):
    """A ``*_proc.npy`` file whose pickle asks for something a Facemap results file never holds.

    Parameters
    ----------
    message : str
        The full explanation, naming the file, what was refused and what to do.
    path : str, optional
        The file that was refused.
    refused : str, optional
        What was refused: the ``module.name`` the pickle asked for, or the kind of object or
        data type that failed the checks.
    """

    def __init__(self, message: str, *, path: str | None = None, refused: str | None = None):
        super().__init__(message)
        self.path = path
        self.refused = refused


class _Refusal(Exception):
    """Raised inside the unpickler; :func:`load_proc_npy` turns it into an :class:`UnsafePickleError`.

    The stand-ins cannot know the file name, and a class of its own keeps refusals apart from the
    ``ValueError``/``TypeError`` that numpy raises for merely corrupt data.
    """

    def __init__(self, refused: str, reason: str, *, is_global: bool = False, is_shape: bool = False):
        super().__init__(refused, reason)
        self.refused = refused
        self.reason = reason
        self.is_global = is_global
        # A refusal of the graph's shape (a bomb, a cycle, too deep), not of something it asks for.
        self.is_shape = is_shape


# ---------------------------------------------------------------------------------------------
# Placeholders: what the pickle gets back from the stand-ins. The real arrays, scalars and data
# types are kept inside them, out of the pickle's reach, and swapped in by the final walk.
# ---------------------------------------------------------------------------------------------


class _PendingArray:
    """What ``_reconstruct`` returns; the pickle's BUILD then hands it the array's state."""

    __slots__ = ("value",)
    name = "numpy.ndarray"

    def __init__(self, value=None):
        self.value = value

    def __setstate__(self, state):
        # A second BUILD would change an array something else may already hold.
        if self.value is not None:
            raise _Refusal(self.name, "a change to an array that is already built")
        self.value = _build_array(state)


class _Built(_PendingArray):
    """Holds a finished array (``_frombuffer``) or numpy scalar (``scalar``); BUILD is refused."""

    __slots__ = ()
    name = "a numpy array or scalar"


class _PendingDtype:
    """What ``numpy.dtype`` returns: the type string, plus the state BUILD hands it.

    The state is only read, never given to numpy's ``dtype.__setstate__``, and the data type is
    made on first use, after which the state can no longer change.
    """

    __slots__ = ("spec", "align", "state", "dtype")

    def __init__(self, spec: str, align: bool):
        self.spec, self.align, self.state, self.dtype = spec, align, None, None

    def __setstate__(self, state):
        if self.state is not None or self.dtype is not None:
            raise _Refusal("numpy.dtype", "a change to a data type that is already set or in use")
        self.state = state


# ---------------------------------------------------------------------------------------------
# Stand-ins: what find_class hands to the pickle instead of the real numpy and builtin callables.
# ---------------------------------------------------------------------------------------------


class _Guard:
    """Base of the objects that stand in for allowed callables.

    ``__slots__ = ()`` and the refusing ``__setstate__`` matter: the pickle BUILD instruction
    sets attributes on whatever object it is given, and a plain function would let a file
    change a stand-in's defaults or attributes for the rest of the process.
    """

    __slots__ = ()
    name = "?"

    def __call__(self, *args, **kwargs):
        raise _Refusal(self.name, "a direct call, which numpy's pickles never make")

    def __setstate__(self, state):
        raise _Refusal(self.name, "a change to its state, which numpy's pickles never make")

    def __repr__(self):
        return f"<stand-in for {self.name}>"


class _NdarrayToken(_Guard):
    """Stands for ``numpy.ndarray``, which only ``_reconstruct`` accepts (as the class to build)."""

    __slots__ = ()
    name = "numpy.ndarray"


class _DtypeGuard(_Guard):
    """Stands for ``numpy.dtype``: numpy pickles a data type as ``dtype('f8', False, True)``."""

    __slots__ = ()
    name = "numpy.dtype"

    def __call__(self, spec, align=False, copy=True):
        if type(spec) is not str or type(align) not in (bool, int) or type(copy) not in (bool, int):
            raise _Refusal(self.name, f"a call with arguments of types {type(spec).__name__}, {type(align).__name__}")
        if not _DTYPE_SPEC.fullmatch(spec):
            raise _Refusal(self.name, f"the type string {spec[:40]!r}, which is not one numpy writes in a pickle")
        kind = np.dtype(spec).kind
        if kind not in _ALLOWED_KINDS:
            raise _Refusal(
                f"{self.name}({spec!r})",
                f"a {_KIND_NAMES.get(kind, 'special')} data type, which Facemap never writes; only bool, integer, "
                "float, complex, bytes, str and object arrays load",
            )
        return _PendingDtype(spec, bool(align))


class _ReconstructGuard(_Guard):
    """Stands for numpy's ``_reconstruct``: returns a placeholder that BUILD fills in."""

    __slots__ = ()
    name = "numpy.core.multiarray._reconstruct"

    def __call__(self, subtype, shape, dtype):
        # The shape and type given here only size a scratch array that the state replaces, so
        # they are ignored rather than allowed to allocate memory.
        if subtype is not _NDARRAY:
            raise _Refusal(self.name, f"rebuilding an array of class {_describe_object(subtype)}")
        return _PendingArray()


class _ScalarGuard(_Guard):
    """Stands for numpy's ``scalar``: a numpy scalar from a checked type and its bytes."""

    __slots__ = ()
    name = "numpy.core.multiarray.scalar"

    def __call__(self, dtype, obj):
        dtype = _resolve_dtype(dtype)
        if dtype.hasobject:
            # numpy itself says object scalars "should never be created".
            raise _Refusal(self.name, f"a scalar of data type {dtype}, which holds Python objects")
        # numpy always pickles a scalar's bytes; without them it would allocate the type's size,
        # which a forged type string ('V999999999999') makes huge.
        if type(obj) not in (bytes, str):
            raise ValueError(f"a numpy scalar's data must be bytes, not {type(obj).__name__}")
        if len(obj) != dtype.itemsize:
            raise ValueError(f"a numpy {dtype} scalar comes with {len(obj)} bytes, not {dtype.itemsize}")
        return _Built(_numpy_scalar(dtype, obj))


class _FrombufferGuard(_Guard):
    """Stands for numpy's ``_frombuffer`` (pickle protocol 5): an array over in-band bytes."""

    __slots__ = ()
    name = "numpy.core.numeric._frombuffer"

    def __call__(self, buf, dtype, shape, order):
        dtype = _resolve_dtype(dtype)
        if dtype.hasobject:
            raise _Refusal(self.name, f"an array of data type {dtype} made from raw bytes")
        # Only in-band data: any other buffer would give a view of memory the pickle could change.
        if type(buf) not in (bytes, bytearray):
            raise ValueError(f"array data must be bytes, not {type(buf).__name__}")
        if order not in ("C", "F"):
            raise ValueError(f"array order must be 'C' or 'F', not {order!r}")
        return _Built(np.frombuffer(buf, dtype=dtype).reshape(_check_shape(shape), order=order))


class _BytesGuard(_Guard):
    """Stands for ``builtins.bytes``: protocols 0 to 2 write an empty ``bytes`` value as ``bytes()``."""

    __slots__ = ()
    name = "builtins.bytes"
    kind = bytes

    def __call__(self, *args):
        # Only the forms pickle writes: bytes(n) or bytearray(n) would let a tiny file ask for
        # gigabytes of zeros.
        if not args:
            return self.kind()
        if len(args) == 1 and type(args[0]) is bytes:
            return self.kind(args[0])
        if len(args) == 2 and type(args[0]) is str and args[1] in ("latin1", "latin-1"):
            return self.kind(args[0], "latin-1")
        raise _Refusal(self.name, "a call with other arguments than pickle writes")


class _BytearrayGuard(_BytesGuard):
    """Stands for ``builtins.bytearray``, which protocols 0 to 4 write as ``bytearray(data)``."""

    __slots__ = ()
    name = "builtins.bytearray"
    kind = bytearray


class _EncodeGuard(_Guard):
    """Stands for ``_codecs.encode``: protocols 0 to 2 write ``bytes`` as ``encode(text, 'latin1')``."""

    __slots__ = ()
    name = "_codecs.encode"

    def __call__(self, text, encoding="utf-8"):
        # Other codecs (zlib, base64, ...) are never used by pickle and one is a decompressor.
        if type(text) is not str or encoding not in ("latin1", "latin-1"):
            raise _Refusal(self.name, f"a call with the codec {encoding!r}")
        return text.encode("latin-1")


_KIND_NAMES = {"M": "datetime", "m": "timedelta", "V": "void or structured", "T": "StringDType"}

_NDARRAY = _NdarrayToken()
_RECONSTRUCT = _ReconstructGuard()
_SCALAR = _ScalarGuard()
_FROMBUFFER = _FrombufferGuard()

_MULTIARRAY_MODULES = (
    "numpy.core.multiarray",
    "numpy._core.multiarray",
    "numpy.core._multiarray_umath",
    "numpy._core._multiarray_umath",
)

# The allowlist. The builtin classes are given out as they are: they are immutable, BUILD cannot
# change them or their instances, and they build only plain values from the values given.
_ALLOWED: dict[tuple[str, str], object] = {
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DtypeGuard(),
    **{(module, "_reconstruct"): _RECONSTRUCT for module in _MULTIARRAY_MODULES},
    **{(module, "scalar"): _SCALAR for module in _MULTIARRAY_MODULES},
    ("numpy.core.numeric", "_frombuffer"): _FROMBUFFER,
    ("numpy._core.numeric", "_frombuffer"): _FROMBUFFER,
    ("builtins", "complex"): complex,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "bytes"): _BytesGuard(),
    ("builtins", "bytearray"): _BytearrayGuard(),
    ("_codecs", "encode"): _EncodeGuard(),
    ("collections", "OrderedDict"): OrderedDict,
}

# Protocols 0 to 2 spell the builtins module the Python 2 way.
_PY2_MODULES = {"__builtin__": "builtins"}


class _BoundedReader:
    """The file as the unpickler sees it: reads that claim more bytes than the file has left fail.

    Python's unpickler trusts the length fields of the pickle and asks for (or allocates) that
    many bytes before it reads them, so a damaged or hostile length field in a small file makes
    it claim gigabytes. Reads through this wrapper fail first, as a truncated file.

    Parameters
    ----------
    f : file
        The open file, positioned at the start of the pickle.
    size : int
        The size of the file in bytes.
    """

    def __init__(self, f, size: int):
        self._f = f
        # Counted here rather than asked of the file: tell() can cost a system call per read.
        self._position = f.tell()
        self._size = size

    def _check(self, n: int) -> None:
        left = self._size - self._position
        if n > left:
            raise pickle.UnpicklingError(f"the pickle claims {n} more bytes, but only {left} are left in the file")

    def tell(self) -> int:
        """Return the position in the file (pickletools uses it in its messages)."""
        return self._position

    def read(self, n: int = -1) -> bytes:
        """Read ``n`` bytes, refusing a count larger than what is left of the file."""
        if n is not None and n >= 0:
            self._check(n)
        data = self._f.read(n)
        self._position += len(data)
        return data

    def readinto(self, buffer) -> int:
        """Fill ``buffer``, refusing one larger than what is left of the file."""
        self._check(memoryview(buffer).nbytes)
        count = self._f.readinto(buffer)
        self._position += count or 0
        return count

    def readline(self) -> bytes:
        """Read one line (protocols 0 and 1), which cannot be longer than the file."""
        line = self._f.readline()
        self._position += len(line)
        return line


_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})
_MEMO_GETS = frozenset({"GET", "BINGET", "LONG_BINGET"})
_CONTAINER_OPS = frozenset(
    {"EMPTY_LIST", "EMPTY_DICT", "EMPTY_SET", "EMPTY_TUPLE", "LIST", "TUPLE", "DICT", "FROZENSET"}
    | {"TUPLE1", "TUPLE2", "TUPLE3"}
)
# Instructions that add the items they pop to the object below them rather than make a new one.
_ADD_POPPED = {"APPEND": 1, "BUILD": 1, "SETITEM": 2}
_ADD_TO_MARK = frozenset({"APPENDS", "SETITEMS", "ADDITEMS"})


class _Sketch:
    """The object graph a pickle describes, without its objects: what :func:`_check_structure` measures.

    Nodes are the objects that hold others (containers and the results of calls); plain values
    stay on the stack as their weight encoded as a negative number (``-1 - weight``), so a file
    of numbers costs no node per number. A node's weight is 1; a string, bytes value or array
    buffer weighs its length.
    """

    def __init__(self):
        self.items: list[list[int]] = []  # node -> the nodes and values it holds
        self.containers: set[int] = set()  # nodes made by list, dict, set and tuple instructions
        self.stack: list[int] = []
        self.marks: list[int] = []  # stack lengths at each MARK, as the unpickler keeps them
        self.memo: dict[int, int] = {}
        self.total = 0  # everything the file holds, each object once
        self.reused = 0  # memo gets (and DUPs) of containers

    def node(self, items: list[int], container: bool) -> int:
        self.items.append(items)
        self.total += 1
        if container:
            self.containers.add(len(self.items) - 1)
        return len(self.items) - 1

    def value(self, arg) -> int:
        weight = max(1, len(arg)) if type(arg) in (str, bytes, bytearray) else 1
        self.total += weight
        return -1 - weight

    def pop(self, count: int) -> list[int]:
        fence = self.marks[-1] if self.marks else 0
        if len(self.stack) - count < fence:
            raise pickle.UnpicklingError("an instruction takes more items than the pickle's stack holds")
        if count == 0:
            return []
        items = self.stack[-count:]
        del self.stack[-count:]
        return items

    def pop_mark(self) -> list[int]:
        if not self.marks:
            raise pickle.UnpicklingError("an instruction needs a MARK the pickle never set")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def top(self) -> int:
        fence = self.marks[-1] if self.marks else 0
        if len(self.stack) <= fence:
            raise pickle.UnpicklingError("an instruction needs an object the pickle's stack does not hold")
        return self.stack[-1]

    def push_reference(self, node: int) -> None:
        self.stack.append(node)
        if node in self.containers:
            self.reused += 1

    def add_items(self, items: list[int]) -> None:
        target = self.top()
        if target < 0:
            # Adding to a plain value: the unpickler fails on it; weigh it as a holder anyway.
            target = self.stack[-1] = self.node([target], False)
        self.items[target].extend(items)

    def step(self, opcode, arg) -> None:
        """Apply one instruction to the sketch (memo instructions are handled by the caller)."""
        name = opcode.name
        if name == "MARK":
            self.marks.append(len(self.stack))
        elif name == "POP":
            if len(self.stack) > (self.marks[-1] if self.marks else 0):
                self.stack.pop()
            else:
                self.pop_mark()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            self.push_reference(self.top())
        elif name in _ADD_POPPED:
            self.add_items(self.pop(_ADD_POPPED[name]))
        elif name in _ADD_TO_MARK:
            self.add_items(self.pop_mark())
        elif name not in ("PROTO", "FRAME"):
            if pickletools.markobject in opcode.stack_before:
                items = self.pop_mark()
            else:
                items = self.pop(len(opcode.stack_before))
            if opcode.stack_after:
                if items or name in _CONTAINER_OPS:
                    self.stack.append(self.node(items, name in _CONTAINER_OPS))
                else:
                    self.stack.append(self.value(arg))

    def measure(self, root: int) -> tuple[int, int]:
        """The expanded size (every reference counted in full) and the depth of what ``root`` reaches.

        Sizes saturate at the limit; refuses cycles, graphs deeper than ``_MAX_PICKLE_DEPTH`` and
        graphs larger than the limit as soon as they are seen. Iterative, so any depth is safe.
        """
        limit = 2 * self.total + _EXPANSION_ALLOWANCE
        size: dict[int, int] = {}
        depth: dict[int, int] = {}
        if root < 0:
            return -1 - root, 0
        work = [(root, False)]
        started: set[int] = set()
        while work:
            node, finished = work.pop()
            if finished:
                children = self.items[node]
                total, deepest = 1, 0
                for child in children:
                    if child < 0:
                        total += -1 - child
                    else:
                        total += size[child]
                        deepest = max(deepest, depth[child])
                    if total > limit:
                        raise _Refusal(
                            "a reference bomb",
                            f"{self.reused} references to lists, dicts and tuples it already built make its "
                            f"{self.total:,} elements stand for more than {limit:,} once expanded (at most twice "
                            f"what the file holds plus {_EXPANSION_ALLOWANCE:,} are allowed)",
                            is_shape=True,
                        )
                size[node], depth[node] = total, deepest + 1
                if deepest + 1 > _MAX_PICKLE_DEPTH:
                    raise _Refusal(
                        "a nested structure",
                        f"nesting more than {_MAX_PICKLE_DEPTH} levels deep (a Facemap file is about 10)",
                        is_shape=True,
                    )
                continue
            if node in size:
                continue
            if node in started:
                raise _Refusal(
                    "a container that holds itself", "a cycle, which a Facemap results file never holds", is_shape=True
                )
            started.add(node)
            work.append((node, True))
            work.extend((child, False) for child in self.items[node] if child >= 0 and child not in size)
        return size[root], depth[root]


def _check_structure(reader: _BoundedReader) -> None:
    """Read through the pickle's instructions once, before anything is built, and measure its graph.

    This pass catches what the real unpickler (or numpy, expanding the result) would turn into a
    memory or time bomb before it could notice a problem: length fields longer than the file
    (refused by the reader); memo indices far beyond the number of objects stored so far
    (Python's unpickler grows its memo table to the index, so one instruction with index 2**31
    makes it allocate gigabytes; a pickler numbers its memo entries 0, 1, 2, ..., so a real file
    never trips this); and graphs that are cyclic, too deep, or whose shared references expand to
    far more than the file holds (see :class:`_Sketch`).

    Parameters
    ----------
    reader : _BoundedReader
        The file, positioned at the start of the pickle.

    Raises
    ------
    pickle.UnpicklingError
        For a memo index out of order, a length longer than the file or an inconsistent stack.
    ValueError
        From :func:`pickletools.genops`, for an unknown instruction or a truncated pickle.
    _Refusal
        For a cycle, too deep a graph or a reference bomb.
    """
    sketch = _Sketch()
    stored = 0
    root = None
    for opcode, arg, position in pickletools.genops(reader):
        name = opcode.name
        if name in _MEMO_PUTS or name == "MEMOIZE":
            if name != "MEMOIZE" and arg > stored:
                raise pickle.UnpicklingError(
                    f"memo index {arg} at byte {position} of the file, after only {stored} stored objects"
                )
            sketch.memo[arg if name != "MEMOIZE" else len(sketch.memo)] = sketch.top()
            stored += 1
        elif name in _MEMO_GETS:
            if arg not in sketch.memo:
                raise pickle.UnpicklingError(f"memo index {arg} at byte {position} was never stored")
            sketch.push_reference(sketch.memo[arg])
        elif name == "STOP":
            root = sketch.pop(1)[0]
        else:
            sketch.step(opcode, arg)
    if root is None:
        raise pickle.UnpicklingError("the pickle ends without its STOP instruction")
    sketch.measure(root)


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler whose ``find_class`` knows only the names in ``_ALLOWED``."""

    def find_class(self, module, name):
        """Return the stand-in for ``module.name``, or refuse it without importing anything.

        Parameters
        ----------
        module, name : str
            The global the pickle asks for.

        Returns
        -------
        object
            The stand-in or builtin class for it.

        Raises
        ------
        _Refusal
            For every name not on the allowlist.
        """
        module = _PY2_MODULES.get(module, module)
        try:
            return _ALLOWED[(module, name)]
        except (KeyError, TypeError):
            raise _Refusal(
                f"{module}.{name}", "a global numpy arrays and plain containers never need", is_global=True
            ) from None


# ---------------------------------------------------------------------------------------------
# Data types and arrays, built from checked descriptions
# ---------------------------------------------------------------------------------------------


def _resolve_dtype(pending) -> np.dtype:
    """Make the data type a pickled ``numpy.dtype`` describes, once, and return it.

    Parameters
    ----------
    pending : _PendingDtype
        What the pickle's ``numpy.dtype(...)`` call and BUILD produced.

    Returns
    -------
    numpy.dtype
        A data type numpy built from the description.

    Raises
    ------
    _Refusal
        When the pickled flags or size disagree with what numpy gives that type, or the state
        describes a structured or sub-array type (Facemap never writes one).
    ValueError
        When the description is not one numpy writes.
    """
    if type(pending) is not _PendingDtype:
        raise ValueError(f"expected a numpy data type, got {_describe_object(pending)}")
    if pending.dtype is None:
        pending.dtype = _dtype_from_state(pending.spec, pending.align, pending.state)
    return pending.dtype


def _dtype_from_state(spec: str, align: bool, state) -> np.dtype:
    # The type string's kind was checked by _DtypeGuard (bool, integers, floats, complex, S, U, O).
    dtype = np.dtype(spec, align=align)
    if state is None:
        return dtype
    # numpy has written state versions 3 (8 items) and 4 (9, the last metadata) since numpy 1.7.
    if type(state) is not tuple or len(state) not in (8, 9) or state[0] != len(state) - 5:
        raise ValueError("a data type state in a form numpy does not write")
    _, endian, subarray, names, fields, elsize, _, flags = state[:8]
    if subarray is not None or names is not None or fields is not None:
        raise _Refusal(
            f"numpy.dtype({spec!r})",
            "a structured or sub-array data type, which Facemap never writes; only bool, integer, float, complex, "
            "bytes, str and object arrays load",
        )
    if endian not in ("<", ">", "|", "=") or type(elsize) is not int or type(flags) is not int:
        raise ValueError("a data type state in a form numpy does not write")
    if endian != "|":
        dtype = dtype.newbyteorder(endian)
    if (flags ^ dtype.flags) & _OBJECT_FLAGS or elsize not in (-1, dtype.itemsize):
        raise _Refusal(
            "numpy.dtype",
            f"a data type ({dtype}) whose stored flags or size are not what numpy gives that type, "
            "so numpy would misread the file's bytes, possibly as memory addresses",
        )
    return dtype


def _check_shape(shape) -> tuple[int, ...]:
    if type(shape) is not tuple or not all(type(n) is int and n >= 0 for n in shape):
        raise ValueError(f"array shape must be a tuple of non-negative ints, not {shape!r}")
    # Counting empty dimensions as 1: an array of no elements but dimensions of 2**40 is no data, and
    # numpy fails (or allocates) on it later; no Facemap array comes near this many elements.
    if len(shape) > _MAX_DIMENSIONS or math.prod(max(n, 1) for n in shape) > _MAX_ELEMENTS:
        raise ValueError(
            f"an array of shape {shape[:8]!r}{'...' if len(shape) > 8 else ''} is larger than any results file holds"
        )
    return shape


def _build_array(state) -> np.ndarray:
    """Build the array an ``ndarray.__setstate__`` state describes, after checking it.

    Parameters
    ----------
    state : tuple
        ``(version, shape, dtype, is_fortran, data)``, or the legacy form without ``version``.

    Returns
    -------
    numpy.ndarray
        A new array whose data type numpy built from its description.
    """
    if type(state) is not tuple or len(state) not in (4, 5):
        raise ValueError("an array's pickled state is not the tuple numpy writes")
    shape, dtype, fortran, data = state[-4:]
    shape = _check_shape(shape)
    dtype = _resolve_dtype(dtype)
    if type(fortran) not in (bool, int):
        raise ValueError("an array's order flag is not a bool")
    size = math.prod(shape)
    # numpy checks these too, but checking first keeps a hostile shape from allocating memory.
    if dtype.hasobject:
        if type(data) is not list or len(data) != size:
            raise ValueError(f"an object array of shape {shape} does not come with a list of {size} items")
    else:
        if type(data) is str:
            data = data.encode("latin-1")  # how Python 2 pickles, read with encoding='latin1', hold bytes
        if type(data) is not bytes or len(data) != size * dtype.itemsize:
            raise ValueError(
                f"an array of shape {shape} and type {dtype} does not come with {size * dtype.itemsize} bytes"
            )
    array = np.ndarray.__new__(np.ndarray, (0,), np.uint8)
    array.__setstate__((1, shape, dtype, bool(fortran), data))
    return array


# ---------------------------------------------------------------------------------------------
# The final walk: swap placeholders for what they hold and refuse anything that is not data.
# ---------------------------------------------------------------------------------------------

_ATOMS = (str, bytes, bytearray, int, float, complex, bool, type(None))


def _describe_object(obj) -> str:
    if isinstance(obj, _Guard):
        return obj.name
    if isinstance(obj, type):
        return f"the class {obj.__module__}.{obj.__qualname__}"
    kind = type(obj)
    return f"{kind.__module__}.{kind.__qualname__}"


class _Cleaner:
    """Walks an unpickled result once, in place where the containers allow it."""

    def __init__(self):
        # id -> (original, replacement); holding the original keeps its id from being reused.
        self._seen: dict[int, tuple[object, object]] = {}

    def clean(self, obj, depth: int = 0):
        """Return ``obj`` with placeholders replaced, refusing anything that is not plain data.

        Parameters
        ----------
        obj : object
            Something the restricted unpickler built.
        depth : int
            How deep in the structure ``obj`` sits.

        Returns
        -------
        object
            ``obj`` itself, or its replacement: the array, scalar or data type a placeholder
            holds, or a new tuple or frozenset when one of its items was replaced.
        """
        kind = type(obj)
        if kind in _ATOMS:
            return obj
        if depth > _MAX_DEPTH:
            raise _Refusal(_describe_object(obj), f"nesting more than {_MAX_DEPTH} levels deep")
        seen = self._seen.get(id(obj))
        if seen is not None:
            return seen[1]
        if kind is _PendingArray or kind is _Built:
            if obj.value is None:
                raise ValueError("an array in the pickle was never given its data")
            # Remembered before its items are walked, so an object array that holds itself ends.
            self._remember(obj, obj.value)
            result = self._clean_array(obj.value, depth) if type(obj.value) is np.ndarray else obj.value
        elif kind is _PendingDtype:
            result = _resolve_dtype(obj)
        elif kind is dict or kind is OrderedDict:
            result = self._clean_dict(obj, depth)
        elif kind is list:
            self._remember(obj, obj)
            for index, item in enumerate(obj):
                new = self.clean(item, depth + 1)
                if new is not item:
                    obj[index] = new
            result = obj
        elif kind is tuple or kind is frozenset:
            # Immutable: while it is being walked it stands for itself (a cycle back to it keeps
            # the original), and a copy replaces it only if an item changed.
            self._remember(obj, obj)
            items = [self.clean(item, depth + 1) for item in obj]
            result = kind(items) if any(new is not old for new, old in zip(items, obj)) else obj
        elif kind is set:
            self._remember(obj, obj)
            items = [self.clean(item, depth + 1) for item in obj]
            if any(new is not old for new, old in zip(items, obj)):
                set.clear(obj)
                set.update(obj, items)
            result = obj
        else:
            raise _Refusal(_describe_object(obj), "an object that is not plain data (arrays, numbers, containers)")
        return self._remember(obj, result)

    def _remember(self, obj, result):
        self._seen[id(obj)] = (obj, result)
        return result

    def _clean_dict(self, obj, depth):
        kind = type(obj)
        # BUILD can give an OrderedDict instance attributes, and instance attributes shadow
        # methods such as items(); plain data never has any.
        if kind is OrderedDict and vars(obj):
            raise _Refusal("collections.OrderedDict", "an OrderedDict with attributes set on it")
        self._remember(obj, obj)
        # The type's own methods are called, never the instance's, for the same reason.
        items = list(kind.items(obj))
        cleaned = [(self.clean(key, depth + 1), self.clean(value, depth + 1)) for key, value in items]
        if any(new_key is not key for (new_key, _), (key, _) in zip(cleaned, items)):
            kind.clear(obj)
            for key, value in cleaned:
                kind.__setitem__(obj, key, value)
        else:
            for (key, value), (_, old) in zip(cleaned, items):
                if value is not old:
                    kind.__setitem__(obj, key, value)
        return obj

    def _clean_array(self, array: np.ndarray, depth: int) -> np.ndarray:
        self._remember(array, array)
        # Only plain object arrays hold Python objects: structured types with object fields are
        # refused when their data type is built.
        if array.dtype.kind == "O":
            for index in np.ndindex(array.shape):
                item = array[index]
                new = self.clean(item, depth + 1)
                if new is not item:
                    # A full integer index stores the object itself, even a list or an array.
                    array[index] = new
        return array


# ---------------------------------------------------------------------------------------------
# The public loader
# ---------------------------------------------------------------------------------------------


def _read_header_3_0(f):
    # numpy has no public reader for format 3.0 headers (1.0 and 2.0 have one each); np.load uses
    # this private function, which numpy 2 moved to numpy.lib._format_impl.
    reader = getattr(npy_format, "_read_array_header", None)
    if reader is None:
        try:
            reader = importlib.import_module("numpy.lib._format_impl")._read_array_header
        except (ImportError, AttributeError):
            raise ValueError("this numpy cannot read NPY format 3.0 headers") from None
    return reader(f, version=(3, 0))


def _read_header(f, path: Path) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = npy_format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npy_format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = npy_format.read_array_header_2_0(f)
        elif version == (3, 0):
            shape, _, dtype = _read_header_3_0(f)
        else:
            raise ValueError(f"NPY format version {version[0]}.{version[1]} is not one numpy writes")
    except (ValueError, SyntaxError, TypeError, KeyError, RecursionError, MemoryError, tokenize.TokenError) as error:
        # numpy parses the header's text with ast.literal_eval (SyntaxError) and, for old files,
        # tokenize (TokenError); a damaged type description is a TypeError.
        raise ProcFileError(
            f"'{path}' is not a readable .npy file ({type(error).__name__}: {error}). A Facemap results file is the "
            "'*_proc.npy' Facemap writes; if it was cut short, run Facemap on the video again."
        ) from error
    return shape, dtype


def load_proc_npy(path: str | os.PathLike) -> dict:
    """Load a Facemap ``*_proc.npy`` results file without running code from its pickle.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npy`` file Facemap wrote (``<video>_proc.npy``).

    Returns
    -------
    dict
        The results dict, equal to ``np.load(path, allow_pickle=True).item()`` for a file Facemap
        wrote, with every array a plain ``numpy.ndarray``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    UnsafePickleError
        When the pickle asks for a global outside the allowlist, holds an object that is not
        plain data, describes a data type Facemap never writes or whose flags would make numpy
        misread memory, or describes a graph that is cyclic, nested too deeply or expands to far
        more than the file holds (a reference bomb). Nothing the file names is called or imported,
        and the graph is measured before any object is built.
    ProcFileError
        When the file is not an ``.npy`` file, is truncated or corrupt, holds a plain
        (non-object) array, or holds something other than a dict.

    Notes
    -----
    Numpy 1 and numpy 2 files load under either numpy: numpy 2 pickles name
    ``numpy._core.multiarray`` where numpy 1 names ``numpy.core.multiarray``, and both names map
    to the same checked stand-ins here.
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "No Facemap results file (*_proc.npy) at this path", str(path)) from None
    with f:
        shape, dtype = _read_header(f, path)
        if not dtype.hasobject:
            raise ProcFileError(
                f"'{path}' holds a plain {dtype} array of shape {shape}, but a Facemap results file holds a "
                "pickled dict (np.save of Facemap's proc dict). Pass the '*_proc.npy' file Facemap wrote."
            )
        result = _load_checked(f, path, rerun="Run Facemap on the video again to re-create it.")
    return _unwrap(result, path)


def _load_checked(f, path: Path, *, rerun: str):
    """Unpickle from ``f`` (at the pickle's first byte) after the structure check, with the restricted
    unpickler, then clean the result; every failure is one :class:`ProcFileError` naming ``path``."""
    try:
        # encoding/fix_imports are np.load's defaults, so Python 2 era files behave the same.
        size, start = os.fstat(f.fileno()).st_size, f.tell()
        _check_structure(_BoundedReader(f, size))
        f.seek(start)
        result = _RestrictedUnpickler(_BoundedReader(f, size), encoding="ASCII", fix_imports=True).load()
        return _Cleaner().clean(result)
    except _Refusal as refusal:
        if refusal.is_shape:
            message = f"Refusing to load '{path}': its pickle holds {refusal.refused}: {refusal.reason}. "
        else:
            message = f"Refusing to load '{path}': its pickle asks for '{refusal.refused}' ({refusal.reason}). "
        if refusal.is_global:
            message += "Unpickling it with np.load could run code on this computer. "
        raise UnsafePickleError(message + _FIX, path=str(path), refused=refusal.refused) from None
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        OverflowError,
        RecursionError,
    ) as error:
        raise ProcFileError(
            f"'{path}' is truncated or corrupt: its pickled contents could not be read "
            f"({type(error).__name__}: {error}). {rerun}"
        ) from error
    except MemoryError as error:
        # Python's unpickler allocates what a length field claims before reading, so a damaged
        # length asks for terabytes; a real file this large would not fit in memory either.
        raise ProcFileError(
            f"'{path}' ({path.stat().st_size} bytes) could not be read: its pickle asks for more memory than "
            "is available. Either the file is corrupt (a damaged length field) or it is too large for this "
            "computer's memory."
        ) from error


def load_plain_pickle(path: str | os.PathLike, *, what: str = "pickle file") -> object:
    """Load a plain pickle (``pickle.dump`` of dicts, lists, numbers, strings and numpy values) without
    running code from it: the same checks and stand-ins as :func:`load_proc_npy`, without the ``.npy``
    header. Facemap's pose metadata (``<video>_FacemapPose_metadata.pkl``) is such a file.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    UnsafePickleError, ProcFileError
        As :func:`load_proc_npy`; messages name ``path`` and call it ``what``.
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"No {what} at this path", str(path)) from None
    with f:
        if os.fstat(f.fileno()).st_size == 0:
            raise ProcFileError(f"'{path}' is empty, not a {what}. Pass the file Facemap wrote.")
        return _load_checked(f, path, rerun=f"Re-create the {what} with Facemap.")


def _unwrap(result, path: Path) -> dict:
    # np.save stores the dict as a 0-d object array; a bare dict is accepted too, since that is
    # what the pickle of a hand-written file may hold and it is just as plain.
    if type(result) is np.ndarray:
        if result.dtype.kind != "O" or result.size != 1:
            raise ProcFileError(
                f"'{path}' holds a {result.dtype} array of shape {result.shape}, not the dict a Facemap results "
                "file holds. Pass the '*_proc.npy' file Facemap wrote."
            )
        result = result.reshape(-1)[0]
    if not isinstance(result, dict):
        raise ProcFileError(
            f"'{path}' holds a {type(result).__name__}, not the dict a Facemap results file holds. "
            "Pass the '*_proc.npy' file Facemap wrote."
        )
    return result
