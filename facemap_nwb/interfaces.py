"""neuroconv data interfaces: thin classes that pick readers and call the shared NWB writers."""

from __future__ import annotations

import logging
from copy import deepcopy
from dataclasses import replace
from pathlib import Path
from typing import Literal

import numpy as np
from neuroconv import BaseTemporalAlignmentInterface
from neuroconv.datainterfaces.behavior.baseposeestimationinterface import BasePoseEstimationInterface
from neuroconv.utils import DeepDict, get_base_schema
from pydantic import FilePath, validate_call
from pynwb import NWBFile
from pynwb.image import ImageSeries

from .loaders.facemap import load_facemap_results
from .nwb.facemap import SIGNALS, add_facemap_results
from .nwb.recording import add_recording
from .video import VideoRecording, probe_recording

__all__ = ["FacemapInterface", "FacemapPoseInterface"]

Signal = Literal["motion_energy", "motion_svd", "movie_svd", "summary", "pupil", "blink", "running"]
_DEVICE_KEY = "facemap_camera"
_LOG = logging.getLogger("facemap_nwb")
# Timestamps whose intervals agree to this many decimals (seconds) are regular: written as starting time and
# rate (nwbinspector's check_regular_timestamps uses the same rounding).
_REGULAR_DECIMALS = 9


def _regular(timestamps: np.ndarray) -> tuple[float, float] | None:
    """``(starting_time, rate)`` when the timestamps are regular, else None."""
    if timestamps.size < 2:
        return None
    intervals = np.unique(np.round(np.diff(timestamps), _REGULAR_DECIMALS))
    if intervals.size != 1 or not intervals[0] > 0:
        return None
    return float(timestamps[0]), float((timestamps.size - 1) / (timestamps[-1] - timestamps[0]))


