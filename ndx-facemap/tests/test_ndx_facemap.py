"""ndx-facemap on its own (the environment may hold nothing but pynwb and this package), in tiers as ndx-pose
has them: unit tests of the classes and mocks, the spec against the NWB schema language, HDF5 round trips
compared field by field, the back-compat read of the committed file facemap-nwb wrote (format 1.0.0), and the
README's example."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
import warnings
from datetime import datetime
from pathlib import Path

import h5py
import numpy as np
import pynwb
import pytest
from hdmf.backends.hdf5 import H5DataIO
from hdmf.common import DynamicTable, DynamicTableRegion, VectorIndex
from hdmf.container import AbstractContainer
from hdmf.data_utils import DataIO
from numpy.testing import assert_allclose, assert_array_equal, assert_equal
from pynwb import NWBHDF5IO, TimeSeries, get_type_map
from pynwb.base import Images
from pynwb.behavior import SpatialSeries
from pynwb.core import NWBContainer, NWBDataInterface
from pynwb.image import GrayscaleImage
from pynwb.file import Subject
from pynwb.testing.mock.file import mock_NWBFile

import ndx_facemap
from ndx_facemap.testing import (
    FRAME_ALIGNMENT,
    MOCK_REGIONS,
    inscribed_ellipse,
    mock_FacemapRegions,
    mock_FacemapRun,
    mock_FacemapSpatialSeries,
    mock_FacemapSVDSeries,
    mock_FacemapTask,
    mock_FacemapTimeSeries,
    mock_FacemapView,
    mock_video,
)

DATA = Path(__file__).resolve().parent / "data"
BACK_COMPAT = DATA / "facemap_nwb_1.0.0.nwb"  # written by facemap-nwb (make_test_file.py); never rewritten
DISTRIBUTION = Path(__file__).resolve().parents[1]
TYPES = ("FacemapRegions", "FacemapView", "FacemapRun", "FacemapTimeSeries", "FacemapSpatialSeries",
         "FacemapSVDSeries", "FacemapTask")  # fmt: skip
SPEC_FILES = ("ndx-facemap.namespace.yaml", "ndx-facemap.extensions.yaml")


def _spec(type_name: str):
    return get_type_map().namespace_catalog.get_spec(ndx_facemap.NAMESPACE, type_name)


def _own_fields(type_name: str) -> dict[str, bool]:
    """The Python field of everything the type's own spec adds or redefines -> whether it is required:
    attributes, datasets (with their attributes as ``<dataset>__<attribute>``), links and named groups."""
    spec = _spec(type_name)
    own = [s for s in (*spec.attributes, *spec.datasets, *spec.links, *spec.groups)
           if not spec.is_inherited_spec(s) or spec.is_overridden_spec(s)]  # fmt: skip
    fields = {}
    for item in own:
        if item.name is None:  # a typed group of quantity '*': a child collection, checked by type
            continue
        fields[item.name] = item.required
        for attribute in getattr(item, "attributes", ()):
            if not item.is_inherited_spec(attribute):
                fields[f"{item.name}__{attribute.name}"] = attribute.required
    return fields


# ------------------------------------------------------------------------------------------------ comparing


def _value(value):
    """An array-like as a numpy array (HDF5 datasets read in full); anything else as it is."""
    if isinstance(value, DataIO):
        value = value.data
    if isinstance(value, h5py.Dataset):
        return value[()]
    return value


def _children(container) -> dict[str, dict]:
    """The child collections of a container by field (``facemap_views``, ``images``, ...)."""
    confs = getattr(type(container), "__clsconf__", [])
    confs = [confs] if isinstance(confs, dict) else confs
    return {conf["attr"]: getattr(container, conf["attr"]) for conf in confs}


def assert_same(read, written, where: str = "") -> None:
    """``read`` (from a file) holds what ``written`` held: every field of its type, recursively through children;
    a link must lead to the same object (same object_id), a region to a table of the same name and type."""
    where = where or written.name
    assert type(read) is type(written), f"{where}: {type(read)} is not {type(written)}"
    assert read.name == written.name, where
    if isinstance(written, DynamicTable):
        _assert_same_table(read, written, where)
        return
    for conf in type(written).get_fields_conf():
        field = conf["name"]
        _assert_same_value(getattr(read, field), getattr(written, field), f"{where}.{field}", written)
    for field, collection in _children(written).items():
        read_collection = getattr(read, field)
        assert sorted(read_collection) == sorted(collection), f"{where}.{field}"
        for name, child in collection.items():
            assert_same(read_collection[name], child, f"{where}.{field}[{name!r}]")


def _assert_same_value(read, written, where: str, owner) -> None:
    written = _value(written)
    if written is None:
        assert read is None, f"{where}: {read!r} read back, nothing written"
    elif isinstance(written, DynamicTableRegion):
        assert isinstance(read, DynamicTableRegion), where
        assert read.name == written.name and read.description == written.description, where
        assert_array_equal(read.data[:], written.data, err_msg=where)
        # the table itself is compared where it is a child (the round trips check the region's table IS it)
        assert (read.table.name, type(read.table)) == (written.table.name, type(written.table)), where
    elif isinstance(written, AbstractContainer):
        if written.parent is owner:  # a child: the same content
            assert_same(read, written, where)
        else:  # a link: the same object
            assert read is not None and read.object_id == written.object_id, f"{where}: link to another object"
    elif isinstance(written, dict):
        assert sorted(read) == sorted(written), where
        for key, item in written.items():
            _assert_same_value(read[key], item, f"{where}[{key!r}]", owner)
    elif isinstance(written, (str, bytes, bool, datetime)):
        assert read == written, f"{where}: {read!r} != {written!r}"
    else:  # numbers and arrays
        read = _value(read)
        assert_array_equal(read, written, err_msg=where)
        if isinstance(written, np.ndarray):
            assert np.asarray(read).dtype == written.dtype, f"{where}: {np.asarray(read).dtype} != {written.dtype}"


def _assert_same_table(read, written, where: str) -> None:
    assert read.description == written.description, where
    assert list(read.colnames) == list(written.colnames), where
    assert len(read) == len(written), where
    assert_array_equal(read.id.data[:], written.id.data, err_msg=f"{where}.id")
    for name in written.colnames:
        column, read_column = written[name], read[name]
        at = f"{where}[{name!r}]"
        if isinstance(column, VectorIndex):  # a ragged column: row by row
            assert isinstance(read_column, VectorIndex), at
            assert read_column.target.description == column.target.description, at
            for row in range(len(written)):
                values = np.asarray(read_column[row])
                assert_array_equal(values, np.asarray(column[row], dtype=values.dtype), err_msg=f"{at}[{row}]")
        else:
            assert read_column.description == column.description, at
            assert_array_equal(read_column.data[:], column.data, err_msg=at)


def _nwbfile():
    """An empty file with a Subject, as DANDI requires (nwbinspector checks every file the tests write)."""
    return mock_NWBFile(subject=Subject(subject_id="m1", species="Mus musculus", sex="F", age="P60D"))


def _write(nwbfile, path: Path) -> None:
    """Write ``nwbfile`` and put an empty placeholder at each path its external videos name (nothing here decodes
    them; nwbinspector checks that they exist beside the file)."""
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    for series in nwbfile.acquisition.values():
        for name in getattr(series, "external_file", None) or []:
            (path.parent / str(name)).touch()


def _written_and_read(nwbfile, path: Path):
    _write(nwbfile, path)
    io = NWBHDF5IO(str(path), "r")
    return io, io.read()


def _tasks(nwbfile) -> list:
    return [o for m in nwbfile.processing.values() for o in m.data_interfaces.values()
            if isinstance(o, ndx_facemap.FacemapTask)]  # fmt: skip


def _full_task(nwbfile, *, seed: int = 0, center=None, videos=None, views=None, **task):
    """A task holding every type and every optional field: two views linking videos (made in ``nwbfile`` unless
    given), every signal, centres with and without roi_relative, motion and movie SVDs (``seed`` for their values,
    ``center`` for the pupil centre's, ``views`` for the first view(s), ``task`` for the task's arguments)."""
    if videos is None:
        videos = (mock_video(nwbfile=nwbfile, name="FaceCamera"),
                  mock_video(nwbfile=nwbfile, name="SideCamera", height=60, width=80))  # fmt: skip
    views = views or [mock_FacemapView(view_index=0, video=videos[0])]
    task = mock_FacemapTask(nwbfile=nwbfile, views=views, **{"task_id": "face", "movie_svd": True, **task})
    mock_FacemapView(task=task, view_index=1, height=60, width=80, video=videos[1])
    for signal, region in (
        ("motion_energy", "full_frame"),
        ("motion_energy", "whiskers"),
        ("pupil_area", "pupil"),
        ("pupil_area_smooth", "pupil"),
        ("pupil_axes_length", "pupil"),
        ("pupil_axes_direction", "pupil"),
        ("blink", "pupil"),
        ("running", "whiskers"),
    ):
        mock_FacemapTimeSeries(task=task, signal=signal, region=region)
    mock_FacemapSpatialSeries(task=task, signal="pupil_center", relative=center, keep_relative=True)
    mock_FacemapSpatialSeries(task=task, signal="pupil_center_smooth")
    for svd_type in ("motion", "movie"):
        for region in ("full_frame", "whiskers"):
            mock_FacemapSVDSeries(task=task, svd_type=svd_type, region=region, seed=seed + len(task.series))
    return task


# ----------------------------------------------------------------------------------------------- unit tests


def test_namespace_ships_inside_the_package():
    assert ndx_facemap.SPEC_PATH.is_file()
    assert ndx_facemap.SPEC_PATH.parent.parent == Path(ndx_facemap.__file__).resolve().parent
    for name in SPEC_FILES:
        assert (ndx_facemap.SPEC_PATH.parent / name).is_file(), name


def test_format_version_is_the_namespace_version():
    text = ndx_facemap.SPEC_PATH.read_text(encoding="utf-8")
    (version,) = re.findall(r"^\s*version:\s*(\S+)\s*$", text, flags=re.M)
    assert ndx_facemap.FORMAT_VERSION == version
    assert re.fullmatch(r"1\.\d+\.\d+", version), version  # 1.x reads every 1.0.0 file


@pytest.mark.parametrize("name", TYPES)
def test_classes_are_named_and_typed(name):
    cls = getattr(ndx_facemap, name)
    assert cls.__name__ == name and cls.__module__ == "ndx_facemap"
    assert cls.namespace == ndx_facemap.NAMESPACE and cls.neurodata_type == name
    assert "abc." not in repr(cls) and "ndx_facemap." + name in repr(cls)
    assert name in ndx_facemap.__all__


@pytest.mark.parametrize(
    ("name", "base"),
    [("FacemapRegions", DynamicTable), ("FacemapView", NWBContainer), ("FacemapRun", NWBContainer),
     ("FacemapTimeSeries", TimeSeries), ("FacemapSpatialSeries", SpatialSeries), ("FacemapSVDSeries", TimeSeries),
     ("FacemapTask", NWBDataInterface)],
)  # fmt: skip
def test_types_extend_core_types(name, base):
    assert issubclass(getattr(ndx_facemap, name), base)


def _complete_kwargs(name: str) -> dict:
    """Every constructor argument of a type, required and optional, with known values."""
    region = DynamicTableRegion(name="region", data=[0], description="Its region.", table=mock_FacemapRegions())
    image = GrayscaleImage(name="average_frame", data=np.zeros((30, 40), np.float32), description="Average frame.")
    timing = dict(rate=30.0, starting_time=0.0)
    return {
        "FacemapRun": dict(name="run", engine="facemap", engine_version="1.0.3", source_file="face_proc.npy",
                           processing_time=datetime.fromisoformat("2024-05-06T12:30:00+00:00")),
        "FacemapView": dict(name="view0", view_index=0, height=120, width=160, video=mock_video()),
        "FacemapRegions": dict(name="regions", description="Regions."),
        "FacemapTimeSeries": dict(name="MotionEnergy_full_frame", data=np.arange(5.0), unit="a.u.",
                                  signal="motion_energy", region=region, frame_alignment=FRAME_ALIGNMENT, **timing),
        "FacemapSpatialSeries": dict(name="PupilCenter_pupil", data=np.ones((5, 2)) + 20, unit="pixels",
                                     signal="pupil_center", roi_origin=np.array([20, 30], dtype=np.int32),
                                     region=region, roi_relative=np.ones((5, 2)), **timing),
        "FacemapSVDSeries": dict(name="MotionSVD_full_frame", data=np.ones((5, 2), np.float32), unit="a.u.",
                                 svd_type="motion", singular_values=np.array([2, 1], np.float32),
                                 singular_values__source="computed", masks=np.ones((2, 3, 4), np.float32),
                                 masks__normalization="singular_values", region=region,
                                 frame_alignment=FRAME_ALIGNMENT, source_video=mock_video(), **timing),
        "FacemapTask": dict(name="FacemapTask", task_id="face", task_mode="load", description="A task.",
                            motion_svd=True, movie_svd=False, multivideo_svd=False, spatial_bin=4, n_components=3,
                            parameters="{}", regions=mock_FacemapRegions(), run=mock_FacemapRun(),
                            summary_images=Images(name="summary_images", images=[image], description="Images.")),
    }[name]  # fmt: skip


# The required arguments of each type's own spec, by hand (test_required_arguments_are_the_specs checks them);
# the regions' required datasets are its columns, which every row must give.
REQUIRED_COLUMNS = ["roi_number", "roi_name", "roi_type", "camera_view", "y_start", "y_stop", "x_start", "x_stop",
                    "y_bin_start", "y_bin_stop", "x_bin_start", "x_bin_stop", "saturation", "pupil_sigma"]  # fmt: skip
REQUIRED = {
    "FacemapRun": ["engine"],
    "FacemapView": ["view_index", "height", "width"],
    "FacemapRegions": REQUIRED_COLUMNS,
    "FacemapTimeSeries": ["signal", "region"],
    "FacemapSpatialSeries": ["signal", "roi_origin", "region"],
    "FacemapSVDSeries": ["svd_type", "singular_values", "singular_values__source", "masks", "masks__normalization",
                         "region", "data"],
    "FacemapTask": ["task_id", "task_mode", "motion_svd", "movie_svd", "multivideo_svd", "spatial_bin",
                    "n_components", "parameters", "regions"],
}  # fmt: skip


@pytest.mark.parametrize("name", TYPES)
def test_required_arguments_are_the_specs(name):
    assert sorted(f for f, required in _own_fields(name).items() if required) == sorted(REQUIRED[name])


@pytest.mark.parametrize("name", TYPES)
def test_constructors_keep_every_argument(name):
    kwargs = _complete_kwargs(name)
    obj = getattr(ndx_facemap, name)(**kwargs)
    for field, value in kwargs.items():
        got = getattr(obj, field)
        if isinstance(value, AbstractContainer):
            assert got is value, field
        else:
            assert_equal(got, value, err_msg=field)


@pytest.mark.parametrize(("name", "missing"), [(n, f) for n in TYPES if n != "FacemapRegions" for f in REQUIRED[n]])
def test_a_missing_required_argument_is_refused(name, missing):
    kwargs = _complete_kwargs(name)
    del kwargs[missing]
    with pytest.raises(TypeError, match=f"missing argument '{missing}'"):
        getattr(ndx_facemap, name)(**kwargs)


@pytest.mark.parametrize("missing", REQUIRED_COLUMNS)
def test_a_region_row_without_a_required_column_is_refused(missing):
    table = ndx_facemap.FacemapRegions(name="regions", description="Regions.")
    row = {k: v for k, v in MOCK_REGIONS[1].items() if k != missing}
    with pytest.raises(ValueError, match=missing):
        table.add_row(**row)


def test_a_region_table_without_its_description_is_refused():
    with pytest.raises(TypeError, match="missing argument 'description'"):
        ndx_facemap.FacemapRegions(name="regions")


@pytest.mark.parametrize(
    ("name", "optional"),
    [(n, f) for n in TYPES for f, required in _own_fields(n).items() if not required and f in _complete_kwargs(n)],
)
def test_an_optional_argument_may_be_left_out(name, optional):
    kwargs = _complete_kwargs(name)
    del kwargs[optional]
    assert getattr(getattr(ndx_facemap, name)(**kwargs), optional) is None


def test_mock_regions_have_a_pupil_with_its_ellipse():
    table = mock_FacemapRegions()
    assert list(table["roi_name"][:]) == [r["roi_name"] for r in MOCK_REGIONS] == ["full_frame", "whiskers", "pupil"]
    assert list(table["roi_type"][:]) == ["full_frame", "motion", "pupil"]
    assert isinstance(table["ellipse"], VectorIndex)
    (pupil,) = [i for i, t in enumerate(table["roi_type"][:]) if t == "pupil"]
    height = table["y_stop"][pupil] - table["y_start"][pupil]
    width = table["x_stop"][pupil] - table["x_start"][pupil]
    mask = np.asarray(table["ellipse"][pupil], dtype=bool)
    assert mask.size == height * width == 12 * 16
    mask = mask.reshape(height, width)
    # an inscribed ellipse: the middle row and column are set from edge to edge, the corners are not
    assert mask[height // 2].all() and mask[:, width // 2].all()
    assert not mask[[0, 0, -1, -1], [0, -1, 0, -1]].any()
    assert_array_equal(mask, mask[::-1]) and assert_array_equal(mask, mask[:, ::-1])
    for row in range(len(table)):
        if row != pupil:
            assert len(table["ellipse"][row]) == 0


def test_inscribed_ellipse_of_a_small_rectangle():
    # a 3 x 5 rectangle: pixel centres (y, x) in units of the half axes; only the middle row reaches the edges
    assert_array_equal(inscribed_ellipse(3, 5).astype(int), [[0, 1, 1, 1, 0], [1, 1, 1, 1, 1], [0, 1, 1, 1, 0]])


def test_mock_regions_without_ellipses_and_with_wrong_ellipses():
    rows = [dict(MOCK_REGIONS[0])]
    assert "ellipse" not in mock_FacemapRegions(rows=rows).colnames
    with pytest.raises(ValueError, match="one ellipse"):
        mock_FacemapRegions(rows=rows, ellipses=[None, None])


def test_mock_task_holds_its_parts():
    task = mock_FacemapTask()
    assert task.run.engine == "facemap_nwb.native" and task.run.engine_version == "1.0.0"
    assert len(task.regions) == 3 and task.regions.parent is task and task.run.parent is task
    assert [v.name for v in task.views] == ["view0"] and task.views[0].video is None
    assert sorted(task.summary_images.images) == ["average_frame", "average_motion"]
    values = json.loads(task.parameters)
    assert (values["spatial_bin"], values["n_components"]) == (4, 3)
    assert [r["name"] for r in values["rois"]] == ["whiskers", "pupil"] and "ellipse" not in values["rois"][1]
    assert task.series == {}
    without = mock_FacemapTask(views=[], summary_images=False)
    assert without.views == [] and without.summary_images is None


def test_mock_task_with_a_file_goes_into_behavior_and_links_its_video():
    nwbfile = _nwbfile()
    task = mock_FacemapTask(nwbfile=nwbfile, task_id="face")
    assert nwbfile.processing["behavior"]["FacemapTask"] is task
    assert task.views[0].video is nwbfile.acquisition["FaceCamera"]


@pytest.mark.parametrize("factory", [mock_FacemapRun, mock_FacemapRegions, mock_FacemapView])
def test_a_mock_part_with_a_file_goes_into_a_task_there(factory):
    nwbfile = _nwbfile()
    part = factory(nwbfile=nwbfile)
    (task,) = _tasks(nwbfile)
    assert part.parent is task


def test_views_are_in_view_index_order():
    task = mock_FacemapTask(views=[])
    for index in (2, 0, 1):
        mock_FacemapView(task=task, view_index=index)
    assert [int(v.view_index) for v in task.views] == [0, 1, 2]
    assert [v.name for v in task.views] == ["view0", "view1", "view2"]


def test_mock_time_series_adds_itself_to_its_task():
    task = mock_FacemapTask()
    series = mock_FacemapTimeSeries(task=task, signal="pupil_axes_direction", region="pupil", n_frames=6)
    assert task.facemap_time_series["PupilAxesDirection_pupil"] is series and task.series[series.name] is series
    assert series.data.shape == (6, 2, 2) and series.unit == "n.a." and series.frame_alignment is None
    assert series.region.table is task.regions and list(series.region.data) == [2]
    assert_array_equal(series.data.ravel(), np.arange(24) / 4)
    energy = mock_FacemapTimeSeries(task=task)
    assert energy.name == "MotionEnergy_full_frame" and energy.data.dtype == np.float32
    assert energy.frame_alignment == FRAME_ALIGNMENT and energy.rate == 30.0


def test_a_mock_series_without_a_task_makes_one():
    nwbfile = _nwbfile()
    series = mock_FacemapTimeSeries(nwbfile=nwbfile, signal="blink", region="pupil")
    (task,) = _tasks(nwbfile)
    assert series.parent is task and task.series == {"Blink_pupil": series}


def test_mock_spatial_series_is_in_frame_pixels():
    task = mock_FacemapTask()
    relative = np.array([[1.0, 2.0], [3.5, 4.25], [np.nan, np.nan]])
    series = mock_FacemapSpatialSeries(task=task, relative=relative)
    pupil = MOCK_REGIONS[2]
    assert_array_equal(series.roi_origin, [pupil["y_start"], pupil["x_start"]])
    assert_array_equal(series.data, relative + [20, 30])
    assert_array_equal(series.data - series.roi_origin, relative)
    assert series.roi_relative is None and series.unit == "pixels"
    assert task.facemap_spatial_series["PupilCenter_pupil"] is series
    kept = mock_FacemapSpatialSeries(task=task, signal="pupil_center_smooth", keep_relative=True)
    # the default path's shift by the origin is not exact in float64: what roi_relative is for
    assert_allclose(kept.data - kept.roi_origin, kept.roi_relative, rtol=1e-12)
    assert_array_equal(kept.roi_relative + kept.roi_origin, kept.data)
    inside = kept.roi_relative
    assert (inside >= 0).all() and (inside < [12, 16]).all()  # the default path stays in the 12 x 16 ROI


def test_mock_svd_series():
    task = mock_FacemapTask()
    svd = mock_FacemapSVDSeries(task=task, region=1, n_frames=7, n_components=2)
    assert svd.name == "MotionSVD_whiskers" and task.facemap_svd_series[svd.name] is svd
    assert svd.data.shape == (7, 2) and svd.masks.shape == (2, 12, 14)  # whiskers: bins 9..21 x 25..39
    assert_allclose(np.linalg.norm(svd.masks.reshape(2, -1), axis=1), 1, rtol=1e-6)
    assert svd.masks__normalization == "unit" and svd.singular_values__source == "computed"
    assert (np.diff(svd.singular_values) <= 0).all() and svd.frame_alignment == FRAME_ALIGNMENT
    assert svd.source_video is None  # the mock task's view has no video without a file
    movie = mock_FacemapSVDSeries(task=task, svd_type="movie")
    assert movie.name == "MovieSVD_full_frame" and movie.frame_alignment is None and movie.masks.shape[1:] == (30, 40)
    with pytest.raises(ValueError, match="no spatial bins"):
        mock_FacemapSVDSeries(task=task, region="pupil")


def test_mock_svd_links_the_video_of_its_view():
    nwbfile = _nwbfile()
    svd = mock_FacemapSVDSeries(nwbfile=nwbfile)
    assert svd.source_video is nwbfile.acquisition["FaceCamera"]
    assert mock_FacemapSVDSeries(task=svd.parent, svd_type="movie", source_video=False).source_video is None


def test_unknown_signals_and_regions_are_refused():
    task = mock_FacemapTask()
    with pytest.raises(ValueError, match="Unknown signal"):
        mock_FacemapTimeSeries(task=task, signal="pupil_center")
    with pytest.raises(ValueError, match="no region 'nose'"):
        mock_FacemapTimeSeries(task=task, region="nose")
    with pytest.raises(ValueError, match="not a row 3"):
        mock_FacemapSpatialSeries(task=task, region=3)


def test_task_series_gathers_every_kind():
    task = _full_task(_nwbfile())
    series = task.series
    assert (
        len(series)
        == len(task.facemap_time_series) + len(task.facemap_spatial_series) + len(task.facemap_svd_series)
        == 8 + 2 + 4
    )
    for name, one in series.items():
        assert one.name == name and one.parent is task


def test_printing_a_mock_task_is_short():
    text = str(_full_task(_nwbfile()))
    lines = text.splitlines()
    assert lines[0].startswith("FacemapTask ndx_facemap.FacemapTask: task 'face'") and len(lines) < 40
    assert repr(mock_FacemapTask()).splitlines()[0].startswith("FacemapTask ndx_facemap.FacemapTask")


# ------------------------------------------------------------------------------------------------- the spec


def _meta_schema() -> Path:
    """The JSON schema of the NWB specification language, as pynwb ships it (``pynwb/nwb-schema``)."""
    path = Path(pynwb.__file__).resolve().parent / "nwb-schema" / "nwb.schema.json"
    assert path.is_file(), f"pynwb no longer ships the NWB schema language's meta-schema at {path}"
    return path


def _validate_spec(path: Path) -> None:
    """hdmf's check of a spec file against the meta-schema (it uses jsonschema's RefResolver, deprecated in new
    jsonschema releases: that warning is not this package's)."""
    from hdmf.testing.validate_spec import validate_spec

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        validate_spec(path, _meta_schema())


