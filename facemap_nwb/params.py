"""Facemap processing parameters: a typed, validated set with ROI specs, JSON/YAML in and out, a stable hash.

ROIs are rectangles in one camera view's pixel grid: ``x``, ``y`` (top-left pixel), ``width`` and
``height``, so the ROI covers rows ``y .. y + height - 1`` and columns ``x .. x + width - 1`` (Facemap's
``yrange`` / ``xrange``). Pupil and blink ROIs use an ellipse mask inside the rectangle; when none is
given it is the ellipse inscribed in the rectangle (pixel centres within it), as Facemap's GUI draws.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

__all__ = ["ROI", "FacemapParameters", "ROI_TYPES", "FACEMAP_RIND"]

ROI_TYPES = ("motion", "pupil", "blink", "running")
# Facemap's numeric ROI kinds ('rind').
FACEMAP_RIND = {"pupil": 0, "motion": 1, "blink": 2, "running": 3}
_RIND_TO_TYPE = {v: k for k, v in FACEMAP_RIND.items()}
_FACEMAP_RTYPE = {"pupil": "Pupil", "motion": "motion SVD", "blink": "Blink", "running": "Running"}


def inscribed_ellipse(height: int, width: int) -> np.ndarray:
    """Boolean mask of the pixels whose centres lie in the ellipse inscribed in a height x width box."""
    yy, xx = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    return ((yy + 0.5 - height / 2) / (height / 2)) ** 2 + ((xx + 0.5 - width / 2) / (width / 2)) ** 2 <= 1


def _whole(value, what: str) -> int:
    """``value`` as an int when it is a whole number (not a bool, NaN, infinity or text), else ValueError."""
    whole = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not whole and isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        whole = True
    if not whole:
        raise ValueError(f"{what} must be a whole number, not {value!r}.")
    return int(value)


def _encode_mask(mask: np.ndarray) -> dict:
    mask = np.asarray(mask, dtype=bool)
    return {"shape": list(mask.shape), "packed_bits": base64.b64encode(np.packbits(mask.ravel())).decode("ascii")}


def _decode_mask(value) -> np.ndarray:
    if isinstance(value, dict):
        shape = tuple(int(n) for n in value["shape"])
        try:
            bits = np.frombuffer(base64.b64decode(value["packed_bits"], validate=True), dtype=np.uint8)
        except (binascii.Error, ValueError, TypeError):
            raise ValueError(
                "its ellipse's packed_bits is not base64 text; write the mask as lists of true/false"
            ) from None
        needed = int(np.prod(shape))
        if bits.size * 8 < needed or bits.size > (needed + 7) // 8:
            raise ValueError(
                f"its ellipse's packed_bits hold {bits.size * 8} bits, but a {shape[0]} x {shape[1]} mask needs "
                f"{needed} (numpy.packbits of the mask); write the mask as lists of true/false"
            )
        return np.unpackbits(bits)[:needed].astype(bool).reshape(shape)
    return np.asarray(value, dtype=bool)


@dataclass(frozen=True)
class ROI:
    """One region of interest, without a GUI.

    Parameters
    ----------
    type : {"motion", "pupil", "blink", "running"}
    x, y : int
        Column and row of the top-left pixel, in the view's frame.
    width, height : int
        Size in pixels.
    video : int
        Index of the simultaneous camera view (Facemap's ``ivid``).
    name : str, optional
        Defaults to ``<type><n>`` (``motion0``, ``pupil0``, ...).
    saturation : float
        Gray-level threshold for pupil and blink ROIs (Facemap's saturation slider, 0-255).
    pupil_sigma : float
        Standard deviations of the pupil's Gaussian fit (Facemap's default 2).
    ellipse : numpy.ndarray, optional
        Boolean (height, width) mask for pupil and blink ROIs; the inscribed ellipse when omitted.
    """

    type: str
    x: int
    y: int
    width: int
    height: int
    video: int = 0
    name: str = ""
    saturation: float = 0.0
    pupil_sigma: float = 2.0
    ellipse: np.ndarray | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.type not in ROI_TYPES:
            raise ValueError(f"ROI type {self.type!r} is not one of {', '.join(ROI_TYPES)}.")
        for key in ("x", "y", "width", "height", "video"):
            object.__setattr__(self, key, _whole(getattr(self, key), f"ROI '{self.name or self.type}': {key}"))
        if not isinstance(self.name, str):
            raise ValueError(f"ROI name must be text, not {self.name!r}; quote it in YAML (name: '{self.name}').")
        for key in ("saturation", "pupil_sigma"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"ROI '{self.name or self.type}': {key} must be a number, not {value!r}.")
            if not math.isfinite(value):
                raise ValueError(f"ROI '{self.name or self.type}': {key} must be a finite number, not {value!r}.")
        if self.width < 1 or self.height < 1:
            raise ValueError(
                f"ROI '{self.name or self.type}' is empty ({self.width}x{self.height} pixels); "
                "give width and height >= 1."
            )
        if self.x < 0 or self.y < 0 or self.video < 0:
            raise ValueError(
                f"ROI '{self.name or self.type}' has a negative x, y or video ({self.x}, {self.y}, {self.video})."
            )
        if not 0 <= float(self.saturation) <= 255:
            raise ValueError(f"ROI '{self.name or self.type}': saturation {self.saturation} is outside 0..255.")
        if float(self.pupil_sigma) <= 0:
            raise ValueError(f"ROI '{self.name or self.type}': pupil_sigma must be > 0, not {self.pupil_sigma}.")
        object.__setattr__(self, "saturation", float(self.saturation))
        object.__setattr__(self, "pupil_sigma", float(self.pupil_sigma))
        if self.ellipse is not None:
            try:
                mask = _decode_mask(self.ellipse)
            except ValueError as err:
                raise ValueError(f"ROI '{self.name or self.type}': {err}.") from None
            if mask.shape != (self.height, self.width):
                raise ValueError(
                    f"ROI '{self.name or self.type}': ellipse mask is {mask.shape}, expected (height, width) = "
                    f"({self.height}, {self.width})."
                )
            object.__setattr__(self, "ellipse", mask)

    @property
    def mask(self) -> np.ndarray:
        """The ellipse mask in use (the inscribed ellipse when none was given)."""
        return self.ellipse if self.ellipse is not None else inscribed_ellipse(self.height, self.width)

    def check_inside(self, height: int, width: int) -> None:
        """Raise ValueError when the ROI does not lie inside a height x width frame."""
        if self.x + self.width > width or self.y + self.height > height:
            raise ValueError(
                f"ROI '{self.name or self.type}' (x={self.x}, y={self.y}, {self.width}x{self.height}) reaches outside "
                f"the {width}x{height} frame of video {self.video}; move or shrink it."
            )

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "ellipse"}
        if self.ellipse is not None:
            out["ellipse"] = _encode_mask(self.ellipse)
        return out

    def to_facemap(self, index: int) -> dict:
        """Facemap's ROI dict (as its GUI saves it in ``proc['rois']``)."""
        return {
            "rind": FACEMAP_RIND[self.type],
            "rtype": _FACEMAP_RTYPE[self.type],
            "iROI": index,
            "ivid": self.video,
            "color": (255.0, 0.0, 0.0),
            "yrange": np.arange(self.y, self.y + self.height, dtype=np.int32),
            "xrange": np.arange(self.x, self.x + self.width, dtype=np.int32),
            "saturation": self.saturation,
            "pupil_sigma": self.pupil_sigma,
            "ellipse": self.mask.copy(),
        }

    @classmethod
    def from_facemap(cls, roi: dict, *, name: str = "") -> ROI:
        """From one of Facemap's ROI dicts; its pixel ranges must be contiguous."""
        kind = _RIND_TO_TYPE.get(int(roi["rind"]))
        if kind is None:
            raise ValueError(f"Facemap ROI has unknown kind rind={roi['rind']!r}; expected 0 to 3.")
        yrange, xrange = np.asarray(roi["yrange"]).ravel(), np.asarray(roi["xrange"]).ravel()
        for label, values in (("yrange", yrange), ("xrange", xrange)):
            if values.size == 0 or np.any(np.diff(values) != 1):
                raise ValueError(f"Facemap ROI '{name}' has a {label} that is not a contiguous pixel range.")
        ellipse = roi.get("ellipse")
        ellipse = None if ellipse is None else np.asarray(ellipse, dtype=bool)
        if ellipse is not None and ellipse.shape != (yrange.size, xrange.size):
            ellipse = None
        return cls(
            type=kind,
            x=int(xrange[0]),
            y=int(yrange[0]),
            width=int(xrange.size),
            height=int(yrange.size),
            video=int(roi.get("ivid", 0)),
            name=name,
            saturation=float(roi.get("saturation", 0.0)),
            pupil_sigma=float(roi.get("pupil_sigma", 2.0)),
            ellipse=ellipse,
        )


_RESERVED_NAMES = {"full_frame"}


def _check_name(name: str) -> None:
    if name in _RESERVED_NAMES or any(c in name for c in "/:"):
        raise ValueError(
            f"ROI name {name!r} cannot be used: names become NWB object names, so they may not contain '/' "
            "or ':' and 'full_frame' is taken by the full-frame region. Rename the ROI."
        )


def _default_names(rois: list[ROI]) -> tuple[ROI, ...]:
    counts: dict[str, int] = {}
    named = []
    for roi in rois:
        n = counts.get(roi.type, 0)
        counts[roi.type] = n + 1
        named.append(roi if roi.name else replace(roi, name=f"{roi.type}{n}"))
    names = [r.name for r in named]
    for name in names:
        _check_name(name)
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"ROI names must be unique; {duplicates} used more than once.")
    return tuple(named)


