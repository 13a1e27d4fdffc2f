"""Write errors (issue #9): a full disk, a read-only folder, an output whose parent is a file, a name that
NWB objects cannot carry. Each gives one line naming the output and the OS error, exit code 1, leaves
nothing behind, and is found before any processing wherever it can be.

Full and read-only file systems are real: small tmpfs mounts made by the tests as root (the full-disk
tests skip with the reason where mounting is not possible; without root, a folder without write
permission stands in for the read-only file system). Writing HDF5 to a full disk used to crash the
interpreter at exit (HDF5 keeps ids of objects whose flush failed), so those cases run in a fresh one.
"""

from __future__ import annotations

import errno
import os
import pickle
import random
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from facemap_nwb.atomic import (
    GuardedFile,
    OutputError,
    atomic_output,
    check_nwb_name,
    check_output_path,
    check_writable_folder,
    write_error_in,
)
from facemap_nwb.synthetic import make_face_video

from .adversarial import files_under, refuse, refuse_in_subprocess
from .conftest import CREATION
from .test_recording_nwb import metadata_file

START = ["--session-start", "2024-01-01T00:00:00+00:00"]
NO_SPACE = ["No space left on device", f"errno {errno.ENOSPC}"]
READ_ONLY = ["Read-only file system", f"errno {errno.EROFS}"]
NOT_A_FOLDER = ["is a file", f"errno {errno.ENOTDIR}"]


# --- real file systems: small tmpfs mounts ------------------------------------------------------------------


def _mount(folder, options: str) -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small or read-only tmpfs needs root")
    if shutil.which("mount") is None or shutil.which("umount") is None:
        pytest.skip("no mount command on this machine")
    folder.mkdir(parents=True, exist_ok=True)
    run = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True, text=True)
    if run.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({run.stderr.strip() or run.returncode})")


def _umount(folder) -> None:
    if subprocess.run(["umount", str(folder)], capture_output=True).returncode:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _fill(folder) -> None:
    """Fill a file system to the last byte."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as err:
        assert err.errno == errno.ENOSPC
    finally:
        os.close(fd)
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0")
    except OSError as err:
        assert err.errno == errno.ENOSPC
    finally:
        os.close(fd)


@pytest.fixture
def mount(tmp_path):
    """Factory: ``mount(name, size=..., read_only=..., full=...)`` mounts a tmpfs at ``tmp_path/name``;
    every mount is undone at teardown."""
    mounted = []

    def make(name: str = "disk", *, size: str = "256k", read_only: bool = False, full: bool = False):
        folder = tmp_path / name
        _mount(folder, f"size={size},mode=0755")
        mounted.append(folder)
        if full:
            _fill(folder)
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)
        return folder

    try:
        yield make
    finally:
        for folder in reversed(mounted):
            _umount(folder)


@pytest.fixture
def read_only(tmp_path, mount):
    """Factory: ``read_only(name)`` gives a folder where no file can be written and what the refusal must
    say: a read-only tmpfs as root (root ignores permissions), a folder without write permission otherwise."""
    locked = []

    def make(name: str = "disk"):
        if hasattr(os, "geteuid") and os.geteuid() != 0:
            folder = tmp_path / name
            folder.mkdir()
            folder.chmod(0o555)
            locked.append(folder)
            return folder, ["Permission denied", f"errno {errno.EACCES}"]
        return mount(name, read_only=True), READ_ONLY

    try:
        yield make
    finally:
        for folder in locked:
            folder.chmod(0o755)


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if any work starts: probing or decoding a video, loading results, running the engine."""

    import facemap_nwb.convert  # noqa: F401 - imported before patching, so that it binds the real functions
    import facemap_nwb.engines  # noqa: F401

    def work(*args, **kwargs):
        raise AssertionError("work started before the write error was found")

    for target in (
        "facemap_nwb.engines.process_recordings",
        "facemap_nwb.video.probe_recording",
        "facemap_nwb.convert.probe_recording",
        "facemap_nwb.convert.load_facemap_results",
        "facemap_nwb.loaders.facemap.load_facemap_results",
    ):
        monkeypatch.setattr(target, work)


@pytest.fixture
def video(tmp_path):
    return make_face_video(tmp_path / "face.mp4", n_frames=60, creation_time=CREATION)


@pytest.fixture
def proc(tmp_path):
    """A hand-built Facemap ``_proc.npy`` and the 60 x 80 video it belongs to (no Facemap needed)."""
    from .test_facemap_model import T, hand_built_proc

    video = make_face_video(tmp_path / "small.mp4", n_frames=T, height=60, width=80, creation_time=CREATION)
    path = tmp_path / "small_proc.npy"
    np.save(path, hand_built_proc(), allow_pickle=True)
    return path, video


