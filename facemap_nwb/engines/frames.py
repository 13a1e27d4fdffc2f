"""Frame access for the native engine: every frame is decoded once, whatever the video's length.

While decoding, each chunk of raw frames goes to an optional callback (pupil, blink and running, which
need raw pixels), and the frames are binned (sums over ``sbin x sbin`` blocks, exact integers) into a
store that every later pass reads: in memory when it fits the memory budget, else in an unlinked
temporary file read back in bounded pieces (the page cache, not the process, holds what the disk
keeps), so memory stays flat in video length and nothing is decoded twice.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from ..atomic import OutputError
from ..video import GrayFrameReader, VideoError, VideoRecording

__all__ = [
    "FrameSource",
    "RowStore",
    "SpilledArray",
    "DEFAULT_MEMORY_BUDGET",
    "temporary_folder",
    "check_space",
    "peak_memory_mb",
]

DEFAULT_MEMORY_BUDGET = 512 << 20  # bytes of binned frames kept in memory; beyond, a temporary file
DECODE_CHUNK_BYTES = 8 << 20  # raw grayscale pixels per decoded chunk: 3 in flight, so memory stays small
SPACE_MARGIN = 256 << 20  # free space left on the temporary file's disk


def temporary_folder(folder: str | os.PathLike | None = None) -> str:
    """Where temporary files go: ``folder``, else ``$FACEMAP_NWB_TMPDIR``, else Python's (``$TMPDIR``, /tmp)."""
    return str(folder or os.environ.get("FACEMAP_NWB_TMPDIR") or tempfile.gettempdir())


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MB, for benchmarks.

    Linux's ``VmHWM`` (the high-water mark of this process's own memory, reset by ``exec``), not
    ``ru_maxrss``: a child process inherits the ``ru_maxrss`` of the parent that started it, so a small
    command started by a large benchmark would report the benchmark's peak. ``ru_maxrss`` where there is
    no ``/proc``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB elsewhere


def _sum_dtype(sbin: int):
    return np.uint8 if sbin == 1 else (np.uint16 if sbin <= 16 else np.uint32)


