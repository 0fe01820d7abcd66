"""Teacher adapters: Keras and TF-Hub generators and labelers, and the hub export."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import make_classifier, make_decoder, make_encoder

from tgt_keras import (
    HubGenerator,
    HubLabeler,
    ImageFormat,
    KerasGenerator,
    KerasLabeler,
    export_hub_generator,
)

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too

FMT = ImageFormat(8, 8, 1, (-1.0, 1.0))


def images(n=5, fmt=FMT, seed=0):
    low, high = fmt.value_range
    return np.random.default_rng(seed).uniform(low, high, (n, *fmt.shape)).astype("float32")


def latents(n=5, dim=4, seed=0):
    return np.random.default_rng(seed).standard_normal((n, dim)).astype("float32")


# --- KerasLabeler -----------------------------------------------------------------------------


def test_keras_labeler_freezes_model_and_returns_its_logits():
    model = make_classifier()
    assert model.trainable
    labeler = KerasLabeler(model, value_range=(0, 1))
    assert model.trainable is False
    assert model.trainable_weights == []
    assert labeler.num_classes == 3
    assert labeler.input_format == ImageFormat(8, 8, 1, (0.0, 1.0))
    x = images(fmt=labeler.input_format)
    out = labeler.logits(x)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), model(x).numpy(), rtol=1e-6)


def test_keras_labeler_explicit_input_format_wins():
    fmt = ImageFormat(8, 8, 1, (-1, 1))
    assert KerasLabeler(make_classifier(), input_format=fmt).input_format == fmt


def test_keras_labeler_probability_outputs_become_log_probabilities():
    logits_model = make_classifier()
    probs_model = keras.Sequential([logits_model, keras.layers.Softmax()])
    probs_model.build((None, 8, 8, 1))
    labeler = KerasLabeler(probs_model, input_format=ImageFormat(8, 8, 1), outputs="probabilities")
    x = images(fmt=labeler.input_format)
    raw = logits_model(x).numpy().astype("float64")
    log_softmax = raw - raw.max(-1, keepdims=True)
    log_softmax -= np.log(np.exp(log_softmax).sum(-1, keepdims=True))
    np.testing.assert_allclose(labeler.logits(x).numpy(), log_softmax, rtol=1e-5, atol=1e-5)


def test_keras_labeler_zero_probability_is_floored():
    model = keras.Sequential(
        [
            keras.Input((2, 2, 1)),
            keras.layers.Flatten(),
            keras.layers.Dense(
                2,
                kernel_initializer="zeros",
                bias_initializer=keras.initializers.Constant([1.0, 0.0]),
            ),
        ]
    )
    labeler = KerasLabeler(model, value_range=(0, 1), outputs="probabilities")
    out = labeler.logits(np.zeros((1, 2, 2, 1), "float32")).numpy()
    np.testing.assert_allclose(out, [[0.0, np.log(1e-7)]], rtol=1e-5)


def test_keras_labeler_missing_value_range_is_a_clear_error():
    with pytest.raises(
        ValueError,
        match="Declare the labeler's input value range: pass `input_format` or `value_range`",
    ):
        KerasLabeler(make_classifier())


def test_keras_labeler_errors():
    with pytest.raises(
        ValueError,
        match=r"`outputs` must be one of \('logits', "
        r"'probabilities'\)\. Received: outputs='softmax'",
    ):
        KerasLabeler(make_classifier(), value_range=(0, 1), outputs="softmax")
    with pytest.raises(TypeError, match="`model` must be a Keras model"):
        KerasLabeler(lambda x: x, value_range=(0, 1))
    flat = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Dense(3)])
    with pytest.raises(ValueError, match=r"class scores of shape \(batch, num_classes\)"):
        KerasLabeler(flat, value_range=(0, 1))


def test_keras_labeler_config_round_trip():
    labeler = KerasLabeler(make_classifier(), value_range=(0, 1), outputs="logits")
    rebuilt = KerasLabeler.from_config(labeler.get_config())
    assert rebuilt.input_format == labeler.input_format
    assert rebuilt.outputs == "logits"
    assert rebuilt.num_classes == 3
    assert rebuilt.model.trainable is False


# --- KerasGenerator ---------------------------------------------------------------------------


def test_keras_generator_freezes_models_and_wraps_them():
    encoder, decoder = make_encoder(), make_decoder()
    gen = KerasGenerator(encoder, decoder, value_range=(-1, 1))
    assert encoder.trainable is False and decoder.trainable is False
    assert encoder.trainable_weights == [] and decoder.trainable_weights == []
    assert gen.latent_dim == 4
    assert gen.input_format == FMT and gen.output_format == FMT
    x, z = images(), latents()
    np.testing.assert_allclose(gen.encode(x).numpy(), encoder(x).numpy(), rtol=1e-6)
    np.testing.assert_allclose(gen.decode(z).numpy(), decoder(z).numpy(), rtol=1e-6)


def test_keras_generator_missing_value_range_is_a_clear_error():
    with pytest.raises(ValueError, match="Declare the image format: pass `input_format`"):
        KerasGenerator(make_encoder(), make_decoder())
    # With the input format given, the output format still needs a range.
    with pytest.raises(ValueError, match="Declare the image format: pass `output_format`"):
        KerasGenerator(make_encoder(), make_decoder(), input_format=FMT)


def test_keras_generator_decoder_outside_declared_range_raises():
    decoder = keras.Sequential(
        [
            keras.Input((4,)),
            keras.layers.Dense(64, kernel_initializer="ones"),
            keras.layers.Reshape((8, 8, 1)),
        ]
    )
    with pytest.raises(ValueError, match="value range"):
        KerasGenerator(make_encoder(), decoder, value_range=(-1, 1))
    # A tanh decoder declared as (0, 1) produces negative pixels: the declaration is wrong.
    with pytest.raises(ValueError, match=r"declared output_format\.value_range=\(0\.0, 1\.0\)"):
        KerasGenerator(
            make_encoder(),
            make_decoder(),
            input_format=FMT,
            output_format=ImageFormat(8, 8, 1, (0, 1)),
        )
    # validate=False skips the check.
    KerasGenerator(make_encoder(), decoder, value_range=(-1, 1), validate=False)


def test_keras_generator_shape_errors():
    with pytest.raises(ValueError, match=r"latents of shape \(batch, latent_dim=5\)"):
        KerasGenerator(make_encoder(latent_dim=4), make_decoder(latent_dim=5), value_range=(-1, 1))
    with pytest.raises(ValueError, match=r"images of shape \(4, 4, 1\) as declared"):
        KerasGenerator(
            make_encoder(),
            make_decoder(),
            input_format=FMT,
            output_format=ImageFormat(4, 4, 1, (-1, 1)),
        )
    with pytest.raises(TypeError, match="`decoder` must be a Keras model"):
        KerasGenerator(make_encoder(), "decoder", value_range=(-1, 1))
    with pytest.raises(TypeError, match="`input_format` must be an `ImageFormat`"):
        KerasGenerator(make_encoder(), make_decoder(), input_format=(8, 8, 1), value_range=(-1, 1))


def test_keras_generator_config_round_trip():
    gen = KerasGenerator(make_encoder(), make_decoder(), value_range=(-1, 1))
    rebuilt = KerasGenerator.from_config(gen.get_config())
    assert rebuilt.latent_dim == 4
    assert rebuilt.input_format == gen.input_format
    assert rebuilt.output_format == gen.output_format
    assert rebuilt.encoder.trainable is False


# --- export_hub_generator + HubGenerator ------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny (encoder, decoder) pair and its hub export."""
    keras.utils.set_random_seed(1)
    encoder, decoder = make_encoder(), make_decoder()
    path = export_hub_generator(encoder, decoder, tmp_path_factory.mktemp("gen") / "hub", FMT)
    return encoder, decoder, path


