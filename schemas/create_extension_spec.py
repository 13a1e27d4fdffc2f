"""Generate the ndx-facemap NWB extension (never edit the YAML by hand: run this script).

    python schemas/create_extension_spec.py [OUTPUT_DIR]

writes ``ndx-facemap.namespace.yaml`` and ``ndx-facemap.extensions.yaml`` beside this script, and copies
them into the ndx-facemap distribution (``ndx-facemap/src/ndx_facemap/spec/``), which ships them in its wheel.
Format 1.0.0: a ``FacemapTask`` contains everything its run made (its ``FacemapRun``, ``FacemapView`` per
camera view linking the video, ``FacemapRegions``, summary ``Images`` and every signal series), so a
reader goes from the task to each object by containment or link, never by a naming rule. The signal
series are subtypes of core types (``TimeSeries``, ``SpatialSeries``) that add a link to their region
row, so viewers that know the core types show them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pynwb.spec import (
    NWBAttributeSpec,
    NWBDatasetSpec,
    NWBGroupSpec,
    NWBLinkSpec,
    NWBNamespaceBuilder,
    export_spec,
)

NAME = "ndx-facemap"
VERSION = "1.0.0"
HERE = Path(__file__).resolve().parent
# The ndx-facemap distribution ships a copy of the spec inside its package; schemas/ stays the spec's home.
PACKAGE_SPEC = HERE.parent / "ndx-facemap" / "src" / "ndx_facemap" / "spec"
FILES = (f"{NAME}.namespace.yaml", f"{NAME}.extensions.yaml")


def _attr(name: str, dtype, doc: str, **kwargs) -> NWBAttributeSpec:
    return NWBAttributeSpec(name=name, dtype=dtype, doc=doc, **kwargs)


def _column(name: str, dtype, doc: str, **kwargs) -> NWBDatasetSpec:
    return NWBDatasetSpec(name=name, neurodata_type_inc="VectorData", dtype=dtype, doc=doc, **kwargs)


_REGION_DOC = "Row of the task's regions table (FacemapRegions) this series belongs to."
FRAME_ALIGNMENT = (
    "Facemap's frame alignment of frame differences: values 0..498 are the difference between frames t+1 and t, "
    "value 499 is 0 (Facemap's first chunk is shifted by one), and from 500 on value t is the difference between "
    "frames t and t-1; motion projections of frame 0 repeat frame 1."
)


def regions_table() -> NWBGroupSpec:
    start = "First {} pixel of the region in its camera view's frame, 0-based ({})."
    stop = "One past the last {} pixel of the region in its camera view's frame ({}; exclusive, as a Python slice)."
    bin_start = "First spatial bin ({}) of the region in the binned frame used for its SVDs; -1 where no SVD is made."
    bin_stop = "One past the last spatial bin ({}) used for its SVDs (exclusive); -1 where no SVD is made."
    columns = [
        _column("roi_number", "int32", "Index of the ROI in Facemap's 'rois' list; -1 for the full frame."),
        _column("roi_name", "text", "Name of the region."),
        _column("roi_type", "text", "One of 'full_frame', 'motion', 'pupil', 'blink', 'running'."),
        _column(
            "camera_view",
            "int32",
            "Index of the camera view the region lies in (Facemap 'ivid'; the task's FacemapView of that "
            "view_index); -1 for a full-frame region spanning several views.",
        ),
        _column("y_start", "int32", start.format("row", "y")),
        _column("y_stop", "int32", stop.format("row", "y")),
        _column("x_start", "int32", start.format("column", "x")),
        _column("x_stop", "int32", stop.format("column", "x")),
        _column("y_bin_start", "int32", bin_start.format("y")),
        _column("y_bin_stop", "int32", bin_stop.format("y")),
        _column("x_bin_start", "int32", bin_start.format("x")),
        _column("x_bin_stop", "int32", bin_stop.format("x")),
        _column(
            "saturation",
            "float32",
            "Saturation threshold (gray level, 0-255) of a pupil or blink ROI (Facemap 'saturation'); NaN otherwise.",
        ),
        _column(
            "pupil_sigma",
            "float32",
            "Standard deviations of the Gaussian fit of a pupil ROI (Facemap 'pupil_sigma'); NaN for other ROIs.",
        ),
        _column(
            "ellipse",
            "bool",
            "Ellipse mask of a pupil or blink ROI, row-major over its (y_stop - y_start, x_stop - x_start) "
            "rectangle: true where a pixel is used; empty for other regions.",
            quantity="?",
        ),
        NWBDatasetSpec(
            name="ellipse_index",
            neurodata_type_inc="VectorIndex",
            doc="Index of the ellipse column (one ragged entry per region).",
            quantity="?",
        ),
    ]
    return NWBGroupSpec(
        neurodata_type_def="FacemapRegions",
        neurodata_type_inc="DynamicTable",
        default_name="regions",
        doc="Regions Facemap processed: the full frame and each ROI, with pixel and binned ranges and masks.",
        datasets=columns,
    )


def view_group() -> NWBGroupSpec:
    return NWBGroupSpec(
        neurodata_type_def="FacemapView",
        neurodata_type_inc="NWBContainer",
        doc="One camera view a task processed (Facemap processes simultaneous views together): its frame "
        "size and its video.",
        attributes=[
            _attr("view_index", "int32", "Index of the view in the task (Facemap's 'ivid'; camera_view in regions)."),
            _attr("height", "int32", "Frame height of the view in pixels."),
            _attr("width", "int32", "Frame width of the view in pixels."),
        ],
        links=[NWBLinkSpec(name="video", target_type="ImageSeries", doc="The video of this view.", quantity="?")],
    )


def run_group() -> NWBGroupSpec:
    return NWBGroupSpec(
        neurodata_type_def="FacemapRun",
        neurodata_type_inc="NWBContainer",
        default_name="run",
        doc="One processing run of a Facemap task: when its results were made and by what.",
        attributes=[
            _attr("processing_time", "isodatetime", "When the results were made (ISO 8601).", required=False),
            _attr("engine", "text", "Engine that made the results: 'facemap' or 'facemap_nwb.native'."),
            _attr(
                "engine_version",
                "text",
                "Version of that engine. Absent when it is not recorded (Facemap's output files do not record it).",
                required=False,
            ),
            _attr(
                "source_file", "text", "Name of the Facemap output file the results were loaded from.", required=False
            ),
        ],
    )


ALIGNMENT_DOC = (
    "How frame differences are aligned to frame times, in words ({} only): either " + FRAME_ALIGNMENT + " Or, for "
    "results made without Facemap's quirks: value t is the difference between frames t and t-1; value 0 is 0."
)


def _signal_attributes(kinds: str) -> list[NWBAttributeSpec]:
    return [
        _attr("signal", "text", f"What the series holds: {kinds}."),
        _attr(
            "frame_alignment",
            "text",
            ALIGNMENT_DOC.format("motion energy"),
            required=False,
        ),
    ]


def _region_dataset() -> NWBDatasetSpec:
    return NWBDatasetSpec(name="region", neurodata_type_inc="DynamicTableRegion", doc=_REGION_DOC)


def time_series() -> NWBGroupSpec:
    return NWBGroupSpec(
        neurodata_type_def="FacemapTimeSeries",
        neurodata_type_inc="TimeSeries",
        doc="A signal Facemap extracted from one region: motion energy, pupil area and axes, blink or running.",
        attributes=_signal_attributes(
            "'motion_energy', 'pupil_area', 'pupil_area_smooth', 'pupil_axes_length', 'pupil_axes_direction', "
            "'blink' or 'running'"
        ),
        datasets=[_region_dataset()],
    )


def spatial_series() -> NWBGroupSpec:
    return NWBGroupSpec(
        neurodata_type_def="FacemapSpatialSeries",
        neurodata_type_inc="SpatialSeries",
        doc="The pupil centre Facemap fitted in a pupil region, in pixels of the camera view's frame.",
        attributes=[
            _attr("signal", "text", "What the series holds: 'pupil_center' or 'pupil_center_smooth'."),
            _attr(
                "roi_origin",
                "int32",
                "(y, x) of the pupil ROI's top-left pixel in the frame: Facemap's own values (relative to the "
                "ROI) are data - roi_origin.",
                dims=["yx"],
                shape=[2],
            ),
        ],
        datasets=[
            _region_dataset(),
            NWBDatasetSpec(
                name="roi_relative",
                dtype="float64",
                dims=["num_times", "yx"],
                shape=[None, 2],
                doc="Facemap's values relative to the ROI, as Facemap stored them; written only where "
                "data - roi_origin does not give them back bit for bit (float64 rounding of the shift).",
                quantity="?",
            ),
        ],
    )


def svd_series() -> NWBGroupSpec:
    return NWBGroupSpec(
        neurodata_type_def="FacemapSVDSeries",
        neurodata_type_inc="TimeSeries",
        doc="SVD of one region's motion (absolute frame differences) or raw movie: temporal projections over "
        "frames, singular values and spatial masks, split along the component axis.",
        attributes=[
            _attr("svd_type", "text", "'motion' or 'movie'."),
            _attr(
                "frame_alignment",
                "text",
                ALIGNMENT_DOC.format("motion SVDs"),
                required=False,
            ),
        ],
        datasets=[
            NWBDatasetSpec(
                name="data",
                dtype="float32",
                dims=["num_times", "num_components"],
                shape=[None, None],
                doc="Projection of each frame on each spatial component (Facemap 'motSVD'/'movSVD').",
            ),
            NWBDatasetSpec(
                name="singular_values",
                dtype="float32",
                dims=["num_components"],
                shape=[None],
                doc="Singular value of each component, largest first.",
                attributes=[
                    _attr(
                        "source",
                        "text",
                        "Where the values come from: 'facemap' (as Facemap reported them), 'mask_norms' (norms of "
                        "Facemap's masks, which carry the singular values when the video fits one SVD chunk), "
                        "'projection_norms' (recomputed: norms of the projections over all frames), or 'computed' "
                        "(by the engine that made the results).",
                    )
                ],
            ),
            NWBDatasetSpec(
                name="masks",
                dtype="float32",
                dims=["num_components", "height", "width"],
                shape=[None, None, None],
                doc="Spatial mask of each component over the region's binned pixels (Facemap 'motMask_reshape' "
                "/ 'movMask_reshape' with the component axis first).",
                attributes=[
                    _attr(
                        "normalization",
                        "text",
                        "'unit' (each mask has norm 1) or 'singular_values' (each mask's norm is its singular "
                        "value, as Facemap stores masks of a video that fits one SVD chunk).",
                    )
                ],
            ),
            _region_dataset(),
        ],
        links=[
            NWBLinkSpec(
                name="source_video",
                target_type="ImageSeries",
                doc="The video the SVD was computed from (the first view for a multi-view full-frame SVD).",
                quantity="?",
            )
        ],
    )


def task_group() -> NWBGroupSpec:
    flag = "Whether {} was computed."
    return NWBGroupSpec(
        neurodata_type_def="FacemapTask",
        neurodata_type_inc="NWBDataInterface",
        default_name="FacemapTask",
        doc="A Facemap processing task (element-facemap's FacemapTask and FacemapProcessing) and everything it "
        "made: its parameters, run, views (with their videos), regions, summary images and every signal series.",
        attributes=[
            _attr("task_id", "text", "Identifier of the task."),
            _attr("task_mode", "text", "'load' (results of an earlier run) or 'trigger' (computed here)."),
            _attr("description", "text", "Description of the task.", required=False),
            _attr("motion_svd", "bool", flag.format("the SVD of motion (frame differences)")),
            _attr("movie_svd", "bool", flag.format("the SVD of the raw movie")),
            _attr("multivideo_svd", "bool", flag.format("the full-frame SVD over all views (fullSVD)")),
            _attr("spatial_bin", "int32", "Spatial bin size in pixels (Facemap 'sbin')."),
            _attr("n_components", "int32", "Number of SVD components asked for."),
            _attr(
                "parameters",
                "text",
                "The parameter set as it was used, as JSON (ROI ellipse masks are in the regions table).",
            ),
        ],
        groups=[
            NWBGroupSpec(neurodata_type_inc="FacemapRegions", name="regions", doc="The regions of the task."),
            NWBGroupSpec(
                neurodata_type_inc="FacemapRun", name="run", doc="The run that made the results.", quantity="?"
            ),
            NWBGroupSpec(
                neurodata_type_inc="Images",
                name="summary_images",
                doc="Average frame and average motion (Facemap 'avgframe_reshape' / 'avgmotion_reshape').",
                quantity="?",
            ),
            NWBGroupSpec(neurodata_type_inc="FacemapView", doc="The camera views of the task.", quantity="*"),
            NWBGroupSpec(
                neurodata_type_inc="FacemapTimeSeries",
                doc="Motion energy, pupil area and axes, blink and running traces.",
                quantity="*",
            ),
            NWBGroupSpec(neurodata_type_inc="FacemapSpatialSeries", doc="Pupil centres.", quantity="*"),
            NWBGroupSpec(neurodata_type_inc="FacemapSVDSeries", doc="Motion and movie SVDs.", quantity="*"),
        ],
    )


def main(output_dir: str | Path = HERE) -> None:
    builder = NWBNamespaceBuilder(
        doc="Facemap face-video analysis in NWB: a processing task with its run, views, regions, summary images and "
        "signal series (motion energy, motion/movie SVDs, pupil, blink, running).",
        name=NAME,
        version=VERSION,
        author=["facemap-nwb developers"],
        contact=["facemap-nwb@users.noreply.github.com"],
    )
    builder.include_namespace("core")
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    export_spec(
        builder,
        [regions_table(), view_group(), run_group(), time_series(), spatial_series(), svd_series(), task_group()],
        str(output_dir),
    )
    if Path(output_dir).resolve() == HERE and PACKAGE_SPEC.is_dir():  # keep the distribution's copy in step
        for name in FILES:
            shutil.copyfile(HERE / name, PACKAGE_SPEC / name)


if __name__ == "__main__":
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 else HERE)
