"""Exact SVDs for the native engine, computed in pixel blocks.

For a segment of ``T`` frames and a region of ``P`` binned pixels, the data ``X`` (``T - 1`` frames x
``P`` pixels: motion or movie) is never held whole: the Gram matrix ``X Xᵀ`` and the per-frame sums
are accumulated over blocks of pixels, the eigen-decomposition of the centred Gram matrix gives
the temporal components ``W`` and singular values ``S``, and a second pass over the blocks gives the
spatial components ``Uᵀ = Wᵀ X_c / S`` (stored components x pixels, so masks reshape without a copy).

Centring follows Facemap's ``svdecon`` (sklearn's PCA on ``Xᵀ``): each frame's mean over the pixels is
removed before the SVD (``X_c = X - m 1ᵀ``), and not before the projections. Because the rows of
``X_c`` sum to zero over pixels, the projection of the segment's own frames is ``X U = W S`` exactly,
which the engine uses instead of projecting those frames again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Piece", "bin_frames", "bin_sums", "region_pieces", "segment_svds", "merge_components"]

# float32 bytes per block of (frames x pixels): a quarter of the segment's data, within these bounds. Large
# blocks let BLAS run faster (measured ~20% faster on 64 MiB than on 8 MiB) on large frames, where Facemap
# itself needs gigabytes; on small frames a quarter of a segment keeps memory small.
BLOCK_BYTES = 1 << 26
MIN_BLOCK_BYTES = 1 << 23
# A segment's data for one kind up to this size is made once and kept, block by block, for both products
# (the Gram matrix and the components; 999 x 9,999 pixels: 0.52 s against 0.61 s made twice); beyond, the
# blocks are made twice, so that memory stays bounded on large frames (on 999 x 65,536 pixels keeping them
# measured no faster, and at spatial bin 1 a segment of 1024x1024 frames is 4 GB).
WHOLE_BYTES = 1 << 27


@dataclass(frozen=True)
class Piece:
    """A rectangle of spatial bins of one view, and where its pixels sit in the region's pixel vector."""

    view: int
    rows: tuple[int, int]
    cols: tuple[int, int]
    offset: int

    @property
    def pixels(self) -> int:
        return (self.rows[1] - self.rows[0]) * (self.cols[1] - self.cols[0])


def bin_sums(frames: np.ndarray, sbin: int, rows: tuple[int, int], cols: tuple[int, int]) -> np.ndarray:
    """(n, bins y, bins x) integer sums over sbin x sbin pixel blocks of the given bin rows and columns."""
    n = frames.shape[0]
    sub = frames[:, rows[0] * sbin : rows[1] * sbin, cols[0] * sbin : cols[1] * sbin]
    if sbin == 1:
        return sub
    yb, xb = rows[1] - rows[0], cols[1] - cols[0]
    # Sum pixel rows first (contiguous, cheap), then pixel columns, in uint16 (255 * 16 * 16 < 65536
    # for sbin <= 16; wider bins use uint32).
    # In-place adds of strided slices are about twice as fast as numpy's sum over an inner axis.
    wide = np.uint16 if sbin <= 16 else np.uint32
    by_rows = sub.reshape(n, yb, sbin, xb * sbin)
    rows_summed = by_rows[:, :, 0].astype(wide)
    for j in range(1, sbin):
        rows_summed += by_rows[:, :, j]
    by_cols = rows_summed.reshape(n, yb, xb, sbin)
    sums = by_cols[..., 0].copy()
    for j in range(1, sbin):
        sums += by_cols[..., j]
    return sums


def bin_frames(
    frames: np.ndarray, sbin: int, rows: tuple[int, int], cols: tuple[int, int], *, scale: float | None = None
) -> np.ndarray:
    """(n, bins) float32 means over sbin x sbin pixel blocks of the given bin rows and columns.

    Equal to Facemap's ``spatial_bin`` (a float32 mean) within float32 rounding. ``frames`` may also be
    sums binned already (``sbin=1``, ``scale=1 / bin area``).
    """
    sums = bin_sums(frames, sbin, rows, cols)
    scale = 1.0 / (sbin * sbin) if scale is None else scale
    out = sums.reshape(sums.shape[0], -1).astype(np.float32)
    if scale != 1.0:
        out *= np.float32(scale)
    return out


