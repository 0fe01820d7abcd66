"""TGTDistiller on text: the same core through the text modality (tiny BART, BERT and CNN)."""

import re

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from tgt_keras import TGTDistiller
from tgt_keras.core.modality import get_modality
from tgt_keras.modalities import TextModality
from tgt_keras.modalities.text import TextCNN, Vocabulary
from tgt_keras.teachers.seq2seq_generator import Seq2SeqGenerator
from tgt_keras.teachers.text_labeler import SoftTokenClassifier, TextLabeler

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too

WORDS = ["good", "bad", "film", "great", "awful", "plot", "fun", "dull", "cast", "witty",
         "the", "a", "is", "not", "very", "and"]
TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
LENGTH = 8
HIDDEN = 8


def vocabulary(tokens=TOKENS):
    return Vocabulary(tokens)


def generator(vocab=None, length=LENGTH):
    vocab = vocab or vocabulary()
    backbone = keras_hub.models.BartBackbone(
        vocabulary_size=vocab.size, num_layers=1, num_heads=2, hidden_dim=HIDDEN,
        intermediate_dim=16, dropout=0.0, max_sequence_length=16)
    return Seq2SeqGenerator(backbone, vocab, length)


def labeler(vocab=None, length=LENGTH):
    vocab = vocab or vocabulary()
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=vocab.base_size, num_layers=1, num_heads=2, hidden_dim=HIDDEN,
        intermediate_dim=16, dropout=0.0, max_sequence_length=16)
    classifier = SoftTokenClassifier(backbone, num_classes=2, vocabulary=vocab, dropout=0.0)
    return TextLabeler(classifier, vocab, length)


def student(vocab=None, length=LENGTH):
    vocab = vocab or vocabulary()
    return TextCNN(vocab.size, length, 2, embedding_dim=8, filters=4, kernel_sizes=(2, 3),
                   dropout=0.0)


