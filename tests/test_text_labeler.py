"""SoftTokenClassifier / TextLabeler over a tiny BertBackbone preset; the offline text teacher."""

import json

import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from tgt_keras.modalities.text.tokenizer import WordPieceTokenizer
from tgt_keras.modalities.text.vocabulary import SPECIAL_TOKENS, Vocabulary
from tgt_keras.offline import text_labeler as offline_text
from tgt_keras.teachers.labeler import Labeler
from tgt_keras.teachers.text_labeler import SoftTokenClassifier, TextLabeler

# Keras's h5 weight writer (save_to_preset, .keras) calls np.array on TF variables, which NumPy 2
# flags on every variable; it is Keras's, not ours.
pytestmark = pytest.mark.filterwarnings(
    "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")

WORDS = ("the", "a", "film", "movie", "is", "was", "good", "great", "fun", "bad", "dull",
         "boring", "plot", "acting", "very", "not", "and", "##s", "##ly")
BASE_TOKENS = (*SPECIAL_TOKENS, *WORDS)
# A sub-vocabulary in another order than its base, so `base_ids` is not the identity.
SUB_TOKENS = (*SPECIAL_TOKENS, "good", "film", "bad", "the", "dull", "great", "movie", "fun",
              "boring", "is", "##s")
LENGTH = 8
NUM_CLASSES = 3


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    """A tiny random BertBackbone over the base vocabulary, saved as a keras-hub preset."""
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(BASE_TOKENS), num_layers=2, num_heads=2, hidden_dim=8,
        intermediate_dim=16, max_sequence_length=16, dropout=0.1,
    )
    directory = tmp_path_factory.mktemp("tiny_bert")
    backbone.save_to_preset(str(directory))
    return str(directory)


@pytest.fixture
def vocabulary():
    return Vocabulary(SUB_TOKENS, BASE_TOKENS)


@pytest.fixture
def tokenizer(vocabulary):
    return WordPieceTokenizer(vocabulary, LENGTH)


@pytest.fixture
def ids(tokenizer):
    return tokenizer(["the film is good", "dull movie", "great fun films and the plot"])


@pytest.fixture
def classifier(preset, vocabulary):
    backbone = keras_hub.models.BertBackbone.from_preset(preset)
    return SoftTokenClassifier(backbone, NUM_CLASSES, vocabulary, sequence_length=LENGTH)


def _backbone_mean_pool(backbone, vocabulary, ids):
    mask = (ids != vocabulary.pad_id).astype("int32")
    out = backbone({"token_ids": vocabulary.base_ids[ids], "segment_ids": np.zeros_like(ids),
                    "padding_mask": mask})
    weights = mask[..., None].astype("float32")
    pooled = (np.asarray(out["sequence_output"]) * weights).sum(1) / weights.sum(1)
    return pooled, np.asarray(out["pooled_output"])


def test_ids_and_one_hot_soft_tokens_give_the_same_logits(classifier, vocabulary, ids):
    assert ids[0, 0] == vocabulary.cls_id and (ids == vocabulary.pad_id).any()
    soft = keras.ops.one_hot(ids, vocabulary.size)
    np.testing.assert_array_equal(classifier(ids), classifier(soft))
    np.testing.assert_array_equal(classifier.features(ids), classifier.features(soft))


def test_a_full_vocabulary_embeds_ids_directly(preset):
    vocabulary = Vocabulary(BASE_TOKENS)
    backbone = keras_hub.models.BertBackbone.from_preset(preset)
    classifier = SoftTokenClassifier(backbone, 2, vocabulary)
    ids = WordPieceTokenizer(vocabulary, LENGTH)(["the plot was very dull", "not bad"])
    np.testing.assert_array_equal(classifier(ids),
                                  classifier(keras.ops.one_hot(ids, vocabulary.size)))
    expected, _ = _backbone_mean_pool(backbone, vocabulary, ids)
    np.testing.assert_allclose(classifier.features(ids), expected, rtol=0, atol=1e-6)


