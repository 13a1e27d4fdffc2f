"""Trigger mode from the command line and parameters: process, ROIs without a GUI, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from facemap_nwb.cli import main
from facemap_nwb.nwb.io import read_facemap_nwb
from facemap_nwb.params import ROI, FacemapParameters

from .conftest import CREATION
from .test_bad_input import faststart_video, truncated
from .test_recording_nwb import metadata_file


@pytest.fixture
def meta(tmp_path):
    return metadata_file(tmp_path)


@pytest.fixture
def rois_file(tmp_path):
    path = tmp_path / "rois.yaml"
    path.write_text(
        "spatial_bin: 2\nmotion_svd: true\nmovie_svd: true\nn_components: 20\nrois:\n"
        "  - {type: motion, name: whiskers, x: 100, y: 36, width: 56, height: 52}\n"
        "  - {type: pupil, name: pupil, x: 38, y: 28, width: 40, height: 24, saturation: 100}\n"
        "  - {type: blink, name: eyelid, x: 38, y: 28, width: 40, height: 24, saturation: 60}\n"
        "  - {type: running, name: wheel, x: 20, y: 100, width: 64, height: 20}\n"
    )
    return path


def test_process_native_writes_every_signal(face_video, rois_file, meta, tmp_path, capsys):
    video = face_video(n_frames=90, creation_time=CREATION)
    out = tmp_path / "out.nwb"
    assert main(["process", str(video), "--rois", str(rois_file), "-o", str(out), "--metadata", str(meta)]) == 0
    captured = capsys.readouterr()
    assert "frame/s" in captured.err, "no progress bar with frames per second"
    results = read_facemap_nwb(out)
    assert [r.name for r in results.regions] == ["full_frame", "whiskers", "pupil", "eyelid", "wheel"]
    assert results.engine == "facemap_nwb.native" and results.engine_version
    assert len(results.motion_svd) == len(results.movie_svd) == 2 and results.pupils and results.blinks
    assert results.parameters == FacemapParameters.from_file(rois_file)
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        assert io.read().processing["behavior"]["FacemapTask"].task_mode == "trigger"


def test_process_quiet_and_flags(face_video, meta, tmp_path, capsys):
    video = face_video(n_frames=40, creation_time=CREATION)
    out = tmp_path / "q.nwb"
    args = ["process", str(video), "-o", str(out), "--sbin", "4", "--no-motion-svd", "--quiet", "--metadata", str(meta)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    results = read_facemap_nwb(out)
    assert results.motion_svd == [] and results.parameters.spatial_bin == 4 and 0 in results.motion_energy


@pytest.mark.facemap
def test_process_with_facemap_engine(face_video, meta, tmp_path):
    pytest.importorskip("facemap")
    video = face_video(n_frames=60, creation_time=CREATION)
    out = tmp_path / "fm.nwb"
    assert (
        main(
            [
                "process",
                str(video),
                "-o",
                str(out),
                "--sbin",
                "4",
                "--engine",
                "facemap",
                "--quiet",
                "--metadata",
                str(meta),
            ]
        )
        == 0
    )
    results = read_facemap_nwb(out)
    from importlib.metadata import version

    assert results.engine == "facemap" and results.engine_version == version("facemap")


def test_two_cameras_from_the_command_line(face_video, meta, tmp_path):
    face = face_video("face.mp4", n_frames=50, creation_time=CREATION)
    side = face_video("side.mp4", n_frames=50, height=64, width=96)
    out = tmp_path / "two.nwb"
    assert (
        main(
            [
                "process",
                str(face),
                "--view",
                str(side),
                "-o",
                str(out),
                "--sbin",
                "4",
                "--quiet",
                "--metadata",
                str(meta),
            ]
        )
        == 0
    )
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert sorted(nwb.acquisition["VideoFiles"]["recording"][:]) == ["FaceCamera0", "FaceCamera1"]


def test_parameters_round_trip_and_hash(tmp_path):
    ellipse = np.zeros((6, 8), bool)
    ellipse[1:5, 2:6] = True
    params = FacemapParameters(
        spatial_bin=3,
        movie_svd=True,
        rois=(ROI("pupil", 1, 2, 8, 6, saturation=90, ellipse=ellipse), ROI("motion", 10, 10, 20, 20, video=1)),
    )
    for name in ("p.yaml", "p.json"):
        back = FacemapParameters.from_file(params.to_file(tmp_path / name))
        assert back == params and back.hash == params.hash
        np.testing.assert_array_equal(back.rois[0].mask, ellipse)
    assert [r.name for r in params.rois] == ["pupil0", "motion0"]
    assert FacemapParameters(spatial_bin=3).hash != FacemapParameters(spatial_bin=4).hash
    assert json.loads(params.to_json())["rois"][1]["video"] == 1


def test_parameters_from_an_existing_proc_file(tmp_path):
    from .test_facemap_model import hand_built_proc

    path = tmp_path / "old_proc.npy"
    np.save(path, hand_built_proc(), allow_pickle=True)
    from facemap_nwb.loaders.facemap import load_facemap_results

    params = load_facemap_results(path).parameters
    assert params.spatial_bin == 2 and [r.type for r in params.rois] == [
        "motion",
        "pupil",
        "blink",
        "running",
        "motion",
    ]
    assert (params.rois[0].x, params.rois[0].y, params.rois[0].width, params.rois[0].height) == (10, 20, 18, 12)


BAD = {
    "roi_outside_frame": (["--rois", "outside"], r"reaches outside the 160x120 frame"),
    "roi_empty": (["--rois", "empty"], r"rois.0.width: Input should be greater than or equal to 1 \(got 0\)"),
    "sbin_below_one": (["--sbin", "0"], r"argument --sbin: 0 is below 1"),
    "sbin_larger_than_frame": (["--sbin", "200"], r"spatial_bin 200 is larger than video 0"),
    "too_many_components": (["--n-components", "5000"], r"n_components 5000 is more than the video allows"),
    "unknown_roi_key": (["--rois", "typo"], r"rois.0.widht: unknown key. Did you mean 'width'\?"),
}


def _roi_file(tmp_path, kind):
    text = {
        "outside": "rois:\n  - {type: motion, x: 150, y: 10, width: 20, height: 20}\n",
        "empty": "rois:\n  - {type: pupil, x: 10, y: 10, width: 0, height: 10}\n",
        "typo": "rois:\n  - {type: motion, x: 10, y: 10, widht: 20, height: 20}\n",
    }[kind]
    path = tmp_path / f"{kind}.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_processing_input(case, face_video, tmp_path, capsys):
    video = face_video(n_frames=30, creation_time=CREATION)
    extra, pattern = BAD[case]
    extra = [_roi_file(tmp_path, extra[1]) if a in ("outside", "empty", "typo") else a for a in extra]
    out = tmp_path / "bad.nwb"
    assert main(["process", str(video), "-o", str(out), "--quiet", *extra]) == 1
    err = capsys.readouterr().err
    assert re.search(pattern, err), err
    assert not list(tmp_path.rglob("*.nwb"))


def test_cameras_with_different_frame_counts(face_video, tmp_path, capsys):
    a, b = face_video("a.mp4", n_frames=30, creation_time=CREATION), face_video("b.mp4", n_frames=31)
    out = tmp_path / "bad.nwb"
    assert main(["process", str(a), "--view", str(b), "-o", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "same number of frames" in err and "a.mp4' 30" in err and "b.mp4' 31" in err
    assert not list(tmp_path.rglob("*.nwb"))


def test_frame_that_fails_to_decode_mid_video(tmp_path, capsys):
    cut = truncated(faststart_video(tmp_path / "whole.mp4", n_frames=60), tmp_path / "cut.mp4")
    out = tmp_path / "bad.nwb"
    assert main(["process", str(cut), "-o", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert re.search(r"Frame \d+ of '.*cut.mp4' does not decode", err), err
    assert not out.exists()


def test_decode_failure_names_the_frame(tmp_path):
    """A file that probes but then fails to decode (changed on disk) gives the frame index."""
    from facemap_nwb import GrayFrameReader, VideoError, probe_recording

    video = faststart_video(tmp_path / "ok.mp4", n_frames=60)
    recording = probe_recording([video])
    truncated(video, video, fraction=0.5)
    with pytest.raises(VideoError, match=r"Frame \d+ of '.*ok.mp4' does not decode"):
        for _ in GrayFrameReader(recording).iter_chunks(16):
            pass


def test_progress_bar_script(face_video, tmp_path):
    """The installed command shows frames per second on stderr and nothing with --quiet."""
    video = face_video(n_frames=30, creation_time=CREATION)
    run = subprocess.run(
        [sys.executable, "-m", "facemap_nwb", "process", str(video), "-o", str(tmp_path / "p.nwb"), "--sbin", "4"]
        + ["--metadata", str(metadata_file(tmp_path))],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert "frame/s" in run.stderr
