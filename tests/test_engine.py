"""Trigger mode: the native engine against facemap.process.run on the same input (parity), and alone."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose

from facemap_nwb import probe_recording
from facemap_nwb.engines.native import run_native
from facemap_nwb.loaders.facemap import load_facemap_results
from facemap_nwb.params import ROI, FacemapParameters
from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION


def _r(a, b) -> float:
    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # constant traces: equal is perfect agreement
        return 1.0 if np.allclose(a, b) else 0.0
    return float(np.corrcoef(a, b)[0, 1])


def assert_parity(ours, theirs):
    """The issue's parity figures, region by region (regions are in the same order in both)."""
    assert [r.type for r in ours.regions] == [r.type for r in theirs.regions]
    names = [r.name for r in ours.regions]
    for region, trace in theirs.motion_energy.items():
        assert _r(trace, ours.motion_energy[region]) >= 0.9999, f"motion energy of {names[region]}"
    assert np.abs(ours.average_frame - theirs.average_frame).max() <= 1.0, "average frame"
    assert np.abs(ours.average_motion - theirs.average_motion).max() <= 1.0, "average motion"
    for kind in ("motion", "movie"):
        assert [s.region for s in ours.svds(kind)] == [s.region for s in theirs.svds(kind)]
        for a, b in zip(theirs.svds(kind), ours.svds(kind), strict=True):
            for c in range(min(10, a.n_components)):
                what = f"{kind} SVD component {c} of {names[a.region]}"
                assert abs(_r(a.projections[:, c], b.projections[:, c])) >= 0.99, f"{what}: projection"
                assert abs(_r(a.masks[c], b.masks[c])) >= 0.99, f"{what}: mask"
    for a, b in zip(theirs.pupils, ours.pupils, strict=True):
        assert _r(a.area, b.area) >= 0.99, "pupil area"
        for axis in (0, 1):
            assert _r(a.center[:, axis], b.center[:, axis]) >= 0.99, f"pupil centre axis {axis}"
    for region, trace in theirs.blinks.items():
        assert _r(trace, ours.blinks[region]) >= 0.999, "blink"
    for region, trace in theirs.running.items():
        for axis, label in ((0, "dy"), (1, "dx")):
            assert _r(trace[:, axis], ours.running[region][:, axis]) >= 0.99, f"running {label}"


@pytest.mark.facemap
def test_parity_on_lp_test_vid(lp_facemap):
    ours = run_native([probe_recording([lp_facemap["video"]])], lp_facemap["params"], progress=False)
    assert_parity(ours, load_facemap_results(lp_facemap["npy"]))


@pytest.mark.facemap
def test_parity_on_synthetic_video(synthetic_facemap):
    ours = run_native([probe_recording([synthetic_facemap["video"]])], synthetic_facemap["params"], progress=False)
    assert_parity(ours, load_facemap_results(synthetic_facemap["npy"]))


@pytest.fixture(scope="session")
def two_cameras(tmp_path_factory):
    folder = tmp_path_factory.mktemp("two_cameras")
    face = make_face_video(folder / "face.mp4", n_frames=200, creation_time=CREATION)
    side = make_face_video(folder / "side.mp4", n_frames=200, height=96, width=128, seed=3)
    params = FacemapParameters(
        spatial_bin=2,
        motion_svd=True,
        movie_svd=True,
        n_components=40,
        rois=(
            ROI(type="pupil", x=38, y=28, width=40, height=24, saturation=100.0, video=0),
            ROI(type="motion", x=60, y=20, width=40, height=30, video=1),
            ROI(type="motion", x=100, y=36, width=56, height=52, video=0),
            ROI(type="running", x=20, y=78, width=64, height=16, video=1),
        ),
    )
    return [face, side], params, folder