def _process(video, output, *extra):
    return ["process", video, "-o", output, *START, "--quiet", "--sbin", "2", *extra]


def _convert(proc, output, *extra):
    path, video = proc
    return ["convert", path, "--video", video, "-o", output, *START, *extra]


# --- process ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["hdf5", "zarr"])
def test_process_output_that_does_not_fit(tmp_path, mount, video, backend):
    """The output fills the disk while it is written: one line, exit 1, no crash, nothing left."""
    disk = mount()
    output = disk / ("out.nwb" if backend == "hdf5" else "out.nwb.zarr")
    refuse_in_subprocess(_process(video, output, "--backend", backend), tmp_path, [output, *NO_SPACE], timeout=180)
    assert not any(disk.iterdir())


def test_process_removes_the_folders_it_made(tmp_path, mount, video):
    disk = mount()
    output = disk / "a" / "b" / "out.nwb"
    refuse_in_subprocess(_process(video, output), tmp_path, [output, *NO_SPACE], timeout=180)
    assert not any(disk.iterdir()), "the parent folders made for the output were left behind"


def test_process_full_disk_found_before_work(tmp_path, mount, video, no_work, capsys):
    disk = mount(full=True)
    output = disk / "out.nwb"
    refuse(_process(video, output), tmp_path, [output, *NO_SPACE], capsys=capsys)
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]


@pytest.mark.parametrize("below", ["out.nwb", "new/folder/out.nwb"])
def test_process_read_only_found_before_work(tmp_path, read_only, video, no_work, capsys, below):
    folder, why = read_only()
    output = folder / below
    refuse(_process(video, output), tmp_path, [output, *why], capsys=capsys)


@pytest.mark.parametrize("below", ["out.nwb", "sub/out.nwb"])
def test_process_parent_is_a_file(tmp_path, video, no_work, capsys, below):
    (tmp_path / "afile").write_text("not a folder")
    output = tmp_path / "afile" / below
    refusal = refuse(_process(video, output), tmp_path, [output, *NOT_A_FOLDER], capsys=capsys)
    assert f"output's parent '{tmp_path / 'afile'}' is a file" in refusal.stderr


def test_process_name_too_long(tmp_path, video, no_work, capsys):
    output = tmp_path / ("x" * 250 + ".nwb")  # fits, but not its temporary name
    names = [output, "File name too long", f"errno {errno.ENAMETOOLONG}"]
    refuse(_process(video, output), tmp_path, names, capsys=capsys)


# --- convert ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["hdf5", "zarr"])
def test_convert_output_that_does_not_fit(tmp_path, mount, proc, backend):
    disk = mount(size="128k")
    output = disk / ("out.nwb" if backend == "hdf5" else "out.nwb.zarr")
    refuse_in_subprocess(_convert(proc, output, "--backend", backend), tmp_path, [output, *NO_SPACE], timeout=180)
    assert not any(disk.iterdir())


def test_convert_read_only_found_before_work(tmp_path, read_only, proc, no_work, capsys):
    folder, why = read_only()
    output = folder / "out.nwb"
    refuse(_convert(proc, output), tmp_path, [output, *why], capsys=capsys)


def test_convert_parent_is_a_file(tmp_path, proc, no_work, capsys):
    output = proc[0] / "out.nwb"  # below the _proc.npy file
    refuse(_convert(proc, output), tmp_path, [output, *NOT_A_FOLDER], capsys=capsys)


# --- recording ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "option, name", [("--name", "Face/Camera"), ("--name", "Face:Camera"), ("--name", "."), ("--device", "cam/0")]
)
def test_recording_name_nwb_cannot_hold(tmp_path, video, no_work, capsys, option, name):
    refuse(["recording", video, "-o", tmp_path / "out.nwb", option, name], tmp_path, [name, option], capsys=capsys)


def test_recording_read_only_found_before_work(tmp_path, read_only, video, no_work, capsys):
    folder, why = read_only()
    output = folder / "out.nwb"
    refuse(["recording", video, "-o", output], tmp_path, [output, *why], capsys=capsys)


# --- run ----------------------------------------------------------------------------------------------------


