"""The README's examples run as tests, and its set-up commands are the ones CI runs."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose

from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION, REPO
from .test_facemap_model import T, hand_built_proc

README = (REPO / "README.md").read_text(encoding="utf-8")


def code_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_readme_starts_with_the_two_setup_commands():
    first_two = code_blocks("bash")[:2]
    assert "facemap-nwb demo" in first_two[0]
    assert "pytest" in first_two[1]
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert first_two[1].strip() in ci, ".ci/run must run the README's test command exactly"


def test_python_examples_run_in_order(tmp_path, monkeypatch):
    blocks = code_blocks("python")
    assert len(blocks) >= 2
    script = tmp_path / "readme_examples.py"
    script.write_text("\n".join(blocks), encoding="utf-8")
    # The last example reads the demo's file, made as the README says: facemap-nwb demo -o demo
    demo = subprocess.run(
        [sys.executable, "-m", "facemap_nwb", "demo", "-o", "demo"], cwd=tmp_path, capture_output=True
    )
    assert demo.returncode == 0, demo.stderr
    # The converter example's inputs: a 40-frame 60 x 80 video at 30 frames/s and a Facemap-shaped dict for it.
    make_face_video(tmp_path / "face.mp4", n_frames=T, height=60, width=80, creation_time=CREATION)
    np.save(tmp_path / "face_proc.npy", hand_built_proc(), allow_pickle=True)
    from .pose_files import synthetic_keypoints, write_facemap_pose

    write_facemap_pose(
        tmp_path / "face.mp4", synthetic_keypoints(T, 60, 80), bbox=[0, 60, 0, 80], image_size=([60], [80])
    )
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"README example failed:\n{result.stderr}")
    assert result.stdout.splitlines()[0] == "120 [0, 60] 30.0"
    assert "['part0.mp4', 'part1.mp4'] [0, 60] 120 30.0" in result.stdout
    # Whisker ROI y 36..87, x 100..155 at bin 2 by Facemap's rule: y bins 18..42 (arange(18, 87 // 2)),
    # x bins 50..77 (arange(50, 155 / 2)): 50 components of 25 x 28 bins.
    assert "(50, 25, 28)" in result.stdout, "the demo's whisker masks"
    assert "(300, 2)" in result.stdout, "the demo's running trace"
    # The converter example: one ImageSeries, linked by the task; the interpolation through (0 s, 12.5 s) and
    # (1.3 s, 13.8015 s) starts at 12.5 s with frames 1.3015 / 1.3 times as far apart: 30 * 1.3 / 1.3015 Hz.
    assert "['FaceCamera'] ['FaceCamera']" in result.stdout
    assert "15 FaceCamera (40, 2) pixels" in result.stdout, "the pose example: 15 keypoints of 40 frames"
    start, rate = next(line for line in result.stdout.splitlines() if line.startswith("12.5 ")).split()
    assert_allclose([float(start), float(rate)], [12.5, 30 * 1.3 / 1.3015], rtol=1e-9)
