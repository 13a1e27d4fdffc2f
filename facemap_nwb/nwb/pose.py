"""Facemap keypoints in NWB: ndx-pose's ``PoseEstimation``, written and read back.

Layout, in the ``behavior`` processing module::

    behavior/
    ├── FacemapPose                PoseEstimation (one per video; FacemapPose_<video> when there are several)
    │   ├── eye(back), ...         PoseEstimationSeries: data (frames, 2) = x (column), y (row) in video
    │   │                          pixels; confidence = Facemap's likelihood; timing shared with the video
    │   ├── skeleton  ->           link to Skeletons/FacemapPose_skeleton
    │   ├── source_video  ->       link to the ImageSeries of the video the keypoints come from
    │   └── device  ->             link to that video's camera
    └── Skeletons/FacemapPose_skeleton   Skeleton: nodes = body parts, edges = Facemap's face groups

``PoseEstimation.description`` ends with the bounding box, image size, batch size and inference speed from
Facemap's metadata pickle in a fixed form (:meth:`FacemapPose.summary`), which :func:`read_pose_estimations`
parses back; ``scorer`` is the HDF5 file's scorer group (``Facemap``), ``source_software`` is ``Facemap``.
"""

from __future__ import annotations

import re
from pathlib import Path

import ndx_pose
import numpy as np

from ..pose import FacemapPose, skeleton_edges

__all__ = ["ndx_pose", "add_pose_estimation", "read_pose_estimations", "POSE_REFERENCE_FRAME", "POSE_CONFIDENCE"]

POSE_REFERENCE_FRAME = (
    "(0, 0) is the top-left corner of the source video's frame; x is the column and y the row, in pixels."
)
POSE_CONFIDENCE = "Facemap's likelihood: the peak of the sigmoid of the keypoint's predicted heatmap, 0 to 1."
_SUMMARY_BBOX = re.compile(r"bounding box \(Facemap's bbox\) \[(\d+), (\d+), (\d+), (\d+)\]")
_SUMMARY_SIZE = re.compile(r"image size (\d+)x(\d+) \(height x width\)")
_SUMMARY_BATCH = re.compile(r"batch size (\d+)")
_SUMMARY_SPEED = re.compile(r"inference speed ([0-9.eE+-]+) frames/s")


def _timing(pose: FacemapPose, source_video, rate, starting_time, timestamps) -> dict:
    frames = pose.frame_count
    if timestamps is not None:
        timestamps = np.asarray(timestamps, dtype=np.float64)
        if timestamps.shape != (frames,):
            raise ValueError(f"Got {timestamps.size} timestamps for {frames} frames of keypoints; give one per frame.")
        return {"timestamps": timestamps}
    if rate is not None:
        return {"rate": float(rate), "starting_time": float(starting_time or 0.0)}
    if source_video is None:
        raise ValueError("Give the keypoints' video, a rate or timestamps: a pose file holds no times of its own.")
    if source_video.rate is not None:
        return {"rate": float(source_video.rate), "starting_time": float(source_video.starting_time or 0.0)}
    count = len(source_video.timestamps)
    if count != frames:
        raise ValueError(
            f"The video '{source_video.name}' has {count} frame times but the keypoints have {frames} frames: "
            "they do not belong together (pass the pose file of this video)."
        )
    return {"timestamps": source_video}