class _VideoLinks:
    """What the Facemap and Facemap pose interfaces share: the cameras' recordings (``self.recordings``), their
    frame times and alignment, and finding (or writing) each camera's ImageSeries in the file.

    Needs ``self.recordings``, ``self.metadata_key``, ``self._aligned_timestamps``, ``self._nwb_dir`` and
    ``_frame_count()``.
    """

    _what = "this Facemap task"  # what the interface writes, in messages
    _what_log = "Facemap task"

    def _frame_count(self) -> int:
        raise NotImplementedError

    @property
    def _settings(self) -> str:
        """Where the interface's settings (video_name, ...) are in the metadata, for messages."""
        return f"metadata['Behavior']['{self.metadata_key}']"

    @property
    def recording(self) -> VideoRecording:
        """The first camera's recording (the one whose frame times the signals share)."""
        return self.recordings[0]

    # ------------------------------------------------------------------------------------------- time

    def get_original_timestamps(self) -> np.ndarray:
        """Frame times from the first camera's video, in seconds from its first frame."""
        return self.recording.timestamps

    def get_timestamps(self) -> np.ndarray:
        return self._aligned_timestamps if self._aligned_timestamps is not None else self.get_original_timestamps()

    def set_aligned_timestamps(self, aligned_timestamps: np.ndarray) -> None:
        aligned = np.asarray(aligned_timestamps, dtype=np.float64)
        if aligned.shape != (self._frame_count(),):
            raise ValueError(
                f"Got {aligned.size} aligned timestamps for {self._frame_count()} frames; give one per frame."
            )
        if not np.all(np.isfinite(aligned)):
            raise ValueError("Aligned timestamps must be finite numbers of seconds (no NaN or infinity).")
        self._aligned_timestamps = aligned

    def set_aligned_segment_starting_times(self, aligned_segment_starting_times: list[float]) -> None:
        """Give each sequential video file (segment) of the recording its own starting time, in seconds from the
        session start; frames inside a file keep their spacing."""
        starts = [float(s) for s in aligned_segment_starting_times]
        files = self.recording.files
        if len(starts) != len(files):
            raise ValueError(
                f"Got {len(starts)} segment starting times for {len(files)} video file(s); give one per file."
            )
        pieces = [f.timestamps - f.timestamps[0] + start for f, start in zip(files, starts, strict=True)]
        self.set_aligned_timestamps(np.concatenate(pieces))

    def _timing(self) -> dict:
        """How the signals and the videos this interface writes are timed: {} (the video's own), or a regular
        ``rate`` + ``starting_time``, or ``timestamps``."""
        if self._aligned_timestamps is None:
            return {}
        regular = _regular(self._aligned_timestamps)
        if regular is not None:
            return {"starting_time": regular[0], "rate": regular[1]}
        return {"timestamps": self._aligned_timestamps}

    # ------------------------------------------------------------------------------------------- write

    def run_conversion(self, nwbfile_path=None, *args, **kwargs):
        # Video paths are stored relative to the NWB file's folder, which only this call knows.
        self._nwb_dir = Path(nwbfile_path).parent if nwbfile_path is not None else None
        try:
            return super().run_conversion(nwbfile_path, *args, **kwargs)
        finally:
            self._nwb_dir = None

    def _resolved(self, series: ImageSeries) -> list[Path]:
        # External files are stored absolute, or relative to the NWB file's folder (when this interface
        # knows it) or to the working folder (as neuroconv's video interfaces store what they are given).
        files = [str(f) for f in (getattr(series, "external_file", None) or [])]
        bases = [b for b in (self._nwb_dir, Path.cwd()) if b is not None]
        for base in bases:
            paths = [(base / f).resolve() for f in files]
            if all(p.exists() for p in paths):
                return paths
        return [(bases[0] / f).resolve() for f in files]

    def _named_video(self, nwbfile: NWBFile, name: str, recording: VideoRecording) -> ImageSeries | None:
        if name not in nwbfile.acquisition:
            return None
        series = nwbfile.acquisition[name]
        theirs, ours = self._resolved(series), [Path(p).resolve() for p in recording.paths]
        if theirs and theirs != ours:
            raise ValueError(
                f"The ImageSeries '{name}' already in the file shows {theirs}, but {self._what} "
                f"({self.metadata_key}) came from {ours}: set {self._settings}['video_name'] to the ImageSeries of "
                "its own video (or to a new name)."
            )
        return series

    def _matching_video(self, nwbfile: NWBFile, recording: VideoRecording) -> ImageSeries | None:
        ours = [Path(p).resolve() for p in recording.paths]
        matches = [
            s
            for s in nwbfile.acquisition.values()
            if isinstance(s, ImageSeries) and s.external_file is not None and self._resolved(s) == ours
        ]
        if len(matches) > 1:
            names = ", ".join(repr(s.name) for s in matches)
            raise ValueError(
                f"The ImageSeries {names} in the file all show {[str(p) for p in ours]}: set "
                f"{self._settings}['video_name'] to the one {self._what} uses."
            )
        if matches:
            _LOG.info(
                "%s '%s' links to the ImageSeries '%s' already in the file (same video file(s)).",
                self._what_log,
                self.metadata_key,
                matches[0].name,
            )
            return matches[0]
        return None

    def _video_series(self, nwbfile: NWBFile, metadata: dict, settings: dict, stub_frames: int | None) -> list:
        names = settings.get("video_names") or ([settings["video_name"]] if settings.get("video_name") else [])
        key = settings.get("video_metadata_key")
        if key is not None:
            names = [metadata["Behavior"]["ExternalVideos"][key]["name"]]
        if names and len(names) != len(self.recordings):
            raise ValueError(
                f"{self._settings} names {len(names)} video(s) for "
                f"{len(self.recordings)} camera(s): give one name per camera in video_names."
            )
        videos = []
        for index, recording in enumerate(self.recordings):
            name = names[index] if names else None
            series = self._named_video(nwbfile, name, recording) if name else self._matching_video(nwbfile, recording)
            if series is None:
                series = self._write_video(nwbfile, metadata, settings, index, name or recording.name, stub_frames)
            videos.append(series)
        return videos

    def _write_video(self, nwbfile, metadata, settings, index: int, name: str, stub_frames: int | None):
        key = settings.get("device_metadata_key", _DEVICE_KEY) if index == 0 else f"{_DEVICE_KEY}{index}"
        device = metadata.get("Devices", {}).get(key, {})
        if device and device.get("name") not in nwbfile.devices:
            nwbfile.create_device(**device)
        if name in nwbfile.acquisition:
            raise ValueError(
                f"The NWB file already holds an ImageSeries '{name}' of other video files than those of {self._what} "
                f"({self.metadata_key}: {[str(p) for p in self.recordings[index].paths]}): set "
                f"{self._settings}['video_name'] to a new name for its video."
            )
        recording = VideoRecording(name=name, files=self.recordings[index].files, device=device.get("name", name))
        timing = self._timing()
        if stub_frames is not None:
            recording = _first_frames(recording, stub_frames)
            if "timestamps" in timing:
                timing["timestamps"] = timing["timestamps"][:stub_frames]
        # Relative to the NWB file when this interface's run_conversion knows it; inside a converter it
        # does not, so the paths are absolute (give the converter a video interface to control them).
        return add_recording(nwbfile, recording, nwb_dir=self._nwb_dir, **timing)


