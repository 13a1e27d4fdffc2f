"""Facemap pose files (``<video>_FacemapPose.h5``, its ``_metadata.pkl``) into :class:`~facemap_nwb.pose.FacemapPose`.

The HDF5 file is read against the layout Facemap 1.0.8 writes (``Pose.save_data_to_hdf5`` through
``save_dict_to_hdf5``): one group at the root named for the scorer (``Facemap``), one group per body
part in it, and in each exactly the datasets ``x``, ``y`` and ``likelihood``: one-dimensional, real
numbers, one value per frame, all of the same length. Anything else is refused with a
:class:`PoseFileError` naming the file, the object and the fix, before any data is read:

* other objects, soft or external links (which could make HDF5 read other files); datasets stored in
  external files, virtual datasets or needing a filter plugin, checked as for MATLAB v7.3 files
  (:func:`~facemap_nwb.loaders.matlab_files.check_hdf5_storage`); attributes are not read (Facemap
  writes none);
* a dataset whose size is more than :data:`_INFLATE_FACTOR` times the file (plus an allowance), or a
  compressed chunk that inflates beyond its declared size, is refused as a decompression bomb before it
  is read (Facemap writes uncompressed data);
* infinite coordinates are refused; NaN is kept (a missing keypoint).

The metadata pickle is read with :func:`~facemap_nwb.loaders.safe_pickle.load_plain_pickle` (nothing
in it is run) and checked against its declared schema: ``bodyparts`` (the same names as the HDF5
file: they give the keypoints' order), ``total_frames`` (the file's frame count), ``bbox`` (four whole
numbers inside the image), ``image_size`` (Facemap's ``(Ly, Lx)``: lists of heights and widths, one per
view), ``batch_size``, ``inference_speed``. It is found beside the HDF5 file by Facemap's own name
(``<video>_FacemapPose_metadata.pkl``) unless given; without it the keypoints keep Facemap's face-model
order (then the file's order for names the model does not have).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from ..pose import FACE_BODYPARTS, FacemapPose
from .matlab_files import check_hdf5_storage
from .safe_pickle import ProcFileError

__all__ = ["PoseFileError", "read_facemap_pose", "is_pose_file", "metadata_path_for"]

_INFLATE_FACTOR = 4
_INFLATE_ALLOWANCE = 16 * 2**20
_MAX_BODYPARTS = 1000
_COORDINATES = ("x", "y", "likelihood")
_METADATA_KEYS = {"batch_size", "image_size", "bbox", "total_frames", "bodyparts", "inference_speed"}
_FIX = "Pass the _FacemapPose.h5 file Facemap wrote (run Facemap's pose estimation on the video again if it is damaged)"


class PoseFileError(ProcFileError):
    """A Facemap pose file (or its metadata pickle) that is missing, malformed or does not fit its video."""


def is_pose_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a Facemap pose file (``.h5``), by its name."""
    return Path(path).suffix.lower() in (".h5", ".hdf5")


def metadata_path_for(path: str | os.PathLike) -> Path:
    """Where Facemap puts the metadata pickle of ``path``: ``<video>_FacemapPose_metadata.pkl``."""
    path = Path(path)
    return path.with_name(path.stem + "_metadata.pkl")


def _refuse(path: Path, problem: str, fix: str = _FIX) -> PoseFileError:
    return PoseFileError(f"'{path}' is not a Facemap pose file this loader reads: {problem}. {fix}.")


def _fail(path: Path, problem: str, fix: str = _FIX):
    raise _refuse(path, problem, fix)


def _hard_children(group, path: Path, where: str, most: int):
    import h5py

    if len(group) > most:  # counted from the group's index, before any member is listed
        raise _refuse(path, f"'{where}' holds {len(group)} objects, more than the {most} Facemap's layout has")
    for name in group:
        link = group.get(name, getlink=True)
        if not isinstance(link, h5py.HardLink):
            raise _refuse(path, f"'{where}{name}' is a {type(link).__name__}, not data stored in the file")
        yield name, group[name]


# What h5py raises on a damaged file's metadata (object headers, link tables, B-trees): one refusal for all.
_H5_ERRORS = (OSError, KeyError, ValueError, RuntimeError, TypeError, IndexError, OverflowError, SystemError)


def _read_h5(path: Path) -> tuple[str, dict[str, dict[str, np.ndarray]]]:
    """Read and check the file's layout; any h5py error on damaged metadata is one refusal naming the file."""
    try:
        return _read_layout(path)
    except PoseFileError:
        raise
    except MemoryError:
        raise _refuse(path, "reading it asks for more memory than there is (a damaged header)") from None
    except _H5_ERRORS as err:
        raise _refuse(path, f"HDF5 cannot read it (truncated or corrupt: {type(err).__name__}: {err})") from None