@pytest.mark.parametrize("name", SPEC_FILES)
def test_spec_follows_the_nwb_schema_language(name):
    _validate_spec(ndx_facemap.SPEC_PATH.parent / name)


def test_the_schema_language_check_catches_a_bad_spec(tmp_path):
    """A negative control: the meta-schema check refuses a spec with a key the language does not have."""
    import jsonschema
    from ruamel.yaml import YAML

    spec = YAML(typ="safe", pure=True).load(ndx_facemap.SPEC_PATH.with_name(SPEC_FILES[1]).read_text())
    bad = copy.deepcopy(spec)
    bad["groups"][0]["neurodata_type_incc"] = "DynamicTable"
    path = tmp_path / "bad.extensions.yaml"
    path.write_text(json.dumps(bad), encoding="utf-8")  # JSON is YAML
    with pytest.raises(jsonschema.ValidationError, match="neurodata_type_incc"):
        _validate_spec(path)
    path.write_text(json.dumps(spec), encoding="utf-8")  # and the same file unchanged passes
    _validate_spec(path)


def test_namespace_loads_alone_and_every_type_resolves():
    """The shipped namespace loads into a fresh catalogue (with the core namespace it includes) and every type
    resolves to its core base type."""
    import hdmf.common
    from hdmf.spec import NamespaceCatalog
    from pynwb.spec import NWBDatasetSpec, NWBGroupSpec, NWBNamespace

    catalog = NamespaceCatalog(NWBGroupSpec, NWBDatasetSpec, NWBNamespace)
    common = Path(hdmf.common.__file__).resolve().parent / "hdmf-common-schema" / "common" / "namespace.yaml"
    core = Path(pynwb.__file__).resolve().parent / "nwb-schema" / "core" / "nwb.namespace.yaml"
    catalog.load_namespaces(str(common))
    catalog.load_namespaces(str(core))
    loaded = catalog.load_namespaces(str(ndx_facemap.SPEC_PATH))
    assert ndx_facemap.NAMESPACE in loaded
    core_types = set(catalog.get_namespace("core").get_registered_types())
    own = set(catalog.get_namespace(ndx_facemap.NAMESPACE).get_registered_types()) - core_types
    assert sorted(own) == sorted(TYPES)
    bases = {"FacemapRegions": "DynamicTable", "FacemapView": "NWBContainer", "FacemapRun": "NWBContainer",
             "FacemapTimeSeries": "TimeSeries", "FacemapSpatialSeries": "SpatialSeries",
             "FacemapSVDSeries": "TimeSeries", "FacemapTask": "NWBDataInterface"}  # fmt: skip
    for name in TYPES:
        spec = catalog.get_spec(ndx_facemap.NAMESPACE, name)
        assert spec.data_type_def == name and spec.data_type_inc == bases[name]
        assert bases[name] in catalog.get_hierarchy(ndx_facemap.NAMESPACE, name)
        # every type the type contains or links resolves too
        used = [c.data_type_inc for c in (*spec.groups, *spec.datasets) if c.data_type_inc is not None]
        used += [link.target_type for link in spec.links]
        for other in used:
            assert catalog.get_spec(ndx_facemap.NAMESPACE, other).data_type_def == other, (name, other)


