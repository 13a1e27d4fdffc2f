"""Generators of damaged videos, for the adversarial video tests (tests/test_video_damage.py).

Each function writes one file (or link) and returns its path. Sources are small synthetic videos made
with PyAV (:func:`encode`, several containers and codecs) or the shared real videos (:func:`remux`
copies their packets into another container). The damage is what happens to recordings in practice:
a copy cut short (:func:`truncate`, :func:`truncate_at_packet`), lost or overwritten blocks
(:func:`zero_packets`, :func:`corrupt_packets`, :func:`flip_bytes`), a lost index (:func:`rename_box`,
:func:`remove_avi_index`), and files that are not videos at all (lists, playlists, images, audio, text,
links and pipes).
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from facemap_nwb.synthetic import face_frame

__all__ = [
    "encode",
    "remux",
    "packet_layout",
    "truncate",
    "truncate_at_packet",
    "zero_packets",
    "corrupt_packets",
    "flip_bytes",
    "rename_box",
    "remove_avi_index",
    "zero_frame_video",
    "audio_only",
    "wav_file",
    "concat_list",
    "hls_playlist",
    "dash_manifest",
    "sdp_file",
    "text_file",
    "png_image",
    "y4m_with_frame_size",
    "symlink_loop",
    "dangling_symlink",
    "named_pipe",
]

# Pixel formats each encoder is fed; the frames are the synthetic face (gray) in that format.
_PIXEL_FORMATS = {"mjpeg": "yuvj420p", "png": "rgb24", "libx264rgb": "rgb24"}


def encode(
    path: str | os.PathLike,
    codec: str = "libx264",
    *,
    n_frames: int = 40,
    height: int = 48,
    width: int = 64,
    rate: float = 30,
    pix_fmt: str | None = None,
    faststart: bool = False,
    gop: int = 10,
) -> Path:
    """Write the synthetic face movie with ``codec`` into the container named by the extension.

    Parameters
    ----------
    path : path
        Output file (``.mp4``, ``.mov``, ``.mkv``, ``.avi``, ``.flv``, ``.webm``, ...).
    codec : str
        FFmpeg encoder.
    n_frames, height, width, rate
        Size of the movie.
    pix_fmt : str, optional
        Pixel format to encode (default: ``yuv420p``, or what the codec needs).
    faststart : bool
        MP4/MOV only: write the index (``moov``) before the frames, as streaming files do.
    gop : int
        Frames between keyframes, so that a cut at a keyframe exists in a short movie.
    """
    path = Path(path)
    pix_fmt = pix_fmt or _PIXEL_FORMATS.get(codec, "yuv420p")
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=Fraction(rate).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.gop_size = gop
        for t in range(n_frames):
            gray = face_frame(t, height, width)
            if pix_fmt == "rgb24":
                frame = av.VideoFrame.from_ndarray(np.stack([gray, gray // 2, gray // 3], -1), format="rgb24")
            elif pix_fmt == "gray16le":
                frame = av.VideoFrame.from_ndarray(gray.astype(np.uint16) * 257, format="gray16le")
            else:
                frame = av.VideoFrame.from_ndarray(gray, format="gray")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def remux(source: str | os.PathLike, target: str | os.PathLike, *, faststart: bool = False) -> Path:
    """Copy the video packets of ``source`` into the container named by ``target``'s extension (no re-encode)."""
    target = Path(target)
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(source)) as inp, av.open(str(target), "w", options=options) as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = copy
            out.mux(packet)
    return target


def packet_layout(path: str | os.PathLike) -> list[tuple[int, int, bool]]:
    """``(byte offset, size, keyframe)`` of every video packet with data, in file order."""
    with av.open(str(path)) as container:
        rows = [(p.pos, p.size, p.is_keyframe) for p in container.demux(container.streams.video[0]) if p.size]
    return sorted(r for r in rows if r[0] is not None and r[0] >= 0)


