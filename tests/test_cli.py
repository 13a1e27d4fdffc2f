"""The command line: info (table and JSON), recording, demo (its default folder, --overwrite, summary PNG), plot."""

from __future__ import annotations

import json
import subprocess
import sys

from numpy.testing import assert_allclose

from facemap_nwb import read_recordings
from facemap_nwb.cli import main

from .conftest import CREATION


def test_info_json(face_video, capsys):
    path = face_video(n_frames=45, rate=15.0, creation_time=CREATION)
    assert main(["info", "--json", str(path)]) == 0
    (row,) = json.loads(capsys.readouterr().out)["files"]
    assert (row["frame_count"], row["width"], row["height"], row["codec"]) == (45, 160, 120, "h264")
    assert_allclose([row["rate"], row["duration"]], [15.0, 3.0])
    assert row["creation_time"] == CREATION.isoformat()
    assert row["regular"] is True


def test_info_table_and_recording(three_segments, capsys):
    paths, _ = three_segments
    assert main(["info", "--recording", "Face", *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == [
        "path",
        "width",
        "height",
        "frame_count",
        "rate",
        "duration",
        "creation_time",
        "codec",
        "pixel_format",
    ]
    assert "part2.mp4" in out and "recording 'Face': 3 file(s), 150 frames, starting frames [0, 40, 90]" in out


def test_recording_command_with_metadata(tmp_path, three_segments, capsys):
    paths, _ = three_segments
    meta = tmp_path / "meta.yaml"
    meta.write_text(
        "NWBFile:\n  session_description: cli test\n  institution: Lab\n"
        "Subject:\n  subject_id: m7\n  species: Mus musculus\n  sex: M\n  age: P30D\n"
    )
    out = tmp_path / "rec.nwb"
    assert main(["recording", *map(str, paths), "-o", str(out), "--metadata", str(meta), "--name", "Face"]) == 0
    (back,) = read_recordings(out)
    assert back.name == "Face" and back.frame_count == 150
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert nwb.subject.subject_id == "m7" and nwb.institution == "Lab"
        assert nwb.session_start_time == CREATION
    assert main(["recording", str(paths[0]), "-o", str(out)]) == 1  # never overwritten
    assert "already exists" in capsys.readouterr().err


def test_demo_console_script(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "facemap_nwb", "demo", "--output-dir", str(tmp_path)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    import numpy as np
    from pynwb import NWBHDF5IO, validate

    from facemap_nwb.nwb.io import read_facemap_nwb
    from facemap_nwb.synthetic import BLINK_LENGTH, BLINK_PERIOD, default_creation_time, face_frame

    from .conftest import opencv_gray_frames
    from .test_recording_nwb import serious_inspector_messages

    nwb = tmp_path / "sub-demo_ses-demo_behavior+image.nwb"
    # The demo prints "pynwb validation: passed" whatever happened: validate and inspect the file here.
    errors = validate(path=str(nwb))
    assert list(errors[0] if isinstance(errors, tuple) else errors) == [], "pynwb's validator finds errors"
    assert serious_inspector_messages(nwb) == []
    # The two videos are the synthetic face movie (two files of 150 frames, 160 x 120, 30 frames/s) ...
    for index in (1, 2):
        assert f"made face_part{index}.mp4: 150 frames, 160x120, 30 frames/s" in run.stdout, run.stdout
        frames = opencv_gray_frames(tmp_path / f"face_part{index}.mp4")
        assert frames.shape == (150, 120, 160), f"face_part{index}.mp4 as OpenCV decodes it"
        first = face_frame(150 * (index - 1)).astype(float)
        error = np.abs(frames[0].astype(float) - first).mean()
        assert error < 4.0, f"face_part{index}.mp4 does not start with frame {150 * (index - 1)} ({error:.1f} levels)"
    # ... and the file says so, read back with plain pynwb.
    with NWBHDF5IO(str(nwb), "r", load_namespaces=True) as io:
        file = io.read()
        camera = file.acquisition["FaceCamera"]
        assert list(camera.external_file[:]) == ["face_part1.mp4", "face_part2.mp4"]
        assert list(camera.starting_frame[:]) == [0, 150]
        assert (camera.format, camera.rate, camera.starting_time) == ("external", 30.0, 0.0)
        assert list(camera.dimension[:]) == [160, 120]
        assert file.session_start_time == default_creation_time(), "the first video's creation time"
        assert file.subject.subject_id == "demo"
        task = file.processing["behavior"]["FacemapTask"]
        names = task.regions["roi_name"][:]
        energy = [s for s in task.facemap_time_series.values() if s.signal == "motion_energy"]
        assert sorted(names[s.region.data[0]] for s in energy) == ["full_frame", "whiskers"]
        for series in energy:
            assert (series.data.shape, series.rate, series.starting_time) == ((300,), 30.0, 0.0)
    (recording,) = read_recordings(nwb)
    assert recording.frame_counts == [150, 150]
    # The facial signals follow the synthetic face's known dynamics (facemap_nwb.synthetic).
    results = read_facemap_nwb(nwb)
    t = np.arange(300)
    open_eye = ~((t % BLINK_PERIOD < BLINK_LENGTH) & (t >= BLINK_PERIOD))
    radius_squared = (0.55 + 0.25 * np.sin(2 * np.pi * t / 40.0)) ** 2
    area = results.pupils[0].area
    assert np.corrcoef(area[open_eye], radius_squared[open_eye])[0, 1] > 0.95, "pupil area does not follow the pupil"
    (blink,) = results.blinks.values()
    assert blink[~open_eye].max() < 0.2 * np.median(blink[open_eye]), "blinks do not show in the blink trace"
    assert {r.name for r in results.regions} == {"full_frame", "whiskers", "pupil", "eyelid", "wheel"}
    assert results.engine == "facemap_nwb.native" and len(results.motion_svd) == len(results.movie_svd) == 2
    assert [s.n_components for s in results.motion_svd] == [50, 50], "the demo's n_components"
    again = subprocess.run(
        [sys.executable, "-m", "facemap_nwb", "demo", "-o", str(tmp_path)], capture_output=True, text=True
    )
    assert again.returncode == 1 and "already exists" in again.stderr


def test_demo_writes_into_demo_and_never_overwrites(tmp_path, monkeypatch, capsys):
    import matplotlib.image

    from facemap_nwb.nwb.io import read_facemap_nwb

    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--help"]) == 0
    assert "default: 'demo' in the current folder" in " ".join(capsys.readouterr().out.split())
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    nwb = tmp_path / "demo" / "sub-demo_ses-demo_behavior+image.nwb"
    png = nwb.with_suffix(".png")
    assert nwb.is_file() and png.is_file(), "the default folder is 'demo' in the current folder"
    assert "Wrote demo/sub-demo_ses-demo_behavior+image.png" in out, "the demo reports its summary PNG"
    assert matplotlib.image.imread(png)[..., :3].std() > 0.05, "the summary image is blank"
    before = {p: p.read_bytes() for p in (nwb, png)}
    assert main(["demo"]) == 1, "a second run without --overwrite is refused"
    captured = capsys.readouterr()
    (line,) = captured.err.splitlines()
    assert line.startswith("facemap-nwb demo: error:") and "already exists" in line
    assert "sub-demo_ses-demo_behavior+image.nwb" in line and "--overwrite" in line
    assert captured.out == "" and {p: p.read_bytes() for p in before} == before, "nothing was touched"
    for path in (nwb, png):  # damage both: --overwrite must replace them with good files
        path.write_bytes(b"not the demo's file")
    assert main(["demo", "--overwrite"]) == 0
    capsys.readouterr()
    with read_facemap_nwb(nwb) as results:
        assert {r.name for r in results.regions} == {"full_frame", "whiskers", "pupil", "eyelid", "wheel"}
    assert matplotlib.image.imread(png)[..., :3].std() > 0.05
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [
        "face_part1.mp4",
        "face_part2.mp4",
        "sub-demo_ses-demo_behavior+image.nwb",
        "sub-demo_ses-demo_behavior+image.png",
    ]


def test_plot_summary_png(tmp_path):
    from facemap_nwb.demo import run_demo

    result = run_demo(tmp_path)
    assert result.summary_png == tmp_path / "sub-demo_ses-demo_behavior+image.png" and result.summary_png.is_file()
    png = tmp_path / "summary.png"
    assert main(["plot", str(result.nwb_path), "-o", str(png)]) == 0
    import matplotlib.image

    image = matplotlib.image.imread(png)
    assert image.shape[0] > 400 and image.shape[1] > 600
    assert image[..., :3].std() > 0.05, "the summary image is blank"
    assert main(["plot", str(result.nwb_path), "-o", str(png)]) == 1  # never overwritten
