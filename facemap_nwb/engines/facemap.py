"""The ``facemap`` engine: runs ``facemap.process.run`` headless in a temporary folder and loads its output
through the safe loader (the ``facemap`` extra)."""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from ..params import FacemapParameters
from ..results import FacemapResults
from ..video import VideoRecording
from .versions import package_version

__all__ = ["run_facemap", "run_facemap_to_folder"]


def _import_facemap():
    try:
        import facemap
        from facemap import process
    except ImportError as err:
        raise ImportError(
            "The 'facemap' engine needs Facemap: pip install 'facemap-nwb[facemap]' (install torch first, e.g. "
            "pip install torch==2.13.0, to avoid a multi-GB CUDA build)."
        ) from err
    return facemap, process


def run_facemap_to_folder(
    recordings: Sequence[VideoRecording],
    params: FacemapParameters,
    folder: str | Path,
    *,
    save_mat: bool = False,
    quiet: bool = True,
) -> Path:
    """Run ``facemap.process.run`` headless, saving its ``_proc.npy`` (and ``_proc.mat``) in ``folder``."""
    _, process = _import_facemap()
    counts = {len(r.files) for r in recordings}
    if len(counts) != 1:
        raise ValueError("Facemap needs every simultaneous view split into the same number of sequential files.")
    if len({r.frame_count for r in recordings}) != 1:
        listing = ", ".join(f"'{r.paths[0]}' {r.frame_count}" for r in recordings)
        raise ValueError(f"Simultaneous cameras must have the same number of frames; got {listing}.")
    filenames = [[str(r.paths[i]) for r in recordings] for i in range(counts.pop())]
    proc = {
        "sbin": params.spatial_bin,
        "fullSVD": params.multivideo_svd,
        "save_mat": save_mat,
        "rois": params.facemap_rois(),
        "sy": [0] * len(recordings),
        "sx": [0] * len(recordings),
        "savepath": str(folder),
    }
    with contextlib.ExitStack() as stack:
        if quiet:  # Facemap prints its progress
            sink = io.StringIO()
            stack.enter_context(contextlib.redirect_stdout(sink))
            stack.enter_context(contextlib.redirect_stderr(sink))
        saved = process.run(
            filenames,
            sbin=params.spatial_bin,
            motSVD=params.motion_svd,
            movSVD=params.movie_svd,
            proc=proc,
            savepath=str(folder),
        )
    return Path(saved)


def run_facemap(
    recordings: Sequence[VideoRecording], params: FacemapParameters, *, quiet: bool = True
) -> FacemapResults:
    """Run ``facemap.process.run`` on the recordings (one per simultaneous view) and load its results."""
    from ..loaders.facemap import load_facemap_results

    facemap, _ = _import_facemap()
    with tempfile.TemporaryDirectory(prefix="facemap-nwb-") as folder:
        results = load_facemap_results(run_facemap_to_folder(recordings, params, folder, quiet=quiet))
    results.engine = "facemap"
    results.engine_version = getattr(facemap, "__version__", "") or package_version("facemap")
    results.processing_time = datetime.now(timezone.utc)
    results.source_file = None
    results.parameters = params
    for region in results.regions:  # keep the caller's ROI names
        if region.number >= 0:
            region.name = params.rois[region.number].name
    return results
