"""The Dandiset layout of `run` and `batch`: each session's videos beside its NWB file, in the folder
`dandi organize --media-files-mode` uses, put there by link, copy or move; `external_file` (and the
VideoFiles table) relative to the NWB file; reruns that keep what is there; `dandi validate` on the result
(in the environment with the `dandi` extra) and a copy of the Dandiset that still finds every video."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from facemap_nwb.cli import main
from facemap_nwb.dandiset import DANDI_VIDEO_EXTENSIONS, VIDEO_MODES, DandisetVideoError
from facemap_nwb.session import SpecError, load_session_spec, run_session, session_state
from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION
from .sessions import one_camera_spec

STEM = "sub-m1_ses-day1_behavior+image"
NAMES = {"FaceCamera": ["face0.mp4", "face1.mp4"], "BodyCamera": ["body.mp4"]}
TARGETS = ["FaceCamera_external_file_0.mp4", "FaceCamera_external_file_1.mp4", "BodyCamera_external_file_0.mp4"]


def two_camera_session(folder: Path, videos: str | None = None) -> Path:
    """A spec with two cameras (face: two files; body: one) and two tasks, one per camera, with the
    Dandiset in ``folder/dandiset``."""
    raw = folder / "raw" / "m1" / "day1"
    raw.mkdir(parents=True)
    for i in range(2):
        make_face_video(raw / f"face{i}.mp4", n_frames=20, height=48, width=64, first_frame=20 * i,
                        creation_time=CREATION)  # fmt: skip
    make_face_video(raw / "body.mp4", n_frames=40, height=40, width=56, seed=3, creation_time=CREATION)
    face = {"task_id": "face", "mode": "trigger", "recordings": ["FaceCamera"],
            "parameters": {"spatial_bin": 4, "n_components": 5, "rois": [
                {"type": "motion", "name": "whiskers", "x": 4, "y": 4, "width": 24, "height": 16}]}}  # fmt: skip
    body = {"task_id": "body", "mode": "trigger", "recordings": ["BodyCamera"],
            "parameters": {"spatial_bin": 4, "n_components": 5, "movie_svd": True}}  # fmt: skip
    spec = one_camera_spec([f"m1/day1/{n}" for n in NAMES["FaceCamera"]], [face, body])
    spec["recordings"].append({"name": "BodyCamera", "files": ["m1/day1/body.mp4"]})
    spec["paths"]["output"] = "dandiset"
    if videos is not None:
        spec["videos"] = videos
    path = folder / "session.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def sources(folder: Path) -> list[Path]:
    raw = folder / "raw" / "m1" / "day1"
    return [raw / n for names in NAMES.values() for n in names]


def external_files(nwb_path: Path) -> dict[str, list[str]]:
    """Each ImageSeries' external_file, and the VideoFiles table's columns of that recording, read with pynwb."""
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(nwb_path), "r", load_namespaces=True) as io:
        nwb = io.read()
        series = {name: list(nwb.acquisition[name].external_file[:]) for name in NAMES}
        rows = nwb.acquisition["VideoFiles"].to_dataframe()
        columns = list(rows.columns)
        starts = {name: [int(v) for v in nwb.acquisition[name].starting_frame[:]] for name in NAMES}
        table = {name: [int(v) for v in rows[rows["recording"] == name]["starting_frame"]] for name in NAMES}
    return {"series": series, "columns": columns, "starts": starts, "table": table}


def check_resolves(nwb_path: Path) -> list[Path]:
    """Every external_file, opened relative to the NWB file (wherever it is now), exists and probes."""
    from facemap_nwb.video import probe_video

    found = []
    paths = external_files(nwb_path)["series"]
    for name, files in paths.items():
        for relative in files:
            assert not Path(relative).is_absolute() and ".." not in Path(relative).parts, relative
            video = nwb_path.parent / relative
            assert video.is_file(), f"{name}: {relative} does not resolve beside {nwb_path}"
            assert probe_video(video).frame_count in (20, 40)
            found.append(video)
    return found


def dandi_violations(nwb_path: Path) -> list:
    """nwbinspector's DANDI configuration: critical messages, best-practice violations and errors."""
    from nwbinspector import Importance, inspect_nwbfile, load_config

    serious = (Importance.CRITICAL, Importance.BEST_PRACTICE_VIOLATION, Importance.ERROR)
    messages = inspect_nwbfile(nwbfile_path=str(nwb_path), config=load_config("dandi"))
    return [m for m in messages if m.importance in serious]