def _spec(folder, **paths) -> str:
    raw = folder / "raw"
    raw.mkdir(exist_ok=True)
    make_face_video(raw / "face.mp4", n_frames=40, creation_time=CREATION)
    spec = {
        "subject": {"subject_id": "m1", "species": "Mus musculus", "sex": "F", "age": "P60D"},
        "session": {
            "session_id": "day1",
            "session_start_time": "2023-03-04T05:06:07+00:00",
            "session_description": "Write errors.",
            "lab": "Lab",
            "institution": "Institute",
        },
        "paths": {"roots": ["raw"], "processed": "processed", **paths},
        "recordings": [{"name": "FaceCamera", "files": ["face.mp4"]}],
        "tasks": [{"task_id": 0, "mode": "trigger", "parameters": {"spatial_bin": 4}}],
    }
    path = folder / "session.yaml"
    path.write_text(yaml.safe_dump(spec))
    return str(path)


def test_run_read_only_processed_folder_found_before_work(tmp_path, read_only, no_work, capsys):
    spec = _spec(tmp_path)
    processed, why = read_only("processed")
    refuse(["run", spec], tmp_path, ["processed folder", processed, *why], capsys=capsys)


def test_run_read_only_output_folder_found_before_work(tmp_path, read_only, no_work, capsys):
    spec = _spec(tmp_path, output="dandiset")
    dandiset, why = read_only("dandiset")
    refuse(["run", spec], tmp_path, ["output folder", dandiset / "sub-m1", *why], capsys=capsys)
    assert not (tmp_path / "processed").exists()


def test_run_processed_folder_is_a_file(tmp_path, no_work, capsys):
    spec = _spec(tmp_path)
    (tmp_path / "processed").write_text("not a folder")
    refuse(["run", spec], tmp_path, ["processed folder", tmp_path / "processed", *NOT_A_FOLDER], capsys=capsys)


def test_run_cache_that_does_not_fit(tmp_path, mount):
    """The task's results fill the processed folder's disk: one line naming the cache file, nothing left."""
    spec = _spec(tmp_path)
    processed = mount("processed", size="128k")
    refusal = refuse_in_subprocess(["run", spec, "--quiet"], tmp_path, [processed, *NO_SPACE], timeout=180)
    assert "results-" in refusal.stderr
    assert not [p for p in files_under(processed) if p.is_file()]


def test_run_recording_name_nwb_cannot_hold(tmp_path, no_work, capsys):
    spec = _spec(tmp_path)
    text = open(spec).read().replace("name: FaceCamera", "name: Face/Camera")
    open(spec, "w").write(text)
    refuse(["run", spec], tmp_path, ["Face/Camera", "recordings.0.name"], capsys=capsys)


# --- schema and plot ----------------------------------------------------------------------------------------


def test_schema_read_only(tmp_path, read_only, capsys):
    folder, why = read_only()
    output = folder / "session.schema.json"
    refuse(["schema", "-o", output], tmp_path, [output, *why], capsys=capsys)


def test_plot_read_only_found_before_work(tmp_path, read_only, proc, capsys, monkeypatch):
    from facemap_nwb.cli import main

    nwb = tmp_path / "in.nwb"
    assert main([str(a) for a in _convert(proc, nwb, "--metadata", metadata_file(tmp_path))]) == 0
    monkeypatch.setattr("facemap_nwb.plot.plot_summary", lambda *a, **k: pytest.fail("plot_summary ran"))
    folder, why = read_only()
    output = folder / "summary.png"
    refuse(["plot", nwb, "-o", output], tmp_path, [output, *why], capsys=capsys)


# --- the pieces ---------------------------------------------------------------------------------------------


def test_json_sidecar_on_a_full_disk(mount):
    disk = mount(size="64k")
    target = disk / "stamps" / "stamp.json"
    with pytest.raises(OutputError) as caught:
        with atomic_output(target, overwrite=True) as temporary:
            temporary.write_text("x" * 200_000)
    message = str(caught.value)
    assert str(target) in message and "No space left on device (errno 28)" in message and "\n" not in message
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(target)
    assert not any(disk.iterdir()), "the temporary file or the folder made for it was left behind"


def test_check_writable_folder_creates_nothing(tmp_path):
    folder = tmp_path / "a" / "b"
    assert check_writable_folder(folder, what="processed folder") == folder
    assert check_output_path(folder / "out.nwb") == folder / "out.nwb"
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "a").write_text("")
    with pytest.raises(OutputError, match=r"processed folder .* its parent '.*a' is a file"):
        check_writable_folder(folder, what="processed folder")
    with pytest.raises(OutputError, match="it is a file"):
        check_writable_folder(tmp_path / "a", what="output folder")


