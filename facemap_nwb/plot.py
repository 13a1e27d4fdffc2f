"""A one-page summary of a Facemap NWB file: the average frame with the ROIs (each labelled, labels never
on top of each other), and a panel for each signal the file holds: motion energy, the top motion SVD masks
and their projections, pupil area, blink traces and running traces (dy, dx). Panels are drawn only for
the signals present; each ROI keeps one colour in the frame and in the traces. Facemap pose keypoints stored
in the file (one camera) are drawn on the average frame: each body part at its median position over the
recording, joined by the face model's skeleton."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .atomic import atomic_output

__all__ = ["plot_summary", "summary_figure", "LABEL_GID", "KEYPOINT_GID"]

N_MASKS = 3  # SVD components drawn (masks and projections)
DPI = 90
FIGURE_WIDTH = 15  # inches; the height follows the number of signal panels
LABEL_GID = "roi-label"  # the gid of the ROI labels on the average frame
KEYPOINT_GID = "keypoints"  # the gid of the keypoint markers on the average frame
_LABEL_SIZE = 8  # points
# ROI colours (tab10 without its grey); the full frame is drawn in black.
_PALETTE = (
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
)
_PROJECTION_COLORS = ("#1b9e77", "#d95f02", "#7570b3")


def _regions_in_bins(results, sbin: int):
    """(index, region, y0, x0, height, width) in the binned average frame, for the ROIs of view 0."""
    for index, region in enumerate(results.regions):
        if region.type == "full_frame" or region.video_index != 0:
            continue
        (y0, y1), (x0, x1) = region.y_range, region.x_range
        yield index, region, y0 / sbin, x0 / sbin, (y1 - y0) / sbin, (x1 - x0) / sbin


def _region_colors(results) -> dict[int, str]:
    rois = [i for i, r in enumerate(results.regions) if r.type != "full_frame"]
    colors = {i: _PALETTE[n % len(_PALETTE)] for n, i in enumerate(rois)}
    colors.update({i: "black" for i, r in enumerate(results.regions) if r.type == "full_frame"})
    return colors


def _time_axis(n: int, rate: float | None):
    return (np.arange(n) / rate, "time (s)") if rate else (np.arange(n), "frame")


def _scaled(trace) -> np.ndarray:
    values = np.asarray(trace, dtype=float)
    finite = np.abs(values[np.isfinite(values)])
    scale = float(finite.max()) if finite.size else 0.0
    return values / (scale or 1.0)


def _legend(ax, n_entries: int) -> None:
    """A legend beside the panel (right), so that it never hides the traces."""
    ax.legend(
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        frameon=False,
        ncol=1 if n_entries <= 8 else 2,
    )


def _aspect(image, default: float) -> float:
    """Height over width of a 2-D image (``default`` without one)."""
    shape = getattr(image, "shape", None)
    return shape[-2] / shape[-1] if shape and len(shape) >= 2 and shape[-1] else default


def _primary_motion_svd(results):
    """The full frame's motion SVD (else the first one); None without motion SVD."""
    svd = next((s for s in results.motion_svd if results.regions[s.region].type == "full_frame"), None)
    return svd or (results.motion_svd[0] if results.motion_svd else None)


# -- the panels: each draws one kind of signal on its axes and returns its x label --------------------------------


def _draw_scaled(ax, results, traces: dict, colors, rate, what: str) -> str:
    """One trace per region, each scaled to its maximum."""
    label = "frame"
    for index, trace in traces.items():
        t, label = _time_axis(len(trace), rate)
        ax.plot(t, _scaled(trace), linewidth=0.8, color=colors[index], label=results.regions[index].name)
    ax.set_title(f"{what} (each trace scaled to its maximum)", fontsize=10)
    _legend(ax, len(traces))
    return label


def _draw_motion_energy(ax, results, colors, rate) -> str:
    return _draw_scaled(ax, results, results.motion_energy, colors, rate, "Motion energy")


