"""FacemapInterface as neuroconv's own interfaces behave, without Facemap (hand-built Facemap output on a synthetic
video): neuroconv's test mixins, alignment that moves the video too, regular times as rate, stub conversions,
several cameras, linking to a converter's video interface by path, and cheap construction. Runs in both CI
environments (numpy 1.26 with Facemap, numpy 2 without)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from neuroconv import NWBConverter
from neuroconv.datainterfaces import ExternalVideoInterface
from neuroconv.tools.testing.data_interface_mixins import DataInterfaceTestMixin, TemporalAlignmentMixin
from pynwb import NWBHDF5IO

from facemap_nwb.interfaces import FacemapInterface
from facemap_nwb.nwb.io import read_facemap_nwb
from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION
from .test_facemap_model import T, hand_built_proc
from .test_recording_nwb import serious_inspector_messages

SUBJECT = dict(subject_id="m1", species="Mus musculus", sex="F", age="P60D")


def _make_source(folder):
    """A synthetic 60 x 80 video of T frames at 30 frames/s and a hand-built _proc.npy for it."""
    folder.mkdir(parents=True, exist_ok=True)
    video = make_face_video(folder / "face.mp4", n_frames=T, height=60, width=80, creation_time=CREATION)
    npy = folder / "face_proc.npy"
    np.save(npy, hand_built_proc(), allow_pickle=True)
    return video, npy


@pytest.fixture
def source(tmp_path):
    return _make_source(tmp_path / "source")


class TestFacemapInterfaceContract(DataInterfaceTestMixin, TemporalAlignmentMixin):
    data_interface_cls = FacemapInterface
    interface_kwargs = {}

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _source(cls, tmp_path_factory):
        video, npy = _make_source(tmp_path_factory.mktemp("contract"))
        cls.interface_kwargs = dict(file_path=str(npy), video_file_paths=[str(video)])
        cls.proc = hand_built_proc()

    def edit_metadata(self, metadata):
        metadata["Subject"] = dict(SUBJECT)
        return metadata

    def check_extracted_metadata(self, metadata):
        assert metadata["Behavior"]["Facemap"]["task_id"] == "0"
        assert metadata["NWBFile"]["session_start_time"] == CREATION  # the video's creation time

    def check_read_nwb(self, nwbfile_path):
        results = read_facemap_nwb(nwbfile_path)
        assert_array_equal(results.motion_energy[0], self.proc["motion"][0])
        assert_array_equal(results.motion_svd[0].projections, self.proc["motSVD"][0])
        assert_array_equal(results.pupils[0].center, self.proc["pupil"][0]["com"])

    def run_custom_checks(self):
        assert serious_inspector_messages(self.nwbfile_path) == []


def test_keyword_only_after_file_path(source):
    video, npy = source
    from pydantic import ValidationError

    with pytest.raises((TypeError, ValidationError), match="keyword"):
        FacemapInterface(npy, [video])  # the video list must be named
    FacemapInterface(npy, video_file_paths=[video])


def test_construction_does_not_decode(source, monkeypatch):
    """The constructor counts stored frames (no decoding); a frame-count mismatch is refused when writing."""
    import facemap_nwb.video as video_module

    video, npy = source
    monkeypatch.setattr(video_module, "GrayFrameReader", None)  # any decoding would fail
    interface = FacemapInterface(npy, video_file_paths=[video])
    assert interface.recording.files[0].frame_count_verified is False and interface.recording.frame_count == T
    longer = make_face_video(video.parent / "longer.mp4", n_frames=T + 3, height=60, width=80, creation_time=CREATION)
    mismatched = FacemapInterface(npy, video_file_paths=[longer])  # cheap: no error yet
    metadata = mismatched.get_metadata()
    metadata["Subject"] = dict(SUBJECT)
    out = video.parent / "mismatch.nwb"
    with pytest.raises(ValueError, match=rf"results hold {T} frames but the video .*longer.mp4.* has {T + 3}"):
        mismatched.run_conversion(nwbfile_path=str(out), metadata=metadata)
    assert not out.exists()


def _converter(video, npy):
    classes = dict(Video=ExternalVideoInterface, Facemap=FacemapInterface)
    source_data = dict(
        Video=dict(file_paths=[str(video)], video_name="FaceVideo"),
        Facemap=dict(file_path=str(npy), video_file_paths=[str(video)]),
    )

    class Converter(NWBConverter):
        data_interface_classes = classes

    converter = Converter(source_data=source_data)
    metadata = converter.get_metadata()
    metadata["Subject"] = dict(SUBJECT)
    return converter, metadata


ALIGNMENTS = {
    "none": lambda i: None,
    "starting_time": lambda i: i.set_aligned_starting_time(3.217),
    "timestamps_regular": lambda i: i.set_aligned_timestamps(i.get_original_timestamps() * 1.0005 + 2.0),
    "timestamps_irregular": lambda i: i.set_aligned_timestamps(
        i.get_original_timestamps() + 1.0 + np.random.default_rng(0).uniform(0, 0.003, T)
    ),
    "interpolation": lambda i: i.align_by_interpolation(
        unaligned_timestamps=np.array([0.0, 10.0]), aligned_timestamps=np.array([5.0, 15.01])
    ),
    "segments": lambda i: i.set_aligned_segment_starting_times([4.5]),
}


@pytest.mark.parametrize("alignment", sorted(ALIGNMENTS))
def test_alignment_moves_everything_and_inspector_is_clean(source, tmp_path, alignment, caplog, monkeypatch):
    """Alone (the interface writes the video) and in a converter beside a video interface (the task links to its
    ImageSeries without being told: one ImageSeries, one camera device), with each kind of alignment: the video
    and every Facemap series share the aligned times, and nwbinspector's DANDI config finds nothing."""
    video, npy = source
    alone = FacemapInterface(npy, video_file_paths=[video])
    ALIGNMENTS[alignment](alone)
    expected = alone.get_timestamps()
    metadata = alone.get_metadata()
    metadata["Subject"] = dict(SUBJECT)
    out = tmp_path / f"alone_{alignment}.nwb"
    alone.run_conversion(nwbfile_path=str(out), metadata=metadata)
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        task = nwb.processing["behavior"]["FacemapTask"]
        for series in [nwb.acquisition["FaceCamera"], *task.series.values()]:
            times = series.timestamps[:] if series.rate is None else series.starting_time + np.arange(T) / series.rate
            assert_allclose(times, expected, rtol=0, atol=1e-9, err_msg=f"{alignment}: {series.name}")
        if alignment == "starting_time":
            assert all(s.starting_time == 3.217 for s in [nwb.acquisition["FaceCamera"], *task.series.values()])
    assert serious_inspector_messages(out) == [], alignment

    # In a converter the video interface writes the ImageSeries (given relative to the NWB file, as neuroconv
    # stores paths as given) and is aligned the same way through its own API; the task links to it.
    monkeypatch.chdir(video.parent)
    converter, metadata = _converter(video.name, npy)
    facemap, video_interface = converter.data_interface_objects["Facemap"], converter.data_interface_objects["Video"]
    ALIGNMENTS[alignment](facemap)
    if alignment == "starting_time":
        video_interface.set_aligned_starting_time(3.217)
    elif alignment != "none":
        video_interface.set_aligned_timestamps([facemap.get_timestamps()])
    out = video.parent / f"converter_{alignment}.nwb"
    with caplog.at_level(logging.INFO, logger="facemap_nwb"):
        converter.run_conversion(nwbfile_path=str(out), metadata=metadata)
    assert "links to the ImageSeries 'FaceVideo'" in caplog.text
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert list(nwb.acquisition) == ["FaceVideo"] and len(nwb.devices) == 1, (list(nwb.acquisition), nwb.devices)
        task = nwb.processing["behavior"]["FacemapTask"]
        assert [v.video.name for v in task.views] == ["FaceVideo"]
        for series in [nwb.acquisition["FaceVideo"], *task.series.values()]:
            times = series.timestamps[:] if series.rate is None else series.starting_time + np.arange(T) / series.rate
            assert_allclose(times, expected, rtol=0, atol=1e-6, err_msg=f"{alignment}: {series.name}")
    assert serious_inspector_messages(out) == [], alignment


