"""Plots as inline SVG strings: grouped bars, a heatmap and line charts, with no plotting library, so
a report is one self-contained HTML file."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#3b6ea8", "#e08a2e", "#4f9a5a", "#b8474a", "#7d5ba6", "#8c6d4f", "#c96fa8", "#6f7b87")
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" aria-label="{escape(label)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {_FONT} {extra}>{escape(text)}</text>'


def _tooltip(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def _legend(names: Sequence[str], x: float, y: float) -> list[str]:
    out = []
    for i, name in enumerate(names):
        colour = PALETTE[i % len(PALETTE)]
        out.append(f'<rect x="{x:.1f}" y="{y + 16 * i:.1f}" width="10" height="10" fill="{colour}"/>')
        out.append(_text(x + 14, y + 16 * i + 9, name))
    return out


def grouped_bars(
    labels: Sequence[str], series: dict[str, Sequence[float | None]], title: str, maximum: float | None = None
) -> str:
    """Vertical bars: one group per label, one bar per series (missing values leave a gap)."""
    names = list(series)
    values = [v for vs in series.values() for v in vs if v is not None]
    top = maximum if maximum is not None else max(values, default=1.0) or 1.0
    left, bottom, plot_h = 40, 70, 180
    legend_w = 30 + 7 * max((len(n) for n in names), default=0)
    group_w = max(14 * len(names) + 10, 36)
    width = left + group_w * len(labels) + legend_w
    height = plot_h + bottom + 24
    body = [_text(left, 14, title, extra='font-weight="600" font-size="13"')]
    y0 = 24 + plot_h
    for tick in (0, 0.5, 1):
        y = y0 - tick * plot_h
        body.append(f'<line x1="{left}" x2="{left + group_w * len(labels)}" y1="{y:.1f}" y2="{y:.1f}" '
                    'stroke="#ddd"/>')  # fmt: skip
        body.append(_text(left - 4, y + 4, f"{tick * top:.3g}", "end"))
    bar_w = (group_w - 10) / max(len(names), 1)
    for g, label in enumerate(labels):
        gx = left + g * group_w + 5
        for s, name in enumerate(names):
            value = series[name][g]
            if value is None:
                continue
            h = max(value, 0) / top * plot_h
            body.append(
                f'<rect x="{gx + s * bar_w:.1f}" y="{y0 - h:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                f'fill="{PALETTE[s % len(PALETTE)]}">{_tooltip(f"{name} · {label}: {value:.4g}")}</rect>'
            )
        cx = gx + (group_w - 10) / 2
        body.append(_text(cx, y0 + 12, label, "end", f'transform="rotate(-35 {cx:.1f} {y0 + 12:.1f})"'))
    body += _legend(names, left + group_w * len(labels) + 16, 30)
    return _svg(width, height, body, title)


def heatmap(
    rows: Sequence[str], columns: Sequence[str], counts: dict[tuple[str, str], int], title: str
) -> str:
    """Cells shaded by count (white = empty), the count printed in each filled cell."""
    left, top, cell = max(60, 7 * max((len(r) for r in rows), default=4)), 40, 30
    width, height = left + cell * len(columns) + 10, top + cell * len(rows) + 10
    peak = max(counts.values(), default=1) or 1
    body = [_text(4, 14, title, extra='font-weight="600" font-size="13"')]
    for c, column in enumerate(columns):
        body.append(_text(left + c * cell + cell / 2, top - 6, column, "middle"))
    for r, row in enumerate(rows):
        y = top + r * cell
        body.append(_text(left - 6, y + cell / 2 + 4, row, "end"))
        for c, column in enumerate(columns):
            n = counts.get((row, column), 0)
            shade = 0.12 + 0.88 * n / peak if n else 0.0
            x = left + c * cell
            body.append(
                f'<rect x="{x}" y="{y}" width="{cell - 2}" height="{cell - 2}" fill="#3b6ea8" '
                f'fill-opacity="{shade:.2f}" stroke="#ccc">{_tooltip(f"{row} × {column}: {n}")}</rect>'
            )
            if n:
                colour = "#fff" if shade > 0.55 else "#222"
                body.append(_text(x + (cell - 2) / 2, y + cell / 2 + 3, str(n), "middle", f'fill="{colour}"'))
    return _svg(width, height, body, title)


def lines(x: Sequence[float], series: dict[str, Sequence[float | None]], title: str, x_label: str) -> str:
    """Line chart with points; the y range fits the data."""
    values = [v for vs in series.values() for v in vs if v is not None]
    low, high = min(values, default=0.0), max(values, default=1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    left, top, plot_w, plot_h = 50, 24, 360, 180
    legend_w = 30 + 7 * max((len(n) for n in series), default=0)
    width, height = left + plot_w + legend_w, top + plot_h + 40
    x_low, x_high = min(x, default=0), max(x, default=1)
    span = (x_high - x_low) or 1

    def point(xv: float, yv: float) -> tuple[float, float]:
        return left + (xv - x_low) / span * plot_w, top + plot_h - (yv - low) / (high - low) * plot_h

    body = [_text(left, 14, title, extra='font-weight="600" font-size="13"')]
    for tick in (0, 0.5, 1):
        value = low + tick * (high - low)
        _, y = point(x_low, value)
        body.append(f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        body.append(_text(left - 4, y + 4, f"{value:.3g}", "end"))
    for xv in x:
        px, _ = point(xv, low)
        body.append(_text(px, top + plot_h + 14, f"{xv:g}", "middle"))
    body.append(_text(left + plot_w / 2, top + plot_h + 30, x_label, "middle"))
    for s, ys in enumerate(series.values()):
        colour = PALETTE[s % len(PALETTE)]
        points = [point(xv, yv) for xv, yv in zip(x, ys, strict=True) if yv is not None]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        body.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        body += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in points]
    body += _legend(list(series), left + plot_w + 16, 30)
    return _svg(width, height, body, title)