def _draw_projections(ax, results, svd, rate) -> str:
    t, label = _time_axis(svd.projections.shape[0], rate)
    n = min(N_MASKS, svd.n_components)
    projections = np.asarray(svd.projections[:, :n], dtype=float)
    for c in range(n):
        ax.plot(
            t, _scaled(projections[:, c]) + 2 * c, linewidth=0.7, color=_PROJECTION_COLORS[c], label=f"component {c}"
        )
    name = results.regions[svd.region].name
    others = len(results.motion_svd) - 1
    more = f"; {others} other motion SVD(s) in the file" if others else ""
    ax.set_title(f"Motion SVD projections of {name} (scaled, offset{more})", fontsize=10)
    ax.set_yticks([2 * c for c in range(n)], [str(c) for c in range(n)])
    ax.set_ylabel("component")
    _legend(ax, n)
    return label


def _draw_pupils(ax, results, colors, rate) -> str:
    label = "frame"
    for pupil in results.pupils:
        t, label = _time_axis(len(pupil.area), rate)
        name, color = results.regions[pupil.region].name, colors[pupil.region]
        ax.plot(t, np.asarray(pupil.area, dtype=float), linewidth=0.6, alpha=0.35, color=color, label=f"{name} area")
        ax.plot(t, np.asarray(pupil.area_smooth, dtype=float), linewidth=1.0, color=color, label=f"{name} smoothed")
    ax.set_title("Pupil area (pixels²)", fontsize=10)
    _legend(ax, 2 * len(results.pupils))
    return label


def _draw_blinks(ax, results, colors, rate) -> str:
    return _draw_scaled(ax, results, results.blinks, colors, rate, "Blink")


def _draw_running(ax, results, colors, rate) -> str:
    label = "frame"
    for index, trace in results.running.items():
        values = np.asarray(trace, dtype=float)
        t, label = _time_axis(values.shape[0], rate)
        name, color = results.regions[index].name, colors[index]
        ax.plot(t, values[:, 0], linewidth=0.8, color=color, label=f"{name} dy")
        ax.plot(t, values[:, 1], linewidth=0.8, color=color, linestyle="--", label=f"{name} dx")
    ax.set_title("Running (dy solid, dx dashed; pixels per frame)", fontsize=10)
    _legend(ax, 2 * len(results.running))
    return label


# -- ROI labels on the average frame ----------------------------------------------------------------------------


def _label_extent(text, renderer, pad: float):
    return text.get_window_extent(renderer).padded(pad)


def _candidates(ax, box, height: float):
    """Anchors (display x, y, ha, va) for the label of a data box (x0, y0, x1, y1) of an image (y down):
    the four corners outside, then inside, then further and further above and below the box."""
    (left, top), (right, bottom) = ax.transData.transform([(box[0], box[1]), (box[2], box[3])])
    top, bottom = max(top, bottom), min(top, bottom)  # display y grows upwards
    yield left, top, "left", "bottom"
    yield right, top, "right", "bottom"
    yield left, bottom, "left", "top"
    yield right, bottom, "right", "top"
    yield left, top, "left", "top"
    yield right, top, "right", "top"
    yield left, bottom, "left", "bottom"
    yield right, bottom, "right", "bottom"
    for k in range(1, 40):
        yield left, top + k * height, "left", "bottom"
        yield left, bottom - k * height, "left", "top"
        yield right, top + k * height, "right", "bottom"
        yield right, bottom - k * height, "right", "top"


def _place_labels(fig, ax, labels) -> None:
    """Move each (text, data box) label to the first anchor where its bounding box (from the renderer's text
    extents) overlaps no label placed before: inside the image if possible, else inside the figure, else
    where it overlaps least."""
    renderer = fig.canvas.get_renderer()
    pad = 0.3 * _LABEL_SIZE * fig.dpi / 72  # the label's background box, and a gap
    inside, page = ax.get_window_extent(renderer), fig.bbox
    to_data = ax.transData.inverted()
    placed = []
    for text, box in labels:
        height = _label_extent(text, renderer, pad).height
        best, best_cost = None, None
        for x, y, ha, va in _candidates(ax, box, height):
            text.set_position(to_data.transform((x, y)))
            text.set_horizontalalignment(ha)
            text.set_verticalalignment(va)
            extent = _label_extent(text, renderer, pad)
            overlap = sum(_overlap_area(extent, other) for other in placed)
            outside = 0 if _contains(inside, extent) else 1 if _contains(page, extent) else 2
            cost = (overlap > 0, outside, overlap)
            if best_cost is None or cost < best_cost:
                best, best_cost = (x, y, ha, va), cost
            if cost == (False, 0, 0):
                break
        x, y, ha, va = best
        text.set_position(to_data.transform((x, y)))
        text.set_horizontalalignment(ha)
        text.set_verticalalignment(va)
        placed.append(_label_extent(text, renderer, pad))