def region_pieces(
    view_bins: Sequence[tuple[int, int]], region_view: int, rows=None, cols=None, *, frames: int = 1000
) -> list[Piece]:
    """Split a region into pieces of about a quarter of its data for ``frames`` frames (8 to 64 MiB).

    ``view_bins`` are (bins y, bins x) of each view. A full-frame region (``region_view`` < 0 or no rows
    given) covers every view in order; an ROI covers ``rows`` x ``cols`` of one view.
    """
    pieces: list[Piece] = []
    offset = 0
    targets = (
        [(v, (0, yb), (0, xb)) for v, (yb, xb) in enumerate(view_bins)]
        if rows is None
        else [(region_view, tuple(rows), tuple(cols))]
    )
    total = 4 * max(frames, 1) * sum((r1 - r0) * (c1 - c0) for _, (r0, r1), (c0, c1) in targets)
    block = min(BLOCK_BYTES, max(MIN_BLOCK_BYTES, total // 4))
    for view, (r0, r1), (c0, c1) in targets:
        width = c1 - c0
        band = max(1, block // (4 * max(frames, 1) * max(width, 1)))
        for start in range(r0, r1, band):
            piece = Piece(view, (start, min(start + band, r1)), (c0, c1), offset)
            pieces.append(piece)
            offset += piece.pixels
    return pieces


def _piece_average(average: np.ndarray, view_shape: tuple[int, int], piece: Piece) -> np.ndarray:
    image = average.reshape(view_shape)
    return np.ascontiguousarray(image[piece.rows[0] : piece.rows[1], piece.cols[0] : piece.cols[1]]).ravel()


def _piece_data(frames, piece, sbin, scale, view_shapes, averages, kinds):
    """Yield ``(kind, data)``: motion and/or movie (frames - 1, pixels) of one piece minus the averages
    (Facemap's order), one kind at a time; each array is reused, so use it before asking for the next."""
    binned = bin_frames(frames[piece.view], sbin, piece.rows, piece.cols, scale=scale)
    if "motion" in kinds:
        motion = np.subtract(binned[1:], binned[:-1])
        np.abs(motion, out=motion)
        motion -= _piece_average(averages["motion"][piece.view], view_shapes[piece.view], piece)
        yield "motion", motion
        del motion
    if "movie" in kinds:
        movie = binned[1:]  # binned is not needed after this: centred in place
        movie -= _piece_average(averages["movie"][piece.view], view_shapes[piece.view], piece)
        yield "movie", movie


def _top_eigen(gram: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` eigenvectors (columns) of a symmetric matrix and the square roots of their eigenvalues.

    float32 divide-and-conquer LAPACK (``syevd``, the whole spectrum): measured the fastest of LAPACK's
    drivers for Facemap's sizes (0.06 s for 999 x 999, 0.03 s for 750 x 750 on 2 cores, against 0.07 and
    0.09 s for ``syevr`` on the wanted index range only). The Gram matrix comes from float32 products
    anyway, and the leading components (the ones that matter) are accurate to float32.
    """
    from scipy.linalg import eigh

    n = gram.shape[0]
    k = max(0, min(k, n))
    if k == 0:
        return np.zeros((n, 0)), np.zeros(0)
    values, vectors = eigh(gram.astype(np.float32), driver="evd", overwrite_a=True, check_finite=False)
    values, vectors = values[::-1][:k].astype(np.float64), vectors[:, ::-1][:, :k].astype(np.float64)
    return vectors, np.sqrt(np.maximum(values, 0.0))


def _inverse(s: np.ndarray) -> np.ndarray:
    """``1 / s``, with 0 for singular values under 1e-6 of the largest (their components are set to zero)."""
    keep = s > (s[0] * 1e-6 if s.size and s[0] > 0 else np.inf)
    return np.where(keep, 1.0 / np.where(keep, s, 1.0), 0.0)


def segment_svds(
    frames: Sequence[np.ndarray],
    pieces: list[Piece],
    *,
    sbin: int,
    scale: float,
    view_shapes: Sequence[tuple[int, int]],
    averages: dict[str, list[np.ndarray]],
    kinds: Sequence[str],
    k: int,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """SVD of one segment's motion and/or movie over a region: per kind ``(Uᵀ (k x P), S (k,), W S (T-1 x k))``."""
    samples = frames[0].shape[0] - 1
    pixels = sum(p.pixels for p in pieces)
    k = max(0, min(k, samples, pixels - 1))  # centring over pixels leaves rank pixels - 1 at most
    if 4 * samples * pixels <= WHOLE_BYTES:  # one kind's data fits: made once, used for both products
        out = {}
        for kind in kinds:
            blocks = [
                next(_piece_data(frames, piece, sbin, scale, view_shapes, averages, [kind]))[1] for piece in pieces
            ]
            out[kind] = _kept_svd(blocks, pieces, k)
            del blocks
        return out
    grams = {kind: np.zeros((samples, samples)) for kind in kinds}
    sums = {kind: np.zeros(samples) for kind in kinds}
    for piece in pieces:
        for kind, x in _piece_data(frames, piece, sbin, scale, view_shapes, averages, kinds):
            grams[kind] += x @ x.T  # numpy runs A @ A.T as a symmetric rank-k update
            sums[kind] += x.sum(axis=1, dtype=np.float64)
    out = {}
    for kind in kinds:
        means = sums[kind] / pixels
        centred = grams[kind] - np.outer(sums[kind], sums[kind]) / pixels
        w, s = _top_eigen(centred, k)
        inverse = _inverse(s).astype(np.float32)
        u_t = np.empty((k, pixels), np.float32)
        out[kind] = [u_t, s.astype(np.float32), (w * s).astype(np.float32), w, inverse, means]
    for piece in pieces:
        for kind, x in _piece_data(frames, piece, sbin, scale, view_shapes, averages, kinds):
            u_t, _, _, w, inverse, means = out[kind]
            x -= means.astype(np.float32)[:, np.newaxis]
            u_t[:, piece.offset : piece.offset + piece.pixels] = (w.T.astype(np.float32) @ x) * inverse[:, np.newaxis]
    return {kind: (v[0], v[1], v[2]) for kind, v in out.items()}


def _kept_svd(blocks: list[np.ndarray], pieces: list[Piece], k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Uᵀ, S, W S)`` of a segment's data kept in pixel blocks (changed in place), frames centred over pixels."""
    pixels = sum(p.pixels for p in pieces)
    samples = blocks[0].shape[0]
    gram, sums = np.zeros((samples, samples)), np.zeros(samples)
    for x in blocks:
        gram += x @ x.T
        sums += x.sum(axis=1, dtype=np.float64)
    w, s = _top_eigen(gram - np.outer(sums, sums) / pixels, k)
    inverse = _inverse(s).astype(np.float32)
    means, w32 = (sums / pixels).astype(np.float32)[:, np.newaxis], w.T.astype(np.float32)
    u_t = np.empty((w.shape[1], pixels), np.float32)
    for x, piece in zip(blocks, pieces):
        x -= means
        u_t[:, piece.offset : piece.offset + piece.pixels] = (w32 @ x) * inverse[:, np.newaxis]
    return u_t, s.astype(np.float32), (w * s).astype(np.float32)


def merge_components(
    u_t: np.ndarray, s: np.ndarray, u2_t: np.ndarray, s2: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k SVD of the stacked rows ``[S Uᵀ; S2 U2ᵀ]``, as Facemap's final ``svdecon`` of its stacked ``U * S``.

    Returns ``(Uᵀ (k x P), S (k,))``; see :func:`merge_blocks`.
    """
    return merge_blocks([(u_t, s), (u2_t, s2)], {(0, 1): u_t @ u2_t.T}, k)


def merge_blocks(
    blocks: Sequence[tuple[np.ndarray, np.ndarray]], crosses: dict[tuple[int, int], np.ndarray], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k SVD of the stacked rows ``[S₁ U₁ᵀ; S₂ U₂ᵀ; ...]`` (Facemap's final ``svdecon`` of its stack).

    Each basis has orthonormal rows that sum to zero over pixels (each row is a combination of frames
    centred over pixels), so Facemap's centring leaves them as they are, and the Gram matrix of the stack
    has ``Sᵢ²`` on its diagonal blocks and ``Sᵢ Uᵢᵀ Uⱼ Sⱼ`` off it: only the cross terms ``crosses[(i, j)] =
    Uᵢᵀ Uⱼ`` (i < j) are computed (``mᵢ x mⱼ x P`` each instead of ``(Σ m)² x P``). Returns ``(Uᵀ, S)``.
    """
    sizes = [u.shape[0] for u, _ in blocks]
    edges = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    scales = [sv.astype(np.float64) for _, sv in blocks]
    gram = np.zeros((edges[-1], edges[-1]))
    for i, si in enumerate(scales):
        gram[edges[i] : edges[i + 1], edges[i] : edges[i + 1]] = np.diag(si**2)
        for j in range(i + 1, len(blocks)):
            block = crosses[(i, j)].astype(np.float64) * si[:, np.newaxis] * scales[j][np.newaxis, :]
            gram[edges[i] : edges[i + 1], edges[j] : edges[j + 1]] = block
            gram[edges[j] : edges[j + 1], edges[i] : edges[i + 1]] = block.T
    k = max(0, min(k, gram.shape[0], blocks[0][0].shape[1] - 1))
    q, sigma = _top_eigen(gram, k)
    inverse = _inverse(sigma)
    merged = None
    for i, (u, _) in enumerate(blocks):
        weights = (q[edges[i] : edges[i + 1]].T * scales[i][np.newaxis, :] * inverse[:, np.newaxis]).astype(np.float32)
        if merged is None:
            merged = weights @ u
        else:
            merged += weights @ u
    return merged, sigma.astype(np.float32)
