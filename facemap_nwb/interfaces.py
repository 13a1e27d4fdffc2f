"""neuroconv data interfaces: thin classes that pick readers and call the shared NWB writers."""

from __future__ import annotations

from copy import deepcopy
from pathlib import Path
from typing import Literal

import numpy as np
from neuroconv import BaseTemporalAlignmentInterface
from neuroconv.utils import DeepDict, get_base_schema
from pydantic import FilePath, validate_call
from pynwb import NWBFile

from .loaders.facemap import load_facemap_results
from .nwb.facemap import SIGNALS, add_facemap_results
from .nwb.recording import add_recording
from .video import VideoRecording, probe_recording

__all__ = ["FacemapInterface"]

Signal = Literal["motion_energy", "motion_svd", "movie_svd", "summary", "pupil", "blink", "running"]
_DEVICE_KEY = "facemap_camera"


class FacemapInterface(BaseTemporalAlignmentInterface):
    """Facemap results (a ``_proc.npy`` or ``_proc.mat`` file) with the video Facemap processed.

    The ``_proc.npy`` file is read without running pickled code. The video gives the frame times
    and is checked against the results' frame count. Inside an ``NWBConverter`` next to a video
    interface, set ``metadata["Behavior"]["Facemap"]["video_name"]`` to that interface's ImageSeries
    name (or ``video_metadata_key`` to its ``ExternalVideos`` key) and the signals link to it;
    otherwise this interface writes the video as an external-file ImageSeries itself.

    Parameters
    ----------
    file_path : FilePath
        Facemap's output file, ``*_proc.npy`` or ``*_proc.mat``.
    video_file_paths : list of FilePath
        The video file(s) Facemap processed, in playback order (sequential files of one camera).
    verbose : bool, default: False
        Print progress.
    metadata_key : str, default: "Facemap"
        Key of this interface's settings in ``metadata["Behavior"]``. Give each of several Facemap
        interfaces in one converter its own key, task id and ``name_suffix`` (e.g. ``"_task-1"``): the
        objects of a second task in the same file need a suffix on their names.
    """

    display_name = "Facemap"
    keywords = ("facemap", "face video", "motion energy", "SVD", "pupil", "blink", "running")
    associated_suffixes = (".npy", ".mat")
    info = "Interface for Facemap outputs (motion energy, motion and movie SVD, pupil, blink, running)."

    @validate_call
    def __init__(
        self,
        file_path: FilePath,
        video_file_paths: list[FilePath],
        verbose: bool = False,
        metadata_key: str = "Facemap",
    ):
        super().__init__(file_path=file_path, video_file_paths=video_file_paths, verbose=verbose)
        self.metadata_key = metadata_key
        self.results = load_facemap_results(file_path)
        self.recording: VideoRecording = probe_recording(video_file_paths, name="FaceCamera", device="FaceCamera")
        self.results.check_frame_count(
            self.recording.frame_count, what=f"the video {[str(p) for p in video_file_paths]}"
        )
        self._aligned_timestamps: np.ndarray | None = None
        self._nwb_dir: Path | None = None

    def get_metadata(self) -> DeepDict:
        metadata = super().get_metadata()
        if self.recording.start_time is not None:
            metadata["NWBFile"]["session_start_time"] = self.recording.start_time
        metadata["Devices"][_DEVICE_KEY] = dict(name="FaceCamera", description="Camera filming the subject's face.")
        metadata["Behavior"][self.metadata_key] = dict(
            task_id="0",
            description=f"Facemap results loaded from '{Path(self.source_data['file_path']).name}'.",
            video_name="FaceCamera",
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
                video_name=dict(type="string", description="Name of the video ImageSeries the results come from."),
                video_metadata_key=dict(type="string", description="Key of that video in Behavior.ExternalVideos."),
                device_metadata_key=dict(type="string", description="Key of the camera in Devices."),
                name_suffix=dict(
                    type="string",
                    description="Appended to the name of every object of this task (needed for a second task).",
                ),
            ),
        )
        return schema

    def get_original_timestamps(self) -> np.ndarray:
        """Frame times from the video, in seconds from its first frame."""
        return self.recording.timestamps

    def get_timestamps(self) -> np.ndarray:
        return self._aligned_timestamps if self._aligned_timestamps is not None else self.get_original_timestamps()

    def set_aligned_timestamps(self, aligned_timestamps: np.ndarray) -> None:
        aligned = np.asarray(aligned_timestamps, dtype=np.float64)
        if aligned.shape != (self.results.frame_count,):
            raise ValueError(
                f"Got {aligned.size} aligned timestamps for {self.results.frame_count} frames; give one per frame."
            )
        self._aligned_timestamps = aligned

    def run_conversion(self, nwbfile_path=None, *args, **kwargs):
        # Video paths are stored relative to the NWB file's folder, which only this call knows.
        self._nwb_dir = Path(nwbfile_path).parent if nwbfile_path is not None else None
        try:
            return super().run_conversion(nwbfile_path, *args, **kwargs)
        finally:
            self._nwb_dir = None

    def _video_series(self, nwbfile: NWBFile, metadata: dict, settings: dict):
        name = settings.get("video_name", "FaceCamera")
        key = settings.get("video_metadata_key")
        if key is not None:
            name = metadata["Behavior"]["ExternalVideos"][key]["name"]
        if name in nwbfile.acquisition:
            series = nwbfile.acquisition[name]
            # External files are stored absolute, or relative to the NWB file's folder (when this interface
            # knows it) or to the working folder (as neuroconv's video interfaces store what they are given).
            base = self._nwb_dir or Path.cwd()
            theirs = [(base / str(f)).resolve() for f in (getattr(series, "external_file", None) or [])]
            ours = [Path(p).resolve() for p in self.recording.paths]
            if theirs and theirs != ours:
                raise ValueError(
                    f"The ImageSeries '{name}' already in the file shows {theirs}, but this Facemap task "
                    f"({self.metadata_key}) came from {ours}: set metadata['Behavior']['{self.metadata_key}']"
                    "['video_name'] to the ImageSeries of its own video (or to a new name)."
                )
            return series
        device = metadata.get("Devices", {}).get(settings.get("device_metadata_key", _DEVICE_KEY), {})
        if device and device.get("name") not in nwbfile.devices:
            nwbfile.create_device(**device)
        recording = VideoRecording(name=name, files=self.recording.files, device=device.get("name", name))
        # Relative to the NWB file when this interface's run_conversion knows it; inside a converter it
        # does not, so the paths are absolute (give the converter a video interface to control them).
        return add_recording(nwbfile, recording, nwb_dir=self._nwb_dir)

    def add_to_nwbfile(
        self,
        nwbfile: NWBFile,
        metadata: dict | None = None,
        *,
        signals: list[Signal] | None = None,
        n_components: int | None = None,
    ) -> None:
        """
        Add the Facemap task, its regions and its signals to the NWB file's behavior module.

        Parameters
        ----------
        nwbfile : NWBFile
            The in-memory NWB file.
        metadata : dict, optional
            Metadata; ``metadata["Behavior"][metadata_key]`` holds the task id, description, video name and
            name suffix.
        signals : list of str, optional
            Which signals to write: any of motion_energy, motion_svd, movie_svd, summary, pupil, blink,
            running (all by default).
        n_components : int, optional
            Keep at most this many SVD components (all by default).
        """
        metadata = deepcopy(metadata) if metadata is not None else self.get_metadata()
        settings = dict(self.get_metadata()["Behavior"][self.metadata_key])
        settings.update(metadata.get("Behavior", {}).get(self.metadata_key, {}))
        video = self._video_series(nwbfile, metadata, settings)
        add_facemap_results(
            nwbfile,
            self.results,
            videos=[video],
            task_id=settings["task_id"],
            task_mode="load",
            description=settings.get("description"),
            signals=SIGNALS if signals is None else signals,
            n_components=n_components,
            timestamps=self._aligned_timestamps,
            name_suffix=settings.get("name_suffix", ""),
        )