def _read_layout(path: Path) -> tuple[str, dict[str, dict[str, np.ndarray]]]:
    import h5py

    size = path.stat().st_size
    budget = _INFLATE_FACTOR * size + _INFLATE_ALLOWANCE
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise _refuse(path, f"it is not a readable HDF5 file (truncated or corrupt: {err})") from None
    with f:
        groups = list(_hard_children(f, path, "/", 1))
        if len(groups) != 1 or not isinstance(groups[0][1], h5py.Group):
            names = [name for name, _ in groups]
            raise _refuse(path, f"its root holds {names}, not one scorer group ('Facemap') of body parts")
        scorer, group = groups[0]
        parts = list(_hard_children(group, path, f"/{scorer}/", _MAX_BODYPARTS))
        if not parts or len(parts) > _MAX_BODYPARTS:
            raise _refuse(path, f"'/{scorer}' holds {len(parts)} body parts (1 to {_MAX_BODYPARTS} expected)")
        data: dict[str, dict[str, np.ndarray]] = {}
        frames = None
        for name, part in parts:
            where = f"/{scorer}/{name}"
            if ":" in name or len(name) > 200:
                raise _refuse(
                    path, f"the body part name {name!r} cannot name an NWB object (':' or over 200 characters)"
                )
            if not isinstance(part, h5py.Group):
                raise _refuse(path, f"'{where}' is a dataset, not a body part group of x, y and likelihood")
            members = dict(_hard_children(part, path, where + "/", len(_COORDINATES)))
            if sorted(members) != sorted(_COORDINATES):
                raise _refuse(path, f"'{where}' holds {sorted(members)}, not exactly {list(_COORDINATES)}")
            data[name] = {}
            for key in _COORDINATES:
                ds = members[key]
                label = f"{where}/{key}"
                if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiu" or ds.ndim != 1:
                    what = f"{ds.dtype} data of shape {ds.shape}" if isinstance(ds, h5py.Dataset) else "a group"
                    raise _refuse(path, f"'{label}' is {what}, not one real number per frame")
                budget -= check_hdf5_storage(
                    ds,
                    budget,
                    lambda problem, fix=_FIX, label=label: _fail(path, f"'{label}': {problem}", fix),
                    what=f"its {size}-byte file",
                    fix=_FIX,
                    max_ndim=1,
                )
                if frames is None:
                    frames = ds.shape[0]
                if ds.shape[0] != frames:
                    raise _refuse(
                        path, f"'{label}' has {ds.shape[0]} values but the first body part has {frames} frames"
                    )
                try:
                    values = ds[()].astype(np.float32 if ds.dtype.itemsize <= 4 else np.float64)
                except _H5_ERRORS as err:
                    raise _refuse(path, f"'{label}' cannot be read (truncated or corrupt: {err})") from None
                if np.isinf(values).any():
                    raise _refuse(path, f"'{label}' holds infinite values, which no keypoint has")
                data[name][key] = values
        if not frames:
            raise _refuse(path, "its keypoints have no frames")
    return scorer, data


def _whole(value, key: str, meta: Path, low: int = 0) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or int(value) < low:
        raise _refuse(
            meta, f"'{key}' is {value!r}, not a whole number >= {low}", "Pass the metadata pickle Facemap wrote"
        )
    return int(value)