def test_shipped_spec_is_the_generated_one():
    """Where this runs inside the facemap-nwb repository, the installed spec is the one schemas/ generates."""
    generated = DISTRIBUTION.parent / "schemas"
    if not (generated / "create_extension_spec.py").is_file():
        pytest.skip("not inside the facemap-nwb repository")
    for name in SPEC_FILES:
        shipped = (ndx_facemap.SPEC_PATH.parent / name).read_text(encoding="utf-8")
        assert shipped == (generated / name).read_text(encoding="utf-8"), f"{name}: reinstall ndx-facemap"
        assert shipped == (DISTRIBUTION / "src" / "ndx_facemap" / "spec" / name).read_text(encoding="utf-8"), name


# ---------------------------------------------------------------------------------------------- round trips


def test_round_trip_of_every_type_field_by_field(tmp_path):
    nwbfile = _nwbfile()
    task = _full_task(nwbfile)
    written = {name: [] for name in TYPES}
    for obj in (task, task.run, task.regions, *task.views, *task.series.values()):
        written[type(obj).__name__].append(obj)
    # every field a type's spec adds is set on at least one written object, so the comparison covers it
    for name, objects in written.items():
        assert objects, name
        if name == "FacemapRegions":
            assert set(_own_fields(name)) - {"ellipse_index"} <= set(task.regions.colnames)
            continue
        for field in _own_fields(name):
            assert any(getattr(o, field) is not None for o in objects), f"no mock {name} sets {field}"
    io, back = _written_and_read(nwbfile, tmp_path / "mock.nwb")
    with io:
        (read_task,) = _tasks(back)
        assert_same(read_task, task)  # recursively: run, regions, views, summary images, every series
        for series in read_task.series.values():
            assert series.region.table is read_task.regions
        for view in read_task.views:
            assert view.video is back.acquisition[view.video.name]
        assert read_task.facemap_svd_series["MotionSVD_whiskers"].source_video is back.acquisition["FaceCamera"]
        # the parts on their own, too (assert_same above reached them through the task)
        assert_same(read_task.run, task.run)
        assert_same(read_task.regions, task.regions)
        assert isinstance(read_task.run.processing_time, datetime)
        assert read_task.run.processing_time == datetime.fromisoformat("2024-05-06T12:30:00+00:00")