@dataclass(frozen=True)
class FacemapParameters:
    """Everything that decides Facemap's results for a given video.

    Parameters
    ----------
    spatial_bin : int
        Bin size in pixels for motion energy and SVDs (Facemap ``sbin``).
    motion_svd, movie_svd : bool
        Compute the SVD of motion (frame differences) and of the raw movie.
    multivideo_svd : bool
        Compute the full-frame SVD over all views (Facemap ``fullSVD``); ROI SVDs are made either way.
    n_components : int
        Number of SVD components (Facemap uses 500).
    rois : tuple of ROI
    """

    spatial_bin: int = 1
    motion_svd: bool = True
    movie_svd: bool = False
    multivideo_svd: bool = True
    n_components: int = 500
    rois: tuple[ROI, ...] = ()

    def __post_init__(self):
        for key in ("spatial_bin", "n_components"):
            value = _whole(getattr(self, key), key)
            if value < 1:
                raise ValueError(f"{key} must be a whole number >= 1, not {value!r}.")
            object.__setattr__(self, key, value)
        for key in ("motion_svd", "movie_svd", "multivideo_svd"):
            if not isinstance(getattr(self, key), (bool, np.bool_)):
                raise ValueError(f"{key} must be true or false, not {getattr(self, key)!r}.")
            object.__setattr__(self, key, bool(getattr(self, key)))
        if not isinstance(self.rois, (list, tuple)):
            raise ValueError(f"rois must be a list of ROIs, not {type(self.rois).__name__}.")
        rois = [r if isinstance(r, ROI) else ROI(**r) for r in self.rois]
        object.__setattr__(self, "rois", _default_names(rois))

    def to_dict(self) -> dict:
        out = {
            k: getattr(self, k) for k in ("spatial_bin", "motion_svd", "movie_svd", "multivideo_svd", "n_components")
        }
        out["rois"] = [r.to_dict() for r in self.rois]
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def hash(self) -> str:
        """A stable SHA-256 of the parameters (for memoization)."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    @classmethod
    def from_dict(cls, values, *, source: str = "Parameters") -> FacemapParameters:
        """From a mapping (a parameter file's content), checked against the declared schema
        (:class:`facemap_nwb.models.ParametersModel`); problems raise
        :class:`~facemap_nwb.inputs.InputError` starting with ``source``, naming the key, the value and the fix."""
        from .inputs import InputError, validate
        from .models import ParametersModel

        data = validate(ParametersModel, values, source=source).model_dump(exclude_unset=True)
        try:
            rois = tuple(ROI(**roi) for roi in data.pop("rois", []))
            return cls(rois=rois, **data)
        except ValueError as err:
            raise InputError(f"{source}: {err}") from None

    @classmethod
    def from_json(cls, text: str) -> FacemapParameters:
        return cls.from_dict(json.loads(text))

    @classmethod
    def from_file(cls, path: str | Path) -> FacemapParameters:
        """From a YAML or JSON file (bounded and strict: see :mod:`facemap_nwb.inputs`)."""
        from .inputs import read_user_file

        values = read_user_file(path, "parameter file")
        return cls.from_dict({} if values is None else values, source=f"Parameter file '{path}'")

    def to_file(self, path: str | Path) -> Path:
        """Write YAML (``.yaml``/``.yml``) or JSON (anything else)."""
        path = Path(path)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False), encoding="utf-8")
        else:
            path.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        return path

    def check_views(self, view_shapes) -> None:
        """Raise ValueError when the parameters cannot apply to views of these ``(height, width)`` shapes:
        a spatial bin larger than a frame, an ROI on a camera that is not there or reaching outside its frame."""
        for index, (height, width) in enumerate(view_shapes):
            if self.spatial_bin > min(height, width):
                raise ValueError(
                    f"spatial_bin {self.spatial_bin} is larger than video {index} ({width}x{height}); "
                    "choose a spatial bin no larger than the frame."
                )
        for roi in self.rois:
            if roi.video >= len(view_shapes):
                raise ValueError(
                    f"ROI '{roi.name}' is on video {roi.video} but only {len(view_shapes)} video(s) were given; "
                    "fix its video index."
                )
            roi.check_inside(*view_shapes[roi.video])

    def facemap_rois(self) -> list[dict] | None:
        """The ROIs as Facemap's ``proc['rois']`` list (None when there are none)."""
        return [roi.to_facemap(i) for i, roi in enumerate(self.rois)] or None