class FacemapInterface(_VideoLinks, BaseTemporalAlignmentInterface):
    """Facemap results (a ``_proc.npy`` or ``_proc.mat`` file) with the video(s) Facemap processed.

    The ``_proc.npy`` file is read without running pickled code. Construction is cheap: the videos are
    probed without decoding (their stored frames counted); the frame count is checked against the
    results when the data are written, and a mismatch is refused there.

    **Videos.** Inside an ``NWBConverter`` that already has a video interface (e.g. neuroconv's
    ``ExternalVideoInterface``, listed *before* this one) for the same file(s), the task links to that
    ImageSeries on its own, matched by resolved path, and says so in the ``facemap_nwb`` log; two
    candidates are refused with a message naming ``video_name``. ``metadata["Behavior"][metadata_key]
    ["video_name"]`` (one camera) or ``["video_names"]`` (several) names the ImageSeries explicitly. When
    none matches, this interface writes each camera's video as an external-file ImageSeries itself.

    **Time.** ``set_aligned_timestamps``, ``set_aligned_starting_time``,
    ``set_aligned_segment_starting_times`` and ``align_by_interpolation`` move everything this interface
    writes: the signals and the ImageSeries it writes. Regular timestamps are written as a starting time
    and a rate; irregular ones once, on the video (or the task's first series when it links to another
    interface's video), and every other series links to them. A video another interface wrote keeps that
    interface's timing: align one of the two (aligning only the video interface is enough when the task
    links to it: the signals then follow the video's timing).

    Parameters
    ----------
    file_path : FilePath
        Facemap's output file, ``*_proc.npy`` or ``*_proc.mat``.
    video_file_paths : list of FilePath, or list of lists of FilePath
        The video file(s) Facemap processed, in playback order (sequential files of one camera); for
        several simultaneous cameras, one list per camera in Facemap's order.
    verbose : bool, default: False
        Print progress.
    metadata_key : str, default: "Facemap"
        Key of this interface's settings in ``metadata["Behavior"]``. Give each of several Facemap
        interfaces in one converter its own key and task id; each task is its own ``FacemapTask`` group
        (named ``FacemapTask``, or ``FacemapTask_<task_id>`` when that is taken, or ``task_name``).
    """

    display_name = "Facemap"
    keywords = ("facemap", "face video", "motion energy", "SVD", "pupil", "blink", "running")
    associated_suffixes = (".npy", ".mat")
    info = "Interface for Facemap outputs (motion energy, motion and movie SVD, pupil, blink, running)."

    @validate_call
    def __init__(
        self,
        file_path: FilePath,
        *,
        video_file_paths: list[FilePath] | list[list[FilePath]],
        verbose: bool = False,
        metadata_key: str = "Facemap",
    ):
        super().__init__(file_path=file_path, video_file_paths=video_file_paths, verbose=verbose)
        self.metadata_key = metadata_key
        if not video_file_paths or not all(video_file_paths):
            raise ValueError(
                f"FacemapInterface('{file_path}'): video_file_paths is empty; give the video file(s) Facemap "
                "processed (one list of files per camera for several cameras)."
            )
        self.results = load_facemap_results(file_path)
        views = [list(v) for v in video_file_paths] if isinstance(video_file_paths[0], list) else [video_file_paths]
        if self.results.view_shapes and len(views) != len(self.results.view_shapes):
            raise ValueError(
                f"'{file_path}' holds {len(self.results.view_shapes)} simultaneous camera view(s) but "
                f"video_file_paths gives {len(views)}: give one list of files per camera, in Facemap's order."
            )
        names = ["FaceCamera"] if len(views) == 1 else [f"FaceCamera{i}" for i in range(len(views))]
        self.recordings: list[VideoRecording] = [
            probe_recording(files, name=name, device=name, decode=False) for files, name in zip(views, names)
        ]
        self._aligned_timestamps: np.ndarray | None = None
        self._nwb_dir: Path | None = None

    def _frame_count(self) -> int:
        return self.results.frame_count

    def get_metadata(self) -> DeepDict:
        metadata = super().get_metadata()
        if self.recording.start_time is not None:
            metadata["NWBFile"]["session_start_time"] = self.recording.start_time
        for index, recording in enumerate(self.recordings):
            key = _DEVICE_KEY if index == 0 else f"{_DEVICE_KEY}{index}"
            metadata["Devices"][key] = dict(name=recording.device, description="Camera filming the subject's face.")
        metadata["Behavior"][self.metadata_key] = dict(
            task_id="0",
            description=f"Facemap results loaded from '{Path(self.source_data['file_path']).name}'.",
            device_metadata_key=_DEVICE_KEY,
        )
        return metadata

    def get_metadata_schema(self) -> dict:
        schema = super().get_metadata_schema()
        schema["properties"]["Behavior"] = get_base_schema(tag="Behavior")
        schema["properties"]["Behavior"]["properties"][self.metadata_key] = dict(
            type="object",
            additionalProperties=False,
            required=["task_id"],
            properties=dict(
                task_id=dict(type="string", description="Identifier of the Facemap task."),
                description=dict(type="string", description="Description of the task."),
                video_name=dict(
                    type="string",
                    description="Name of the ImageSeries the results come from (one camera). Optional: a video "
                    "interface's ImageSeries of the same file is found on its own.",
                ),
                video_names=dict(
                    type="array",
                    items=dict(type="string"),
                    description="Names of the ImageSeries of each camera, in Facemap's order (several cameras).",
                ),
                video_metadata_key=dict(type="string", description="Key of that video in Behavior.ExternalVideos."),
                device_metadata_key=dict(type="string", description="Key of the first camera in Devices."),
                task_name=dict(
                    type="string",
                    description="Name of the task's FacemapTask group (default: FacemapTask, or "
                    "FacemapTask_<task_id> when the file already has one); readers find tasks by type and task_id.",
                ),
            ),
        )
        return schema

    def add_to_nwbfile(
        self,
        nwbfile: NWBFile,
        metadata: dict | None = None,
        *,
        signals: list[Signal] | None = None,
        n_components: int | None = None,
        stub_test: bool = False,
        stub_frames: int = 100,
    ) -> None:
        """
        Add the Facemap task, its views, regions and signals to the NWB file's behavior module.

        Parameters
        ----------
        nwbfile : NWBFile
            The in-memory NWB file.
        metadata : dict, optional
            Metadata; ``metadata["Behavior"][metadata_key]`` holds the task id, description, video name(s) and
            task name.
        signals : list of str, optional
            Which signals to write: any of motion_energy, motion_svd, movie_svd, summary, pupil, blink,
            running (all by default).
        n_components : int, optional
            Keep at most this many SVD components (all by default).
        stub_test : bool, default: False
            Write only the first ``stub_frames`` frames of every signal (and of the video's timing, when this
            interface writes the video), for a quick look at the conversion.
        stub_frames : int, default: 100
        """
        metadata = deepcopy(metadata) if metadata is not None else self.get_metadata()
        settings = dict(self.get_metadata()["Behavior"][self.metadata_key])
        settings.update(metadata.get("Behavior", {}).get(self.metadata_key, {}))
        results, frames = self.results, None
        if stub_test:
            frames = max(1, min(int(stub_frames), results.frame_count))
            results = results.first_frames(frames)
        else:
            for recording in self.recordings:  # counted when probed; refused here, before anything is added
                self.results.check_frame_count(
                    recording.frame_count, what=f"the video {[str(p) for p in recording.paths]}"
                )
        before = set(nwbfile.acquisition)
        videos = self._video_series(nwbfile, metadata, settings, frames)
        # The signals share the first video's timing when this interface wrote it (aligned or not: irregular
        # times are then stored once, on the video); with another interface's video they follow this
        # interface's alignment when it has one, else that video's own timing.
        timing = {} if videos[0].name not in before else self._timing()
        if frames is not None and "timestamps" in timing:
            timing["timestamps"] = timing["timestamps"][:frames]
        add_facemap_results(
            nwbfile,
            results,
            videos=videos,
            task_id=settings["task_id"],
            task_mode="load",
            description=settings.get("description"),
            signals=SIGNALS if signals is None else signals,
            n_components=n_components,
            rate=timing.get("rate"),
            starting_time=timing.get("starting_time", 0.0),
            timestamps=timing.get("timestamps"),
            name=settings.get("task_name"),
            check_videos=not stub_test,
        )


