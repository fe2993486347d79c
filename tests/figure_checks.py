"""What a figure review checks automatically, on a drawn matplotlib figure.

``problems(fig)`` lists every violation (an empty list is a pass):

- every legend label belongs to a visible artist of the figure that has data (no stand-in
  handle), and the legend's handle has that artist's colour;
- every axis that shows tick labels has a label: its own, a shared axis's, or the figure's
  ``supxlabel`` / ``supylabel``;
- no text (tick labels included) lies outside the figure, titles, axis labels and legends do
  not overlap each other or tick labels, a figure legend covers no panel, and a legend inside
  a panel covers no drawn line;
- generation axes have integer ticks only.

``capture(monkeypatch)`` makes ``figures.style.save`` record each figure's problems before it
saves and closes it.
"""

from __future__ import annotations

import itertools

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import Collection
from matplotlib.colors import to_rgba
from matplotlib.container import Container
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.text import Text

TOL = 1.0  # pixels


def _inside(bb, outer) -> bool:
    return bb.x0 >= outer.x0 - TOL and bb.y0 >= outer.y0 - TOL and bb.x1 <= outer.x1 + TOL and bb.y1 <= outer.y1 + TOL


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > TOL and min(a.y1, b.y1) - max(a.y0, b.y0) > TOL


def _figures(fig):
    """The figure and its subfigures, recursively."""
    out = [fig]
    for sub in fig.subfigs:
        out += _figures(sub)
    return out


def _axes(fig) -> list[Axes]:
    return [ax for ax in fig.get_axes() if ax.get_visible()]


def _has_data(a) -> bool:
    if isinstance(a, Container):
        return any(_has_data(c) for c in a.get_children() if c is not None)
    if not a.get_visible():
        return False
    if isinstance(a, Line2D):
        x, y = (np.asarray(v, float) for v in a.get_data())
        return bool(np.any(np.isfinite(x) & np.isfinite(y)))
    if isinstance(a, Collection):
        return len(a.get_paths()) > 0 and any(len(p.vertices) for p in a.get_paths()) or len(a.get_offsets()) > 0
    return True


def _rgb(c) -> tuple | None:
    if not isinstance(c, str):
        c = np.asarray(c, float)
        if c.ndim == 2:
            if not len(c):
                return None
            c = c[0]
    r = to_rgba(c)
    return None if r[3] == 0 else tuple(np.round(r[:3], 3))


def _colours(a) -> set:
    out = set()
    if isinstance(a, Line2D):
        cands = [a.get_color(), a.get_markerfacecolor(), a.get_markeredgecolor()]
    elif isinstance(a, Collection):
        cands = [a.get_facecolor(), a.get_edgecolor()]
    elif isinstance(a, Patch):
        cands = [a.get_facecolor(), a.get_edgecolor()]
    elif isinstance(a, Container):
        return set().union(set(), *(_colours(c) for c in a.get_children() if c is not None))
    else:
        return out
    for c in cands:
        if isinstance(c, str) and c in ("none", "None"):
            continue
        rgb = _rgb(c)
        if rgb is not None:
            out.add(rgb)
    return out


def _main_colour(h):
    """The colour a reader sees in a legend handle: a line's colour, a patch's face (its edge
    when the face is white or empty, as for hatched bars)."""
    if isinstance(h, Line2D):
        c = h.get_color()
        if h.get_linestyle() in ("None", "none", "") or c in ("none", "None"):
            c = h.get_markerfacecolor() if h.get_markerfacecolor() not in ("none", "None") else h.get_markeredgecolor()
        return _rgb(c)
    face = _rgb(h.get_facecolor())
    if face is None or face == (1.0, 1.0, 1.0):
        return _rgb(h.get_edgecolor())
    return face


def _labelled(fig) -> dict:
    """label -> artists of the figure carrying it."""
    out = {}
    for ax in _axes(fig):
        for a in itertools.chain(ax.lines, ax.collections, ax.patches, ax.containers, ax.images):
            out.setdefault(a.get_label(), []).append(a)
    return out


def _legends(fig) -> list:
    legs = []
    for f in _figures(fig):
        legs += list(f.legends)
    for ax in _axes(fig):
        if ax.get_legend() is not None:
            legs.append(ax.get_legend())
    return [leg for leg in legs if leg.get_visible()]


