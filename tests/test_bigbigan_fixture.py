"""A tiny SavedModel with BigBiGAN's exact TF-Hub interface, loaded through the preset.

BigBiGAN (TF-Hub, TF1 format): `encode(x)` [N,256,256,3] in [-1,1] -> dict `z_sample`, `z_mean`,
`avepool_feat`, `bn_crelu_feat`; `generate(z)` [N,120] -> `default` [N,128,128,3] and
`upsampled` [N,256,256,3]; `discriminate(x, z)` -> `score_xz`, `score_x`, `score_z`. The fixture
keeps the names and the 2:1 size ratio, at 16/8 pixels and 8 latents.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import mirrored_cpus

from tgt_keras import HubGenerator, ImageFormat, KerasLabeler, TGTDistiller
from tgt_keras.core.losses import kl_divergence
from tgt_keras.teachers.presets import GENERATOR_PRESETS, generator_preset_kwargs

pytestmark = pytest.mark.compat  # CI runs these on the oldest supported TF too

LATENT = 8
ENCODE_FORMAT = ImageFormat(16, 16, 3, (-1.0, 1.0))
DEFAULT_FORMAT = ImageFormat(8, 8, 3, (-1.0, 1.0))
UPSAMPLED_FORMAT = ImageFormat(16, 16, 3, (-1.0, 1.0))
STUDENT_FORMAT = ImageFormat(8, 8, 1, (0.0, 1.0))
VARIABLE_NAMES = ("enc_w", "enc_b", "gen_w", "gen_b", "disc_x", "disc_z")


class TinyBigBiGAN(tf.Module):
    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.enc_w = tf.Variable(rng.standard_normal((4 * 4 * 3, LATENT)) * 0.3, dtype=tf.float32)
        self.enc_b = tf.Variable(rng.standard_normal(LATENT) * 0.1, dtype=tf.float32)
        self.gen_w = tf.Variable(rng.standard_normal((LATENT, 8 * 8 * 3)) * 0.5, dtype=tf.float32)
        self.gen_b = tf.Variable(rng.standard_normal(8 * 8 * 3) * 0.1, dtype=tf.float32)
        self.disc_x = tf.Variable(rng.standard_normal((8 * 8 * 3, 1)), dtype=tf.float32)
        self.disc_z = tf.Variable(rng.standard_normal((LATENT, 1)), dtype=tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32, name="x")])
    def encode(self, x):
        pooled = tf.nn.avg_pool2d(x, 4, 4, "VALID")  # [N, 4, 4, 3]
        feat = tf.reshape(pooled, [-1, 4 * 4 * 3])
        z_mean = tf.matmul(feat, self.enc_w) + self.enc_b
        return {
            # Deterministic here (BigBiGAN samples) so the tests can pin exact values.
            "z_sample": z_mean,
            "z_mean": z_mean,
            "avepool_feat": tf.reduce_mean(x, axis=[1, 2]),
            "bn_crelu_feat": tf.nn.relu(tf.concat([feat, -feat], axis=-1)),
        }

    @tf.function(input_signature=[tf.TensorSpec([None, LATENT], tf.float32, name="z")])
    def generate(self, z):
        default = tf.reshape(tf.tanh(tf.matmul(z, self.gen_w) + self.gen_b), [-1, 8, 8, 3])
        return {"default": default, "upsampled": tf.image.resize(default, (16, 16))}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 8, 8, 3], tf.float32, name="x"),
            tf.TensorSpec([None, LATENT], tf.float32, name="z"),
        ]
    )
    def discriminate(self, x, z):
        score_x = tf.matmul(tf.reshape(x, [-1, 8 * 8 * 3]), self.disc_x)
        score_z = tf.matmul(z, self.disc_z)
        return {"score_xz": score_x + score_z, "score_x": score_x, "score_z": score_z}


@pytest.fixture(scope="session")
def bigbigan_path(tmp_path_factory):
    module = TinyBigBiGAN()
    path = str(tmp_path_factory.mktemp("bigbigan") / "tiny")
    tf.saved_model.save(
        module,
        path,
        signatures={
            "encode": module.encode,
            "generate": module.generate,
            "discriminate": module.discriminate,
        },
    )
    return path


@pytest.fixture(scope="session")
def reference_module():
    """The same (deterministically initialised) module, not saved: the expected outputs."""
    return TinyBigBiGAN()


def load(path, **overrides):
    kwargs = dict(latent_dim=LATENT, input_format=ENCODE_FORMAT, output_format=DEFAULT_FORMAT)
    kwargs.update(overrides)
    return HubGenerator.from_preset("bigbigan-resnet50", handle=path, **kwargs)


def test_fixture_has_bigbigan_signatures(bigbigan_path):
    import tensorflow_hub as hub

    module = hub.load(bigbigan_path)
    assert sorted(module.signatures) == ["discriminate", "encode", "generate"]
    enc = module.signatures["encode"]
    assert sorted(enc.structured_input_signature[1]) == ["x"]
    assert sorted(enc.structured_outputs) == ["avepool_feat", "bn_crelu_feat", "z_mean", "z_sample"]
    gen = module.signatures["generate"]
    assert sorted(gen.structured_outputs) == ["default", "upsampled"]
    disc = module.signatures["discriminate"]
    assert sorted(disc.structured_input_signature[1]) == ["x", "z"]
    assert sorted(disc.structured_outputs) == ["score_x", "score_xz", "score_z"]


def test_preset_kwargs_match_bigbigan_documentation():
    kwargs = generator_preset_kwargs("bigbigan-resnet50")
    assert kwargs["latent_dim"] == 120
    assert kwargs["input_format"] == ImageFormat(256, 256, 3, (-1, 1))
    assert kwargs["output_format"] == ImageFormat(128, 128, 3, (-1, 1))
    assert (kwargs["encode_input"], kwargs["encode_output"]) == ("x", "z_sample")
    assert (kwargs["generate_input"], kwargs["generate_output"]) == ("z", "default")
    upsampled = generator_preset_kwargs("bigbigan-resnet50", output="upsampled")
    assert upsampled["generate_output"] == "upsampled"
    assert upsampled["output_format"] == ImageFormat(256, 256, 3, (-1, 1))
    assert "https://" in GENERATOR_PRESETS["bigbigan-revnet50x4"]["handle"]
    with pytest.raises(
        ValueError,
        match=r"Unknown generator preset\. Expected one of "
        r"\['bigbigan-resnet50', 'bigbigan-revnet50x4'\]",
    ):
        generator_preset_kwargs("biggan")
    with pytest.raises(ValueError, match=r"`output` must be one of \['default', 'upsampled'\]"):
        generator_preset_kwargs("bigbigan-resnet50", output="small")


def test_preset_loads_fixture_default_output(bigbigan_path, reference_module):
    gen = load(bigbigan_path)
    assert gen.latent_dim == LATENT
    assert (gen.encode_output, gen.generate_output) == ("z_sample", "default")
    x = np.random.default_rng(0).uniform(-1, 1, (3, 16, 16, 3)).astype("float32")
    z = np.random.default_rng(1).standard_normal((3, LATENT)).astype("float32")
    np.testing.assert_allclose(
        gen.encode(x).numpy(), reference_module.encode(x)["z_sample"].numpy(), atol=1e-5
    )
    decoded = gen.decode(z).numpy()
    assert decoded.shape == (3, 8, 8, 3)
    np.testing.assert_allclose(decoded, reference_module.generate(z)["default"].numpy(), atol=1e-6)


def test_preset_loads_fixture_upsampled_output(bigbigan_path, reference_module):
    gen = load(bigbigan_path, output="upsampled", output_format=UPSAMPLED_FORMAT)
    assert gen.generate_output == "upsampled"
    z = np.random.default_rng(1).standard_normal((3, LATENT)).astype("float32")
    decoded = gen.decode(z).numpy()
    assert decoded.shape == (3, 16, 16, 3)
    np.testing.assert_allclose(
        decoded, reference_module.generate(z)["upsampled"].numpy(), atol=1e-6
    )


def test_preset_real_sizes_do_not_fit_the_fixture(bigbigan_path):
    # The preset declares 256x256 inputs and 120 latents; the fixture is 16x16 with 8 latents.
    with pytest.raises(
        ValueError,
        match=r"shape \(None, 16, 16, 3\), which does not match the "
        r"declared format \(256, 256, 3\)",
    ):
        HubGenerator.from_preset("bigbigan-resnet50", handle=bigbigan_path)
    with pytest.raises(ValueError, match=r"takes latents of size 8\. Received: latent_dim=120"):
        HubGenerator.from_preset(
            "bigbigan-resnet50",
            handle=bigbigan_path,
            input_format=ENCODE_FORMAT,
            output_format=DEFAULT_FORMAT,
        )
    with pytest.raises(ValueError, match=r"does not match the declared format \(128, 128, 3\)"):
        HubGenerator.from_preset(
            "bigbigan-resnet50", handle=bigbigan_path, latent_dim=LATENT, input_format=ENCODE_FORMAT
        )


def tiny_labeler():
    model = keras.Sequential(
        [keras.Input(DEFAULT_FORMAT.shape), keras.layers.Flatten(), keras.layers.Dense(3)],
        name="labeler",
    )
    return KerasLabeler(model, input_format=DEFAULT_FORMAT)


def tiny_student():
    return keras.Sequential(
        [keras.Input(STUDENT_FORMAT.shape), keras.layers.Flatten(), keras.layers.Dense(3)],
        name="student",
    )


def data(n=12):
    rng = np.random.default_rng(3)
    return (
        rng.uniform(0, 1, (n, *STUDENT_FORMAT.shape)).astype("float32"),
        rng.integers(0, 3, n).astype("int32"),
    )


def test_first_step_synthetic_loss_through_all_conversions(bigbigan_path, reference_module):
    """sigma=0, K=0: the synthetic batch is Dec(Enc(x)) converted; pin the loss by hand."""
    gen, labeler, student = load(bigbigan_path), tiny_labeler(), tiny_student()
    distiller = TGTDistiller(student, labeler, gen, exploration="random", sigma=0.0, num_steps=0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y = data(4)
    # Student (8x8x1, [0,1]) -> encoder (16x16x3, [-1,1]): range, grey->RGB, resize up.
    enc_in = tf.image.resize(tf.repeat(2.0 * x - 1.0, 3, axis=-1), (16, 16))
    decoded = reference_module.generate(reference_module.encode(enc_in)["z_sample"])["default"]
    # Generator (8x8x3, [-1,1]) -> labeler: identity; -> student: RGB->grey, [-1,1]->[0,1].
    teacher = labeler.model(decoded)
    student_in = tf.image.rgb_to_grayscale((decoded + 1.0) / 2.0)
    expected = float(tf.reduce_mean(kl_divergence(teacher, student(student_in))))
    logs = distiller.train_on_batch(x, y, return_dict=True)
    np.testing.assert_allclose(logs["synthetic_loss"], expected, rtol=1e-4)
    np.testing.assert_allclose(logs["disagreement_after"], expected, rtol=1e-4)


def test_short_fit_with_the_fixture_generator(bigbigan_path):
    import tensorflow_hub as hub

    module = hub.load(bigbigan_path)
    gen = load(module)
    labeler, student = tiny_labeler(), tiny_student()
    teacher_before = [w.copy() for w in labeler.model.get_weights()]
    variables = [getattr(module, n) for n in VARIABLE_NAMES]
    module_before = [v.numpy().copy() for v in variables]
    student_before = [w.copy() for w in student.get_weights()]
    distiller = TGTDistiller(student, labeler, gen, sigma=0.5, step_size=0.5, num_steps=2, seed=0)
    distiller.compile(optimizer=keras.optimizers.SGD(0.1), metrics=["accuracy"])
    x, y = data(12)
    history = distiller.fit(x, y, batch_size=4, epochs=1, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    assert all(np.isfinite(v) for v in logs.values())
    assert logs["rejected_steps"] == 0
    assert logs["synthetic_loss"] > 0
    # Gradient exploration through the hub signatures moved toward disagreement.
    assert logs["disagreement_after"] > logs["disagreement_before"]
    for before, after in zip(teacher_before, labeler.model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    for before, after in zip(module_before, variables, strict=True):
        np.testing.assert_array_equal(before, after.numpy())
    assert any(
        not np.array_equal(b, a) for b, a in zip(student_before, student.get_weights(), strict=True)
    )


def test_hub_generator_loaded_in_a_mirrored_scope_trains_like_one_device(bigbigan_path):
    """The TF-Hub path under MirroredStrategy: hub.load inside the scope, one global batch."""
    strategy = mirrored_cpus()
    initial = [tiny_labeler().model.get_weights(), tiny_student().get_weights()]
    x, y = data(8)

    def train(strategy):
        with strategy.scope():
            labeler, student = tiny_labeler(), tiny_student()
            labeler.model.set_weights(initial[0])
            student.set_weights(initial[1])
            distiller = TGTDistiller(student, labeler, load(bigbigan_path), sigma=0.0,
                                     step_size=0.5, num_steps=2)
            distiller.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        logs = distiller.fit(dataset, epochs=2, verbose=0).history
        # Outside the step (cross-replica context), as callbacks and plots call it.
        assert distiller.explore_batch(x[:2], seed=0).images.shape == (2, *DEFAULT_FORMAT.shape)
        return logs, student.get_weights()

    logs_one, weights_one = train(tf.distribute.get_strategy())
    logs_two, weights_two = train(strategy)
    assert not np.allclose(weights_one[0], initial[1][0])
    for a, b in zip(weights_one, weights_two, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for name in ("loss", "synthetic_loss", "disagreement_after"):
        np.testing.assert_allclose(logs_one[name], logs_two[name], atol=1e-5, err_msg=name)
