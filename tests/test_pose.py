"""Facemap pose keypoints (``<video>_FacemapPose.h5`` + metadata pickle) to ndx-pose and back.

The pose files are written the way Facemap 1.0.8 writes them (tests/pose_files.py) from synthetic keypoints
whose values the tests compute on their own; expected NWB contents come from those arrays and from
Facemap's own constants (body parts, GUI groups), never from this package's output."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys

import h5py
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from facemap_nwb.cli import main
from facemap_nwb.convert import convert_facemap_output
from facemap_nwb.loaders.pose import PoseFileError, read_facemap_pose
from facemap_nwb.loaders.safe_pickle import UnsafePickleError
from facemap_nwb.nwb.io import read_facemap_nwb, read_facemap_pose_nwb
from facemap_nwb.pose import FACE_BODYPARTS
from facemap_nwb.synthetic import make_face_video

from .conftest import CREATION
from .pose_files import synthetic_keypoints, write_facemap_pose
from .test_facemap_model import T, hand_built_proc
from .test_recording_nwb import SESSION, SUBJECT, metadata_file

H, W = 60, 80
METADATA = {"NWBFile": dict(SESSION), "Subject": dict(SUBJECT)}


def _source(folder, frames=T, **kwargs):
    folder.mkdir(parents=True, exist_ok=True)
    video = make_face_video(folder / "face.mp4", n_frames=frames, height=H, width=W, creation_time=CREATION)
    data = synthetic_keypoints(frames, H, W)
    kwargs.setdefault("bbox", [0, H, 0, W])
    kwargs.setdefault("image_size", ([H], [W]))
    return video, write_facemap_pose(video, data, **kwargs), data


@pytest.fixture
def source(tmp_path):
    return _source(tmp_path / "source")


# ------------------------------------------------------------------------------------------------ loading


def test_reads_facemap_layout(source):
    video, path, data = source
    pose = read_facemap_pose(path)
    assert pose.bodyparts == list(FACE_BODYPARTS)  # the metadata pickle's order, Facemap's
    assert pose.positions.shape == (T, 15, 2) and pose.positions.dtype == np.float32
    j = FACE_BODYPARTS.index("nose(tip)")
    t = np.arange(T)
    assert_allclose(pose.positions[:, j, 1], H * (j + 1) / 16 + 2 * np.sin(t / 7 + j), rtol=1e-6)  # y: row
    assert_allclose(pose.positions[:, j, 0], W / 2 + 3 * np.cos(t / 7 + j), rtol=1e-6)  # x: column
    assert_allclose(pose.likelihood[:, j], 0.5 + 0.4 * np.sin(t / 5 + j), rtol=1e-6)
    assert pose.bbox == (0, H, 0, W) and pose.image_size == (H, W)
    assert pose.batch_size == 1 and pose.inference_speed == 123.5 and pose.scorer == "Facemap"


def test_without_metadata_keeps_the_face_model_order(tmp_path):
    video, path, data = _source(tmp_path, metadata=False)
    pose = read_facemap_pose(path)
    # HDF5 lists groups by name ('whisker(II)' before 'whisker(III)'); the model's order is Facemap's
    assert pose.bodyparts == list(FACE_BODYPARTS)
    assert pose.bbox is None and pose.metadata_file is None
    assert_array_equal(pose.positions, data[:, :, :2])
    with pytest.raises(FileNotFoundError, match="metadata pickle"):
        read_facemap_pose(path, require_metadata=True)


# ------------------------------------------------------------------------------------------ round trips


def _plain_pynwb(path) -> dict:
    """Read the pose back in a fresh process with pynwb and ndx-pose only."""
    code = f"""
import json, sys, numpy as np
import ndx_pose
from pynwb import NWBHDF5IO
path = {str(path)!r}
if path.endswith(".zarr"):
    from hdmf_zarr import NWBZarrIO as IO
else:
    IO = NWBHDF5IO