def _first_frames(recording: VideoRecording, n: int) -> VideoRecording:
    """The recording cut to its first ``n`` frames (the files that hold them, the last one cut)."""
    files, left = [], n
    for info in recording.files:
        if left <= 0:
            break
        take = min(left, info.frame_count)
        files.append(replace(info, frame_count=take, timestamps=info.timestamps[:take]))
        left -= take
    return replace(recording, files=tuple(files))


class FacemapPoseInterface(_VideoLinks, BasePoseEstimationInterface):
    """Facemap pose keypoints (``<video>_FacemapPose.h5`` and its metadata pickle) with the video they come from.

    Writes one ndx-pose ``PoseEstimation`` (one ``PoseEstimationSeries`` per body part: x, y in video pixels,
    Facemap's likelihood as confidence), the ``Skeleton`` of Facemap's face model, and links them to the
    video's ImageSeries and camera. The video is found in the file as :class:`FacemapInterface` finds it
    (a converter's video interface for the same file, matched by path, or
    ``metadata["Pose"]["PoseEstimations"][metadata_key]["video_name"]``), or written as an external-file
    ImageSeries. The metadata pickle is read without running code.

    Metadata follows neuroconv's pose interfaces: ``metadata["Pose"]["PoseEstimations"][metadata_key]``
    (name, description, scorer, source_software, skeleton_metadata_key, device_metadata_key, and one
    ``PoseEstimationSeries`` entry per body part: name, description, unit, reference_frame,
    confidence_definition), ``metadata["Pose"]["Skeletons"][metadata_key]`` (name, nodes, edges) and
    ``metadata["Devices"]``. Facemap's bounding box, image size, batch size and inference speed go into the
    default description and, always, into each series' ``comments``.

    Parameters
    ----------
    file_path : FilePath
        ``<video>_FacemapPose.h5``.
    video_file_path : FilePath
        The video the keypoints were estimated on.
    metadata_file_path : FilePath, optional
        Facemap's ``<video>_FacemapPose_metadata.pkl`` (found beside ``file_path`` by default, when there).
    verbose : bool, default: False
    metadata_key : str, default: "FacemapPose"
    """

    display_name = "Facemap pose"
    _what = "these Facemap keypoints"
    _what_log = "Facemap pose"
    keywords = ("facemap", "pose estimation", "keypoints", "face video")
    associated_suffixes = (".h5", ".pkl")
    info = "Interface for Facemap pose estimation (face keypoints) outputs."

    @validate_call
    def __init__(
        self,
        file_path: FilePath,
        *,
        video_file_path: FilePath,
        metadata_file_path: FilePath | None = None,
        verbose: bool = False,
        metadata_key: str = "FacemapPose",
    ):
        from .loaders.pose import read_facemap_pose

        self.metadata_key = metadata_key
        self.pose = read_facemap_pose(file_path, metadata_file_path)
        self.recordings = [probe_recording([video_file_path], name="FaceCamera", device="FaceCamera", decode=False)]
        self._aligned_timestamps = None
        self._nwb_dir = None
        BasePoseEstimationInterface.__init__(
            self,
            file_path=file_path,
            video_file_path=video_file_path,
            metadata_file_path=metadata_file_path,
            verbose=verbose,
        )

    def _frame_count(self) -> int:
        return self.pose.frame_count

    @property
    def _settings(self) -> str:
        return f"metadata['Pose']['PoseEstimations']['{self.metadata_key}']"

    def _get_keypoint_names(self) -> list[str]:
        return list(self.pose.bodyparts)

    def _get_keypoint_data(self) -> dict:
        return {name: self.pose.bodypart(name) for name in self.pose.bodyparts}

    def get_metadata(self) -> DeepDict:
        from .nwb.pose import POSE_CONFIDENCE, POSE_REFERENCE_FRAME
        from .pose import skeleton_edges

        metadata = super().get_metadata()
        if self.recording.start_time is not None:
            metadata["NWBFile"]["session_start_time"] = self.recording.start_time
        metadata["Devices"][_DEVICE_KEY] = dict(
            name=self.recording.device, description="Camera filming the subject's face."
        )
        key = self.metadata_key
        skeleton = metadata["Pose"]["Skeletons"][key]
        skeleton.update(name=f"{key}_skeleton", edges=skeleton_edges(self.pose.bodyparts).tolist())
        entry = metadata["Pose"]["PoseEstimations"][key]
        entry.update(
            name=key,
            description=f"Facemap pose estimation of '{Path(self.source_data['video_file_path']).name}' (keypoints "
            f"from '{Path(self.source_data['file_path']).name}'). {self.pose.summary()}.",
            scorer=self.pose.scorer,
            source_software="Facemap",
            device_metadata_key=_DEVICE_KEY,
        )
        for name, series in entry["PoseEstimationSeries"].items():
            series.update(
                name=name,
                description=f"Facemap keypoint '{name}': x and y in video pixels.",
                unit="pixels",
                reference_frame=POSE_REFERENCE_FRAME,
                confidence_definition=POSE_CONFIDENCE,
            )
        return metadata

    def get_original_timestamps(self) -> np.ndarray:
        """Frame times of the video, in seconds from its first frame."""
        return self.recording.timestamps

    def add_to_nwbfile(
        self, nwbfile: NWBFile, metadata: dict | None = None, *, stub_test: bool = False, stub_frames: int = 100
    ) -> None:
        """
        Add the keypoints as an ndx-pose ``PoseEstimation`` (and its skeleton) to the behavior module.

        Parameters
        ----------
        nwbfile : NWBFile
        metadata : dict, optional
            Pose, Devices and NWBFile metadata (this interface's ``get_metadata()`` by default).
        stub_test : bool, default: False
            Write only the first ``stub_frames`` frames.
        stub_frames : int, default: 100
        """
        from .convert import check_pose
        from .nwb.pose import add_pose_estimation

        metadata = deepcopy(metadata) if metadata is not None else self.get_metadata()
        defaults = self.get_metadata()
        key = self.metadata_key
        entry = dict(defaults["Pose"]["PoseEstimations"][key])
        entry.update(metadata.get("Pose", {}).get("PoseEstimations", {}).get(key, {}))
        skeleton_key = entry.get("skeleton_metadata_key", key)
        skeleton = dict(defaults["Pose"]["Skeletons"].get(skeleton_key, {}))
        skeleton.update(metadata.get("Pose", {}).get("Skeletons", {}).get(skeleton_key, {}))
        pose, frames = self.pose, None
        if stub_test:
            frames = max(1, min(int(stub_frames), pose.frame_count))
            pose = pose.first_frames(frames)
        else:
            check_pose(pose, self.recording)
        settings = {"device_metadata_key": entry.get("device_metadata_key", _DEVICE_KEY)}
        for field in ("video_name", "video_metadata_key"):
            if entry.get(field):
                settings[field] = entry[field]
        before = set(nwbfile.acquisition)
        video = self._video_series(nwbfile, metadata, settings, frames)[0]
        timing = {} if video.name not in before else self._timing()
        if frames is not None and "timestamps" in timing:
            timing["timestamps"] = timing["timestamps"][:frames]
        if frames is not None and not timing and video.rate is None:  # another interface's video, all its times
            timing = {"timestamps": np.asarray(video.timestamps[:frames], dtype=np.float64)}
        device_entry = metadata.get("Devices", {}).get(settings["device_metadata_key"], {})
        device = nwbfile.devices.get(device_entry.get("name")) if device_entry else None
        add_pose_estimation(
            nwbfile,
            pose,
            source_video=video,
            device=device,
            name=entry["name"],
            description=entry.get("description"),
            skeleton_name=skeleton.get("name"),
            series=entry.get("PoseEstimationSeries"),
            scorer=entry.get("scorer"),
            edges=skeleton.get("edges"),
            nodes=skeleton.get("nodes"),
            **timing,
        )
