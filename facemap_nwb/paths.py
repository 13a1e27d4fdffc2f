"""Root folders and the processed-data folder (element-facemap's ``get_facemap_root_data_dir``,
``get_facemap_processed_data_dir`` and the output-folder rule of its ``FacemapTask``).

Videos are named relative to one of the root folders, so a session keeps working when the data
moves to another disk or machine: only the roots change. A relative name is found by trying
each root in order; an absolute path is turned back into ``(root, relative path)`` by finding
the root that holds it. Processed results go to
``<processed>/<video folder relative to its root>/facemap_<task id>`` unless a folder is given.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DataPaths", "OutsideRootsError"]


class OutsideRootsError(ValueError):
    """A path that resolves (after ``..`` and symbolic links) outside every root folder."""


def _as_paths(value) -> tuple[Path, ...]:
    if value is None:
        return ()
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    return tuple(Path(v).expanduser().resolve() for v in value)


@dataclass(frozen=True)
class DataPaths:
    """Where raw videos are found and where processed results go.

    Parameters
    ----------
    roots : path or sequence of paths
        Root folders of the raw data, searched in order.
    processed : path, optional
        Root folder of processed results; defaults to the first root.

    Examples
    --------
    >>> paths = DataPaths(roots=["/data/raw"], processed="/data/processed")  # doctest: +SKIP
    >>> paths.find("mouse1/session1/face.mp4")  # doctest: +SKIP
    PosixPath('/data/raw/mouse1/session1/face.mp4')
    >>> paths.output_dir("/data/raw/mouse1/session1/face.mp4", task_id=0)  # doctest: +SKIP
    PosixPath('/data/processed/mouse1/session1/facemap_0')
    """

    roots: tuple[Path, ...] = field(default_factory=tuple)
    processed: Path | None = None

    def __init__(self, roots=(), processed=None):
        object.__setattr__(self, "roots", _as_paths(roots))
        object.__setattr__(self, "processed", _as_paths(processed)[0] if processed is not None else None)

    @classmethod
    def from_dict(cls, config: dict) -> DataPaths:
        """Build from ``{"roots": [...], "processed": ...}`` (the ``paths`` part of a session file)."""
        unknown = set(config) - {"roots", "processed"}
        if unknown:
            raise ValueError(
                f"Unknown keys {sorted(unknown)} in the paths configuration; allowed: 'roots', 'processed'."
            )
        return cls(roots=config.get("roots", ()), processed=config.get("processed"))

    def check(self) -> None:
        """Raise FileNotFoundError naming the first root or processed folder that doesn't exist."""
        for root in self.roots:
            if not root.is_dir():
                raise FileNotFoundError(f"Root folder '{root}' does not exist. Fix the path or create the folder.")

    @property
    def processed_root(self) -> Path:
        if self.processed is not None:
            return self.processed
        if not self.roots:
            raise ValueError("No root folders and no processed folder are configured; give at least one root.")
        return self.roots[0]

    def find(self, relative: str | os.PathLike) -> Path:
        """The full path of a file named relative to a root: the first root that holds it.

        The name is resolved (``..`` and symbolic links followed) and must end inside one of the roots:
        ``../elsewhere/x.mp4``, an absolute path outside the roots, or a link inside a root that leads out of
        every root is refused with :class:`OutsideRootsError`, so that a spec can only name data under its roots.
        """
        relative = Path(relative)
        candidates = [relative] if relative.is_absolute() else [root / relative for root in self.roots]
        for candidate in candidates:
            if not candidate.exists():
                continue
            resolved = candidate.resolve()
            if not any(resolved.is_relative_to(root) for root in self.roots):
                where = f" (it leads to '{resolved}')" if resolved != candidate else ""
                raise OutsideRootsError(
                    f"'{relative}' is outside every root folder{where}; roots: "
                    f"{', '.join(repr(str(r)) for r in self.roots) or 'none'}. Name a file under a root, or add its "
                    "folder to the roots."
                )
            return resolved
        if relative.is_absolute():
            raise FileNotFoundError(f"'{relative}' does not exist.")
        searched = ", ".join(f"'{r}'" for r in self.roots) or "no roots configured"
        raise FileNotFoundError(
            f"'{relative}' is not under any root folder (searched {searched}). "
            "Add the folder that holds it to the roots."
        )

    def split(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """``(root, path relative to it)`` for a full path; the first root that contains it wins."""
        path = Path(path).expanduser().resolve()
        for root in self.roots:
            if path.is_relative_to(root):
                return root, path.relative_to(root)
        searched = ", ".join(f"'{r}'" for r in self.roots) or "no roots configured"
        raise ValueError(f"'{path}' is under no root folder (roots: {searched}). Add its root folder to the roots.")

    def relative(self, path: str | os.PathLike) -> Path:
        """The path relative to the root that holds it."""
        return self.split(path)[1]

    def output_dir(self, video: str | os.PathLike, task_id: int | str) -> Path:
        """``<processed>/<video folder relative to its root>/facemap_<task id>``.

        ``video`` may be relative to a root or a full path under one.
        """
        full = self.find(video) if not Path(video).is_absolute() else Path(video).resolve()
        return self.processed_root / self.relative(full).parent / f"facemap_{task_id}"
