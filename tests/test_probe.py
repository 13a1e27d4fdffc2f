"""Probing: every RecordingInfo field against values known by construction or read independently."""

from __future__ import annotations

from datetime import datetime, timezone
from fractions import Fraction

import numpy as np
import pytest
from numpy.testing import assert_allclose

from facemap_nwb import probe_recording, probe_video
from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION, opencv_gray_frames


def mov_timescale(denominator: int) -> int:
    """FFmpeg's mov/mp4 muxer's video time scale: the stream's time-base denominator doubled until it reaches
    10000 (libavformat/movenc.c: ``track->timescale = st->time_base.den; while (track->timescale < 10000)
    track->timescale *= 2``)."""
    while denominator < 10000:
        denominator *= 2
    return denominator


def expected_time_base(name: str, rate: float) -> Fraction:
    """The time base each container gives a stream encoded at ``rate``: mp4 the muxer's time scale above, on
    the encoder's 1/rate; Matroska its default TimestampScale of 1 ms; AVI the frame period (dwScale/dwRate)."""
    period = 1 / Fraction(rate).limit_denominator(1001)
    if name.endswith(".mp4"):
        return Fraction(1, mov_timescale(period.denominator))
    return Fraction(1, 1000) if name.endswith(".mkv") else period


@pytest.mark.parametrize(
    "name, codec, n_frames, rate, height, width",
    [
        ("a.mp4", "libx264", 75, 30.0, 120, 160),
        ("b.mp4", "libx264", 64, 30000 / 1001, 96, 128),
        ("c.mkv", "libx264", 50, 30.0, 80, 100),  # 1/30 s is no whole number of milliseconds
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
    time_base = expected_time_base(name, rate)
    assert info.time_base == time_base
    # Frame i is at i / rate, stored as the nearest tick of the time base: exact in mp4 (its time scale is a
    # multiple of the rate) and AVI; Matroska's millisecond ticks give round(1000 i / rate) / 1000.
    ticks = np.round(np.arange(n_frames) / rate / float(time_base))
    assert_allclose(info.timestamps, ticks * float(time_base), rtol=0, atol=1e-12, err_msg="timestamps")
    if name.endswith(".mkv"):
        assert not np.allclose(info.timestamps, np.arange(n_frames) / rate, rtol=0, atol=1e-6), "no rounding shows"
    # The last frame ends one frame interval after it starts.
    assert_allclose(info.duration, ticks[-1] * float(time_base) + 1 / rate, rtol=1e-12, err_msg="duration")
    if not name.endswith(".mkv"):
        assert_allclose(info.duration, n_frames / rate, rtol=1e-12, err_msg="duration")
    assert info.is_regular
    assert info.codec == {"libx264": "h264", "mpeg4": "mpeg4"}[codec]
    assert info.pixel_format == "yuv420p"
    assert info.path == path.resolve()
    if not name.endswith(".avi"):  # the mov/mp4 and Matroska muxers store creation_time (AVI has no such tag)
        assert info.creation_time == CREATION


def test_probe_without_creation_time_reports_none(face_video):
    assert probe_video(face_video(n_frames=10)).creation_time is None


def test_probe_variable_frame_rate(face_video):
    # Intervals of 50 ms and 20 ms in a 1:2 pattern (millisecond timestamps), nominal rate 30 frames/s.
    intervals = np.where(np.arange(59) % 3 == 0, 0.050, 0.020)
    times = np.concatenate([[0.0], np.cumsum(intervals)])
    info = probe_video(face_video("vfr.mp4", n_frames=60, timestamps=times, rate=30.0))
    assert info.frame_count == 60
    assert not info.is_regular
    assert info.time_base == Fraction(1, mov_timescale(1000)), "millisecond stream time base in mp4"
    assert_allclose(info.timestamps, times, rtol=0, atol=1e-12, err_msg="per-frame timestamps")
    # The average rate is the frames over the stream's length, which runs to the end of the last frame; with no
    # next frame, the last one lasts one nominal frame interval (1/30 s, to a tick of 1/16000 s).
    length = times[-1] + 1 / 30
    assert_allclose(info.rate, 60 / length, rtol=1e-4, err_msg="average frame rate")
    # The probe's duration: last timestamp plus one average frame interval (n / rate for regular videos).
    assert_allclose(info.duration, times[-1] + length / 60, rtol=1e-4, err_msg="duration")


def test_probe_without_decoding(face_video):
    path = face_video("fast.mp4", n_frames=33, rate=24.0)
    slow, fast = probe_video(path), probe_video(path, decode=False)
    assert (slow.frame_count, slow.frame_count_verified) == (33, True)
    assert (fast.frame_count, fast.frame_count_verified) == (33, False)
    for info in (slow, fast):  # 1/24 s is 512 ticks of the mp4 time base 1/12288: exact
        assert info.time_base == Fraction(1, mov_timescale(24)) == Fraction(1, 12288)
        assert_allclose(info.timestamps, np.arange(33) / 24.0, rtol=0, atol=1e-12, err_msg="timestamps")
        assert_allclose([info.rate, info.duration], [24.0, 33 / 24.0], rtol=1e-12)


def opencv_stream(path) -> dict:
    """What OpenCV's own demuxing and decoding loop reports: frames read, rate, size and each frame's time."""
    cv2 = pytest.importorskip("cv2", reason="OpenCV (opencv-python-headless, the 'test' extra) is the reference")
    capture = cv2.VideoCapture(str(path))
    times = []
    while capture.grab():
        times.append(capture.get(cv2.CAP_PROP_POS_MSEC) / 1000.0)
    out = {
        "rate": capture.get(cv2.CAP_PROP_FPS),
        "width": int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        "height": int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        "times": np.asarray(times),
    }
    capture.release()
    return out


def test_probe_real_videos(real_video):
    info = probe_video(real_video)
    reference = opencv_stream(real_video)
    assert info.frame_count == len(reference["times"]), "probed count differs from the frames OpenCV reads"
    assert info.frame_count == len(opencv_gray_frames(real_video)), "probed count differs from OpenCV's full decode"
    assert (info.width, info.height) == (reference["width"], reference["height"])
    assert_allclose(info.rate, reference["rate"], rtol=1e-9, err_msg="rate differs from OpenCV's")
    assert_allclose(info.timestamps, reference["times"], rtol=0, atol=1e-6, err_msg="timestamps differ from OpenCV's")
    assert info.is_regular
    assert_allclose(info.timestamps, np.arange(info.frame_count) / info.rate, rtol=0, atol=1e-6)
    assert_allclose(info.duration, info.frame_count / info.rate, rtol=1e-6)


def test_real_video_known_figures(lp_video, pair_video):
    # The figures of ../shared/data/README.md.
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
    # Each file's frames are at i / 30 s, exact in mp4's time base 1/15360 (512 ticks a frame); each file
    # starts where the one before ends (40 / 30 and 90 / 30 s).
    assert [f.time_base for f in recording.files] == [Fraction(1, mov_timescale(30))] * 3 == [Fraction(1, 15360)] * 3
    assert_allclose(recording.timestamps, np.arange(150) / 30.0, rtol=0, atol=1e-9, err_msg="recording timestamps")
    assert_allclose(recording.duration, 150 / 30.0, rtol=1e-12)