def test_pooled_features_equal_the_backbones_mean_pooled_output(classifier, vocabulary, ids):
    expected, _ = _backbone_mean_pool(classifier.backbone, vocabulary, ids)
    np.testing.assert_allclose(classifier.features(ids), expected, rtol=0, atol=1e-6)
    head = classifier.head
    logits = expected @ np.asarray(head.kernel) + np.asarray(head.bias)
    np.testing.assert_allclose(classifier(ids), logits, rtol=1e-5, atol=1e-6)


def test_cls_pooling_is_the_backbones_pooled_output(preset, vocabulary, ids):
    backbone = keras_hub.models.BertBackbone.from_preset(preset)
    classifier = SoftTokenClassifier(backbone, 2, vocabulary, pooling="cls")
    _, expected = _backbone_mean_pool(backbone, vocabulary, ids)
    np.testing.assert_allclose(classifier.features(ids), expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(classifier(ids),
                                  classifier(keras.ops.one_hot(ids, vocabulary.size)))


def test_text_labeler_logits_and_gradient_wrt_soft_tokens(classifier, vocabulary, ids):
    labeler = TextLabeler(classifier, vocabulary, LENGTH)
    assert isinstance(labeler, Labeler)
    assert (labeler.num_classes, labeler.sequence_length, labeler.outputs) == (3, LENGTH, "logits")
    assert labeler.vocabulary == vocabulary and labeler.model is classifier
    logits = labeler.logits(ids)
    assert logits.dtype == tf.float32 and tuple(logits.shape) == (3, NUM_CLASSES)
    scores = tf.Variable(tf.one_hot(ids, vocabulary.size) * 4.0)
    with tf.GradientTape() as tape:
        soft = tf.nn.softmax(scores, axis=-1)
        loss = tf.reduce_sum(tf.nn.log_softmax(labeler.logits(soft))[:, 0])
    grad = tape.gradient(loss, scores)
    assert grad is not None and np.isfinite(grad.numpy()).all()
    assert np.abs(grad.numpy()).max() > 0


def test_text_labeler_is_frozen(classifier, vocabulary, ids):
    labeler = TextLabeler(classifier, vocabulary, LENGTH)
    assert labeler.model.trainable is False and not labeler.model.trainable_weights
    before = [w.copy() for w in classifier.get_weights()]
    student = keras.layers.Dense(NUM_CLASSES)
    student.build((None, LENGTH))
    optimizer = keras.optimizers.SGD(1.0)
    for _ in range(2):
        with tf.GradientTape() as tape:
            target = tf.nn.softmax(labeler.logits(ids))
            loss = keras.losses.categorical_crossentropy(
                target, student(tf.cast(ids, "float32")), from_logits=True)
        variables = student.trainable_variables + labeler.model.trainable_variables
        optimizer.apply(tape.gradient(loss, variables), variables)
    for old, new in zip(before, classifier.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_text_labeler_checks_its_inputs(classifier, vocabulary, ids):
    labeler = TextLabeler(classifier, vocabulary, LENGTH)
    with pytest.raises(ValueError, match="last dimension is 7"):
        labeler.logits(tf.zeros((2, LENGTH, 7)))
    with pytest.raises(ValueError, match="sequence_length=8"):
        labeler.logits(ids[:, :5])
    with pytest.raises(ValueError, match=r"must be in \[0, 16\)"):
        labeler.logits(np.full((1, LENGTH), 16, np.int32))
    with pytest.raises(ValueError, match="scores 3 classes. Received: num_classes=2"):
        TextLabeler(classifier, vocabulary, LENGTH, num_classes=2)
    with pytest.raises(ValueError, match="max_sequence_length \\(16\\)"):
        TextLabeler(classifier, vocabulary, 17)
    with pytest.raises(TypeError, match="must be a Keras model"):
        TextLabeler(lambda x: x, vocabulary, LENGTH)


def test_vocabulary_mismatch_names_both_vocabularies(classifier, vocabulary):
    other = Vocabulary(SUB_TOKENS[:-1], BASE_TOKENS)
    with pytest.raises(ValueError, match=(
        r"The classifier's vocabulary \(16 tokens.*fingerprint \w+\) differs "
        r"from the `vocabulary` argument's \(15 tokens")):
        TextLabeler(classifier, other, LENGTH)


def test_classifier_checks_the_backbone_and_the_vocabulary(preset, vocabulary):
    backbone = keras_hub.models.BertBackbone.from_preset(preset)
    with pytest.raises(ValueError, match="base has 16 tokens but the backbone embeds 24"):
        SoftTokenClassifier(backbone, 2, Vocabulary(SUB_TOKENS))
    with pytest.raises(ValueError, match="`num_classes` must be an int >= 2"):
        SoftTokenClassifier(backbone, 1, vocabulary)
    with pytest.raises(ValueError, match="`pooling` must be one of"):
        SoftTokenClassifier(backbone, 2, vocabulary, pooling="max")
    with pytest.raises(TypeError, match="must be a keras-hub `BertBackbone`"):
        SoftTokenClassifier("minilm", 2, vocabulary)
    dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="Missing: \\['token_embedding'"):
        SoftTokenClassifier(dense, 2, vocabulary)


def test_config_round_trip(classifier, vocabulary, ids):
    config = classifier.get_config()
    rebuilt = SoftTokenClassifier.from_config(json.loads(json.dumps(config)))
    assert rebuilt.get_config() == config
    assert rebuilt.vocabulary == vocabulary and rebuilt.sequence_length == LENGTH
    labeler = TextLabeler(classifier, vocabulary, LENGTH)
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(labeler)))
    restored = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored, TextLabeler)
    assert restored.get_config() == labeler.get_config()
    assert restored.model.trainable is False
    assert tuple(restored.logits(ids).shape) == (3, NUM_CLASSES)


