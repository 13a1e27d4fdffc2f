"""Grayscale streaming: equal to what Facemap reads (OpenCV BGR decode + COLOR_BGR2GRAY) within 1 level."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from facemap_nwb import GrayFrameReader, probe_recording

from .conftest import opencv_gray_frames


def assert_within_one_level(ours: np.ndarray, reference: np.ndarray, what: str) -> None:
    assert ours.shape == reference.shape, f"{what}: shape {ours.shape} != OpenCV's {reference.shape}"
    difference = np.abs(ours.astype(np.int16) - reference.astype(np.int16))
    worst = np.unravel_index(np.argmax(difference), difference.shape)
    assert difference.max() <= 1, (
        f"{what}: gray values differ from OpenCV's by up to {difference.max()} levels "
        f"(first worst at frame, y, x = {tuple(int(i) for i in worst)})"
    )


@pytest.mark.parametrize("color", [False, True], ids=["monochrome", "colour"])
@pytest.mark.parametrize("mode", ["auto", "bgr"])
def test_synthetic_gray_matches_opencv(face_video, color, mode):
    path = face_video(n_frames=40, color=color)
    ours = GrayFrameReader(path, mode=mode).read()
    assert ours.dtype == np.uint8
    assert_within_one_level(ours, opencv_gray_frames(path), f"{path.name} mode={mode}")


def test_luma_table_is_exact_on_monochrome(face_video):
    # For neutral chroma the luma table reproduces OpenCV exactly (floor((Y - 16) * 255 / 219)).
    path = face_video(n_frames=20)
    assert_array_equal(GrayFrameReader(path, mode="luma").read(), opencv_gray_frames(path))


def test_real_videos_every_frame_within_one_level(real_video):
    ours = GrayFrameReader(real_video).read()
    assert_within_one_level(ours, opencv_gray_frames(real_video), real_video.name)


def test_chunks_cover_the_recording_across_files(three_segments):
    paths, counts = three_segments
    reader = GrayFrameReader(probe_recording(paths))
    whole = np.concatenate([opencv_gray_frames(p) for p in paths])
    starts, chunks = zip(*reader.iter_chunks(32))
    assert list(starts) == list(range(0, 150, 32))
    assert [len(c) for c in chunks] == [32, 32, 32, 32, 22]
    assert_within_one_level(np.concatenate(chunks), whole, "chunked read over three files")


def test_frame_range_read(three_segments):
    paths, _ = three_segments
    reader = GrayFrameReader(probe_recording(paths))
    full = reader.read()
    assert reader.shape == full.shape == (150, 120, 160)
    assert_array_equal(reader.read(35, 95), full[35:95])
    assert_array_equal(np.concatenate([c for _, c in reader.iter_chunks(7, start=38, stop=52)]), full[38:52])


def test_bad_chunk_arguments(face_video):
    reader = GrayFrameReader(face_video(n_frames=5))
    with pytest.raises(ValueError, match="chunk_size"):
        next(reader.iter_chunks(0))
    with pytest.raises(ValueError, match=r"outside the recording's 5 frames"):
        next(reader.iter_chunks(2, start=6))
    with pytest.raises(ValueError, match="mode"):
        GrayFrameReader(reader.recording, mode="rgb")
