"""Recordings in NWB: write, validate, inspect, read back (ours and plain pynwb in a fresh process)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from facemap_nwb import probe_recording, read_recordings, write_recordings_nwb

from .conftest import CREATION

SUBJECT = {"subject_id": "m1", "species": "Mus musculus", "sex": "F", "age": "P60D"}
SESSION = {
    "session_description": "test session",
    "experimenter": ["Doe, Jane"],
    "institution": "Test Institute",
    "lab": "Test Lab",
    "experiment_description": "testing",
    "keywords": ["facemap"],
    "session_id": "s1",
}


def metadata_file(folder, name: str = "meta.yaml"):
    """A metadata YAML with SESSION and SUBJECT (no start time): what DANDI needs beside the video's."""
    import yaml

    path = Path(folder) / name
    path.write_text(yaml.safe_dump({"NWBFile": dict(SESSION), "Subject": dict(SUBJECT)}))
    return path


def serious_inspector_messages(path):
    from nwbinspector import Importance, inspect_nwbfile

    return [
        m
        for m in inspect_nwbfile(nwbfile_path=str(path))
        if m.importance in (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION, Importance.ERROR)
    ]


def test_three_files_round_trip(tmp_path, three_segments):
    paths, counts = three_segments
    recording = probe_recording(paths, name="FaceCamera", device="Camera0")
    out = write_recordings_nwb(tmp_path / "session.nwb", recording, subject=SUBJECT, **SESSION)
    (back,) = read_recordings(out)
    assert back.paths == recording.paths
    assert back.starting_frames == [0, 40, 90]
    assert back.frame_counts == list(counts)
    assert back.frame_count == 150
    assert back.rate == recording.rate == 30.0
    assert (back.height, back.width) == (120, 160)
    assert back.start_time == CREATION
    assert back.device == "Camera0"
    assert_allclose(back.duration, recording.duration)
    assert [f.codec for f in back.files] == ["h264"] * 3

    from pynwb import validate

    errors = validate(path=str(out))
    assert not (errors[0] if isinstance(errors, tuple) else errors)
    assert serious_inspector_messages(out) == []


PLAIN_PYNWB = """
import json, sys
from pynwb import NWBHDF5IO
with NWBHDF5IO(sys.argv[1], "r", load_namespaces=True) as io:
    nwb = io.read()
    video = nwb.acquisition["FaceCamera"]
    files = nwb.acquisition["VideoFiles"].to_dataframe()
    print(json.dumps({
        "modules": sorted(sys.modules.keys() & {"facemap_nwb"}),
        "external_file": list(video.external_file[:]),
        "starting_frame": [int(v) for v in video.starting_frame[:]],
        "num_samples": int(video.num_samples) if video.num_samples is not None else None,
        "rate": video.rate,
        "timestamps": None if video.timestamps is None else len(video.timestamps),
        "dimension": [int(v) for v in video.dimension[:]],
        "device": video.device.name,
        "starting_time": video.starting_time,
        "frame_count": [int(v) for v in files["frame_count"]],
        "duration": [float(v) for v in files["duration"]],
        "creation_date": list(files["creation_date"]),
        "session_start": nwb.session_start_time.isoformat(),
    }))
"""


def read_with_plain_pynwb(path) -> dict:
    result = subprocess.run([sys.executable, "-c", PLAIN_PYNWB, str(path)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_plain_pynwb_reads_every_recording_info_field(tmp_path, three_segments):
    paths, _ = three_segments
    recording = probe_recording(paths)
    out = write_recordings_nwb(tmp_path / "plain.nwb", recording, subject=SUBJECT, **SESSION)
    seen = read_with_plain_pynwb(out)
    assert seen["modules"] == [], "plain pynwb must not need facemap_nwb"
    assert seen["external_file"] == ["part1.mp4", "part2.mp4", "part3.mp4"]
    assert seen["starting_frame"] == [0, 40, 90]
    assert seen["num_samples"] == 150 and seen["timestamps"] is None
    assert seen["rate"] == 30.0
    assert seen["dimension"] == [160, 120]
    assert seen["device"] == "FaceCamera"
    assert seen["starting_time"] == 0.0
    assert seen["frame_count"] == [40, 50, 60]
    assert_allclose(seen["duration"], [40 / 30, 50 / 30, 60 / 30], rtol=1e-6)
    assert seen["creation_date"] == [CREATION.isoformat(), "", ""]
    assert seen["session_start"] == CREATION.isoformat()


def test_variable_rate_recording_writes_timestamps(tmp_path, face_video):
    times = np.concatenate([[0.0], np.cumsum(np.where(np.arange(29) % 2 == 0, 0.030, 0.045))])
    recording = probe_recording([face_video("vfr.mp4", n_frames=30, timestamps=times, creation_time=CREATION)])
    start = CREATION - timedelta(seconds=2.5)
    out = write_recordings_nwb(tmp_path / "vfr.nwb", recording, session_start_time=start, subject=SUBJECT, **SESSION)
    seen = read_with_plain_pynwb(out)
    assert seen["timestamps"] == 30 and seen["rate"] is None and seen["num_samples"] == 30
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        stored = io.read().acquisition["FaceCamera"].timestamps[:]
    assert_allclose(stored, times + 2.5, atol=1e-9, err_msg="timestamps relative to the session start")
    (back,) = read_recordings(out)
    assert not back.is_regular
    assert_allclose(back.timestamps, times, atol=1e-9)
    assert serious_inspector_messages(out) == []


def test_simultaneous_cameras_in_one_session(tmp_path, face_video):
    face = probe_recording([face_video("face.mp4", n_frames=30, creation_time=CREATION)], name="FaceCamera")
    body = probe_recording([face_video("body.mp4", n_frames=30, height=64, width=96)], name="BodyCamera")
    out = write_recordings_nwb(tmp_path / "two.nwb", [face, body], subject=SUBJECT, **SESSION)
    back = {r.name: r for r in read_recordings(out)}
    assert sorted(back) == ["BodyCamera", "FaceCamera"]
    assert (back["BodyCamera"].height, back["BodyCamera"].width) == (64, 96)
    assert back["BodyCamera"].device == "BodyCamera"
    assert serious_inspector_messages(out) == []


def test_real_video_round_trip(tmp_path, pair_video):
    recording = probe_recording([pair_video])
    out = write_recordings_nwb(tmp_path / "pair.nwb", recording, subject=SUBJECT, **SESSION)
    (back,) = read_recordings(out)
    assert back.paths == [pair_video.resolve()]
    assert (back.frame_count, back.rate, back.start_time) == (1100, 15.0, recording.start_time)
    assert serious_inspector_messages(out) == []


def test_existing_output_is_never_replaced(tmp_path, face_video):
    recording = probe_recording([face_video(n_frames=10, creation_time=CREATION)])
    out = write_recordings_nwb(tmp_path / "a.nwb", recording, subject=SUBJECT)
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="already exists.*--overwrite"):
        write_recordings_nwb(out, recording, subject=SUBJECT)
    assert out.read_bytes() == before
    write_recordings_nwb(out, recording, subject=SUBJECT, overwrite=True)
    assert_array_equal(read_recordings(out)[0].frame_counts, [10])


def test_session_start_needed_when_no_creation_time(tmp_path, face_video):
    recording = probe_recording([face_video(n_frames=10)])
    with pytest.raises(ValueError, match="session_start_time"):
        write_recordings_nwb(tmp_path / "x.nwb", recording)
    assert not (tmp_path / "x.nwb").exists()
