"""Session specs: validation before any work, one session end to end, memoized task results."""

from __future__ import annotations

import shutil

import pytest
import yaml

from facemap_nwb.cli import main
from facemap_nwb.nwb.io import read_facemap_nwb
from facemap_nwb.session import SpecError, load_session_spec, run_session
from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION, REPO


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
    # The videos are in the Dandiset beside it (symlinks by default), named relative to it.
    media = first.nwb_path.parent / "sub-m1_ses-day1_behavior+image"
    assert first.videos == [media / f"FaceCamera_external_file_{i}.mp4" for i in range(2)]
    assert [p.resolve() for p in first.videos] == [folder / "raw" / "m1" / "day1" / f"face{i}.mp4" for i in range(2)]
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(first.nwb_path), "r") as io:
        stored = list(io.read().acquisition["FaceCamera"].external_file[:])
    assert stored == [p.relative_to(first.nwb_path.parent).as_posix() for p in first.videos]
    assert first.summary_png.exists() and not first.reused
    assert first.task_folder == folder / "processed" / "m1" / "day1" / "facemap_0"
    results = read_facemap_nwb(first.nwb_path)
    assert results.frame_count == 80 and len(results.pupils) == 1 and results.parameters.spatial_bin == 4
    assert main(["run", str(path)]) == 0  # up to date: reused, nothing rewritten
    assert "reused cached results" in capsys.readouterr().out
    first.summary_png.unlink()  # e.g. a run that died while plotting: the rerun draws what is missing
    assert _session_state(path) == "unplotted"
    assert run_session(path).reused and first.summary_png.exists() and _session_state(path) == "current"
    spec["session"]["session_description"] = "Changed."
    assert main(["run", str(write_spec(folder, spec))]) == 1  # the file is stale: never replaced unasked
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
        return r"session.sesion_id: unknown key. Did you mean 'session_id'\?"
    if case == "missing field":
        del spec["subject"]["species"]
        return r"subject.species: missing \(Latin binomial"
    if case == "root missing":
        spec["paths"]["roots"] = ["nowhere"]
        return r"paths.roots.0: root folder .*nowhere' does not exist"
    if case == "file under no root":
        spec["recordings"][0]["files"] = ["m1/day9/face.mp4"]
        return r"recordings.0.files.0: 'm1/day9/face.mp4' is not under any root"
    if case == "task id twice":
        spec["tasks"].append(dict(spec["tasks"][0]))
        return r"tasks: task id\(s\) \['0'\] used more than once"
    if case == "task on an unknown camera":
        spec["tasks"][0]["recordings"] = ["SideCamera"]
        return r"tasks.0.recordings: no recording named \['SideCamera'\]. Choose among \['FaceCamera'\]"
    if case == "camera named twice":
        spec["recordings"].append(dict(spec["recordings"][0]))
        return r"recordings: recording name\(s\) \['FaceCamera'\] used more than once"
    if case == "task id with a slash":
        spec["tasks"][0]["task_id"] = "a/b"
        return r"tasks.0.task_id: String should match pattern .* \(got 'a/b'\)"
    if case == "parameter file does not parse":
        (folder / "params.yaml").write_text("spatial_bin: [4\n")
        return r"tasks.0.parameter_file: Parameter file .*params.yaml' does not parse"
    raise AssertionError(case)