def _overlap_area(a, b) -> float:
    return max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))


def _contains(outer, inner) -> bool:
    return outer.x0 <= inner.x0 and inner.x1 <= outer.x1 and outer.y0 <= inner.y0 and inner.y1 <= outer.y1


def _draw_frame(ax, results, colors, sbin: int) -> list:
    """The average frame and the ROI rectangles; returns the (label, data box) pairs to place."""
    from matplotlib.patches import Rectangle

    ax.set_axis_off()
    if results.average_frame is None:
        ax.text(0.5, 0.5, "no average frame in the file", ha="center", va="center", transform=ax.transAxes)
        return []
    ax.imshow(np.asarray(results.average_frame), cmap="gray")
    ax.set_title(f"Average frame (spatial bin {sbin}) and ROIs", fontsize=10)
    labels = []
    for index, region, y, x, h, w in _regions_in_bins(results, sbin):
        color = colors[index]
        ax.add_patch(Rectangle((x - 0.5, y - 0.5), w, h, fill=False, edgecolor=color, linewidth=1.5))
        name = region.name if region.name == region.type else f"{region.name} ({region.type})"
        text = ax.text(
            x - 0.5,
            y - 0.5,
            name,
            color=color,
            fontsize=_LABEL_SIZE,
            fontweight="bold",
            clip_on=False,
            gid=LABEL_GID,
            bbox=dict(boxstyle="square,pad=0.15", facecolor="white", alpha=0.8, edgecolor="none"),
        )
        text.set_in_layout(False)
        labels.append((text, (x - 0.5, y - 0.5, x - 0.5 + w, y - 0.5 + h)))
    _draw_keypoints(ax, results, sbin)
    return labels


def keypoint_positions_in_bins(pose, sbin: int) -> np.ndarray:
    """Each body part's median position over the frames (NaN ignored), ``(body parts, 2)`` as (x, y) in the
    average frame's spatial bins: pixel centre ``p`` lies at ``(p + 0.5) / sbin - 0.5``."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a body part never found: all NaN, drawn nowhere
        median = np.nanmedian(np.asarray(pose.positions, dtype=np.float64), axis=0)
    return (median + 0.5) / sbin - 0.5


def _draw_keypoints(ax, results, sbin: int) -> None:
    """The keypoints of a one-camera task, at their median positions, with the skeleton's edges."""
    from .pose import skeleton_edges

    poses = [p for p in getattr(results, "keypoints", []) if p.frame_count]
    if not poses or len(results.view_shapes) != 1:
        return  # several cameras: the average frame places them side by side, keypoints are per camera
    for pose in poses:
        xy = keypoint_positions_in_bins(pose, sbin)
        for a, b in skeleton_edges(pose.bodyparts):
            ax.plot(xy[[a, b], 0], xy[[a, b], 1], color="yellow", linewidth=1, alpha=0.8, gid=KEYPOINT_GID)
        ax.scatter(xy[:, 0], xy[:, 1], s=14, c="yellow", edgecolors="black", linewidths=0.5, zorder=3, gid=KEYPOINT_GID)
    ax.set_title(f"Average frame (spatial bin {sbin}), ROIs and keypoints (median positions)", fontsize=10)