@pytest.mark.parametrize(
    ("change", "where"),
    [("svd values", r"facemap_svd_series\['MotionSVD_full_frame'\]\.data"),
     ("ellipse", r"regions\['ellipse'\]\[2\]"),
     ("pupil centre", r"facemap_spatial_series\['PupilCenter_pupil'\]\.data"),
     ("run", r"run\.engine_version"),
     ("view size", r"facemap_views\['view0'\]\.width"),
     ("video link", r"facemap_views\['view0'\]\.video: link to another object")],
)  # fmt: skip
def test_the_field_by_field_comparison_notices_a_difference(tmp_path, change, where):
    """A negative control of assert_same: a task that differs from the one written in one value deep inside, or
    whose links lead to other objects, is not the one read back, and the comparison says where."""
    nwbfile = _nwbfile()
    _full_task(nwbfile)
    io, back = _written_and_read(nwbfile, tmp_path / "mock.nwb")
    videos = (nwbfile.acquisition["FaceCamera"], nwbfile.acquisition["SideCamera"])  # the written objects
    changed = {
        "svd values": dict(seed=1),
        "ellipse": dict(regions=mock_FacemapRegions(ellipses=[None, None, ~inscribed_ellipse(12, 16)])),
        "pupil centre": dict(center=np.zeros((10, 2))),
        "run": dict(run=mock_FacemapRun(engine_version="1.0.1")),
        "view size": dict(views=[mock_FacemapView(view_index=0, width=161, video=videos[0])]),
    }
    with io:
        (read_task,) = _tasks(back)
        assert_same(read_task, _full_task(None, videos=videos))  # the same values and links: the same task
        other = (
            _full_task(_nwbfile()) if change == "video link" else _full_task(None, videos=videos, **changed[change])
        )
        with pytest.raises(AssertionError, match=where):
            assert_same(read_task, other)


