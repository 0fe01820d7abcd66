"""Seq2SeqGenerator (a keras-hub BART over the shared vocabulary) and the offline text generator."""

import json

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from tgt_keras.modalities.text.vocabulary import SPECIAL_TOKENS, Vocabulary
from tgt_keras.offline import text_generator
from tgt_keras.teachers.seq2seq_generator import (
    Seq2SeqGenerator,
    bart_decoder_logits,
    bart_encode,
)

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too

WORDS = ("a the film movie is was good bad great dull witty long short plot actors fun "
         "story slow funny sad cast score ending script acting").split()
VOCABULARY = Vocabulary(list(SPECIAL_TOKENS) + WORDS)  # 30 tokens
LENGTH = 8
SENTENCES = ["the film is good", "a dull plot", "witty script", "the cast was great",
             "a long slow movie", "funny story", "bad ending", "the score is sad"]


class WhitespaceTokenizer:
    """The tokenizer interface the offline trainer uses, without tensorflow-text."""

    def __init__(self, vocabulary, sequence_length):
        self.vocabulary = vocabulary
        self.sequence_length = sequence_length

    def __call__(self, texts):
        vocab = self.vocabulary
        ids = np.full((len(texts), self.sequence_length), vocab.pad_id, np.int32)
        for row, text in enumerate(texts):
            words = [vocab.token_to_id(w) for w in text.split()][: self.sequence_length - 2]
            ids[row, : len(words) + 2] = [vocab.cls_id, *words, vocab.sep_id]
        return ids


TOKENIZER = WhitespaceTokenizer(VOCABULARY, LENGTH)


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


@pytest.fixture(scope="module")
def preset_dir(tmp_path_factory):
    """A tiny random BART (hidden 8, 1 + 1 layers) saved as a local keras-hub preset."""
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.BartBackbone(
        vocabulary_size=VOCABULARY.size, num_layers=1, num_heads=2, hidden_dim=8,
        intermediate_dim=16, dropout=0.0, max_sequence_length=LENGTH)
    # Larger random weights than BART's init, so decoded rows vary (not one repeated token).
    rng = np.random.default_rng(1)
    for weight in backbone.weights:
        if "norm" not in weight.path:
            weight.assign(rng.normal(0.0, 0.7, weight.shape).astype("float32"))
    directory = tmp_path_factory.mktemp("bart") / "preset"
    backbone.save_to_preset(str(directory))
    return str(directory)


class TeacherForcedBart(keras.Model):
    """BART's autoregressive training: the decoder reads `[SEP]` then the row, shifted."""

    def __init__(self, backbone, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone

    def call(self, ids, training=False):
        latents = bart_encode(self.backbone, ids, training=training)
        start = tf.fill([tf.shape(ids)[0], 1], VOCABULARY.sep_id)
        decoder_ids = tf.concat([start, ids[:, :-1]], axis=1)
        return bart_decoder_logits(self.backbone, latents, decoder_ids, causal=True,
                                   training=training)


@pytest.fixture(scope="module")
def greedy_preset_dir(tmp_path_factory):
    """A tiny BART trained autoregressively to reconstruct `SENTENCES`, saved as a preset."""
    keras.utils.set_random_seed(2)
    backbone = keras_hub.models.BartBackbone(
        vocabulary_size=VOCABULARY.size, num_layers=1, num_heads=2, hidden_dim=16,
        intermediate_dim=32, dropout=0.0, max_sequence_length=LENGTH)
    model = TeacherForcedBart(backbone)
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=False)
    ids = np.tile(TOKENIZER(SENTENCES), (150, 1))  # 150 steps in one epoch
    model.fit(ids, ids, batch_size=len(SENTENCES), epochs=1, shuffle=False, verbose=0)
    directory = tmp_path_factory.mktemp("bart_greedy") / "preset"
    backbone.save_to_preset(str(directory))
    return str(directory)


def _generator(preset_dir, **kwargs):
    return Seq2SeqGenerator.from_preset(preset_dir, VOCABULARY, LENGTH, **kwargs)


def _ids():
    return TOKENIZER(SENTENCES[:4])