class RowStore:
    """An array of rows (first axis), in memory or in an unlinked temporary file.

    File-backed rows are written and read with ``pwrite``/``preadv``, never mapped: a read copies the
    rows it asks for into a new array, so the process holds only what it is using.
    """

    def __init__(self, shape: tuple[int, ...], dtype, *, folder: str | None = None, what: str = "binned frames"):
        self.shape, self.dtype = tuple(int(n) for n in shape), np.dtype(dtype)
        self.row_bytes = int(np.prod(self.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self.folder, self.what = folder, what
        self._array = self._file = None
        if folder is None:
            self._array = np.empty(self.shape, self.dtype)
            return
        try:
            self._file = tempfile.TemporaryFile(prefix="facemap-nwb-", dir=folder)
        except OSError as err:
            raise self._error(err) from None

    @property
    def on_disk(self) -> bool:
        return self._file is not None

    def _error(self, err: OSError) -> OutputError:
        reason = os.strerror(err.errno) if err.errno else str(err)
        return OutputError(
            f"Cannot write the temporary file of {self.what} in '{self.folder}': {reason}. Free space there, point "
            "FACEMAP_NWB_TMPDIR (or TMPDIR) to a folder on a larger disk, or raise --memory-budget so that they "
            "stay in memory.",
            err.errno,
            str(self.folder),
        )

    def write(self, start: int, rows: np.ndarray) -> None:
        if self._array is not None:
            self._array[start : start + len(rows)] = rows
            return
        data = memoryview(np.ascontiguousarray(rows, self.dtype)).cast("B")
        offset, done = start * self.row_bytes, 0
        try:
            if not hasattr(os, "pwrite"):  # Windows
                self._file.seek(offset)
                self._file.write(data)
                return
            while done < len(data):
                done += os.pwrite(self._file.fileno(), data[done:], offset + done)
        except OSError as err:
            raise self._error(err) from None

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)``: a view when in memory (do not change it), else a new array."""
        stop = min(stop, self.shape[0])
        if self._array is not None:
            return self._array[start:stop]
        out = np.empty((max(stop - start, 0), *self.shape[1:]), self.dtype)
        view, offset, done = memoryview(out).cast("B"), start * self.row_bytes, 0
        if not hasattr(os, "preadv"):  # Windows
            self._file.seek(offset)
            if self._file.readinto(view) != len(view):
                raise OSError(f"the temporary file of {self.what} ended early")
            return out
        while done < len(view):
            got = os.preadv(self._file.fileno(), [view[done:]], offset + done)
            if got <= 0:
                raise OSError(f"the temporary file of {self.what} ended early")
            done += got
        return out

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._array = self._file = None


def check_space(needed: int, what: str) -> str:
    """The temporary folder, once it is known to have ``needed`` bytes free (and a margin); else OutputError."""
    folder = temporary_folder()
    try:
        free = shutil.disk_usage(folder).free
    except OSError as err:
        raise OutputError(
            f"The temporary folder '{folder}' for the {what} cannot be used ({err.strerror or err}): point "
            "FACEMAP_NWB_TMPDIR (or TMPDIR) to a folder you may write to.",
            err.errno,
            folder,
        ) from None
    if free < needed + SPACE_MARGIN:
        raise OutputError(
            f"The {what} need {needed / 2**30:.1f} GiB of temporary space but '{folder}' has {free / 2**30:.1f} GiB "
            "free: point FACEMAP_NWB_TMPDIR (or TMPDIR) to a folder on a larger disk, raise spatial_bin, or raise "
            "--memory-budget so that they stay in memory.",
            28,
            folder,
        )
    return folder


class SpilledArray:
    """Rows kept in a temporary file (results too long to hold in memory), read only when asked for.

    Numpy-like enough for every reader of results: ``shape``, ``dtype``, slicing by rows (``a[i:j]``,
    ``a[i:j, cols]``, ``a[i]``) reads just those rows, ``np.asarray(a)`` reads all; the NWB writer streams
    it in chunks (:meth:`chunk_iterator`), and pickling turns it into a plain array.
    """

    def __init__(self, store: RowStore):
        self._store = store

    @property
    def shape(self) -> tuple[int, ...]:
        return self._store.shape

    @property
    def dtype(self) -> np.dtype:
        return self._store.dtype

    @property
    def ndim(self) -> int:
        return len(self._store.shape)

    def __len__(self) -> int:
        return self._store.shape[0]

    def __getitem__(self, key):
        key = key if isinstance(key, tuple) else (key,)
        rows, rest, n = key[0], key[1:], self.shape[0]
        if isinstance(rows, (int, np.integer)) and -n <= rows < n:
            row = self._store.read(int(rows) % n, int(rows) % n + 1)[0]
            return row[rest] if rest else row
        if isinstance(rows, slice) and rows.step in (None, 1):
            start, stop, _ = rows.indices(n)
            data = self._store.read(start, max(start, stop))
        else:
            data = np.asarray(self)[rows]
        return data[(slice(None), *rest)] if rest else data

    def __array__(self, dtype=None, copy=None):
        data = self._store.read(0, self.shape[0])
        return data if dtype is None else data.astype(dtype)

    def __reduce__(self):
        return np.asarray, (np.asarray(self),)

    def chunk_iterator(self, columns: int | None = None, *, buffer_mb: float = 64.0):
        """An hdmf ``GenericDataChunkIterator`` over the first ``columns`` columns, reading ~``buffer_mb`` at a time."""
        return _SpilledChunks(self, self.shape[1] if columns is None else columns, buffer_gb=buffer_mb / 1024)


@functools.lru_cache(maxsize=1)
def _spilled_chunks_class():
    from hdmf.data_utils import GenericDataChunkIterator

    class SpilledChunks(GenericDataChunkIterator):
        def __init__(self, spilled: SpilledArray, columns: int, **kwargs):
            self._spilled, self._columns = spilled, int(columns)
            super().__init__(**kwargs)

        def _get_data(self, selection):
            rows, *rest = selection
            return self._spilled[rows][(slice(None), *rest)]

        def _get_maxshape(self):
            return (self._spilled.shape[0], self._columns)

        def _get_dtype(self):
            return self._spilled.dtype

    return SpilledChunks


def _SpilledChunks(spilled: SpilledArray, columns: int, **kwargs):  # noqa: N802 - hdmf imported when first used
    return _spilled_chunks_class()(spilled, columns, **kwargs)


class FrameSource:
    """Binned frames of one or more simultaneous views, decoded once.

    Parameters
    ----------
    recordings : sequence of VideoRecording
        One per view; all must have the same number of frames.
    sbin : int
        Spatial bin of the stored frames: each view is kept as ``(frames, height // sbin, width // sbin)``
        integer sums over ``sbin x sbin`` pixel blocks (the raw pixels when 1).
    memory_budget : int
        Keep the binned frames in memory when they need at most this many bytes; else in a temporary file
        in :func:`temporary_folder` (free space checked first).
    progress : callable, optional
        Called with the number of frames decoded, for progress bars.
    on_raw : callable, optional
        ``on_raw(start, frames per view)`` for each decoded chunk, in order; it may return changed copies
        of the frames (a list per view) whose bins inside ``patches`` are stored apart (see :meth:`chunks`).
    patches : list of ((row0, row1), (col0, col1)) or None per view, optional
        Bin rectangles of each view whose sums are also stored from the frames ``on_raw`` returns.
    """

    def __init__(
        self,
        recordings: Sequence[VideoRecording],
        *,
        sbin: int = 1,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        progress=None,
        on_raw: Callable[[int, list[np.ndarray]], list[np.ndarray] | None] | None = None,
        patches: Sequence | None = None,
    ):
        counts = [r.frame_count for r in recordings]
        if len(set(counts)) != 1:
            listing = ", ".join(f"'{r.paths[0]}' {n}" for r, n in zip(recordings, counts))
            raise VideoError(
                f"Simultaneous cameras must have the same number of frames; got {listing}. Trim them to one length."
            )
        self.recordings = list(recordings)
        self.frame_count = n = counts[0]
        self.shapes = [(r.height, r.width) for r in recordings]
        self.sbin = sbin
        self.bins = [(h // sbin, w // sbin) for h, w in self.shapes]
        self._progress = progress
        self.decodes = 0
        patches = list(patches) if patches is not None else [None] * len(self.recordings)
        dtype = _sum_dtype(sbin)
        shapes = [(n, yb, xb) for yb, xb in self.bins]
        shapes += [(n, p[0][1] - p[0][0], p[1][1] - p[1][0]) for p in patches if p is not None]
        needed = sum(int(np.prod(s, dtype=np.int64)) for s in shapes) * np.dtype(dtype).itemsize
        self.spilled = needed > memory_budget
        folder = check_space(needed, "binned frames") if self.spilled else None
        self._stores: list[RowStore] = []
        self._patches: list[tuple | None] = []
        try:
            self._stores = [RowStore(s, dtype, folder=folder) for s in shapes[: len(self.bins)]]
            self._patches = [
                None if p is None else (p, RowStore((n, p[0][1] - p[0][0], p[1][1] - p[1][0]), dtype, folder=folder))
                for p in patches
            ]
            self._fill(on_raw)
        except BaseException:
            self.close()
            raise

    def _fill(self, on_raw) -> None:
        from .svd import bin_sums

        frame_bytes = max(sum(h * w for h, w in self.shapes), 1)
        chunk = int(max(8, min(256, DECODE_CHUNK_BYTES // frame_bytes)))
        for start, frames in self._decode(0, self.frame_count, chunk):
            changed = on_raw(start, frames) if on_raw is not None else None
            for store, view, (yb, xb) in zip(self._stores, frames, self.bins):
                store.write(start, bin_sums(view, self.sbin, (0, yb), (0, xb)))
            for patch, view in zip(self._patches, changed or frames):
                if patch is not None:
                    (rows, cols), store = patch
                    store.write(start, bin_sums(view, self.sbin, rows, cols))

    def _decode(self, start: int, stop: int, chunk: int) -> Iterator[tuple[int, list[np.ndarray]]]:
        self.decodes += 1
        readers = [GrayFrameReader(r).iter_chunks(chunk, start=start, stop=stop) for r in self.recordings]
        for parts in _prefetch(zip(*readers)):
            first = parts[0][0]
            frames = [p[1] for p in parts]
            if self._progress is not None:
                self._progress(len(frames[0]))
            yield first, frames

    def read(self, start: int, stop: int, *, changed: bool = False) -> list[np.ndarray]:
        """Binned frames ``[start, stop)`` per view; with ``changed``, the patches from ``on_raw``'s frames.

        Do not change the arrays returned: from memory they are views of the store.
        """
        out = [store.read(start, stop) for store in self._stores]
        if changed:
            for i, patch in enumerate(self._patches):
                if patch is not None:
                    ((r0, r1), (c0, c1)), store = patch
                    view = out[i].copy() if not self.spilled else out[i]
                    view[:, r0:r1, c0:c1] = store.read(start, stop)
                    out[i] = view
        return out

    def segments(self, starts: Sequence[int], length: int) -> Iterator[tuple[int, list[np.ndarray]]]:
        """Yield ``(start, binned frames per view)`` for each segment ``[start, start + length)``."""
        for s in starts:
            yield int(s), self.read(int(s), int(s) + length)

    def chunks(self, chunk: int, *, changed: bool = False, overlap: int = 0) -> Iterator[tuple[int, list[np.ndarray]]]:
        """Yield ``(start, binned frames per view)`` over the whole video in chunks of ``chunk`` frames.

        With ``overlap``, each chunk after the first also holds the ``overlap`` frames before ``start``.
        """
        for s in range(0, self.frame_count, chunk):
            yield s, self.read(max(s - overlap, 0), s + chunk, changed=changed)

    def close(self) -> None:
        for store in self._stores:
            store.close()
        for patch in self._patches:
            if patch is not None:
                patch[1].close()


def _prefetch(items: Iterator, depth: int = 1) -> Iterator:
    """Run ``items`` in a background thread, ``depth`` ahead, so decoding overlaps the consumer's work.

    FFmpeg decodes without holding the GIL, so the decoder thread and numpy in the main thread run at
    the same time. Errors in the producer are raised in the consumer.
    """
    import queue
    import threading

    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put(item):
                    return
            put(done)
        except BaseException as err:  # handed to the consumer, which raises it
            put(err)

    thread = threading.Thread(target=produce, name="facemap-nwb-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)