def test_hub_generator_round_trip_matches_keras_models(exported):
    encoder, decoder, path = exported
    assert isinstance(path, str)
    gen = HubGenerator(path, input_format=FMT, output_format=FMT)
    assert gen.latent_dim == 4  # read from the `generate` signature
    x, z = images(), latents()
    np.testing.assert_allclose(gen.encode(x).numpy(), encoder(x).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(gen.decode(z).numpy(), decoder(z).numpy(), rtol=1e-5, atol=1e-6)
    # Non-VAE encoder: z_mean and z_sample are the same latent.
    mean = HubGenerator(path, input_format=FMT, output_format=FMT, encode_output="z_mean")
    np.testing.assert_array_equal(mean.encode(x).numpy(), gen.encode(x).numpy())


def test_hub_generator_accepts_a_loaded_module(exported):
    import tensorflow_hub as hub

    encoder, _, path = exported
    gen = HubGenerator(hub.load(path), input_format=FMT, output_format=FMT, latent_dim=4)
    x = images()
    np.testing.assert_allclose(gen.encode(x).numpy(), encoder(x).numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="Only a HubGenerator built from a handle string"):
        gen.get_config()


def test_hub_generator_config(exported):
    _, _, path = exported
    gen = HubGenerator(path, input_format=FMT, output_format=FMT)
    config = gen.get_config()
    assert config["handle"] == path and config["latent_dim"] == 4
    rebuilt = HubGenerator.from_config(config)
    z = latents()
    np.testing.assert_array_equal(rebuilt.decode(z).numpy(), gen.decode(z).numpy())


def make_vae_encoder():
    inputs = keras.Input((8, 8, 1))
    flat = keras.layers.Flatten()(inputs)
    mean = keras.layers.Dense(4, name="mean")(flat)
    log_var = keras.layers.Dense(4, name="log_var")(flat)
    return keras.Model(inputs, [mean, log_var])


def test_vae_encoder_export(tmp_path):
    encoder, decoder = make_vae_encoder(), make_decoder()
    path = export_hub_generator(encoder, decoder, tmp_path / "vae", FMT)
    x = images(n=4000)
    mean, log_var = (t.numpy() for t in encoder(x))
    z_mean = HubGenerator(path, FMT, FMT, encode_output="z_mean").encode(x).numpy()
    np.testing.assert_allclose(z_mean, mean, rtol=1e-5, atol=1e-6)
    z_sample = HubGenerator(path, FMT, FMT, encode_output="z_sample").encode(x).numpy()
    # z_sample = mean + exp(log_var / 2) * eps: the standardised offset is standard normal.
    eps = (z_sample - mean) / np.exp(0.5 * log_var)
    assert abs(eps.std() - 1.0) < 0.03
    assert abs(eps.mean()) < 0.03


def test_vae_encoder_export_without_sampling(tmp_path):
    encoder, decoder = make_vae_encoder(), make_decoder()
    path = export_hub_generator(encoder, decoder, tmp_path / "vae", FMT, sample_latents=False)
    x = images()
    gen = HubGenerator(path, FMT, FMT)  # reads z_sample
    np.testing.assert_allclose(gen.encode(x).numpy(), encoder(x)[0].numpy(), rtol=1e-5, atol=1e-6)


def test_hub_generator_without_encode_signature_lists_available(tmp_path):
    module = tf.Module()
    module.generate = tf.function(
        lambda z: {"default": tf.tanh(tf.reshape(tf.tile(z, [1, 16]), [-1, 8, 8, 1]))},
        input_signature=[tf.TensorSpec([None, 4], tf.float32)],
    )
    path = str(tmp_path / "only_generate")
    tf.saved_model.save(module, path, signatures={"generate": module.generate})
    with pytest.raises(
        ValueError,
        match=r"The generator has no `encode` signature\. "
        r"Available signatures: \['generate'\]",
    ):
        HubGenerator(path, input_format=FMT, output_format=FMT)


def test_hub_generator_latent_dim_mismatch(exported):
    _, _, path = exported
    with pytest.raises(
        ValueError,
        match=r"`latent_dim` does not match the generator's "
        r"`generate` signature, which takes latents of size 4\. "
        r"Received: latent_dim=5",
    ):
        HubGenerator(path, input_format=FMT, output_format=FMT, latent_dim=5)


def test_hub_generator_declared_size_mismatch(exported):
    _, _, path = exported
    with pytest.raises(
        ValueError,
        match=r"input `x` of the generator's `encode` signature has "
        r"shape .* does not match the declared format "
        r"\(16, 16, 1\)",
    ):
        HubGenerator(path, input_format=ImageFormat(16, 16, 1, (-1, 1)), output_format=FMT)
    with pytest.raises(
        ValueError,
        match=r"output `default` of the generator's `generate` "
        r"signature .* does not match the declared format "
        r"\(8, 8, 3\)",
    ):
        HubGenerator(path, input_format=FMT, output_format=ImageFormat(8, 8, 3, (-1, 1)))


def test_hub_generator_declared_value_range_mismatch(exported):
    _, _, path = exported
    with pytest.raises(ValueError, match="value range"):
        HubGenerator(path, input_format=FMT, output_format=ImageFormat(8, 8, 1, (0, 1)))


def test_hub_generator_bad_names_and_handles(exported, tmp_path):
    _, _, path = exported
    with pytest.raises(
        ValueError,
        match=r"has no output named `z_foo`\. "
        r"Available outputs: \['z_mean', 'z_sample'\]",
    ):
        HubGenerator(path, FMT, FMT, encode_output="z_foo")
    with pytest.raises(
        ValueError,
        match=r"has no input named `images`\. "
        r"Available inputs: \['x'\]",
    ):
        HubGenerator(path, FMT, FMT, encode_input="images")
    with pytest.raises(ValueError, match="neither a URL nor an existing SavedModel directory"):
        HubGenerator(str(tmp_path / "missing"), FMT, FMT)
    with pytest.raises(TypeError, match="`handle` must be a TF-Hub handle"):
        HubGenerator(42, FMT, FMT)


# --- HubLabeler -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported_labeler(tmp_path_factory):
    keras.utils.set_random_seed(2)
    model = make_classifier()
    module = tf.Module()
    module.model = model
    module.__call__ = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)],
    )
    module.classify = tf.function(
        lambda images: {"probs": tf.nn.softmax(model(images))},
        input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32)],
    )
    path = str(tmp_path_factory.mktemp("labeler") / "hub")
    tf.saved_model.save(module, path, signatures={"classify": module.classify})
    return model, path


