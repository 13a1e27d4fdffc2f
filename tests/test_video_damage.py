"""Damaged and wrong video input, refused by mechanism (issue #9), and the good videos that must keep working.

Every damaged file of tests/damage.py is refused by the API (``probe_recording(decode=True)``, and
``probe_recording(decode=False)`` followed by reading every frame with :class:`GrayFrameReader`) and by the
commands ``info``, ``recording`` and ``process`` (one line naming the file, exit code 1, no traceback,
nothing left behind: tests/adversarial.py). ``info --fast`` counts packets without decoding: it refuses what
the packets and the container's header already show (truncation, a lost index, a damaged container) and
marks the rest as unverified (``counted: packets``, ``frame_count_verified: false``).

Why each kind of damage can be found, whatever the container:

* A copy cut short holds fewer frames than the header lists (MP4/MOV sample tables, AVI headers), or
  timestamps that end before the declared duration (Matroska, FLV), or FFmpeg says so while reading
  ("partial file", "File ended prematurely"); with the index at the end (MP4/MOV), the index is gone.
* Damaged container structure (zeroed or random bytes over Matroska blocks) makes the demuxer report errors.
* A damaged header makes FFmpeg fall back to reading raw JPEG or H.264 data out of a file named .avi or
  .mkv, which is refused (raw streams are read only from files named like one).
* Zeroed or random bytes inside a frame of MJPEG, MPEG-4, FFV1 or H.264 make its decoder fail: refused
  when decoding (so not by ``info --fast``, which marks the count instead).
* Lists, playlists, session descriptions, images and audio are not on the allowlist of single-file video
  demuxers that every file is opened with.

Not refusable (and so not here): damage that decodes to wrong pixels without an error (e.g. zeroed bytes
inside an FFV1 frame in AVI, whose CRC errors come from FFmpeg's decoder threads), and a cut MPEG-TS, MPEG-PS
or ASF file, whose headers promise no length.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from facemap_nwb import GrayFrameReader, VideoError, probe_recording, probe_video
from facemap_nwb.cli import main

from . import damage
from .adversarial import refuse
from .conftest import PAIR_VIDEO, LP_VIDEO, shared_video
from .test_recording_nwb import metadata_file

START = ["--session-start", "2024-01-01T00:00:00+00:00"]

# Synthetic sources: 40 frames of 64 x 48, a keyframe every 10 frames.
SOURCES = {
    "h264.mp4": ("libx264", {}),
    "h264_faststart.mp4": ("libx264", {"faststart": True}),
    "h264.mkv": ("libx264", {}),
    "h264.flv": ("libx264", {}),
    "mpeg4.avi": ("mpeg4", {}),
    "mjpeg.avi": ("mjpeg", {}),
    "mjpeg.mov": ("mjpeg", {}),
    "mjpeg_faststart.mov": ("mjpeg", {"faststart": True}),
    "mjpeg.mkv": ("mjpeg", {}),
    "ffv1.avi": ("ffv1", {}),
    "ffv1.mkv": ("ffv1", {}),
    "vp9.webm": ("libvpx-vp9", {}),
}


class Sources:
    """The undamaged videos the cases start from, made once per module."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._made: dict[str, Path] = {}

    def __call__(self, name: str) -> Path:
        if name not in self._made:
            codec, options = SOURCES[name]
            self._made[name] = damage.encode(self.folder / name, codec, **options)
        return self._made[name]

    def real(self, name: str, container: str | None = None, *, faststart: bool = False) -> Path:
        """A shared real video, or its packets copied into another container (``.mkv``, ``.mp4``)."""
        source = shared_video({"lp": LP_VIDEO, "pair": PAIR_VIDEO}[name])
        if container is None:
            return source
        key = f"real_{name}{'_faststart' if faststart else ''}{container}"
        if key not in self._made:
            self._made[key] = damage.remux(source, self.folder / key, faststart=faststart)
        return self._made[key]


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Sources:
    return Sources(tmp_path_factory.mktemp("sources"))


@dataclass(frozen=True)
class Case:
    """One damaged input: how to make it, what the message says, whether ``info --fast`` refuses it."""

    make: object  # (sources, folder) -> path
    message: str  # regular expression the refusal matches
    fast_refused: bool = True  # False: only decoding finds it (info --fast marks the count as unverified)


