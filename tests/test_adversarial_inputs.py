"""Adversarial files a user writes (parameters and ROIs, metadata, session specs), command-line values, paths
out of the roots, batches with a broken spec, and unexpected errors: each refused with exit code 1 (2 for
bugs), one line naming the file or the value, no traceback, nothing left behind (tests/adversarial.py)."""

from __future__ import annotations

import os
import sys

import pytest
import yaml

from facemap_nwb.synthetic import make_face_video

from .adversarial import refuse
from .conftest import CREATION
from .sessions import one_camera_spec
from .test_recording_nwb import metadata_file

START = ["--session-start", "2024-01-01T00:00:00+00:00"]
GOOD_ROI = {"type": "motion", "name": "whiskers", "x": 10, "y": 10, "width": 20, "height": 20}


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    """A small synthetic face video (120 x 160), outside each test's folder."""
    return make_face_video(tmp_path_factory.mktemp("video") / "face.mp4", n_frames=12, creation_time=CREATION)


def _roi(**change):
    roi = dict(GOOD_ROI)
    for key, value in change.items():
        if value is _DROP:
            roi.pop(key)
        else:
            roi[key] = value
    return roi


_DROP = object()

# Parameter files: (content as text, or a dict dumped as YAML; the value or key the message must name).
BAD_PARAMETERS = {
    "roi_without_width": ({"rois": [_roi(width=_DROP)]}, "rois.0.width: missing"),
    "roi_without_type": ({"rois": [_roi(type=_DROP)]}, "rois.0.type: missing"),
    "x_null": ({"rois": [_roi(x=None)]}, "rois.0.x"),
    "x_list": ({"rois": [_roi(x=[1, 2])]}, "[1, 2]"),
    "x_float": ({"rois": [_roi(x=1.5)]}, "1.5"),
    "x_text": ({"rois": [_roi(x="10")]}, "'10'"),
    "x_negative": ({"rois": [_roi(x=-1)]}, "rois.0.x"),
    "x_bool": ({"rois": [_roi(x=True)]}, "rois.0.x"),
    "width_zero": ({"rois": [_roi(width=0)]}, "rois.0.width"),
    "width_huge": ({"rois": [_roi(width=10**12)]}, "rois.0.width"),
    "roi_outside_frame": ({"rois": [_roi(x=150)]}, "outside"),
    "name_number": ({"rois": [_roi(name=5)]}, "rois.0.name"),
    "name_slash": ({"rois": [_roi(name="a/b")]}, "'a/b'"),
    "name_colon": ({"rois": [_roi(name="a:b")]}, "'a:b'"),
    "name_reserved": ({"rois": [_roi(name="full_frame")]}, "full_frame"),
    "names_twice": ({"rois": [_roi(), _roi()]}, "whiskers"),
    "roi_is_text": ({"rois": ["whiskers"]}, "rois.0"),
    "roi_is_list": ({"rois": [[1, 2, 3, 4]]}, "rois.0"),
    "rois_mapping": ({"rois": {"a": 1}}, "rois"),
    "type_unknown": ({"rois": [_roi(type="eye")]}, "'eye'"),
    "unknown_roi_key": ({"rois": [_roi(widht=3)]}, "widht"),
    "unknown_key": ({"spatial_bn": 2}, "spatial_bn"),
    "sbin_null": ({"spatial_bin": None}, "spatial_bin"),
    "sbin_inf": ("spatial_bin: .inf\n", "spatial_bin"),
    "sbin_nan": ("spatial_bin: .nan\n", "spatial_bin"),
    "sbin_zero": ({"spatial_bin": 0}, "spatial_bin"),
    "sbin_negative": ({"spatial_bin": -4}, "spatial_bin"),
    "sbin_text": ({"spatial_bin": "4"}, "'4'"),
    "sbin_float": ({"spatial_bin": 2.5}, "2.5"),
    "sbin_bool": ({"spatial_bin": True}, "spatial_bin"),
    "sbin_million": ({"spatial_bin": 10**6}, "spatial_bin"),
    "sbin_larger_than_frame": ({"spatial_bin": 500}, "500"),
    "n_components_zero": ({"n_components": 0}, "n_components"),
    "motion_svd_text": ({"motion_svd": "yes"}, "motion_svd"),
    "saturation_high": ({"rois": [_roi(type="pupil", saturation=300)]}, "saturation"),
    "saturation_nan": (
        "rois:\n  - {type: pupil, x: 10, y: 10, width: 20, height: 20, saturation: .nan}\n",
        "saturation",
    ),
    "pupil_sigma_zero": ({"rois": [_roi(type="pupil", pupil_sigma=0)]}, "pupil_sigma"),
    "pupil_sigma_inf": (
        "rois:\n  - {type: pupil, x: 1, y: 1, width: 4, height: 4, pupil_sigma: .inf}\n",
        "pupil_sigma",
    ),
    "ellipse_wrong_shape": ({"rois": [_roi(type="pupil", width=2, height=2, ellipse=[[True]])]}, "ellipse"),
    "ellipse_not_bool": ({"rois": [_roi(type="pupil", width=2, height=1, ellipse=[[1, 0]])]}, "ellipse"),
    "ellipse_bad_bits": (
        {"rois": [_roi(type="pupil", width=2, height=2, ellipse={"shape": [2, 2], "packed_bits": "@@@"})]},
        "ROI",
    ),
    "content_list": ("[1, 2]\n", "(top level)"),
    "content_scalar": ("4\n", "(top level)"),
    "content_text": ("just some words\n", "(top level)"),
    "two_documents": ("spatial_bin: 2\n---\nspatial_bin: 4\n", "does not parse"),
    "syntax_error": ("spatial_bin: [4\n", "does not parse"),
    "tab_indentation": ("rois:\n\t- {type: motion}\n", "does not parse"),
    "python_tag": ("spatial_bin: !!python/object/apply:os.system ['touch {marker}']\n", "does not parse"),
    "duplicate_anchor_loop": ("rois: &a [*a]\n", "refers to its own anchor"),
    "deep_nesting": ("rois: " + "[" * 200 + "]" * 200 + "\n", "nests deeper"),
}


