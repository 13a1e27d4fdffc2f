"""The built-in example: a synthetic face video, written to NWB and checked, end to end."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .nwb.io import write_recordings_nwb
from .synthetic import default_creation_time, make_face_video
from .video import VideoRecording, probe_recording

__all__ = ["DemoResult", "run_demo", "DEMO_SUBJECT"]

DEMO_SUBJECT = {
    "subject_id": "demo",
    "species": "Mus musculus",
    "sex": "U",
    "age": "P90D",
    "description": "Synthetic subject of the facemap-nwb demo.",
}
DEMO_SEGMENTS = (150, 150)  # frames in each sequential file of the demo recording


@dataclass
class DemoResult:
    """What the demo made."""

    folder: Path
    videos: list[Path]
    nwb_path: Path
    recording: VideoRecording
    inspector_messages: list = field(default_factory=list)


def run_demo(folder: str | Path | None = None, *, overwrite: bool = False) -> DemoResult:
    """Make the demo video (two sequential files), write the recording to NWB and validate it.

    Parameters
    ----------
    folder : path, optional
        Where to put the videos and the NWB file; a new temporary folder when not given.
    overwrite : bool
        Replace an NWB file left by an earlier demo in the same folder.
    """
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="facemap-nwb-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    nwb_path = folder / "sub-demo_ses-demo_behavior+image.nwb"
    if nwb_path.exists() and not overwrite:
        raise FileExistsError(f"'{nwb_path}' already exists from an earlier demo; pass --overwrite or another folder.")
    videos, first = [], 0
    for index, n_frames in enumerate(DEMO_SEGMENTS):
        creation = default_creation_time() if index == 0 else None
        path = folder / f"face_part{index + 1}.mp4"
        videos.append(make_face_video(path, n_frames=n_frames, first_frame=first, creation_time=creation))
        first += n_frames
    recording = probe_recording(videos, name="FaceCamera", device="FaceCamera")
    write_recordings_nwb(
        nwb_path,
        recording,
        overwrite=overwrite,
        session_description="facemap-nwb demo: a synthetic face video in two sequential files.",
        session_id="demo",
        subject=dict(DEMO_SUBJECT),
        experimenter=["Demo, Facemap"],
        institution="facemap-nwb",
        lab="facemap-nwb",
        experiment_description="Built-in example of facemap-nwb.",
        keywords=["facemap", "face video", "demo"],
    )
    return DemoResult(
        folder=folder, videos=videos, nwb_path=nwb_path, recording=recording, inspector_messages=inspect_nwb(nwb_path)
    )


def inspect_nwb(path: str | Path) -> list:
    """nwbinspector's messages for the file (empty when nwbinspector isn't installed)."""
    try:
        from nwbinspector import inspect_nwbfile
    except ImportError:
        return []
    return list(inspect_nwbfile(nwbfile_path=str(path)))