def test_hub_labeler_callable_and_signature(exported_labeler):
    model, path = exported_labeler
    fmt = ImageFormat(8, 8, 1, (0, 1))
    x = images(fmt=fmt)
    expected = model(x).numpy()
    called = HubLabeler(path, fmt, num_classes=3)
    np.testing.assert_allclose(called.logits(x).numpy(), expected, rtol=1e-5, atol=1e-6)
    signed = HubLabeler(
        path,
        fmt,
        num_classes=3,
        outputs="probabilities",
        signature="classify",
        input_key="images",
        output_key="probs",
    )
    # Log-probabilities differ from the logits by a per-row constant.
    diff = signed.logits(x).numpy() - expected
    np.testing.assert_allclose(diff - diff[:, :1], 0.0, atol=1e-5)


def test_hub_labeler_errors(exported_labeler):
    _, path = exported_labeler
    fmt = ImageFormat(8, 8, 1, (0, 1))
    with pytest.raises(
        ValueError,
        match=r"returns 3 classes under `probs`\. Received: "
        r"num_classes=4",
    ):
        HubLabeler(
            path, fmt, num_classes=4, signature="classify", input_key="images", output_key="probs"
        )
    with pytest.raises(ValueError, match="`input_key` and `output_key` are required"):
        HubLabeler(path, fmt, num_classes=3, signature="classify")
    with pytest.raises(ValueError, match=r"Available signatures: \['classify'\]"):
        HubLabeler(
            path, fmt, num_classes=3, signature="serving_default", input_key="x", output_key="y"
        )
    with pytest.raises(ValueError, match=r"`num_classes` must be an integer >= 2"):
        HubLabeler(path, fmt, num_classes=1)
