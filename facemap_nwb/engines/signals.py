"""Pupil, blink and running signals, computed the way Facemap 1.0.8 computes them.

These are ports of ``facemap.pupil`` and ``facemap.running`` with the same arithmetic, so results
are interchangeable, written with numpy only (no numba, no torch). Quirks kept on purpose:

* Pupil and blink ROIs fill the pixels outside their ellipse with 255 *in the frames themselves*
  before anything else reads them (Facemap does this through a numpy view); the engine applies the
  same fill before motion energy and projections (see :mod:`facemap_nwb.engines.native`).
* Facemap's running estimate discards the results of its ``fft2``/``ifft2`` calls, so what it
  computes is not a phase correlation but the peak of a product of normalised, tapered *pixel*
  values. ``running_shifts(..., method="facemap")`` (the default) reproduces that;
  ``method="phase_correlation"`` computes the phase correlation Facemap intended.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pupil_fit", "smooth_outliers", "blink_trace", "running_shifts"]

_EPS = 1e-20


def _fit_gaussian(im: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Iterative Gaussian fit of the dark-pixel weights (Facemap ``pupil.fit_gaussian``, no reflector)."""
    ix, iy = im.nonzero()
    lam0 = im[ix, iy].copy()
    lam = lam0 / lam0.sum()
    mu = [(lam * ix).sum(), (lam * iy).sum()]
    xydist = np.stack([ix - mu[0], iy - mu[1]], axis=1)
    xy = xydist * lam[:, np.newaxis] ** 0.5
    sigxy = xy.T @ xy + 0.01 * np.eye(2)
    for _ in range(5):
        dd = ((xydist @ np.linalg.inv(sigxy)) * xydist).sum(axis=1)
        lam0[dd > 2 * sigma**2] = 0
        lam = lam0 / lam0.sum()
        mu = [(lam * ix).sum(), (lam * iy).sum()]
        xydist = np.stack([ix - mu[0], iy - mu[1]], axis=1)
        xy = xydist * lam[:, np.newaxis] ** 0.5
        sigxy = xy.T @ xy + 0.01 * np.eye(2)
    sv, u = np.linalg.eig(sigma**2 * sigxy)
    sv = np.real(sv)
    sv = sv.min() * np.minimum(4, sv / sv.min())  # the major axis at most twice the minor one
    return np.array(mu), sv[::-1], u[:, ::-1]


def pupil_fit(frames: np.ndarray, saturation: float, sigma: float) -> dict[str, np.ndarray]:
    """Pupil centre, area and axes per frame (Facemap ``pupil.process``).

    ``frames`` is (n, height, width), already filled with 255 outside the ROI's ellipse. Frames where
    the fit fails give NaN, as in Facemap.
    """
    n = frames.shape[0]
    com = np.full((n, 2), np.nan)
    area = np.full(n, np.nan)
    axdir = np.full((n, 2, 2), np.nan)
    axlen = np.full((n, 2), np.nan)
    weights = np.maximum(0, (255.0 - frames.astype(np.float32)) - (255.0 - saturation))
    for t in range(n):
        try:
            with np.errstate(all="ignore"):
                mu, sv, u = _fit_gaussian(weights[t], sigma)
        except (np.linalg.LinAlgError, ValueError, IndexError, ZeroDivisionError, FloatingPointError):
            continue
        com[t], axlen[t], axdir[t] = mu, sv, u
        area[t] = np.pi * (sv[0] * sv[1]) ** 0.5
    return {"com": com, "area": area, "axdir": axdir, "axlen": axlen}