def test_two_candidate_videos_are_refused(source):
    """Two ImageSeries of the task's video already in the file: refused, naming video_name; naming one works."""
    from pynwb.image import ImageSeries
    from pynwb.testing.mock.file import mock_NWBFile

    video, npy = source
    interface = FacemapInterface(npy, video_file_paths=[video])
    metadata = interface.get_metadata()
    nwbfile = mock_NWBFile()
    for name in ("FaceVideo", "SameVideo"):
        nwbfile.add_acquisition(
            ImageSeries(
                name=name, external_file=[str(video)], starting_frame=[0], format="external", rate=30.0, num_samples=T
            )
        )
    with pytest.raises(ValueError, match=r"'FaceVideo', 'SameVideo' in the file all show .*video_name"):
        interface.add_to_nwbfile(nwbfile, metadata=metadata)
    assert "behavior" not in nwbfile.processing
    metadata["Behavior"]["Facemap"]["video_name"] = "SameVideo"
    interface.add_to_nwbfile(nwbfile, metadata=metadata)
    assert nwbfile.processing["behavior"]["FacemapTask"].views[0].video.name == "SameVideo"


def test_stub_writes_the_first_frames_of_everything(source, tmp_path):
    video, npy = source
    interface = FacemapInterface(npy, video_file_paths=[video])
    metadata = interface.get_metadata()
    metadata["Subject"] = dict(SUBJECT)
    out = tmp_path / "stub.nwb"
    interface.run_conversion(nwbfile_path=str(out), metadata=metadata, stub_test=True, stub_frames=7)
    proc = hand_built_proc()
    back = read_facemap_nwb(out)
    assert back.frame_count == 7
    assert_array_equal(back.motion_energy[0], proc["motion"][0][:7])
    assert_array_equal(back.motion_svd[0].projections, proc["motSVD"][0][:7])
    assert_array_equal(back.motion_svd[0].masks, np.moveaxis(proc["motMask_reshape"][0], -1, 0))
    assert_array_equal(back.pupils[0].center, proc["pupil"][0]["com"][:7])
    assert_array_equal(back.running[4], proc["running"][0][:7])
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        for series in nwb.processing["behavior"]["FacemapTask"].series.values():
            assert series.data.shape[0] == 7, series.name
        assert nwb.processing["behavior"]["FacemapTask"].regions["roi_name"][:].tolist()[0] == "full_frame"
    assert serious_inspector_messages(out) == []


