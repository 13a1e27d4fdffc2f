"""Session specs: validation before any work, one session end to end, memoized task results."""

from __future__ import annotations

import shutil

import pytest
import yaml

from facemap_nwb.cli import main
from facemap_nwb.nwb.io import read_facemap_nwb
from facemap_nwb.session import SpecError, load_session_spec, run_session
from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION


@pytest.fixture
def layout(tmp_path):
    raw = tmp_path / "raw"
    (raw / "m1" / "day1").mkdir(parents=True)
    for i in range(2):
        make_face_video(raw / "m1" / "day1" / f"face{i}.mp4", n_frames=40, first_frame=40 * i, creation_time=CREATION)
    (tmp_path / "params.yaml").write_text(
        "spatial_bin: 4\nmotion_svd: true\nn_components: 20\n"
        "rois:\n  - {type: pupil, name: pupil, x: 38, y: 28, width: 40, height: 24, saturation: 100}\n"
    )
    spec = {
        "subject": {"subject_id": "m1", "species": "Mus musculus", "sex": "F", "age": "P60D"},
        "session": {
            "session_id": "day1",
            "session_start_time": "2023-03-04T05:06:07+00:00",
            "session_description": "Face camera.",
            "lab": "Lab",
            "institution": "Institute",
            "experimenter": ["Doe, Jane"],
        },
        "paths": {"roots": ["raw"], "processed": "processed"},
        "recordings": [{"name": "FaceCamera", "files": ["m1/day1/face0.mp4", "m1/day1/face1.mp4"]}],
        "tasks": [{"task_id": 0, "mode": "trigger", "parameter_file": "params.yaml", "description": "Pupil."}],
    }
    return tmp_path, spec


def write_spec(folder, spec, name="session.yaml"):
    path = folder / name
    path.write_text(yaml.safe_dump(spec))
    return path


def test_run_session_end_to_end_and_memoized(layout, capsys):
    folder, spec = layout
    path = write_spec(folder, spec)
    first = run_session(path)
    assert first.nwb_path == folder / "processed" / "nwb" / "sub-m1" / "sub-m1_ses-day1_behavior+image.nwb"
    assert first.summary_png.exists() and not first.reused
    assert first.task_folder == folder / "processed" / "m1" / "day1" / "facemap_0"
    results = read_facemap_nwb(first.nwb_path)
    assert results.frame_count == 80 and len(results.pupils) == 1 and results.parameters.spatial_bin == 4
    assert main(["run", str(path)]) == 1  # the NWB file exists: never replaced without --overwrite
    assert "already exists" in capsys.readouterr().err
    again = run_session(path, overwrite=True)
    assert again.reused, "unchanged inputs must reuse the cached results"
    spec["tasks"][0]["movie_svd"] = True  # a change recomputes
    changed = run_session(write_spec(folder, spec), overwrite=True)
    assert not changed.reused and len(read_facemap_nwb(changed.nwb_path).movie_svd) == 1
    assert run_session(write_spec(folder, spec), overwrite=True, force=True).reused is False


def _break(spec, case, folder):
    if case == "unknown key":
        spec["session"]["sesion_id"] = "typo"
        return r"session: unknown key\(s\) \['sesion_id'\]"
    if case == "missing field":
        del spec["subject"]["species"]
        return r"subject: 'species' is a required property"
    if case == "root missing":
        spec["paths"]["roots"] = ["nowhere"]
        return r"paths.roots.0: root folder .*nowhere' does not exist"
    if case == "file under no root":
        spec["recordings"][0]["files"] = ["m1/day9/face.mp4"]
        return r"recordings.0.files.0: 'm1/day9/face.mp4' is not under any root"
    if case == "task id twice":
        spec["tasks"].append(dict(spec["tasks"][0]))
        return r"tasks: task id\(s\) \['0'\] used more than once"
    if case == "parameter file does not parse":
        (folder / "params.yaml").write_text("spatial_bin: [4\n")
        return r"tasks.0.parameter_file: parameter file .*params.yaml' does not parse"
    raise AssertionError(case)


CASES = [
    "unknown key",
    "missing field",
    "root missing",
    "file under no root",
    "task id twice",
    "parameter file does not parse",
]


@pytest.mark.parametrize("case", CASES)
def test_bad_spec_is_refused_before_any_work(layout, case, capsys):
    folder, spec = layout
    pattern = _break(spec, case, folder)
    path = write_spec(folder, spec)
    with pytest.raises(SpecError, match=pattern) as caught:
        load_session_spec(path)
    assert str(path) in str(caught.value)
    assert main(["run", str(path)]) == 1
    assert str(path) in capsys.readouterr().err
    assert not (folder / "processed").exists(), "work started before the spec was checked"


def test_summary_png_of_an_lp_session(tmp_path, lp_video):
    """A session on lp_test_vid.mp4 with ROIs of all four types: the PNG exists and is not blank."""
    import matplotlib.image

    from .conftest import lp_parameters

    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(lp_video, raw / "lp.mp4")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(lp_parameters().to_dict()))
    spec = {
        "subject": {"subject_id": "lp", "species": "Mus musculus", "sex": "U", "age": "P60D"},
        "session": {
            "session_id": "wheel",
            "session_start_time": "2024-01-01T00:00:00+00:00",
            "session_description": "Lightning Pose example video.",
            "lab": "Lab",
            "institution": "Institute",
        },
        "paths": {"roots": ["raw"], "processed": "processed"},
        "recordings": [{"name": "FaceCamera", "files": ["lp.mp4"]}],
        "tasks": [{"task_id": 0, "mode": "trigger", "parameter_file": "params.yaml"}],
    }
    result = run_session(write_spec(tmp_path, spec))
    image = matplotlib.image.imread(result.summary_png)
    assert image.shape[0] > 400 and image[..., :3].std() > 0.05
    assert result.summary_png == result.nwb_path.with_suffix(".png")


def test_schema_command_prints_the_json_schema(capsys):
    import json

    import jsonschema

    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    jsonschema.Draft7Validator.check_schema(schema)
    assert set(schema["required"]) == {"subject", "session", "paths", "recordings", "tasks"}
