"""`TokenEmbedding` and the text students (`TextCNN`, `TextTransformer`): ids and soft tokens,
padding masks, saving, bad inputs. Tiny configs (vocabulary 20, length 8)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tgt_keras.modalities.text import TextCNN, TextTransformer, TokenEmbedding

VOCABULARY_SIZE = 20
SEQUENCE_LENGTH = 8
NUM_CLASSES = 3
PAD, CLS, SEP = 0, 2, 3


def make_cnn(**kwargs):
    return TextCNN(
        VOCABULARY_SIZE,
        SEQUENCE_LENGTH,
        NUM_CLASSES,
        embedding_dim=8,
        filters=4,
        kernel_sizes=(2, 3),
        **kwargs,
    )


def make_transformer(**kwargs):
    return TextTransformer(
        VOCABULARY_SIZE,
        SEQUENCE_LENGTH,
        NUM_CLASSES,
        hidden_dim=8,
        num_layers=1,
        num_heads=2,
        intermediate_dim=16,
        **kwargs,
    )


STUDENTS = [pytest.param(make_cnn, id="cnn"), pytest.param(make_transformer, id="transformer")]


def token_ids(batch=4):
    """`[CLS] w... [SEP] [PAD]...` rows with 2-5 words of ids 5..19."""
    rng = np.random.default_rng(0)
    ids = np.full((batch, SEQUENCE_LENGTH), PAD, dtype=np.int32)
    ids[:, 0] = CLS
    for row in range(batch):
        length = 2 + row % 4
        ids[row, 1 : 1 + length] = rng.integers(5, VOCABULARY_SIZE, length)
        ids[row, 1 + length] = SEP
    return ids


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def one_hot(ids):
    return np.eye(VOCABULARY_SIZE, dtype=np.float32)[ids]


# --- TokenEmbedding ------------------------------------------------------------------------------


def test_one_hot_soft_tokens_give_exactly_the_lookup():
    embedding = TokenEmbedding(VOCABULARY_SIZE, 6)
    ids = token_ids()
    looked_up = numpy(embedding(ids))
    mixed = numpy(embedding(one_hot(ids)))
    assert looked_up.shape == (4, SEQUENCE_LENGTH, 6)
    assert np.abs(looked_up - mixed).max() < 1e-6


def test_the_gradient_reaches_the_soft_tokens():
    embedding = TokenEmbedding(VOCABULARY_SIZE, 6)
    soft = tf.Variable(one_hot(token_ids()))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(embedding(soft)))
    gradient = tape.gradient(loss, soft).numpy()
    assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0


def test_token_embedding_rejects_bad_inputs_and_round_trips():
    embedding = TokenEmbedding(VOCABULARY_SIZE, 6)
    with pytest.raises(ValueError, match=r"last dimension is 7 .* expected 20"):
        embedding(np.zeros((1, 4, 7), "float32"))
    with pytest.raises(ValueError, match=r"Received: shape \(1, 4\), dtype float32"):
        embedding(np.zeros((1, 4), "float32"))
    with pytest.raises(ValueError, match=r"Received: shape \(4,\), dtype int32"):
        embedding(np.zeros((4,), "int32"))
    with pytest.raises(
        ValueError,
        match=r"Token ids must be in \[0, 20\) \(vocabulary_size\)\. Received: ids in \[0, 20\]",
    ):
        embedding(np.array([[0, 20]]))
    with pytest.raises(
        ValueError, match="`output_dim` must be an int >= 1. Received: output_dim=0"
    ):
        TokenEmbedding(VOCABULARY_SIZE, 0)
    restored = TokenEmbedding.from_config(embedding.get_config())
    assert (restored.vocabulary_size, restored.output_dim) == (VOCABULARY_SIZE, 6)


# --- Students ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_student", STUDENTS)
def test_ids_and_one_hot_soft_tokens_give_the_same_logits(make_student):
    student = make_student()
    assert student.count_params() > 0  # built in the constructor
    assert (student.vocabulary_size, student.sequence_length, student.num_classes) == (20, 8, 3)
    ids = token_ids()
    logits = numpy(student(ids))
    assert logits.shape == (4, NUM_CLASSES)
    np.testing.assert_allclose(numpy(student(one_hot(ids))), logits, atol=1e-5)
    np.testing.assert_allclose(numpy(student(ids.astype("int64"))), logits, atol=1e-6)


@pytest.mark.parametrize("make_student", STUDENTS)
def test_padding_does_not_change_the_logits(make_student):
    """Soft padding positions stay padding while their argmax is [PAD]: spreading 40% of
    their mass over other tokens changes nothing; changing a real word does."""
    student = make_student()
    ids = token_ids()
    soft = one_hot(ids)
    logits = numpy(student(soft))
    blurred = soft.copy()
    padding = ids == PAD
    rng = np.random.default_rng(1)
    noise = rng.dirichlet(np.ones(VOCABULARY_SIZE - 1), size=int(padding.sum())) * 0.4
    blurred[padding] = np.concatenate([np.full((len(noise), 1), 0.6), noise], axis=1)
    assert (blurred.argmax(-1) == ids).all()
    np.testing.assert_allclose(numpy(student(blurred)), logits, atol=1e-6)
    changed = ids.copy()
    changed[:, 1] = np.where(changed[:, 1] == 5, 6, 5)
    assert np.abs(numpy(student(changed)) - logits).max() > 1e-6


@pytest.mark.parametrize("make_student", STUDENTS)
def test_the_gradient_reaches_the_soft_tokens_through_the_student(make_student):
    student = make_student()
    soft = tf.Variable(one_hot(token_ids()))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.nn.log_softmax(student(soft, training=False))[:, 0])
    gradient = tape.gradient(loss, soft).numpy()
    assert np.isfinite(gradient).all() and np.abs(gradient).max() > 0


@pytest.mark.parametrize("make_student", STUDENTS)
def test_keras_save_and_load_give_identical_logits(make_student, tmp_path):
    student = make_student(name="student")
    ids = token_ids()
    path = tmp_path / "student.keras"
    student.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(student)
    assert restored.get_config() == student.get_config()
    np.testing.assert_array_equal(numpy(restored(ids)), numpy(student(ids)))
    np.testing.assert_array_equal(numpy(restored(one_hot(ids))), numpy(student(one_hot(ids))))


@pytest.mark.parametrize("make_student", STUDENTS)
def test_config_round_trips(make_student):
    student = make_student(dropout=0.2, pad_id=1)
    config = student.get_config()
    assert config["dropout"] == 0.2 and config["pad_id"] == 1
    assert type(student).from_config(config).get_config() == config


@pytest.mark.parametrize("make_student", STUDENTS)
def test_students_train_on_ids(make_student):
    student = make_student()
    student.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = student.fit(token_ids(), np.array([0, 1, 2, 0]), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("make_student", STUDENTS)
def test_students_reject_bad_inputs(make_student):
    student = make_student()
    name = type(student).__name__
    with pytest.raises(
        ValueError, match=rf"{name} takes token ids .* Received: shape \(2, 8\), dtype float32"
    ):
        student(np.zeros((2, SEQUENCE_LENGTH), "float32"))
    with pytest.raises(ValueError, match=r"last dimension is 5 \(shape \(2, 8, 5\)\), expected 20"):
        student(np.zeros((2, SEQUENCE_LENGTH, 5), "float32"))
    with pytest.raises(ValueError, match=rf"{name} takes rows of sequence_length=8 tokens"):
        student(np.zeros((2, 6), "int32"))


def test_students_reject_bad_arguments():
    with pytest.raises(
        ValueError, match="`sequence_length` must be an int >= 1. Received: sequence_length=0"
    ):
        TextCNN(VOCABULARY_SIZE, 0, NUM_CLASSES)
    with pytest.raises(
        ValueError, match="`num_classes` must be an int >= 2. Received: num_classes=1"
    ):
        TextCNN(VOCABULARY_SIZE, SEQUENCE_LENGTH, 1)
    with pytest.raises(ValueError, match="`kernel_sizes` must be a non-empty sequence"):
        TextCNN(VOCABULARY_SIZE, SEQUENCE_LENGTH, NUM_CLASSES, kernel_sizes=())
    with pytest.raises(ValueError, match=r"`dropout` must be a float in \[0, 1\)"):
        make_transformer(dropout=1.0)
    with pytest.raises(ValueError, match="`pad_id` must be < vocabulary_size=20"):
        make_cnn(pad_id=20)
    with pytest.raises(ValueError, match="`hidden_dim` must be a multiple of `num_heads`"):
        TextTransformer(VOCABULARY_SIZE, SEQUENCE_LENGTH, NUM_CLASSES, hidden_dim=6, num_heads=4)
