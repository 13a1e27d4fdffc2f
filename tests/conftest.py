"""Shared fixtures: the real videos in ../shared/data (skipped when absent) and synthetic videos."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from facemap_nwb.synthetic import make_face_video

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("FACEMAP_NWB_TEST_DATA", REPO.parent / "shared" / "data"))
LP_VIDEO = SHARED_DATA / "lp_test_vid.mp4"
PAIR_VIDEO = SHARED_DATA / "centered_pair_small.mp4"
CREATION = datetime(2023, 3, 4, 5, 6, 7, tzinfo=timezone.utc)


def shared_video(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real test video '{path}' is absent (the shared data folder ships with CI, not with a clone)")
    return path


@pytest.fixture
def lp_video() -> Path:
    return shared_video(LP_VIDEO)


@pytest.fixture
def pair_video() -> Path:
    return shared_video(PAIR_VIDEO)


@pytest.fixture(params=["lp_test_vid.mp4", "centered_pair_small.mp4"])
def real_video(request) -> Path:
    return shared_video(SHARED_DATA / request.param)


@pytest.fixture
def face_video(tmp_path):
    """Factory: ``face_video(name, **make_face_video kwargs)`` writes a synthetic video in tmp_path."""

    def make(name: str = "face.mp4", **kwargs) -> Path:
        return make_face_video(tmp_path / name, **kwargs)

    return make


@pytest.fixture
def three_segments(face_video):
    """One movie cut into three sequential files of 40, 50 and 60 frames."""
    counts, paths, first = (40, 50, 60), [], 0
    for i, n in enumerate(counts):
        paths.append(
            face_video(f"part{i + 1}.mp4", n_frames=n, first_frame=first, creation_time=CREATION if i == 0 else None)
        )
        first += n
    return paths, counts


def opencv_gray_frames(path: Path) -> np.ndarray:
    """What Facemap reads: OpenCV BGR frames converted with COLOR_BGR2GRAY."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV (opencv-python-headless, the 'test' extra) is the reference")
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))
    capture.release()
    return np.stack(frames)