def ids(n=8, seed=0, length=LENGTH):
    """Rows `[CLS] w.. [SEP] [PAD]..` with 2 to length-2 words."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n, length), np.int32)
    for i in range(n):
        k = rng.integers(2, length - 1)
        rows[i, 0] = 2
        rows[i, 1:k + 1] = rng.integers(5, len(TOKENS), k)
        rows[i, k + 1] = 3
    return rows


def distiller(**kwargs):
    vocab = vocabulary()
    kwargs.setdefault("sigma", 0.5)
    kwargs.setdefault("step_size", 2.0)
    kwargs.setdefault("num_steps", 1)
    kwargs.setdefault("seed", 0)
    return TGTDistiller(student(vocab), labeler(vocab), generator(vocab), **kwargs)


def test_the_generator_picks_the_text_modality():
    d = distiller()
    assert isinstance(d.modality, TextModality)
    assert d.modality.sequence_length == LENGTH
    assert d.modality.vocabulary == vocabulary()
    assert d.input_format is None
    assert get_modality("text").example_key == "token_ids"


def test_a_text_fit_trains_the_student_and_not_the_teachers():
    d = distiller(real_distillation_weight=0.5)
    d.compile(optimizer=keras.optimizers.Adam(1e-2))
    teachers = [w.numpy().copy() for w in d.labeler.model.weights + d.generator.backbone.weights]
    before = [w.numpy().copy() for w in d.student.weights]
    x, y = ids(16), np.arange(16) % 2
    history = d.fit(x, y, batch_size=8, epochs=1, verbose=0).history
    for name in ("loss", "synthetic_loss", "synthetic_changed", "synthetic_label_flips"):
        assert np.isfinite(history[name][0]), name
    assert 0.0 <= history["synthetic_changed"][0] <= 1.0
    assert history["synthetic_loss"][0] > 0
    after_teachers = d.labeler.model.weights + d.generator.backbone.weights
    for old, new in zip(teachers, after_teachers, strict=True):
        np.testing.assert_array_equal(old, new.numpy())
    assert any(not np.array_equal(old, new.numpy())
               for old, new in zip(before, d.student.weights, strict=True))


class RecordingLabeler(TextLabeler):
    """Records the dtype of every batch the labeler is asked to label (at trace time)."""

    seen = []

    def _raw(self, x):
        RecordingLabeler.seen.append(tf.convert_to_tensor(x).dtype)
        return super()._raw(x)


@pytest.mark.parametrize("hold", [False, True])
def test_holding_the_teacher_output_keeps_soft_tokens_away_from_the_labeler(hold):
    vocab = vocabulary()
    plain = labeler(vocab)
    recording = RecordingLabeler(plain.model, vocab, LENGTH)
    d = TGTDistiller(student(vocab), recording, generator(vocab), sigma=0.5, step_size=1.0,
                     num_steps=2, hold_teacher_output=hold, seed=0)
    RecordingLabeler.seen = []
    result = d.explore_batch(tf.constant(ids(4)), seed=1)
    assert result.examples.dtype == tf.int32
    floats = [dtype for dtype in RecordingLabeler.seen if dtype.is_floating]
    # Held: the start point and the final batch, both hard ids. Differentiated: one soft-token
    # call per ascent step, then the final ids.
    assert len(floats) == (0 if hold else 2)
    assert len(RecordingLabeler.seen) == (2 if hold else 3)


def test_exploration_metrics_are_hand_checkable():
    modality = TextModality(vocabulary(), LENGTH)
    source = tf.constant([[2, 5, 3, 0], [2, 6, 3, 0], [2, 7, 3, 0]])
    explored = tf.constant([[2, 5, 3, 0], [2, 8, 3, 0], [2, 7, 7, 3]])
    teacher = tf.constant([[2.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    y = tf.constant([0, 0, 1])
    metrics = modality.exploration_metrics(source, explored, teacher, y)
    np.testing.assert_array_equal(metrics["synthetic_changed"].numpy(), [0, 1, 1])
    np.testing.assert_array_equal(metrics["synthetic_label_flips"].numpy(), [0, 1, 0])


def test_training_on_the_precomputed_cache_equals_training_on_ids():
    x, y = ids(16), np.arange(16) % 2
    histories = []
    for cached in (False, True):
        keras.utils.set_random_seed(0)
        d = distiller(real_distillation_weight=0.5)
        d.compile(optimizer=keras.optimizers.SGD(0.1))
        inputs = d.precompute(x) if cached else x
        if cached:
            assert sorted(inputs) == ["latents", "teacher_logits", "token_ids"]
            assert inputs["latents"].shape == (16, LENGTH, HIDDEN)
            assert inputs["token_ids"].dtype == np.int32
        histories.append(d.fit(inputs, y, batch_size=8, epochs=2, shuffle=False,
                               verbose=0).history)
    for name in ("loss", "synthetic_loss", "real_distillation_loss"):
        np.testing.assert_allclose(histories[0][name], histories[1][name], rtol=1e-4,
                                   err_msg=name)


@pytest.mark.parametrize("x, error, message", [
    (ids(8).astype("float32"), TypeError, "`x` must hold integer token ids"),
    (ids(8, length=6), ValueError, "`x` must be token ids of shape (batch, 8)"),
    (np.full((8, LENGTH), 99, np.int32), ValueError,
     f"`x` must hold token ids in [0, {len(TOKENS)})"),
    (np.tile([[2, 3] + [0] * (LENGTH - 2)], (8, 1)).astype(np.int32), ValueError,
     "`x` must hold non-empty texts: row 0 has only special tokens"),
])
def test_bad_token_ids_are_named(x, error, message):
    d = distiller()
    d.compile(optimizer="sgd")
    with pytest.raises(error, match=re.escape(message)):
        d.fit(x, np.zeros(8, np.int32), batch_size=4, epochs=1, verbose=0)


def test_a_vocabulary_mismatch_names_both_models():
    vocab = vocabulary()
    other = vocabulary([*TOKENS[:-1], "boring"])
    with pytest.raises(ValueError, match=re.escape("The labeler's vocabulary")) as info:
        TGTDistiller(student(vocab), labeler(other), generator(vocab))
    assert "generator's" in str(info.value) and "'boring'" in str(info.value)


def test_a_sequence_length_mismatch_is_named():
    vocab = vocabulary()
    with pytest.raises(ValueError, match=re.escape(
            "The student's sequence_length must match the examples' (8). Received: "
            "student.sequence_length=6")):
        TGTDistiller(student(vocab, length=6), labeler(vocab), generator(vocab))


def test_get_config_round_trips_the_text_modality():
    d = distiller(hold_teacher_output=True)
    config = d.get_config()
    assert config["modality"]["name"] == "text"
    again = TGTDistiller.from_config(config)
    assert again.modality.vocabulary == d.modality.vocabulary
    assert again.modality.sequence_length == LENGTH
    assert again.hold_teacher_output is True


def test_a_saved_text_distiller_reloads_with_its_teachers(tmp_path):
    d = distiller()
    d.compile(optimizer="sgd")
    d.save(tmp_path / "distiller.keras")
    again = keras.saving.load_model(tmp_path / "distiller.keras")
    x = tf.constant(ids(4))
    np.testing.assert_allclose(again.labeler.logits(x), d.labeler.logits(x), atol=1e-6)
    np.testing.assert_array_equal(again.generator.decode(again.generator.encode(x)),
                                  d.generator.decode(d.generator.encode(x)))
    np.testing.assert_allclose(again.student(x), d.student(x), atol=1e-6)


def test_the_text_step_runs_under_mirrored_strategy():
    strategy = tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"])
    with strategy.scope():
        d = distiller(real_distillation_weight=0.5)
        d.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y = ids(16), np.arange(16) % 2
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    history = d.fit(dataset, epochs=1, verbose=0).history
    assert np.isfinite(history["loss"][0])
    assert 0.0 <= history["synthetic_label_flips"][0] <= 1.0


def test_text_labels_out_of_range_are_named():
    d = distiller()
    d.compile(optimizer="sgd")
    with pytest.raises(ValueError, match=re.escape(
            "`y` must hold class indices in [0, 2) (the labeler's num_classes). "
            "Received: labels in [0, 5]")):
        d.fit(ids(8), np.array([0, 1, 5, 0, 1, 0, 1, 0]), batch_size=4, epochs=1, verbose=0)
