"""Networks written the way the keras.io examples write them (Sequential models, functional models on a list of
inputs, an encoder that also returns its sample, decoders and generators ending in a sigmoid) in the package's
models, on whichever backend KERAS_BACKEND selects: they train on the loss the model defines, save and reload, and
the forms a model cannot read are refused by name."""
import keras
import numpy as np
import pytest
from keras import layers, ops

from mmgen_nbdev.ae import Autoencoder
from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.bench.keras_io import keras_io_vae_networks
from mmgen_nbdev.data import load_digits
from mmgen_nbdev.gan import GAN
from mmgen_nbdev.vae import VAE, elbo_terms

pytestmark = pytest.mark.backends
SHAPE = (16, 16, 1)


def keras_io_encoder():
    "The keras.io VAE example's encoder at 16×16 (as the benchmark re-implements it): returns [z_mean, z_log_var, z]."
    return keras_io_vae_networks(SHAPE, 2)[0]


def keras_io_decoder():
    "The keras.io VAE example's decoder at 16×16: transposed convolutions ending in a sigmoid."
    return keras_io_vae_networks(SHAPE, 2)[1]


def keras_io_dcgan(latent_dim=8):
    "Small Sequential networks in the keras.io DCGAN example's form (16×16): a sigmoid generator, a logit discriminator."
    discriminator = keras.Sequential([keras.Input(SHAPE), layers.Conv2D(16, 3, strides=2, padding="same"),
                                      layers.LeakyReLU(0.2), layers.GlobalMaxPooling2D(), layers.Dense(1)],
                                     name="discriminator")
    generator = keras.Sequential([keras.Input((latent_dim,)), layers.Dense(8 * 8 * 16), layers.LeakyReLU(0.2),
                                  layers.Reshape((8, 8, 16)), layers.Conv2DTranspose(16, 4, strides=2, padding="same"),
                                  layers.LeakyReLU(0.2), layers.Conv2D(1, 7, padding="same", activation="sigmoid")],
                                 name="generator")
    return generator, discriminator


@pytest.fixture(scope="module")
def images():
    return load_digits("train", n=256, image_size=16)["image"]


