"""training_curves.png as a person reads it: a title and labelled axes per panel, ticks at round numbers, the train
and eval loss and the eval metric, and a marker on every logged point (one point: one visible marker). Checked on
what is drawn (matplotlib's figure objects, PIL's drawing calls), not on pixels."""

import itertools
import math
import sys

import PIL.Image
import PIL.ImageDraw
import pytest

from mamba_multimodal.training.curves import draw_curves, figure, nice_ticks, panels


def trainer_log(steps: int = 12, evaluations: int = 3, metric: str | None = "eval_accuracy") -> list[dict]:
    """A log history as Trainer writes it: a loss every 10 steps, evaluations (loss, metric, timings), the summary."""
    history = [{"loss": 2.3 - 0.1 * i, "grad_norm": 1.0, "learning_rate": 1e-3, "epoch": i / 10, "step": 10 * i}
               for i in range(1, steps + 1)]  # fmt: skip
    for i in range(1, evaluations + 1):
        entry = {"eval_loss": 2.0 - 0.2 * i, "eval_runtime": 0.5, "eval_samples_per_second": 9.0, "step": 40 * i}
        history.append({**entry, **({metric: 0.2 + 0.1 * i} if metric else {})})
    return [*history, {"train_runtime": 3.0, "train_loss": 1.7, "epoch": 1.2, "step": 10 * steps}]


ONE_POINT = [{"loss": 2.3, "epoch": 1.0, "step": 1}, {"train_runtime": 0.1, "train_loss": 2.3, "step": 1}]


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        (trainer_log(), {"loss": {"train": 12, "eval": 3}, "eval accuracy": {"eval": 3}}),
        (trainer_log(metric="eval_MAE"), {"loss": {"train": 12, "eval": 3}, "eval MAE": {"eval": 3}}),
        (trainer_log(metric=None), {"loss": {"train": 12, "eval": 3}}),  # generative: the eval loss only
        (trainer_log(evaluations=0), {"loss": {"train": 12}}),
        (ONE_POINT, {"loss": {"train": 1}}),
    ],
)
def test_panels_hold_the_train_and_eval_loss_and_the_eval_metric(history, expected):
    drawn = {panel.title: {label: len(points) for label, points in panel.series.items()} for panel in panels(history)}
    assert drawn == expected


@pytest.mark.parametrize(("low", "high", "integer"), [(0.613, 0.927, False), (10, 120, True), (2.3, 2.3, False),
                                                      (1, 1, True), (-0.04, 3e-5, False)])  # fmt: skip
def test_ticks_are_round_numbers_that_cover_the_values(low, high, integer):
    ticks = nice_ticks(low, high, integer=integer)
    assert 3 <= len(ticks) <= 8 and ticks[0] <= low and ticks[-1] >= high
    step = ticks[1] - ticks[0]
    assert all(b - a == pytest.approx(step) for a, b in itertools.pairwise(ticks))
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert min(abs(mantissa - m) for m in (1, 2, 5)) < 1e-9, ticks
    assert not integer or all(float(tick).is_integer() for tick in ticks)


@pytest.mark.parametrize("history", [trainer_log(), ONE_POINT])
def test_the_pil_drawing_has_titles_axis_labels_ticks_and_a_marker_per_point(history, tmp_path, monkeypatch):
    calls = []
    real_draw = PIL.ImageDraw.Draw

    class Recording:
        def __init__(self, *args, **kwargs):
            self.draw = real_draw(*args, **kwargs)

        def __getattr__(self, name):
            method = getattr(self.draw, name)
            return lambda *args, **kwargs: calls.append((name, args, kwargs)) or method(*args, **kwargs)

    monkeypatch.setattr(PIL.ImageDraw, "Draw", Recording)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # the PIL path, whether or not it is installed
    path = draw_curves(history, tmp_path / "curves.png")
    assert PIL.Image.open(path).size[0] >= 480 * len(panels(history))
    texts = [args[1] for name, args, _ in calls if name == "text"]
    numbers = [text for text in texts if text.replace(".", "").replace("-", "").isdigit()]
    for panel in panels(history):
        assert panel.title in texts and panel.ylabel in texts
    assert texts.count("optimizer step") == len(panels(history))
    assert len(numbers) >= 6 * len(panels(history))  # at least 3 ticks on each axis of each panel
    points = sum(len(points) for panel in panels(history) for points in panel.series.values())
    assert sum(name == "ellipse" for name, _, _ in calls) == points  # one marker each, also for a single point
    assert ("train" in texts and "eval" in texts) == (len(history) > 2)  # the legend, where two curves share a panel


@pytest.mark.parametrize("history", [trainer_log(), ONE_POINT])
def test_the_matplotlib_figure_has_labelled_axes_ticks_lines_and_markers(history, tmp_path):
    pytest.importorskip("matplotlib")
    drawn = figure(panels(history))
    axes = drawn.get_axes()
    assert [axis.get_title() for axis in axes] == [panel.title for panel in panels(history)]
    for axis, panel in zip(axes, panels(history), strict=True):
        assert axis.get_xlabel() == "optimizer step" and axis.get_ylabel() == panel.ylabel
        assert len(axis.get_xticks()) >= 3 and len(axis.get_yticks()) >= 3
        lines = {line.get_label(): line for line in axis.get_lines()}
        assert set(lines) == set(panel.series)
        for label, line in lines.items():
            assert list(line.get_xdata()) == [step for step, _ in panel.series[label]]
            assert line.get_marker() == "o"
    drawn.savefig(tmp_path / "curves.png")