def _states(paths) -> list[tuple]:
    return [(p.lstat().st_ino, p.lstat().st_mtime_ns, os.path.islink(p)) for p in paths]


@pytest.mark.parametrize("mode", list(VIDEO_MODES))
def test_each_mode_puts_the_videos_beside_the_nwb_file(tmp_path, mode):
    path = two_camera_session(tmp_path, videos=mode)
    originals = {s: s.read_bytes() for s in sources(tmp_path)}
    result = run_session(path)
    nwb = result.nwb_path
    assert nwb == tmp_path / "dandiset" / "sub-m1" / f"{STEM}.nwb"
    media = nwb.parent / STEM  # dandi organize: the NWB file's name without .nwb
    assert result.videos == [media / t for t in TARGETS]
    assert sorted(p.name for p in media.iterdir()) == sorted(TARGETS), "nothing else in the video folder"
    for source, target in zip(sources(tmp_path), result.videos):
        assert target.read_bytes() == originals[source]
        if mode == "symlink":
            assert target.is_symlink() and os.readlink(target) == str(source.resolve())
        elif mode == "hardlink":
            assert not target.is_symlink() and os.path.samefile(source, target)
        elif mode == "copy":
            assert not target.is_symlink() and not os.path.samefile(source, target) and source.exists()
        else:
            assert not source.exists() and not target.is_symlink(), "move: the video left its root"
    paths = external_files(nwb)
    assert paths["series"] == {
        "FaceCamera": [f"{STEM}/{t}" for t in TARGETS[:2]],
        "BodyCamera": [f"{STEM}/{TARGETS[2]}"],
    }
    assert "external_file" not in paths["columns"], "paths are stored once, in the ImageSeries"
    assert paths["table"] == paths["starts"], "each VideoFiles row names its file by starting_frame"
    check_resolves(nwb)
    assert dandi_violations(nwb) == []
    for task_folder in result.task_folders:  # the caches' videos resolve too (with move: in the Dandiset)
        for cache in task_folder.glob("results-*.nwb"):
            assert dandi_violations(cache) == [], cache

    # A rerun reuses everything and leaves the videos as they are (nothing copied, linked or moved again).
    before = _states(result.videos)
    mtime = nwb.stat().st_mtime_ns
    assert session_state(load_session_spec(path)) == "current"
    again = run_session(path)
    assert again.reused and nwb.stat().st_mtime_ns == mtime and _states(again.videos) == before
    # --overwrite rewrites the NWB file but still keeps the videos that are in place.
    rewritten = run_session(path, overwrite=True)
    assert rewritten.reused_tasks == ["face", "body"] and _states(rewritten.videos) == before
    assert external_files(nwb) == paths
    check_resolves(nwb)

    # The Dandiset copied elsewhere, links followed (what `dandi upload` does): every video is there.
    copied = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "dandiset", copied, symlinks=False)
    moved_nwb = copied / "sub-m1" / f"{STEM}.nwb"
    assert all(not p.is_symlink() for p in check_resolves(moved_nwb))
    if mode == "symlink":  # links kept as links: absolute, so they still lead to the videos on this machine
        kept = tmp_path / "links"
        shutil.copytree(tmp_path / "dandiset", kept, symlinks=True)
        assert all(p.is_symlink() for p in check_resolves(kept / "sub-m1" / f"{STEM}.nwb"))


def test_the_cli_option_overrides_the_spec(tmp_path, capsys):
    path = two_camera_session(tmp_path, videos="copy")
    assert main(["run", str(path), "--quiet", "--videos", "hardlink"]) == 0
    out = capsys.readouterr().out
    media = tmp_path / "dandiset" / "sub-m1" / STEM
    assert f"videos: 3 file(s) in {media}" in out
    assert all(os.path.samefile(s, media / t) for s, t in zip(sources(tmp_path), TARGETS))
    assert main(["run", str(path), "--videos", "sideways"]) == 1
    assert "--videos" in capsys.readouterr().err