@pytest.mark.parametrize("name", ["", " ", ".", "..", "a/b", "a:b", "a\0b"])
def test_check_nwb_name_refuses(name):
    with pytest.raises(ValueError, match="recording name"):
        check_nwb_name(name, "recording name")


def test_check_nwb_name_accepts():
    assert check_nwb_name("FaceCamera 2 (left)-x_y.z") == "FaceCamera 2 (left)-x_y.z"


def test_output_error_is_an_oserror_that_pickles():
    from facemap_nwb.atomic import output_error

    err = output_error("out.nwb", OSError(errno.EDQUOT, os.strerror(errno.EDQUOT)))
    assert isinstance(err, OSError) and err.errno == errno.EDQUOT and err.filename == "out.nwb"
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is OutputError and str(back) == str(err) and back.errno == err.errno
    assert str(err).startswith("Cannot write 'out.nwb': Disk quota exceeded (errno 122).")


def test_write_error_found_through_hdmf_wrapping(tmp_path):
    temporary = tmp_path / ".out.partial.nwb.zarr"
    try:
        try:
            raise OSError(errno.EACCES, "Permission denied", str(temporary / "acquisition" / ".zattrs"))
        except OSError as inner:
            raise Exception("Could not create dataset x in /acquisition") from inner
    except Exception as outer:
        found = write_error_in(outer, temporary)
    assert found is not None and found.errno == errno.EACCES
    assert write_error_in(ValueError("bad value"), temporary) is None
    assert write_error_in(FileNotFoundError(errno.ENOENT, "No such file", "/inputs/video.mp4"), temporary) is None


class _FailingDisk:
    """``os.pwrite`` on a disk with ``free`` bytes: writes that go past them are cut short, then refused."""

    def __init__(self, monkeypatch, free: int):
        self.free, self.pwrite = free, os.pwrite
        monkeypatch.setattr(os, "pwrite", self)

    def __call__(self, fd, data, offset):
        allowed = max(0, min(len(data), self.free - offset))
        if allowed == 0 and len(data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.pwrite(fd, memoryview(data)[:allowed], offset)


def test_guarded_file_reads_back_what_was_written_after_a_failure(tmp_path, monkeypatch):
    """Random writes, reads, seeks and truncates against a plain bytearray, with the disk full half-way."""
    _FailingDisk(monkeypatch, free=300_000)
    rng = random.Random(3)
    reference = bytearray()
    with GuardedFile(tmp_path / "f.bin") as guarded:
        for step in range(600):
            kind, offset = rng.random(), rng.randrange(0, 700_000)
            if kind < 0.55:
                data = rng.randbytes(rng.choice([1, 100, 5000, 70_000]))
                guarded.seek(offset)
                assert guarded.write(data) == len(data)
                if len(reference) < offset:
                    reference.extend(bytes(offset - len(reference)))
                reference[offset : offset + len(data)] = data
            elif kind < 0.95:
                size = rng.choice([0, 1, 4096, 100_000])
                guarded.seek(offset)
                expected = bytes(reference[offset : offset + size])
                assert guarded.read(size) == expected + bytes(size - len(expected)), f"step {step}"
            else:
                size = rng.randrange(0, 700_000)
                guarded.truncate(size)
                reference = reference[:size] + bytes(max(0, size - len(reference)))
            guarded.seek(0, os.SEEK_END)
            assert guarded.tell() == len(reference)
        assert guarded.error is not None and guarded.error.errno == errno.ENOSPC


def test_hdf5_stays_sound_after_a_failed_write(tmp_path, monkeypatch):
    """HDF5 evicts and reads back chunks and metadata after the disk is full: it sees what it wrote and
    closes the file once, cleanly; the error is reported afterwards."""
    import h5py

    _FailingDisk(monkeypatch, free=400_000)
    data = np.random.default_rng(0).standard_normal((200, 3000)).astype("f4")
    guarded = GuardedFile(tmp_path / "x.h5")
    with h5py.File(guarded, "w", rdcc_nbytes=2**18) as f:
        dataset = f.create_dataset("x", shape=data.shape, dtype="f4", chunks=(20, 300), compression="gzip")
        for start in range(0, 200, 10):  # half chunks: evicted chunks are read back to be completed
            dataset[start : start + 10] = data[start : start + 10]
        for i in range(100):
            f.create_group(f"g{i}").attrs["v"] = np.arange(50)
        assert guarded.error is not None
        np.testing.assert_array_equal(dataset[:], data)
        assert all((f[f"g{i}"].attrs["v"] == np.arange(50)).all() for i in range(100))
    guarded.close()
    assert guarded.error.errno == errno.ENOSPC
