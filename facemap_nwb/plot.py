"""A one-page summary of a Facemap NWB file: average frame with the ROIs, motion energy, the top motion
SVD masks and their projections, pupil area."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import atomic_output

__all__ = ["plot_summary"]

_COLORS = {"motion": "tab:orange", "pupil": "tab:cyan", "blink": "tab:purple", "running": "tab:green"}
N_MASKS = 3


def _regions_in_bins(results, sbin: int):
    """(region, y0, x0, height, width) in the binned average frame, for the ROIs of a single view."""
    for region in results.regions:
        if region.type == "full_frame" or region.video_index != 0:
            continue
        (y0, y1), (x0, x1) = region.y_range, region.x_range
        yield region, y0 / sbin, x0 / sbin, (y1 - y0) / sbin, (x1 - x0) / sbin


def _time_axis(n: int, rate: float | None):
    return (np.arange(n) / rate, "time (s)") if rate else (np.arange(n), "frame")


def plot_summary(
    nwb_path: str | os.PathLike, output: str | os.PathLike, *, task_id: str | None = None, overwrite: bool = False
) -> Path:
    """Draw the summary PNG of the Facemap results in ``nwb_path`` (written all-or-nothing to ``output``).

    ``task_id`` picks the task when the file holds several.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from .nwb.io import read_facemap_nwb

    results = read_facemap_nwb(nwb_path, task_id=task_id)
    rate = results.frame_rate  # the task's own signals' rate (None: frame numbers on the time axes)
    sbin = results.parameters.spatial_bin
    svd = next((s for s in results.motion_svd if results.regions[s.region].type == "full_frame"), None)
    svd = svd or (results.motion_svd[0] if results.motion_svd else None)
    fig = plt.figure(figsize=(12, 9), constrained_layout=True)
    grid = fig.add_gridspec(3, N_MASKS + 1)
    ax = fig.add_subplot(grid[0:2, 0:2])
    if results.average_frame is not None:
        ax.imshow(results.average_frame, cmap="gray")
        for region, y, x, h, w in _regions_in_bins(results, sbin):
            color = _COLORS.get(region.type, "tab:red")
            ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor=color, linewidth=1.5))
            ax.text(x, y - 1, region.name, color=color, fontsize=8, va="bottom")
    ax.set_title(f"Average frame (spatial bin {sbin}) and ROIs")
    ax.set_axis_off()
    ax = fig.add_subplot(grid[0, 2:])
    for index, trace in results.motion_energy.items():
        t, label = _time_axis(len(trace), rate)
        values = np.asarray(trace, dtype=float)
        scale = np.nanmax(np.abs(values)) or 1.0
        ax.plot(t, values / scale, linewidth=0.8, label=results.regions[index].name)
    ax.set_title("Motion energy (each trace scaled to its maximum)")
    ax.set_xlabel(label if results.motion_energy else "frame")
    if results.motion_energy:
        ax.legend(fontsize=7, loc="upper right")
    ax = fig.add_subplot(grid[1, 2:])
    if results.pupils:
        for pupil in results.pupils:
            t, label = _time_axis(len(pupil.area), rate)
            ax.plot(t, pupil.area, linewidth=0.6, alpha=0.5, label=f"{results.regions[pupil.region].name} area")
            ax.plot(t, pupil.area_smooth, linewidth=1.0, label="smoothed")
        ax.set_xlabel(label)
        ax.legend(fontsize=7, loc="upper right")
    else:
        ax.text(0.5, 0.5, "no pupil ROI", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Pupil area (pixels²)")
    if svd is not None:
        name = results.regions[svd.region].name
        for c in range(min(N_MASKS, svd.n_components)):
            ax = fig.add_subplot(grid[2, c])
            mask = np.asarray(svd.masks[c])
            limit = float(np.abs(mask).max()) or 1.0
            ax.imshow(mask, cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"motion SVD {name}: mask {c}", fontsize=9)
            ax.set_axis_off()
        ax = fig.add_subplot(grid[2, N_MASKS])
        for c in range(min(N_MASKS, svd.n_components)):
            t, label = _time_axis(svd.projections.shape[0], rate)
            trace = np.asarray(svd.projections[:, c], dtype=float)
            ax.plot(t, trace / (np.abs(trace).max() or 1.0) + 2 * c, linewidth=0.6, label=f"component {c}")
        ax.set_title("Projections (scaled, offset)", fontsize=9)
        ax.set_xlabel(label)
    task = f", task {task_id}" if task_id is not None else ""
    fig.suptitle(f"{Path(nwb_path).name}{task}: {results.frame_count} frames, engine {results.engine}")
    output = Path(output)
    with atomic_output(output, overwrite=overwrite) as temporary:
        fig.savefig(temporary, dpi=90, format="png")
    plt.close(fig)
    return output
