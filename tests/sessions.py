"""Small synthetic sessions (videos, parameter file and session specs) for the session and batch tests."""

from __future__ import annotations

import yaml

from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION


def make_sessions(folder, count: int, broken: int | None = None) -> list:
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (folder / "params.yaml").write_text("spatial_bin: 4\nmotion_svd: true\nn_components: 10\n")
    specs = []
    for i in range(count):
        video = raw / f"s{i}" / "face.mp4"
        video.parent.mkdir(exist_ok=True)
        make_face_video(video, n_frames=30 + i, seed=i, creation_time=CREATION)
        if i == broken:  # decodes no frame: the session fails at run time
            video.write_bytes(b"not a video at all" * 10)
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
            "recordings": [{"name": "FaceCamera", "files": [f"s{i}/face.mp4"]}],
            "tasks": [{"task_id": 0, "mode": "trigger", "parameter_file": "params.yaml"}],
        }
        path = folder / f"session{i}.yaml"
        path.write_text(yaml.safe_dump(spec))
        specs.append(path)
    return specs


def nwb_files(folder):
    return sorted((folder / "processed").rglob("sub-*_behavior+image.nwb"))
