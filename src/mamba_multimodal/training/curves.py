"""training_curves.png: the train and eval loss, and the eval metric, by optimizer step, from Trainer's log history.

    draw_curves(trainer.state.log_history, "training_curves.png")

Drawn with matplotlib when it is installed, else with PIL (a dependency already): the same panels either way, each
with a title, labelled axes, ticks at round numbers, a legend, and a marker on every logged point (so that a run that
logged one point shows one).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from pathlib import Path

STEP = "optimizer step"
# The eval metric drawn beside the loss: the first of these that was logged, else the first other eval_ number.
PREFERRED_METRICS = ("eval_accuracy", "eval_MAE")
TIMING = ("_runtime", "_per_second", "_preparation_time")  # Trainer's timing entries (eval_runtime, ...)


@dataclass
class Panel:
    """One plot: `series` {legend label: [(step, value), ...]} against the optimizer step."""

    title: str
    ylabel: str
    series: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


def panels(log_history: list[dict]) -> list[Panel]:
    """The loss panel (train loss, and eval loss where evaluated) and, where an eval metric was logged, its panel."""

    def points(key: str) -> list[tuple[int, float]]:
        return [(entry["step"], float(entry[key])) for entry in log_history if key in entry and "step" in entry]

    loss = Panel("loss", "loss", {"train": points("loss")})
    if points("eval_loss"):
        loss.series["eval"] = points("eval_loss")
    logged = [key for entry in log_history for key, value in entry.items() if isinstance(value, (int, float))]
    metrics = [key for key in logged if key.startswith("eval_") and key != "eval_loss" and not key.endswith(TIMING)]
    metric = next((key for key in PREFERRED_METRICS if key in metrics), metrics[0] if metrics else None)
    if metric is None:
        return [loss]
    name = metric.removeprefix("eval_")
    return [loss, Panel(f"eval {name}", name, {"eval": points(metric)})]


def nice_ticks(low: float, high: float, count: int = 5, integer: bool = False) -> list[float]:
    """About `count` ticks at round numbers (1, 2 or 5 times a power of ten) covering [low, high]; a single value
    gets ticks around it."""
    if high <= low:
        spread = abs(low) * 0.1 or 1.0
        low, high = low - spread, high + spread
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1, round(step))
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(i * step, 12) for i in range(first, last + 1)]


def draw_curves(log_history: list[dict], path) -> Path:
    """training_curves.png (matplotlib when installed, else PIL)."""
    with contextlib.suppress(ImportError):
        return _draw_matplotlib(panels(log_history), Path(path))
    return _draw_pil(panels(log_history), Path(path))


def figure(panel_list: list[Panel]):
    """A matplotlib Figure of the panels, side by side."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    drawn = Figure(figsize=(5 * len(panel_list), 3.8), layout="constrained")
    for axis, panel in zip(drawn.subplots(1, len(panel_list), squeeze=False)[0], panel_list, strict=True):
        for label, values in panel.series.items():
            if values:
                axis.plot(*zip(*values, strict=True), marker="o", markersize=4, label=label)
        if not any(panel.series.values()):
            axis.text(0.5, 0.5, "no values logged", ha="center", va="center", transform=axis.transAxes)
        axis.set(title=panel.title, xlabel=STEP, ylabel=panel.ylabel)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
        if len([values for values in panel.series.values() if values]) > 1:
            axis.legend()
    return drawn


def _draw_matplotlib(panel_list: list[Panel], path: Path) -> Path:
    figure(panel_list).savefig(path, dpi=100)  # a Figure of its own: no pyplot state, no GUI backend
    return path


COLOURS = ("#1f77b4", "#ff7f0e")  # train, eval: matplotlib's first two


def _draw_pil(panel_list: list[Panel], path: Path) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    width, height = 480, 360
    image = Image.new("RGB", (width * len(panel_list), height), "white")
    draw, font = ImageDraw.Draw(image), ImageFont.load_default()
    for index, panel in enumerate(panel_list):
        _draw_panel(draw, font, panel, (index * width + 70, 35, (index + 1) * width - 20, height - 55))
    image.save(path)
    return path


def _text(draw, font, xy, text: str, anchor: str = "la", fill="black") -> None:
    """`text` placed by `anchor` as PIL's own (x: l, m, r; y: a top, m middle), which Pillow's bitmap font (its
    default before 10.1) does not take."""
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = xy[0] - {"l": 0, "m": (right - left) / 2, "r": right - left}[anchor[0]]
    y = xy[1] - {"a": 0, "m": (bottom - top) / 2}[anchor[1]]
    draw.text((x, y), text, fill=fill, font=font)


def _draw_panel(draw, font, panel: Panel, box: tuple[int, int, int, int]) -> None:
    """One panel in `box` (left, top, right, bottom of the plot area), with its title, axes, ticks and legend."""
    left, top, right, bottom = box
    draw.rectangle(box, outline="black")
    _text(draw, font, ((left + right) / 2, top - 28), panel.title, "ma")
    _text(draw, font, ((left + right) / 2, bottom + 24), STEP, "ma")
    _text(draw, font, (left - 60, top - 14), panel.ylabel, "la")
    values = [point for points in panel.series.values() for point in points]
    if not values:
        _text(draw, font, (left + 10, top + 10), "no values logged", fill="gray")
        return
    steps, numbers = zip(*values, strict=True)
    x_ticks, y_ticks = nice_ticks(min(steps), max(steps), integer=True), nice_ticks(min(numbers), max(numbers))

    def xy(step, value):
        x = left + (right - left) * (step - x_ticks[0]) / (x_ticks[-1] - x_ticks[0])
        return x, bottom - (bottom - top) * (value - y_ticks[0]) / (y_ticks[-1] - y_ticks[0])

    for tick in x_ticks:
        x = xy(tick, y_ticks[0])[0]
        draw.line((x, bottom, x, bottom + 4), fill="black")
        _text(draw, font, (x, bottom + 7), f"{tick:g}", "ma")
    for tick in y_ticks:
        y = xy(x_ticks[0], tick)[1]
        draw.line((left - 4, y, left, y), fill="black")
        _text(draw, font, (left - 7, y), f"{tick:.4g}", "rm")
    for points, colour in zip(panel.series.values(), COLOURS, strict=False):
        coordinates = [xy(step, value) for step, value in points]
        if len(coordinates) > 1:
            draw.line(coordinates, fill=colour, width=2)
        for x, y in coordinates:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
    if len(panel.series) > 1:
        for row, (label, colour) in enumerate(zip(panel.series, COLOURS, strict=False)):
            y = top + 12 + 14 * row
            draw.line((right - 70, y, right - 55, y), fill=colour, width=2)
            _text(draw, font, (right - 50, y), label, "lm")


__all__ = ["Panel", "draw_curves", "figure", "nice_ticks", "panels"]