def _write_parameters(folder, content):
    path = folder / "params.yaml"
    marker = folder / "pwned"
    text = content if isinstance(content, str) else yaml.safe_dump(content)
    path.write_text(text.replace("{marker}", str(marker)), encoding="utf-8")
    return path, marker


@pytest.mark.parametrize("case", sorted(BAD_PARAMETERS))
def test_bad_parameter_file(case, video, tmp_path, capsys):
    content, named = BAD_PARAMETERS[case]
    params, marker = _write_parameters(tmp_path, content)
    argv = ["process", video, "-o", tmp_path / "out.nwb", "--rois", params, "--quiet", *START]
    result = refuse(argv, tmp_path, names=[named], capsys=capsys)
    assert "params.yaml" in result.stderr or case == "sbin_larger_than_frame", result.stderr
    assert not marker.exists(), "the parameter file ran code"


# Files that are not UTF-8 YAML, or that expand: (bytes, what the message must say).
BAD_ENCODINGS = {
    "utf16_with_bom": ("spatial_bin: 2\n".encode("utf-16"), "UTF-16"),
    "utf16_without_bom": ("spatial_bin: 2\n".encode("utf-16-le"), "NUL"),
    "utf32": ("spatial_bin: 2\n".encode("utf-32"), "UTF-32"),
    "invalid_utf8": (b"spatial_bin: 2 # \xff\xfe\n", "not valid UTF-8"),
    "latin1": (
        "rois:\n  - {type: motion, name: 'pupille \xe9', x: 1, y: 1, width: 2, height: 2}\n".encode("latin-1"),
        "not valid UTF-8",
    ),
    "binary": (bytes(range(256)) * 4, "UTF-8"),
    "too_large": (b"#" * (9 * 2**20), "at most"),
}


@pytest.mark.parametrize("case", sorted(BAD_ENCODINGS))
def test_parameter_file_encoding_and_size(case, video, tmp_path, capsys):
    data, said = BAD_ENCODINGS[case]
    params = tmp_path / "params.yaml"
    params.write_bytes(data)
    argv = ["process", video, "-o", tmp_path / "out.nwb", "--rois", params, "--quiet", *START]
    refuse(argv, tmp_path, names=["params.yaml", said], capsys=capsys)


