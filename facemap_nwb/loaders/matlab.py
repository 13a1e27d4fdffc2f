"""MATLAB Facemap's ``_proc.mat`` (MAT v7 or v7.3) into :class:`~facemap_nwb.results.FacemapResults`.

The original MATLAB Facemap (MouseLand/facemap, ``saveROI.m``) saves one variable, the struct ``proc``,
with ``save(file, '-v7.3', 'proc')``; re-saved with ``-v7`` it is a compressed MAT 5 file. A v7 file is
read by SciPy after the bounded scan of :mod:`facemap_nwb.loaders.facemap`, a v7.3 file by the safe
HDF5 reader :mod:`facemap_nwb.loaders.matlab_files`; both give the same Python structures (SciPy's
``loadmat(squeeze_me=True, simplify_cells=True)``), which :func:`results_from_matlab_proc` maps. A
file whose only variable is ``proc`` is taken for MATLAB Facemap's (Python Facemap writes its keys
as separate variables); every refusal names the field as MATLAB does (``proc.locROI{3}``, 1-based).

ROI slots (``MovieGUI.m``, ``processROIs.m``): ``locROI``, ``ROIfile`` and ``plotROIs`` have 8 slots:
1 running, 2-4 motion ROIs (``2 .. end-4``), 5-6 pupils (``end-3 .. end-2``), 7-8 blinks (``end-1 .. end``).
A slot is processed when ``plotROIs`` is true; ``ROIfile`` is its camera view (1-based).

=====================  ==========================================================================
MATLAB field           what it becomes
=====================  ==========================================================================
``files``              ``video_files`` (``files{view, part}`` -> ``video_files[part][view]``), as stored
``nframes``            frames per sequential file; their sum is ``frame_count``, and every trace and
                       projection must have that many rows
``nX``, ``nY``         ``view_shapes`` = ``[(nY{k}, nX{k}), ...]``
``sc``                 ``parameters.spatial_bin``
``locROI``             one ROI and region per processed slot (see the coordinates below)
``ROIfile``            each ROI's ``video`` / ``video_index`` (minus 1)
``plotROIs``           which slots are processed
``saturation``         the pupil and blink ROIs' ``saturation`` as a gray level (see below)
``thres``              the pupil ROIs' ``pupil_sigma`` (the Gaussian fit's threshold in standard deviations)
``wpix``, ``npix``     the multivideo region's pixels: its masks are scattered back onto the binned frame
``tpix``               where each view's block of ``avgframe`` / ``avgmotion`` lies (0: not computed)
``motSVD{1}``          the motion SVD projections of the full frame (``full_frame``, multivideo)
``uMotMask{1}``        its masks: row ``i`` of view ``k``'s block (``npix`` offsets) is the ``i``-th true
                       pixel of ``wpix{k}`` in column-major order; scattered into (components, height,
                       width) binned frames, zero outside the mask, views placed as Facemap places them
``motSVD{z}``          the motion SVD projections of motion ROI ``z`` (slots 2-4)
``uMotMask{z}``        its masks, (h, w, components) column-major -> (components, h, w)
``avgframe``           ``average_frame``: each view's ``tpix`` block is its binned image ``im(:)``
``avgmotion``          ``average_motion``, likewise
``runSpeed``           ``running`` of the running ROI: (frames, 2) = (dy, dx) as ``processRunning.m`` makes
``pupil(l)``           the pupil of slot ``end-4+l``: ``area_raw`` -> ``area``, ``area`` (smoothed by
                       ``smoothPupil.m``) -> ``area_smooth``, ``com`` -> ``center`` (converted, below);
                       no smoothed centre and no axes (``None``: nothing is written for them)
``blink(l)``           the blink trace of slot ``end-2+l``: ``area`` (pixels darker than the threshold)
``ROI``, ``eROI``      not kept: the rectangles (kept, excluded) that made ``wpix``, which is kept
                       through the masks; ``wpix`` is what the processing used
``avgmot``             not kept: the average motion of each region's pixels, subtracted before the SVD;
                       it is ``average_motion`` at those pixels
``rootfolder``         not kept: the folder chosen in the GUI (the video paths are in ``files``)
``useGPU``             not kept: how it was computed, not what
=====================  ==========================================================================

Quirks, and what is done about each:

* 1-based indices: ``locROI`` positions, ``ROIfile`` views and MATLAB's ``pupil.com`` are 1-based; the
  model's are 0-based, so 1 is subtracted.
* Binned vs full-resolution ROIs: ``locROI`` is ``[x y w h]`` in *binned* pixels. Motion ROIs use
  ``pos = round(locROI)`` (MATLAB rounds halves away from zero) on the binned frame, rows
  ``pos(2) .. pos(2)+pos(4)-1``: their bin ranges are those rows and columns minus 1, their pixel ranges
  the bins times ``sc``. Pupil, blink and running ROIs use ``max(1, floor(locROI * sc))`` on the
  full-resolution frame: their pixel ranges are those minus 1 (and they have no bins).
* Spatial binning: the mean of ``sc`` x ``sc`` blocks over ``floor(n / sc) * sc`` pixels, as in Python
  Facemap, so bins are ``floor(nY / sc)`` x ``floor(nX / sc)``.
* Column-major order: pixel lists (``wpix``, ``avgframe``, ``uMotMask``) run down columns first.
* Transposition: v7.3 stores every array with its dimensions reversed; the reader transposes, so both
  formats give MATLAB's orientation (``motSVD{1}`` is frames x components).
* Saturation: MATLAB keeps a fraction 0..1 per slot. A blink counts pixels darker than
  ``min(254, max(1, (1 - sat) * 255))``; a pupil keeps pixels darker than
  ``255 - min(254, max(1, sat * 255))`` (``processPupil.m``). That gray level (0..255, Python Facemap's
  sense of ``saturation``) is the ROI's ``saturation``; the fraction itself is not kept.
* Pupil centre: ``findGaussianContour.m`` calls ``fitMVGaus(columns, rows, ...)``, so ``com`` is
  ``(x, y)``, 1-based, in the pupil ROI's crop; the model's ``center`` is ``(y, x)``, 0-based, relative to
  the ROI's top-left pixel (as Python Facemap's), so ``center = com[:, [1, 0]] - 1``; the NWB writer adds
  the ROI's origin, giving frame pixels.
* Singular values: MATLAB keeps none and its masks are unit columns (``normc``), so each component's
  singular value is the norm of its projections over all frames (``"projection_norms"``).
* Motion energy: MATLAB computes none; the results hold none.
* Frame alignment: projection ``t`` is of ``|frame t - frame t-1|``, the first repeating the second
  (``imdiff(:,1) = imdiff(:,2)``), over all sequential files: ``frame_alignment = "previous"``.
* The engine is recorded as ``"facemap-matlab"`` (no version: the file records none).
"""

