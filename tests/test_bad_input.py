"""Bad input: one clear message naming the file and the problem, a non-zero CLI exit, no NWB file left."""

from __future__ import annotations

import av
import pytest

from facemap_nwb import VideoError, probe_recording
from facemap_nwb.cli import main


def zero_frame_video(path):
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        container.start_encoding()
    return path


def truncated(source, target, fraction=0.6):
    target.write_bytes(source.read_bytes()[: int(source.stat().st_size * fraction)])
    return target


def faststart_video(path, n_frames=60):
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        from facemap_nwb.synthetic import face_frame

        for t in range(n_frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(face_frame(t, 48, 64), format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _case(name, tmp_path, face_video):
    """Return (list of video paths, exception type, regex the message must match, the file it must name)."""
    if name == "missing":
        p = tmp_path / "nope.mp4"
        return [p], FileNotFoundError, "not found", p
    if name == "folder":
        p = tmp_path / "videos"
        p.mkdir()
        return [p], VideoError, "is a folder", p
    if name == "text_as_mp4":
        p = tmp_path / "notes.mp4"
        p.write_text("not a video\n" * 50)
        return [p], VideoError, "not a readable video", p
    if name == "empty_file":
        p = tmp_path / "empty.mp4"
        p.write_bytes(b"")
        return [p], VideoError, "empty", p
    if name == "truncated_mp4":
        p = truncated(face_video("whole.mp4", n_frames=60), tmp_path / "cut.mp4")
        return [p], VideoError, "not a readable video.*truncated", p
    if name == "truncated_faststart_mp4":
        p = truncated(faststart_video(tmp_path / "fs.mp4"), tmp_path / "cut_fs.mp4")
        return [p], VideoError, "truncated", p
    if name == "truncated_mkv":
        p = truncated(face_video("whole.mkv", n_frames=60), tmp_path / "cut.mkv")
        return [p], VideoError, "truncated", p
    if name == "zero_frames":
        p = zero_frame_video(tmp_path / "zero.mp4")
        return [p], VideoError, "no video frames", p
    if name == "size_mismatch":
        a = face_video("a.mp4", n_frames=10)
        b = face_video("b.mp4", n_frames=10, height=64, width=96)
        return [a, b], VideoError, r"96x64 pixels.*160x120.*one frame size", b
    if name == "rate_mismatch":
        a = face_video("a.mp4", n_frames=10, rate=30.0)
        b = face_video("b.mp4", n_frames=10, rate=25.0)
        return [a, b], VideoError, r"25 frames/s.*at 30.*one frame rate", b
    raise AssertionError(name)


CASES = [
    "missing",
    "folder",
    "text_as_mp4",
    "empty_file",
    "truncated_mp4",
    "truncated_faststart_mp4",
    "truncated_mkv",
    "zero_frames",
    "size_mismatch",
    "rate_mismatch",
]


@pytest.mark.parametrize("name", CASES)
def test_bad_input_api(name, tmp_path, face_video):
    videos, error, pattern, culprit = _case(name, tmp_path, face_video)
    with pytest.raises(error, match=pattern) as caught:
        probe_recording(videos)
    assert str(culprit.name) in str(caught.value), f"message does not name the file: {caught.value}"


@pytest.mark.parametrize("name", CASES)
def test_bad_input_cli_leaves_no_output(name, tmp_path, face_video, capsys):
    videos, _, pattern, culprit = _case(name, tmp_path, face_video)
    out = tmp_path / "out" / "session.nwb"
    code = main(["recording", *map(str, videos), "-o", str(out), "--session-start", "2024-01-01T00:00:00+00:00"])
    stderr = capsys.readouterr().err
    assert code != 0
    assert culprit.name in stderr and "error" in stderr
    assert stderr.count("\n") == 1, f"expected one message line, got: {stderr!r}"
    assert not out.exists()
    assert not list(tmp_path.rglob("*.nwb")), "an NWB file (partial or not) was left behind"
    assert main(["info", "--recording", "Face", *map(str, videos)]) != 0


def test_failure_while_writing_leaves_no_file(tmp_path, face_video, monkeypatch):
    from facemap_nwb.nwb import io as nwb_io

    def broken_validation(path):
        raise nwb_io.NWBValidationError(f"NWB file '{path}' fails validation (simulated)")

    monkeypatch.setattr(nwb_io, "validate_nwb", broken_validation)
    recording = probe_recording([face_video(n_frames=5)])
    import datetime as dt

    with pytest.raises(nwb_io.NWBValidationError):
        nwb_io.write_recordings_nwb(
            tmp_path / "bad.nwb", recording, session_start_time=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        )
    assert list(tmp_path.glob("*.nwb")) == [] and list(tmp_path.glob(".*")) == []
