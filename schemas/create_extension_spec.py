"""Generate the ndx-facemap NWB extension (never edit the YAML by hand: run this script).

    python schemas/create_extension_spec.py [OUTPUT_DIR]

writes ``ndx-facemap.namespace.yaml`` and ``ndx-facemap.extensions.yaml`` beside this script, and copies
them into the ndx-facemap distribution (``ndx-facemap/src/ndx_facemap/spec/``), which ships them in its wheel.
Core NWB types are used wherever one fits (motion energy, pupil, blink and running are core
``TimeSeries`` in ``BehavioralTimeSeries`` / ``PupilTracking`` / ``EyeTracking``; average frames are
``GrayscaleImage`` in ``Images``); the extension adds only what has no core type: the processing
task with its run, the regions table, and the SVD series.
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
    NWBRefSpec,
    export_spec,
)

NAME = "ndx-facemap"
VERSION = "0.1.0"
HERE = Path(__file__).resolve().parent
# The ndx-facemap distribution ships a copy of the spec inside its package; schemas/ stays the spec's home.
PACKAGE_SPEC = HERE.parent / "ndx-facemap" / "src" / "ndx_facemap" / "spec"
FILES = (f"{NAME}.namespace.yaml", f"{NAME}.extensions.yaml")


def _attr(name: str, dtype, doc: str, **kwargs) -> NWBAttributeSpec:
    return NWBAttributeSpec(name=name, dtype=dtype, doc=doc, **kwargs)


def _column(name: str, dtype, doc: str, **kwargs) -> NWBDatasetSpec:
    return NWBDatasetSpec(name=name, neurodata_type_inc="VectorData", dtype=dtype, doc=doc, **kwargs)


def regions_table() -> NWBGroupSpec:
    int_range = "{} pixel of the region in {}: first row/column (start) and one past the last (stop)."
    columns = [
        _column("roi_number", "int32", "Index of the ROI in Facemap's 'rois' list; -1 for the full frame."),
        _column("roi_name", "text", "Name of the region."),
        _column("roi_type", "text", "One of 'full_frame', 'motion', 'pupil', 'blink', 'running'."),
        _column(
            "camera_view",
            "int32",
            "Index of the simultaneous camera view the region lies in (Facemap 'ivid'); -1 for a full-frame region "
            "spanning several views.",
        ),
        _column(
            "source_video",
            NWBRefSpec(target_type="ImageSeries", reftype="object"),
            "The ImageSeries of the video the region lies in.",
            quantity="?",
        ),
        _column("y_start", "int32", int_range.format("First", "the video frame (y)")),
        _column("y_stop", "int32", int_range.format("Last", "the video frame (y)")),
        _column("x_start", "int32", int_range.format("First", "the video frame (x)")),
        _column("x_stop", "int32", int_range.format("Last", "the video frame (x)")),
        _column("y_bin_start", "int32", "First spatial bin (y) used for SVDs; -1 where no SVD is made."),
        _column("y_bin_stop", "int32", "One past the last spatial bin (y) used for SVDs; -1 where no SVD is made."),
        _column("x_bin_start", "int32", "First spatial bin (x) used for SVDs; -1 where no SVD is made."),
        _column("x_bin_stop", "int32", "One past the last spatial bin (x) used for SVDs; -1 where no SVD is made."),
        _column("saturation", "float32", "Saturation threshold (gray level) of pupil and blink ROIs; NaN otherwise."),
        _column("pupil_sigma", "float32", "Standard deviations of the pupil Gaussian fit; NaN for other ROIs."),
    ]
    return NWBGroupSpec(
        neurodata_type_def="FacemapRegions",
        neurodata_type_inc="DynamicTable",
        default_name="regions",
        doc="Regions Facemap processed: the full frame and each ROI, with pixel and binned ranges.",
        datasets=columns,
    )


def run_group() -> NWBGroupSpec:
    return NWBGroupSpec(
        neurodata_type_def="FacemapRun",
        neurodata_type_inc="NWBContainer",
        default_name="run",
        doc="One processing run of a Facemap task: when its results were made and by what.",
        attributes=[
            _attr("processing_time", "text", "When the results were made (ISO 8601).", required=False),
            _attr("engine", "text", "Engine that made the results, e.g. 'facemap' or 'facemap_nwb.native'."),
            _attr("engine_version", "text", "Version of that engine, when it is known.", required=False),
            _attr(
                "source_file", "text", "Name of the Facemap output file the results were loaded from.", required=False
            ),
        ],
    )


def task_group() -> NWBGroupSpec:
    flag = "Whether {} was computed."
    return NWBGroupSpec(
        neurodata_type_def="FacemapTask",
        neurodata_type_inc="NWBDataInterface",
        default_name="FacemapTask",
        doc="A Facemap processing task (element-facemap's FacemapTask and FacemapProcessing): its parameters, "
        "regions and run. Its signals live beside it in the behavior processing module.",
        attributes=[
            _attr("task_id", "text", "Identifier of the task."),
            _attr("task_mode", "text", "'load' (results of an earlier run) or 'trigger' (computed here)."),
            _attr("description", "text", "Description of the task.", required=False),
            _attr("motion_svd", "bool", flag.format("the SVD of motion (frame differences)")),
            _attr("movie_svd", "bool", flag.format("the SVD of the raw movie")),
            _attr("multivideo_svd", "bool", flag.format("the full-frame SVD over all views (fullSVD)")),
            _attr("spatial_bin", "int32", "Spatial bin size in pixels (Facemap 'sbin')."),
            _attr("n_components", "int32", "Number of SVD components asked for."),
            _attr("parameters", "text", "The full parameter set as it was used, as JSON."),
        ],
        groups=[
            NWBGroupSpec(neurodata_type_inc="FacemapRegions", name="regions", doc="The regions of the task."),
            NWBGroupSpec(
                neurodata_type_inc="FacemapRun", name="run", doc="The run that made the results.", quantity="?"
            ),
        ],
    )


def svd_series() -> NWBGroupSpec:
    return NWBGroupSpec(
        neurodata_type_def="FacemapSVDSeries",
        neurodata_type_inc="TimeSeries",
        doc="SVD of one region's motion (frame differences) or raw movie: temporal projections over frames, "
        "singular values and spatial masks, split along the component axis.",
        attributes=[_attr("svd_type", "text", "'motion' or 'movie'.")],
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
                "with the component axis first).",
            ),
            NWBDatasetSpec(
                name="region",
                neurodata_type_inc="DynamicTableRegion",
                doc="The row of the task's regions table this SVD belongs to.",
            ),
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


def main(output_dir: str | Path = HERE) -> None:
    builder = NWBNamespaceBuilder(
        doc="Facemap face-video analysis in NWB: processing tasks and runs, regions, and motion/movie SVDs.",
        name=NAME,
        version=VERSION,
        author=["facemap-nwb developers"],
        contact=["facemap-nwb@users.noreply.github.com"],
    )
    builder.include_namespace("core")
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    export_spec(builder, [regions_table(), run_group(), task_group(), svd_series()], str(output_dir))
    if Path(output_dir).resolve() == HERE and PACKAGE_SPEC.is_dir():  # keep the distribution's copy in step
        for name in FILES:
            shutil.copyfile(HERE / name, PACKAGE_SPEC / name)


if __name__ == "__main__":
    import sys

    main(sys.argv[1] if len(sys.argv) > 1 else HERE)