def two_view_proc() -> dict:
    """hand_built_proc() as Facemap writes it for two simultaneous 60 x 80 cameras: the binned views placed side by
    side (Facemap's video_placement), the full-frame masks and summary images over both."""
    from facemap_nwb.engines.native import video_placement

    proc, rng = hand_built_proc(), np.random.default_rng(1)
    ly, lx, sy, sx = video_placement([30, 30], [40, 40])
    proc.update(Ly=[60, 60], Lx=[80, 80], Lybin=np.array([30, 30], np.int32), Lxbin=np.array([40, 40], np.int32))
    proc.update(LYbin=ly, LXbin=lx, sybin=np.array(sy), sxbin=np.array(sx))
    proc.update(avgframe=[proc["avgframe"][0]] * 2, avgmotion=[proc["avgmotion"][0]] * 2)
    proc.update(avgframe_reshape=rng.random((ly, lx)).astype(np.float32))
    proc.update(avgmotion_reshape=rng.random((ly, lx)).astype(np.float32))
    for kind in ("mot", "mov"):
        proc[f"{kind}Mask_reshape"][0] = rng.normal(size=(ly, lx, 7)).astype(np.float32)
        proc[f"{kind}Mask"][0] = proc[f"{kind}Mask_reshape"][0].reshape(-1, 7)
    proc["rois"][3]["ivid"] = 1  # the running ROI on the second camera
    return proc


def test_several_cameras_in_one_task(tmp_path):
    """Two simultaneous views: one list of files per camera; the task has a view per camera, each linking its
    own ImageSeries, and the regions name the camera they lie in."""
    folder = tmp_path / "two"
    folder.mkdir()
    npy = folder / "two_proc.npy"
    np.save(npy, two_view_proc(), allow_pickle=True)
    videos = [
        make_face_video(folder / f"cam{i}.mp4", n_frames=T, height=60, width=80, seed=i, creation_time=CREATION)
        for i in range(2)
    ]
    interface = FacemapInterface(npy, video_file_paths=[[videos[0]], [videos[1]]])
    assert [r.name for r in interface.recordings] == ["FaceCamera0", "FaceCamera1"]
    metadata = interface.get_metadata()
    metadata["Subject"] = dict(SUBJECT)
    out = folder / "two.nwb"
    interface.run_conversion(nwbfile_path=str(out), metadata=metadata)
    with NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        task = nwb.processing["behavior"]["FacemapTask"]
        assert [(v.view_index, v.video.name) for v in task.views] == [(0, "FaceCamera0"), (1, "FaceCamera1")]
        assert [list(v.video.external_file[:]) for v in task.views] == [["cam0.mp4"], ["cam1.mp4"]]
        assert sorted(nwb.acquisition) == ["FaceCamera0", "FaceCamera1", "VideoFiles"]
        assert len(nwb.devices) == 2
        assert task.regions["camera_view"][:].tolist() == [-1, 0, 0, 0, 1, 0]
    assert serious_inspector_messages(out) == []


def test_a_second_camera_list_must_match_the_views(source):
    video, npy = source
    with pytest.raises(ValueError, match=r"1 simultaneous camera view\(s\) but video_file_paths gives 2"):
        FacemapInterface(npy, video_file_paths=[[video], [video]])


def test_no_video_is_refused_with_the_fix(source):
    _, npy = source
    for empty in ([], [[]]):
        with pytest.raises(ValueError, match="video_file_paths is empty; give the video file"):
            FacemapInterface(npy, video_file_paths=empty)
