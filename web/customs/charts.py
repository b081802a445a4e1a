"""Chart geometry for the customs dashboard, drawn as inline SVG by templates/customs/_charts.html.

Server-side SVG: nothing loads from the network and no script runs; colours come from CSS classes in
static/staff.css. Every mark carries a ``title`` (the exact number) for hover and screen readers.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

__all__ = ["stacked_columns", "stacked_rows", "columns", "VERDICT_CLASSES"]

VERDICT_CLASSES = (("genuine", "Genuine", "c-ok"), ("suspicious", "Suspicious", "c-warn"),
                   ("likely_counterfeit", "Likely counterfeit", "c-bad"))


def _nice_max(value: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if value <= step * 4:
            return step * 4 if value > 0 else 4
    return value


def _y_ticks(top: int, plot_top: float, plot_h: float) -> list[dict[str, Any]]:
    return [{"y": round(plot_top + plot_h - plot_h * i / 4, 1), "label": str(top * i // 4)} for i in range(5)]


def stacked_columns(rows: Sequence[tuple[str, Sequence[int]]], series: Sequence[tuple[str, str]], *,
                    title: str, width: int = 480, height: int = 220, label_every: int | None = None) -> dict[str, Any]:
    """Vertical stacked bars: ``rows`` are (x label, counts per series); ``series`` are (name, css class)."""
    left, right, top, bottom = 32, 8, 10, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((sum(counts) for _, counts in rows), default=0)
    y_max = _nice_max(peak)
    n = max(1, len(rows))
    slot = plot_w / n
    bar_w = max(1.0, min(slot * 0.75, 48.0))
    every = label_every or max(1, round(n / 8))
    bars = []
    for i, (label, counts) in enumerate(rows):
        x = left + i * slot + (slot - bar_w) / 2
        base: float = top + plot_h
        segments = []
        for (name, css), count in zip(series, counts):
            if not count:
                continue
            h = plot_h * count / y_max
            base -= h
            segments.append({"x": round(x, 1), "y": round(base, 1), "w": round(bar_w, 1), "h": round(h, 1),
                             "cls": css, "title": f"{label}: {count} {name}"})
        bars.append({"segments": segments, "label": label if i % every == 0 else "",
                     "lx": round(x + bar_w / 2, 1), "total": sum(counts)})
    return {"kind": "columns", "title": title, "width": width, "height": height, "bars": bars,
            "yticks": _y_ticks(y_max, top, plot_h), "left": left, "right": width - right, "bottom": top + plot_h,
            "label_y": top + plot_h + 16, "legend": [{"name": name, "cls": css} for name, css in series],
            "empty": peak == 0}


def columns(rows: Sequence[tuple[str, int]], *, title: str, css: str = "c-accent", unit: str = "",
            width: int = 480, height: int = 220) -> dict[str, Any]:
    """Plain vertical bars (a histogram)."""
    return stacked_columns([(label, [count]) for label, count in rows], [(unit or "", css)], title=title,
                           width=width, height=height, label_every=1) | {"legend": []}


def stacked_rows(groups: Mapping[str, Mapping[str, int]], *, title: str, names: Mapping[str, str] | None = None,
                 width: int = 480, row_h: int = 30, limit: int = 12) -> dict[str, Any]:
    """Horizontal stacked bars, one row per group (largest first), split by verdict."""
    names = names or {}
    label_w, right = 150, 36
    ordered = sorted(groups.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))[:limit]
    peak = max((sum(v.values()) for _, v in ordered), default=0)
    plot_w = width - label_w - right
    rows = []
    for i, (group, counts) in enumerate(ordered):
        y = 8 + i * row_h
        x = float(label_w)
        segments = []
        for verdict, label, css in VERDICT_CLASSES:
            count = counts.get(verdict, 0)
            if not count:
                continue
            w = plot_w * count / peak if peak else 0
            segments.append({"x": round(x, 1), "y": y, "w": round(w, 1), "h": row_h - 8, "cls": css,
                             "title": f"{names.get(group, group)}: {count} {label.lower()}"})
            x += w
        rows.append({"label": names.get(group, group), "y": y, "ty": y + (row_h - 8) / 2 + 4, "segments": segments,
                     "total": sum(counts.values()), "tx": round(x + 4, 1)})
    height = 16 + max(1, len(rows)) * row_h
    return {"kind": "rows", "title": title, "width": width, "height": height, "rows": rows, "label_x": label_w - 6,
            "legend": [{"name": label, "cls": css} for _, label, css in VERDICT_CLASSES], "empty": peak == 0}
