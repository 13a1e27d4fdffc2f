"""Frame access for the engines: several simultaneous views read in lockstep, from memory when the
whole video fits the memory budget (one decode), else decoded again for each pass (flat memory)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from ..video import GrayFrameReader, VideoError, VideoRecording

__all__ = ["FrameSource"]

DEFAULT_MEMORY_BUDGET = 128 << 20  # bytes of decoded frames kept in memory to decode only once


class FrameSource:
    """Grayscale frames of one or more simultaneous views.

    Parameters
    ----------
    recordings : sequence of VideoRecording
        One per view; all must have the same number of frames.
    memory_budget : int
        Keep every decoded frame in memory when they need at most this many bytes.
    progress : callable, optional
        Called with the number of frames decoded, for progress bars.
    """

    def __init__(
        self,
        recordings: Sequence[VideoRecording],
        *,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        progress=None,
        cache_sbin: int = 1,
    ):
        counts = [r.frame_count for r in recordings]
        if len(set(counts)) != 1:
            listing = ", ".join(f"'{r.paths[0]}' {n}" for r, n in zip(recordings, counts))
            raise VideoError(
                f"Simultaneous cameras must have the same number of frames; got {listing}. Trim them to one length."
            )
        self.recordings = list(recordings)
        self.frame_count = counts[0]
        self.shapes = [(r.height, r.width) for r in recordings]
        self._progress = progress
        self.decodes = 0
        self._cache: list[np.ndarray] | None = None
        # With cache_sbin > 1 the cache holds bin sums (the engine then never needs raw pixels): the
        # frames this source yields are (frames, bins y, bins x) sums, to be scaled by 1 / cache_sbin**2.
        self.cached = self.fits(recordings, memory_budget, cache_sbin)
        self.cache_sbin = cache_sbin if self.cached else 1
        if not self.cached:
            return
        from .svd import bin_sums

        bins = [(h // cache_sbin, w // cache_sbin) for h, w in self.shapes]
        dtype = np.uint8 if cache_sbin == 1 else (np.uint16 if cache_sbin <= 16 else np.uint32)
        self._cache = [np.empty((self.frame_count, yb, xb), dtype) for yb, xb in bins]
        for start, frames in self._decode(0, self.frame_count, 256):
            for cache, view, (yb, xb) in zip(self._cache, frames, bins):
                cache[start : start + len(view)] = bin_sums(view, cache_sbin, (0, yb), (0, xb))

    @staticmethod
    def fits(recordings: Sequence[VideoRecording], memory_budget: int, cache_sbin: int = 1) -> bool:
        """Whether every decoded frame of the recordings (binned by ``cache_sbin``) fits in ``memory_budget``."""
        item = 1 if cache_sbin == 1 else (2 if cache_sbin <= 16 else 4)
        pixels = sum(r.frame_count * (r.height // cache_sbin) * (r.width // cache_sbin) for r in recordings)
        return pixels * item <= memory_budget

    def _decode(self, start: int, stop: int, chunk: int) -> Iterator[tuple[int, list[np.ndarray]]]:
        self.decodes += 1
        readers = [GrayFrameReader(r).iter_chunks(chunk, start=start, stop=stop) for r in self.recordings]
        for parts in _prefetch(zip(*readers)):
            first = parts[0][0]
            frames = [p[1] for p in parts]
            if self._progress is not None:
                self._progress(len(frames[0]))
            yield first, frames

    def segments(self, starts: Sequence[int], length: int) -> Iterator[tuple[int, list[np.ndarray]]]:
        """Yield ``(start, frames per view)`` for each segment ``[start, start + length)``, in order.

        Starts must be sorted; segments may overlap. From memory when cached, else from one sequential
        decode.
        """
        starts = [int(s) for s in starts]
        if self.cached:
            for s in starts:
                yield s, [c[s : s + length] for c in self._cache]
            return
        if not starts:
            return
        # One set of buffers, refilled for each segment: the consumer is done with a segment when it asks
        # for the next one, and a second set would double this pass's memory.
        buffers = [np.empty((length, h, w), np.uint8) for h, w in self.shapes]
        segment, current, filled = 0, starts[0], 0
        for first, frames in self._decode(starts[0], max(starts) + length, 256):
            offset, n = 0, len(frames[0])
            while segment < len(starts) and offset < n:
                wanted = current + filled  # the next frame the current segment needs
                if first + offset < wanted:
                    offset = min(n, wanted - first)
                    continue
                take = min(length - filled, n - offset)
                for buffer, view in zip(buffers, frames):
                    buffer[filled : filled + take] = view[offset : offset + take]
                filled += take
                offset += take
                if filled < length:
                    continue
                yield current, buffers
                segment += 1
                if segment == len(starts):
                    return
                # Facemap's segment starts can overlap the previous segment (by one frame when the length
                # is a multiple of 1000): carry the shared frames over.
                following = starts[segment]
                shared = min(length, max(0, current + length - following))
                for buffer in buffers:
                    buffer[:shared] = buffer[length - shared :].copy()
                current, filled = following, shared

    def chunks(self, chunk: int) -> Iterator[tuple[int, list[np.ndarray]]]:
        """Yield ``(start, frames per view)`` over the whole video in chunks of ``chunk`` frames."""
        if self.cached:
            for s in range(0, self.frame_count, chunk):
                yield s, [c[s : s + chunk] for c in self._cache]
            return
        yield from self._decode(0, self.frame_count, min(chunk, 250))


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
