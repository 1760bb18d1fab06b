"""training_curves.png: the train loss and the evaluation metric by step, from Trainer's log history."""

from __future__ import annotations

import contextlib
from pathlib import Path


def draw_curves(log_history: list[dict], path) -> Path:
    """training_curves.png: train loss and the eval metric by step (matplotlib when installed, else PIL)."""
    loss = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry and "step" in entry]
    key = next((k for k in ("eval_accuracy", "eval_MAE", "eval_loss") if any(k in e for e in log_history)), None)
    metric = [(entry["step"], entry[key]) for entry in log_history if key in entry] if key else []
    curves = {"train loss": loss, **({key: metric} if key else {})}
    with contextlib.suppress(ImportError):
        return _draw_matplotlib(curves, Path(path))
    return _draw_pil(curves, Path(path))


def _draw_matplotlib(curves: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(curves), figsize=(5 * len(curves), 3.5))
    for axis, (name, points) in zip(list(getattr(axes, "flat", [axes])), curves.items(), strict=True):
        axis.plot(*zip(*points, strict=True), marker="o") if points else None
        axis.set_title(name)
        axis.set_xlabel("step")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _draw_pil(curves: dict, path: Path) -> Path:
    from PIL import Image, ImageDraw

    width, height, margin = 420, 300, 40
    image = Image.new("RGB", (width * len(curves), height), "white")
    draw = ImageDraw.Draw(image)
    for panel, (name, points) in enumerate(curves.items()):
        left = panel * width
        box = (left + margin, margin, left + width - 15, height - margin)
        draw.rectangle(box, outline="black")
        draw.text((left + margin, 12), f"{name} by step", fill="black")
        if not points:
            draw.text((box[0] + 10, box[1] + 10), "no values logged", fill="gray")
            continue
        steps, values = zip(*points, strict=True)
        low, high = min(values), max(values)
        first, last = min(steps), max(steps)
        draw.text((box[0], box[3] + 5), f"step {first}", fill="black")
        draw.text((box[2] - 60, box[3] + 5), f"step {last}", fill="black")
        draw.text((left + 2, box[1]), f"{high:.3g}", fill="black")
        draw.text((left + 2, box[3] - 10), f"{low:.3g}", fill="black")

        def xy(step, value, box=box, first=first, last=last, low=low, high=high):
            x = box[0] + (box[2] - box[0]) * ((step - first) / (last - first) if last > first else 0.5)
            y = box[3] - (box[3] - box[1]) * ((value - low) / (high - low) if high > low else 0.5)
            return x, y

        coordinates = [xy(step, value) for step, value in points]
        if len(coordinates) > 1:
            draw.line(coordinates, fill="blue", width=2)
        for x, y in coordinates:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill="blue")
    image.save(path)
    return path


__all__ = ["draw_curves"]