TRUNCATED = "truncated or corrupt"
# The index at the end is gone (all of it, or its end): FFmpeg cannot read the header ("moov atom not
# found"), or finds a track without its codec or with fewer frames than listed, depending on where the cut
# falls in the index.
NO_INDEX = "not a readable video|truncated or corrupt"
DECODE = "does not decode"


def _cut(source, fraction, **kw):
    return lambda s, f: damage.truncate(s(source), f / f"cut{int(fraction * 100)}_{source}", fraction, **kw)


def _cut_at(source, fraction=0.5, keyframe=False):
    name = f"cut{'key' if keyframe else 'packet'}_{source}"
    return lambda s, f: damage.truncate_at_packet(s(source), f / name, fraction, keyframe=keyframe)


def _middle(source, how, count=1):
    """Zeros (``how="zero"``) or random bytes over ``count`` packets in the middle of ``source``."""

    def make(s, f):
        n = len(damage.packet_layout(s(source)))
        packets = list(range(n // 2, n // 2 + count))
        target = f / f"{how}{count}_{source}"
        if how == "zero":
            return damage.zero_packets(s(source), target, packets)
        return damage.corrupt_packets(s(source), target, packets, seed=1)

    return make


def _flip_header(source):
    return lambda s, f: damage.flip_bytes(s(source), f / f"flipped_{source}", range(16))


def _real_cut(name, container=None, fraction=0.5, faststart=False, at_packet=False):
    def make(s, f):
        source = s.real(name, container, faststart=faststart)
        target = f / f"cut_{source.name}"
        if at_packet:
            return damage.truncate_at_packet(source, target, fraction)
        return damage.truncate(source, target, fraction)

    return make


def _image_pattern(s, f):
    """A PNG image saved under an image-sequence pattern name (FFmpeg's image2 would expand the %03d)."""
    image = damage.png_image(f / "still.png")
    return image.rename(f / "frame%03d.png")


def _folder(s, f):
    (f / "videos.mp4").mkdir()
    return f / "videos.mp4"


def _empty(s, f):
    (f / "empty.mp4").write_bytes(b"")
    return f / "empty.mp4"


CASES = {
    # --- cut short, anywhere: the MP4/MOV index at the end is lost
    **{f"cut{int(x * 100)}_h264_mp4": Case(_cut("h264.mp4", x), NO_INDEX) for x in (0.3, 0.6, 0.9)},
    "cut50_mjpeg_mov": Case(_cut("mjpeg.mov", 0.5), NO_INDEX),
    # --- cut short with the index first (faststart): fewer frames than the sample table lists
    **{f"cut{int(x * 100)}_h264_faststart": Case(_cut("h264_faststart.mp4", x), TRUNCATED) for x in (0.3, 0.6, 0.9)},
    "cutkey_h264_faststart": Case(_cut_at("h264_faststart.mp4", keyframe=True), TRUNCATED),
    "cutpacket_h264_faststart": Case(_cut_at("h264_faststart.mp4"), TRUNCATED),
    **{f"cut{int(x * 100)}_mjpeg_faststart_mov": Case(_cut("mjpeg_faststart.mov", x), TRUNCATED) for x in (0.5, 0.9)},
    "cutpacket_mjpeg_faststart_mov": Case(_cut_at("mjpeg_faststart.mov"), TRUNCATED),
    # --- AVI: the header's frame count survives the cut
    **{f"cut{int(x * 100)}_mjpeg_avi": Case(_cut("mjpeg.avi", x), TRUNCATED) for x in (0.3, 0.6, 0.9)},
    "cutpacket_mjpeg_avi": Case(_cut_at("mjpeg.avi"), TRUNCATED),
    **{f"cut{int(x * 100)}_mpeg4_avi": Case(_cut("mpeg4.avi", x), TRUNCATED) for x in (0.6, 0.9)},
    "cutkey_mpeg4_avi": Case(_cut_at("mpeg4.avi", keyframe=True), TRUNCATED),
    **{f"cut{int(x * 100)}_ffv1_avi": Case(_cut("ffv1.avi", x), TRUNCATED) for x in (0.3, 0.6)},
    "cutpacket_ffv1_avi": Case(_cut_at("ffv1.avi"), TRUNCATED),
    # --- Matroska / WebM: "File ended prematurely", and timestamps short of the declared duration
    **{f"cut{int(x * 100)}_h264_mkv": Case(_cut("h264.mkv", x), TRUNCATED) for x in (0.3, 0.6, 0.9)},
    "cutpacket_h264_mkv": Case(_cut_at("h264.mkv"), TRUNCATED),
    "cutkey_h264_mkv": Case(_cut_at("h264.mkv", keyframe=True), TRUNCATED),
    "cut50_ffv1_mkv": Case(_cut("ffv1.mkv", 0.5), TRUNCATED),
    "cutpacket_ffv1_mkv": Case(_cut_at("ffv1.mkv"), TRUNCATED),
    "cut50_mjpeg_mkv": Case(_cut("mjpeg.mkv", 0.5), TRUNCATED),
    "cut50_vp9_webm": Case(_cut("vp9.webm", 0.5), TRUNCATED),
    # --- FLV: its metadata's duration is longer than the frames left
    "cut50_h264_flv": Case(_cut("h264.flv", 0.5), TRUNCATED),
    "cutpacket_h264_flv": Case(_cut_at("h264.flv"), TRUNCATED),
    # --- the shared real videos: as recorded (index at the end), and copied into other containers
    "real_lp_cut50": Case(_real_cut("lp"), NO_INDEX),
    "real_pair_cut50": Case(_real_cut("pair"), NO_INDEX),
    "real_lp_faststart_cutpacket": Case(_real_cut("lp", ".mp4", faststart=True, at_packet=True), TRUNCATED),
    "real_pair_faststart_cutpacket": Case(_real_cut("pair", ".mp4", faststart=True, at_packet=True), TRUNCATED),
    "real_lp_mkv_cut60": Case(_real_cut("lp", ".mkv", 0.6), TRUNCATED),
    "real_pair_mkv_cutpacket": Case(_real_cut("pair", ".mkv", at_packet=True), TRUNCATED),
    # --- index removed
    "no_moov_h264_mp4": Case(lambda s, f: damage.rename_box(s("h264.mp4"), f / "nomoov.mp4"), NO_INDEX),
    "no_moov_faststart": Case(lambda s, f: damage.rename_box(s("h264_faststart.mp4"), f / "nomoov_fs.mp4"), NO_INDEX),
    # --- header bytes flipped: unreadable, or only raw codec data found in a file named as a container
    # (what FFmpeg then makes of the file depends on the encoded bytes, e.g. no demuxer recognises it at all)
    "flipped_h264_mp4": Case(_flip_header("h264.mp4"), "not a readable video"),
    "flipped_h264_mkv": Case(_flip_header("h264.mkv"), "not a readable video"),
    "flipped_mjpeg_avi": Case(_flip_header("mjpeg.avi"), "header is missing or damaged.*raw mjpeg"),
    "flipped_mpeg4_avi": Case(_flip_header("mpeg4.avi"), "header is missing or damaged.*raw m4v"),
    "flipped_mjpeg_mkv": Case(_flip_header("mjpeg.mkv"), "header is missing or damaged.*raw mjpeg"),
    "flipped_mjpeg_faststart_mov": Case(_flip_header("mjpeg_faststart.mov"), "header is missing or damaged"),
    # --- data overwritten in the middle, index and header kept: the decoder fails on that frame ...
    "zeroed_h264_mp4": Case(_middle("h264.mp4", "zero"), DECODE, fast_refused=False),
    "zeroed3_h264_faststart": Case(_middle("h264_faststart.mp4", "zero", 3), DECODE, fast_refused=False),
    "zeroed3_mjpeg_avi": Case(_middle("mjpeg.avi", "zero", 3), DECODE, fast_refused=False),
    "random_mjpeg_faststart_mov": Case(_middle("mjpeg_faststart.mov", "random"), DECODE, fast_refused=False),
    "random_mpeg4_avi": Case(_middle("mpeg4.avi", "random"), DECODE, fast_refused=False),
    "random_ffv1_avi": Case(_middle("ffv1.avi", "random"), DECODE, fast_refused=False),
    # ... or, in Matroska, the demuxer loses its way over the damaged blocks (and frames with it)
    "zeroed_h264_mkv": Case(_middle("h264.mkv", "zero"), TRUNCATED),
    "random_ffv1_mkv": Case(_middle("ffv1.mkv", "random"), TRUNCATED),
    "zeroed3_mjpeg_mkv": Case(_middle("mjpeg.mkv", "zero", 3), TRUNCATED),
    # --- no frames, no video
    "zero_frames_mp4": Case(lambda s, f: damage.zero_frame_video(f / "zero.mp4"), "no video frames"),
    "zero_frames_avi": Case(lambda s, f: damage.zero_frame_video(f / "zero.avi", "mjpeg"), "no decodable frames"),
    "zero_frames_mkv": Case(lambda s, f: damage.zero_frame_video(f / "zero.mkv"), "not a readable video"),
    "audio_only_mp4": Case(lambda s, f: damage.audio_only(f / "sound.mp4"), "no video stream"),
    "audio_only_mkv": Case(lambda s, f: damage.audio_only(f / "sound.mkv", "pcm_s16le"), "no video stream"),
    "wav_named_mp4": Case(lambda s, f: damage.wav_file(f / "sound.mp4"), "reads it as 'wav' data"),
    # --- text that FFmpeg would play as a video made of other files, and other text
    "concat_list_mp4": Case(
        lambda s, f: damage.concat_list(f / "both.mp4", [s("h264.mp4"), s("h264_faststart.mp4")]), "concat list"
    ),
    "concat_list_ffconcat": Case(lambda s, f: damage.concat_list(f / "list.ffconcat", [s("h264.mp4")]), "concat list"),
    "hls_playlist_m3u8": Case(lambda s, f: damage.hls_playlist(f / "play.m3u8", [s("h264.mp4")]), "HLS playlist"),
    "hls_playlist_mp4": Case(lambda s, f: damage.hls_playlist(f / "play.mp4", [s("h264.mp4")]), "text file.*#EXTM3U"),
    "dash_manifest": Case(lambda s, f: damage.dash_manifest(f / "stream.mpd", "h264.mp4"), "not a readable video"),
    "sdp_file": Case(lambda s, f: damage.sdp_file(f / "camera.sdp"), "reads it as 'sdp' data"),
    "sdp_named_mp4": Case(lambda s, f: damage.sdp_file(f / "camera.mp4"), "reads it as 'sdp' data"),
    "text_mp4": Case(lambda s, f: damage.text_file(f / "notes.mp4"), "text file"),
    "png_named_mp4": Case(lambda s, f: damage.png_image(f / "still.mp4"), "reads it as an image"),
    "image_pattern_name": Case(_image_pattern, "reads it as an image"),
    # --- not a regular readable file
    "empty_file": Case(_empty, "empty"),
    "folder": Case(_folder, "is a folder"),
    "missing": Case(lambda s, f: f / "never_recorded.mp4", "not found"),
    "symlink_loop": Case(lambda s, f: damage.symlink_loop(f), "loop"),
    "dangling_symlink": Case(lambda s, f: damage.dangling_symlink(f), "symbolic link to 'gone.mp4'"),
    "named_pipe": Case(lambda s, f: damage.named_pipe(f), "not a regular file"),
    # --- frame sizes no camera records
    "y4m_60000x60000": Case(lambda s, f: damage.y4m_with_frame_size(f / "huge.y4m", 60000, 60000), "60000x60000"),
    "y4m_10000x10000": Case(lambda s, f: damage.y4m_with_frame_size(f / "big.y4m", 10000, 10000), "10000x10000"),
}


def _make(name: str, sources: Sources, folder: Path) -> Path:
    if name == "named_pipe" and not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes on this system")
    if name in ("symlink_loop", "dangling_symlink") and sys.platform == "win32":
        pytest.skip("symbolic links need privileges on Windows")
    return CASES[name].make(sources, folder)


def _errors(name: str):
    return FileNotFoundError if name == "missing" else VideoError


@pytest.mark.parametrize("name", CASES)
def test_api_refuses(name, sources, tmp_path):
    path = _make(name, sources, tmp_path)
    case = CASES[name]
    with pytest.raises(_errors(name), match=case.message) as decoded:
        probe_recording([path], decode=True)
    assert path.name in str(decoded.value), decoded.value
    with pytest.raises(_errors(name)) as streamed:
        reader = GrayFrameReader(probe_recording([path], decode=False))
        for _ in reader.iter_chunks(16):
            pass
    assert path.name in str(streamed.value), streamed.value
    if not case.fast_refused:  # the packets are all there: only the decode (in the reader) finds the damage
        assert probe_video(path, decode=False).frame_count_verified is False
        assert DECODE in str(streamed.value)


@pytest.mark.parametrize("name", CASES)
def test_cli_refuses(name, sources, tmp_path, capsys):
    path = _make(name, sources, tmp_path)
    case = CASES[name]
    names = [path.name]
    refuse(["info", path], tmp_path, names=names, capsys=capsys)
    refuse(["info", "--json", "--recording", "Face", path], tmp_path, names=names, capsys=capsys)
    refuse(["recording", path, "-o", tmp_path / "rec.nwb", *START], tmp_path, names=names, capsys=capsys)
    result = refuse(["process", path, "-o", tmp_path / "out.nwb", "--quiet", *START], tmp_path, names, capsys=capsys)
    assert "error" in result.stderr
    if case.fast_refused:
        refuse(["info", "--fast", path], tmp_path, names=names, capsys=capsys)
        return
    assert main(["info", "--fast", str(path)]) == 0  # counted without decoding: marked, not refused
    table = capsys.readouterr().out
    assert "counted" in table.splitlines()[0] and "packets" in table
    assert main(["info", "--fast", "--json", str(path)]) == 0
    (row,) = json.loads(capsys.readouterr().out)["files"]
    assert row["frame_count_verified"] is False


def test_at_least_fifty_refusal_cases():
    assert len(CASES) >= 50


# ------------------------------------------------------------------ streaming (several decoding passes)


@pytest.fixture(scope="module")
def long_mjpeg(tmp_path_factory):
    """90 frames of 120 x 160 (1.7 MB decoded: more than a 1 MiB memory budget), MJPEG in AVI."""
    folder = tmp_path_factory.mktemp("long")
    return damage.encode(folder / "long.avi", "mjpeg", n_frames=90, height=120, width=160)


def _count_passes(monkeypatch) -> list:
    calls = []
    original = GrayFrameReader._file_frames

    def counting(self, info, *args):
        calls.append(info.path.name)
        return original(self, info, *args)

    monkeypatch.setattr(GrayFrameReader, "_file_frames", counting)
    return calls


def _meta(folder) -> list[str]:
    return ["--metadata", str(metadata_file(folder))]


def test_small_memory_budget_spills_and_decodes_once(long_mjpeg, tmp_path, monkeypatch, capsys):
    """Over the budget the binned frames go to a temporary file (removed after), still one decode."""
    monkeypatch.setenv("FACEMAP_NWB_TMPDIR", str(tmp_path / "spill"))
    (tmp_path / "spill").mkdir()
    passes = _count_passes(monkeypatch)
    out = tmp_path / "out.nwb"
    argv = ["process", str(long_mjpeg), "-o", str(out), "--memory-budget", "1", "--quiet", *START, *_meta(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    assert out.exists() and len(passes) == 1, f"the video was decoded {len(passes)} time(s), expected once"
    assert list((tmp_path / "spill").iterdir()) == [], "the temporary file of binned frames was left behind"
    # The projections went to a temporary file too and were streamed into the NWB file: the same values
    # as a run that keeps everything in memory.
    in_memory = tmp_path / "in_memory.nwb"
    argv = ["process", str(long_mjpeg), "-o", str(in_memory), "--quiet", *START, *_meta(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    from facemap_nwb.nwb.io import read_facemap_nwb

    spilled, kept = read_facemap_nwb(out), read_facemap_nwb(in_memory)
    for a, b in zip(spilled.motion_svd, kept.motion_svd, strict=True):
        np.testing.assert_array_equal(a.projections, b.projections)
    for region, trace in kept.motion_energy.items():
        np.testing.assert_array_equal(spilled.motion_energy[region], trace)


def test_spill_refused_when_the_temporary_disk_is_too_small(long_mjpeg, tmp_path, monkeypatch, capsys):
    """Checked before decoding: one message naming the folder, the space needed and the fixes."""
    import collections

    from facemap_nwb.engines import frames

    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(frames.shutil, "disk_usage", lambda folder: usage(10 << 20, 9 << 20, 1 << 20))
    monkeypatch.setenv("FACEMAP_NWB_TMPDIR", str(tmp_path))
    argv = ["process", long_mjpeg, "-o", tmp_path / "out.nwb", "--memory-budget", "0.01", "--quiet", *START]
    result = refuse(argv, tmp_path, names=[str(tmp_path)], capsys=capsys)
    assert "temporary space" in result.stderr and "FACEMAP_NWB_TMPDIR" in result.stderr, result.stderr


def test_spill_write_failure_is_one_clear_error(long_mjpeg, tmp_path, monkeypatch, capsys):
    """A disk that fills while the binned frames are written: one message, no output, no traceback."""
    import errno

    from facemap_nwb.engines import frames

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(frames.os, "pwrite", full)
    monkeypatch.setenv("FACEMAP_NWB_TMPDIR", str(tmp_path))
    argv = ["process", long_mjpeg, "-o", tmp_path / "out.nwb", "--memory-budget", "0.01", "--quiet", *START]
    result = refuse(argv, tmp_path, names=[str(tmp_path)], capsys=capsys)
    assert "No space left on device" in result.stderr and "--memory-budget" in result.stderr, result.stderr


def test_small_memory_budget_refuses_truncated_input(long_mjpeg, tmp_path, capsys):
    cut = damage.truncate_at_packet(long_mjpeg, tmp_path / "cut_long.avi", 0.7)
    argv = ["process", cut, "-o", tmp_path / "out.nwb", "--memory-budget", "1", "--quiet", *START]
    result = refuse(argv, tmp_path, names=[cut.name], capsys=capsys)
    assert TRUNCATED in result.stderr


def test_small_memory_budget_refuses_a_frame_that_fails_while_streaming(long_mjpeg, tmp_path, monkeypatch, capsys):
    """The packets are all there (the probe passes); frame 75 fails in the decoding passes."""
    bad = damage.zero_packets(long_mjpeg, tmp_path / "bad_long.avi", [75])
    passes = _count_passes(monkeypatch)
    argv = ["process", bad, "-o", tmp_path / "out.nwb", "--memory-budget", "1", "--quiet", *START]
    result = refuse(argv, tmp_path, names=[bad.name], capsys=capsys)
    assert "Frame 75" in result.stderr and DECODE in result.stderr
    assert passes, "the engine never decoded"


def test_native_engine_api_refuses_while_streaming(long_mjpeg, tmp_path):
    from facemap_nwb.engines import process_recordings
    from facemap_nwb.params import FacemapParameters

    bad = damage.zero_packets(long_mjpeg, tmp_path / "bad_long.avi", [60])
    recording = probe_recording([bad], decode=False)
    with pytest.raises(VideoError, match="Frame 60 of .*bad_long.avi"):
        process_recordings([recording], FacemapParameters(spatial_bin=2), engine="native", memory_budget=1 << 20)


# -------------------------------------------------------------------------- what must keep working


def _vfr_times(n):
    intervals = np.where(np.arange(n - 1) % 3 == 0, 0.050, 0.020)
    return np.concatenate([[0.0], np.cumsum(intervals)])


def _write(path, codec, pix_fmt, *, n_frames=30, height=48, width=64, rate=30, times=None, source="gray"):
    """Like damage.encode, with any pixel format fed from the synthetic face, and optional timestamps."""
    import av

    from facemap_nwb.synthetic import face_frame

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if times is not None:
            stream.time_base = stream.codec_context.time_base = Fraction(1, 1000)
        for t in range(n_frames):
            gray = face_frame(t, height, width)
            if source == "gray16":
                frame = av.VideoFrame.from_ndarray(gray.astype(np.uint16) * 257, format="gray16le")
            elif source == "rgb":
                frame = av.VideoFrame.from_ndarray(np.stack([gray, gray // 2, gray // 3], -1), format="rgb24")
            else:
                frame = av.VideoFrame.from_ndarray(gray, format="gray")
            if times is not None:
                frame.pts, frame.time_base = int(round(times[t] * 1000)), Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


GOOD = {
    "colour_h264.mp4": lambda p: _write(p, "libx264", "yuv420p", source="rgb"),
    "gray_ffv1.mkv": lambda p: _write(p, "ffv1", "gray"),
    "gray16_ffv1.mkv": lambda p: _write(p, "ffv1", "gray16le", source="gray16"),
    "gray16_ffv1.avi": lambda p: _write(p, "ffv1", "gray16le", source="gray16"),
    "yuvj420p_mjpeg.avi": lambda p: _write(p, "mjpeg", "yuvj420p"),
    "yuv444p_h264.mp4": lambda p: _write(p, "libx264", "yuv444p", source="rgb"),
    "rgb24_x264rgb.mkv": lambda p: _write(p, "libx264rgb", "rgb24", source="rgb"),
    "rgb24_png.mov": lambda p: _write(p, "png", "rgb24", source="rgb"),
    "h264.mkv": lambda p: _write(p, "libx264", "yuv420p"),
    "ntsc_h264.mp4": lambda p: _write(p, "libx264", "yuv420p", rate=Fraction(30000, 1001)),
    "vfr_h264.mp4": lambda p: _write(p, "libx264", "yuv420p", times=_vfr_times(30)),
    "vfr_h264.mkv": lambda p: _write(p, "libx264", "yuv420p", times=_vfr_times(30)),
    "odd_161x121_ffv1.mkv": lambda p: _write(p, "ffv1", "yuv420p", height=121, width=161),
    "odd_161x121_yuv444p.mp4": lambda p: _write(p, "libx264", "yuv444p", height=121, width=161),
    "odd_161x121_mjpeg.avi": lambda p: _write(p, "mjpeg", "yuvj420p", height=121, width=161),
    "ünïcødé 名前 face.mp4": lambda p: _write(p, "libx264", "yuv420p"),
    "one_frame.mp4": lambda p: _write(p, "libx264", "yuv420p", n_frames=1),
    "mpeg2.mpg": lambda p: _write(p, "mpeg2video", "yuv420p"),
    "h264.ts": lambda p: _write(p, "libx264", "yuv420p"),
    "h264.flv": lambda p: _write(p, "libx264", "yuv420p"),
    "vp9.webm": lambda p: _write(p, "libvpx-vp9", "yuv420p"),
    "raw.h264": lambda p: _write(p, "libx264", "yuv420p"),
    "avi_without_index.avi": lambda p: damage.remove_avi_index(
        _write(p.with_name("indexed.avi"), "mjpeg", "yuvj420p"), p
    ),
}


@pytest.mark.parametrize("name", GOOD)
def test_good_videos_probe_and_process(name, tmp_path):
    from facemap_nwb.engines import process_recordings
    from facemap_nwb.params import FacemapParameters

    path = GOOD[name](tmp_path / name)
    decoded, counted = probe_video(path), probe_video(path, decode=False)
    assert decoded.frame_count == counted.frame_count > 0
    assert decoded.frame_count_verified and not counted.frame_count_verified
    frames = GrayFrameReader(probe_recording([path], decode=False)).read()
    assert frames.shape == (decoded.frame_count, decoded.height, decoded.width)
    results = process_recordings(
        [probe_recording([path], decode=False)], FacemapParameters(spatial_bin=2), engine="native", progress=False
    )
    assert results.frame_count == decoded.frame_count


@pytest.mark.parametrize("name", ["gray16_ffv1.mkv", "vfr_h264.mkv", "odd_161x121_mjpeg.avi", "ünïcødé 名前 face.mp4"])
def test_good_videos_through_the_command_line(name, tmp_path, capsys):
    path = GOOD[name](tmp_path / name)
    out = tmp_path / "out.nwb"
    argv = ["process", str(path), "-o", str(out), "--quiet", *START, *_meta(tmp_path)]
    assert main(argv) == 0, capsys.readouterr().err
    assert out.exists()
    assert main(["info", "--fast", str(path)]) == 0
    assert "packets" in capsys.readouterr().out


def test_good_real_videos_in_other_containers(sources, tmp_path):
    """The real videos' packets copied into MKV and faststart MP4 are complete: not refused."""
    for container, faststart in ((".mkv", False), (".mp4", True)):
        copy = sources.real("pair", container, faststart=faststart)
        assert probe_video(copy, decode=False).frame_count == probe_video(copy).frame_count == 1100


def test_a_concat_list_is_refused_before_the_files_it_names_are_opened(tmp_path, capsys):
    """The list names a file that does not exist: FFmpeg's concat demuxer would fail on it ("No such file");
    the allowlist refuses the list itself first."""
    listing = damage.concat_list(tmp_path / "list.mp4", [tmp_path / "not_there.mp4"])
    result = refuse(["info", listing], tmp_path, names=["list.mp4"], capsys=capsys)
    assert "concat list" in result.stderr and "No such file" not in result.stderr


def test_damage_in_a_second_camera_is_attributed_to_it(sources, tmp_path, capsys):
    """Two views decoded in lockstep in one thread: the message names the damaged view, not the good one."""
    good = sources("mjpeg.avi")
    bad = _middle("mjpeg.avi", "zero", 3)(sources, tmp_path)
    argv = ["process", good, "--view", bad, "-o", tmp_path / "out.nwb", "--quiet", *START]
    result = refuse(argv, tmp_path, names=[bad.name], capsys=capsys)
    assert f"'{good}'" not in result.stderr and DECODE in result.stderr