def test_shapes_and_parallel_soft_tokens(preset_dir):
    gen = _generator(preset_dir)
    assert gen.latent_shape == (LENGTH, 8) and gen.latent_dim is None
    assert gen.modality == "text"
    z = gen.encode(_ids())
    assert tuple(z.shape) == (4, LENGTH, 8) and z.dtype == tf.float32
    ids = gen.decode(z)
    assert tuple(ids.shape) == (4, LENGTH) and ids.dtype == tf.int32
    soft, soft_ids = gen.decode_soft(z)
    assert tuple(soft.shape) == (4, LENGTH, VOCABULARY.size) and soft.dtype == tf.float32
    np.testing.assert_allclose(np.sum(soft, -1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(np.argmax(soft, -1), ids)
    np.testing.assert_array_equal(soft_ids, ids)


def test_encode_is_the_backbone_encoder_and_accepts_soft_tokens(preset_dir):
    gen = _generator(preset_dir)
    ids = _ids()
    ones = np.ones_like(ids)
    out = gen.backbone({"encoder_token_ids": ids, "encoder_padding_mask": ones,
                        "decoder_token_ids": ids, "decoder_padding_mask": ones})
    np.testing.assert_allclose(gen.encode(ids), out["encoder_sequence_output"], atol=1e-6)
    one_hot = tf.one_hot(ids, VOCABULARY.size)
    np.testing.assert_allclose(gen.encode(one_hot), gen.encode(ids), atol=1e-5)
    with pytest.raises(ValueError, match=r"sequence_length=8"):
        gen.encode(np.zeros((2, LENGTH + 1), "int32"))


def test_greedy_decode_reconstructs_and_soft_argmax_is_the_greedy_path(greedy_preset_dir):
    gen = _generator(greedy_preset_dir, decoding="greedy", start_id=VOCABULARY.sep_id)
    real = TOKENIZER(SENTENCES)
    np.testing.assert_array_equal(gen.decode(gen.encode(real)), real)
    z = gen.encode(_ids()) + tf.random.normal((4, LENGTH, 16), stddev=0.5, seed=0)
    ids = gen.decode(z)
    soft, soft_ids = gen.decode_soft(z)
    np.testing.assert_array_equal(soft_ids, ids)
    np.testing.assert_array_equal(np.argmax(soft, -1), ids)
    np.testing.assert_allclose(np.sum(soft, -1), 1.0, atol=1e-5)
    ids = np.asarray(ids)
    # After a row's first [SEP] the row is padding.
    for row in ids:
        ends = np.flatnonzero(row == VOCABULARY.sep_id)
        if ends.size:
            assert (row[ends[0] + 1:] == VOCABULARY.pad_id).all()
    # The teacher-forced pass is the backbone's own causal decoder.
    decoder_ids = np.concatenate([np.full((4, 1), VOCABULARY.sep_id), ids[:, :-1]], 1)
    out = gen.backbone({"encoder_token_ids": _ids(), "encoder_padding_mask": np.ones_like(ids),
                        "decoder_token_ids": decoder_ids.astype("int32"),
                        "decoder_padding_mask": np.ones_like(ids)})
    z_real = gen.encode(_ids())
    np.testing.assert_allclose(
        gen.logits(z_real, decoder_ids.astype("int32")),
        gen.backbone.token_embedding(out["decoder_sequence_output"], reverse=True), atol=1e-5)


@pytest.mark.parametrize("decoding", ["parallel", "greedy"])
def test_gradient_of_soft_tokens_reaches_the_latents(preset_dir, decoding):
    gen = _generator(preset_dir, decoding=decoding)
    z = tf.Variable(gen.encode(_ids()))
    weights = tf.random.normal((VOCABULARY.size,), seed=1)
    with tf.GradientTape() as tape:
        soft, _ = gen.decode_soft(z)
        value = tf.reduce_sum(soft * weights)
    grad = tape.gradient(value, z).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 0


def test_temperature_sharpens_without_changing_ids(preset_dir):
    z = _generator(preset_dir).encode(_ids())
    peaks, ids = [], []
    for temperature in (2.0, 1.0, 0.25):
        soft, hard = _generator(preset_dir, soft_temperature=temperature).decode_soft(z)
        peaks.append(float(tf.reduce_mean(tf.reduce_max(soft, -1))))
        ids.append(np.asarray(hard))
    assert peaks[0] < peaks[1] < peaks[2]
    np.testing.assert_array_equal(ids[0], ids[2])


def test_backbone_is_frozen_and_tracked(preset_dir):
    gen = _generator(preset_dir)
    assert gen.encoder is gen.backbone and isinstance(gen.encoder, keras.Model)
    assert gen.decoder is None
    assert not gen.backbone.trainable and gen.backbone.trainable_weights == []
    before = [w.numpy().copy() for w in gen.backbone.weights]
    z = tf.Variable(gen.encode(_ids()))
    optimizer = keras.optimizers.SGD(1.0)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(gen.decode_soft(z)[0][..., 5])
    optimizer.apply_gradients([(tape.gradient(loss, z), z)])
    for old, new in zip(before, gen.backbone.weights, strict=True):
        np.testing.assert_array_equal(old, new.numpy())


def test_config_round_trip(preset_dir):
    gen = _generator(preset_dir, decoding="greedy", soft_temperature=0.5)
    config = gen.get_config()
    json.dumps(config)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(gen))
    assert isinstance(clone, Seq2SeqGenerator)
    assert clone.get_config() == config
    assert clone.vocabulary == VOCABULARY and clone.decoding == "greedy"
    assert clone.soft_temperature == 0.5 and clone.start_id == VOCABULARY.sep_id


def test_vocabulary_size_mismatch_names_both(preset_dir):
    bigger = Vocabulary(list(SPECIAL_TOKENS) + WORDS + ["extra"])
    with pytest.raises(ValueError, match=r"BART backbone's vocabulary \(30 tokens.*shared "
                                         r"vocabulary \(31 tokens, fingerprint"):
        Seq2SeqGenerator.from_preset(preset_dir, bigger, LENGTH)


def test_bad_arguments(preset_dir):
    backbone = _generator(preset_dir).backbone
    with pytest.raises(ValueError, match="`decoding` must be one of"):
        Seq2SeqGenerator(backbone, VOCABULARY, LENGTH, decoding="beam")
    with pytest.raises(ValueError, match="`soft_temperature` must be > 0"):
        Seq2SeqGenerator(backbone, VOCABULARY, LENGTH, soft_temperature=0.0)
    with pytest.raises(ValueError, match="max_sequence_length=8"):
        Seq2SeqGenerator(backbone, VOCABULARY, LENGTH + 1)
    with pytest.raises(TypeError, match="BartBackbone"):
        Seq2SeqGenerator(keras.Sequential(), VOCABULARY, LENGTH)
    with pytest.raises(TypeError, match="Vocabulary"):
        Seq2SeqGenerator(backbone, list(VOCABULARY.tokens), LENGTH)
    with pytest.raises(ValueError, match=r"latent_shape=\(8, 8\)"):
        _generator(preset_dir).decode(tf.zeros((2, LENGTH, 4)))


@pytest.mark.parametrize("decoding,jit_compile", [("parallel", True), ("greedy", False)])
def test_decode_soft_traces_in_a_tf_function(preset_dir, decoding, jit_compile):
    # Greedy decoding compiles with XLA too (a while loop with fixed shapes), in ~7 s.
    gen = _generator(preset_dir, decoding=decoding)
    z = gen.encode(_ids())
    soft, ids = tf.function(gen.decode_soft, jit_compile=jit_compile)(z)
    eager_soft, eager_ids = gen.decode_soft(z)
    np.testing.assert_array_equal(ids, eager_ids)
    np.testing.assert_allclose(soft, eager_soft, atol=1e-5)
    np.testing.assert_array_equal(tf.function(gen.decode, jit_compile=jit_compile)(z),
                                  eager_ids)


def test_corrupt_touches_only_words():
    ids = TOKENIZER(["the film is good witty", "a dull plot"])
    keras.utils.set_random_seed(0)
    noisy = text_generator.corrupt(tf.constant(np.repeat(ids, 50, 0)), VOCABULARY, 0.5, 0.5)
    noisy = np.asarray(noisy)
    assert (noisy[:, 0] == VOCABULARY.cls_id).all()
    assert ((noisy == VOCABULARY.sep_id).sum(1) == 1).all()
    assert (noisy == VOCABULARY.mask_id).any()
    lengths = (noisy != VOCABULARY.pad_id).sum(1)
    assert lengths.min() < (ids != VOCABULARY.pad_id).sum(1).max()  # some tokens dropped
    # A row closes up behind a dropped token: no [PAD] before [SEP].
    for row in noisy:
        assert (row[: np.flatnonzero(row == VOCABULARY.sep_id)[0]] != VOCABULARY.pad_id).all()


TINY_RECIPE = {
    **text_generator.TEXT_GENERATOR_RECIPE,
    "backbone": {"num_layers": 1, "num_heads": 2, "hidden_dim": 16, "intermediate_dim": 32,
                 "dropout": 0.0},
    "epochs": 2, "batch_size": 8, "jit_compile": False,
}


def test_offline_text_generator_trains_once_then_hits_the_cache(tmp_path, monkeypatch):
    calls = []
    train = text_generator.train_backbone
    monkeypatch.setattr(text_generator, "train_backbone",
                        lambda *args, **kwargs: calls.append(1) or train(*args, **kwargs))
    texts = [f"{s} {w}" for s in SENTENCES for w in ("film", "movie", "plot", "story")][:30]
    first = text_generator.offline_text_generator(
        texts, TOKENIZER, held_out_texts=SENTENCES[:3], cache=tmp_path, verbose=0,
        recipe=TINY_RECIPE)
    assert calls == [1]
    assert first.directory.parent == tmp_path / "teachers"
    assert first.directory.name.startswith("text-generator-")
    assert (first.directory / "preset" / "config.json").is_file()
    for key in ("train_seconds", "token_accuracy", "token_accuracy_all_positions",
                "exact_match", "measured_on", "num_train_texts", "fingerprint", "recipe"):
        assert key in first.report
    assert first.report["num_train_texts"] == 30 and first.report["num_measured_texts"] == 3
    assert 0.0 <= first.report["token_accuracy"] <= 1.0
    assert isinstance(first.generator, Seq2SeqGenerator)
    assert first.generator.decoding == "parallel"

    second = text_generator.offline_text_generator(
        texts, TOKENIZER, held_out_texts=SENTENCES[:3], cache=tmp_path, verbose=0,
        recipe=TINY_RECIPE)
    assert calls == [1] and second.directory == first.directory
    assert second.report == first.report
    z = first.generator.encode(_ids())
    np.testing.assert_array_equal(second.generator.decode(z), first.generator.decode(z))
    # Other held-out texts: the cached generator, measured again.
    third = text_generator.offline_text_generator(
        texts, TOKENIZER, cache=tmp_path, verbose=0, recipe=TINY_RECIPE)
    assert calls == [1] and third.directory == first.directory
    assert third.report["measured_on"].startswith("training texts")
    assert third.report["num_measured_texts"] == 30
    # Other training texts, recipe, vocabulary or length: another cache entry.
    key = text_generator.fingerprint(TINY_RECIPE, VOCABULARY, LENGTH, texts)
    assert first.directory.name == f"text-generator-{key}"
    others = [
        text_generator.fingerprint(TINY_RECIPE, VOCABULARY, LENGTH, texts[:-1]),
        text_generator.fingerprint({**TINY_RECIPE, "epochs": 3}, VOCABULARY, LENGTH, texts),
        text_generator.fingerprint(TINY_RECIPE, Vocabulary(VOCABULARY.tokens[::-1]), LENGTH,
                                   texts),
        text_generator.fingerprint(TINY_RECIPE, VOCABULARY, LENGTH + 1, texts),
    ]
    assert len({key, *others}) == 5


@pytest.mark.slow
def test_parallel_denoiser_learns_to_reconstruct():
    recipe = {**TINY_RECIPE, "backbone": {**TINY_RECIPE["backbone"], "hidden_dim": 32},
              "corrupt_rate": 0.0, "epochs": 1, "learning_rate": 1e-2, "weight_decay": 0.0}
    ids = TOKENIZER(SENTENCES)
    backbone, _ = text_generator.train_backbone(np.tile(ids, (300, 1)), VOCABULARY, recipe,
                                                verbose=0)  # 300 steps
    gen = Seq2SeqGenerator(backbone, VOCABULARY, LENGTH)
    report = text_generator.reconstruction_report(gen, ids)
    assert report["exact_match"] == 1.0, report