def test_keras_save_and_load(classifier, vocabulary, ids, tmp_path):
    path = tmp_path / "classifier.keras"
    classifier.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, SoftTokenClassifier)
    np.testing.assert_array_equal(loaded(ids), classifier(ids))
    labeler = TextLabeler.load(path)
    assert labeler.vocabulary == vocabulary and labeler.sequence_length == LENGTH
    np.testing.assert_array_equal(labeler.logits(ids), classifier(ids))
    with pytest.raises(ValueError, match="differs from the `vocabulary` argument's"):
        TextLabeler.load(path, Vocabulary(SUB_TOKENS[:-1], BASE_TOKENS))


def test_from_preset_with_head_weights(preset, vocabulary, ids):
    kernel = np.arange(8 * NUM_CLASSES, dtype="float32").reshape(8, NUM_CLASSES) / 10
    bias = np.array([1.0, -1.0, 0.5], "float32")
    labeler = TextLabeler.from_preset(preset, vocabulary, NUM_CLASSES, LENGTH, [kernel, bias])
    features, _ = _backbone_mean_pool(labeler.model.backbone, vocabulary, ids)
    np.testing.assert_allclose(labeler.logits(ids), features @ kernel + bias, atol=1e-5)
    with pytest.raises(ValueError, match=r"`head_weights` must be \[kernel, bias\]"):
        TextLabeler.from_preset(preset, vocabulary, NUM_CLASSES, LENGTH, [kernel[:, :2], bias])


TRAIN = [
    ("good film", 1), ("great fun", 1), ("the film is great", 1), ("fun movie", 1),
    ("good movie", 1), ("great film", 1), ("the movie is good", 1), ("fun films", 1),
    ("good fun", 1), ("great movies", 1),
    ("bad film", 0), ("dull movie", 0), ("the film is boring", 0), ("boring movie", 0),
    ("bad movie", 0), ("dull film", 0), ("the movie is bad", 0), ("boring films", 0),
    ("dull and bad", 0), ("bad movies", 0),
]