def truncate(source: str | os.PathLike, target: str | os.PathLike, fraction: float) -> Path:
    """The first ``fraction`` of the bytes of ``source``: a copy cut short, anywhere."""
    data = Path(source).read_bytes()
    Path(target).write_bytes(data[: int(len(data) * fraction)])
    return Path(target)


def truncate_at_packet(
    source: str | os.PathLike, target: str | os.PathLike, fraction: float = 0.5, *, keyframe: bool = False
) -> Path:
    """Cut ``source`` just before the first (key)frame packet that starts past ``fraction`` of the file.

    Every packet left is whole, so the demuxer sees a shorter but well-formed stream: only what the
    header promised (frame count, duration, segment size) tells that frames are missing.
    """
    data = Path(source).read_bytes()
    starts = [pos for pos, _, key in packet_layout(source) if key or not keyframe]
    cut = next((pos for pos in starts if pos > len(data) * fraction), starts[-1])
    Path(target).write_bytes(data[:cut])
    return Path(target)


def _rewrite_packets(source, target, packets, change) -> Path:
    data = bytearray(Path(source).read_bytes())
    layout = packet_layout(source)
    for index in packets:
        pos, size, _ = layout[index]
        change(data, pos, size)
    Path(target).write_bytes(bytes(data))
    return Path(target)


def zero_packets(source: str | os.PathLike, target: str | os.PathLike, packets) -> Path:
    """Overwrite the payload of the given packets (indices in file order) with zeros; sizes and index stay."""

    def zero(data, pos, size):
        data[pos : pos + size] = bytes(size)

    return _rewrite_packets(source, target, packets, zero)


def corrupt_packets(source: str | os.PathLike, target: str | os.PathLike, packets, *, seed: int = 0) -> Path:
    """Overwrite the payload of the given packets with random bytes (reproducible with ``seed``)."""
    rng = np.random.default_rng(seed)

    def scramble(data, pos, size):
        data[pos : pos + size] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()

    return _rewrite_packets(source, target, packets, scramble)


def flip_bytes(source: str | os.PathLike, target: str | os.PathLike, offsets) -> Path:
    """Invert every bit of the bytes at ``offsets`` (negative offsets count from the end)."""
    data = bytearray(Path(source).read_bytes())
    for offset in offsets:
        data[offset] ^= 0xFF
    Path(target).write_bytes(bytes(data))
    return Path(target)


def rename_box(
    source: str | os.PathLike, target: str | os.PathLike, old: bytes = b"moov", new: bytes = b"skip"
) -> Path:
    """Rename an MP4/MOV box (every occurrence of its 4-byte type): ``moov`` to ``skip`` removes the index.

    (Not to ``free``: FFmpeg looks for a lost ``moov`` inside ``free`` boxes.)
    """
    data = Path(source).read_bytes()
    if old not in data:
        raise ValueError(f"'{source}' holds no '{old.decode()}' box")
    Path(target).write_bytes(data.replace(old, new))
    return Path(target)