def test_a_file_in_the_dandiset_is_never_replaced_unasked(tmp_path, capsys):
    path = two_camera_session(tmp_path)
    media = tmp_path / "dandiset" / "sub-m1" / STEM
    media.mkdir(parents=True)
    (media / TARGETS[1]).write_bytes(b"someone else's video")
    assert main(["run", str(path), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(media / TARGETS[1]) in err and "--overwrite" in err
    assert not (tmp_path / "processed").exists(), "refused before any work"
    assert not (media / TARGETS[0]).exists(), "nothing was put in the Dandiset"
    assert main(["run", str(path), "--quiet", "--overwrite"]) == 0
    assert (media / TARGETS[1]).is_symlink() and check_resolves(media.parent / f"{STEM}.nwb")


def test_another_mode_on_a_rerun_needs_overwrite(tmp_path, capsys):
    """The mode is part of the session's stamp: symlinks become copies only with --overwrite, and the tasks'
    results are reused."""
    path = two_camera_session(tmp_path)
    first = run_session(path)
    assert all(p.is_symlink() for p in first.videos)
    assert session_state(load_session_spec(path, videos="copy")) == "stale"
    assert main(["run", str(path), "--quiet", "--videos", "copy"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert all(p.is_symlink() for p in first.videos), "left as they were"
    again = run_session(path, videos="copy", overwrite=True)
    assert again.reused_tasks == ["face", "body"]
    assert all(not p.is_symlink() and p.is_file() for p in again.videos)
    assert session_state(load_session_spec(path, videos="copy")) == "current"


def test_a_video_gone_from_the_dandiset_is_put_back(tmp_path):
    from facemap_nwb.session import load_session_spec as load

    path = two_camera_session(tmp_path, videos="copy")
    result = run_session(path)
    result.videos[2].unlink()
    assert session_state(load(path)) == "unplaced"
    assert run_session(path).reused and result.videos[2].is_file()
    assert session_state(load(path)) == "current"


def test_moved_videos_are_found_in_the_dandiset(tmp_path, capsys):
    path = two_camera_session(tmp_path, videos="move")
    first = run_session(path)
    assert not any(s.exists() for s in sources(tmp_path))
    spec = load_session_spec(path)
    assert [f for r in spec.recordings for f in r["files"]] == first.videos
    assert session_state(spec) == "current"
    assert main(["run", str(path), "--quiet"]) == 0 and "reused cached results" in capsys.readouterr().out
    # Another mode cannot find them at their roots any more: the message says where they went.
    with pytest.raises(SpecError, match=r"recordings.0.files.0: .*moved there by a run with videos: move"):
        load_session_spec(path, videos="symlink")


def test_move_refuses_a_video_named_twice(tmp_path):
    path = two_camera_session(tmp_path, videos="move")
    spec = yaml.safe_load(path.read_text())
    spec["recordings"][1]["files"] = ["m1/day1/face0.mp4"]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match=r"videos: .*named more than once.*choose videos: symlink"):
        load_session_spec(path)
    assert load_session_spec(path, videos="copy").videos == "copy"


def test_hardlinks_across_file_systems_are_refused_before_work(tmp_path, monkeypatch):
    import facemap_nwb.dandiset as dandiset

    path = two_camera_session(tmp_path, videos="hardlink")
    real = dandiset._device
    raw = str(tmp_path / "raw")
    monkeypatch.setattr(dandiset, "_device", lambda p: real(p) + str(p).startswith(raw))  # the videos' own disk
    with pytest.raises(DandisetVideoError, match=r"different file systems.*Choose videos: symlink or copy"):
        run_session(path)
    assert not (tmp_path / "processed").exists()


@pytest.mark.parametrize("case", ["extension", "names alike"])
def test_spec_videos_dandi_cannot_take(tmp_path, case):
    path = two_camera_session(tmp_path)
    spec = yaml.safe_load(path.read_text())
    if case == "extension":
        shutil.copy(tmp_path / "raw" / "m1" / "day1" / "body.mp4", tmp_path / "raw" / "m1" / "day1" / "body.m4v")
        spec["recordings"][1]["files"] = ["m1/day1/body.m4v"]
        pattern = r"recordings.1.files.0: .*extension '.m4v', which DANDI does not upload as a video"
    else:
        spec["recordings"][1]["name"] = "Face Camera"
        spec["recordings"][0]["name"] = "Face-Camera"
        spec["tasks"][0]["recordings"], spec["tasks"][1]["recordings"] = ["Face-Camera"], ["Face Camera"]
        pattern = r"recordings: the recording names \['Face Camera', 'Face-Camera'\] give their videos the same names"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError, match=pattern):
        load_session_spec(path)


def test_upper_case_extensions_become_lower_case(tmp_path):
    path = two_camera_session(tmp_path)
    raw = tmp_path / "raw" / "m1" / "day1"
    (raw / "body.mp4").rename(raw / "body.MP4")
    spec = yaml.safe_load(path.read_text())
    spec["recordings"][1]["files"] = ["m1/day1/body.MP4"]
    path.write_text(yaml.safe_dump(spec))
    assert load_session_spec(path).video_targets(1)[0].name == "BodyCamera_external_file_0.mp4"


def test_video_paths_are_stored_once(tmp_path, three_segments):
    """Given paths are stored verbatim in the ImageSeries, the only place a path is kept, and read back from
    there; the VideoFiles rows point to them by starting_frame."""
    from datetime import datetime, timezone

    from pynwb import NWBFile

    from facemap_nwb.nwb.recording import add_recording
    from facemap_nwb.video import probe_recording

    paths, _ = three_segments
    recording = probe_recording(paths, name="FaceCamera")
    nwbfile = NWBFile("test", "id", datetime(2023, 1, 1, tzinfo=timezone.utc))
    given = ["videos/a.mp4", "videos/b.mp4", "videos/c.mp4"]
    series = add_recording(nwbfile, recording, nwb_dir=tmp_path, external_file=given)
    assert list(series.external_file) == given
    assert "external_file" not in nwbfile.acquisition["VideoFiles"].colnames
    assert list(nwbfile.acquisition["VideoFiles"]["starting_frame"].data) == list(series.starting_frame)
    from facemap_nwb.nwb.recording import read_recordings_from_nwbfile

    (back,) = read_recordings_from_nwbfile(nwbfile, nwb_dir=tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in back.paths] == given
    # A facemap-nwb 0.1 file also has a VideoFiles.external_file column (stale after dandi organize): ignored.
    table = nwbfile.acquisition["VideoFiles"]
    table.add_column(name="external_file", description="old copy of the paths", data=["../raw/old.mp4"] * 3)
    (back,) = read_recordings_from_nwbfile(nwbfile, nwb_dir=tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in back.paths] == given
    with pytest.raises(ValueError, match="has 3 file\\(s\\) but 2 external_file"):
        add_recording(NWBFile("t", "i", datetime(2023, 1, 1, tzinfo=timezone.utc)), recording, nwb_dir=None,
                      external_file=given[:2])  # fmt: skip


def test_the_spec_schema_lists_the_modes():
    from typing import get_args

    from facemap_nwb.models import SessionModel

    assert set(get_args(SessionModel.model_fields["videos"].annotation)) == set(VIDEO_MODES)
    assert SessionModel.model_fields["videos"].default == "symlink"


# ----------------------------------------------------------------------------------- with the dandi extra


@pytest.mark.parametrize("mode", ["symlink", "copy"])
def test_session_to_dandi_validate(tmp_path, mode):
    """Spec -> run -> Dandiset -> `dandi validate`: no error and no warning; then the Dandiset copied
    elsewhere (links followed) still finds every video, read back with pynwb."""
    pytest.importorskip("dandi", reason="needs the 'dandi' extra (an environment without Facemap: numpy 2)")
    from dandi.consts import VIDEO_FILE_EXTENSIONS

    assert set(DANDI_VIDEO_EXTENSIONS) == set(VIDEO_FILE_EXTENSIONS), "dandi's video extensions changed"
    path = two_camera_session(tmp_path, videos=mode)
    assert main(["run", str(path), "--quiet"]) == 0
    dandiset = tmp_path / "dandiset"
    (dandiset / "dandiset.yaml").write_text("identifier: 'DANDI:000000'\nname: test\ndescription: facemap-nwb test\n")
    dandi = os.path.join(os.path.dirname(sys.executable), "dandi")
    run = subprocess.run([dandi, "validate", str(dandiset)], capture_output=True, text=True, timeout=600)
    output = run.stdout + run.stderr
    assert run.returncode == 0 and "No errors found" in output, output
    assert "WARNING" not in output.upper(), output
    nwb = dandiset / "sub-m1" / f"{STEM}.nwb"
    assert dandi_violations(nwb) == []
    from dandi.files import find_dandi_files

    assets = sorted(Path(f.filepath).relative_to(dandiset).as_posix() for f in find_dandi_files(dandiset))
    assert [a for a in assets if a.endswith(".mp4")] == sorted(f"sub-m1/{STEM}/{t}" for t in TARGETS), (
        "dandi upload takes every video"
    )
    copied = tmp_path / "copied"
    shutil.copytree(dandiset, copied, symlinks=False)
    aside = tmp_path / "raw-elsewhere"
    (tmp_path / "raw").rename(aside)  # the copy needs nothing outside itself
    try:
        assert len(check_resolves(copied / "sub-m1" / f"{STEM}.nwb")) == 3
    finally:
        aside.rename(tmp_path / "raw")


def test_dandi_organize_leaves_no_stale_path(tmp_path, face_video):
    """`dandi organize --update-external-file-paths` rewrites each ImageSeries' external_file; the paths are
    stored nowhere else, so plain pynwb and read_facemap_nwb find the moved videos (dandi itself runs here)."""
    pytest.importorskip("dandi", reason="needs the 'dandi' extra (an environment without Facemap: numpy 2)")
    from pynwb import NWBHDF5IO

    from facemap_nwb.nwb.io import read_facemap_nwb, read_recordings

    raw = tmp_path / "raw"
    raw.mkdir()
    video = face_video("raw/face.mp4", n_frames=30, creation_time=CREATION)
    meta = tmp_path / "meta.yaml"
    meta.write_text(yaml.safe_dump({
        "NWBFile": {"session_description": "face video", "identifier": "organize-test", "session_id": "day1"},
        "Subject": {"subject_id": "m1", "species": "Mus musculus", "sex": "F", "age": "P60D"},
    }))  # fmt: skip
    source = tmp_path / "out" / "session.nwb"
    source.parent.mkdir()
    assert main(["process", str(video), "-o", str(source), "--metadata", str(meta), "--quiet"]) == 0
    dandiset = tmp_path / "dandiset"
    dandiset.mkdir()
    (dandiset / "dandiset.yaml").write_text("identifier: 'DANDI:000000'\nname: test\ndescription: facemap-nwb test\n")
    dandi = os.path.join(os.path.dirname(sys.executable), "dandi")
    command = [dandi, "organize", "-d", str(dandiset), "--update-external-file-paths", "--files-mode", "copy",
               "--media-files-mode", "copy",
               str(source)]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    (organized,) = sorted(dandiset.rglob("*.nwb"))
    with NWBHDF5IO(str(organized), "r", load_namespaces=True) as io:
        nwb = io.read()
        (moved,) = list(nwb.acquisition["FaceCamera"].external_file[:])
        assert "external_file" not in nwb.acquisition["VideoFiles"].colnames, "no second copy of the path"
    assert (organized.parent / moved).is_file() and (organized.parent / moved).parent != raw, moved
    (raw / "face.mp4").unlink()  # only the Dandiset's copies are left
    source.unlink()
    (recording,) = read_recordings(organized)
    assert recording.paths == [(organized.parent / moved).resolve()]
    assert read_facemap_nwb(organized).frame_count == 30