def legend_problems(fig) -> list[str]:
    out = []
    artists = _labelled(fig)
    for leg in _legends(fig):
        for text, handle in zip(leg.get_texts(), leg.legend_handles):
            label = text.get_text()
            sources = [a for a in artists.get(label, []) if _has_data(a)]
            if not sources:
                out.append(f"legend entry {label!r} has no drawn, visible artist")
                continue
            c = _main_colour(handle)
            if c is not None and not any(c in _colours(a) for a in sources):
                out.append(f"legend entry {label!r}: handle colour {c} is not the colour of its artist "
                           f"{sorted(set().union(*(_colours(a) for a in sources)))}")
    return out


def _shared_labelled(ax, which: str) -> bool:
    axis = ax.xaxis if which == "x" else ax.yaxis
    if axis.get_label_text().strip():
        return True
    shared = ax.get_shared_x_axes() if which == "x" else ax.get_shared_y_axes()
    for other in shared.get_siblings(ax):
        if other is not ax and other.get_visible() and (other.xaxis if which == "x" else other.yaxis).get_label_text().strip():
            return True
    return False


def _sup(fig, which: str) -> bool:
    for f in _figures(fig.figure if hasattr(fig, "figure") and fig.figure is not None else fig):
        t = getattr(f, "_supxlabel" if which == "x" else "_supylabel", None)
        if t is not None and t.get_text().strip():
            return True
    return False


def _shown_ticklabels(axis, renderer) -> list[Text]:
    """The tick labels the axis draws (inside its view interval, visible, not empty)."""
    lo, hi = sorted(axis.get_view_interval())
    span = hi - lo
    out = []
    for ticks in (axis.get_major_ticks(), axis.get_minor_ticks()):
        for tick in ticks:
            loc = tick.get_loc()
            if loc is None or not (lo - 1e-9 * abs(span) <= loc <= hi + 1e-9 * abs(span)):
                continue
            for lab in (tick.label1, tick.label2):
                if lab.get_visible() and lab.get_text().strip() and tick.get_visible():
                    out.append(lab)
    return out


def label_problems(fig, renderer) -> list[str]:
    out = []
    for ax in _axes(fig):
        if not ax.axison:
            continue
        for which, axis in (("x", ax.xaxis), ("y", ax.yaxis)):
            if not axis.get_visible() or not _shown_ticklabels(axis, renderer):
                continue
            if not _shared_labelled(ax, which) and not _sup(fig, which):
                what = ax.get_title() or ax.get_title(loc="left") or f"axes at {tuple(np.round(ax.get_position().bounds, 2))}"
                out.append(f"{which} axis of {what!r} has tick labels but no label")
    return out


def _is_generation(label: str) -> bool:
    return label.strip().startswith("generation")


def generation_problems(fig, renderer) -> list[str]:
    """An x axis whose label starts with "generation" (its own, a shared one's or the figure's)."""
    out = []
    sup = [getattr(f, "_supxlabel", None) for f in _figures(fig)]
    sup_gen = any(t is not None and _is_generation(t.get_text()) for t in sup)
    for ax in _axes(fig):
        if not ax.axison:
            continue
        label = ax.get_xlabel()
        shared = [o.get_xlabel() for o in ax.get_shared_x_axes().get_siblings(ax)]
        if _is_generation(label) or any(_is_generation(s) for s in shared) or (not label and sup_gen):
            lo, hi = sorted(ax.get_xlim())
            ticks = [t for t in ax.get_xticks() if lo - 1e-9 <= t <= hi + 1e-9]
            bad = [t for t in ticks if abs(t - round(t)) > 1e-9]
            if bad:
                out.append(f"generation axis {ax.get_title() or label!r} has fractional ticks {bad}")
    return out