def test_parameter_file_that_is_a_folder_a_device_or_missing(video, tmp_path, capsys):
    (tmp_path / "folder.yaml").mkdir()
    for params, said in (
        (tmp_path / "folder.yaml", "is a folder"),
        ("/dev/zero", "not a regular file"),
        (tmp_path / "missing.yaml", "not found"),
    ):
        argv = ["process", video, "-o", tmp_path / "out.nwb", "--rois", params, "--quiet", *START]
        refuse(argv, tmp_path, names=[str(params), said], capsys=capsys)


def test_a_utf8_bom_and_yaml_aliases_are_fine(video, tmp_path):
    """What a user may legitimately write still works: a UTF-8 byte-order mark, anchors and merge keys."""
    from facemap_nwb.params import FacemapParameters

    params = tmp_path / "params.yaml"
    text = (
        "spatial_bin: 2\nrois:\n  - &base {type: motion, name: a, x: 1, y: 1, width: 10, height: 10}\n"
        "  - {<<: *base, name: b, x: 20}\n"
    )
    params.write_bytes(b"\xef\xbb\xbf" + text.encode())
    loaded = FacemapParameters.from_file(params)
    assert [r.name for r in loaded.rois] == ["a", "b"] and loaded.rois[1].x == 20


# Metadata files (neuroconv-style): (content, what the message must name).
BAD_METADATA = {
    "misspelled_nwbfile_key": ({"NWBFile": {"sesion_description": "x"}}, "NWBFile.sesion_description"),
    "misspelled_subject_key": ({"Subject": {"subjectid": "m1"}}, "Subject.subjectid"),
    "misspelled_section": ({"Subjects": {"subject_id": "m1"}}, "Subjects"),
    "integer_age": ({"Subject": {"age": 60}}, "Subject.age"),
    "age_not_iso": ({"Subject": {"age": "60 days"}}, "'60 days'"),
    "sex_word": ({"Subject": {"sex": "male"}}, "'male'"),
    "start_without_zone": ({"NWBFile": {"session_start_time": "2024-01-01T10:00:00"}}, "time zone"),
    "start_garbage": ({"NWBFile": {"session_start_time": "last tuesday"}}, "'last tuesday'"),
    "experimenter_number": ({"NWBFile": {"experimenter": 42}}, "NWBFile.experimenter"),
    "keywords_mapping": ({"NWBFile": {"keywords": {"a": 1}}}, "NWBFile.keywords"),
    "section_list": ({"Subject": ["m1"]}, "Subject"),
    "content_list": ("- NWBFile\n", "(top level)"),
    "content_scalar": ("hello\n", "(top level)"),
    "utf16": ("NWBFile: {lab: X}\n".encode("utf-16"), "UTF-16"),
    "keywords_alias_bomb": (None, "alias"),
}


def _bomb(key: str, levels: int = 9) -> str:
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    return "\n".join(lines) + f"\n{key}\n"


@pytest.mark.parametrize("case", sorted(BAD_METADATA))
def test_bad_metadata_file_is_refused_before_processing(case, video, tmp_path, capsys, monkeypatch):
    import facemap_nwb.engines

    content, named = BAD_METADATA[case]
    if content is None:
        content = _bomb("NWBFile: {keywords: *l8}")
    meta = tmp_path / "meta.yaml"
    if isinstance(content, bytes):
        meta.write_bytes(content)
    else:
        meta.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")

    def no_work(*args, **kwargs):
        raise AssertionError("processing started before the metadata file was checked")

    monkeypatch.setattr(facemap_nwb.engines, "process_recordings", no_work)
    argv = ["process", video, "-o", tmp_path / "out.nwb", "--metadata", meta, "--quiet", *START]
    refuse(argv, tmp_path, names=["meta.yaml", named], capsys=capsys)
    refuse(["recording", video, "-o", tmp_path / "rec.nwb", "--metadata", meta], tmp_path, names=[named], capsys=capsys)


