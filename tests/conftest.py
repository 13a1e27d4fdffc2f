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


# ------------------------------------------------------------------------------------- Facemap outputs


def lp_parameters():
    """ROIs of all four types on lp_test_vid.mp4 (396 x 406), motion + movie SVD, spatial bin 4."""
    from facemap_nwb.params import ROI, FacemapParameters

    return FacemapParameters(
        spatial_bin=4,
        motion_svd=True,
        movie_svd=True,
        rois=(
            ROI(type="motion", name="paws", x=100, y=200, width=120, height=80),
            ROI(type="pupil", name="pupil", x=50, y=50, width=40, height=30, saturation=80.0),
            ROI(type="blink", name="blink", x=150, y=60, width=40, height=30, saturation=120.0),
            ROI(type="running", name="wheel", x=200, y=300, width=64, height=64),
            ROI(type="motion", name="tail", x=20, y=300, width=60, height=50),
        ),
    )


def synthetic_parameters():
    """ROIs of all four types on the synthetic face (120 x 160)."""
    from facemap_nwb.demo import DEMO_PARAMETERS

    return DEMO_PARAMETERS


def _facemap_outputs(videos, params, folder):
    pytest.importorskip("facemap", reason="needs Facemap (the 'facemap' extra)")
    from facemap_nwb import probe_recording
    from facemap_nwb.engines import run_facemap_to_folder

    folder.mkdir(parents=True, exist_ok=True)
    npy = run_facemap_to_folder([probe_recording(videos)], params, folder, save_mat=True)
    return npy, npy.with_suffix(".mat")


@pytest.fixture(scope="session")
def lp_facemap(tmp_path_factory):
    """Facemap's own outputs (_proc.npy and _proc.mat) for lp_test_vid.mp4 with lp_parameters()."""
    video = shared_video(LP_VIDEO)
    folder = tmp_path_factory.mktemp("lp_facemap")
    npy, mat = _facemap_outputs([video], lp_parameters(), folder)
    return {"video": video, "npy": npy, "mat": mat, "params": lp_parameters()}


@pytest.fixture(scope="session")
def synthetic_facemap(tmp_path_factory):
    """Facemap's outputs for a 300-frame synthetic face video with synthetic_parameters()."""
    folder = tmp_path_factory.mktemp("synthetic_facemap")
    video = make_face_video(folder / "face.mp4", n_frames=300, creation_time=CREATION)
    npy, mat = _facemap_outputs([video], synthetic_parameters(), folder)
    return {"video": video, "npy": npy, "mat": mat, "params": synthetic_parameters()}


def trusted_proc(path) -> dict:
    """Facemap's dict read with numpy's own (unsafe) loader: only for files the tests made themselves."""
    return np.load(path, allow_pickle=True).item()


# ------------------------------------------------------------------------------------------------------------
# Every NWB file the tests write passes nwbinspector's DANDI configuration (ndx-facemap issue #10, item 6).
# After the session, each HDF5 file (*.nwb) and Zarr store (*.nwb.zarr) left under this run's temporary folder
# is inspected, and each CRITICAL message or best-practice violation is listed with the file, the check and
# the object; a finding fails the run (FACEMAP_NWB_INSPECT_WRITTEN=report only lists them, 0 turns this off),
# so every test that writes a file gives it what DANDI needs (a Subject, videos that exist). pynwb's validation is
# skipped here: every writer validates its file before publishing it. Files a test made unreadable on
# purpose (damaged copies, text named .nwb) are counted, not inspected.


def _inspect_written(path: Path) -> list:
    from nwbinspector import Importance, inspect_nwbfile_object, load_config

    config = load_config("dandi")
    if path.is_dir():
        from hdmf_zarr.nwb import NWBZarrIO as reader
    else:
        from pynwb import NWBHDF5IO as reader
    with reader(str(path), mode="r", load_namespaces=True) as io:
        messages = list(inspect_nwbfile_object(io.read(), config=config))
    serious = (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION)
    return [m for m in messages if m.importance in serious]


def pytest_sessionfinish(session, exitstatus):
    mode = os.environ.get("FACEMAP_NWB_INSPECT_WRITTEN", "strict")
    if mode == "0" or exitstatus not in (0, 1):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None or getattr(factory, "_basetemp", None) is None:
        return  # no test asked for a temporary folder
    import warnings

    base = factory.getbasetemp()
    written = sorted(p for p in [*base.rglob("*.nwb"), *base.rglob("*.nwb.zarr")] if p.is_file() or p.is_dir())
    written = [p for p in written if not (p.is_dir() and p.suffix == ".nwb")]
    findings, unreadable = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for path in written:
            try:
                messages = _inspect_written(path)
            except Exception as err:  # noqa: BLE001 - a file a test damaged on purpose
                unreadable.append(f"{path.relative_to(base)} ({type(err).__name__})")
                continue
            findings += [f"{path.relative_to(base)}: {m.check_function_name} at {m.location}: {m.message}"
                         for m in messages]  # fmt: skip
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_sep("-", f"nwbinspector (DANDI config) on the {len(written)} NWB file(s) the tests wrote")
        for line in findings:
            reporter.write_line(f"VIOLATION {line}")
        reporter.write_line(f"{len(findings)} violation(s); {len(unreadable)} file(s) unreadable on purpose")
    if findings and mode != "report":
        session.exitstatus = 1