def _texts(fig, renderer):
    """(name, bbox) of every drawn text that is not a tick label, and of every tick label."""
    named, ticks = [], []
    for f in _figures(fig):
        sups = [getattr(f, attr, None) for attr in ("_suptitle", "_supxlabel", "_supylabel")]
        for attr, t in zip(("suptitle", "supxlabel", "supylabel"), sups):
            if t is not None and t.get_visible() and t.get_text().strip():
                named.append((f"figure {attr} {t.get_text()[:30]!r}", t.get_window_extent(renderer)))
        for t in f.texts:
            if t.get_visible() and t.get_text().strip() and not any(t is s for s in sups):
                named.append((f"figure text {t.get_text()[:30]!r}", t.get_window_extent(renderer)))
    for ax in _axes(fig):
        titles = [ax.title, ax._left_title, ax._right_title]
        for t in titles + ([ax.xaxis.label, ax.yaxis.label] if ax.axison else []) + list(ax.texts):
            if t.get_visible() and t.get_text().strip():
                named.append((f"text {t.get_text()[:30]!r}", t.get_window_extent(renderer)))
        if ax.axison:
            for axis in (ax.xaxis, ax.yaxis):
                if axis.get_visible():
                    for lab in _shown_ticklabels(axis, renderer):
                        ticks.append((f"tick label {lab.get_text()!r}", lab.get_window_extent(renderer), ax))
    return named, ticks


def layout_problems(fig, renderer) -> list[str]:
    out = []
    box = fig.bbox
    named, ticks = _texts(fig, renderer)
    legends = [(leg, leg.get_window_extent(renderer)) for leg in _legends(fig)]
    for name, bb in named + [(n, b) for n, b, _ in ticks] + [(f"legend {i}", b) for i, (_, b) in enumerate(legends)]:
        if not _inside(bb, box):
            out.append(f"{name} lies outside the figure ({bb.x0:.0f}, {bb.y0:.0f}, {bb.x1:.0f}, {bb.y1:.0f}) "
                       f"vs ({box.x0:.0f}, {box.y0:.0f}, {box.x1:.0f}, {box.y1:.0f})")
    boxes = named + [(f"legend {i}", b) for i, (_, b) in enumerate(legends)]
    for (n1, b1), (n2, b2) in itertools.combinations(boxes, 2):
        if _overlap(b1, b2):
            out.append(f"{n1} overlaps {n2}")
    for n1, b1 in boxes:
        for n2, b2, _ in ticks:
            if _overlap(b1, b2):
                out.append(f"{n1} overlaps {n2}")
    for (n1, b1, a1), (n2, b2, a2) in itertools.combinations(ticks, 2):
        if _overlap(b1, b2):
            out.append(f"{n1} overlaps {n2}")
    for leg, bb in legends:
        parent = leg.axes
        if parent is None:  # a figure legend: outside every panel
            for ax in _axes(fig):
                if ax.axison and _overlap(bb, ax.bbox):
                    out.append(f"figure legend overlaps the panel {ax.get_title() or ax.get_ylabel()!r}")
            continue
        for line in parent.lines:
            if not _has_data(line):
                continue
            xy = parent.transData.transform(np.column_stack(line.get_data()).astype(float))
            xy = xy[np.all(np.isfinite(xy), 1)]
            if len(xy) > 1 and line.get_linestyle() not in ("None", "none", ""):  # the segments, densely
                t = np.linspace(0, 1, 25)[:, None, None]
                xy = (xy[:-1][None] * (1 - t) + xy[1:][None] * t).reshape(-1, 2)
            inside = (xy[:, 0] > bb.x0) & (xy[:, 0] < bb.x1) & (xy[:, 1] > bb.y0) & (xy[:, 1] < bb.y1)
            inside &= (xy[:, 0] >= parent.bbox.x0) & (xy[:, 0] <= parent.bbox.x1)
            inside &= (xy[:, 1] >= parent.bbox.y0) & (xy[:, 1] <= parent.bbox.y1)
            if inside.any():
                out.append(f"the legend of {parent.get_title() or parent.get_ylabel()!r} covers the line {line.get_label()!r}")
    return out


def problems(fig) -> list[str]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return (legend_problems(fig) + label_problems(fig, renderer) + layout_problems(fig, renderer)
            + generation_problems(fig, renderer))


def texts_of(fig) -> str:
    """Every text of the figure, joined (titles, labels, legends)."""
    return "\n".join(t.get_text() for t in fig.findobj(Text))


def capture(monkeypatch) -> dict:
    """Patch figures.style.save: each saved figure's stem -> (problems, all its text)."""
    from collapse_sim.figures import style

    seen = {}
    save = style.save

    def checked_save(fig, out_dir, stem):
        seen[stem] = (problems(fig), texts_of(fig))
        return save(fig, out_dir, stem)

    monkeypatch.setattr(style, "save", checked_save)
    return seen