def test_finetune_checks_its_arguments(preset, vocabulary, tokenizer):
    texts, labels = zip(*TRAIN, strict=True)
    with pytest.raises(ValueError, match="one integer label per text"):
        offline_text.finetune_minilm_classifier(texts, labels[:3], vocabulary, tokenizer,
                                                preset=preset)
    with pytest.raises(ValueError, match="differs from the tokenizer's"):
        offline_text.finetune_minilm_classifier(
            texts, labels, vocabulary, WordPieceTokenizer(Vocabulary(BASE_TOKENS), LENGTH),
            preset=preset)
    with pytest.raises(ValueError, match="`epochs` must be an int >= 1"):
        offline_text.finetune_minilm_classifier(texts, labels, vocabulary, tokenizer, epochs=0,
                                                preset=preset)


def test_offline_text_labeler_trains_once_then_hits_the_cache(
        preset, vocabulary, tokenizer, tmp_path, monkeypatch, capsys):
    calls, trained = [], []
    finetune = offline_text.finetune_minilm_classifier

    def counting(*args, **kwargs):
        calls.append(kwargs)
        classifier = finetune(*args, **kwargs)
        trained.append((type(classifier), classifier.num_classes, classifier.trainable))
        return classifier

    monkeypatch.setattr(offline_text, "finetune_minilm_classifier", counting)
    texts, labels = zip(*TRAIN, strict=True)
    recipe = {"preset": preset, "epochs": 2, "batch_size": 8, "learning_rate": 1e-3,
              "jit_compile": False}
    kwargs = dict(name="tiny", test_texts=texts[:6], test_labels=labels[:6], cache=tmp_path,
                  recipe=recipe, verbose=0)
    labeler, report = offline_text.offline_text_labeler(texts, labels, vocabulary, tokenizer,
                                                        **kwargs)
    assert len(calls) == 1 and calls[0]["preset"] == preset
    assert trained == [(SoftTokenClassifier, 2, True)]
    assert isinstance(labeler, TextLabeler) and labeler.model.trainable is False
    assert labeler.num_classes == 2 and labeler.sequence_length == LENGTH
    directory = tmp_path / "teachers" / f"tiny-{report['fingerprint']}"
    assert (directory / "labeler.keras").is_file()
    assert json.loads((directory / "report.json").read_text()) == report
    assert report["train_examples"] == 20 and report["train_seconds"] > 0
    assert report["vocabulary_fingerprint"] == vocabulary.fingerprint
    assert 0.0 <= report["test_accuracy"] <= 1.0 and report["test_examples"] == 6
    assert "Fine-tuning the offline teacher labeler" in capsys.readouterr().out

    again, cached = offline_text.offline_text_labeler(texts, labels, vocabulary, tokenizer,
                                                      **kwargs)
    assert len(calls) == 1
    assert cached == report
    np.testing.assert_array_equal(again.logits(tokenizer(texts)), labeler.logits(tokenizer(texts)))
    # Another vocabulary (or recipe, or data) is another cache entry.
    other = Vocabulary(SUB_TOKENS[:-1] + ("##ly",), BASE_TOKENS)
    key = offline_text.fingerprint
    assert key(recipe, vocabulary, tokenizer, texts, labels) != key(
        recipe, other, tokenizer, texts, labels)
    assert key(recipe, vocabulary, tokenizer, texts, labels) != key(
        {**recipe, "epochs": 3}, vocabulary, tokenizer, texts, labels)


@pytest.mark.slow
def test_real_minilm_ids_and_soft_tokens_agree():
    from tgt_keras.modalities.text.vocabulary import minilm_vocab_file
    from tgt_keras.teachers.text_labeler import minilm_preset_dir

    sentences = ["A witty, warm and wonderfully acted film.", "Dull and far too long."]
    vocabulary = Vocabulary.from_corpus(sentences, minilm_vocab_file())
    ids = WordPieceTokenizer(vocabulary, 32)(sentences)
    labeler = TextLabeler.from_preset(minilm_preset_dir(), vocabulary, 2, 32)
    soft = keras.ops.one_hot(ids, vocabulary.size)
    np.testing.assert_array_equal(labeler.logits(ids), labeler.logits(soft))
    classifier = labeler.model
    expected, _ = _backbone_mean_pool(classifier.backbone, vocabulary, ids)
    np.testing.assert_allclose(classifier.features(soft), expected, rtol=0, atol=1e-5)