def test_keras_io_vae_networks_train_on_the_negative_elbo_of_their_probabilities(images, tmp_path):
    set_seed(0)
    encoder, decoder = keras_io_encoder(), keras_io_decoder()
    model = VAE(encoder, decoder, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(images, epochs=2, batch_size=64, verbose=0)
    assert history.history["neg_elbo"][-1] < history.history["neg_elbo"][0]
    z = np.random.default_rng(0).standard_normal((5, 2)).astype("float32")
    probabilities = ops.convert_to_numpy(decoder(z))  # the user's network is the one that was trained
    np.testing.assert_allclose(model.decode(z), np.clip(probabilities, 1e-7, 1 - 1e-7), atol=1e-5)
    # the reconstruction term is Keras's binary cross-entropy on the decoder's probabilities, summed over pixels
    x = images[:8]
    log_likelihood, _ = elbo_terms(x, model.decoder(z[:1].repeat(8, 0)), np.zeros((8, 2), "float32"),
                                   np.zeros((8, 2), "float32"))
    keras_bce = ops.sum(keras.losses.binary_crossentropy(x, decoder(z[:1].repeat(8, 0))), axis=(1, 2))
    np.testing.assert_allclose(-ops.convert_to_numpy(log_likelihood), ops.convert_to_numpy(keras_bce), rtol=1e-4)
    model.save(tmp_path / "vae.keras")
    reloaded = keras.saving.load_model(tmp_path / "vae.keras")
    np.testing.assert_allclose(reloaded.decode(z), model.decode(z), atol=1e-6)


def test_list_input_and_list_output_networks_are_read_as_single_tensors(images):
    x = keras.Input(SHAPE)
    h = layers.Dense(32, activation="relu")(layers.Flatten()(x))
    encoder = keras.Model([x], [layers.Dense(2)(h), layers.Dense(2)(h)])
    z = keras.Input((2,))
    decoder = keras.Model([z], [layers.Reshape(SHAPE)(layers.Dense(256)(z))])
    model = VAE(encoder, decoder, seed=0)
    model.compile(optimizer="adam")
    model.fit(images, epochs=1, batch_size=64, verbose=0)
    assert model.embed(images[:3]).shape == (3, 2) and model.generate(3).shape == (3, *SHAPE)


def test_keras_io_dcgan_sequential_networks_train_in_the_gan(images):
    set_seed(0)
    generator, discriminator = keras_io_dcgan()
    model = GAN(generator, discriminator, seed=0)
    assert model.output_range == (0.0, 1.0) and not model.conditional
    model.compile(d_optimizer=keras.optimizers.Adam(3e-4), g_optimizer=keras.optimizers.Adam(3e-4))
    history = model.fit(images, epochs=1, batch_size=64, verbose=0)
    assert np.isfinite(history.history["d_loss"][-1])
    samples = model.generate(4)
    assert samples.shape == (4, *SHAPE) and samples.min() >= 0 and samples.max() <= 1
    with pytest.raises(ValueError, match=r"`x` must lie in \[0.0, 1.0\]"):
        model.fit(images * 2 - 1, epochs=1, batch_size=64, verbose=0)


def test_a_list_input_generator_is_unconditional():
    z = keras.Input((8,))
    generator = keras.Model([z], layers.Reshape(SHAPE)(layers.Dense(256, activation="tanh")(z)))
    model = GAN(generator, keras_io_dcgan()[1], seed=0)
    assert not model.conditional and model.latent_dim == 8 and model.generate(2).shape == (2, *SHAPE)


def test_a_generator_that_cannot_reach_the_data_range_is_refused():
    generator, discriminator = keras_io_dcgan()
    with pytest.raises(ValueError, match=r"`value_range`=\(-1.0, 1.0\) but the generator ends in a sigmoid"):
        GAN(generator, discriminator, value_range=(-1, 1))


def test_a_sigmoid_discriminator_is_read_as_probabilities():
    generator, _ = keras_io_dcgan()
    discriminator = keras.Sequential([keras.Input(SHAPE), layers.Flatten(), layers.Dense(1, activation="sigmoid")])
    model = GAN(generator, discriminator)
    x = np.random.default_rng(0).random((3, *SHAPE)).astype("float32")
    np.testing.assert_allclose(ops.convert_to_numpy(ops.sigmoid(model.discriminator(x))),
                               ops.convert_to_numpy(discriminator(x)), atol=1e-5)


def test_an_unbuilt_sequential_decoder_is_built_from_the_encoders_code(images):
    decoder = keras.Sequential([layers.Dense(256, activation="sigmoid"), layers.Reshape(SHAPE)])
    x = keras.Input(SHAPE)
    model = Autoencoder(keras.Model(x, layers.Dense(3)(layers.Flatten()(x))), decoder)
    assert model.decode(np.zeros((2, 3), "float32")).shape == (2, *SHAPE)
    np.testing.assert_allclose(model.decode(np.zeros((1, 3), "float32")), np.full((1, *SHAPE), 0.5), atol=1e-6)


def test_networks_the_model_cannot_read_are_refused_by_name():
    with pytest.raises(ValueError, match=r"`encoder` \(Sequential .*no known input shape"):
        VAE(keras.Sequential([layers.Flatten(), layers.Dense(2)]), keras_io_decoder())

    class Subclassed(keras.Model):
        def call(self, x):
            return x
    with pytest.raises(ValueError, match="`generator` .*subclassed model cannot be read"):
        GAN(Subclassed(), keras_io_dcgan()[1])
    x = keras.Input(SHAPE)
    with pytest.raises(ValueError, match=r"`encoder` must return two tensors, \(mean, log_var\)"):
        VAE(keras.Model(x, layers.Dense(2)(layers.Flatten()(x))), keras_io_decoder())
    with pytest.raises(TypeError, match="`decoder` must be a Keras model"):
        Autoencoder(keras.Model(x, layers.Dense(2)(layers.Flatten()(x))), layers.Dense(256))
