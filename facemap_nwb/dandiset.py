"""A session's videos in the Dandiset, in the layout ``dandi organize --media-files-mode`` makes.

``dandi organize`` puts the external files of ``sub-<s>/sub-<s>_ses-<x>_behavior+image.nwb`` in a folder
named after the NWB file without its extension, beside it (dandi/organize.py, ``_create_external_file_names``:
``<nwb file name without .nwb>/<name>_external_file_<n><extension, lower case>``), and stores paths relative
to the NWB file's folder in ``ImageSeries.external_file``. facemap-nwb does the same::

    <output>/sub-m1/sub-m1_ses-day1_behavior+image.nwb
    <output>/sub-m1/sub-m1_ses-day1_behavior+image/FaceCamera_external_file_0.mp4
    <output>/sub-m1/sub-m1_ses-day1_behavior+image/FaceCamera_external_file_1.mp4
    <output>/sub-m1/sub-m1_ses-day1_behavior+image/BodyCamera_external_file_0.mp4

The folder is the NWB file's name up to ``.nwb`` for both backends (a Zarr store ``<stem>.nwb.zarr`` has its
videos in ``<stem>/`` too, never in a folder ending in ``.nwb``). Where dandi names each file by the
ImageSeries' object id, a fresh UUID each time the file is written, facemap-nwb names it by the ImageSeries
(the recording's name in DANDI's label alphabet, letters, digits and dashes), so that a rewritten NWB file
finds its videos where they are and a rerun never copies them again.

How the videos get there (``videos`` in the spec, ``--videos`` on ``run`` and ``batch``), see
:data:`VIDEO_MODES`. Nothing in the Dandiset is replaced unless ``overwrite``; a target that already holds
what the mode would put there (the same link, the same inode, a copy with the source's size and modification
time, a video moved there by an earlier run) is kept as it is.
"""

from __future__ import annotations

import errno as errnos
import os
import re
import shutil
from pathlib import Path

from .atomic import _HOST, OutputError, check_writable_folder

__all__ = [
    "VIDEO_MODES",
    "DEFAULT_VIDEO_MODE",
    "DANDI_VIDEO_EXTENSIONS",
    "DandisetVideoError",
    "media_folder",
    "video_file_name",
    "video_in_place",
    "check_video_placement",
    "place_videos",
]

VIDEO_MODES = {
    "symlink": "a symbolic link (absolute) to the video under its root; nothing is duplicated (the default)",
    "hardlink": "a hard link: the same file under a second name, on the same file system only",
    "copy": "a copy (with the source's modification time); the Dandiset then stands alone",
    "move": "the video itself, moved out of its root into the Dandiset",
}
DEFAULT_VIDEO_MODE = "symlink"

# dandi.consts.VIDEO_FILE_EXTENSIONS: dandi uploads a file as a video asset only with one of these suffixes
# (compared as written, so in lower case); any other is a "generic" file that `dandi upload` leaves out.
DANDI_VIDEO_EXTENSIONS = (".mp4", ".avi", ".wmv", ".mov", ".flv", ".mkv")


class DandisetVideoError(OutputError):
    """A video that cannot be put in the Dandiset; the message names the video, the target and the fix."""


def media_folder(nwb_path: str | os.PathLike) -> Path:
    """The folder of a session's videos: beside its NWB file, named as the file up to ``.nwb``."""
    nwb_path = Path(nwb_path)
    return nwb_path.parent / nwb_path.name.split(".nwb")[0]


