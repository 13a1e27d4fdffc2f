"""The summary PNG: a panel for every signal kind the file holds, ROI labels that never cover each other,
a legend for the SVD projections."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest

from facemap_nwb.plot import LABEL_GID, plot_summary, summary_figure

PANEL_TITLES = {
    "motion energy": "Motion energy",
    "motion SVD projections": "Motion SVD projections",
    "pupil area": "Pupil area",
    "blink": "Blink",
    "running": "Running",
}


@pytest.fixture(scope="module")
def all_types_nwb(tmp_path_factory):
    """A small NWB file with ROIs of all four types (and the full frame's motion SVD)."""
    from facemap_nwb.convert import write_results_nwb
    from facemap_nwb.engines import process_recordings
    from facemap_nwb.params import ROI, FacemapParameters
    from facemap_nwb.synthetic import default_creation_time, make_face_video
    from facemap_nwb.video import probe_recording

    folder = tmp_path_factory.mktemp("plot")
    video = make_face_video(
        folder / "face.mp4", n_frames=40, height=60, width=80, creation_time=default_creation_time()
    )
    recording = probe_recording([video])
    params = FacemapParameters(
        spatial_bin=2,
        n_components=5,
        rois=(
            ROI("motion", 40, 10, 30, 20, name="whiskers"),
            ROI("pupil", 10, 10, 20, 14, name="pupil", saturation=100),
            ROI("blink", 10, 10, 20, 14, name="eyelid", saturation=60),
            ROI("running", 5, 40, 30, 15, name="wheel"),
        ),
    )
    results = process_recordings([recording], params, progress=False)
    path = folder / "all_types.nwb"
    metadata = {"Subject": {"subject_id": "plot", "species": "Mus musculus", "sex": "U", "age": "P90D"}}
    write_results_nwb(path, results, [recording], metadata=metadata, overwrite=True)
    return path


def _titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes]


def _panel(fig, title: str):
    (ax,) = [ax for ax in fig.axes if ax.get_title().startswith(title)]
    return ax


def _label_boxes(fig):
    """The drawn background boxes of the ROI labels, in display pixels."""
    fig.canvas.draw()
    texts = [t for ax in fig.axes for t in ax.texts if t.get_gid() == LABEL_GID]
    return texts, [t.get_bbox_patch().get_window_extent() for t in texts]


def test_a_panel_for_every_signal_kind(all_types_nwb):
    from facemap_nwb.nwb.io import read_facemap_nwb

    with read_facemap_nwb(all_types_nwb) as results:
        assert results.pupils and results.blinks and results.running and results.motion_svd
        fig = summary_figure(results)
    titles = _titles(fig)
    assert any(t.startswith("Average frame") for t in titles)
    for kind, title in PANEL_TITLES.items():
        ax = _panel(fig, title)
        assert ax.lines, f"the {kind} panel draws no trace"
    assert [t for t in titles if "mask" in t] == [f"motion SVD full_frame: mask {c}" for c in range(3)]
    running = _panel(fig, "Running")
    assert [line.get_label() for line in running.lines] == ["wheel dy", "wheel dx"]
    assert [line.get_label() for line in _panel(fig, "Blink").lines] == ["eyelid"]
    texts, _ = _label_boxes(fig)
    assert sorted(t.get_text() for t in texts) == ["eyelid (blink)", "pupil", "wheel (running)", "whiskers (motion)"]


def test_projections_have_a_legend_of_component_numbers(all_types_nwb):
    from facemap_nwb.nwb.io import read_facemap_nwb

    with read_facemap_nwb(all_types_nwb) as results:
        fig = summary_figure(results)
    legend = _panel(fig, "Motion SVD projections").get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["component 0", "component 1", "component 2"]
    for title in ("Motion energy", "Pupil area", "Blink", "Running"):
        assert _panel(fig, title).get_legend() is not None, f"the {title} panel has no legend"


