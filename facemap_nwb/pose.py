"""Facemap pose keypoints: the in-memory model between the pose loader and the NWB layer.

Facemap 1.0's keypoint tracker (``facemap.pose``) writes, for each video, ``<video>_FacemapPose.h5`` with
``Facemap/<bodypart>/{x, y, likelihood}`` (one value per frame) and ``<video>_FacemapPose_metadata.pkl``
(batch size, image size, bounding box, frame count, body parts, inference speed). This module holds
those values as :class:`FacemapPose`, and the skeleton of Facemap's face model.

Conventions (Facemap's, kept):

* ``x`` is the column and ``y`` the row of the keypoint, in pixels of the source video's frame
  (Facemap maps its 256 x 256 model input back through the bounding box before saving); (0, 0) is the
  top-left corner of the frame.
* ``likelihood`` is Facemap's confidence: the peak of the sigmoid of the keypoint's predicted heatmap,
  between 0 and 1.
* ``bbox`` is kept as Facemap stores it, ``[bbox[0], bbox[1], bbox[2], bbox[3]]``: rows
  ``bbox[0]:bbox[1]`` and columns ``bbox[2]:bbox[3]`` of the frame (Facemap's docstrings call the four
  values ``x1, x2, y1, y2``, but its ``crop_image`` unpacks them as ``y1, y2, x1, x2`` and crops rows with
  the first pair).

**Skeleton.** Facemap draws its keypoints as points, without lines; its GUI groups them as Eye, Nose,
Whiskers, Mouth and Paw. The skeleton written to NWB joins the keypoints of each group
(:data:`FACE_SKELETON_EDGES`): the four eye points as a ring (back, top, front, bottom), the nose from
the bridge to its tip and round its lower side, the three whiskers in order, the lower lip to the mouth,
the paw alone. Edges whose two body parts are not both in a file are left out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["FacemapPose", "FACE_BODYPARTS", "FACE_SKELETON_EDGES", "skeleton_edges"]

# Facemap 1.0.8's face model (facemap.pose.pose.Pose.bodyparts), in its order.
FACE_BODYPARTS = (
    "eye(back)",
    "eye(bottom)",
    "eye(front)",
    "eye(top)",
    "lowerlip",
    "mouth",
    "nose(bottom)",
    "nose(r)",
    "nose(tip)",
    "nose(top)",
    "nosebridge",
    "paw",
    "whisker(I)",
    "whisker(III)",
    "whisker(II)",
)

# The groups of Facemap's GUI (gui.keypoints_subgroups), each joined into a chain or ring.
FACE_SKELETON_EDGES = (
    ("eye(back)", "eye(top)"),
    ("eye(top)", "eye(front)"),
    ("eye(front)", "eye(bottom)"),
    ("eye(bottom)", "eye(back)"),
    ("nosebridge", "nose(top)"),
    ("nose(top)", "nose(tip)"),
    ("nose(tip)", "nose(bottom)"),
    ("nose(bottom)", "nose(r)"),
    ("whisker(I)", "whisker(II)"),
    ("whisker(II)", "whisker(III)"),
    ("lowerlip", "mouth"),
)


def skeleton_edges(bodyparts) -> np.ndarray:
    """The face model's edges among ``bodyparts``, as ``(n, 2)`` indices into it (ndx-pose's ``edges``)."""
    index = {name: i for i, name in enumerate(bodyparts)}
    pairs = [(index[a], index[b]) for a, b in FACE_SKELETON_EDGES if a in index and b in index]
    return np.asarray(pairs, dtype=np.uint8 if len(index) <= 255 else np.uint16).reshape(-1, 2)


@dataclass
class FacemapPose:
    """Facemap keypoints of one video.

    ``positions`` is ``(frames, body parts, 2)``: x (column) and y (row) in video pixels; ``likelihood``
    ``(frames, body parts)``. The rest is what the metadata pickle says (None when it was not given).
    """

    bodyparts: list[str]
    positions: np.ndarray
    likelihood: np.ndarray
    scorer: str = "Facemap"
    bbox: tuple[int, int, int, int] | None = None
    image_size: tuple[int, int] | None = None  # (height, width) of the video the model saw
    batch_size: int | None = None
    inference_speed: float | None = None  # frames per second
    source_file: str | None = None
    metadata_file: str | None = None
    video_name: str | None = None  # the ImageSeries the keypoints belong to, when read from NWB
    device_name: str | None = None  # its camera, when read from NWB
    extra: dict = field(default_factory=dict)

    @property
    def frame_count(self) -> int:
        return int(self.positions.shape[0])

    def first_frames(self, n: int) -> FacemapPose:
        """The first ``n`` frames (a stub conversion)."""
        from dataclasses import replace

        return replace(self, positions=self.positions[:n], likelihood=self.likelihood[:n])

    def bodypart(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(positions (frames, 2), likelihood (frames,))`` of one body part."""
        j = self.bodyparts.index(name)
        return self.positions[:, j], self.likelihood[:, j]

    def summary(self) -> str:
        """The bounding box, image size and model information, as one line for an NWB description."""
        parts = [f"{len(self.bodyparts)} keypoints of Facemap's face model on {self.frame_count} frames"]
        if self.bbox is not None:
            parts.append(
                f"bounding box (Facemap's bbox) {list(self.bbox)}: rows {self.bbox[0]}:{self.bbox[1]}, columns "
                f"{self.bbox[2]}:{self.bbox[3]}"
            )
        if self.image_size is not None:
            parts.append(f"image size {self.image_size[0]}x{self.image_size[1]} (height x width)")
        if self.batch_size is not None:
            parts.append(f"batch size {self.batch_size}")
        if self.inference_speed is not None:
            parts.append(f"inference speed {self.inference_speed:.6g} frames/s")
        return "; ".join(parts)
