"""Root folders and the processed folder (element-facemap's get_facemap_*_dir and output-folder rule)."""

from __future__ import annotations

import pytest

from facemap_nwb import DataPaths


@pytest.fixture
def layout(tmp_path):
    raw1, raw2, processed = tmp_path / "raw1", tmp_path / "raw2", tmp_path / "processed"
    (raw2 / "mouse1" / "day1").mkdir(parents=True)
    (raw2 / "mouse1" / "day1" / "face.mp4").write_bytes(b"x")
    raw1.mkdir()
    return raw1, raw2, processed


def test_find_searches_roots_in_order(layout):
    raw1, raw2, processed = layout
    paths = DataPaths(roots=[raw1, raw2], processed=processed)
    assert paths.find("mouse1/day1/face.mp4") == raw2 / "mouse1" / "day1" / "face.mp4"
    (raw1 / "mouse1" / "day1").mkdir(parents=True)
    (raw1 / "mouse1" / "day1" / "face.mp4").write_bytes(b"y")
    assert paths.find("mouse1/day1/face.mp4") == raw1 / "mouse1" / "day1" / "face.mp4"


def test_split_and_relative(layout):
    raw1, raw2, _ = layout
    paths = DataPaths(roots=[raw1, raw2])
    video = raw2 / "mouse1" / "day1" / "face.mp4"
    assert paths.split(video) == (raw2, video.relative_to(raw2))
    assert paths.relative(str(video)).as_posix() == "mouse1/day1/face.mp4"


def test_output_dir_inferred(layout):
    raw1, raw2, processed = layout
    paths = DataPaths(roots=[raw1, raw2], processed=processed)
    expected = processed / "mouse1" / "day1" / "facemap_3"
    assert paths.output_dir("mouse1/day1/face.mp4", task_id=3) == expected
    assert paths.output_dir(raw2 / "mouse1" / "day1" / "face.mp4", task_id=3) == expected
    # Without a processed folder results go under the first root.
    assert DataPaths(roots=[raw2]).output_dir("mouse1/day1/face.mp4", 0) == raw2 / "mouse1" / "day1" / "facemap_0"


def test_errors_name_the_path_and_the_fix(layout, tmp_path):
    raw1, raw2, _ = layout
    paths = DataPaths(roots=[raw1, raw2])
    with pytest.raises(FileNotFoundError, match=r"'mouse9/face.mp4' is not under any root.*raw1.*raw2"):
        paths.find("mouse9/face.mp4")
    with pytest.raises(ValueError, match="under no root folder"):
        paths.split(tmp_path / "elsewhere.mp4")
    with pytest.raises(FileNotFoundError, match="Root folder .*missing.* does not exist"):
        DataPaths(roots=[tmp_path / "missing"]).check()
    with pytest.raises(ValueError, match=r"Unknown keys \['root'\]"):
        DataPaths.from_dict({"root": "x"})
    with pytest.raises(ValueError, match="No root folders"):
        DataPaths().processed_root


def test_from_dict(layout):
    raw1, raw2, processed = layout
    paths = DataPaths.from_dict({"roots": [str(raw1), str(raw2)], "processed": str(processed)})
    assert paths.roots == (raw1, raw2) and paths.processed == processed
    paths.check()
