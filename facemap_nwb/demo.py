"""The built-in example: a synthetic face video, written to NWB and checked, end to end."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .atomic import check_writable_folder
from .convert import write_results_nwb
from .engines.native import run_native
from .params import ROI, FacemapParameters
from .plot import plot_summary
from .results import FacemapResults
from .synthetic import default_creation_time, make_face_video
from .video import VideoRecording, probe_recording

__all__ = ["DemoResult", "run_demo", "DEMO_SUBJECT", "DEMO_FOLDER", "DEMO_NWB_NAME"]

DEMO_FOLDER = Path("demo")  # the default output folder, relative to the current folder
DEMO_NWB_NAME = "sub-demo_ses-demo_behavior+image.nwb"

DEMO_SUBJECT = {
    "subject_id": "demo",
    "species": "Mus musculus",
    "sex": "U",
    "age": "P90D",
    "description": "Synthetic subject of the facemap-nwb demo.",
}
DEMO_SEGMENTS = (150, 150)  # frames in each sequential file of the demo recording
# ROIs on the synthetic face (120 x 160 frames): whisker pad, eye (pupil and blink), wheel under the paws.
DEMO_PARAMETERS = FacemapParameters(
    spatial_bin=2,
    motion_svd=True,
    movie_svd=True,
    n_components=50,
    rois=(
        ROI(type="motion", name="whiskers", x=100, y=36, width=56, height=52),
        ROI(type="pupil", name="pupil", x=38, y=28, width=40, height=24, saturation=100.0),
        ROI(type="blink", name="eyelid", x=38, y=28, width=40, height=24, saturation=60.0),
        ROI(type="running", name="wheel", x=20, y=100, width=64, height=20),
    ),
)


@dataclass
class DemoResult:
    """What the demo made."""

    folder: Path
    videos: list[Path]
    nwb_path: Path
    summary_png: Path
    recording: VideoRecording
    results: FacemapResults
    inspector_messages: list = field(default_factory=list)


def run_demo(folder: str | Path | None = None, *, overwrite: bool = False) -> DemoResult:
    """Make the demo video (two sequential files), process it with the native engine, write the recording
    and its facial signals to NWB, validate the file and draw its summary PNG beside it.

    Parameters
    ----------
    folder : path, optional
        Where to put the videos, the NWB file (``sub-demo_ses-demo_behavior+image.nwb``) and its summary PNG
        (``sub-demo_ses-demo_behavior+image.png``); ``demo`` in the current folder when not given (the folder
        the README's examples read).
    overwrite : bool
        Replace the files of an earlier demo in the same folder; without it an existing one is refused
        before any work starts.

    Raises
    ------
    FileExistsError
        One of the demo's files is already there and ``overwrite`` is false (the message names it and
        ``--overwrite``).
    """
    folder = Path(folder) if folder is not None else DEMO_FOLDER
    nwb_path = folder / DEMO_NWB_NAME
    png_path = nwb_path.with_suffix(".png")
    video_paths = [folder / f"face_part{index + 1}.mp4" for index in range(len(DEMO_SEGMENTS))]
    check_writable_folder(folder, what="demo folder (--output-dir)")
    if not overwrite:
        for path in (nwb_path, png_path, *video_paths):
            if path.exists():
                raise FileExistsError(
                    f"'{path}' already exists from an earlier demo; pass --overwrite to replace it, "
                    "or --output-dir for another folder."
                )
    folder.mkdir(parents=True, exist_ok=True)
    videos, first = [], 0
    for index, (path, n_frames) in enumerate(zip(video_paths, DEMO_SEGMENTS)):
        creation = default_creation_time() if index == 0 else None
        videos.append(make_face_video(path, n_frames=n_frames, first_frame=first, creation_time=creation))
        first += n_frames
    recording = probe_recording(videos, name="FaceCamera", device="FaceCamera")
    results = run_native([recording], DEMO_PARAMETERS, progress=False)
    metadata = {
        "NWBFile": dict(
            session_description="facemap-nwb demo: a synthetic face video in two files and its facial signals.",
            session_id="demo",
            experimenter=["Demo, Facemap"],
            institution="facemap-nwb",
            lab="facemap-nwb",
            experiment_description="Built-in example of facemap-nwb.",
            keywords=["facemap", "face video", "demo"],
        ),
        "Subject": dict(DEMO_SUBJECT),
    }
    write_results_nwb(
        nwb_path,
        results,
        [recording],
        metadata=metadata,
        task_mode="trigger",
        description="Native engine on the demo video: whisker motion, pupil, blink and wheel running.",
        overwrite=overwrite,
    )
    plot_summary(nwb_path, png_path, overwrite=overwrite)
    return DemoResult(
        folder=folder,
        videos=videos,
        nwb_path=nwb_path,
        summary_png=png_path,
        recording=recording,
        results=results,
        inspector_messages=inspect_nwb(nwb_path),
    )


def inspect_nwb(path: str | Path) -> list:
    """nwbinspector's messages for the file (empty when nwbinspector isn't installed)."""
    try:
        from nwbinspector import inspect_nwbfile
    except ImportError:
        return []
    return list(inspect_nwbfile(nwbfile_path=str(path)))
