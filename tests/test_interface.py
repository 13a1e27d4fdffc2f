"""FacemapInterface: neuroconv's own interface checks, and an NWBConverter next to a video interface."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

pytest.importorskip("facemap", reason="needs Facemap (the 'facemap' extra) to make the outputs")

from neuroconv import NWBConverter  # noqa: E402
from neuroconv.datainterfaces import ExternalVideoInterface  # noqa: E402
from neuroconv.tools.testing.data_interface_mixins import (  # noqa: E402
    DataInterfaceTestMixin,
    TemporalAlignmentMixin,
)

from facemap_nwb.interfaces import FacemapInterface  # noqa: E402
from facemap_nwb.nwb.io import read_facemap_nwb  # noqa: E402

from .conftest import trusted_proc  # noqa: E402
from .test_recording_nwb import serious_inspector_messages  # noqa: E402

pytestmark = pytest.mark.facemap


class TestFacemapInterface(DataInterfaceTestMixin, TemporalAlignmentMixin):
    data_interface_cls = FacemapInterface
    interface_kwargs = {}

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _source(cls, synthetic_facemap):
        cls.interface_kwargs = dict(
            file_path=str(synthetic_facemap["npy"]), video_file_paths=[str(synthetic_facemap["video"])]
        )
        cls.proc = trusted_proc(synthetic_facemap["npy"])

    def edit_metadata(self, metadata):
        metadata["Subject"] = dict(subject_id="m1", species="Mus musculus", sex="F", age="P60D")
        return metadata

    def check_extracted_metadata(self, metadata):
        assert metadata["Behavior"]["Facemap"]["task_id"] == "0"
        assert metadata["Devices"]["facemap_camera"]["name"] == "FaceCamera"
        assert metadata["NWBFile"]["session_start_time"].year == 2023  # the video's creation time

    def check_read_nwb(self, nwbfile_path):
        results = read_facemap_nwb(nwbfile_path)
        assert_array_equal(results.motion_energy[0], self.proc["motion"][0])
        assert_array_equal(results.motion_svd[0].projections, self.proc["motSVD"][0])
        assert_array_equal(results.pupils[0].area, self.proc["pupil"][0]["area"])


def test_interface_inside_converter_with_video(synthetic_facemap, tmp_path, monkeypatch):
    class Converter(NWBConverter):
        data_interface_classes = dict(Video=ExternalVideoInterface, Facemap=FacemapInterface)

    # ExternalVideoInterface stores the path as given: give it relative to the NWB file's folder.
    monkeypatch.chdir(synthetic_facemap["video"].parent)
    video = synthetic_facemap["video"].name
    converter = Converter(
        source_data=dict(
            Video=dict(file_paths=[video], video_name="FaceVideo"),
            Facemap=dict(file_path=str(synthetic_facemap["npy"]), video_file_paths=[video]),
        )
    )
    metadata = converter.get_metadata()
    metadata["Behavior"]["Facemap"]["video_name"] = "FaceVideo"
    metadata["Subject"] = dict(subject_id="m1", species="Mus musculus", sex="F", age="P60D")
    out = synthetic_facemap["video"].parent / "converted.nwb"
    converter.run_conversion(nwbfile_path=str(out), metadata=metadata)

    from pynwb import NWBHDF5IO, validate

    errors = validate(path=str(out))
    assert not (errors[0] if isinstance(errors, tuple) else errors)
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert list(nwb.acquisition) == ["FaceVideo"], "the Facemap interface must link to the video, not add another"
        task = nwb.processing["behavior"]["FacemapTask"]
        assert task.facemap_svd_series["MotionSVD_full_frame"].source_video.name == "FaceVideo"
        assert [view.video.name for view in task.views] == ["FaceVideo"]
    assert serious_inspector_messages(out) == []
    out.unlink()


def test_aligned_timestamps_are_written(synthetic_facemap, tmp_path):
    """Regular aligned times (a drift and an offset) are written as starting time and rate on the video and every
    series; irregular ones are stored once, on the video this interface writes, and every series links to them."""
    import h5py
    from pynwb import NWBHDF5IO

    interface = FacemapInterface(file_path=synthetic_facemap["npy"], video_file_paths=[synthetic_facemap["video"]])
    metadata = interface.get_metadata()
    metadata["Subject"] = dict(subject_id="m1", species="Mus musculus", sex="F", age="P60D")
    original = interface.get_original_timestamps()
    jitter = np.random.default_rng(3).uniform(0, 0.004, original.size)
    for name, aligned in (("regular", original * 1.001 + 12.5), ("irregular", original + 12.5 + jitter)):
        interface.set_aligned_timestamps(aligned)
        out = tmp_path / f"{name}.nwb"
        interface.run_conversion(nwbfile_path=str(out), metadata=metadata)
        with NWBHDF5IO(str(out), "r") as io:
            nwb = io.read()
            task, video = nwb.processing["behavior"]["FacemapTask"], nwb.acquisition["FaceCamera"]
            for series in [video, *task.series.values()]:
                if series.rate is not None:  # an external-file ImageSeries has no data to count frames from
                    times = series.starting_time + np.arange(aligned.size) / series.rate
                else:
                    times = series.timestamps[:]
                np.testing.assert_allclose(times, aligned, rtol=0, atol=1e-9, err_msg=series.name)
                assert (series.rate is None) == (name == "irregular"), series.name
        with h5py.File(out, "r") as f:
            stored = []
            f.visititems(lambda path, item: stored.append(path) if path.endswith("/timestamps") else None)
            hard = [p for p in stored if isinstance(f.get(p, getlink=True), h5py.HardLink)]
            assert hard == ([] if name == "regular" else ["acquisition/FaceCamera/timestamps"]), hard
        assert serious_inspector_messages(out) == []
    with pytest.raises(ValueError, match="Got 3 aligned timestamps for 300 frames"):
        interface.set_aligned_timestamps([1.0, 2.0, 3.0])


def test_two_facemap_tasks_in_one_converter(synthetic_facemap, monkeypatch):
    """Two Facemap interfaces (two tasks) write into one file, each with its own metadata key; each task is its own
    group, found by type and task id, with nothing inside renamed."""

    class Converter(NWBConverter):
        data_interface_classes = dict(Video=ExternalVideoInterface, First=FacemapInterface, Second=FacemapInterface)

    monkeypatch.chdir(synthetic_facemap["video"].parent)
    video, npy = synthetic_facemap["video"].name, str(synthetic_facemap["npy"])
    converter = Converter(
        source_data=dict(
            Video=dict(file_paths=[video], video_name="FaceVideo"),
            First=dict(file_path=npy, video_file_paths=[video]),
            Second=dict(file_path=npy, video_file_paths=[video], metadata_key="FacemapRerun"),
        )
    )
    metadata = converter.get_metadata()
    metadata["Behavior"]["Facemap"]["video_name"] = "FaceVideo"
    metadata["Behavior"]["FacemapRerun"].update(video_name="FaceVideo", task_id="rerun")
    metadata["Subject"] = dict(subject_id="m1", species="Mus musculus", sex="F", age="P60D")
    out = synthetic_facemap["video"].parent / "two_tasks.nwb"  # beside the video: its path is relative
    converter.run_conversion(nwbfile_path=str(out), metadata=metadata)
    from facemap_nwb.nwb.io import read_facemap_task_ids

    assert read_facemap_task_ids(out) == ["0", "rerun"]
    for task_id in ("0", "rerun"):
        results = read_facemap_nwb(out, task_id=task_id)
        assert_array_equal(results.motion_energy[0], trusted_proc(synthetic_facemap["npy"])["motion"][0])
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(out), "r") as io:
        behavior = io.read().processing["behavior"]
        assert set(behavior.data_interfaces) == {"FacemapTask", "FacemapTask_rerun"}
        first, second = behavior["FacemapTask"], behavior["FacemapTask_rerun"]
        assert (first.task_id, second.task_id) == ("0", "rerun")
        assert sorted(first.series) == sorted(second.series) and "MotionSVD_full_frame" in second.series
        for task in (first, second):
            assert all(series.region.table is task.regions for series in task.series.values())
    assert serious_inspector_messages(out) == []
    out.unlink()


def test_second_camera_needs_its_own_video_series(synthetic_facemap, monkeypatch):
    """A second Facemap interface on another camera's video never links to the first camera's ImageSeries."""
    import shutil
    from pathlib import Path

    class Converter(NWBConverter):
        data_interface_classes = dict(Face=FacemapInterface, Body=FacemapInterface)

    folder = synthetic_facemap["video"].parent
    monkeypatch.chdir(folder)
    # Another camera's file, with the same name in its own folder (and the same frames, so counts agree).
    body = folder / "cam1" / synthetic_facemap["video"].name
    body.parent.mkdir(exist_ok=True)
    shutil.copy(synthetic_facemap["video"], body)
    npy = str(synthetic_facemap["npy"])
    out = folder / "face_and_body.nwb"
    try:
        converter = Converter(
            source_data=dict(
                Face=dict(file_path=npy, video_file_paths=[synthetic_facemap["video"].name]),
                Body=dict(file_path=npy, video_file_paths=[str(body)], metadata_key="FacemapBody"),
            )
        )
        metadata = converter.get_metadata()
        metadata["Subject"] = dict(subject_id="m1", species="Mus musculus", sex="F", age="P60D")
        metadata["Behavior"]["FacemapBody"].update(task_id="body")
        with pytest.raises(
            ValueError, match=r"already holds an ImageSeries 'FaceCamera' of other video files.*video_name"
        ):
            converter.run_conversion(nwbfile_path=str(out), metadata=metadata)
        assert not out.exists()
        metadata["Behavior"]["FacemapBody"]["video_name"] = "BodyCamera"
        converter.run_conversion(nwbfile_path=str(out), metadata=metadata)
        from pynwb import NWBHDF5IO

        with NWBHDF5IO(str(out), "r") as io:
            behavior = io.read().processing["behavior"]
            body_svd = behavior["FacemapTask_body"].facemap_svd_series["MotionSVD_full_frame"]
            assert body_svd.source_video.name == "BodyCamera"
            assert behavior["FacemapTask_body"].views[0].video.name == "BodyCamera"
            files = body_svd.source_video.external_file
            assert [Path(f) for f in files] == [body]  # absolute: a converter does not know the file's folder
            face_svd = behavior["FacemapTask"].facemap_svd_series["MotionSVD_full_frame"]
            assert face_svd.source_video.name == "FaceCamera"
    finally:
        shutil.rmtree(body.parent)
        out.unlink(missing_ok=True)
