"""Facemap pose files made the way Facemap 1.0.8 makes them, on synthetic keypoints.

``facemap.pose.pose.Pose.save_data_to_hdf5`` builds ``{"Facemap": {bodypart: {"x": .., "y": ..,
"likelihood": ..}}}`` from its ``(frames, bodyparts, 3)`` prediction array (float32, from torch) and writes
it with ``save_dict_to_hdf5``, which assigns every array as ``h5file[path + key] = item`` and recurses
into dicts with ``path + key + "/"``; ``Pose.run`` then pickles the metadata dict of ``predict_landmarks``
with ``pickle.HIGHEST_PROTOCOL`` to ``<video>_FacemapPose_metadata.pkl``. Importing ``facemap.pose``
downloads model weights, so the same steps are written out here with h5py.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from facemap_nwb.pose import FACE_BODYPARTS


def synthetic_keypoints(frames: int, height: int, width: int, bodyparts=FACE_BODYPARTS) -> np.ndarray:
    """Facemap's prediction array ``(frames, bodyparts, 3)``: x (column), y (row), likelihood; float32.

    Keypoint j circles around ``(row, col) = (height * (j + 1) / (n + 1), width / 2)``; its likelihood is
    ``0.5 + 0.4 * sin(t / 5 + j)``: values a test can compute on its own.
    """
    n = len(bodyparts)
    t = np.arange(frames, dtype=np.float64)[:, None]
    j = np.arange(n, dtype=np.float64)[None, :]
    rows = height * (j + 1) / (n + 1) + 2.0 * np.sin(t / 7.0 + j)
    cols = width / 2 + 3.0 * np.cos(t / 7.0 + j)
    likelihood = 0.5 + 0.4 * np.sin(t / 5.0 + j)
    return np.stack([cols, rows, likelihood], axis=-1).astype(np.float32)


def _save_dict_to_hdf5(h5file, path: str, data: dict) -> None:
    # Facemap's save_dict_to_hdf5, for the types its pose output holds.
    for key, item in data.items():
        if isinstance(item, dict):
            _save_dict_to_hdf5(h5file, path + key + "/", item)
        else:
            h5file[path + key] = item


def write_facemap_pose(
    video: Path,
    data: np.ndarray,
    *,
    bodyparts=FACE_BODYPARTS,
    bbox=None,
    image_size=None,
    batch_size: int = 1,
    inference_speed: float = 123.5,
    metadata: bool = True,
) -> Path:
    """Write ``<video>_FacemapPose.h5`` (and its metadata pickle) beside ``video``, as Facemap does."""
    import h5py

    video = Path(video)
    data_dict = {"Facemap": {}}
    indices = np.arange(data.shape[0])
    for index, bodypart in enumerate(bodyparts):
        data_dict["Facemap"][bodypart] = {
            "x": data[:, index, 0][indices],
            "y": data[:, index, 1][indices],
            "likelihood": data[:, index, 2][indices],
        }
    path = video.with_name(video.stem + "_FacemapPose.h5")
    with h5py.File(path, "w") as f:
        _save_dict_to_hdf5(f, "", data_dict)
    if metadata:
        meta = {
            "batch_size": batch_size,
            "image_size": image_size,
            "bbox": bbox,
            "total_frames": int(data.shape[0]),
            "bodyparts": list(bodyparts),
            "inference_speed": inference_speed,
        }
        with open(path.with_name(path.stem + "_metadata.pkl"), "wb") as f:
            pickle.dump(meta, f, pickle.HIGHEST_PROTOCOL)
    return path
