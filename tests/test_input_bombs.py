"""Small files that would expand without bound (YAML alias bombs, huge or deep files) are refused within
5 s of CPU and 500 MB of memory: each runs the real command in a child with the kernel's CPU limit, and the
child's own peak memory is measured (tests/limits.py)."""

from __future__ import annotations

import pytest
import yaml

from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION
from .limits import run_limited
from .sessions import one_camera_spec

CPU_SECONDS, PEAK_MB = 5, 500
START = ["--session-start", "2024-01-01T00:00:00+00:00"]


def _bomb(levels: int = 9) -> str:
    """A billion laughs: ten aliases of ten aliases of ... (10**levels values in a few hundred bytes)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_face_video(tmp_path_factory.mktemp("bomb_video") / "face.mp4", n_frames=10, creation_time=CREATION)


def _parameter_file(folder, kind: str):
    path = folder / "params.yaml"
    if kind == "alias_bomb_in_ellipse":
        text = _bomb() + "rois:\n  - {type: pupil, x: 1, y: 1, width: 10, height: 10, ellipse: *l8}\n"
        path.write_text(text)
    elif kind == "alias_bomb_in_rois":
        path.write_text(_bomb() + "rois: *l8\n")
    elif kind == "fifty_megabytes":
        with open(path, "w") as handle:
            handle.write("rois:\n")
            for _ in range(50):
                handle.write("  - {type: motion, x: 1, y: 1, width: 2, height: 2}\n" * 20_000)
    elif kind == "four_megabytes_of_values":
        path.write_text("rois: [" + ",".join(["0"] * (2 * 2**20 - 8)) + "]\n")
    elif kind == "deep_nesting":
        path.write_text("rois: " + "[" * 100_000 + "]" * 100_000 + "\n")
    elif kind == "long_line":
        path.write_text("name: " + "x" * (4 * 2**20 - 20) + "\n")
    return path


PARAMETER_BOMBS = [
    "alias_bomb_in_ellipse",
    "alias_bomb_in_rois",
    "fifty_megabytes",
    "four_megabytes_of_values",
    "deep_nesting",
    "long_line",
]


def _check(run: dict, *names: str) -> None:
    assert run["code"] == 1, f"exit {run['code']} (negative: killed by a limit); stderr: {run['stderr'][-2000:]}"
    assert "Traceback" not in run["stderr"], run["stderr"]
    assert run["stderr"].strip().count("\n") == 0, run["stderr"]
    for name in names:
        assert name in run["stderr"], run["stderr"]
    assert run["cpu_s"] <= CPU_SECONDS, f"{run['cpu_s']:.1f} s of CPU"
    assert run["peak_mb"] <= PEAK_MB, f"peak {run['peak_mb']:.0f} MB"


@pytest.mark.parametrize("kind", PARAMETER_BOMBS)
def test_parameter_file_bombs(kind, video, tmp_path):
    params = _parameter_file(tmp_path, kind)
    run = run_limited(["process", video, "-o", tmp_path / "out.nwb", "--rois", params, "--quiet", *START])
    _check(run, "params.yaml")
    assert not (tmp_path / "out.nwb").exists()


def test_metadata_alias_bomb(video, tmp_path):
    meta = tmp_path / "meta.yaml"
    meta.write_text(_bomb() + "NWBFile: {keywords: *l8}\n")
    run = run_limited(["process", video, "-o", tmp_path / "out.nwb", "--metadata", meta, "--quiet", *START])
    _check(run, "meta.yaml")


def _spec(folder, tasks) -> dict:
    raw = folder / "raw"
    raw.mkdir()
    make_face_video(raw / "face.mp4", n_frames=10, creation_time=CREATION)
    return one_camera_spec(["face.mp4"], tasks)


@pytest.mark.parametrize("where", ["spec_parameters", "roi_file", "spec_keywords"])
def test_session_spec_alias_bombs(where, tmp_path):
    task = {"task_id": 0, "mode": "trigger"}
    spec = _spec(tmp_path, [task])
    if where == "roi_file":
        (tmp_path / "rois.yaml").write_text(_bomb() + "rois: *l8\n")
        task["roi_file"] = "rois.yaml"
        text = yaml.safe_dump(spec)
    elif where == "spec_parameters":
        text = _bomb() + yaml.safe_dump(spec).replace("mode: trigger", "mode: trigger\n  parameters: {rois: *l8}")
    else:
        text = _bomb() + yaml.safe_dump(spec).replace("session_id: day1", "session_id: day1\n  keywords: *l8")
    (tmp_path / "session.yaml").write_text(text)
    run = run_limited(["run", tmp_path / "session.yaml", "--quiet"])
    _check(run, "rois.yaml" if where == "roi_file" else "session.yaml")
    assert not (tmp_path / "processed").exists()
