"""A session spec task with Facemap's pose file: read and checked before any work, written as ndx-pose beside the
task's results, drawn on its summary, and part of what the session's file is stamped with (not the task's cache)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import yaml
from numpy.testing import assert_array_equal

from facemap_nwb.nwb.io import read_facemap_nwb
from facemap_nwb.session import run_session

from .pose_files import synthetic_keypoints, write_facemap_pose
from .sessions import make_sessions


@pytest.fixture
def spec(tmp_path):
    (path,) = make_sessions(tmp_path, 1, kinds=["pose"])
    return path


def test_pose_task_round_trip(spec):
    first = run_session(spec)
    results = read_facemap_nwb(first.nwb_path)
    (pose,) = results.keypoints
    assert_array_equal(pose.positions, synthetic_keypoints(40, 60, 80)[:, :, :2])
    assert pose.video_name == "FaceCamera" and pose.bbox == (0, 60, 0, 80)
    assert first.summary_pngs[0].exists()
    again = run_session(spec)  # nothing changed: reused, not rewritten
    assert again.reused_tasks == ["0"]

    # A new pose file rewrites the session's file; the task's cached results are reused.
    video = spec.parent / "raw" / "s0" / "face.mp4"
    moved = synthetic_keypoints(40, 60, 80)
    moved[:, :, 0] += 1.0
    pose_file = write_facemap_pose(video, moved, bbox=[0, 60, 0, 80], image_size=([60], [80]))
    stat = pose_file.stat()
    os.utime(pose_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    third = run_session(spec, overwrite=True)
    assert third.reused_tasks == ["0"]
    (pose,) = read_facemap_nwb(third.nwb_path).keypoints
    assert_array_equal(pose.positions[:, :, 0], moved[:, :, 0])


def test_bad_pose_file_stops_the_session_before_work(spec):
    raw = spec.parent / "raw" / "s0"
    pose = raw / "face_FacemapPose.h5"
    pose.write_bytes(pose.read_bytes()[:100])
    with pytest.raises(ValueError, match="face_FacemapPose.h5"):
        run_session(spec)
    assert not list((spec.parent / "processed").rglob("*.nwb"))


def test_pose_of_another_video_is_refused(spec):
    video = spec.parent / "raw" / "s0" / "face.mp4"
    write_facemap_pose(video, synthetic_keypoints(30, 60, 80), bbox=[0, 60, 0, 80], image_size=([60], [80]))
    with pytest.raises(ValueError, match=r"task '0'.*cover 30 frames but the video"):
        run_session(spec)


def test_pose_file_path_is_checked_with_the_spec(spec):
    raw = yaml.safe_load(spec.read_text())
    raw["tasks"][0]["pose_file"] = "s0/missing_FacemapPose.h5"
    spec.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"tasks\.0\.pose_file"):
        run_session(spec)
    assert np.all([not p.exists() for p in (spec.parent / "processed").rglob("*.nwb")])


def test_two_tasks_with_pose_files_for_one_camera_are_refused(spec):
    raw = yaml.safe_load(spec.read_text())
    raw["tasks"].append(dict(raw["tasks"][0], task_id="again"))
    spec.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"tasks '0' and 'again' both give a pose_file for the camera 'FaceCamera'"):
        run_session(spec)
    assert not list((spec.parent / "processed").rglob("*.nwb"))


def test_a_new_metadata_pickle_rewrites_the_file(spec):
    import pickle

    first = run_session(spec)
    assert read_facemap_nwb(first.nwb_path).keypoints[0].batch_size == 1
    meta = spec.parent / "raw" / "s0" / "face_FacemapPose_metadata.pkl"
    values = pickle.loads(meta.read_bytes())
    meta.write_bytes(pickle.dumps(dict(values, batch_size=8)))
    stat = meta.stat()
    os.utime(meta, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    again = run_session(spec, overwrite=True)
    assert again.reused_tasks == ["0"]  # the task's results are not recomputed
    assert read_facemap_nwb(again.nwb_path).keypoints[0].batch_size == 8