from __future__ import annotations

import math

import numpy as np

from ..params import ROI, FacemapParameters
from ..results import FacemapResults, PupilSignals, Region, ResultsError, SVDComponents, binned_frame_shape
from .facemap import FACEMAP_N_COMPONENTS, _array, _as_float, _describe, _whole, roi_region

__all__ = ["MatlabFacemapProc", "results_from_matlab_proc", "matlab_proc", "MATLAB_ENGINE", "ROI_SLOTS"]

MATLAB_ENGINE = "facemap-matlab"
ROI_SLOTS = 8
# What marks a struct as MATLAB Facemap's proc; all are needed to map it.
_REQUIRED = ("sc", "nX", "nY", "nframes", "locROI", "ROIfile", "plotROIs")
_FIX = "pass the _proc.mat MATLAB Facemap wrote, or process the video in MATLAB Facemap again"


class MatlabFacemapProc(dict):
    """The fields of MATLAB Facemap's ``proc`` struct (what :func:`read_proc_file` returns for such a file)."""


def matlab_proc(value) -> MatlabFacemapProc:
    """The file's ``proc`` variable as MATLAB Facemap's proc; a ResultsError naming ``proc`` otherwise."""
    if not isinstance(value, dict):
        kind = "a struct array" if isinstance(value, list) else _describe(value)
        _fail("proc", f"its only variable 'proc' is {kind}, where MATLAB Facemap saves a 1x1 struct")
    missing = [name for name in _REQUIRED if name not in value]
    if missing:
        _fail(
            f"proc.{missing[0]}",
            f"its 'proc' struct has no field(s) {', '.join('proc.' + m for m in missing)}, which MATLAB Facemap's "
            "saveROI always writes",
        )
    return MatlabFacemapProc(value)


# ------------------------------------------------------------------------------------------- accessors