def video_label(recording_name: str) -> str:
    """A recording's name in DANDI's label alphabet (letters, digits, dashes)."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", str(recording_name)).strip("-") or "video"


def video_file_name(recording_name: str, index: int, suffix: str) -> str:
    """``<recording>_external_file_<index><suffix in lower case>`` (dandi organize's ``_external_file_<n>``)."""
    return f"{video_label(recording_name)}_external_file_{index}{suffix.lower()}"


def _what(path: str) -> str:
    if os.path.islink(path):
        return f"a link to '{os.readlink(path)}'"
    if os.path.isdir(path):
        return "a folder"
    return "another file"


def video_in_place(source: str | os.PathLike, target: str | os.PathLike, mode: str) -> bool:
    """Whether ``target`` already holds what ``mode`` puts there for ``source`` (so it is kept)."""
    source, target = str(source), str(target)
    if os.path.abspath(source) == os.path.abspath(target):  # a moved video, found in the Dandiset
        return os.path.isfile(target)
    if not os.path.lexists(target):
        return False
    if mode == "symlink":
        return os.path.islink(target) and os.path.realpath(target) == os.path.realpath(source)
    if os.path.islink(target) or not os.path.isfile(target):
        return False
    if mode == "hardlink":
        return os.path.exists(source) and os.path.samefile(source, target)
    if mode == "copy":
        if not os.path.exists(source) or os.path.samefile(source, target):
            return False
        a, b = os.stat(source), os.stat(target)
        return (a.st_size, a.st_mtime_ns) == (b.st_size, b.st_mtime_ns)
    return False  # move: the source is still in its root


def _device(path) -> int:
    """The file system a path is on."""
    return os.stat(path).st_dev


def _nearest_existing(path: Path) -> Path:
    while not os.path.lexists(path) and path.parent != path:
        path = path.parent
    return path


def check_video_placement(pairs: list[tuple[Path, Path]], mode: str, *, overwrite: bool = False) -> None:
    """Before any work: every video can be put at its target with ``mode``.

    Refuses a target that holds something else (unless ``overwrite``), hard links across file systems,
    a move out of a folder that cannot be changed, and copies that do not fit on the Dandiset's disk.

    Raises
    ------
    DandisetVideoError
        Naming the video, the target and the fix (an ``OSError``).
    """
    if mode not in VIDEO_MODES:
        raise ValueError(f"Unknown video mode {mode!r}: choose one of {', '.join(VIDEO_MODES)}.")
    todo = [(s, t) for s, t in pairs if not video_in_place(s, t, mode)]
    for source, target in todo:
        if os.path.lexists(target) and not (mode == "move" and _same_file(source, target)) and not overwrite:
            raise DandisetVideoError(
                f"Cannot put the video '{source}' in the Dandiset: '{target}' already exists and is "
                f"{_what(str(target))}, not its {mode}. Rerun with --overwrite to replace it, or remove it.",
                errnos.EEXIST,
                str(target),
            )
    folders = sorted({t.parent for _, t in todo})
    for folder in folders:
        check_writable_folder(folder, what="Dandiset video folder")
    if mode == "hardlink":
        for source, target in todo:
            if _device(source) != _device(_nearest_existing(target.parent)):
                raise DandisetVideoError(
                    f"Cannot hard-link the video '{source}' into '{target.parent}': they are on different file "
                    f"systems (errno {errnos.EXDEV}, {os.strerror(errnos.EXDEV)}). Choose videos: symlink or "
                    "copy, or put the Dandiset on the videos' disk.",
                    errnos.EXDEV,
                    str(target),
                )
    if mode == "move":
        for source, _ in todo:
            if os.path.lexists(source) and not os.access(Path(source).parent, os.W_OK):
                raise DandisetVideoError(
                    f"Cannot move the video '{source}' into the Dandiset: its folder '{Path(source).parent}' cannot "
                    "be changed (no write permission). Choose videos: symlink or copy, or make the folder writable.",
                    errnos.EACCES,
                    str(source),
                )
    if mode == "copy" and todo:
        for folder in folders:
            mine = [(s, t) for s, t in todo if t.parent == folder]
            needed = sum(os.stat(s).st_size for s, _ in mine)
            free = shutil.disk_usage(_nearest_existing(folder)).free
            if needed > free:
                raise DandisetVideoError(
                    f"Cannot copy {len(mine)} video(s) ({needed / 2**20:.1f} MiB) into '{folder}': only "
                    f"{free / 2**20:.1f} MiB are free on its disk (errno {errnos.ENOSPC}). Free space, or choose "
                    "videos: symlink or hardlink.",
                    errnos.ENOSPC,
                    str(folder),
                )


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _partial(target: Path) -> Path:
    """A hidden temporary name beside the target (dandi skips names that start with a dot)."""
    return target.with_name(f".{target.name}.{_HOST}-{os.getpid()}.partial")


def _publish(temporary: Path, target: Path, overwrite: bool) -> None:
    """Give ``temporary`` (a file or a link) the target's name; without ``overwrite`` never replace one."""
    if overwrite:
        os.replace(temporary, target)
        return
    try:
        os.link(temporary, target, follow_symlinks=False)  # fails if the name exists: no check-then-write race
    except FileExistsError:
        raise DandisetVideoError(
            f"The video '{target}' appeared while it was being written; it was left as it is.",
            errnos.EEXIST,
            str(target),
        ) from None
    except OSError:  # file systems without hard links
        if os.path.lexists(target):
            raise DandisetVideoError(
                f"The video '{target}' appeared while it was being written; it was left as it is.",
                errnos.EEXIST,
                str(target),
            ) from None
        os.replace(temporary, target)
        return
    temporary.unlink()


def _place(source: Path, target: Path, mode: str, overwrite: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if mode == "move" and _same_file(source, target):  # hard-linked there by an earlier run: finish the move
        os.unlink(source)
        return
    if mode == "move":
        try:
            if overwrite:
                os.replace(source, target)
            else:
                os.link(source, target)  # never replaces a file that is there
                os.unlink(source)
            return
        except FileExistsError:
            raise DandisetVideoError(
                f"The video '{target}' appeared while '{source}' was being moved; it was left as it is.",
                errnos.EEXIST,
                str(target),
            ) from None
        except OSError as err:
            if err.errno not in (errnos.EXDEV, errnos.EPERM, errnos.ENOTSUP, errnos.EMLINK):
                raise
        # Another file system (or one without hard links): copy, publish, then remove the source.
    temporary = _partial(target)
    if os.path.lexists(temporary):
        os.unlink(temporary)
    try:
        if mode == "symlink":
            os.symlink(os.path.realpath(source), temporary)
        elif mode == "hardlink":
            os.link(source, temporary)
        else:  # copy, or a move across file systems
            shutil.copy2(source, temporary)
        _publish(temporary, target, overwrite)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise
    if mode == "move":
        os.unlink(source)


def place_videos(pairs: list[tuple[Path, Path]], mode: str, *, overwrite: bool = False) -> list[Path]:
    """Put each ``(source, target)`` video at its target with ``mode``; return the targets it changed.

    Targets already in place (:func:`video_in_place`) are kept. Each target appears whole or not at all (a
    link or copy is made under a hidden temporary name, then renamed).

    Raises
    ------
    DandisetVideoError
        As :func:`check_video_placement`, or naming the OS error of a link, copy or move that failed.
    """
    check_video_placement(pairs, mode, overwrite=overwrite)
    changed = []
    for source, target in pairs:
        if video_in_place(source, target, mode):
            continue
        try:
            _place(Path(source), Path(target), mode, overwrite)
        except DandisetVideoError:
            raise
        except OSError as err:
            reason = f"{os.strerror(err.errno)} (errno {err.errno})" if err.errno else " ".join(str(err).split())
            raise DandisetVideoError(
                f"Cannot {mode} the video '{source}' to '{target}': {reason}. Check that folder and its disk, "
                "or choose another videos mode (--videos).",
                err.errno,
                str(target),
            ) from None
        changed.append(Path(target))
    return changed
