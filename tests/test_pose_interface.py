"""FacemapPoseInterface as neuroconv's pose interfaces behave: neuroconv's PoseEstimationInterfaceTestMixin,
alignment, stub conversions, and linking to a converter's video interface."""

from __future__ import annotations

import numpy as np
import pytest
from neuroconv import NWBConverter
from neuroconv.datainterfaces import ExternalVideoInterface
from neuroconv.tools.testing.data_interface_mixins import PoseEstimationInterfaceTestMixin
from numpy.testing import assert_allclose, assert_array_equal
from pynwb import NWBHDF5IO

from facemap_nwb.interfaces import FacemapPoseInterface
from facemap_nwb.nwb.io import read_facemap_pose_nwb
from facemap_nwb.pose import FACE_BODYPARTS
from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION
from .pose_files import synthetic_keypoints, write_facemap_pose
from .test_facemap_model import T
from .test_recording_nwb import serious_inspector_messages

SUBJECT = dict(subject_id="m1", species="Mus musculus", sex="F", age="P60D")
H, W = 60, 80


def _make_source(folder):
    folder.mkdir(parents=True, exist_ok=True)
    video = make_face_video(folder / "face.mp4", n_frames=T, height=H, width=W, creation_time=CREATION)
    data = synthetic_keypoints(T, H, W)
    return video, write_facemap_pose(video, data, bbox=[0, H, 0, W], image_size=([H], [W])), data


class _Converter(NWBConverter):
    data_interface_classes = dict(Video=ExternalVideoInterface, Pose=FacemapPoseInterface)


def _converter(video, pose) -> NWBConverter:
    """A converter of the video (ImageSeries 'FaceVideo', its path relative to the working folder) and the pose."""
    return _Converter(
        source_data=dict(
            Video=dict(file_paths=[video.name], video_name="FaceVideo"),
            Pose=dict(file_path=str(pose), video_file_path=str(video)),
        )
    )


@pytest.fixture
def source(tmp_path):
    return _make_source(tmp_path / "source")


class TestFacemapPoseInterfaceContract(PoseEstimationInterfaceTestMixin):
    data_interface_cls = FacemapPoseInterface
    interface_kwargs = {}

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _source(cls, tmp_path_factory):
        video, pose, data = _make_source(tmp_path_factory.mktemp("pose_contract"))
        cls.interface_kwargs = dict(file_path=str(pose), video_file_path=str(video))
        cls.data = data

    def edit_metadata(self, metadata):
        metadata["Subject"] = dict(SUBJECT)
        return metadata

    def check_extracted_metadata(self, metadata):
        entry = metadata["Pose"]["PoseEstimations"]["FacemapPose"]
        assert entry["source_software"] == "Facemap" and entry["scorer"] == "Facemap"
        assert "bounding box (Facemap's bbox) [0, 60, 0, 80]" in entry["description"]
        assert list(entry["PoseEstimationSeries"]) == list(FACE_BODYPARTS)
        assert metadata["Pose"]["Skeletons"]["FacemapPose"]["nodes"] == list(FACE_BODYPARTS)
        assert metadata["NWBFile"]["session_start_time"] == CREATION

    def check_read_nwb(self, nwbfile_path):
        super().check_read_nwb(nwbfile_path)
        (pose,) = read_facemap_pose_nwb(nwbfile_path)
        assert_array_equal(pose.positions, self.data[:, :, :2])
        assert_array_equal(pose.likelihood, self.data[:, :, 2])

    def run_custom_checks(self):
        assert serious_inspector_messages(self.nwbfile_path) == []