# Command-line values: (argv after the command's required arguments, the option or value named).
BAD_OPTIONS = {
    "memory_budget_inf": (["--memory-budget", "inf"], "--memory-budget"),
    "memory_budget_nan": (["--memory-budget", "nan"], "'nan'"),
    "memory_budget_negative": (["--memory-budget", "-5"], "--memory-budget"),
    "memory_budget_zero": (["--memory-budget", "0"], "--memory-budget"),
    "memory_budget_text": (["--memory-budget", "lots"], "'lots'"),
    "sbin_zero": (["--sbin", "0"], "--sbin"),
    "sbin_text": (["--sbin", "four"], "'four'"),
    "sbin_float": (["--sbin", "2.5"], "'2.5'"),
    "n_components_negative": (["--n-components", "-3"], "--n-components"),
    "session_start_no_zone": (["--session-start", "2024-01-01T00:00:00"], "time zone"),
    "session_start_garbage": (["--session-start", "soon"], "'soon'"),
    "engine_unknown": (["--engine", "gpu"], "'gpu'"),
    "backend_unknown": (["--backend", "parquet"], "'parquet'"),
    "unknown_option": (["--sbim", "2"], "--sbim"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_command_line_value(case, video, tmp_path, capsys):
    extra, named = BAD_OPTIONS[case]
    argv = ["process", video, "-o", tmp_path / "out.nwb", "--quiet", *extra]
    refuse(argv, tmp_path, names=[named], capsys=capsys)


def test_convert_and_recording_take_session_start_and_name_it_when_missing(tmp_path, capsys):
    """A video without a creation time: the message names --session-start and the metadata key."""
    video = make_face_video(tmp_path / "no_time.mp4", n_frames=5)
    result = refuse(["recording", video, "-o", tmp_path / "r.nwb"], tmp_path, names=["--session-start"], capsys=capsys)
    assert "session_start_time" in result.stderr
    from facemap_nwb.cli import main

    meta = ["--metadata", str(metadata_file(tmp_path))]
    assert main(["recording", str(video), "-o", str(tmp_path / "r.nwb"), *START, *meta]) == 0


# ------------------------------------------------------------------------------------------ session specs


@pytest.fixture
def session(tmp_path):
    """A runnable one-camera session: (folder, spec dict); ``write(spec)`` saves it as session.yaml."""
    raw = tmp_path / "raw"
    (raw / "m1").mkdir(parents=True)
    make_face_video(raw / "m1" / "face.mp4", n_frames=12, creation_time=CREATION)
    make_face_video(raw / "m1" / "face2.mp4", n_frames=12, first_frame=12)
    (tmp_path / "params.yaml").write_text("spatial_bin: 4\nn_components: 5\n")
    spec = one_camera_spec(["m1/face.mp4"], [{"task_id": 0, "mode": "trigger", "parameter_file": "params.yaml"}])
    return tmp_path, spec


def _spec_case(case, folder, spec):
    """Break the spec; returns the key or value the message must name."""
    task, rec = spec["tasks"][0], spec["recordings"][0]
    breaks = {
        "unknown_top_key": lambda: spec.update(sesion={}) or "sesion",
        "subject_typo": lambda: spec["subject"].update(speceis="x") or "subject.speceis",
        "missing_session_id": lambda: spec["session"].pop("session_id") and "session.session_id",
        "start_without_zone": lambda: spec["session"].update(session_start_time="2023-03-04T05:06:07") or "time zone",
        "start_garbage": lambda: spec["session"].update(session_start_time="March") or "'March'",
        "integer_age": lambda: spec["subject"].update(age=60) or "subject.age",
        "no_age_or_birth": lambda: spec["subject"].pop("age") and "date_of_birth",
        "sex_word": lambda: spec["subject"].update(sex="female") or "'female'",
        "roots_empty": lambda: spec["paths"].update(roots=[]) or "paths.roots",
        "roots_not_a_list": lambda: spec["paths"].update(roots="raw") or "paths.roots",
        "root_missing": lambda: spec["paths"].update(roots=["nowhere"]) or "nowhere",
        "files_empty": lambda: rec.update(files=[]) or "recordings.0.files",
        "recording_name_slash": lambda: rec.update(name="Face/Camera") or "'Face/Camera'",
        "device_name_slash": lambda: rec.update(device="cam/1") or "'cam/1'",
        "mode_unknown": lambda: task.update(mode="sideways") or "'sideways'",
        "engine_unknown": lambda: task.update(engine="gpu") or "'gpu'",
        "task_id_slash": lambda: task.update(task_id="a/b") or "'a/b'",
        "task_id_bool": lambda: task.update(task_id=True) or "tasks.0.task_id",
        "inline_sbin_inf": lambda: task.update(parameters={"spatial_bin": float("inf")}) or "spatial_bin",
        "inline_roi_string": lambda: task.update(parameters={"rois": ["pupil"]}) or "rois.0",
        "parameter_file_missing": lambda: task.update(parameter_file="nope.yaml") or "nope.yaml",
        "parameter_file_outside": lambda: task.update(parameter_file="../params.yaml") or "outside",
        "parameter_file_bad_value": lambda: (
            (folder / "params.yaml").write_text("spatial_bin: .nan\n") and "spatial_bin"
        ),
        "parameter_file_utf16": lambda: (
            (folder / "params.yaml").write_bytes("spatial_bin: 2\n".encode("utf-16")) and "UTF-16"
        ),
        "roi_file_bad_item": lambda: (
            (folder / "rois.yaml").write_text("- {type: motion, x: 1}\n")
            and task.update(roi_file="rois.yaml")
            or "rois.0"
        ),
        "load_without_proc_file": lambda: task.update(mode="load") or "proc_file",
        "task_on_unknown_camera": lambda: task.update(recordings=["Side"]) or "Side",
        "task_id_twice": lambda: spec["tasks"].append(dict(task)) or "used more than once",
        "camera_twice": lambda: spec["recordings"].append(dict(rec)) or "used more than once",
        "motion_svd_text": lambda: task.update(motion_svd="no") or "tasks.0.motion_svd",
        "recordings_mapping": lambda: spec.update(recordings={"name": "x"}) or "recordings",
    }
    return breaks[case]()


SPEC_CASES = [
    "unknown_top_key", "subject_typo", "missing_session_id", "start_without_zone", "start_garbage", "integer_age",
    "no_age_or_birth", "sex_word", "roots_empty", "roots_not_a_list", "root_missing", "files_empty",
    "recording_name_slash", "device_name_slash", "mode_unknown", "engine_unknown", "task_id_slash", "task_id_bool",
    "inline_sbin_inf", "inline_roi_string", "parameter_file_missing", "parameter_file_outside",
    "parameter_file_bad_value", "parameter_file_utf16", "roi_file_bad_item", "load_without_proc_file",
    "task_on_unknown_camera", "task_id_twice", "camera_twice", "motion_svd_text", "recordings_mapping",
]  # fmt: skip


@pytest.mark.parametrize("case", SPEC_CASES)
def test_bad_session_spec(case, session, capsys):
    folder, spec = session
    named = _spec_case(case, folder, spec)
    path = folder / "session.yaml"
    path.write_text(yaml.safe_dump(spec))
    refuse(["run", path], folder, names=["session.yaml", named], capsys=capsys)
    assert not (folder / "processed").exists(), "work started before the spec was checked"


SPEC_FILE_CASES = {
    "list": (b"- subject\n- session\n", "(top level)"),
    "utf16": ("subject: {}\n".encode("utf-16"), "UTF-16"),
    "binary": (b"\x00\x01\x02\x03" * 100, "NUL"),
    "too_large": (b"#" * (2 * 2**20), "at most"),
    "syntax": (b"subject: {subject_id: [m1\n", "does not parse"),
    "alias_bomb_in_parameters": (None, "alias"),
}


@pytest.mark.parametrize("case", sorted(SPEC_FILE_CASES))
def test_bad_session_spec_file(case, session, capsys):
    folder, spec = session
    data, said = SPEC_FILE_CASES[case]
    if data is None:
        body = yaml.safe_dump(spec).replace("parameter_file: params.yaml", "parameters: {rois: *l8}")
        data = (_bomb("") + body).encode()
    (folder / "session.yaml").write_bytes(data)
    refuse(["run", folder / "session.yaml"], folder, names=["session.yaml", said], capsys=capsys)


# ----------------------------------------------------------------------------------------- out of the roots


def _outside(folder):
    out = folder / "outside"
    out.mkdir(exist_ok=True)
    make_face_video(out / "face.mp4", n_frames=12)
    (out / "face_proc.npy").write_bytes(b"x")
    return out


ROOT_ESCAPES = {
    "dotdot_first_file": lambda f, s: s["recordings"][0].update(files=["../outside/face.mp4"]),
    "dotdot_later_file": lambda f, s: s["recordings"][0].update(files=["m1/face.mp4", "../outside/face.mp4"]),
    "absolute_elsewhere": lambda f, s: s["recordings"][0].update(files=[str(f / "outside" / "face.mp4")]),
    "absolute_later_file": lambda f, s: s["recordings"][0].update(files=["m1/face.mp4", str(f / "outside/face.mp4")]),
    "symlink_out": lambda f, s: os.symlink(f / "outside" / "face.mp4", f / "raw" / "m1" / "link.mp4")
    or s["recordings"][0].update(files=["m1/link.mp4"]),
    "symlinked_folder_out": lambda f, s: os.symlink(f / "outside", f / "raw" / "m1" / "more")
    or s["recordings"][0].update(files=["m1/face.mp4", "m1/more/face.mp4"]),
    "other_camera": lambda f, s: s["recordings"].append({"name": "Body", "files": ["../outside/face.mp4"]}),
    "proc_file_outside": lambda f, s: s["tasks"].append(
        {"task_id": "l", "mode": "load", "proc_file": "../outside/face_proc.npy"}
    ),
    "proc_file_absolute": lambda f, s: s["tasks"].append(
        {"task_id": "l", "mode": "load", "proc_file": str(f / "outside" / "face_proc.npy")}
    ),
    "parameter_file_absolute": lambda f, s: s["tasks"][0].update(parameter_file=str(f / "outside" / "face_proc.npy")),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ROOT_ESCAPES))
def test_paths_out_of_the_roots_are_refused(case, session, capsys):
    folder, spec = session
    _outside(folder)
    ROOT_ESCAPES[case](folder, spec)
    path = folder / "session.yaml"
    path.write_text(yaml.safe_dump(spec))
    refuse(["run", path], folder, names=["session.yaml", "outside"], capsys=capsys)
    assert not (folder / "processed").exists()


def test_links_and_dotdot_that_stay_inside_a_root_are_fine(session):
    from facemap_nwb.session import load_session_spec

    folder, spec = session
    os.symlink(folder / "raw" / "m1" / "face2.mp4", folder / "raw" / "m1" / "link.mp4")
    spec["recordings"][0]["files"] = ["m1/../m1/face.mp4", "m1/link.mp4"]
    path = folder / "session.yaml"
    path.write_text(yaml.safe_dump(spec))
    loaded = load_session_spec(path)
    assert loaded.recordings[0]["files"] == [folder / "raw/m1/face.mp4", folder / "raw/m1/face2.mp4"]


# ------------------------------------------------------------------------------------------------- batches


def test_one_bad_spec_does_not_stop_a_batch(session, capsys):
    """Specs broken in several ways: each fails alone with its row; the good one completes."""
    from facemap_nwb.cli import main

    folder, spec = session
    (folder / "good.yaml").write_text(yaml.safe_dump(spec))
    broken = {
        "typo.yaml": yaml.safe_dump({**spec, "sesion": {}}),
        "sbin.yaml": yaml.safe_dump(spec).replace("parameter_file: params.yaml", "parameters: {spatial_bin: .inf}"),
        "bomb.yaml": _bomb("") + yaml.safe_dump(spec).replace("parameter_file: params.yaml", "parameters: {rois: *l8}"),
        "utf16.yaml": None,
        "outside.yaml": yaml.safe_dump(spec).replace("m1/face.mp4", "../outside/face.mp4"),
    }
    _outside(folder)
    for name, text in broken.items():
        if text is None:
            (folder / name).write_bytes(yaml.safe_dump(spec).encode("utf-16"))
        else:
            (folder / name).write_text(text)
    specs = [folder / n for n in broken] + [folder / "good.yaml"]
    capsys.readouterr()
    code = main(["batch", *map(str, specs), "--workers", "1", "--quiet"])
    out = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out.out + out.err
    rows = out.out.splitlines()
    for name in broken:
        line = next(i for i, r in enumerate(rows) if r.endswith(name))
        assert rows[line].startswith("failed"), rows[line]
        assert name in rows[line + 1] or "session.yaml" not in rows[line + 1], rows[line + 1]
    assert any(r.startswith("done") and r.endswith("good.yaml") for r in rows), out.out
    assert f"1 done, 0 reused, {len(broken)} failed" in out.out


def test_batch_without_dask_names_the_extra(session, capsys, monkeypatch):
    folder, spec = session
    (folder / "good.yaml").write_text(yaml.safe_dump(spec))
    monkeypatch.setitem(sys.modules, "dask.distributed", None)  # what an install without the batch extra sees
    refuse(["batch", folder / "good.yaml"], folder, names=["facemap-nwb[batch]"], capsys=capsys)


# -------------------------------------------------------------------------------------- unexpected errors


def test_an_unexpected_error_is_one_line_exit_2_and_debug_shows_the_traceback(video, tmp_path, capsys, monkeypatch):
    import facemap_nwb.engines
    from facemap_nwb.cli import main

    def bug(*args, **kwargs):
        raise ZeroDivisionError("simulated bug")

    monkeypatch.setattr(facemap_nwb.engines, "process_recordings", bug)
    argv = ["process", video, "-o", tmp_path / "out.nwb", "--quiet", *START]
    result = refuse(argv, tmp_path, names=["unexpected error", "face.mp4", "--debug", "ZeroDivisionError"],
                    capsys=capsys, code=2)  # fmt: skip
    assert result.stderr.startswith("facemap-nwb process:")
    with pytest.raises(ZeroDivisionError):
        main(["--debug", *map(str, argv)])
    with pytest.raises(ZeroDivisionError):
        main([*map(str, argv), "--debug"])


def test_inline_parameters_override_only_the_keys_they_name(session):
    """A task's ``parameters`` change what they name and leave the parameter file's other values alone."""
    from facemap_nwb.session import load_session_spec

    folder, spec = session
    spec["tasks"][0]["parameters"] = {"motion_svd": False, "rois": [_roi()]}
    path = folder / "session.yaml"
    path.write_text(yaml.safe_dump(spec))
    (task,) = load_session_spec(path).tasks
    params = task.parameters
    assert (params.spatial_bin, params.n_components, params.motion_svd) == (4, 5, False)  # params.yaml: 4 and 5
    assert [r.name for r in params.rois] == ["whiskers"]


@pytest.mark.parametrize("command", ["run", "batch"])
def test_run_and_batch_take_session_start_and_name_it_when_missing(session, command, capsys):
    """A spec without a start time, on a video without a creation time: refused, the message naming the flag and
    the spec's key; with --session-start the file starts then."""
    from pynwb import NWBHDF5IO

    from facemap_nwb.cli import main

    folder, spec = session
    spec["session"].pop("session_start_time")
    spec["recordings"][0]["files"] = ["m1/face2.mp4"]  # no creation time
    path = folder / "session.yaml"
    path.write_text(yaml.safe_dump(spec))
    extra = ["--workers", "1"] if command == "batch" else []
    capsys.readouterr()
    assert main([command, str(path), "--quiet", *extra]) == 1
    out = capsys.readouterr()
    assert "--session-start" in out.out + out.err and "session.session_start_time" in out.out + out.err, out
    assert "Traceback" not in out.out + out.err
    assert main([command, str(path), "--quiet", *extra, "--session-start", "2024-02-03T04:05:06+01:00"]) == 0
    (nwb_path,) = folder.rglob("sub-*.nwb")
    with NWBHDF5IO(str(nwb_path), "r") as io:
        assert io.read().session_start_time.isoformat() == "2024-02-03T04:05:06+01:00"
