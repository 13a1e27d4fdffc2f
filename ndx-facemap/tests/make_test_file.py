"""Write ``data/facemap_nwb_0.1.0.nwb``, the small file facemap-nwb 0.1 writes, for the back-compat tests.

Run with facemap-nwb installed: ``python ndx-facemap/tests/make_test_file.py``. The file is committed; the
tests read it with only pynwb and ndx-facemap installed. Its video (40 synthetic frames, 60 x 80) is not kept:
the file refers to it by name only.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from pathlib import Path

from facemap_nwb.convert import write_results_nwb
from facemap_nwb.params import ROI, FacemapParameters
from facemap_nwb.engines import process_recordings
from facemap_nwb.synthetic import make_face_video
from facemap_nwb.video import probe_recording

OUT = Path(__file__).resolve().parent / "data" / "facemap_nwb_0.1.0.nwb"


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        video = make_face_video(Path(folder) / "face.mp4", n_frames=40, height=60, width=80)
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
        metadata = {"NWBFile": {"session_start_time": datetime(2024, 5, 6, 12, 30, tzinfo=timezone.utc)}}
        write_results_nwb(OUT, results, [recording], metadata=metadata, task_id="face", overwrite=True)


if __name__ == "__main__":
    main()