def remove_avi_index(source: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Turn an AVI's ``idx1`` index into a ``JUNK`` chunk: the data stay complete, the index is gone."""
    return rename_box(source, target, b"idx1", b"JUNK")


def zero_frame_video(path: str | os.PathLike, codec: str = "libx264") -> Path:
    """A container with a video stream and no frame (an acquisition that stopped before the first one)."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, _PIXEL_FORMATS.get(codec, "yuv420p")
        container.start_encoding()
    return path


def audio_only(path: str | os.PathLike, codec: str = "aac", seconds: float = 0.5) -> Path:
    """A container holding one audio stream (a tone) and no video stream."""
    path = Path(path)
    rate = 16000
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        samples = int(seconds * rate)
        tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
        step = stream.codec_context.frame_size or 1024
        for first in range(0, samples, step):
            chunk = tone[first : first + step]
            fmt = "fltp" if codec == "aac" else "s16"
            values = chunk if fmt == "fltp" else (chunk * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(values[None, :], format=fmt, layout="mono")
            frame.sample_rate, frame.pts = rate, first
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def wav_file(path: str | os.PathLike, seconds: float = 0.2) -> Path:
    """A mono 16-bit WAV file (written by hand: RIFF header and silence)."""
    import struct

    rate, samples = 8000, int(8000 * seconds)
    data = bytes(2 * samples)
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, 2 * rate, 2, 16)
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + fmt
    Path(path).write_bytes(header + b"data" + struct.pack("<I", len(data)) + data)
    return Path(path)


def concat_list(path: str | os.PathLike, files) -> Path:
    """An FFmpeg concat list naming ``files``: FFmpeg would play them as one long video."""
    lines = ["ffconcat version 1.0", *(f"file '{Path(f).name}'" for f in files)]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def hls_playlist(path: str | os.PathLike, files) -> Path:
    """An HLS (m3u8) playlist of ``files``."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for f in files:
        lines += ["#EXTINF:1.0,", Path(f).name]
    Path(path).write_text("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n")
    return Path(path)


def dash_manifest(path: str | os.PathLike, file: str) -> Path:
    """A DASH manifest (MPD) with one representation pointing at ``file``."""
    Path(path).write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT1S" '
        'profiles="urn:mpeg:dash:profile:isoff-on-demand:2011">\n'
        '  <Period><AdaptationSet mimeType="video/mp4"><Representation id="1" bandwidth="1000" width="64" '
        f'height="48"><BaseURL>{Path(file).name}</BaseURL></Representation></AdaptationSet></Period>\n</MPD>\n'
    )
    return Path(path)


def sdp_file(path: str | os.PathLike) -> Path:
    """A session description (SDP): FFmpeg would listen for an RTP stream on the network."""
    Path(path).write_text(
        "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=camera\nc=IN IP4 127.0.0.1\nt=0 0\nm=video 5004 RTP/AVP 96\n"
        "a=rtpmap:96 H264/90000\n"
    )
    return Path(path)


def text_file(path: str | os.PathLike, text: str = "Mouse 12, session 3: camera notes.\n" * 20) -> Path:
    """Plain text (notes saved with a video's name)."""
    Path(path).write_text(text)
    return Path(path)


def png_image(path: str | os.PathLike) -> Path:
    """One PNG image (a still frame of the face)."""
    path = Path(path)
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "gray"
        for packet in stream.encode(av.VideoFrame.from_ndarray(face_frame(0, 48, 64), format="gray")):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def y4m_with_frame_size(path: str | os.PathLike, width: int, height: int, frames: int = 2) -> Path:
    """A YUV4MPEG2 file whose header declares ``width`` x ``height`` frames, with 64 x 48 frames of data."""
    header = f"YUV4MPEG2 W{width} H{height} F30:1 Ip A1:1 C420jpeg\n".encode()
    frame = b"FRAME\n" + bytes(64 * 48 * 3 // 2)
    Path(path).write_bytes(header + frame * frames)
    return Path(path)


def symlink_loop(folder: str | os.PathLike, name: str = "loop.mp4") -> Path:
    """Two symbolic links pointing at each other; returns the one named ``name``."""
    folder = Path(folder)
    first, second = folder / name, folder / f"other_{name}"
    first.symlink_to(second.name)
    second.symlink_to(first.name)
    return first


def dangling_symlink(folder: str | os.PathLike, name: str = "link.mp4") -> Path:
    """A symbolic link to a file that does not exist."""
    link = Path(folder) / name
    link.symlink_to("gone.mp4")
    return link


def named_pipe(folder: str | os.PathLike, name: str = "pipe.mp4") -> Path:
    """A named pipe (FIFO) with a video's name: opening it for reading would wait for a writer forever."""
    path = Path(folder) / name
    os.mkfifo(path)
    return path


def damaged_copies(clean: bytes, *, count: int, start: int, stop: int, seed: int):
    """``count`` copies of ``clean`` with 1 to 3 bytes in ``[start, stop)`` set to random values (fixed seed)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for _ in range(count):
        raw = bytearray(clean)
        for position in rng.integers(start, min(stop, len(raw)), size=rng.integers(1, 4)):
            raw[position] = int(rng.integers(0, 256))
        yield bytes(raw)