with IO(path, "r") as io:
    nwb = io.read()
    pe = nwb.processing["behavior"]["FacemapPose"]
    nodes = [str(n) for n in pe.skeleton.nodes[:]]
    out = dict(
        nodes=nodes,
        edges=[[nodes[a], nodes[b]] for a, b in pe.skeleton.edges[:]],
        video=pe.source_video.name,
        video_device=pe.source_video.device.name,
        scorer=pe.scorer,
        software=pe.source_software,
        series={{n: dict(data=np.asarray(s.data[:]).tolist(), conf=np.asarray(s.confidence[:]).tolist(),
                        unit=s.unit, rate=s.rate) for n, s in pe.pose_estimation_series.items()}},
    )
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("backend", ["hdf5", "zarr"])
def test_round_trip(tmp_path, source, backend):
    video, path, data = source
    out = tmp_path / ("pose.nwb" if backend == "hdf5" else "pose.nwb.zarr")
    convert_facemap_output(None, [video], out, pose_files=[path], metadata=METADATA, backend=backend)
    plain = _plain_pynwb(out)
    assert plain["nodes"] == list(FACE_BODYPARTS)
    assert ["eye(back)", "eye(top)"] in plain["edges"] and ["lowerlip", "mouth"] in plain["edges"]
    assert plain["video"] == "FaceCamera" and plain["video_device"] == "FaceCamera"
    assert plain["scorer"] == "Facemap" and plain["software"] == "Facemap"
    for j, name in enumerate(FACE_BODYPARTS):
        series = plain["series"][name]
        assert_array_equal(np.asarray(series["data"], dtype=np.float32), data[:, j, :2])
        assert_array_equal(np.asarray(series["conf"], dtype=np.float32), data[:, j, 2])
        assert series["unit"] == "pixels" and series["rate"] == 30.0  # the video's rate
    (back,) = read_facemap_pose_nwb(out)
    assert back.bodyparts == list(FACE_BODYPARTS)
    assert_array_equal(back.positions, data[:, :, :2])
    assert_array_equal(back.likelihood, data[:, :, 2])
    assert back.bbox == (0, H, 0, W) and back.image_size == (H, W) and back.inference_speed == 123.5
    assert back.video_name == "FaceCamera" and back.device_name == "FaceCamera"
    assert_allclose(back.extra["timestamps"], np.arange(T) / 30.0)


def test_device_link_is_written(tmp_path, source):
    video, path, _ = source
    out = convert_facemap_output(None, [video], tmp_path / "pose.nwb", pose_files=[path], metadata=METADATA)
    with h5py.File(out, "r") as f:
        group = f["processing/behavior/FacemapPose"]
        assert group.get("device", getlink=True).path == "/general/devices/FaceCamera"
        assert group.get("source_video", getlink=True).path == "/acquisition/FaceCamera"


@pytest.mark.parametrize("backend", ["hdf5", "zarr"])
def test_with_facemap_results(tmp_path, source, backend):
    video, path, data = source
    npy = tmp_path / "face_proc.npy"
    np.save(npy, hand_built_proc(), allow_pickle=True)
    out = tmp_path / ("both.nwb" if backend == "hdf5" else "both.nwb.zarr")
    convert_facemap_output(npy, [video], out, pose_files=[path], metadata=METADATA, backend=backend)
    results = read_facemap_nwb(out)
    assert_array_equal(results.motion_energy[0], hand_built_proc()["motion"][0])
    (pose,) = results.keypoints
    assert_array_equal(pose.positions, data[:, :, :2])


def test_two_cameras_match_pose_files_by_name(tmp_path):
    a = make_face_video(tmp_path / "side.mp4", n_frames=T, height=H, width=W, creation_time=CREATION)
    b = make_face_video(tmp_path / "front.mp4", n_frames=T, height=H, width=W)
    pa = write_facemap_pose(a, synthetic_keypoints(T, H, W), bbox=[0, H, 0, W], image_size=([H, H], [W, W]))
    data_b = synthetic_keypoints(T, H, W)[:, ::-1].copy()
    pb = write_facemap_pose(b, data_b, bbox=[0, H, 0, W], image_size=([H, H], [W, W]))
    out = convert_facemap_output(None, [[a], [b]], tmp_path / "two.nwb", pose_files=[pb, pa], metadata=METADATA)
    poses = {p.video_name: p for p in read_facemap_pose_nwb(out)}
    assert set(poses) == {"FaceCamera0", "FaceCamera1"}
    assert_array_equal(poses["FaceCamera1"].positions, data_b[:, :, :2])