def _fail(key: str, detail: str):
    raise ResultsError(f"{detail}. Fix: {_FIX}.", key=key, malformed=True)


def _mround(values: np.ndarray) -> np.ndarray:
    """MATLAB's round (halves away from zero; numpy rounds them to even)."""
    return np.sign(values) * np.floor(np.abs(values) + 0.5)


def _cells(value, key: str) -> list:
    """A MATLAB cell's elements in MATLAB's (column-major) order; SciPy and the v7.3 reader give one
    element as the element itself and none (``{}`` or ``[]``) as an empty array."""
    if value is None:
        return []
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        return list(value.reshape(-1, order="F"))
    if isinstance(value, np.ndarray) and value.size == 0:
        return []
    return [value]


def _per_view(value, views: int, key: str) -> list:
    """A cell with one element per camera view (one view: the element itself)."""
    if views == 1:
        return [value]
    if not (isinstance(value, np.ndarray) and value.dtype.kind == "O" and value.size == views):
        _fail(
            key, f"'{key}' is {_describe(value)}, where MATLAB Facemap writes a cell with one entry per view ({views})"
        )
    return list(value.reshape(-1, order="F"))


def _numbers(value, key: str) -> np.ndarray:
    """A numeric vector (a cell of numbers too, as MATLAB Facemap keeps ``nX``), as float64."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "O":
        value = np.array([_number(v, f"{key}{{{i + 1}}}") for i, v in enumerate(value.reshape(-1, order="F"))])
    array = _array(np.asarray(value) if isinstance(value, (bool, np.bool_)) else value, key, "biuf")
    return array.reshape(-1, order="F").astype(np.float64)


def _number(value, key: str) -> float:
    array = _array(value, key, "biuf")
    if array.size != 1:
        _fail(key, f"'{key}' is {_describe(array)}, not one number")
    return float(array.reshape(-1)[0])


def _wholes(value, key: str, count: int | None = None, minimum: int = 0) -> list[int]:
    numbers = _numbers(value, key)
    if count is not None and numbers.size != count:
        _fail(key, f"'{key}' has {numbers.size} value(s), where MATLAB Facemap writes {count}")
    return [_whole(float(v), f"{key}({i + 1})", minimum) for i, v in enumerate(numbers)]


def _flags(value, key: str, count: int) -> list[bool]:
    numbers = _numbers(value, key)
    if numbers.size != count or np.any((numbers != 0) & (numbers != 1)):
        _fail(key, f"'{key}' is {_describe(value)}, not {count} true/false values")
    return [bool(v) for v in numbers]


def _shaped(value, shape: tuple[int, ...], key: str, what: str, dtype=np.float32) -> np.ndarray:
    """A MATLAB array of ``shape`` (MATLAB's orientation), whichever singleton dimensions were squeezed."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, np.ndarray) and value.dtype.kind == "b"):
        value = np.asarray(value, dtype=np.uint8)  # logical
    array = _as_float(value, key, dtype)
    if tuple(n for n in array.shape if n != 1) != tuple(n for n in shape if n != 1):
        _fail(key, f"'{key}' has the shape {array.shape}, where {what} needs {shape}")
    return array.reshape(shape, order="F")


def _matrix(value, key: str, rows: int, what: str) -> np.ndarray:
    """A (rows, columns) MATLAB matrix, any number of columns >= 1."""
    array = _as_float(value, key, np.float32)
    if array.ndim == 2 and array.shape[0] == rows:
        return array
    if array.ndim == 1 and array.size == rows:
        return array.reshape(rows, 1)
    if array.ndim == 0 and rows == 1:
        return array.reshape(1, 1)
    rows_held = array.shape[0] if array.ndim else 1
    _fail(key, f"'{key}' has the shape {array.shape} ({rows_held} rows), where {what} has {rows} rows")


def _structs(value, key: str) -> list[dict]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [value]
    if isinstance(value, (list, np.ndarray)) and all(isinstance(v, dict) for v in value):
        return list(value)
    _fail(key, f"'{key}' is {_describe(value)}, where MATLAB Facemap writes a struct array")


def _present(value) -> bool:
    return value is not None and not (isinstance(value, np.ndarray) and value.size == 0)


# --------------------------------------------------------------------------------------------- mapping


class _Slot:
    """One processed ROI slot: its kind, view and rectangle (0-based)."""

    def __init__(self, number: int, kind: str, view: int, y: int, x: int, height: int, width: int, binned: bool):
        self.number, self.kind, self.view, self.binned = number, kind, view, binned
        self.y, self.x, self.height, self.width = y, x, height, width

    @property
    def key(self) -> str:
        return f"proc.locROI{{{self.number}}}"


def _kind_of(slot: int) -> str:
    if slot == 1:
        return "running"
    if slot <= ROI_SLOTS - 4:
        return "motion"
    return "pupil" if slot <= ROI_SLOTS - 2 else "blink"


def _slots(proc: dict, views: list[tuple[int, int]], sc: int) -> list[_Slot]:
    locations = _cells(proc["locROI"], "proc.locROI")
    if len(locations) != ROI_SLOTS:
        _fail(
            "proc.locROI",
            f"'proc.locROI' has {len(locations)} ROI slot(s), where MATLAB Facemap's GUI has {ROI_SLOTS} (running, "
            "3 motion ROIs, 2 pupils, 2 blinks)",
        )
    files = _wholes(proc["ROIfile"], "proc.ROIfile", ROI_SLOTS)
    active = _flags(proc["plotROIs"], "proc.plotROIs", ROI_SLOTS)
    slots = []
    for number in [z + 1 for z in range(ROI_SLOTS) if active[z]]:
        kind, key = _kind_of(number), f"proc.locROI{{{number}}}"
        view = files[number - 1]
        if not 1 <= view <= len(views):
            _fail(
                f"proc.ROIfile({number})",
                f"'proc.ROIfile({number})' is {view}, but the file has {len(views)} view(s) (1-based) for the "
                f"{kind} ROI in slot {number}",
            )
        location = _as_float(locations[number - 1], key, np.float64).reshape(-1)
        if location.size != 4 or not np.all(np.isfinite(location)):
            _fail(key, f"'{key}' is {_describe(location)}, not [x y width height] of the {kind} ROI ({number} is on)")
        height, width = views[view - 1]
        if kind == "motion":  # binned coordinates, rounded (computeSVDmotion.m)
            pos = _mround(location)
            limit, unit = (height // sc, width // sc), f"bins (spatial bin {sc})"
        else:  # full resolution (processROIs.m)
            pos = np.maximum(1, np.floor(location * sc))
            limit, unit = (height, width), "pixels"
        x, y, w, h = (int(v) for v in pos)
        if w < 1 or h < 1 or x < 1 or y < 1 or y - 1 + h > limit[0] or x - 1 + w > limit[1]:
            _fail(
                key,
                f"'{key}' is {location.tolist()}, which covers {unit} rows {y}..{y + h - 1} and columns "
                f"{x}..{x + w - 1} (1-based), outside view {view}'s {limit[1]} x {limit[0]} {unit.split(' ')[0]}",
            )
        slots.append(_Slot(number, kind, view - 1, y - 1, x - 1, h, w, kind == "motion"))
    return slots


def _threshold(proc: dict, slot: _Slot) -> float:
    """The slot's saturation fraction as the gray level below which pixels count (see the module docstring)."""
    key = f"proc.saturation({slot.number})"
    values = _numbers(proc.get("saturation", np.zeros(0)), "proc.saturation")
    if values.size < slot.number:
        _fail(
            key, f"'proc.saturation' has {values.size} values, but the {slot.kind} ROI in slot {slot.number} needs one"
        )
    fraction = float(values[slot.number - 1])
    if not (math.isfinite(fraction) and 0 <= fraction <= 1):
        _fail(key, f"'{key}' is {fraction}, where MATLAB Facemap's saturation slider gives a fraction 0..1")
    if slot.kind == "blink":
        return min(254.0, max(1.0, (1 - fraction) * 255))
    return 255.0 - min(254.0, max(1.0, fraction * 255))


def _rois(proc: dict, slots: list[_Slot], sc: int) -> list[ROI]:
    counts: dict[str, int] = {}
    sigma = None
    rois = []
    for slot in slots:
        name = f"{slot.kind}{counts.get(slot.kind, 0)}"
        counts[slot.kind] = counts.get(slot.kind, 0) + 1
        extra = {}
        if slot.kind in ("pupil", "blink"):
            extra["saturation"] = _threshold(proc, slot)
            extra["ellipse"] = np.ones((slot.height, slot.width), dtype=bool)  # MATLAB uses the whole rectangle
        if slot.kind == "pupil":
            if sigma is None:
                sigma = _number(proc.get("thres", 4.0), "proc.thres")
                if not (math.isfinite(sigma) and sigma > 0):
                    _fail("proc.thres", f"'proc.thres' is {sigma}, where the pupil fit needs a threshold > 0")
            extra["pupil_sigma"] = sigma
        scale = sc if slot.binned else 1
        rois.append(
            ROI(
                type=slot.kind,
                x=slot.x * scale,
                y=slot.y * scale,
                width=slot.width * scale,
                height=slot.height * scale,
                video=slot.view,
                name=name,
                **extra,
            )
        )
    return rois


def _placement(views: list[tuple[int, int]], sc: int) -> list[tuple[int, int]]:
    """Top-left bin of each view's binned image in the combined picture (Facemap's video_placement)."""
    if len(views) == 1:
        return [(0, 0)]
    from ..engines.native import video_placement

    _, _, sy, sx = video_placement([h // sc for h, _ in views], [w // sc for _, w in views])
    return list(zip(sy, sx))


class _Frame:
    """The views' binned frames and where each lies in the combined picture."""

    def __init__(self, views: list[tuple[int, int]], sc: int):
        self.bins = [(h // sc, w // sc) for h, w in views]
        self.shape = binned_frame_shape(views, sc)
        self.origins = _placement(views, sc)

    def place(self, blocks: dict[int, np.ndarray], depth: int) -> np.ndarray:
        """(depth, H, W) with each view's (ny, nx, depth) block at its place, zeros elsewhere."""
        out = np.zeros((depth, *self.shape), dtype=np.float32)
        for view, block in blocks.items():
            (y, x), (ny, nx) = self.origins[view], self.bins[view]
            out[:, y : y + ny, x : x + nx] = np.moveaxis(block, -1, 0)
        return out


def _multivideo(proc: dict, frame: _Frame, frames: int) -> SVDComponents | None:
    views = len(frame.bins)
    projections = _cells(proc.get("motSVD"), "proc.motSVD")
    if not _present(proc.get("wpix")):
        if projections and _present(projections[0]):
            _fail("proc.wpix", "'proc.wpix' is missing, but 'proc.motSVD{1}' holds the multivideo SVD of its pixels")
        return None
    masks = []
    for k, value in enumerate(_per_view(proc["wpix"], views, "proc.wpix")):
        key = f"proc.wpix{{{k + 1}}}"
        mask = _shaped(value, frame.bins[k], key, f"view {k + 1}'s binned frame", np.float64)
        if np.any((mask != 0) & (mask != 1)):
            _fail(key, f"'{key}' holds values other than true and false")
        masks.append(mask.astype(bool))
    npix = _wholes(proc.get("npix", np.array([int(m.sum()) for m in masks])), "proc.npix", views)
    for k, (mask, count) in enumerate(zip(masks, npix)):
        if int(mask.sum()) != count:
            _fail(
                f"proc.npix({k + 1})",
                f"'proc.npix({k + 1})' is {count}, but 'proc.wpix{{{k + 1}}}' has {int(mask.sum())} pixels",
            )
    total = sum(npix)
    if total == 0 or not projections or not _present(projections[0]):
        return None
    v = _matrix(projections[0], "proc.motSVD{1}", frames, "the multivideo SVD (proc.nframes adds up to it)")
    bases = _cells(proc.get("uMotMask"), "proc.uMotMask")
    if not bases or not _present(bases[0]):
        _fail("proc.uMotMask{1}", "'proc.uMotMask{1}' is missing, but 'proc.motSVD{1}' holds projections on it")
    u = _shaped(
        bases[0], (total, v.shape[1]), "proc.uMotMask{1}", "sum(proc.npix) pixels x the components of motSVD{1}"
    )
    blocks, start = {}, 0
    for k, (mask, count) in enumerate(zip(masks, npix)):
        ny, nx = frame.bins[k]
        flat = np.zeros((ny * nx, v.shape[1]), dtype=np.float32)
        flat[np.flatnonzero(mask.reshape(-1, order="F"))] = u[start : start + count]
        blocks[k] = flat.reshape(ny, nx, v.shape[1], order="F")
        start += count
    return SVDComponents("motion", 0, v, _norms(v), frame.place(blocks, v.shape[1]), "projection_norms")


def _norms(projections: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        return np.linalg.norm(projections.astype(np.float64), axis=0).astype(np.float32)


def _roi_svd(proc: dict, slot: _Slot, region: int, frames: int) -> SVDComponents:
    z = slot.number
    projections = _cells(proc.get("motSVD"), "proc.motSVD")
    key = f"proc.motSVD{{{z}}}"
    if len(projections) < z or not _present(projections[z - 1]):
        _fail(key, f"'{key}' is missing, but the motion ROI in slot {z} is on (proc.plotROIs({z}))")
    v = _matrix(projections[z - 1], key, frames, "every projection (proc.nframes adds up to it)")
    bases = _cells(proc.get("uMotMask"), "proc.uMotMask")
    key = f"proc.uMotMask{{{z}}}"
    if len(bases) < z or not _present(bases[z - 1]):
        _fail(key, f"'{key}' is missing, but 'proc.motSVD{{{z}}}' holds projections on it")
    k = v.shape[1]
    value = _as_float(bases[z - 1], key, np.float32)
    if value.size == slot.height * slot.width * k and value.ndim <= 2 and value.shape[0] == slot.height * slot.width:
        value = value.reshape(slot.height * slot.width, k, order="F").reshape(slot.height, slot.width, k, order="F")
    masks = _shaped(
        value, (slot.height, slot.width, k), key, f"the ROI's {slot.height} x {slot.width} bins x {k} components"
    )
    return SVDComponents("motion", region, v, _norms(v), np.moveaxis(masks, -1, 0), "projection_norms")


def _summary(proc: dict, name: str, frame: _Frame) -> np.ndarray | None:
    value = proc.get(name)
    if not _present(value):
        return None
    key = f"proc.{name}"
    views = len(frame.bins)
    tpix = _wholes(proc.get("tpix", np.array([b[0] * b[1] for b in frame.bins])), "proc.tpix", views)
    vector = _as_float(value, key, np.float32).reshape(-1, order="F")
    if vector.size != sum(tpix):
        _fail(key, f"'{key}' holds {vector.size} values, but 'proc.tpix' adds up to {sum(tpix)} binned pixels")
    blocks, start = {}, 0
    for k, count in enumerate(tpix):
        ny, nx = frame.bins[k]
        if count not in (0, ny * nx):
            _fail(f"proc.tpix({k + 1})", f"'proc.tpix({k + 1})' is {count}, not 0 or view {k + 1}'s {ny} x {nx} bins")
        if count:
            blocks[k] = vector[start : start + count].reshape(ny, nx, 1, order="F")
        start += count
    return frame.place(blocks, 1)[0] if blocks else None


def _pupil(proc: dict, slot: _Slot, region: int, frames: int) -> PupilSignals:
    index = slot.number - (ROI_SLOTS - 4)  # pupil(1), pupil(2)
    elements = _structs(proc.get("pupil"), "proc.pupil")
    key = f"proc.pupil({index})"
    if len(elements) < index:
        _fail(key, f"'{key}' is missing, but the pupil ROI in slot {slot.number} is on")
    values = elements[index - 1]

    def get(name, shape):
        if not _present(values.get(name)):
            _fail(f"{key}.{name}", f"'{key}.{name}' is missing or empty, but the pupil ROI in slot {slot.number} is on")
        return _shaped(values[name], shape, f"{key}.{name}", f"a pupil trace of {frames} frames", np.float64)

    com = get("com", (frames, 2))
    return PupilSignals(
        region=region,
        area=get("area_raw", (frames,)),
        area_smooth=get("area", (frames,)),
        center=com[:, [1, 0]] - 1.0,  # (x, y) 1-based in the crop -> (y, x) 0-based
    )


def _blink(proc: dict, slot: _Slot, frames: int) -> np.ndarray:
    index = slot.number - (ROI_SLOTS - 2)
    elements = _structs(proc.get("blink"), "proc.blink")
    key = f"proc.blink({index}).area"
    if len(elements) < index or not _present(elements[index - 1].get("area")):
        _fail(key, f"'{key}' is missing or empty, but the blink ROI in slot {slot.number} is on")
    return _shaped(elements[index - 1]["area"], (frames,), key, f"a blink trace of {frames} frames", np.float64)


def _video_files(proc: dict, views: int, parts: int) -> list[list[str]]:
    value = proc.get("files")
    if value is None:
        return []
    if isinstance(value, str):
        value = np.array([value], dtype=object)
    if not (isinstance(value, np.ndarray) and value.dtype.kind in "OU"):
        _fail("proc.files", f"'proc.files' is {_describe(value)}, where MATLAB Facemap writes a cell of file names")
    if value.ndim <= 1:
        value = value.reshape(1, -1) if views == 1 else value.reshape(-1, 1)
    if value.shape != (views, parts):
        _fail(
            "proc.files",
            f"'proc.files' holds {value.shape[0]} x {value.shape[1]} names, but the file has {views} view(s) of "
            f"{parts} sequential file(s) (proc.nX, proc.nframes)",
        )
    for index in np.ndindex(*value.shape):
        if not isinstance(value[index], str):
            where = f"proc.files{{{index[0] + 1},{index[1] + 1}}}"
            _fail(where, f"'{where}' is {_describe(value[index])}, not a file name")
    return [[str(value[k, j]) for k in range(views)] for j in range(parts)]


def results_from_matlab_proc(proc: dict) -> FacemapResults:
    """The results model of MATLAB Facemap's ``proc`` struct (see the module docstring), not yet validated.

    Raises
    ------
    ResultsError
        A ``ValueError`` naming the MATLAB field (``proc.locROI{3}``), the value and the fix.
    """
    proc = matlab_proc(proc)
    sc = _whole(_number(proc["sc"], "proc.sc"), "proc.sc", minimum=1)
    nx = _wholes(proc["nX"], "proc.nX", minimum=1)
    ny = _wholes(proc["nY"], "proc.nY", len(nx), minimum=1)
    views = list(zip(ny, nx))
    for k, (height, width) in enumerate(views):
        if sc > min(height, width):
            _fail("proc.sc", f"'proc.sc' is {sc}, larger than view {k + 1}'s {width} x {height}-pixel frame")
    parts = _wholes(proc["nframes"], "proc.nframes")
    frames = sum(parts)
    if frames < 1:
        _fail("proc.nframes", f"'proc.nframes' is {parts}: the file holds no frames")
    frame = _Frame(views, sc)
    slots = _slots(proc, views, sc)
    rois = _rois(proc, slots, sc)
    full = _multivideo(proc, frame, frames)
    regions = []
    if full is not None:
        height, width = frame.shape
        one = len(views) == 1
        regions.append(
            Region(
                number=-1,
                name="full_frame",
                type="full_frame",
                video_index=0 if one else -1,
                y_range=(0, views[0][0] if one else height * sc),
                x_range=(0, views[0][1] if one else width * sc),
                y_bin_range=(0, height),
                x_bin_range=(0, width),
            )
        )
    motion_svd = [full] if full is not None else []
    pupils, blinks, running = [], {}, {}
    for number, (slot, roi) in enumerate(zip(slots, rois)):
        index = len(regions)
        regions.append(roi_region(number, roi, (slot.y, slot.y + slot.height), (slot.x, slot.x + slot.width)))
        if slot.kind == "motion":
            motion_svd.append(_roi_svd(proc, slot, index, frames))
        elif slot.kind == "pupil":
            pupils.append(_pupil(proc, slot, index, frames))
        elif slot.kind == "blink":
            blinks[index] = _blink(proc, slot, frames)
        else:
            if not _present(proc.get("runSpeed")):
                _fail("proc.runSpeed", "'proc.runSpeed' is missing, but the running ROI (slot 1) is on")
            running[index] = _shaped(
                proc["runSpeed"], (frames, 2), "proc.runSpeed", "(frames, 2) = (dy, dx)", np.float64
            )
    parameters = FacemapParameters(
        spatial_bin=sc,
        motion_svd=True,
        movie_svd=False,
        multivideo_svd=full is not None,
        n_components=FACEMAP_N_COMPONENTS,
        rois=tuple(rois),
    )
    return FacemapResults(
        parameters=parameters,
        frame_count=frames,
        view_shapes=views,
        regions=regions,
        motion_svd=motion_svd,
        average_frame=_summary(proc, "avgframe", frame),
        average_motion=_summary(proc, "avgmotion", frame),
        pupils=pupils,
        blinks=blinks,
        running=running,
        engine=MATLAB_ENGINE,
        video_files=_video_files(proc, len(views), len(parts)),
        frame_alignment="previous",
    )