def smooth_outliers(values: np.ndarray, window: int = 30) -> np.ndarray:
    """Facemap ``pupil.smooth``: NaNs and outliers replaced by a running median (window 30 frames)."""
    area = np.array(values, dtype=np.float64, copy=True)
    nt = area.size
    stack = np.zeros((window, nt))
    half = window // 2
    for k in range(-half, half):
        if k < 0:
            stack[k + half, :k] = area[-k:]
        elif k > 0:
            stack[k + half, k:] = area[:-k]
        else:
            stack[k + half, :] = area
    with np.errstate(all="ignore"):
        median = np.nanmedian(stack, axis=0)
    bad = np.logical_or(np.isnan(area), np.isnan(median)).nonzero()[0]
    good = np.logical_and(~np.isnan(area), ~np.isnan(median)).nonzero()[0]
    area[bad] = np.interp(bad, good, median[good]) if good.size else 0
    median[bad] = area[bad]
    replace = np.abs(area - median) > area.std() / 2
    area[replace] = median[replace]
    return area


def blink_trace(frames: np.ndarray, saturation: float) -> np.ndarray:
    """Facemap's blink signal: summed darkness below ``saturation`` (frames filled with 255 outside the ellipse)."""
    return np.maximum(0, (255 - frames) - (255 - saturation)).sum(axis=(-2, -1), dtype=np.float64)


def _taper(sig: float, ly: int, lx: int) -> np.ndarray:
    x = np.abs(np.arange(lx) - (lx - 1) / 2)
    y = np.abs(np.arange(ly) - (ly - 1) / 2)
    xx, yy = np.meshgrid(x, y)
    mask_y = 1.0 / (1.0 + np.exp((yy - (y.max() - 2 * sig)) / sig))
    mask_x = 1.0 / (1.0 + np.exp((xx - (x.max() - 2 * sig)) / sig))
    return mask_y * mask_x


def _gaussian_fft(sig: float, ly: int, lx: int) -> np.ndarray:
    x = np.abs(np.arange(lx) - (lx - 1) / 2)
    y = np.abs(np.arange(ly) - (ly - 1) / 2)
    xx, yy = np.meshgrid(x, y)
    kernel = np.exp(-np.square(xx / sig) / 2) * np.exp(-np.square(yy / sig) / 2)
    kernel /= kernel.sum()
    return np.real(np.fft.fft2(np.fft.ifftshift(kernel)))


def running_shifts(frames: np.ndarray, method: str = "facemap") -> tuple[np.ndarray, np.ndarray]:
    """(dy, dx) between consecutive frames, n - 1 values (Facemap ``running.process``)."""
    nt, ly, lx = frames.shape
    lcorr = min(int(np.floor(ly * 0.4)), int(np.floor(lx * 0.4)))
    taper = _taper((ly * lx) ** 0.5 * 0.01, ly, lx).astype(np.complex64)
    smoothing = _gaussian_fft(2, ly, lx).astype(np.complex64)
    x = frames.astype(np.float32)
    x -= x.mean(axis=-1).mean(axis=-1)[:, np.newaxis, np.newaxis]
    if method == "facemap":
        # Facemap's complex64 values stay real (its FFT results are discarded): real float32 arithmetic
        # gives the same numbers bit for bit, where numpy's complex64 division can be one ulp off.
        x = x * taper.real.astype(np.float32)
        x = (x / (np.float32(_EPS) + np.abs(x))) * smoothing.real.astype(np.float32)
        product = x[1:] * x[:-1]
    elif method == "phase_correlation":
        x = np.fft.fft2(x.astype(np.complex64) * taper).astype(np.complex64)
        x = x / (_EPS + np.abs(x)) * smoothing
        product = np.fft.ifft2(x[1:] * np.conj(x[:-1]))
    else:
        raise ValueError(f"method must be 'facemap' or 'phase_correlation', not {method!r}.")
    x00 = product[:, : lcorr + 1, : lcorr + 1]
    x11 = product[:, -lcorr:, -lcorr:]
    x01 = product[:, : lcorr + 1, -lcorr:]
    x10 = product[:, -lcorr:, : lcorr + 1]
    cc = np.real(np.block([[x11, x10], [x01, x00]]))
    flat = cc.reshape(nt - 1, -1).argmax(axis=1)
    ymax, xmax = np.unravel_index(flat, (2 * lcorr + 1, 2 * lcorr + 1))
    return ymax.astype(np.int32) - lcorr, xmax.astype(np.int32) - lcorr
