"""Figures: per-class accuracy ordered by training frequency."""

import numpy as np
import pytest

from tgt_keras.apps import plots

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
