"""The native engine: Facemap's algorithm, step for step, with faster means. No torch, no facemap.

Steps (as ``facemap.process.run``):

1. Average frame and average motion from up to 1000 frames, in segments of up to 100 frames
   spread over the video (``subsampled_mean``).
2. SVD: up to 15 segments of up to 1000 frames; per segment the motion (absolute differences of
   spatially binned frames minus the average motion) and the movie (binned frames minus the average
   frame) of the full frame and of each motion ROI; each segment's top components (250, or all
   Facemap keeps when there is one segment) are combined by an SVD of the stacked ``U * S``
   (``compute_SVD``).
3. Every frame projected on the components, motion energy per region, pupil, blink and running
   in chunks of 500 frames (``process_ROIs``).

What differs (the means; the components are the same, see the README for the one difference of
scale: Facemap's one-segment masks and projections carry the singular values):

* Exact SVDs through the smaller Gram matrix (``eigh``) instead of randomized PCA; the segments
  are merged into a running top-k basis as they come, so memory does not grow with video length.
* Every frame is decoded once: pupil, blink and running are computed on the raw pixels as they are
  decoded, and the binned frames (exact integer sums) go to a store that the averages, SVDs and
  projections read, in memory when it fits ``memory_budget``, else in a temporary file
  (:mod:`facemap_nwb.engines.frames`), so memory stays flat in video length.
* Singular values are real for every region and both SVD kinds (Facemap reports zeros when the
  video fits one segment, and only the last region's otherwise); masks are unit vectors.

Facemap quirks reproduced by default (``facemap_compatible=True``) so that results are
interchangeable:

* Motion ROI bins: ``y`` bins ``floor(y0 / sbin) .. floor(y_last / sbin) - 1`` and ``x`` bins
  ``floor(x0 / sbin) .. ceil(x_last / sbin) - 1`` (Facemap divides after flooring for x only).
* Motion energy alignment: for frames 0..498 the value is the difference to the next frame,
  frame 499 is 0, from 500 on it is the difference to the previous frame; projections are the
  difference to the previous frame with frame 0 a copy of frame 1.
* Pupil and blink ROIs set the pixels outside their ellipse to 255 in the frames used for motion
  energy and projections (not for the averages and SVDs).
* Facemap's running estimate (see :mod:`facemap_nwb.engines.signals`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from ..params import FacemapParameters
from ..results import FacemapResults, PupilSignals, Region, SVDComponents
from ..video import VideoRecording
from .frames import DEFAULT_MEMORY_BUDGET, FrameSource, RowStore, SpilledArray, check_space, peak_memory_mb
from .signals import blink_trace, pupil_fit, running_shifts, smooth_outliers
from .svd import bin_frames, merge_blocks, region_pieces, segment_svds
from .versions import package_version

__all__ = ["run_native", "ENGINE_NAME", "video_placement"]

ENGINE_NAME = "facemap_nwb.native"
FACEMAP_DEFAULT_COMPONENTS = 500
PROCESS_CHUNK = 500  # Facemap's chunk for projections; its boundaries decide the motion-energy quirk


def video_placement(heights: Sequence[int], widths: Sequence[int]) -> tuple[int, int, list[int], list[int]]:
    """Where each view's binned image sits in the combined picture (port of Facemap's ``video_placement``)."""
    ly, lx = np.asarray(heights), np.asarray(widths)
    npix = ly * lx
    picked = np.zeros(ly.size, bool)
    sy, sx = np.zeros(ly.size, int), np.zeros(ly.size, int)
    if ly.size in (2, 3):
        gridy = 1
    else:
        gridy = int(np.round(ly.size**0.5 * 0.75))
    total_y, row_y, row_x, rowmax, iy = 0, 0, 0, 0, 0
    while (~picked).sum() > 0:
        remaining = npix.copy()
        remaining[picked] = 0
        imax = int(np.argmax(remaining))
        picked[imax] = True
        if iy == 0:
            row_y, rowmax = 0, 0
        sy[imax], sx[imax] = row_y, row_x
        row_y += ly[imax]
        rowmax = max(rowmax, lx[imax])
        if iy == gridy - 1 or (~picked).sum() == 0:
            row_x += rowmax
        total_y = max(total_y, row_y)
        iy += 1
        if iy >= gridy:
            iy = 0
    return int(total_y), int(row_x), sy.tolist(), sx.tolist()


def _bin(frames: np.ndarray, plan: _Plan, view: _View) -> np.ndarray:
    """(n, ybins * xbins) float32 means over sbin x sbin blocks (Facemap's ``spatial_bin``).

    ``frames`` are raw pixels, or bin sums when the frame source caches those (``plan.frame_sbin == 1``).
    """
    return bin_frames(frames, plan.frame_sbin, (0, view.ybins), (0, view.xbins), scale=plan.scale)


@dataclass
class _Basis:
    """A running top-k basis, merged as segments come (memory flat in video length; Facemap instead stacks
    every segment's components). Segments are stacked (with the cross terms of their Gram matrix) until the
    stack holds more rows than ``limit``, then merged into one block of ``limit`` rows."""

    limit: int
    blocks: list = field(default_factory=list)  # [(Uᵀ with orthonormal rows, S)]
    crosses: dict = field(default_factory=dict)  # (i, j) -> Uᵢᵀ Uⱼ for i < j
    segments: int = 0

    def add(self, u_t: np.ndarray, s: np.ndarray) -> None:
        self.segments += 1
        new = len(self.blocks)
        for i, (u, _) in enumerate(self.blocks):
            self.crosses[(i, new)] = u @ u_t.T
        self.blocks.append((u_t, s))
        if sum(u.shape[0] for u, _ in self.blocks) > self.limit:
            self.blocks, self.crosses = [merge_blocks(self.blocks, self.crosses, self.limit)], {}

    def final(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(Uᵀ, S)``: the segment's own SVD when there is one segment (Facemap skips its final SVD)."""
        if len(self.blocks) > 1:
            self.blocks, self.crosses = [merge_blocks(self.blocks, self.crosses, k)], {}
        u_t, s = self.blocks[0]
        return u_t[:k], s[:k]


@dataclass
class _View:
    height: int
    width: int
    ybins: int
    xbins: int
    offset: int  # first column of this view in the concatenated binned pixels

    @property
    def pixels(self) -> int:
        return self.ybins * self.xbins


@dataclass
class _Plan:
    params: FacemapParameters
    frame_count: int
    views: list[_View]
    regions: list[Region]
    motion_regions: list[int] = field(default_factory=list)  # region indices with SVDs / motion energy
    n_components: int = FACEMAP_DEFAULT_COMPONENTS
    frame_sbin: int = 1  # bin size still to apply to the frames the source yields
    scale: float = 1.0  # 1 / (sbin * sbin): bin sums to means

    @property
    def raw_pixels_needed(self) -> bool:
        """Pupil, blink and running work on raw pixels; everything else only on binned frames."""
        return any(r.type in ("pupil", "blink", "running") for r in self.regions)

    @property
    def full_frame(self) -> bool:
        return self.params.multivideo_svd

    @property
    def total_pixels(self) -> int:
        return sum(v.pixels for v in self.views)


def _motion_bins(y0: int, height: int, x0: int, width: int, sbin: int, facemap_compatible: bool):
    y_last, x_last = y0 + height - 1, x0 + width - 1
    if facemap_compatible:
        return (y0 // sbin, math.floor(y_last / sbin)), (x0 // sbin, math.ceil(x_last / sbin))
    return (y0 // sbin, (y_last + 1) // sbin), (x0 // sbin, (x_last + 1) // sbin)


def _plan(recordings: Sequence[VideoRecording], params: FacemapParameters, facemap_compatible: bool) -> _Plan:
    sbin = params.spatial_bin
    views, offset = [], 0
    for index, rec in enumerate(recordings):
        if sbin > min(rec.height, rec.width):
            raise ValueError(
                f"spatial_bin {sbin} is larger than video {index} ('{rec.paths[0]}', {rec.width}x{rec.height}); "
                "choose a spatial bin no larger than the frame."
            )
        view = _View(rec.height, rec.width, rec.height // sbin, rec.width // sbin, offset)
        views.append(view)
        offset += view.pixels
    regions: list[Region] = []
    if params.multivideo_svd:
        one = len(views) == 1
        regions.append(
            Region(
                -1,
                "full_frame",
                "full_frame",
                0 if one else -1,
                (0, views[0].height),
                (0, views[0].width),
                (0, views[0].ybins),
                (0, views[0].xbins),
            )
        )
    for number, roi in enumerate(params.rois):
        if roi.video >= len(views):
            raise ValueError(f"ROI '{roi.name}' is on video {roi.video} but only {len(views)} video(s) were given.")
        roi.check_inside(views[roi.video].height, views[roi.video].width)
        ybin = xbin = None
        if roi.type == "motion":
            ybin, xbin = _motion_bins(roi.y, roi.height, roi.x, roi.width, sbin, facemap_compatible)
            # Facemap's x rule (ceil) can name one bin past the frame's last one at the right edge, where
            # Facemap itself fails; clamp to the frame's bins.
            view = views[roi.video]
            ybin, xbin = (ybin[0], min(ybin[1], view.ybins)), (xbin[0], min(xbin[1], view.xbins))
            if ybin[1] <= ybin[0] or xbin[1] <= xbin[0]:
                raise ValueError(
                    f"Motion ROI '{roi.name}' ({roi.width}x{roi.height} pixels) covers no whole spatial bin of "
                    f"{sbin} pixels; make it larger or lower spatial_bin."
                )
        regions.append(
            Region(
                number,
                roi.name,
                roi.type,
                roi.video,
                (roi.y, roi.y + roi.height),
                (roi.x, roi.x + roi.width),
                ybin,
                xbin,
                roi.saturation if roi.type in ("pupil", "blink") else None,
                roi.pupil_sigma if roi.type == "pupil" else None,
            )
        )
    frame_count = recordings[0].frame_count
    plan = _Plan(params, frame_count, views, regions)
    plan.motion_regions = [i for i, r in enumerate(regions) if r.type in ("full_frame", "motion")]
    limit = min(frame_count - 1, *(_region_pixels(plan, i) for i in plan.motion_regions)) if plan.motion_regions else 0
    plan.n_components = params.n_components
    if (params.motion_svd or params.movie_svd) and plan.motion_regions and params.n_components > max(limit, 1):
        if params.n_components != FACEMAP_DEFAULT_COMPONENTS:
            raise ValueError(
                f"n_components {params.n_components} is more than the video allows ({frame_count} frames, smallest "
                f"region {min(_region_pixels(plan, i) for i in plan.motion_regions)} binned pixels): "
                f"ask for at most {limit}."
            )
    return plan


def _region_pixels(plan: _Plan, index: int) -> int:
    region = plan.regions[index]
    if region.type == "full_frame":
        return plan.total_pixels
    return (region.y_bin_range[1] - region.y_bin_range[0]) * (region.x_bin_range[1] - region.x_bin_range[0])


def _region_block(plan: _Plan, index: int, binned: list[np.ndarray]) -> np.ndarray:
    """The (frames, pixels) columns of a region from per-view binned frames."""
    region = plan.regions[index]
    if region.type == "full_frame":
        return binned[0] if len(binned) == 1 else np.concatenate(binned, axis=1)
    view = plan.views[region.video_index]
    (y0, y1), (x0, x1) = region.y_bin_range, region.x_bin_range
    image = binned[region.video_index].reshape(-1, view.ybins, view.xbins)
    return np.ascontiguousarray(image[:, y0:y1, x0:x1]).reshape(image.shape[0], -1)


class _Progress:
    def __init__(self, total: int, enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", desc="facemap-nwb native", dynamic_ncols=True)

    def __call__(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _averages(plan: _Plan, source: FrameSource, recordings) -> tuple[list[np.ndarray], list[np.ndarray]]:
    n = plan.frame_count
    nf = min(1000, n)
    nt0 = min(100, min(recordings[0].frame_counts))
    nsegs = max(1, nf // nt0)
    starts = np.floor(np.linspace(0, n - nt0, nsegs)).astype(int)
    frame_sum = [np.zeros(v.pixels, np.float64) for v in plan.views]
    motion_sum = [np.zeros(v.pixels, np.float64) for v in plan.views]
    for _, frames in source.segments(starts, nt0):
        for i, (view, raw) in enumerate(zip(plan.views, frames)):
            binned = _bin(raw, plan, view)
            frame_sum[i] += binned.mean(axis=0)
            if len(binned) > 1:
                motion_sum[i] += np.abs(np.diff(binned, axis=0)).mean(axis=0)
    return [(s / nsegs).astype(np.float32) for s in frame_sum], [(s / nsegs).astype(np.float32) for s in motion_sum]


@dataclass
class _Components:
    """Spatial components (``Uᵀ``, components x pixels) and singular values of one kind and region, and
    the projections of the frames the SVD itself covered (``first`` .. ``first + len(covered) - 1``)."""

    u_t: np.ndarray
    s: np.ndarray
    covered: np.ndarray | None = None
    first: int = 1


def _pieces(plan: _Plan, region_index: int, frames: int):
    region = plan.regions[region_index]
    bins = [(v.ybins, v.xbins) for v in plan.views]
    if region.type == "full_frame":
        return region_pieces(bins, -1, frames=frames)
    return region_pieces(bins, region.video_index, region.y_bin_range, region.x_bin_range, frames=frames)


def _svds(plan, source, avg_frame, avg_motion) -> dict[tuple[str, int], _Components]:
    n, params = plan.frame_count, plan.params
    nt0 = min(1000, n)
    nsegs = max(1, int(min(15000 // nt0, n // nt0)))
    per_segment = min(250, nt0 - 1) if nsegs > 1 else min(plan.n_components, nt0 - 1)
    starts = np.floor(np.linspace(0, max(n - nt0 - 1, 0), nsegs)).astype(int)
    kinds = [k for k, on in (("motion", params.motion_svd), ("movie", params.movie_svd)) if on]
    bases = {(k, r): _Basis(limit=plan.n_components) for k in kinds for r in plan.motion_regions}
    covered: dict[tuple[str, int], tuple[int, np.ndarray]] = {}
    shapes = [(v.ybins, v.xbins) for v in plan.views]
    averages = {"motion": avg_motion, "movie": avg_frame}
    for start, frames in source.segments(starts, nt0):
        for region in plan.motion_regions:
            per_kind = segment_svds(
                frames,
                _pieces(plan, region, nt0),
                sbin=plan.frame_sbin,
                scale=plan.scale,
                view_shapes=shapes,
                averages=averages,
                kinds=kinds,
                k=per_segment,
            )
            for kind, (u_t, s, projections) in per_kind.items():
                bases[(kind, region)].add(u_t, s)
                covered[(kind, region)] = (start + 1, projections)
    out = {}
    for key, basis in bases.items():
        u_t, s = basis.final(min(plan.n_components, _region_pixels(plan, key[1])))
        components = _Components(u_t, s)
        if basis.segments == 1:  # the segment's own frames are projected already: X U = W S
            first, projections = covered[key]
            components.covered, components.first = projections[:, : len(s)], first
        out[key] = components
    return out


def _facemap_alignment(diffs: np.ndarray) -> np.ndarray:
    """Facemap's motion energy index from differences ``diffs[t] = |f[t] - f[t-1]|`` (``diffs[0]`` unused)."""
    n = diffs.shape[0]
    out = np.zeros_like(diffs)
    first = min(PROCESS_CHUNK, n)
    out[: first - 1] = diffs[1:first]
    out[first:] = diffs[first:]
    return out


@dataclass
class _Accumulators:
    motion: dict[int, np.ndarray]
    projections: dict[tuple[str, int], np.ndarray]
    pupils: dict[int, dict[str, np.ndarray]]
    blinks: dict[int, np.ndarray]
    running: dict[int, np.ndarray]


class _RawPass:
    """Pupil, blink and running for each decoded chunk, in Facemap's order (called by the frame source).

    Facemap fills each pupil ROI (then each blink ROI) with 255 outside its ellipse *in the frames*,
    right before fitting it, so later ROIs and the running estimate see the fill; the filled frames are
    returned so that the frame source keeps the bins they change (for motion energy and projections).
    """

    def __init__(self, plan: _Plan, acc: _Accumulators, running_method: str):
        self.plan, self.acc, self.running_method = plan, acc, running_method
        self.touched = {r.video_index for r in plan.regions if r.type in ("pupil", "blink")}
        self.pupil_parts: dict[int, list[dict]] = {}
        self.previous_raw: dict[int, np.ndarray] = {}

    def patches(self, sbin: int) -> list:
        """Per view, the bin rectangle that covers every filled ROI (bins partly inside included)."""
        out = []
        for index, view in enumerate(self.plan.views):
            boxes = [
                self.plan.params.rois[r.number]
                for r in self.plan.regions
                if r.type in ("pupil", "blink") and r.video_index == index
            ]
            if not boxes:
                out.append(None)
                continue
            r0 = min(b.y for b in boxes) // sbin
            c0 = min(b.x for b in boxes) // sbin
            r1 = min(view.ybins, -(-max(b.y + b.height for b in boxes) // sbin))
            c1 = min(view.xbins, -(-max(b.x + b.width for b in boxes) // sbin))
            out.append(((r0, r1), (c0, c1)) if r1 > r0 and c1 > c0 else None)
        return out

    def __call__(self, start: int, frames: list[np.ndarray]) -> list[np.ndarray]:
        plan, acc, n = self.plan, self.acc, self.plan.frame_count
        work = [f.copy() if i in self.touched else f for i, f in enumerate(frames)]
        for roi_type in ("pupil", "blink", "running"):
            for index, region in enumerate(plan.regions):
                if region.type != roi_type:
                    continue
                roi = plan.params.rois[region.number]
                crop = work[roi.video][:, roi.y : roi.y + roi.height, roi.x : roi.x + roi.width]
                if roi_type in ("pupil", "blink"):
                    crop[:, ~roi.mask] = 255
                if roi_type == "pupil":
                    self.pupil_parts.setdefault(index, []).append(pupil_fit(crop, roi.saturation, roi.pupil_sigma))
                elif roi_type == "blink":
                    trace = blink_trace(crop, roi.saturation)
                    acc.blinks.setdefault(index, np.zeros(n))[start : start + len(crop)] = trace
                else:
                    previous = self.previous_raw.get(index)
                    series = crop if previous is None else np.concatenate([previous[np.newaxis], crop])
                    dy, dx = running_shifts(series, self.running_method)
                    offset = start + 1 if previous is None else start
                    acc.running.setdefault(index, np.zeros((n, 2)))[offset : offset + len(dy)] = np.stack([dy, dx], 1)
                    self.previous_raw[index] = crop[-1].copy()
        return work

    def finish(self) -> None:
        for index, parts in self.pupil_parts.items():
            self.acc.pupils[index] = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _process_chunk_size(plan: _Plan) -> int:
    """Frames per chunk of the last pass: 256, fewer for large frames to bound memory (128 MiB;
    products of fewer than ~170 rows run measurably slower: 85 rows of 65,536 pixels take 1.4x as long)."""
    per_frame = 4 * 3 * max(plan.total_pixels, 1)  # bin sums and their differences as float32, and slack
    return int(max(16, min(256, (1 << 27) // per_frame)))


def _needs_projection(plan: _Plan, region: int, facemap_compatible: bool) -> bool:
    """Whether a region's projections differ from its SVD's own W S: frames changed by the ellipse fill."""
    if not facemap_compatible:
        return False
    filled = {r.video_index for r in plan.regions if r.type in ("pupil", "blink")}
    r = plan.regions[region]
    return bool(filled) and (r.type == "full_frame" or r.video_index in filled)


def _process(plan, source, avg_frame, avg_motion, components, facemap_compatible, acc: _Accumulators) -> None:
    """Motion energy and projections of every frame, from the binned frames (the last pass)."""
    n = plan.frame_count
    acc.motion = {r: np.zeros(n, np.float32) for r in plan.motion_regions}
    acc.projections = _projection_arrays(plan, components, spill=source.spilled)
    pending = {}  # which frames each (kind, region) still needs projected: [lo, hi) covered by the SVD
    for key, c in components.items():
        if c.covered is not None and not _needs_projection(plan, key[1], facemap_compatible):
            _put(acc.projections[key], np.arange(c.first, c.first + len(c.covered)), c.covered)
            pending[key] = (c.first, c.first + len(c.covered))
        else:
            pending[key] = (0, 0)
    # Work on bin sums (exact in float32) and scale the results: (sums * scale - average) @ U equals
    # (sums @ U) * scale - average @ U, which saves a scaled and a centred copy of every chunk.
    scale = np.float32(plan.scale)
    offsets = {}
    for (kind, region), c in components.items():
        average = avg_motion if kind == "motion" else avg_frame
        offsets[(kind, region)] = _region_block(plan, region, [a[np.newaxis] for a in average]) @ c.u_t.T
    for start, frames in source.chunks(_process_chunk_size(plan), changed=facemap_compatible, overlap=1):
        sums = [f.reshape(len(f), -1).astype(np.float32) for f in frames]  # frame first .. first + len - 1
        first = max(start - 1, 0)
        motion = [np.subtract(x[1:], x[:-1]) for x in sums]
        for m in motion:
            np.abs(m, out=m)
        rows = np.arange(first + 1, first + 1 + motion[0].shape[0])  # motion row j is frame first + 1 + j
        for region in plan.motion_regions:
            acc.motion[region][rows] = _region_block(plan, region, motion).sum(axis=1) * scale
        for (kind, region), (lo, hi) in pending.items():
            mask = (rows < lo) | (rows >= hi)
            if not mask.any():
                continue
            block = _region_block(plan, region, motion if kind == "motion" else [x[1:] for x in sums])
            if not mask.all():
                block = block[mask]
            projected = block @ components[(kind, region)].u_t.T
            projected *= scale
            projected -= offsets[(kind, region)]
            _put(acc.projections[(kind, region)], rows[mask], projected)
    for key, values in acc.projections.items():
        if n > 1:  # frame 0 repeats frame 1
            _put(values, np.arange(1), values.read(1, 2) if isinstance(values, RowStore) else values[1:2])
        if isinstance(values, RowStore):
            acc.projections[key] = SpilledArray(values)
    if facemap_compatible:
        acc.motion = {r: _facemap_alignment(m) for r, m in acc.motion.items()}


def _projection_arrays(plan: _Plan, components: dict, *, spill: bool) -> dict:
    """One (frames, components) float32 array per SVD; in temporary files when the frames were spilled too,
    so that memory stays flat in video length (100,000 frames x 500 components is 200 MB per SVD)."""
    n = plan.frame_count
    if not spill or not components:
        return {key: np.zeros((n, c.u_t.shape[0]), np.float32) for key, c in components.items()}
    needed = sum(4 * n * c.u_t.shape[0] for c in components.values())
    folder = check_space(needed, "SVD projections")
    return {
        key: RowStore((n, c.u_t.shape[0]), np.float32, folder=folder, what="SVD projections")
        for key, c in components.items()
    }


def _put(target, rows: np.ndarray, values: np.ndarray) -> None:
    """``target[rows] = values`` for an array or a :class:`RowStore` (written run by contiguous run)."""
    if not isinstance(target, RowStore):
        target[rows] = values
        return
    if rows.size == 0:
        return
    breaks = np.flatnonzero(np.diff(rows) != 1) + 1
    for part_rows, part_values in zip(np.split(rows, breaks), np.split(values, breaks)):
        target.write(int(part_rows[0]), part_values)


def _placed(plan: _Plan, per_view: list[np.ndarray]) -> np.ndarray:
    if len(plan.views) == 1:
        v = plan.views[0]
        return per_view[0].reshape(v.ybins, v.xbins)
    total_y, total_x, sy, sx = video_placement([v.ybins for v in plan.views], [v.xbins for v in plan.views])
    image = np.zeros((total_y, total_x), np.float32)
    for v, y, x, values in zip(plan.views, sy, sx, per_view):
        image[y : y + v.ybins, x : x + v.xbins] = values.reshape(v.ybins, v.xbins)
    return image


def _masks(plan: _Plan, region: int, u_t: np.ndarray) -> np.ndarray:
    """(components, height, width) masks from ``Uᵀ`` (components x pixels); no copy for one view."""
    r = plan.regions[region]
    k = u_t.shape[0]
    if r.type != "full_frame":
        return u_t.reshape(k, r.y_bin_range[1] - r.y_bin_range[0], r.x_bin_range[1] - r.x_bin_range[0])
    if len(plan.views) == 1:
        return u_t.reshape(k, plan.views[0].ybins, plan.views[0].xbins)
    per_view = [u_t[:, v.offset : v.offset + v.pixels] for v in plan.views]
    return np.stack([_placed(plan, [p[c] for p in per_view]) for c in range(k)])


def run_native(
    recordings: Sequence[VideoRecording],
    params: FacemapParameters,
    *,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = True,
    facemap_compatible: bool = True,
    running_method: str = "facemap",
    timings: dict | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> FacemapResults:
    """Process simultaneous camera recordings with the native engine.

    Parameters
    ----------
    recordings : sequence of VideoRecording
        One per simultaneous camera view, all with the same number of frames.
    params : FacemapParameters
    memory_budget : int
        Bytes of binned frames kept in memory; beyond it they go to a temporary file (in
        ``$FACEMAP_NWB_TMPDIR``, else ``$TMPDIR``), read back in pieces. Either way every frame is decoded
        once.
    progress : bool
        Show a progress bar (frames per second).
    facemap_compatible : bool
        Reproduce Facemap's quirks (documented in this module) so that results are interchangeable.
    running_method : {"facemap", "phase_correlation"}
    timings : dict, optional
        Filled with seconds spent decoding, in SVDs and in projection, the number of decodes (always 1),
        whether the binned frames were spilled to disk, and the peak memory after each stage.

    Returns
    -------
    FacemapResults
        When the binned frames did not fit ``memory_budget``, the SVD projections are kept in temporary
        files too (:class:`~facemap_nwb.engines.frames.SpilledArray`: sliced like an array, read when
        sliced, streamed into NWB files; ``np.asarray`` reads it whole); the files go when the results do.
    """
    import time

    recordings = list(recordings)
    plan = _plan(recordings, params, facemap_compatible)
    clock = time.perf_counter
    t0 = clock()
    sbin = params.spatial_bin
    acc = _Accumulators(motion={}, projections={}, pupils={}, blinks={}, running={})
    raw_pass = _RawPass(plan, acc, running_method) if plan.raw_pixels_needed else None
    bar = _Progress(plan.frame_count * 2, progress)  # decoding, then the last pass
    source = None
    try:
        source = FrameSource(
            recordings,
            sbin=sbin,
            memory_budget=memory_budget,
            progress=bar,
            on_raw=raw_pass,
            patches=raw_pass.patches(sbin) if raw_pass is not None and facemap_compatible else None,
        )
        if raw_pass is not None:
            raw_pass.finish()
        plan.frame_sbin, plan.scale = 1, 1.0 / (sbin * sbin)
        t_decode = clock() - t0
        peaks = [peak_memory_mb()]
        avg_frame, avg_motion = _averages(plan, source, recordings)
        t1 = clock()
        bases = (
            _svds(plan, source, avg_frame, avg_motion)
            if plan.motion_regions and (params.motion_svd or params.movie_svd)
            else {}
        )
        t2 = clock()
        peaks.append(peak_memory_mb())
        _process(plan, _Counted(source, bar), avg_frame, avg_motion, bases, facemap_compatible, acc)
        t3 = clock()
        peaks.append(peak_memory_mb())
    finally:
        bar.close()
        if source is not None:
            source.close()
    if timings is not None:
        timings.update(
            decode=t_decode,
            averages=t1 - t0 - t_decode,
            svd=t2 - t1,
            projection=t3 - t2,
            decodes=source.decodes,
            spilled=source.spilled,
            peak_mb=dict(zip(("decode", "svd", "projection"), peaks)),
        )
    return _results(plan, recordings, avg_frame, avg_motion, bases, acc, facemap_compatible)


class _Counted:
    """A frame source whose chunks advance the progress bar."""

    def __init__(self, source: FrameSource, bar: _Progress):
        self.source, self.bar = source, bar

    @property
    def spilled(self) -> bool:
        return self.source.spilled

    def chunks(self, chunk: int, **options):
        for start, frames in self.source.chunks(chunk, **options):
            yield start, frames
            self.bar(min(chunk, self.source.frame_count - start))


def _results(plan, recordings, avg_frame, avg_motion, bases, acc, facemap_compatible: bool = True) -> FacemapResults:
    svds = {"motion": [], "movie": []}
    for (kind, region), c in bases.items():
        masks = _masks(plan, region, c.u_t)
        svds[kind].append(SVDComponents(kind, region, acc.projections[(kind, region)], c.s, masks, "computed"))
    pupils = [
        PupilSignals(
            region=index,
            area=values["area"],
            area_smooth=smooth_outliers(values["area"]),
            center=values["com"],
            center_smooth=np.stack([smooth_outliers(values["com"][:, 0]), smooth_outliers(values["com"][:, 1])], 1),
            axes_length=values["axlen"],
            axes_direction=values["axdir"],
        )
        for index, values in sorted(acc.pupils.items())
    ]
    return FacemapResults(
        parameters=plan.params,
        frame_count=plan.frame_count,
        view_shapes=[(v.height, v.width) for v in plan.views],
        regions=plan.regions,
        motion_energy=acc.motion,
        motion_svd=sorted(svds["motion"], key=lambda s: s.region),
        movie_svd=sorted(svds["movie"], key=lambda s: s.region),
        average_frame=_placed(plan, avg_frame),
        average_motion=_placed(plan, avg_motion),
        pupils=pupils,
        blinks=acc.blinks,
        running=acc.running,
        engine=ENGINE_NAME,
        engine_version=package_version("facemap-nwb"),
        processing_time=datetime.now(timezone.utc),
        video_files=[[str(p) for p in files] for files in zip(*(r.paths for r in recordings))],
        frame_alignment="facemap" if facemap_compatible else "previous",
    )
