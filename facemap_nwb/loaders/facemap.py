"""Facemap outputs (``*_proc.npy`` and ``*_proc.mat``) into :class:`~facemap_nwb.results.FacemapResults`.

``_proc.npy`` is read with :func:`facemap_nwb.loaders.safe_pickle.load_proc_npy`, which never runs
pickled code; ``_proc.mat`` with SciPy (MATLAB files hold no code).

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

import os
import re
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..params import ROI, FacemapParameters
from ..results import FacemapResults, PupilSignals, Region, SVDComponents

__all__ = ["load_facemap_results", "results_from_proc", "read_proc_file", "FACEMAP_N_COMPONENTS"]

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


def read_proc_file(path: str | os.PathLike) -> dict:
    """Facemap's proc dict from a ``_proc.npy`` (safely) or ``_proc.mat`` file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Facemap output not found: '{path}'.")
    if path.suffix == ".npy":
        from .safe_pickle import load_proc_npy

        return load_proc_npy(path)
    if path.suffix == ".mat":
        return _read_mat(path)
    raise ValueError(f"'{path}' is not a Facemap output: expected a '_proc.npy' or '_proc.mat' file.")


def _read_mat(path: Path) -> dict:
    from scipy.io import loadmat

    try:
        raw = loadmat(str(path), squeeze_me=True, simplify_cells=True)
    except (ValueError, TypeError, OSError, NotImplementedError) as err:
        raise ValueError(f"'{path}' does not read as a MATLAB file ({err}); check it is Facemap's _proc.mat.") from err
    proc: dict = {}
    lists: dict[str, dict[int, np.ndarray]] = {}
    for key, value in raw.items():
        if key.startswith("__"):
            continue
        match = re.fullmatch(r"(.+)_(\d+)", key)
        if match and match.group(1) in _LIST_KEYS:
            lists.setdefault(match.group(1), {})[int(match.group(2))] = np.asarray(value)
        else:
            proc[key] = value
    for key, items in lists.items():
        proc[key] = [items[i] for i in sorted(items)]
    # savemat squeezes singletons and turns one-element lists of dicts into a dict.
    for key in ("pupil", "rois"):
        value = proc.get(key)
        if isinstance(value, dict):
            proc[key] = [value]
        elif isinstance(value, (int, float)) or value is None or (isinstance(value, np.ndarray) and value.size == 0):
            proc[key] = [] if key == "pupil" else None
    for key in ("Ly", "Lx"):
        proc[key] = [int(v) for v in np.atleast_1d(proc[key])]
    names = np.atleast_1d(proc.get("filenames", []))
    proc["filenames"] = names.reshape(-1, len(proc["Ly"])).tolist() if names.size else []
    for key in ("motSVD", "movSVD", "motMask_reshape", "movMask_reshape", "motion", "blink", "running"):
        proc.setdefault(key, [])
    return proc


def _processing_time(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)


def load_facemap_results(path: str | os.PathLike) -> FacemapResults:
    """Load a Facemap ``_proc.npy`` or ``_proc.mat`` file into the results model.

    The processing time is the file's modification time (Facemap records none), as element-facemap's
    ``get_loader_result`` does.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing, unsafe, corrupt or unexpected files; the message names the file.
    """
    path = Path(path)
    proc = read_proc_file(path)
    try:
        results = results_from_proc(proc)
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as err:
        detail = f"missing key {err}" if isinstance(err, KeyError) else str(err)
        raise ValueError(f"'{path}' is not a Facemap output this loader understands: {detail}.") from err
    results.source_file = path.name
    results.processing_time = _processing_time(path)
    return results


def _items(value) -> list:
    """A Facemap list, also when savemat turned an empty list into an empty array (or it is missing)."""
    if value is None:
        return []
    if isinstance(value, np.ndarray) and value.dtype != object:
        return [] if value.size == 0 else [value]
    return list(value)