def add_pose_estimation(
    nwbfile,
    pose: FacemapPose,
    *,
    source_video=None,
    device=None,
    name: str = "FacemapPose",
    description: str | None = None,
    skeleton_name: str | None = None,
    series: dict | None = None,
    scorer: str | None = None,
    nodes=None,
    edges=None,
    rate: float | None = None,
    starting_time: float | None = None,
    timestamps=None,
):
    """Add ``pose`` to the file's ``behavior`` module as one ndx-pose ``PoseEstimation``; return it.

    ``series`` maps a body part to its series settings (``name``, ``description``, ``unit``,
    ``reference_frame``, ``confidence_definition``), as neuroconv's pose metadata does; each defaults to
    the body part's name, pixels, :data:`POSE_REFERENCE_FRAME` and :data:`POSE_CONFIDENCE`. ``nodes`` and
    ``edges`` default to the body parts and Facemap's face groups. The bounding box, image size and model
    information (:meth:`FacemapPose.summary`) end the default description and are each series' ``comments``,
    whatever the description. Times follow
    ``timestamps`` or ``rate``/``starting_time`` when given, else the source video's own timing (a rate,
    or a link to its timestamps). ``device`` defaults to the source video's camera.
    """
    from ndx_pose import PoseEstimation, PoseEstimationSeries, Skeleton, Skeletons
    from pynwb import ProcessingModule

    if "behavior" not in nwbfile.processing:
        nwbfile.add_processing_module(ProcessingModule(name="behavior", description="Processed behavioral data."))
    module = nwbfile.processing["behavior"]
    if name in module.data_interfaces:
        raise ValueError(f"The NWB file already holds '{name}' in its behavior module: give the pose another name.")
    if device is None and source_video is not None:
        device = getattr(source_video, "device", None)
    timing = _timing(pose, source_video, rate, starting_time, timestamps)
    skeleton_name = skeleton_name or f"{name}_skeleton"
    skeletons = module.data_interfaces.get("Skeletons")
    if skeletons is not None and skeleton_name in skeletons.skeletons:
        raise ValueError(f"The NWB file already holds the skeleton '{skeleton_name}': give the pose another name.")
    nodes = list(pose.bodyparts) if nodes is None else [str(n) for n in nodes]
    if len(nodes) != len(pose.bodyparts):
        raise ValueError(f"The skeleton has {len(nodes)} nodes for {len(pose.bodyparts)} body parts; give one each.")
    edges = skeleton_edges(pose.bodyparts) if edges is None else np.asarray(edges, dtype=np.uint16).reshape(-1, 2)
    if edges.size and edges.max() >= len(nodes):
        raise ValueError(f"The skeleton's edges name node {int(edges.max())}, but it has {len(nodes)} nodes.")
    skeleton = Skeleton(
        name=skeleton_name, nodes=nodes, edges=edges.astype(np.uint8 if len(nodes) <= 255 else np.uint16)
    )
    if skeletons is None:
        module.add(Skeletons(skeletons=[skeleton]))
    else:
        skeletons.add_skeletons(skeleton)
    settings = series or {}
    all_series = []
    for j, part in enumerate(pose.bodyparts):
        entry = {k: v for k, v in (settings.get(part) or {}).items() if v is not None}
        all_series.append(
            PoseEstimationSeries(
                name=entry.get("name", part),
                description=entry.get("description", f"Facemap keypoint '{part}': x and y in video pixels."),
                data=pose.positions[:, j, :],
                unit=entry.get("unit", "pixels"),
                reference_frame=entry.get("reference_frame", POSE_REFERENCE_FRAME),
                confidence=pose.likelihood[:, j],
                confidence_definition=entry.get("confidence_definition", POSE_CONFIDENCE),
                comments=f"{pose.summary()}.",
                **timing,
            )
        )
        if "timestamps" in timing and not hasattr(timing["timestamps"], "data"):
            timing = {"timestamps": all_series[0]}  # one copy of the times; the other series link to it
    video = f" of '{source_video.name}'" if source_video is not None else ""
    source = Path(pose.source_file).name if pose.source_file else "memory"
    text = description or f"Facemap pose estimation{video} (keypoints from '{source}'). {pose.summary()}."
    container = PoseEstimation(
        name=name,
        pose_estimation_series=all_series,
        description=text,
        scorer=scorer or pose.scorer,
        source_software="Facemap",
        skeleton=skeleton,
        source_video=source_video,
        device=device,
    )
    module.add(container)
    return container


def _facemap_pose(container) -> FacemapPose:
    series = list(container.pose_estimation_series.values())
    skeleton = container.skeleton
    nodes = [str(n) for n in skeleton.nodes[:]] if skeleton is not None else []
    by_name = {s.name: s for s in series}
    if nodes and sorted(nodes) == sorted(by_name):
        series = [by_name[n] for n in nodes]
    bodyparts = nodes if nodes and len(nodes) == len(series) else [s.name for s in series]
    positions = np.stack([np.asarray(s.data[:]) for s in series], axis=1)
    likelihood = np.stack(
        [np.asarray(s.confidence[:]) if s.confidence is not None else np.full(len(positions), np.nan) for s in series],
        axis=1,
    )
    text = (series[0].comments if series and series[0].comments else "") or container.description or ""
    box, size = _SUMMARY_BBOX.search(text), _SUMMARY_SIZE.search(text)
    batch, speed = _SUMMARY_BATCH.search(text), _SUMMARY_SPEED.search(text)
    video = container.source_video
    # hdmf 6.2's reader keeps only one of two links of a group whose targets have the same name: the camera
    # and its ImageSeries are both 'FaceCamera' here, so pynwb reads 'device' back as None although the link
    # is in the file (h5py sees it). The video's camera, the same Device, stands in.
    device = container.device if container.device is not None else getattr(video, "device", None)
    return FacemapPose(
        bodyparts=bodyparts,
        positions=positions,
        likelihood=likelihood,
        scorer=container.scorer or "",
        bbox=tuple(int(v) for v in box.groups()) if box else None,
        image_size=(int(size.group(1)), int(size.group(2))) if size else None,
        batch_size=int(batch.group(1)) if batch else None,
        inference_speed=float(speed.group(1)) if speed else None,
        video_name=video.name if video is not None else None,
        device_name=device.name if device is not None else None,
        extra={"name": container.name, "timestamps": np.array(series[0].get_timestamps()) if series else None},
    )


def read_pose_estimations(nwbfile) -> list[FacemapPose]:
    """Every ndx-pose ``PoseEstimation`` of Facemap (``source_software`` Facemap) in the file's processing
    modules, as :class:`FacemapPose` (``extra["name"]`` is the container's name, ``extra["timestamps"]``
    the frame times in seconds)."""
    try:
        from ndx_pose import PoseEstimation
    except ImportError:  # ndx-pose is a dependency; a file without pose needs nothing of it
        return []
    out = []
    for module in nwbfile.processing.values():
        for container in module.data_interfaces.values():
            if isinstance(container, PoseEstimation) and (container.source_software or "") == "Facemap":
                out.append(_facemap_pose(container))
    return out