def test_cli_converts_a_pose_file(tmp_path, source, capsys):
    video, path, _ = source
    out = tmp_path / "cli.nwb"
    code = main(
        ["convert", str(path), "--video", str(video), "-o", str(out), "--metadata", str(metadata_file(tmp_path))]
    )
    assert code == 0, capsys.readouterr().err
    assert "15 keypoints on 40 frames" in capsys.readouterr().out
    assert len(read_facemap_pose_nwb(out)) == 1


# ------------------------------------------------------------------------------------------- refusals


def _write(path, build):
    with h5py.File(path, "w") as f:
        build(f)
    return path


def _good(f, frames=T):
    for part in ("eye(back)", "paw"):
        for key in ("x", "y", "likelihood"):
            f[f"Facemap/{part}/{key}"] = np.zeros(frames, np.float32)


def _extra_root(f):
    _good(f)
    f["Other/paw/x"] = np.zeros(T, np.float32)


def _missing(f):
    _good(f)
    del f["Facemap/paw/likelihood"]


def _two_d(f):
    _good(f)
    del f["Facemap/paw/x"]
    f["Facemap/paw/x"] = np.zeros((T, 2), np.float32)


def _text(f):
    _good(f)
    del f["Facemap/paw/y"]
    f["Facemap/paw/y"] = np.array([b"a"] * T)


def _lengths(f):
    _good(f)
    del f["Facemap/paw/y"]
    f["Facemap/paw/y"] = np.zeros(T + 1, np.float32)


def _external(f):
    _good(f)
    f["Facemap/nose"] = h5py.ExternalLink("/etc/passwd", "/")


def _soft(f):
    _good(f)
    del f["Facemap/paw/x"]
    f["Facemap/paw/x"] = h5py.SoftLink("/Facemap/eye(back)/x")


def _bomb(f):
    for key in ("x", "y", "likelihood"):
        f.create_dataset(f"Facemap/paw/{key}", shape=(2**31,), dtype=np.float32, chunks=(2**20,), compression="gzip")


def _infinite(f):
    _good(f)
    f["Facemap/paw/x"][3] = np.inf


def _dataset_part(f):
    _good(f)
    f["Facemap/nose"] = np.zeros(T, np.float32)


def _colon(f):
    _good(f)
    for key in ("x", "y", "likelihood"):
        f[f"Facemap/a:b/{key}"] = np.zeros(T, np.float32)


def _chunk_bomb(f):
    import zlib

    _good(f)
    del f["Facemap/paw/x"]
    dataset = f.create_dataset("Facemap/paw/x", shape=(T,), dtype=np.float32, chunks=(T,), compression="gzip")
    stream = zlib.compressobj()
    data = b"".join(stream.compress(bytes(2**20)) for _ in range(100)) + stream.flush()
    dataset.id.write_direct_chunk((0,), data)  # 160 bytes declared, 100 MiB when inflated


def _plugin_filter(f):
    _good(f)
    del f["Facemap/paw/y"]
    f.create_dataset("Facemap/paw/y", data=np.zeros(T, np.float32), compression="lzf")


def _many_parts(f):
    group = f.create_group("Facemap")
    for i in range(1001):
        group.create_group(f"p{i}")


def _extra_member(f):
    _good(f)
    f["Facemap/paw/z"] = np.zeros(T, np.float32)


