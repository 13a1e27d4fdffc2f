"""Probing: every RecordingInfo field against values known by construction or read independently."""

from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

import av
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from facemap_nwb import probe_recording, probe_video
from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION, opencv_gray_frames


@pytest.mark.parametrize(
    "name, codec, n_frames, rate, height, width",
    [
        ("a.mp4", "libx264", 75, 30.0, 120, 160),
        ("b.mp4", "libx264", 64, 30000 / 1001, 96, 128),
        ("c.mkv", "libx264", 50, 25.0, 80, 100),
        ("d.avi", "mpeg4", 45, 50.0, 64, 64),
    ],
)
def test_probe_synthetic_known_values(tmp_path, name, codec, n_frames, rate, height, width):
    path = make_face_video(
        tmp_path / name, n_frames=n_frames, rate=rate, height=height, width=width, codec=codec, creation_time=CREATION
    )
    info = probe_video(path)
    assert (info.height, info.width, info.frame_count) == (height, width, n_frames)
    assert_allclose(info.rate, rate, rtol=1e-9, err_msg="frame rate")
    assert isinstance(info.rate, float)
    assert_allclose(info.duration, n_frames / rate, rtol=1e-6, err_msg="duration")
    assert_allclose(info.timestamps, np.arange(n_frames) / rate, atol=float(info.time_base), err_msg="timestamps")
    assert info.is_regular
    assert info.codec == {"libx264": "h264", "mpeg4": "mpeg4"}[codec]
    assert info.pixel_format == "yuv420p"
    assert info.path == path.resolve()
    if name.endswith(".mp4"):  # the mov/mp4 muxer stores creation_time
        assert info.creation_time == CREATION


def test_probe_without_creation_time_reports_none(face_video):
    assert probe_video(face_video(n_frames=10)).creation_time is None


def test_probe_variable_frame_rate(face_video):
    # Intervals of 50 ms and 20 ms in a 1:2 pattern (millisecond timestamps).
    intervals = np.where(np.arange(59) % 3 == 0, 0.050, 0.020)
    times = np.concatenate([[0.0], np.cumsum(intervals)])
    info = probe_video(face_video("vfr.mp4", n_frames=60, timestamps=times))
    assert info.frame_count == 60
    assert not info.is_regular
    assert_allclose(info.timestamps, times, atol=1e-9, err_msg="per-frame timestamps")
    with av.open(str(info.path)) as container:  # the stream's own average rate, read directly
        average = float(container.streams.video[0].average_rate)
    assert_allclose(info.rate, average, rtol=1e-12)
    # FFmpeg's average rate of a VFR stream is frames over the stream duration, between the extremes.
    assert 20.0 < info.rate < 50.0
    assert_allclose(info.duration, times[-1] + 1 / info.rate, rtol=1e-9)


def test_probe_without_decoding_agrees(face_video):
    path = face_video("fast.mp4", n_frames=33, rate=24.0)
    slow, fast = probe_video(path), probe_video(path, decode=False)
    assert fast.frame_count == slow.frame_count == 33
    assert_array_equal(fast.timestamps, slow.timestamps)


def test_probe_real_videos(real_video):
    info = probe_video(real_video)
    with av.open(str(real_video)) as container:
        stream = container.streams.video[0]
        average = float(stream.average_rate)
        decoded = sum(1 for _ in container.decode(stream))
    assert info.frame_count == decoded, "probed count differs from a full PyAV decode"
    assert info.frame_count == len(opencv_gray_frames(real_video)), "probed count differs from OpenCV's full decode"
    assert_allclose(info.rate, average, rtol=1e-12, err_msg="rate is not the stream's average rate")
    assert info.is_regular
    assert_allclose(info.duration, info.frame_count / info.rate, rtol=1e-6)


def test_real_video_known_figures(lp_video, pair_video):
    lp, pair = probe_video(lp_video), probe_video(pair_video)
    assert (lp.frame_count, lp.width, lp.height, lp.rate) == (994, 396, 406, 250.0)
    assert (pair.frame_count, pair.width, pair.height, pair.rate) == (1100, 384, 384, 15.0)
    assert pair.creation_time == datetime(2019, 5, 6, 19, 59, 6, tzinfo=timezone.utc)
    assert lp.creation_time is None


def test_recording_of_sequential_files(three_segments):
    paths, counts = three_segments
    recording = probe_recording(paths, name="Face", device="cam0")
    assert recording.frame_counts == list(counts)
    assert recording.starting_frames == [0, 40, 90]
    assert recording.frame_count == 150
    assert recording.rate == 30.0
    assert recording.start_time == CREATION
    assert recording.paths == [p.resolve() for p in paths]
    assert_allclose(recording.timestamps, np.arange(150) / 30.0, atol=1e-4, err_msg="recording timestamps")
    assert_allclose(recording.duration, 5.0)
    assert recording.files[0].time_base == Fraction(1, 15360)
