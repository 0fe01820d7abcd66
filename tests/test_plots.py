"""Figures: per-class accuracy ordered by training frequency."""

import numpy as np
import pytest

from tgt_keras.reporting import plots
from tgt_keras.tuning import plots as tuning_plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_classes_by_frequency_orders_most_frequent_first_ties_by_index():
    assert plots.classes_by_frequency([5, 50, 5, 20, 50]).tolist() == [1, 4, 3, 0, 2]


def test_classes_by_frequency_rejects_non_1d_counts():
    with pytest.raises(ValueError, match=r"1-D sequence of per-class counts"):
        plots.classes_by_frequency([[1, 2], [3, 4]])


def test_per_class_accuracy_plot_writes_a_png(tmp_path):
    counts = [500, 5, 120, 30]
    accuracy = {"one-hot": np.array([0.9, 0.1, 0.7, 0.4]),
                "TGT": np.array([0.9, 0.3, 0.75, 0.5])}
    path = tmp_path / "per_class.png"
    png = plots.per_class_accuracy_plot(accuracy, counts, path, class_names=list("abcd"))
    assert png.startswith(PNG_SIGNATURE)
    assert path.read_bytes() == png


def test_per_class_accuracy_plot_accepts_one_array(tmp_path):
    png = plots.per_class_accuracy_plot(np.array([0.5, 0.6]), [10, 20], tmp_path / "p.png")
    assert png.startswith(PNG_SIGNATURE)


def test_per_class_accuracy_plot_orders_the_ticks_by_count(tmp_path, monkeypatch):
    ticks = []
    plt = plots.pyplot()
    original = plt.Axes.set_xticklabels

    def record(self, labels, *args, **kwargs):
        ticks.append(list(labels))
        return original(self, labels, *args, **kwargs)

    monkeypatch.setattr(plt.Axes, "set_xticklabels", record)
    plots.per_class_accuracy_plot({"m": [0.1, 0.2, 0.3]}, [5, 50, 20], tmp_path / "p.png",
                                  class_names=["few", "many", "medium"])
    assert ticks == [["many", "medium", "few"]]


@pytest.mark.parametrize(
    ("accuracy", "names", "match"),
    [
        ({"m": [0.1, 0.2]}, None, r"one entry per class \(3.*'m' with shape \(2,\)"),
        ({}, None, r"at least one method"),
        ({"m": [0.1, 0.2, 0.3]}, ["a"], r"`class_names` must have one name per class \(3\)"),
    ],
)
def test_per_class_accuracy_plot_validates(accuracy, names, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        plots.per_class_accuracy_plot(accuracy, [1, 2, 3], tmp_path / "p.png", class_names=names)


def test_objective_vs_knobs_plot_draws_every_tuned_knob(tmp_path, monkeypatch):
    from tgt_keras.tuning import SearchSpace

    space = SearchSpace({"sigma": {"min": 0.1, "max": 1.5, "sampling": "log"},
                         "num_steps": {"min": 1, "max": 5}, "temperature": [1.0, 4.0],
                         "learning_rate": 0.001})
    rows = [
        {"trial": "0", "val_balanced_accuracy": 0.5, "sigma": 0.2, "num_steps": 2,
         "temperature": 1.0},
        {"trial": "1", "val_balanced_accuracy": 0.7, "sigma": 1.0, "num_steps": 4,
         "temperature": 4.0},
        {"trial": "2", "val_balanced_accuracy": None, "sigma": 0.5, "num_steps": 1,
         "temperature": 1.0},  # not completed: not drawn
    ]
    drawn = []
    original = plots.save_figure

    def capture(figure, path):
        drawn.append([(ax.get_xlabel(), ax.get_xscale(), ax.get_xlim(),
                       [tuple(c.get_offsets()[0]) for c in ax.collections])
                      for ax in figure.axes if ax.axison])
        return original(figure, path)

    monkeypatch.setattr(tuning_plots, "save_figure", capture)
    png = tuning_plots.objective_vs_knobs_plot(rows, space, tmp_path / "o.png", title="t")
    assert png[:4] == b"\x89PNG" and (tmp_path / "o.png").read_bytes() == png
    (sigma, steps, temperature), = drawn
    assert sigma[0] == "sigma [0.1, 1.5] log" and sigma[1] == "log"
    assert sigma[2][0] < 0.1 and sigma[2][1] > 1.5  # the whole searched range is shown
    assert sigma[3] == [(0.2, 0.5), (1.0, 0.7)]  # trials, then the best one (a star)
    assert steps[0] == "num_steps [1, 5]" and steps[1] == "linear"
    assert temperature[0] == "temperature {1, 4}"
    assert temperature[3][0] == (0.0, 0.5)  # choices sit at their index

    space = SearchSpace({"sigma": 0.5})  # nothing tuned: one empty panel, no error
    png = tuning_plots.objective_vs_knobs_plot(rows, space, tmp_path / "n.png", title="t")
    assert png[:4] == b"\x89PNG"