def _nonempty(arrays) -> list[np.ndarray]:
    return [np.asarray(a) for a in _items(arrays)]


def _frame_count(proc: dict) -> int:
    candidates = [*_nonempty(proc.get("motion")), *_nonempty(proc.get("motSVD")), *_nonempty(proc.get("movSVD"))]
    candidates += [np.asarray(p["area"]) for p in _items(proc.get("pupil"))]
    candidates += _nonempty(proc.get("blink")) + _nonempty(proc.get("running"))
    lengths = [a.shape[0] for a in candidates if a.ndim >= 1 and a.size]
    if not lengths:
        raise ValueError("it holds no signals (no motion, SVD, pupil, blink or running traces)")
    return int(max(lengths))


def _bin_range(values) -> tuple[int, int] | None:
    values = np.atleast_1d(np.asarray(values, dtype=int))
    return (int(values[0]), int(values[-1]) + 1) if values.size else None


def _regions(proc: dict, rois: list[ROI], raw_rois: list[dict], full_frame: bool) -> list[Region]:
    sbin = int(proc["sbin"])
    regions = []
    if full_frame:
        ly, lx = list(proc["Ly"]), list(proc["Lx"])
        one_view = len(ly) == 1
        bins = (int(np.sum(proc.get("LYbin", ly[0] // sbin))), int(np.sum(proc.get("LXbin", lx[0] // sbin))))
        regions.append(
            Region(
                number=-1,
                name="full_frame",
                type="full_frame",
                video_index=0 if one_view else -1,
                y_range=(0, ly[0] if one_view else bins[0] * sbin),
                x_range=(0, lx[0] if one_view else bins[1] * sbin),
                y_bin_range=(0, bins[0]),
                x_bin_range=(0, bins[1]),
            )
        )
    for number, (roi, raw) in enumerate(zip(rois, raw_rois)):
        is_motion = roi.type == "motion"
        keeps_threshold = roi.type in ("pupil", "blink")
        regions.append(
            Region(
                number=number,
                name=roi.name,
                type=roi.type,
                video_index=roi.video,
                y_range=(roi.y, roi.y + roi.height),
                x_range=(roi.x, roi.x + roi.width),
                y_bin_range=_bin_range(raw.get("yrange_bin", [])) if is_motion else None,
                x_bin_range=_bin_range(raw.get("xrange_bin", [])) if is_motion else None,
                saturation=roi.saturation if keeps_threshold else None,
                pupil_sigma=roi.pupil_sigma if roi.type == "pupil" else None,
            )
        )
    return regions


def _svd_list(proc: dict, kind: str, region_of_slot: dict[int, int], regions: list[Region]) -> list[SVDComponents]:
    prefix = "mot" if kind == "motion" else "mov"
    projections = _items(proc.get(f"{prefix}SVD"))
    reshaped = _items(proc.get(f"{prefix}Mask_reshape"))
    flat = _items(proc.get(f"{prefix}Mask"))
    reported = np.asarray(proc.get(f"{prefix}Sv", []), dtype=np.float32).ravel()
    one_chunk = reported.size == 0 or not np.any(reported)
    slots = [s for s in range(len(projections)) if s in region_of_slot and np.asarray(projections[s]).size]
    out = []
    for slot in slots:
        v = np.asarray(projections[slot], dtype=np.float32)
        if slot < len(reshaped) and np.asarray(reshaped[slot]).ndim == 3:
            masks = np.moveaxis(np.asarray(reshaped[slot], dtype=np.float32), -1, 0)
        else:
            region = regions[region_of_slot[slot]]
            shape = (region.y_bin_range[1] - region.y_bin_range[0], region.x_bin_range[1] - region.x_bin_range[0])
            masks = np.moveaxis(np.asarray(flat[slot], dtype=np.float32).reshape(*shape, -1), -1, 0)
        if one_chunk:
            values = np.linalg.norm(masks.reshape(masks.shape[0], -1).astype(np.float64), axis=1).astype(np.float32)
            source = "mask_norms"
        elif slot == slots[-1] and reported.size >= v.shape[1]:
            values, source = reported[: v.shape[1]].copy(), "facemap"
        else:
            values = np.linalg.norm(v.astype(np.float64), axis=0).astype(np.float32)
            source = "projection_norms"
        out.append(SVDComponents(kind, region_of_slot[slot], v, values, masks, source))
    return out


def results_from_proc(proc: dict) -> FacemapResults:
    """Build the results model from Facemap's proc dict (as :func:`read_proc_file` returns it)."""
    raw_rois = _items(proc.get("rois"))
    counters: dict[str, int] = {}
    rois = []
    for raw in raw_rois:
        roi = ROI.from_facemap(raw)
        rois.append(ROI.from_facemap(raw, name=f"{roi.type}{counters.get(roi.type, 0)}"))
        counters[roi.type] = counters.get(roi.type, 0) + 1
    motion_svd = any(np.asarray(v).size for v in _items(proc.get("motSVD")))
    movie_svd = any(np.asarray(v).size for v in _items(proc.get("movSVD")))
    full_frame = bool(proc.get("fullSVD", True))
    parameters = FacemapParameters(
        spatial_bin=int(proc["sbin"]),
        motion_svd=motion_svd or not movie_svd,
        movie_svd=movie_svd,
        multivideo_svd=full_frame,
        n_components=FACEMAP_N_COMPONENTS,
        rois=tuple(rois),
    )
    regions = _regions(proc, rois, raw_rois, full_frame)
    offset = 1 if full_frame else 0
    by_type: dict[str, list[int]] = {}
    for index, region in enumerate(regions[offset:], start=offset):
        by_type.setdefault(region.type, []).append(index)
    # Facemap's slot 0 is the full frame, slot j >= 1 the j-th motion ROI.
    region_of_slot = {j + 1: index for j, index in enumerate(by_type.get("motion", []))}
    if full_frame:
        region_of_slot[0] = 0
    motion = _items(proc.get("motion"))
    results = FacemapResults(
        parameters=parameters,
        frame_count=_frame_count(proc),
        view_shapes=[(int(y), int(x)) for y, x in zip(proc["Ly"], proc["Lx"])],
        regions=regions,
        motion_energy={
            region_of_slot[s]: np.asarray(motion[s], dtype=np.float32)
            for s in range(len(motion))
            if s in region_of_slot and np.asarray(motion[s]).size
        },
        motion_svd=_svd_list(proc, "motion", region_of_slot, regions),
        movie_svd=_svd_list(proc, "movie", region_of_slot, regions),
        average_frame=_optional_array(proc.get("avgframe_reshape")),
        average_motion=_optional_array(proc.get("avgmotion_reshape")),
        pupils=[_pupil(index, p) for index, p in zip(by_type.get("pupil", []), _items(proc.get("pupil")))],
        blinks={
            i: np.asarray(b, dtype=np.float64) for i, b in zip(by_type.get("blink", []), _items(proc.get("blink")))
        },
        running={
            i: np.asarray(r, dtype=np.float64) for i, r in zip(by_type.get("running", []), _items(proc.get("running")))
        },
        engine="facemap",
        video_files=[[str(f) for f in np.atleast_1d(row)] for row in _items(proc.get("filenames"))],
    )
    return results


def _optional_array(value) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=np.float32)


def _pupil(region: int, values: dict) -> PupilSignals:
    return PupilSignals(
        region=region,
        area=np.asarray(values["area"], dtype=np.float64),
        area_smooth=np.asarray(values["area_smooth"], dtype=np.float64),
        center=np.asarray(values["com"], dtype=np.float64),
        center_smooth=np.asarray(values["com_smooth"], dtype=np.float64),
        axes_length=np.asarray(values["axlen"], dtype=np.float64),
        axes_direction=np.asarray(values["axdir"], dtype=np.float64),
    )