def _read_metadata(meta: Path) -> dict:
    from .safe_pickle import load_plain_pickle

    raw = load_plain_pickle(meta, what="Facemap pose metadata pickle")
    fix = "Pass the _FacemapPose_metadata.pkl file Facemap wrote beside the pose file"
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise _refuse(meta, f"it holds a {type(raw).__name__}, not Facemap's metadata dict", fix)
    unknown = sorted(set(raw) - _METADATA_KEYS)
    if unknown:
        raise _refuse(meta, f"it has the key(s) {unknown}; Facemap writes only {sorted(_METADATA_KEYS)}", fix)
    out: dict = {}
    if "bodyparts" in raw:
        parts = raw["bodyparts"]
        if not isinstance(parts, (list, tuple)) or not all(isinstance(p, str) for p in parts):
            raise _refuse(meta, f"'bodyparts' is {parts!r}, not a list of names", fix)
        out["bodyparts"] = list(parts)
    if "total_frames" in raw:
        out["total_frames"] = _whole(raw["total_frames"], "total_frames", meta, 1)
    if "batch_size" in raw:
        out["batch_size"] = _whole(raw["batch_size"], "batch_size", meta, 1)
    if "inference_speed" in raw:
        speed = raw["inference_speed"]
        if isinstance(speed, bool) or not isinstance(speed, (int, float, np.number)) or not math.isfinite(speed):
            raise _refuse(meta, f"'inference_speed' is {speed!r}, not a number of frames per second", fix)
        out["inference_speed"] = float(speed)
    if "image_size" in raw:
        size = raw["image_size"]
        try:
            heights, widths = size
            heights = [_whole(h, "image_size", meta, 1) for h in np.atleast_1d(heights).tolist()]
            widths = [_whole(w, "image_size", meta, 1) for w in np.atleast_1d(widths).tolist()]
        except (TypeError, ValueError):
            raise _refuse(meta, f"'image_size' is {size!r}, not Facemap's (heights, widths)", fix) from None
        if len(heights) != len(widths) or not heights:
            raise _refuse(meta, f"'image_size' is {size!r}: as many heights as widths expected", fix)
        out["image_size"] = (heights[0], widths[0]) if len(heights) == 1 else None
        out["image_sizes"] = list(zip(heights, widths))
    if "bbox" in raw:
        box = raw["bbox"]
        if not isinstance(box, (list, tuple, np.ndarray)) or len(box) != 4:
            raise _refuse(meta, f"'bbox' is {box!r}, not Facemap's four numbers [x1, x2, y1, y2]", fix)
        box = tuple(_whole(v, "bbox", meta) for v in list(box))
        if box[1] <= box[0] or box[3] <= box[2]:
            raise _refuse(meta, f"'bbox' {list(box)} is empty (each stop must be above its start)", fix)
        sizes = out.get("image_sizes")
        if sizes and not any(box[1] <= h and box[3] <= w for h, w in sizes):
            raise _refuse(meta, f"'bbox' {list(box)} (rows, then columns) lies outside the image sizes {sizes}", fix)
        out["bbox"] = box
    return out


def read_facemap_pose(
    path: str | os.PathLike, metadata_path: str | os.PathLike | None = None, *, require_metadata: bool = False
) -> FacemapPose:
    """Read a Facemap pose file (and its metadata pickle, when there is one) into a :class:`FacemapPose`.

    Parameters
    ----------
    path : path
        ``<video>_FacemapPose.h5``.
    metadata_path : path, optional
        The metadata pickle; by default ``<video>_FacemapPose_metadata.pkl`` beside ``path`` when it exists.
    require_metadata : bool, default: False
        Refuse the file when the metadata pickle is missing.

    Raises
    ------
    FileNotFoundError
        ``path`` (or a given ``metadata_path``) does not exist.
    PoseFileError
        A malformed file, or metadata that does not agree with it (a ``ValueError``).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"Facemap pose file not found: '{path}'.")
    if path.is_dir() or path.stat().st_size == 0:
        raise _refuse(path, "it is a folder" if path.is_dir() else "the file is empty")
    scorer, data = _read_h5(path)
    meta_file = Path(metadata_path) if metadata_path is not None else metadata_path_for(path)
    meta: dict = {}
    if metadata_path is not None or meta_file.exists():
        if not meta_file.exists():
            raise FileNotFoundError(f"Facemap pose metadata pickle not found: '{meta_file}'.")
        meta = _read_metadata(meta_file)
    elif require_metadata:
        raise FileNotFoundError(
            f"Facemap pose metadata pickle not found: '{meta_file}' (Facemap writes it beside '{path.name}')."
        )
    names = list(data)
    if "bodyparts" in meta:
        if sorted(meta["bodyparts"]) != sorted(names) or len(set(meta["bodyparts"])) != len(names):
            raise _refuse(
                meta_file,
                f"its bodyparts {meta['bodyparts']} are not the body parts of '{path.name}' ({sorted(names)})",
                "Pass the metadata pickle Facemap wrote with this pose file",
            )
        order = list(meta["bodyparts"])
    else:
        known = [b for b in FACE_BODYPARTS if b in data]
        order = known + [b for b in names if b not in known]
    frames = next(iter(data.values()))["x"].shape[0]
    if "total_frames" in meta and meta["total_frames"] != frames:
        raise _refuse(
            meta_file,
            f"'total_frames' is {meta['total_frames']}, but '{path.name}' holds {frames} frames of keypoints",
            "Pass the metadata pickle Facemap wrote with this pose file",
        )
    dtype = np.result_type(*(v.dtype for part in data.values() for v in part.values()))
    positions = np.stack([np.stack([data[b]["x"], data[b]["y"]], axis=-1) for b in order], axis=1).astype(dtype)
    likelihood = np.stack([data[b]["likelihood"] for b in order], axis=1).astype(dtype)
    return FacemapPose(
        bodyparts=order,
        positions=positions,
        likelihood=likelihood,
        scorer=scorer,
        bbox=meta.get("bbox"),
        image_size=meta.get("image_size"),
        batch_size=meta.get("batch_size"),
        inference_speed=meta.get("inference_speed"),
        source_file=str(path),
        metadata_file=str(meta_file) if meta else None,
    )