def test_summary_png_is_drawn_in_every_panel(all_types_nwb, tmp_path):
    import matplotlib.image

    from facemap_nwb.nwb.io import read_facemap_nwb

    png = plot_summary(all_types_nwb, tmp_path / "summary.png")
    image = matplotlib.image.imread(png)[..., :3]
    with read_facemap_nwb(all_types_nwb) as results:
        fig = summary_figure(results)
    width, height = (fig.get_size_inches() * fig.dpi).round().astype(int)
    assert image.shape[:2] == (height, width)
    for ax in fig.axes:  # the PNG is not blank where each panel lies
        box = ax.get_window_extent()
        rows = slice(int(height - box.y1), int(height - box.y0))
        region = image[rows, int(box.x0) : int(box.x1)]
        assert region.size and region.std() > 0.02, f"panel {ax.get_title()!r} is blank in the PNG"
    with pytest.raises(FileExistsError, match="--overwrite"):
        plot_summary(all_types_nwb, png)
    assert plot_summary(all_types_nwb, png, overwrite=True) == png


def _hand_built(rois, shape=(60, 80), frames=20, **signals):
    from facemap_nwb.params import FacemapParameters
    from facemap_nwb.results import FacemapResults, Region

    regions = [Region(0, "full_frame", "full_frame", -1, (0, shape[0]), (0, shape[1]))]
    for number, (kind, name, y, x, h, w) in enumerate(rois):
        regions.append(Region(number, name, kind, 0, (y, y + h), (x, x + w)))
    rng = np.random.default_rng(0)
    return FacemapResults(
        parameters=FacemapParameters(spatial_bin=1),
        frame_count=frames,
        view_shapes=[shape],
        regions=regions,
        average_frame=rng.uniform(0, 255, shape),
        motion_energy={
            i: rng.uniform(size=frames) for i, r in enumerate(regions) if r.type in ("full_frame", "motion")
        },
        engine="test",
        **signals,
    )


def test_roi_labels_do_not_overlap():
    # Eight ROIs piled on one spot (identical, nested, shifted by a pixel), with long names: every label's
    # first choice is the same corner.
    rois = [
        ("motion", "whisker pad left", 10, 10, 20, 24),
        ("motion", "whisker pad right", 10, 10, 20, 24),
        ("pupil", "pupil", 11, 11, 18, 22),
        ("blink", "eyelid", 11, 11, 18, 22),
        ("motion", "nose", 12, 12, 6, 6),
        ("running", "wheel", 10, 11, 20, 24),
        ("motion", "mouth", 30, 10, 4, 4),
        ("motion", "paw", 29, 12, 5, 5),
    ]
    fig = summary_figure(_hand_built(rois))
    texts, boxes = _label_boxes(fig)
    assert len(texts) == len(rois)
    for (a, box_a), (b, box_b) in combinations(zip(texts, boxes), 2):
        assert not box_a.overlaps(box_b), f"the labels {a.get_text()!r} and {b.get_text()!r} overlap"
    page = fig.bbox
    for text, box in zip(texts, boxes):
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0 and box.y1 <= page.y1, text.get_text()


def test_labels_stay_readable_with_eight_rois_of_all_types(tmp_path):
    kinds = ("motion", "pupil", "blink", "running")
    rois = [(kinds[i % 4], f"{kinds[i % 4]} roi {i}", 5 + 6 * (i % 4), 5 + 8 * i, 12, 10) for i in range(8)]
    frames = 20
    rng = np.random.default_rng(1)
    from facemap_nwb.results import PupilSignals

    pupils = [
        PupilSignals(i + 1, *(rng.uniform(size=(frames, *s)) for s in ((), (), (2,), (2,), (2,), (2, 2))))
        for i, r in enumerate(rois)
        if r[0] == "pupil"
    ]
    blinks = {i + 1: rng.uniform(size=frames) for i, r in enumerate(rois) if r[0] == "blink"}
    running = {i + 1: rng.normal(size=(frames, 2)) for i, r in enumerate(rois) if r[0] == "running"}
    fig = summary_figure(_hand_built(rois, shape=(60, 80), pupils=pupils, blinks=blinks, running=running))
    texts, boxes = _label_boxes(fig)
    assert len(texts) == 8
    assert not any(a.overlaps(b) for a, b in combinations(boxes, 2))
    for title in ("Motion energy", "Pupil area", "Blink", "Running"):
        assert _panel(fig, title).lines
    fig.savefig(tmp_path / "eight.png")


def test_only_panels_for_the_signals_present():
    results = _hand_built([("motion", "whiskers", 10, 10, 20, 24)])
    titles = _titles(summary_figure(results))
    assert any(t.startswith("Motion energy") for t in titles)
    for title in ("Motion SVD projections", "Pupil area", "Blink", "Running"):
        assert not any(t.startswith(title) for t in titles), f"a {title} panel without that signal"
    assert not any("mask" in t for t in titles)