def _draw_masks(fig, cells, results, svd) -> None:
    name = results.regions[svd.region].name
    for c in range(min(N_MASKS, svd.n_components)):
        ax = fig.add_subplot(cells[c])
        mask = np.asarray(svd.masks[c], dtype=float)
        limit = float(np.nanmax(np.abs(mask))) if mask.size else 0.0
        ax.imshow(mask, cmap="RdBu_r", vmin=-(limit or 1.0), vmax=limit or 1.0)
        ax.set_title(f"motion SVD {name}: mask {c}", fontsize=9, color=_PROJECTION_COLORS[c])
        ax.set_axis_off()


def summary_figure(results, *, title: str = ""):
    """The summary figure of ``results`` (a :class:`~facemap_nwb.results.FacemapResults`), laid out and with
    its ROI labels placed; the caller saves or closes it.

    The left column holds the average frame with the ROIs and the top motion SVD masks; the right column one
    panel per signal kind present, on one time axis: motion energy, motion SVD projections, pupil area, blink,
    running (dy, dx). Each panel's title names its signal.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rate = results.frame_rate  # the task's own signals' rate (None: frame numbers on the time axes)
    sbin = results.parameters.spatial_bin
    svd = _primary_motion_svd(results)
    colors = _region_colors(results)
    panels = [
        (draw, args)
        for present, draw, args in (
            (results.motion_energy, _draw_motion_energy, (results, colors, rate)),
            (svd is not None, _draw_projections, (results, svd, rate)),
            (results.pupils, _draw_pupils, (results, colors, rate)),
            (results.blinks, _draw_blinks, (results, colors, rate)),
            (results.running, _draw_running, (results, colors, rate)),
        )
        if present
    ]
    width, height = FIGURE_WIDTH, max(7.5, 1.75 * len(panels) + 1.2)
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    # The left column as wide as its images (frame over a row of masks, at their aspect ratios) fill its height.
    frame_aspect = _aspect(results.average_frame, 0.75)
    rows = [frame_aspect * N_MASKS, _aspect(svd.masks[0], 0.75)] if svd is not None else [frame_aspect]
    share = (height - 1.0) / (sum(rows) / N_MASKS if svd is not None else frame_aspect) / width
    share = float(np.clip(share, 0.3, 0.5))
    outer = fig.add_gridspec(1, 2, width_ratios=[share, 1.0 - share])
    left = outer[0].subgridspec(len(rows), N_MASKS, height_ratios=rows)
    frame_ax = fig.add_subplot(left[0, :])
    labels = _draw_frame(frame_ax, results, colors, sbin)
    if svd is not None:
        _draw_masks(fig, [left[1, c] for c in range(N_MASKS)], results, svd)
    right = outer[1].subgridspec(max(1, len(panels)), 1)
    first = None
    for row, (draw, args) in enumerate(panels):
        ax = fig.add_subplot(right[row, 0], sharex=first)
        first = first or ax
        xlabel = draw(ax, *args)
        if row == len(panels) - 1:
            ax.set_xlabel(xlabel)
        else:
            ax.tick_params(labelbottom=False)
    if not panels:
        ax = fig.add_subplot(right[0, 0])
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no signals in the file", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title or f"{results.frame_count} frames, engine {results.engine}")
    fig.canvas.draw()  # lay the panels out, then keep them there while the labels are placed
    fig.set_layout_engine("none")
    _place_labels(fig, frame_ax, labels)
    return fig


def plot_summary(
    nwb_path: str | os.PathLike, output: str | os.PathLike, *, task_id: str | None = None, overwrite: bool = False
) -> Path:
    """Draw the summary PNG of the Facemap results in ``nwb_path`` (written all-or-nothing to ``output``).

    ``task_id`` picks the task when the file holds several.
    """
    from .nwb.io import read_facemap_nwb

    with read_facemap_nwb(nwb_path, task_id=task_id) as results:
        task = f", task {task_id}" if task_id is not None else ""
        title = f"{Path(nwb_path).name}{task}: {results.frame_count} frames, engine {results.engine}"
        fig = summary_figure(results, title=title)
    output = Path(output)
    with atomic_output(output, overwrite=overwrite) as temporary:
        fig.savefig(temporary, dpi=DPI, format="png")
    return output