def test_round_trip_of_a_task_without_its_optional_parts(tmp_path):
    nwbfile = _nwbfile()
    run = mock_FacemapRun(engine="facemap", engine_version=None, processing_time=None, source_file=None)
    regions = mock_FacemapRegions(rows=[dict(MOCK_REGIONS[0])])
    views = [mock_FacemapView(view_index=0)]
    task = mock_FacemapTask(nwbfile=nwbfile, run=run, views=views, summary_images=False, regions=regions)
    mock_FacemapSpatialSeries(task=task, region=0)
    mock_FacemapSVDSeries(task=task, svd_type="movie", source_video=False)
    io, back = _written_and_read(nwbfile, tmp_path / "bare.nwb")
    with io:
        (read_task,) = _tasks(back)
        assert_same(read_task, task)
        assert read_task.run.engine_version is None and read_task.run.processing_time is None
        assert read_task.summary_images is None and read_task.views[0].video is None
        assert "ellipse" not in read_task.regions.colnames
        center = read_task.facemap_spatial_series["PupilCenter_full_frame"]
        assert center.roi_relative is None
        assert_array_equal(center.data[:] - center.roi_origin, task.series["PupilCenter_full_frame"].data - [0, 0])
        movie = read_task.facemap_svd_series["MovieSVD_full_frame"]
        assert movie.source_video is None and movie.frame_alignment is None