CASES = [
    "unknown key",
    "missing field",
    "root missing",
    "file under no root",
    "task id twice",
    "parameter file does not parse",
    "task on an unknown camera",
    "camera named twice",
    "task id with a slash",
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
    jsonschema.Draft202012Validator.check_schema(schema)
    assert set(schema["required"]) == {"subject", "session", "paths", "recordings", "tasks"}
    committed = REPO / "schemas" / "session.schema.json"
    assert json.loads(committed.read_text()) == schema, (
        "schemas/session.schema.json is out of date: run facemap-nwb schema -o schemas/session.schema.json --overwrite"
    )


def test_readme_and_docstring_specs_follow_the_committed_schema():
    """The spec examples users copy (README, module docstring) validate against schemas/session.schema.json
    with plain jsonschema, and bad ones do not."""
    import json
    import re

    import jsonschema

    import facemap_nwb.session

    schema = json.loads((REPO / "schemas" / "session.schema.json").read_text())
    readme = (REPO / "README.md").read_text()
    examples = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", readme, flags=re.S)]
    docstring = facemap_nwb.session.__doc__.split("::")[1].split("\n\n")[1]
    examples.append(yaml.safe_load(docstring))
    specs = [e for e in examples if isinstance(e, dict) and "tasks" in e]
    assert len(specs) >= 2
    for spec in specs:
        jsonschema.validate(spec, schema)
    spec = dict(specs[0], tasks=[{"task_id": "0", "mode": "sideways"}])
    with pytest.raises(jsonschema.ValidationError, match="sideways"):
        jsonschema.validate(spec, schema)


def test_session_with_two_tasks_on_two_cameras(layout, capsys):
    """Two tasks in one session file: each task's objects carry its suffix, link to its own camera, hold
    the results of processing that camera alone, and are memoized separately."""
    import numpy as np
    from numpy.testing import assert_allclose, assert_array_equal
    from pynwb import NWBHDF5IO

    from facemap_nwb.engines import process_recordings
    from facemap_nwb.params import FacemapParameters
    from facemap_nwb.video import probe_recording

    from .test_recording_nwb import serious_inspector_messages

    folder, spec = layout
    body = folder / "raw" / "m1" / "day1" / "body.mp4"
    make_face_video(body, n_frames=80, height=48, width=64, rate=60.0, seed=7, creation_time=CREATION)
    spec["recordings"].append({"name": "BodyCamera", "files": ["m1/day1/body.mp4"]})
    spec["tasks"][0]["recordings"] = ["FaceCamera"]
    whole = {"spatial_bin": 2, "motion_svd": True, "movie_svd": True, "n_components": 5}
    spec["tasks"].append({"task_id": "whole", "mode": "trigger", "parameters": whole, "recordings": ["BodyCamera"]})
    path = write_spec(folder, spec)
    result = run_session(path)
    assert result.task_ids == ["0", "whole"] and result.reused_tasks == []
    assert [p.name for p in result.summary_pngs] == [
        "sub-m1_ses-day1_behavior+image_task-0.png",
        "sub-m1_ses-day1_behavior+image_task-whole.png",
    ]
    assert all(p.exists() for p in result.summary_pngs)
    assert result.task_folders == [folder / "processed" / "m1" / "day1" / f"facemap_{i}" for i in ("0", "whole")]
    with NWBHDF5IO(str(result.nwb_path), "r") as io:  # plain pynwb
        nwb = io.read()
        behavior = nwb.processing["behavior"]
        assert {"BodyCamera", "FaceCamera"} <= set(nwb.acquisition)
        assert set(behavior.data_interfaces) == {"FacemapTask_0", "FacemapTask_whole"}
        face, whole_task = behavior["FacemapTask_0"], behavior["FacemapTask_whole"]
        assert face.task_id == "0" and whole_task.spatial_bin == 2
        assert [v.video.name for v in whole_task.views] == ["BodyCamera"]
        assert [(v.height, v.width) for v in whole_task.views] == [(48, 64)]
        assert [v.video.name for v in face.views] == ["FaceCamera"]
        assert whole_task.facemap_svd_series["MotionSVD_full_frame"].source_video.name == "BodyCamera"
        assert face.facemap_svd_series["MotionSVD_full_frame"].source_video.name == "FaceCamera"
        assert "pupil_area" in {s.signal for s in face.facemap_time_series.values()}
        assert not whole_task.facemap_spatial_series and {
            s.signal for s in whole_task.facemap_time_series.values()
        } == {"motion_energy"}
    assert serious_inspector_messages(result.nwb_path) == []
    with pytest.raises(ValueError, match=r"holds Facemap tasks \['0', 'whole'\]: choose one with task_id"):
        read_facemap_nwb(result.nwb_path)
    face = probe_recording(sorted((folder / "raw" / "m1" / "day1").glob("face*.mp4")), name="FaceCamera")
    cameras = {"0": (face, FacemapParameters.from_file(folder / "params.yaml"))}
    cameras["whole"] = (probe_recording(body, name="BodyCamera"), FacemapParameters.from_dict(whole))
    for task_id, (recording, params) in cameras.items():
        alone = process_recordings([recording], params)
        stored = read_facemap_nwb(result.nwb_path, task_id=task_id)
        assert stored.frame_count == 80 and [r.name for r in stored.regions] == [r.name for r in alone.regions]
        assert stored.frame_rate == (30.0 if task_id == "0" else 60.0), "each task keeps its own camera's rate"
        for index, trace in alone.motion_energy.items():
            assert_array_equal(stored.motion_energy[index], trace)
        for kind in ("motion", "movie"):
            assert len(stored.svds(kind)) == len(alone.svds(kind))
            for a, b in zip(stored.svds(kind), alone.svds(kind)):
                assert_allclose(np.abs(a.projections), np.abs(b.projections), rtol=1e-4, atol=1e-3)
        assert len(stored.pupils) == len(alone.pupils)
    png = folder / "whole.png"
    assert main(["plot", str(result.nwb_path), "-o", str(png)]) == 1 and not png.exists()
    assert "--task-id" in capsys.readouterr().err
    assert main(["plot", str(result.nwb_path), "-o", str(png), "--task-id", "whole"]) == 0 and png.exists()
    again = run_session(path, overwrite=True)
    assert again.reused and again.reused_tasks == ["0", "whole"]
    spec["tasks"][1]["parameters"]["n_components"] = 3  # one task changes: it alone is recomputed
    changed = run_session(write_spec(folder, spec), overwrite=True)
    assert changed.reused_tasks == ["0"] and not changed.reused
    assert read_facemap_nwb(changed.nwb_path, task_id="whole").motion_svd[0].n_components == 3


def _session_state(path):
    from facemap_nwb.session import session_state

    return session_state(load_session_spec(path))


def test_session_state_follows_the_spec_and_the_file(layout):
    """A session is current only when its NWB file is the one written from today's spec and inputs."""
    folder, spec = layout
    spec["tasks"].append({"task_id": "me", "mode": "trigger", "parameters": {"spatial_bin": 8}})
    path = write_spec(folder, spec)
    assert _session_state(path) == "missing"
    result = run_session(path)
    assert _session_state(path) == "current"
    one_task = write_spec(folder, dict(spec, tasks=spec["tasks"][:1]))
    assert _session_state(one_task) == "stale", "a task dropped from the spec"
    described = dict(spec, session=dict(spec["session"], session_description="Another description."))
    assert _session_state(write_spec(folder, described)) == "stale", "session metadata changed"
    assert _session_state(write_spec(folder, spec)) == "current"
    # A file put there some other way (or an older file left by a run that failed before publishing):
    shutil.copy(next(result.task_folders[0].glob("results-*.nwb")), result.nwb_path)
    assert _session_state(path) == "stale", "an NWB file the stamp does not name"
    result.nwb_path.unlink()  # its video paths are relative to the cache's folder: not a file to inspect


def test_task_ids_that_look_alike(layout):
    """Task ids whose suffixes end alike ('b', 'a_task-b') or whose DANDI labels agree ('a_b', 'a-b')
    keep their own objects, frame counts and summary PNGs."""
    folder, spec = layout
    ids = ["b", "a_task-b", "a_b", "a-b"]
    spec["tasks"] = [
        {"task_id": i, "mode": "trigger", "parameters": {"spatial_bin": 4 + k, "motion_svd": False}}
        for k, i in enumerate(ids)
    ]
    result = run_session(write_spec(folder, spec))
    assert len(set(result.summary_pngs)) == 4 and all(p.exists() for p in result.summary_pngs)
    for k, task_id in enumerate(ids):
        stored = read_facemap_nwb(result.nwb_path, task_id=task_id)
        assert stored.frame_count == 80 and stored.parameters.spatial_bin == 4 + k, task_id


def test_two_specs_on_one_video_keep_both_caches(layout):
    """Two specs with other parameters for one video (one task folder) never undo each other's caches."""
    folder, spec = layout
    first = write_spec(folder, spec, "first.yaml")
    legacy = folder / "processed" / "m1" / "day1" / "facemap_0"
    legacy.mkdir(parents=True)
    (legacy / "results.json").write_text("{}")  # left by facemap-nwb before content-addressed caches
    other = dict(spec, subject=dict(spec["subject"], subject_id="m2"))
    other["tasks"] = [dict(spec["tasks"][0], movie_svd=True)]
    second = write_spec(folder, other, "second.yaml")
    run_session(first)
    run_session(second)
    assert not (legacy / "results.json").exists()
    assert len(list(legacy.glob("results-*.nwb"))) == 2
    assert run_session(first, overwrite=True).reused and run_session(second, overwrite=True).reused
    assert _session_state(first) == _session_state(second) == "current"
    # The second spec changes: its old cache goes, the first's stays.
    other["tasks"][0]["parameters"] = {"n_components": 5}
    run_session(write_spec(folder, other, "second.yaml"), overwrite=True)
    assert len(list(legacy.glob("results-*.nwb"))) == 2 and run_session(first, overwrite=True).reused


def test_load_task_on_the_wrong_cameras_names_the_spec_key(tmp_path):
    """A one-camera Facemap output in a two-camera session: the message says to list the task's cameras."""
    import numpy as np

    from .test_facemap_model import T, hand_built_proc

    raw = tmp_path / "raw"
    raw.mkdir()
    for name in ("face", "body"):
        make_face_video(raw / f"{name}.mp4", n_frames=T, height=60, width=80, creation_time=CREATION)
    np.save(raw / "face_proc.npy", hand_built_proc(), allow_pickle=True)
    spec = {
        "subject": {"subject_id": "m1", "species": "Mus musculus", "sex": "F", "age": "P60D"},
        "session": {
            "session_id": "day1",
            "session_start_time": "2023-03-04T05:06:07+00:00",
            "session_description": "Two cameras.",
            "lab": "Lab",
            "institution": "Institute",
        },
        "paths": {"roots": ["raw"], "processed": "processed"},
        "recordings": [{"name": "FaceCamera", "files": ["face.mp4"]}, {"name": "BodyCamera", "files": ["body.mp4"]}],
        "tasks": [{"task_id": 0, "mode": "load", "proc_file": "face_proc.npy"}],
    }
    path = write_spec(tmp_path, spec)
    with pytest.raises(ValueError, match=r"task '0' on cameras \['FaceCamera', 'BodyCamera'\].*'recordings' key"):
        run_session(path)
    assert not list((tmp_path / "processed").rglob("*.nwb"))
    spec["tasks"][0]["recordings"] = ["FaceCamera"]
    assert read_facemap_nwb(run_session(write_spec(tmp_path, spec)).nwb_path).frame_count == T


def test_a_failed_overwrite_leaves_the_published_file_current(layout, monkeypatch):
    """The stamp of a new file is written before the file is published; when that run fails, the file
    already there keeps its own stamp."""
    import facemap_nwb.convert

    folder, spec = layout
    path = write_spec(folder, spec)
    run_session(path)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(facemap_nwb.convert, "write_session_nwb", broken)
    with pytest.raises(OSError, match="disk full"):
        run_session(path, overwrite=True)
    assert _session_state(path) == "current"