@pytest.mark.facemap
def test_parity_with_two_simultaneous_cameras(two_cameras):
    pytest.importorskip("facemap")
    from facemap_nwb.engines import run_facemap

    videos, params, _ = two_cameras
    recordings = [probe_recording([v], name=f"cam{i}") for i, v in enumerate(videos)]
    theirs = run_facemap(recordings, params)
    ours = run_native(recordings, params, progress=False)
    assert theirs.average_frame.shape == ours.average_frame.shape  # both views placed side by side
    assert_parity(ours, theirs)


@pytest.mark.facemap
def test_parity_with_several_svd_segments(tmp_path):
    """2100 frames: Facemap takes two 1000-frame segments and a final SVD of their components."""
    pytest.importorskip("facemap")
    from facemap_nwb.engines import run_facemap

    video = make_face_video(tmp_path / "long.mp4", n_frames=2100, height=48, width=64)
    params = FacemapParameters(spatial_bin=2, motion_svd=True, movie_svd=False)
    recording = probe_recording([video])
    theirs = run_facemap([recording], params)
    ours = run_native([recording], params, progress=False)
    assert theirs.motion_svd[0].singular_values_source == "facemap"  # several segments: Facemap's own values
    assert_parity(ours, theirs)
    assert_allclose(ours.motion_svd[0].singular_values[:10], theirs.motion_svd[0].singular_values[:10], rtol=0.02)


def _binned_motion(video, sbin: int) -> np.ndarray:
    """Independent reference: OpenCV frames, binned by reshape-mean, absolute differences."""
    from .conftest import opencv_gray_frames

    frames = opencv_gray_frames(video).astype(np.float64)
    n, h, w = frames.shape
    yb, xb = h // sbin, w // sbin
    binned = frames[:, : yb * sbin, : xb * sbin].reshape(n, yb, sbin, xb, sbin).mean(axis=(2, 4)).reshape(n, -1)
    return np.abs(np.diff(binned, axis=0)), binned


def test_singular_values_are_real_sorted_and_complete(face_video):
    """With every component kept, the squared singular values add up to the centred data's energy."""
    video = face_video("sv.mp4", n_frames=60, height=48, width=64)
    params = FacemapParameters(spatial_bin=4, motion_svd=True, movie_svd=True, n_components=59)
    ours = run_native([probe_recording([video])], params, progress=False)
    for svd in ours.motion_svd + ours.movie_svd:
        s = svd.singular_values.astype(np.float64)
        assert np.all(np.diff(s) <= 1e-3 * s[0]), "singular values are not sorted"
        assert np.all(s[:10] > 0), "zero singular values"
        assert svd.singular_values_source == "computed"
    # 60 frames: Facemap's average motion is the mean over all 59 differences, and its SVD centres each
    # frame over the pixels (svdecon); all 59 components together hold the whole energy.
    motion, _ = _binned_motion(video, 4)
    data = motion - motion.mean(axis=0)
    data -= data.mean(axis=1, keepdims=True)
    assert_allclose((ours.motion_svd[0].singular_values.astype(np.float64) ** 2).sum(), (data**2).sum(), rtol=2e-3)


def test_motion_energy_only(face_video):
    video = face_video("me.mp4", n_frames=80)
    params = FacemapParameters(spatial_bin=2, motion_svd=False, movie_svd=False, rois=(ROI("motion", 100, 36, 56, 52),))
    ours = run_native([probe_recording([video])], params, progress=False)
    assert ours.motion_svd == [] and ours.movie_svd == []
    motion, _ = _binned_motion(video, 2)
    # Facemap's alignment: frames 0..n-2 hold the difference to the next frame, the last frame 0.
    expected = np.concatenate([motion.sum(axis=1), [0.0]])
    assert_allclose(ours.motion_energy[0], expected, rtol=1e-3, atol=1e-2)