@pytest.mark.parametrize(
    "build, words",
    [
        (_extra_root, "more than the 1 Facemap's layout has"),
        (_missing, "not exactly"),
        (_two_d, "one real number per frame"),
        (_text, "one real number per frame"),
        (_lengths, "frames"),
        (_external, "ExternalLink"),
        (_soft, "SoftLink"),
        (_bomb, "decompression bomb"),
        (_infinite, "infinite"),
        (_dataset_part, "not a body part group"),
        (_colon, "cannot name an NWB object"),
        (_many_parts, "more than the 1000"),
        (_chunk_bomb, "inflates beyond the 160 bytes"),
        (_plugin_filter, "filter"),
        (_extra_member, "more than the 3"),
        (lambda f: None, "one scorer group"),
    ],
)
def test_malformed_pose_files_are_refused(tmp_path, build, words):
    path = _write(tmp_path / "face_FacemapPose.h5", build)
    with pytest.raises(PoseFileError, match=words) as caught:
        read_facemap_pose(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("damage", ["truncate", "text", "empty"])
def test_damaged_files_are_refused(tmp_path, source, damage):
    _, path, _ = source
    raw = path.read_bytes()
    path.write_bytes({"truncate": raw[: len(raw) // 2], "text": b"not hdf5 at all\n" * 20, "empty": b""}[damage])
    with pytest.raises(PoseFileError, match="not a Facemap pose file") as caught:
        read_facemap_pose(path)
    assert str(path) in str(caught.value)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /tmp/facemap_nwb_pose_pwned",))


@pytest.mark.parametrize(
    "meta, error, words",
    [
        (_Evil(), UnsafePickleError, "posix.system|os.system"),
        ({"bodyparts": ["eye(back)"], "total_frames": T}, PoseFileError, "not the body parts"),
        ({"total_frames": T + 5}, PoseFileError, "'total_frames' is 45"),
        ({"bbox": [0, H + 10, 0, W], "image_size": ([H], [W])}, PoseFileError, "outside the image"),
        ({"bbox": [10, 5, 0, W]}, PoseFileError, "empty"),
        ({"bbox": [0, 1.5, 0, 2]}, PoseFileError, "whole number"),
        ({"model": "x"}, PoseFileError, "Facemap writes only"),
        (["not", "a", "dict"], PoseFileError, "not Facemap's metadata dict"),
        ({"inference_speed": float("nan")}, PoseFileError, "inference_speed"),
    ],
)
def test_malformed_metadata_is_refused(tmp_path, source, meta, error, words):
    _, path, _ = source
    meta_path = path.with_name(path.stem + "_metadata.pkl")
    meta_path.write_bytes(pickle.dumps(meta, pickle.HIGHEST_PROTOCOL))
    with pytest.raises(error, match=words) as caught:
        read_facemap_pose(path)
    assert str(meta_path) in str(caught.value)
    assert not (tmp_path / "facemap_nwb_pose_pwned").exists()


def test_frame_count_mismatch_is_refused(tmp_path):
    video = make_face_video(tmp_path / "face.mp4", n_frames=T, height=H, width=W, creation_time=CREATION)
    path = write_facemap_pose(video, synthetic_keypoints(T - 5, H, W), bbox=[0, H, 0, W], image_size=([H], [W]))
    with pytest.raises(ValueError, match="cover 35 frames but the video"):
        convert_facemap_output(None, [video], tmp_path / "x.nwb", pose_files=[path], metadata=METADATA)
    assert not (tmp_path / "x.nwb").exists()


def test_image_size_mismatch_is_refused(tmp_path):
    video = make_face_video(tmp_path / "face.mp4", n_frames=T, height=H, width=W, creation_time=CREATION)
    path = write_facemap_pose(video, synthetic_keypoints(T, H, W), image_size=([H * 2], [W * 2]), bbox=[0, H, 0, W])
    with pytest.raises(ValueError, match="do not belong together"):
        convert_facemap_output(None, [video], tmp_path / "x.nwb", pose_files=[path], metadata=METADATA)


def test_cli_refuses_a_bad_pose_file_in_one_line(tmp_path, source, capsys):
    video, path, _ = source
    path.write_bytes(path.read_bytes()[:300])
    out = tmp_path / "bad.nwb"
    code = main(
        ["convert", str(path), "--video", str(video), "-o", str(out), "--metadata", str(metadata_file(tmp_path))]
    )
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and str(path) in err and "Traceback" not in err
    assert not out.exists()


def test_plot_draws_keypoints_on_the_average_frame(tmp_path, source):
    from facemap_nwb.plot import KEYPOINT_GID, plot_summary, summary_figure

    video, path, data = source
    npy = tmp_path / "face_proc.npy"
    np.save(npy, hand_built_proc(), allow_pickle=True)
    out = convert_facemap_output(npy, [video], tmp_path / "both.nwb", pose_files=[path], metadata=METADATA)
    sbin = hand_built_proc()["sbin"]
    fig = summary_figure(read_facemap_nwb(out))
    frame_ax = next(ax for ax in fig.axes if "keypoints" in ax.get_title())
    (markers,) = [c for c in frame_ax.collections if c.get_gid() == KEYPOINT_GID]
    # each body part at its median (x, y) in pixels, moved to bin coordinates: (p + 0.5) / sbin - 0.5
    expected = (np.median(data[:, :, :2].astype(np.float64), axis=0) + 0.5) / sbin - 0.5
    assert_allclose(markers.get_offsets(), expected, rtol=1e-6)
    lines = [line for line in frame_ax.lines if line.get_gid() == KEYPOINT_GID]
    assert len(lines) == 11  # Facemap's GUI groups joined: eye ring 4, nose 4, whiskers 2, mouth 1
    png = plot_summary(out, tmp_path / "summary.png")
    assert png.stat().st_size > 10_000


def test_damaged_bytes_are_refused_cleanly(tmp_path):
    """Bytes flipped anywhere in a pose file's first 3 KB (its superblock, object headers, link tables): every
    result is a load or a PoseFileError naming the file, never another exception."""
    clean = _write(tmp_path / "clean_FacemapPose.h5", _good).read_bytes()
    from .damage import damaged_copies

    path = tmp_path / "face_FacemapPose.h5"
    outcomes = {"loaded": 0, "refused": 0}
    for raw in damaged_copies(clean, count=300, start=0, stop=3072, seed=7):
        path.write_bytes(raw)
        try:
            read_facemap_pose(path)
            outcomes["loaded"] += 1
        except PoseFileError as err:
            assert str(path) in str(err)
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0, outcomes


def test_each_task_reads_the_keypoints_of_its_own_camera(tmp_path):
    from facemap_nwb.convert import PoseOutput, TaskOutput, write_session_nwb
    from facemap_nwb.loaders.facemap import load_facemap_results
    from facemap_nwb.video import probe_recording

    videos = [
        make_face_video(tmp_path / f"{name}.mp4", n_frames=T, height=H, width=W, creation_time=CREATION)
        for name in ("side", "front")
    ]
    data = [synthetic_keypoints(T, H, W), synthetic_keypoints(T, H, W)[::-1].copy()]
    poses = [
        read_facemap_pose(write_facemap_pose(v, d, bbox=[0, H, 0, W], image_size=([H], [W])))
        for v, d in zip(videos, data)
    ]
    npy = tmp_path / "face_proc.npy"
    np.save(npy, hand_built_proc(), allow_pickle=True)
    results = load_facemap_results(npy)
    recordings = [probe_recording([v], name=f"Camera{i}") for i, v in enumerate(videos)]
    tasks = [TaskOutput(results, task_id=str(i), views=[i]) for i in range(2)]
    out = write_session_nwb(
        tmp_path / "two.nwb",
        tasks,
        recordings,
        metadata=METADATA,
        poses=[PoseOutput(p, i) for i, p in enumerate(poses)],
    )
    for i in range(2):
        (pose,) = read_facemap_nwb(out, task_id=str(i)).keypoints
        assert pose.video_name == f"Camera{i}"
        assert_array_equal(pose.positions, data[i][:, :, :2])
    assert len(read_facemap_pose_nwb(out)) == 2


def test_two_pose_files_of_one_camera_are_refused_before_writing(tmp_path, source):
    video, path, _ = source
    copy = tmp_path / "copy_FacemapPose.h5"
    copy.write_bytes(path.read_bytes())
    out = tmp_path / "x.nwb"
    with pytest.raises(ValueError, match="give one pose file per camera"):
        convert_facemap_output(None, [video], out, pose_files=[path, copy], metadata=METADATA)
    assert not out.exists()


def test_sequential_files_of_one_camera(tmp_path):
    """Facemap's pose run covers every sequential file of a camera (its ``cumframes``) and names the file after
    the first one: the keypoints belong to the whole recording."""
    parts = [
        make_face_video(
            tmp_path / f"face_part{i}.mp4",
            n_frames=25,
            first_frame=25 * i,
            height=H,
            width=W,
            creation_time=CREATION if i == 0 else None,
        )
        for i in range(2)
    ]
    data = synthetic_keypoints(50, H, W)
    path = write_facemap_pose(parts[0], data, bbox=[0, H, 0, W], image_size=([H], [W]))
    out = convert_facemap_output(None, [parts], tmp_path / "seq.nwb", pose_files=[path], metadata=METADATA)
    (pose,) = read_facemap_pose_nwb(out)
    assert_array_equal(pose.positions, data[:, :, :2])
    assert_allclose(pose.extra["timestamps"], np.arange(50) / 30.0, atol=1e-6)
