"""Property-based tests: parameter files, metadata files and session specs generated (or mutated) at random
are either accepted or refused with the one error type of bad input (``InputError``, a ValueError), never
another exception; and what is accepted satisfies the schema's own rules."""

from __future__ import annotations

import copy

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis", reason="property tests need hypothesis (the 'test' extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from facemap_nwb.inputs import InputError, read_user_file  # noqa: E402
from facemap_nwb.params import FacemapParameters  # noqa: E402

from .sessions import one_camera_spec  # noqa: E402

GOOD_ROI = {"type": "motion", "x": 1, "y": 1, "width": 5, "height": 5}

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
ROI_KEYS = ["type", "x", "y", "width", "height", "video", "name", "saturation", "pupil_sigma", "ellipse", "widht"]
PARAMETER_KEYS = ["spatial_bin", "motion_svd", "movie_svd", "multivideo_svd", "n_components", "rois", "sbin"]
plausible_roi = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["motion", "pupil", "blink", "running", "eye"]),
        "x": st.integers(-2, 300),
        "y": st.integers(-2, 300),
        "width": st.integers(-1, 300),
        "height": st.integers(-1, 300),
    },
    optional={key: values for key in ROI_KEYS[5:]},
)
parameter_dicts = st.dictionaries(
    st.sampled_from(PARAMETER_KEYS),
    st.one_of(values, st.lists(st.one_of(plausible_roi, values), max_size=3), st.integers(-3, 10)),
    max_size=6,
)


@SETTINGS
@given(parameter_dicts)
def test_parameters_are_accepted_or_refused_cleanly(values):
    try:
        params = FacemapParameters.from_dict(values, source="Parameter file 'p.yaml'")
    except InputError as err:
        assert str(err).startswith("Parameter file 'p.yaml': "), err
        return
    assert params.spatial_bin >= 1 and params.n_components >= 1
    assert all(r.width >= 1 and r.height >= 1 and r.x >= 0 and r.y >= 0 for r in params.rois)
    assert len({r.name for r in params.rois}) == len(params.rois)
    assert FacemapParameters.from_json(params.to_json()) == params  # what is accepted round-trips


@SETTINGS
@given(st.one_of(parameter_dicts, values))
def test_parameter_files_are_accepted_or_refused_cleanly(tmp_path, content):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    try:
        FacemapParameters.from_file(path)
    except InputError as err:
        assert "p.yaml" in str(err), err


@SETTINGS
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_read_as_a_user_file_parse_or_are_refused(tmp_path, data):
    path = tmp_path / "p.yaml"
    path.write_bytes(data)
    try:
        read_user_file(path, "parameter file")
    except InputError as err:
        assert "p.yaml" in str(err), err


YAML_PIECES = ["&a ", "*a ", "[", "]", "{", "}", ": ", "- ", "\n", "  ", "<<: ", "!!str ", "!!python/name:os.system ",
               "'", '"', "#", "1", ".inf", "x", ",", "---\n", "%YAML 1.1\n", "? "]  # fmt: skip


@SETTINGS
@given(st.lists(st.sampled_from(YAML_PIECES), max_size=60).map("".join))
def test_yaml_made_of_tricky_pieces_parses_or_is_refused(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        read_user_file(path, "parameter file")
    except InputError as err:
        assert "p.yaml" in str(err), err


def _mutations(document):
    """Strategy: a copy of ``document`` with one leaf replaced, one key removed, or one key added, at random."""

    def paths(node, prefix=()):
        yield prefix
        if isinstance(node, dict):
            for key, value in node.items():
                yield from paths(value, (*prefix, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from paths(value, (*prefix, index))

    every = list(paths(document))

    @st.composite
    def mutate(draw):
        doc = copy.deepcopy(document)
        where = draw(st.sampled_from(every[1:]))
        parent = doc
        for part in where[:-1]:
            parent = parent[part]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[where[-1]] = draw(values)
        elif action == "delete":
            del parent[where[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=10))] = draw(values)
        else:
            parent.append(draw(values))
        return doc

    return mutate()


GOOD_SPEC = one_camera_spec(
    ["face.mp4"],
    [{"task_id": 0, "mode": "trigger", "parameters": {"spatial_bin": 4, "rois": [GOOD_ROI]}}],
)


@pytest.fixture(scope="module")
def spec_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spec")
    (folder / "raw").mkdir()
    (folder / "raw" / "face.mp4").write_bytes(b"only the spec is checked here")
    return folder


@SETTINGS
@given(_mutations(GOOD_SPEC))
def test_mutated_session_specs_load_or_are_refused_cleanly(spec_folder, spec):
    from facemap_nwb.session import SpecError, load_session_spec

    path = spec_folder / "session.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    try:
        loaded = load_session_spec(path)
    except SpecError as err:
        assert str(path) in str(err), err
        return
    assert loaded.tasks and loaded.recordings


GOOD_METADATA = {
    "NWBFile": {"session_description": "x", "session_start_time": "2024-01-01T00:00:00+00:00", "keywords": ["a"]},
    "Subject": {"subject_id": "m1", "species": "Mus musculus", "sex": "F", "age": "P60D"},
}


@SETTINGS
@given(_mutations(GOOD_METADATA))
def test_mutated_metadata_loads_or_is_refused_cleanly(tmp_path, metadata):
    from facemap_nwb.cli import _load_metadata

    path = tmp_path / "meta.yaml"
    path.write_text(yaml.safe_dump(metadata), encoding="utf-8")
    try:
        loaded = _load_metadata(str(path))
    except InputError as err:
        assert "meta.yaml" in str(err), err
        return
    assert set(loaded) <= {"NWBFile", "Subject"}
