"""Edge cases: overlapping SVD segments when streaming, ROIs at the frame's edge, MATLAB files with
empty lists, signals without motion energy, reads past the end, bad metadata and names, races."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from facemap_nwb import GrayFrameReader, probe_recording
from facemap_nwb.engines.frames import FrameSource, _prefetch
from facemap_nwb.engines.native import run_native
from facemap_nwb.params import ROI, FacemapParameters

from .conftest import CREATION
from .test_recording_nwb import SESSION, SUBJECT

METADATA = {"NWBFile": dict(SESSION), "Subject": dict(SUBJECT)}


@pytest.fixture(scope="module")
def long_video(tmp_path_factory):
    from facemap_nwb.synthetic import make_face_video

    return make_face_video(tmp_path_factory.mktemp("long") / "long.mp4", n_frames=2000, height=32, width=48)


@pytest.mark.parametrize("starts, length", [([0, 999], 1000), ([0, 500, 1000], 1000), ([3, 10, 1999], 1)])
def test_spilled_segments_equal_ones_in_memory(long_video, starts, length):
    """Facemap's SVD segments of a 2000-frame video start at 0 and 999: they overlap by one frame. Read from
    the temporary file (over the memory budget) or from memory, they are the same frames."""
    recording = probe_recording([long_video], decode=False)
    cached = [(s, f[0].copy()) for s, f in FrameSource([recording]).segments(starts, length)]
    streamed = [(s, f[0].copy()) for s, f in FrameSource([recording], memory_budget=0).segments(starts, length)]
    assert [s for s, _ in streamed] == [s for s, _ in cached] == starts
    for (start, a), (_, b) in zip(cached, streamed, strict=True):
        assert_array_equal(b, a, err_msg=f"segment starting at {start}")


def test_spilled_and_in_memory_engine_agree_on_2000_frames(long_video):
    recording = probe_recording([long_video], decode=False)
    params = FacemapParameters(spatial_bin=2, motion_svd=True, movie_svd=False)
    cached = run_native([recording], params, progress=False)
    streamed = run_native([recording], params, progress=False, memory_budget=0)
    np.testing.assert_allclose(streamed.motion_svd[0].singular_values, cached.motion_svd[0].singular_values, rtol=1e-3)


def test_prefetch_closes_at_once():
    """Closing the consumer stops the producer: its thread has ended when close() returns (close() waits
    for it with a timeout, so a producer that ignored the stop would still be running), and it read no
    further than the queue's depth ahead."""
    import itertools
    import threading

    pulled = []

    def endless():
        for i in itertools.count():
            pulled.append(i)
            yield i

    before = set(threading.enumerate())
    items = _prefetch(endless())
    assert next(items) == 0
    (thread,) = [t for t in threading.enumerate() if t not in before and t.name == "facemap-nwb-decode"]
    items.close()
    assert not thread.is_alive(), "the producer thread runs on after close()"
    read = len(pulled)
    # One item consumed, one in the queue (depth 1), at most one more waiting to be put.
    assert 1 <= read <= 3, f"the producer read {read} items for one consumed"


def test_motion_roi_at_the_right_edge(face_video):
    """x=120, width 42 on a 162-wide frame, bin 4: Facemap's x rule names bin ceil(161 / 4) = 41, past the
    frame's 40 bins (Facemap itself fails there); the range is clamped to the frame."""
    video = face_video(n_frames=30, width=162)
    params = FacemapParameters(spatial_bin=4, rois=(ROI("motion", x=120, y=10, width=42, height=40),))
    results = run_native([probe_recording([video])], params, progress=False)
    region = results.regions[1]
    assert region.x_bin_range == (30, 40) and region.y_bin_range == (2, 12)
    assert results.motion_svd[1].masks.shape[1:] == (10, 10)


def _facemap_style_mat(path, proc):
    """What facemap.process.save writes for save_mat: lists of arrays split into key_i entries."""
    from scipy.io import savemat

    flat = {}
    for key, value in proc.items():
        if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
            for i, item in enumerate(value):
                flat[f"{key}_{i}"] = item
        else:
            flat[key] = value if value is not None else 0
    savemat(path, flat)
    return path


def test_mat_with_empty_lists_loads_on_any_numpy(tmp_path):
    from facemap_nwb.loaders.facemap import load_facemap_results

    from .test_facemap_model import hand_built_proc

    proc = hand_built_proc()
    proc.update(movSVD=[], movMask=[], movMask_reshape=[], movSv=[], blink=[], running=[])
    proc["rois"] = [r for r in proc["rois"] if r["rind"] in (0, 1)]
    path = _facemap_style_mat(tmp_path / "face_proc.mat", proc)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # numpy >= 2.2 raises where 1.26 warned
        results = load_facemap_results(path)
    assert results.movie_svd == [] and results.blinks == {} and results.running == {}
    assert len(results.motion_svd) == 3 and len(results.pupils) == 1


def test_frame_count_without_motion_energy(face_video, tmp_path):
    from facemap_nwb.convert import write_results_nwb
    from facemap_nwb.nwb.io import read_facemap_nwb

    video = face_video(n_frames=25, creation_time=CREATION)
    recording = probe_recording([video])
    params = FacemapParameters(
        multivideo_svd=False, motion_svd=False, rois=(ROI("pupil", 38, 28, 40, 24, saturation=100),)
    )
    results = run_native([recording], params, progress=False)
    out = write_results_nwb(tmp_path / "pupil.nwb", results, [recording], metadata=METADATA)
    assert read_facemap_nwb(out).frame_count == 25


def test_read_past_the_end_is_clamped(face_video):
    reader = GrayFrameReader(face_video(n_frames=12))
    frames = reader.read(8, 20)
    assert frames.shape[0] == 4
    assert_array_equal(frames, reader.read()[8:])


def test_bad_metadata_file(face_video, tmp_path, capsys):
    from facemap_nwb.cli import main

    meta = tmp_path / "meta.yaml"
    meta.write_text("- NWBFile: {}\n")
    video = face_video(n_frames=5, creation_time=CREATION)
    assert main(["recording", str(video), "-o", str(tmp_path / "x.nwb"), "--metadata", str(meta)]) == 1
    err = capsys.readouterr().err
    assert "meta.yaml': (top level): Input should be a mapping of keys (got a list)" in err and err.count("\n") == 1


@pytest.mark.parametrize("name", ["a/b", "c:d", "full_frame"])
def test_roi_names_that_cannot_be_nwb_names(name):
    with pytest.raises(ValueError, match="cannot be used"):
        FacemapParameters(rois=(ROI("motion", 0, 0, 8, 8, name=name),))


def test_output_that_appears_while_writing_is_kept(tmp_path):
    from facemap_nwb.atomic import atomic_output

    target = tmp_path / "out.nwb"
    with pytest.raises(FileExistsError, match="appeared while it was being written"):
        with atomic_output(target) as temporary:
            temporary.write_text("new")
            target.write_text("someone else's")
    assert target.read_text() == "someone else's"
    assert list(tmp_path.iterdir()) == [target]