def test_round_trip_of_linked_timestamps(tmp_path):
    """Aligned timestamps are stored once, on the first series; the others link to them."""
    nwbfile = _nwbfile()
    task = mock_FacemapTask(nwbfile=nwbfile)
    stamps = (np.arange(10) + (np.arange(10) >= 6)) / 29.97 + 5.0  # aligned to a clock that saw a frame dropped
    first = mock_FacemapTimeSeries(task=task, timestamps=stamps)
    other = mock_FacemapSVDSeries(task=task, timestamps=first)
    center = mock_FacemapSpatialSeries(task=task, timestamps=first)
    path = tmp_path / "stamps.nwb"
    io, back = _written_and_read(nwbfile, path)
    with io:
        (read_task,) = _tasks(back)
        read_first = read_task.series[first.name]
        assert_array_equal(read_first.timestamps[:], stamps)
        for series in (other, center):
            read = read_task.series[series.name]
            assert read.timestamps is read_first.timestamps and read.rate is None
    with h5py.File(path, "r") as f:
        group = f[f"processing/behavior/FacemapTask/{other.name}"]
        assert isinstance(group.get("timestamps", getlink=True), (h5py.SoftLink, h5py.HardLink))
        assert group["timestamps"] == f[f"processing/behavior/FacemapTask/{first.name}/timestamps"]


def test_round_trip_keeps_chunked_masks(tmp_path):
    """Masks wrapped for chunking (as facemap-nwb writes them, one chunk per component) read back the same."""
    nwbfile = _nwbfile()
    task = mock_FacemapTask(nwbfile=nwbfile)
    masks = np.arange(2 * 12 * 14, dtype=np.float32).reshape(2, 12, 14)
    kwargs = {**_complete_kwargs("FacemapSVDSeries"), "masks": H5DataIO(masks, chunks=(1, 12, 14)),
              "region": DynamicTableRegion(name="region", data=[1], description="Its region.", table=task.regions),
              "source_video": task.views[0].video}  # fmt: skip
    svd = ndx_facemap.FacemapSVDSeries(**kwargs)
    task.add_facemap_svd_series(svd)
    io, back = _written_and_read(nwbfile, tmp_path / "chunked.nwb")
    with io:
        read = _tasks(back)[0].facemap_svd_series[svd.name]
        assert_same(read, svd)
        assert read.masks.chunks == (1, 12, 14)