def test_alignment_and_converter_video_link(source, tmp_path, monkeypatch):
    video, pose, data = source
    alone = FacemapPoseInterface(pose, video_file_path=video)
    alone.set_aligned_starting_time(2.5)
    metadata = alone.get_metadata()
    metadata["Subject"] = dict(SUBJECT)
    out = tmp_path / "alone.nwb"
    alone.run_conversion(nwbfile_path=str(out), metadata=metadata)
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        series = nwb.processing["behavior"]["FacemapPose"].pose_estimation_series["paw"]
        assert series.starting_time == 2.5 and nwb.acquisition["FaceCamera"].starting_time == 2.5
    assert serious_inspector_messages(out) == []

    monkeypatch.chdir(video.parent)

    converter = _converter(video, pose)
    metadata = converter.get_metadata()
    metadata["Subject"] = dict(SUBJECT)
    out = video.parent / "converter.nwb"
    converter.run_conversion(nwbfile_path=str(out), metadata=metadata)
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert list(nwb.acquisition) == ["FaceVideo"]
        estimation = nwb.processing["behavior"]["FacemapPose"]
        assert estimation.source_video.name == "FaceVideo"
        times = estimation.pose_estimation_series["paw"].get_timestamps()
        assert_allclose(times, np.arange(T) / 30.0, atol=1e-6)
    assert serious_inspector_messages(out) == []


def test_stub_writes_the_first_frames(source, tmp_path):
    video, pose, data = source
    interface = FacemapPoseInterface(pose, video_file_path=video)
    metadata = interface.get_metadata()
    metadata["Subject"] = dict(SUBJECT)
    out = tmp_path / "stub.nwb"
    interface.run_conversion(nwbfile_path=str(out), metadata=metadata, stub_test=True, stub_frames=7)
    (back,) = read_facemap_pose_nwb(out)
    assert_array_equal(back.positions, data[:7, :, :2])


def test_wrong_video_is_refused(source, tmp_path):
    video, pose, _ = source
    longer = make_face_video(tmp_path / "longer.mp4", n_frames=T + 3, height=H, width=W, creation_time=CREATION)
    interface = FacemapPoseInterface(pose, video_file_path=longer)
    metadata = interface.get_metadata()
    metadata["Subject"] = dict(SUBJECT)
    out = tmp_path / "wrong.nwb"
    with pytest.raises(ValueError, match=rf"cover {T} frames but the video .*longer.mp4.* has {T + 3}"):
        interface.run_conversion(nwbfile_path=str(out), metadata=metadata)
    assert not out.exists()


def test_stub_beside_a_video_with_irregular_times(source, tmp_path, monkeypatch):
    video, pose, data = source
    monkeypatch.chdir(video.parent)

    converter = _converter(video, pose)
    times = np.arange(T) / 30.0 + np.random.default_rng(0).uniform(0, 0.004, T)
    converter.data_interface_objects["Video"].set_aligned_timestamps([times])
    metadata = converter.get_metadata()
    metadata["Subject"] = dict(SUBJECT)
    out = video.parent / "stub_irregular.nwb"
    converter.run_conversion(
        nwbfile_path=str(out),
        metadata=metadata,
        conversion_options=dict(Pose=dict(stub_test=True, stub_frames=5)),
    )
    (back,) = read_facemap_pose_nwb(out)
    assert_array_equal(back.positions, data[:5, :, :2])
    assert_allclose(back.extra["timestamps"], times[:5])


def test_messages_name_the_pose_settings(source):
    from pynwb.image import ImageSeries
    from pynwb.testing.mock.file import mock_NWBFile

    video, pose, _ = source
    interface = FacemapPoseInterface(pose, video_file_path=video)
    nwbfile = mock_NWBFile()
    for name in ("A", "B"):
        nwbfile.add_acquisition(
            ImageSeries(
                name=name, external_file=[str(video)], starting_frame=[0], format="external", rate=30.0, num_samples=T
            )
        )
    with pytest.raises(ValueError, match=r"metadata\['Pose'\]\['PoseEstimations'\]\['FacemapPose'\]\['video_name'\]"):
        interface.add_to_nwbfile(nwbfile, metadata=interface.get_metadata())
