"""Write ``data/facemap_nwb_1.0.0.nwb``, a small file facemap-nwb writes in format 1.0.0, for the back-compat tests.

Run with facemap-nwb installed: ``python ndx-facemap/tests/make_test_file.py`` (``--overwrite`` to replace an
existing file). The file is committed and never rewritten for a later format: every later ndx-facemap must read
it (a new format version adds its own file beside it). The tests read it with only pynwb and ndx-facemap
installed. Its video (40 synthetic frames, 60 x 80) is committed beside it as ``data/face.mp4``, the relative
path the file's ImageSeries names, and the file has a Subject: nwbinspector's DANDI configuration finds nothing
in it (the README test copies both).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from facemap_nwb.convert import write_results_nwb
from facemap_nwb.engines import process_recordings
from facemap_nwb.params import ROI, FacemapParameters
from facemap_nwb.synthetic import make_face_video
from facemap_nwb.video import probe_recording

OUT = Path(__file__).resolve().parent / "data" / "facemap_nwb_1.0.0.nwb"


def main(overwrite: bool = False) -> None:
    if OUT.exists() and not overwrite:
        raise SystemExit(f"{OUT} exists: back-compat files are not rewritten (pass --overwrite to replace it).")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    video = make_face_video(OUT.parent / "face.mp4", n_frames=40, height=60, width=80)
    recording = probe_recording([video])
    params = FacemapParameters(
        spatial_bin=2,
        movie_svd=True,
        n_components=5,
        rois=(
            ROI("motion", 40, 10, 30, 20, name="whiskers"),
            ROI("pupil", 10, 10, 20, 14, name="pupil", saturation=100),
            ROI("blink", 10, 10, 20, 14, name="eyelid", saturation=60),
            ROI("running", 5, 40, 30, 15, name="wheel"),
        ),
    )
    results = process_recordings([recording], params)
    metadata = {
        "NWBFile": {"session_start_time": datetime(2024, 5, 6, 12, 30, tzinfo=timezone.utc),
                    "session_description": "A synthetic face video for ndx-facemap's back-compat tests.",
                    "experimenter": ["Doe, Jane"], "institution": "Test Institute", "lab": "Test Lab"},
        "Subject": {"subject_id": "m1", "species": "Mus musculus", "sex": "F", "age": "P60D"},
    }  # fmt: skip
    write_results_nwb(OUT, results, [recording], metadata=metadata, task_id="face", overwrite=True)


if __name__ == "__main__":
    import sys

    main(overwrite="--overwrite" in sys.argv[1:])