def test_spilled_store_equals_memory_and_both_decode_once(face_video):
    """Binned frames over the memory budget go to a temporary file: same results, still one decode."""
    video = face_video("stream.mp4", n_frames=120)
    from facemap_nwb.demo import DEMO_PARAMETERS

    recording = probe_recording([video])
    timings_cached, timings_streamed = {}, {}
    cached = run_native([recording], DEMO_PARAMETERS, progress=False, timings=timings_cached)
    streamed = run_native([recording], DEMO_PARAMETERS, progress=False, memory_budget=0, timings=timings_streamed)
    assert timings_cached["decodes"] == timings_streamed["decodes"] == 1
    assert not timings_cached["spilled"] and timings_streamed["spilled"]
    from facemap_nwb.engines.frames import SpilledArray

    spilled = streamed.motion_svd[0].projections
    assert isinstance(spilled, SpilledArray) and spilled.shape == cached.motion_svd[0].projections.shape
    assert_allclose(spilled[5:9, :3], cached.motion_svd[0].projections[5:9, :3], rtol=1e-4, atol=1e-2)
    assert_allclose(spilled[-1], cached.motion_svd[0].projections[-1], rtol=1e-4, atol=1e-2)
    for a, b in zip(cached.motion_svd + cached.movie_svd, streamed.motion_svd + streamed.movie_svd, strict=True):
        assert_allclose(a.projections, b.projections, rtol=1e-4, atol=1e-2)
    for region in cached.motion_energy:
        assert_allclose(cached.motion_energy[region], streamed.motion_energy[region], rtol=1e-5)
    assert_allclose(cached.pupils[0].area, streamed.pupils[0].area)


def _basis(rng, frames: int, pixels: int, k: int):
    """A segment's SVD basis as the engine makes it: rows of Uᵀ orthonormal, summing to zero over pixels."""
    data = rng.standard_normal((frames, pixels)) * np.exp(-np.arange(frames) / 8.0)[:, np.newaxis]
    data -= data.mean(axis=1, keepdims=True)
    _, s, vt = np.linalg.svd(data, full_matrices=False)
    return vt[:k].astype(np.float32), s[:k].astype(np.float32)


def test_merging_two_bases_equals_the_svd_of_their_stack():
    """The merge computes only the cross term of the stack's Gram matrix; numpy's SVD of the stack checks it."""
    from facemap_nwb.engines.svd import merge_components

    rng = np.random.default_rng(7)
    (u1, s1), (u2, s2) = _basis(rng, 60, 400, 30), _basis(rng, 60, 400, 30)
    merged_u, merged_s = merge_components(u1, s1, u2, s2, 40)
    stack = np.vstack([s1[:, np.newaxis] * u1, s2[:, np.newaxis] * u2]).astype(np.float64)
    _, exact_s, exact_vt = np.linalg.svd(stack, full_matrices=False)
    assert_allclose(merged_s, exact_s[:40], rtol=2e-4)
    agreement = np.abs(np.sum(merged_u[:10].astype(np.float64) * exact_vt[:10], axis=1))
    assert_allclose(agreement, np.ones(10), atol=1e-3, err_msg="the top components differ from the stack's")
    assert_allclose(merged_u @ merged_u.T, np.eye(40), atol=1e-3, err_msg="merged rows are not orthonormal")


def test_merging_three_bases_at_once_equals_the_svd_of_their_stack():
    from facemap_nwb.engines.svd import merge_blocks

    rng = np.random.default_rng(11)
    blocks = [_basis(rng, 50, 300, 20) for _ in range(3)]
    crosses = {(i, j): blocks[i][0] @ blocks[j][0].T for i in range(3) for j in range(i + 1, 3)}
    merged_u, merged_s = merge_blocks(blocks, crosses, 45)
    stack = np.vstack([s[:, np.newaxis] * u for u, s in blocks]).astype(np.float64)
    _, exact_s, exact_vt = np.linalg.svd(stack, full_matrices=False)
    assert_allclose(merged_s, exact_s[:45], rtol=2e-4)
    agreement = np.abs(np.sum(merged_u[:10].astype(np.float64) * exact_vt[:10], axis=1))
    assert_allclose(agreement, np.ones(10), atol=1e-3)
