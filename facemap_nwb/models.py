"""The declared schemas of every file a user writes: parameters and ROIs, metadata, session specs.

These pydantic models are the one validation layer: files are read by :func:`facemap_nwb.inputs.read_user_file`
and checked here before any work starts, and the JSON schema that ``facemap-nwb schema`` prints is made from
:class:`SessionModel`. Each field's description is what a message names as the fix when a value is wrong.

Types are strict: ``width: 20.0`` or ``width: "20"`` is refused rather than guessed, and floats must be
finite (``.inf`` and ``.nan`` are refused everywhere).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

__all__ = [
    "ROIModel",
    "ParametersModel",
    "MetadataModel",
    "SessionModel",
    "session_json_schema",
    "NAME_PATTERN",
]

# Names that become NWB object names (or parts of them) may not hold '/' (a path separator in HDF5) or ':'.
NAME_PATTERN = r"^[^/:]+$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _iso_time(value):
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("not an ISO 8601 time; write e.g. 2024-05-06T12:30:00+01:00") from None
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("the time has no time zone; add one, e.g. +01:00 or Z")
    return value


IsoTime = Annotated[
    datetime,
    BeforeValidator(_iso_time),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Text = Annotated[StrictStr, Field(min_length=1, max_length=10_000)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)]
Whole = Annotated[StrictInt, Field(ge=0, le=2**31 - 1)]


class PackedMask(_Strict):
    shape: list[Annotated[StrictInt, Field(ge=1, le=65_535)]] = Field(
        min_length=2, max_length=2, description="[height, width] of the mask"
    )
    packed_bits: StrictStr = Field(max_length=2**26, description="numpy.packbits of the mask, base64 text")


class ROIModel(_Strict):
    """One region of interest; the ROI covers rows y .. y + height - 1 and columns x .. x + width - 1."""

    type: Literal["motion", "pupil", "blink", "running"] = Field(description="one of motion, pupil, blink, running")
    x: Whole = Field(description="column of the ROI's top-left pixel, a whole number >= 0")
    y: Whole = Field(description="row of the ROI's top-left pixel, a whole number >= 0")
    width: Annotated[StrictInt, Field(ge=1, le=65_535)] = Field(description="width in pixels, a whole number >= 1")
    height: Annotated[StrictInt, Field(ge=1, le=65_535)] = Field(description="height in pixels, a whole number >= 1")
    video: Annotated[StrictInt, Field(ge=0, le=255)] = Field(
        0, description="index of the simultaneous camera view, a whole number >= 0 (default 0)"
    )
    name: Annotated[StrictStr, Field(max_length=200, pattern=r"^[^/:]*$")] = Field(
        "", description="text without '/' or ':' (quote numbers: name: '1'); default <type><n>"
    )
    saturation: Annotated[float, Field(ge=0, le=255)] = Field(
        0.0, description="gray-level threshold of pupil and blink ROIs, 0 to 255"
    )
    pupil_sigma: Annotated[float, Field(gt=0, le=1000)] = Field(
        2.0, description="standard deviations of the pupil fit, a number > 0 (default 2)"
    )
    ellipse: list[list[StrictBool]] | PackedMask | None = Field(
        None, description="a height x width list of true/false rows, or {shape, packed_bits}"
    )

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value == "full_frame":
            raise ValueError("'full_frame' is the name of the full-frame region; choose another ROI name")
        return value

    @model_validator(mode="after")
    def _ellipse_shape(self):
        mask = self.ellipse
        if isinstance(mask, list):
            widths = {len(row) for row in mask}
            if len(mask) != self.height or widths != {self.width}:
                raise ValueError(
                    f"the ellipse mask must have {self.height} rows of {self.width} values (the ROI's height x width)"
                )
        elif isinstance(mask, PackedMask) and mask.shape != [self.height, self.width]:
            raise ValueError(
                f"the ellipse mask's shape {mask.shape} is not [height, width] = [{self.height}, {self.width}]"
            )
        return self


class ParametersModel(_Strict):
    """Facemap processing parameters: a mapping of spatial_bin, motion_svd, movie_svd, n_components, rois."""

    spatial_bin: Annotated[StrictInt, Field(ge=1, le=4096)] = Field(
        1, description="bin size in pixels (Facemap's sbin), a whole number >= 1"
    )
    motion_svd: StrictBool = Field(True, description="true or false: compute the SVD of motion")
    movie_svd: StrictBool = Field(False, description="true or false: compute the SVD of the movie")
    multivideo_svd: StrictBool = Field(True, description="true or false: the full-frame SVD (Facemap's fullSVD)")
    n_components: Annotated[StrictInt, Field(ge=1, le=100_000)] = Field(
        500, description="number of SVD components, a whole number >= 1 (Facemap's 500)"
    )
    rois: list[ROIModel] = Field(default_factory=list, max_length=1000, description="a list of ROI mappings")


# ------------------------------------------------------------------------------------------------ metadata


class NWBFileModel(_Strict):
    """The ``NWBFile`` section of a neuroconv-style metadata file."""

    session_description: Text | None = Field(None, description="text")
    identifier: Text | None = Field(None, description="text, unique for the file")
    session_start_time: IsoTime | None = Field(None, description="an ISO 8601 time with a time zone")
    timestamps_reference_time: IsoTime | None = Field(None, description="an ISO 8601 time with a time zone")
    session_id: Text | None = Field(None, description="text")
    experimenter: list[Text] | Text | None = Field(None, description="a list of names, 'Last, First'")
    experiment_description: Text | None = Field(None, description="text")
    institution: Text | None = Field(None, description="text")
    lab: Text | None = Field(None, description="text")
    keywords: list[Text] | None = Field(None, max_length=1000, description="a list of words")
    notes: Text | None = Field(None, description="text")
    pharmacology: Text | None = Field(None, description="text")
    protocol: Text | None = Field(None, description="text")
    related_publications: list[Text] | Text | None = Field(None, description="a list of DOIs or references")
    slices: Text | None = Field(None, description="text")
    source_script: Text | None = Field(None, description="text")
    data_collection: Text | None = Field(None, description="text")
    surgery: Text | None = Field(None, description="text")
    virus: Text | None = Field(None, description="text")
    stimulus_notes: Text | None = Field(None, description="text")


Age = Annotated[StrictStr, Field(pattern=r"^P[0-9YMWDTHS.,/P]*[0-9][YMWDHS]$")]


class SubjectModel(_Strict):
    """The subject: the ``Subject`` section of a metadata file, or ``subject`` in a session spec."""

    subject_id: Text = Field(description="text")
    species: Text = Field(description="Latin binomial, e.g. Mus musculus")
    sex: Literal["M", "F", "U", "O"] = Field(description="one of M, F, U, O")
    age: Age | None = Field(None, description="ISO 8601 duration text, e.g. P60D (quote it in YAML)")
    age__reference: Literal["birth", "gestational"] | None = Field(None, description="birth or gestational")
    date_of_birth: IsoTime | None = Field(None, description="an ISO 8601 time with a time zone")
    description: StrictStr | None = Field(None, description="text")
    strain: StrictStr | None = Field(None, description="text")
    genotype: StrictStr | None = Field(None, description="text")
    weight: Text | None = Field(None, description="text with a unit, e.g. '20 g'")


class _MetadataSubject(SubjectModel):
    subject_id: Text | None = Field(None, description="text")
    species: Text | None = Field(None, description="Latin binomial, e.g. Mus musculus")
    sex: Literal["M", "F", "U", "O"] | None = Field(None, description="one of M, F, U, O")


class MetadataModel(_Strict):
    """A neuroconv-style metadata file: ``NWBFile`` and ``Subject`` sections, both optional."""

    NWBFile: NWBFileModel | None = Field(None, description="a mapping of NWBFile fields")
    Subject: _MetadataSubject | None = Field(None, description="a mapping of Subject fields")


# ------------------------------------------------------------------------------------------- session specs


class SessionInfoModel(_Strict):
    session_id: Text = Field(description="text")
    session_start_time: IsoTime = Field(
        description="an ISO 8601 time with a time zone, e.g. 2024-05-06T12:30:00Z; the command line's "
        "--session-start gives or overrides it"
    )
    session_description: Text = Field(description="text")
    lab: Text = Field(description="text")
    institution: Text = Field(description="text")
    experimenter: list[Text] | None = Field(None, description="a list of names, 'Last, First'")
    experiment_description: StrictStr | None = Field(None, description="text")
    keywords: list[Text] | None = Field(None, max_length=1000, description="a list of words")


class PathsModel(_Strict):
    roots: list[Text] = Field(min_length=1, description="a list of root folders of the raw data")
    processed: Text | None = Field(None, description="the folder of processed results (default: the first root)")
    output: Text | None = Field(None, description="the Dandiset folder (default: <processed>/nwb)")


class RecordingModel(_Strict):
    name: Name = Field(description="the camera's ImageSeries name: text without '/' or ':'")
    device: Name | None = Field(None, description="the camera's name: text without '/' or ':'")
    files: list[Text] = Field(min_length=1, max_length=100_000, description="video files relative to a root")


class TaskModel(_Strict):
    task_id: Annotated[StrictStr, Field(min_length=1, max_length=200, pattern=NAME_PATTERN)] | StrictInt = Field(
        description="text without '/' or ':', or a number"
    )
    mode: Literal["load", "trigger"] = Field(description="load or trigger")
    engine: Literal["native", "facemap"] = Field("native", description="native or facemap")
    parameters: ParametersModel | None = Field(None, description="a mapping of Facemap parameters")
    parameter_file: Text | None = Field(None, description="a parameter file, relative to the spec's folder")
    roi_file: Text | None = Field(None, description="an ROI file, relative to the spec's folder")
    proc_file: Text | None = Field(
        None, description="Facemap's _proc.npy or _proc.mat (Python or MATLAB Facemap), relative to a root"
    )
    pose_file: Text | None = Field(
        None,
        description="Facemap pose keypoints (<video>_FacemapPose.h5, its _metadata.pkl beside it) of one of the "
        "task's cameras, relative to a root; written as ndx-pose PoseEstimation beside the task's results",
    )
    motion_svd: StrictBool | None = Field(None, description="true or false")
    movie_svd: StrictBool | None = Field(None, description="true or false")
    description: StrictStr | None = Field(None, description="text")
    recordings: list[Name] | None = Field(None, min_length=1, description="names of the task's cameras")


class SessionModel(_Strict):
    """A facemap-nwb session spec (see :mod:`facemap_nwb.session`)."""

    model_config = ConfigDict(title="facemap-nwb session")

    subject: SubjectModel = Field(description="a mapping of Subject fields")
    session: SessionInfoModel = Field(description="a mapping of session fields")
    paths: PathsModel = Field(description="a mapping with roots (and processed, output)")
    recordings: list[RecordingModel] = Field(min_length=1, description="a list of cameras")
    tasks: list[TaskModel] = Field(min_length=1, description="a list of Facemap tasks")
    videos: Literal["symlink", "hardlink", "copy", "move"] = Field(
        "symlink",
        description="how the videos get into the Dandiset beside the NWB file: symlink (default: a link, nothing "
        "duplicated), hardlink (same file system only), copy, or move (out of the root); --videos overrides it",
    )

    @field_validator("subject")
    @classmethod
    def _age_or_birth(cls, subject: SubjectModel) -> SubjectModel:
        if subject.age is None and subject.date_of_birth is None:
            raise ValueError("give the subject's age (e.g. P60D) or date_of_birth (DANDI needs one)")
        return subject


def session_json_schema() -> dict:
    """The JSON schema (draft 2020-12) of session specs, made from :class:`SessionModel`."""
    schema = SessionModel.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