# --------------------------------------------------------------------------- the committed file (back-compat)

# What tests/make_test_file.py asks facemap-nwb for: one 60 x 80 view, 40 frames at 30 Hz, spatial bin 2, 5
# components, and these ROIs as (type, x, y, width, height).
ROIS = {"whiskers": ("motion", 40, 10, 30, 20), "pupil": ("pupil", 10, 10, 20, 14),
        "eyelid": ("blink", 10, 10, 20, 14), "wheel": ("running", 5, 40, 30, 15)}  # fmt: skip
# Every signal the format 1.0.0 gives those ROIs: (type, signal or svd_type, region); motion energy and SVDs are
# made for the full frame and each motion ROI.
EXPECTED_SIGNALS = sorted(
    [("FacemapTimeSeries", "motion_energy", r) for r in ("full_frame", "whiskers")]
    + [("FacemapTimeSeries", s, "pupil") for s in ("pupil_area", "pupil_area_smooth", "pupil_axes_length",
                                                   "pupil_axes_direction")]
    + [("FacemapSpatialSeries", s, "pupil") for s in ("pupil_center", "pupil_center_smooth")]
    + [("FacemapTimeSeries", "blink", "eyelid"), ("FacemapTimeSeries", "running", "wheel")]
    + [("FacemapSVDSeries", k, r) for k in ("motion", "movie") for r in ("full_frame", "whiskers")]
)  # fmt: skip


def _kind(series) -> str:
    return series.svd_type if isinstance(series, ndx_facemap.FacemapSVDSeries) else series.signal


def test_the_committed_file_caches_format_1_0_0():
    with h5py.File(BACK_COMPAT, "r") as f:
        assert list(f["specifications/ndx-facemap"]) == ["1.0.0"]


def test_the_committed_file_and_a_mock_file_are_valid_nwb(tmp_path):
    nwbfile = _nwbfile()
    _full_task(nwbfile)
    _write(nwbfile, tmp_path / "mock.nwb")
    for path in (BACK_COMPAT, tmp_path / "mock.nwb"):
        assert list(pynwb.validate(path=str(path))) == [], path


