"""Student architectures named in `hparams/` files: `small_cnn | resnet` for images,
`text_cnn | text_transformer` for text (`build_text_student`)."""

from __future__ import annotations

import keras


def small_cnn(input_shape, num_classes: int, width: int = 16) -> keras.Model:
    """Two conv + max-pool blocks (width, 2*width filters), a dense layer, logits."""
    inputs = keras.Input(input_shape, name="image")
    h = inputs
    for filters in (width, 2 * width):
        h = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(h)
        h = keras.layers.MaxPooling2D()(h)
    h = keras.layers.Flatten()(h)
    h = keras.layers.Dense(64, activation="relu")(h)
    outputs = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name="small_cnn")


def _basic_block(x, filters: int, stride: int):
    shortcut = x
    h = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    h = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(h)
    h = keras.layers.BatchNormalization()(h)
    if stride != 1 or shortcut.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut)
        shortcut = keras.layers.BatchNormalization()(shortcut)
    return keras.layers.ReLU()(keras.layers.Add()([h, shortcut]))


def resnet(input_shape, num_classes: int, width: int = 32) -> keras.Model:
    """A ResNet-18-style student: stem, four stages of two basic blocks (width x 1, 2, 4, 8)."""
    inputs = keras.Input(input_shape, name="image")
    h = keras.layers.Conv2D(width, 3, strides=2, padding="same", use_bias=False)(inputs)
    h = keras.layers.BatchNormalization()(h)
    h = keras.layers.ReLU()(h)
    for stage, multiplier in enumerate((1, 2, 4, 8)):
        h = _basic_block(h, width * multiplier, 1 if stage == 0 else 2)
        h = _basic_block(h, width * multiplier, 1)
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(num_classes, name="logits")(h)
    return keras.Model(inputs, outputs, name="resnet")


STUDENTS = {"small_cnn": small_cnn, "resnet": resnet}


def build_student(name: str, input_shape, num_classes: int, width: int) -> keras.Model:
    """Builds the student `name` (a key of `STUDENTS`)."""
    if name not in STUDENTS:
        raise ValueError(f"`student` must be one of {sorted(STUDENTS)}. Received: student={name!r}")
    return STUDENTS[name](input_shape, num_classes, width)


def build_text_student(name: str, vocabulary_size: int, sequence_length: int, num_classes: int,
                       width: int, pad_id: int = 0) -> keras.Model:
    """A text student over token ids or soft tokens of the shared vocabulary.

    `text_cnn`: `TextCNN` with `width` embedding dimensions and `width` filters per kernel size
    (3, 4, 5); `text_transformer`: `TextTransformer` of hidden size `width`, 2 layers, 4 heads,
    feed-forward `2 * width`. `width=64` gives the text demo's students.
    """
    from tgt_keras.modalities.text import TextCNN, TextTransformer

    if name == "text_cnn":
        return TextCNN(vocabulary_size, sequence_length, num_classes, embedding_dim=width,
                       filters=width, pad_id=pad_id)
    if name == "text_transformer":
        return TextTransformer(vocabulary_size, sequence_length, num_classes, hidden_dim=width,
                               intermediate_dim=2 * width, pad_id=pad_id)
    raise ValueError(
        f"`student` must be one of ('text_cnn', 'text_transformer'). Received: student={name!r}")
