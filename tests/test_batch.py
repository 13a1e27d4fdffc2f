"""Batch runs on a local Dask cluster: sessions in parallel, a broken one reported, kill -9 and resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

pytest.importorskip("dask.distributed", reason="batch runs need Dask (the 'batch' extra)")

from facemap_nwb.batch import run_batch  # noqa: E402

from .sessions import batch_kinds, make_sessions, nwb_files  # noqa: E402


def test_batch_on_a_local_cluster_with_a_broken_session(tmp_path):
    specs = make_sessions(tmp_path, 4, broken=2)
    rows = run_batch(specs, workers=2, retries=0)
    assert [r.status for r in rows] == ["done", "done", "failed", "done"]
    assert "session2.yaml" in rows[2].spec and "not a readable video" in rows[2].error
    assert len(nwb_files(tmp_path)) == 3
    again = run_batch(specs, workers=2, retries=0)
    assert [r.status for r in again] == ["reused", "reused", "failed", "reused"]


def test_batch_command_exit_code_and_summary(tmp_path):
    """The six-session acceptance batch with one session broken on purpose: the other five complete, the
    summary names the broken one and its error, and the exit code says a session failed."""
    specs = make_sessions(tmp_path, 6, broken=5, kinds=batch_kinds())
    run = subprocess.run(
        [sys.executable, "-m", "facemap_nwb", "batch", *map(str, specs), "--workers", "2", "--retries", "0"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "5 done, 0 reused, 1 failed" in run.stdout
    failed = [line for line in run.stdout.splitlines() if line.startswith("failed")]
    assert len(failed) == 1 and failed[0].endswith("session5.yaml"), run.stdout
    assert "not a readable video" in run.stdout, "the summary gives the broken session's error"
    assert len(nwb_files(tmp_path)) == 5
    assert "sessions" in run.stderr and "6/6" in run.stderr, "the progress bar of the submitted sessions"
    assert "Compute Failed" not in run.stderr, "the summary reports the error; the local workers stay quiet"


def test_kill_9_then_rerun_finishes_only_what_is_missing(tmp_path):
    specs = make_sessions(tmp_path, 6)
    command = [sys.executable, "-m", "facemap_nwb", "batch", *map(str, specs), "--workers", "1"]
    client = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(nwb_files(tmp_path)) < 2:
        time.sleep(0.2)
    os.killpg(client.pid, signal.SIGKILL)  # the client and its local cluster, as kill -9 of the batch would
    client.wait()
    done_before = len(nwb_files(tmp_path))
    assert 2 <= done_before < 6, f"{done_before} sessions were done when the batch was killed"
    rows = run_batch(specs, workers=2)
    assert [r.status for r in rows].count("reused") >= done_before
    assert all(r.status in ("done", "reused") for r in rows)
    assert len(nwb_files(tmp_path)) == 6
    assert not list((tmp_path / "processed").rglob("*.partial*")), "a partial file was left behind"


def _file_states(folder) -> dict:
    """Every file under ``folder``: its modification time (ns), size and inode."""
    return {
        path.relative_to(folder): (path.stat().st_mtime_ns, path.stat().st_size, path.stat().st_ino)
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_rerun_reuses_everything_and_a_change_recomputes_one(tmp_path, monkeypatch):
    """A rerun of a complete batch submits nothing (no cluster, so no engine runs) and leaves every file as it
    was; how much faster it is is measured by benchmarks/rerun_reuse.py, not asserted here."""
    import facemap_nwb.batch as batch

    specs = make_sessions(tmp_path, 3)
    first = run_batch(specs, workers=2)
    assert [r.status for r in first] == ["done"] * 3
    before = _file_states(tmp_path / "processed")
    assert len([p for p in before if p.name.endswith("_behavior+image.nwb")]) == 3
    assert [p for p in before if p.name.startswith("results-")], "each task's cached results"

    def no_cluster(*args, **kwargs):
        raise AssertionError("the rerun started a Dask cluster to run sessions")

    with monkeypatch.context() as patch:
        patch.setattr(batch, "_client", no_cluster)
        again = run_batch(specs, workers=2)
    assert [r.status for r in again] == ["reused"] * 3
    assert [r.nwb_path for r in again] == [r.nwb_path for r in first]
    assert _file_states(tmp_path / "processed") == before, "the rerun rewrote, added or removed files"
    spec = yaml.safe_load(specs[1].read_text())
    spec["tasks"][0]["movie_svd"] = True
    specs[1].write_text(yaml.safe_dump(spec))
    stale = run_batch(specs, workers=2)
    assert stale[1].status == "failed" and "--overwrite" in stale[1].error  # never replaced unasked
    assert [r.status for r in run_batch(specs, workers=2, overwrite=True)] == ["reused", "done", "reused"]


def _contents(path) -> dict:
    """Every dataset and attribute of an NWB file, apart from identifiers and creation dates."""
    import h5py
    import numpy as np

    skip = {"identifier", "file_create_date", "object_id", "processing_time"}
    out = {}

    def plain(value, f):
        if isinstance(value, h5py.Reference):
            return f[value].name  # references compare by what they point to
        return repr(value.tolist() if isinstance(value, np.ndarray) else value)  # repr: nan equals nan

    with h5py.File(path, "r") as f:

        def visit(name, item):
            if name.split("/")[-1] in skip:
                return
            for key, value in item.attrs.items():
                if key not in skip:
                    out[f"{name}@{key}"] = plain(value, f)
            if isinstance(item, h5py.Dataset) and item.dtype.kind != "O" and item.dtype.names is None:
                out[name] = plain(item[()], f)

        f.visititems(visit)
    return out


def test_local_cluster_and_separate_scheduler_give_the_same_files(tmp_path):
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    local_dir, remote_dir = tmp_path / "local", tmp_path / "remote"
    # Shared and synthetic videos, load and trigger tasks (the shared video only where the data is).
    local = make_sessions(local_dir, 6, kinds=batch_kinds())
    import shutil

    shutil.copytree(local_dir, remote_dir)  # the same videos (x264 output is not bit-reproducible across runs)
    remote = [remote_dir / p.name for p in local]
    assert all(r.status == "done" for r in run_batch(local, workers=2))
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = subprocess.Popen(
        [dask, "scheduler", "--scheduler-file", str(scheduler_file), "--port", "0", "--no-dashboard"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    worker = None
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        import json

        address = json.loads(scheduler_file.read_text())["address"]
        worker = subprocess.Popen(
            [
                dask,
                "worker",
                "--scheduler-file",
                str(scheduler_file),
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--no-dashboard",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        assert all(r.status == "done" for r in run_batch(remote, scheduler=address))
    finally:
        for process in (worker, scheduler):
            if process is not None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=30)
    local_files, remote_files = nwb_files(local_dir), nwb_files(remote_dir)
    assert [p.relative_to(local_dir) for p in local_files] == [p.relative_to(remote_dir) for p in remote_files]
    for a, b in zip(local_files, remote_files, strict=True):
        assert _contents(a) == _contents(b), f"{a.name} differs between the two clusters"


def test_sessions_sharing_a_video_folder_keep_their_own_results(tmp_path):
    """Two sessions whose videos share a folder have one task folder (task "0" each): run at once, each
    keeps its own cached results, a rerun reuses both, and a change replaces only its own cache."""
    from numpy.testing import assert_array_equal

    from facemap_nwb.engines import process_recordings
    from facemap_nwb.nwb.io import read_facemap_nwb
    from facemap_nwb.params import FacemapParameters
    from facemap_nwb.synthetic import make_face_video
    from facemap_nwb.video import probe_recording

    from .conftest import CREATION

    specs = make_sessions(tmp_path, 2)
    shared = tmp_path / "raw" / "shared"
    shared.mkdir()
    for i, spec_path in enumerate(specs):
        make_face_video(shared / f"day{i}.mp4", n_frames=30, seed=10 + i, creation_time=CREATION)
        spec = yaml.safe_load(spec_path.read_text())
        spec["recordings"][0]["files"] = [f"shared/day{i}.mp4"]
        spec_path.write_text(yaml.safe_dump(spec))
    rows = run_batch(specs, workers=2)
    assert [r.status for r in rows] == ["done", "done"], [r.error for r in rows]
    folder = tmp_path / "processed" / "shared" / "facemap_0"
    assert len(list(folder.glob("results-*.nwb"))) == 2
    params = FacemapParameters.from_file(tmp_path / "params.yaml")
    for i, row in enumerate(rows):
        alone = process_recordings([probe_recording(shared / f"day{i}.mp4")], params)
        assert_array_equal(read_facemap_nwb(row.nwb_path).motion_energy[0], alone.motion_energy[0])
    assert [r.status for r in run_batch(specs, workers=2)] == ["reused", "reused"]
    spec = yaml.safe_load(specs[0].read_text())
    spec["tasks"][0]["movie_svd"] = True
    specs[0].write_text(yaml.safe_dump(spec))
    assert [r.status for r in run_batch(specs, workers=2, overwrite=True)] == ["done", "reused"]
    assert len(list(folder.glob("results-*.nwb"))) == 2, "the superseded cache of session 0 is removed, 1's is kept"


def test_batch_videos_option_and_rerun(tmp_path):
    """`--videos copy` puts a copy of each session's video beside its NWB file; a rerun copies nothing again."""
    specs = make_sessions(tmp_path, 2)
    run = subprocess.run(
        [sys.executable, "-m", "facemap_nwb", "batch", *map(str, specs), "--workers", "2", "--videos", "copy"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    copies = sorted((tmp_path / "processed" / "nwb").rglob("*_external_file_0.mp4"))
    assert [p.parent.name for p in copies] == [f"sub-m{i}_ses-day1_behavior+image" for i in range(2)]
    assert all(not p.is_symlink() and p.read_bytes() == (tmp_path / "raw" / f"s{i}" / "face.mp4").read_bytes()
               for i, p in enumerate(copies))  # fmt: skip
    inodes = [p.stat().st_ino for p in copies]
    assert [r.status for r in run_batch(specs, workers=2, videos="copy")] == ["reused", "reused"]
    assert [p.stat().st_ino for p in copies] == inodes
    stale = run_batch(specs, workers=2)  # the spec's default (symlink) is another mode: never replaced unasked
    assert [r.status for r in stale] == ["failed", "failed"] and all("--overwrite" in r.error for r in stale)