def test_back_compat_file_task_run_views_and_regions():
    with NWBHDF5IO(str(BACK_COMPAT), "r") as io:
        nwbfile = io.read()
        (task,) = _tasks(nwbfile)
        assert (task.task_id, task.task_mode, task.spatial_bin, task.n_components) == ("face", "load", 2, 5)
        assert (task.motion_svd, task.movie_svd) == (True, True)
        run = task.run
        assert run.engine == "facemap_nwb.native" and isinstance(run.engine_version, str) and run.engine_version
        assert isinstance(run.processing_time, datetime) and run.processing_time.tzinfo is not None
        (view,) = task.views
        assert (view.name, int(view.view_index), int(view.height), int(view.width)) == ("view0", 0, 60, 80)
        assert view.video is nwbfile.acquisition[view.video.name]
        params = json.loads(task.parameters)
        assert (params["spatial_bin"], params["n_components"]) == (2, 5)
        assert [r["name"] for r in params["rois"]] == list(ROIS)
        assert not any("ellipse" in r for r in params["rois"])  # the masks are rows of the regions table
        regions = task.regions
        names = [str(n) for n in regions["roi_name"][:]]
        assert names == ["full_frame", *ROIS]
        assert [str(t) for t in regions["roi_type"][:]] == ["full_frame", *(v[0] for v in ROIS.values())]
        for row, name in enumerate(names):
            x, y, width, height = ROIS[name][1:] if name in ROIS else (0, 0, 80, 60)
            got = [int(regions[c][row]) for c in ("y_start", "y_stop", "x_start", "x_stop")]
            assert got == [y, y + height, x, x + width], name  # stop is exclusive
            mask = np.asarray(regions["ellipse"][row], dtype=bool)
            if ROIS.get(name, ("",))[0] in ("pupil", "blink"):
                mask = mask.reshape(height, width)
                assert mask[height // 2].all() and not mask[[0, 0, -1, -1], [0, -1, 0, -1]].any(), name
            else:
                assert mask.size == 0, name
        assert_equal(regions["saturation"][:], [np.nan, np.nan, 100.0, 60.0, np.nan])
        assert_equal(regions["pupil_sigma"][:], [np.nan, np.nan, 2.0, np.nan, np.nan])
        assert [int(regions[c][0]) for c in ("y_bin_start", "y_bin_stop", "x_bin_start", "x_bin_stop")] == [
            0, 60 // 2, 0, 80 // 2
        ]  # fmt: skip
        for row, name in enumerate(names):  # no SVD of pupil, blink and running ROIs: no bins
            if name in ("pupil", "eyelid", "wheel"):
                assert [int(regions[c][row]) for c in ("y_bin_start", "x_bin_start")] == [-1, -1], name
        assert sorted(task.summary_images.images) == ["average_frame", "average_motion"]
        for image in task.summary_images.images.values():
            assert image.data.shape == (30, 40)


def test_back_compat_file_signals():
    with NWBHDF5IO(str(BACK_COMPAT), "r") as io:
        nwbfile = io.read()
        (task,) = _tasks(nwbfile)
        names = [str(n) for n in task.regions["roi_name"][:]]
        found = sorted((type(s).__name__, _kind(s), names[s.region.data[0]]) for s in task.series.values())
        assert found == EXPECTED_SIGNALS
        video = task.views[0].video
        for series in task.series.values():
            assert series.region.table is task.regions, series.name
            assert series.data.shape[0] == 40 and series.rate == 30.0 and series.starting_time == 0.0, series.name
            aligned = _kind(series) == "motion_energy" or (_kind(series) == "motion")  # motion SVDs too
            assert (getattr(series, "frame_alignment", None) is not None) == aligned, series.name
        for svd in task.facemap_svd_series.values():
            row = int(svd.region.data[0])
            bins = [int(task.regions[c][row]) for c in ("y_bin_start", "y_bin_stop", "x_bin_start", "x_bin_stop")]
            assert svd.data.shape == (40, 5) and svd.masks.shape == (5, bins[1] - bins[0], bins[3] - bins[2])
            assert svd.source_video is video
            values = svd.singular_values[:]
            assert (np.diff(values) <= 0).all()
            assert svd.singular_values__source in ("facemap", "mask_norms", "projection_norms", "computed")
            norms = np.linalg.norm(svd.masks[:].reshape(5, -1), axis=1)
            expected = 1.0 if svd.masks__normalization == "unit" else values
            assert svd.masks__normalization in ("unit", "singular_values")
            assert_allclose(norms, expected, rtol=1e-3)
        for center in task.facemap_spatial_series.values():
            assert_array_equal(center.roi_origin, [10, 10])  # the pupil ROI's top-left (y, x)
            data = center.data[:]
            relative = center.roi_relative[:] if center.roi_relative is not None else data - center.roi_origin
            assert_allclose(data - center.roi_origin, relative)
            inside = relative[~np.isnan(relative).any(axis=1)]
            assert inside.size and (inside >= 0).all() and (inside < [14, 20]).all()  # within the 14 x 20 ROI
            assert center.unit == "pixels"


PYNWB_ONLY_CHECK = """
import sys
import ndx_facemap
from pynwb import NWBHDF5IO
with NWBHDF5IO({path!r}, "r") as io:
    nwbfile = io.read()
    tasks = [o for m in nwbfile.processing.values() for o in m.data_interfaces.values()
             if isinstance(o, ndx_facemap.FacemapTask)]
    (task,) = tasks
    for name, series in task.series.items():
        kind = series.svd_type if isinstance(series, ndx_facemap.FacemapSVDSeries) else series.signal
        region = series.region.table["roi_name"][series.region.data[0]]
        cls = type(series).__module__ + "." + type(series).__name__
        print("SIGNAL", name, cls, kind, region, series.region.table is task.regions, sep="\\t")
    print("TASK", type(task).__module__ + "." + type(task).__name__, sep="\t")
    print("FACEMAP_NWB", any(m.split(".")[0] == "facemap_nwb" for m in sys.modules), sep="\t")
    print(task)
"""


def _run(code: str) -> list[str]:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout.splitlines()


def test_pynwb_only_check_of_the_committed_file():
    """From the file facemap-nwb wrote, in a fresh interpreter with only pynwb and ndx_facemap imported: the task
    found by type, each of its signals with what it holds and its region read through ``series.region`` (whose
    table is the task's regions), ndx_facemap classes, and a task that prints in under 40 lines."""
    lines = _run(PYNWB_ONLY_CHECK.format(path=str(BACK_COMPAT)))
    signals = [line.split("\t") for line in lines if line.startswith("SIGNAL\t")]
    assert sorted((cls.removeprefix("ndx_facemap."), kind, region) for _, _, cls, kind, region, _ in signals) == (
        EXPECTED_SIGNALS
    )
    assert all(cls.startswith("ndx_facemap.") for _, _, cls, *_ in signals)
    assert all(same == "True" for *_, same in signals), "a series' region is not the task's regions table"
    assert "TASK\tndx_facemap.FacemapTask" in lines and "FACEMAP_NWB\tFalse" in lines
    printed = lines[lines.index("FACEMAP_NWB\tFalse") + 1 :]
    assert printed[0].startswith("FacemapTask ndx_facemap.FacemapTask: task 'face'"), printed[0]
    assert len(printed) < 40, f"printing one task took {len(printed)} lines"


PRINT_TASK = """
import ndx_facemap
from pynwb import NWBHDF5IO
with NWBHDF5IO({path!r}, "r") as io:
    behavior = io.read().processing["behavior"]
    task = next(o for o in behavior.data_interfaces.values() if isinstance(o, ndx_facemap.FacemapTask))
    print(type(task).__module__, type(task).__name__)
    print(task)
"""


def test_printing_a_task_is_short_and_names_the_real_class():
    lines = _run(PRINT_TASK.format(path=str(BACK_COMPAT)))
    assert lines[0] == "ndx_facemap FacemapTask", lines[0]
    assert len(lines) < 40, f"printing one task took {len(lines)} lines"


READ_WITHOUT_THE_PACKAGE = """
import sys
from pynwb import NWBHDF5IO
with NWBHDF5IO({path!r}, "r") as io:
    nwbfile = io.read()
    (task,) = [o for o in nwbfile.processing["behavior"].data_interfaces.values()
               if o.neurodata_type == "FacemapTask"]
    print(type(task).__name__, task.task_id, len(task.facemap_svd_series), task.regions.neurodata_type)
print("ndx_facemap" in sys.modules)
"""


def test_the_file_reads_from_its_cached_namespace_without_ndx_facemap():
    assert _run(READ_WITHOUT_THE_PACKAGE.format(path=str(BACK_COMPAT))) == ["FacemapTask face 4 FacemapRegions",
                                                                            "False"]  # fmt: skip


def test_this_environment_may_lack_facemap_nwb():
    """Where CI runs these tests with only pynwb and ndx-facemap, facemap_nwb is not importable: nothing above
    needed it."""
    if importlib.util.find_spec("av") is not None:
        pytest.skip("PyAV is installed: this is not the pynwb-only environment")
    with pytest.raises(ImportError):
        import facemap_nwb.video  # noqa: F401 - needs PyAV, absent here


# ---------------------------------------------------------------------------------------------- the README


def test_the_readme_example_runs(tmp_path, monkeypatch, capsys):
    """The README's Python example, on the committed file copied to the name it reads."""
    import shutil

    readme = (DISTRIBUTION / "README.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    shutil.copy(BACK_COMPAT, tmp_path / "session.nwb")
    shutil.copy(BACK_COMPAT.parent / "face.mp4", tmp_path / "face.mp4")  # the video the file names
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "FacemapTask ndx_facemap.FacemapTask: task 'face'" in out
    for kind, region in {(k, r) for _, k, r in EXPECTED_SIGNALS}:
        assert f": {kind} of region {region!r}" in out, (kind, region)
