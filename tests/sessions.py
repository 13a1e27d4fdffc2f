"""Small sessions (videos, parameter file and session specs) for the session and batch tests."""

from __future__ import annotations

import shutil

import numpy as np
import yaml

from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION


def _video_and_tasks(raw, i: int, kind: str) -> tuple[str, list[dict]]:
    video, task = _video_and_task(raw, i, "load" if kind == "two" else kind)
    if kind == "two":  # the loaded Facemap output and a run of our own on the same video
        return video, [task, {"task_id": "rerun", "mode": "trigger", "parameter_file": "params.yaml"}]
    return video, [task]


def _video_and_task(raw, i: int, kind: str) -> tuple[str, dict]:
    """One session's video (relative to the root) and task: a synthetic video processed here ("trigger"),
    a synthetic video with an existing Facemap output ("load"; "pose" with Facemap's keypoints too), or the
    shared lp_test_vid.mp4 ("lp");
    "two" is a session with both a load and a trigger task on one synthetic video."""
    folder = raw / f"s{i}"
    folder.mkdir(exist_ok=True)
    if kind == "lp":
        from .conftest import LP_VIDEO

        shutil.copy(LP_VIDEO, folder / "face.mp4")
        return f"s{i}/face.mp4", {"task_id": 0, "mode": "trigger", "parameter_file": "params.yaml"}
    if kind in ("load", "pose"):
        from .test_facemap_model import T, hand_built_proc

        make_face_video(folder / "face.mp4", n_frames=T, height=60, width=80, seed=i, creation_time=CREATION)
        np.save(folder / "face_proc.npy", hand_built_proc(), allow_pickle=True)
        task = {"task_id": 0, "mode": "load", "proc_file": f"s{i}/face_proc.npy"}
        if kind == "pose":  # with Facemap's keypoints of the video
            from .pose_files import synthetic_keypoints, write_facemap_pose

            pose = write_facemap_pose(
                folder / "face.mp4", synthetic_keypoints(T, 60, 80), bbox=[0, 60, 0, 80], image_size=([60], [80])
            )
            task["pose_file"] = f"s{i}/{pose.name}"
        return f"s{i}/face.mp4", task
    make_face_video(folder / "face.mp4", n_frames=30 + i, seed=i, creation_time=CREATION)
    return f"s{i}/face.mp4", {"task_id": 0, "mode": "trigger", "parameter_file": "params.yaml"}


def batch_kinds() -> list[str]:
    """The six sessions of the acceptance batch: load and trigger tasks (and a session with both) on
    synthetic videos and on the shared lp_test_vid.mp4 (a synthetic one where the shared data is absent); one
    load task carries a Facemap pose file."""
    from .conftest import LP_VIDEO

    return ["trigger", "load", "lp" if LP_VIDEO.exists() else "trigger", "two", "pose", "trigger"]


def make_sessions(folder, count: int, broken: int | None = None, kinds=None) -> list:
    """``count`` session specs in ``folder`` (trigger tasks on synthetic videos unless ``kinds`` says)."""
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text("spatial_bin: 4\nmotion_svd: true\nn_components: 10\n")
    specs = []
    for i in range(count):
        video, tasks = _video_and_tasks(raw, i, (kinds or ["trigger"] * count)[i])
        if i == broken:  # decodes no frame: the session fails at run time
            (raw / video).write_bytes(b"not a video at all" * 10)
        spec = {
            "subject": {"subject_id": f"m{i}", "species": "Mus musculus", "sex": "U", "age": "P60D"},
            "session": {
                "session_id": "day1",
                "session_start_time": "2023-03-04T05:06:07+00:00",
                "session_description": "Batch test.",
                "lab": "Lab",
                "institution": "Institute",
            },
            "paths": {"roots": ["raw"], "processed": "processed"},
            "recordings": [{"name": "FaceCamera", "files": [video]}],
            "tasks": tasks,
        }
        path = folder / f"session{i}.yaml"
        path.write_text(yaml.safe_dump(spec))
        specs.append(path)
    return specs


def nwb_files(folder, suffix: str = ".nwb"):
    return sorted((folder / "processed").rglob(f"sub-*_behavior+image{suffix}"))


def one_camera_spec(files: list[str], tasks: list[dict]) -> dict:
    """A session spec of subject m1, session day1, one camera (``FaceCamera``) and the given tasks, with the
    root folder ``raw`` and the processed folder ``processed`` beside the spec."""
    return {
        "subject": {"subject_id": "m1", "species": "Mus musculus", "sex": "F", "age": "P60D"},
        "session": {
            "session_id": "day1",
            "session_start_time": "2023-03-04T05:06:07+00:00",
            "session_description": "Face camera.",
            "lab": "Lab",
            "institution": "Institute",
        },
        "paths": {"roots": ["raw"], "processed": "processed"},
        "recordings": [{"name": "FaceCamera", "files": list(files)}],
        "tasks": tasks,
    }
