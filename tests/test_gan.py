"""The GAN on whichever backend KERAS_BACKEND selects, at small sizes: stable losses, every loss kind and k > 1
discriminator steps train through fit(), a conditional GAN, save/reload/resume with both optimizers' states, and
bad input named."""
import keras
import numpy as np
import pytest
from keras import ops

from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.data import load_digits, load_ring
from mmgen_nbdev.gan import (GAN, dcgan_discriminator, dcgan_generator, discriminator_loss, generator_loss,
                             mlp_discriminator, mlp_generator, mode_coverage)

pytestmark = pytest.mark.backends


def ring_gan(**kwargs):
    set_seed(0)
    gan = GAN(mlp_generator(2, hidden=(64, 64)), mlp_discriminator(hidden=(64, 64)), seed=0, **kwargs)
    gan.compile(d_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5), g_optimizer=keras.optimizers.Adam(1e-3, beta_1=0.5))
    return gan


def test_losses_are_stable_and_signed_right():
    right, wrong = np.array([6.0], "float32"), np.array([-6.0], "float32")
    assert float(discriminator_loss(right, wrong)) < 0.01 < float(discriminator_loss(wrong, right))
    assert np.isfinite(float(discriminator_loss(np.array([1e4], "float32"), np.array([-1e4], "float32"))))
    # the generator's losses fall as the discriminator is fooled
    for kind in ("non_saturating", "minimax"):
        assert float(generator_loss(right, kind)) < float(generator_loss(wrong, kind))
    with pytest.raises(ValueError, match="`kind` must be 'non_saturating' or 'minimax'"):
        generator_loss(right, "wasserstein")


@pytest.mark.parametrize("loss", ["non_saturating", "minimax", "wasserstein_gp"])
def test_every_loss_trains_both_networks(loss):
    ring = load_ring(1024, std=0.05)
    gan = ring_gan(loss=loss, d_steps=2 if loss == "wasserstein_gp" else 1)
    g_before = [ops.convert_to_numpy(v).copy() for v in gan.generator.trainable_variables]
    d_before = [ops.convert_to_numpy(v).copy() for v in gan.discriminator.trainable_variables]
    history = gan.fit(ring["points"], epochs=2, batch_size=128, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(v[-1]) for v in history.history.values())
    # every weight matrix moves (a WGAN critic's output bias rightly does not: its gradient cancels)
    for before, variables in ((g_before, gan.generator.trainable_variables),
                              (d_before, gan.discriminator.trainable_variables)):
        for a, b in zip(before, variables):
            assert a.ndim < 2 or not np.allclose(a, ops.convert_to_numpy(b)), b.path
    steps = 16
    assert int(gan.d_optimizer.iterations) == steps * gan.d_steps and int(gan.g_optimizer.iterations) == steps


def test_ring_gan_learns_towards_the_modes():
    ring = load_ring(256 * 40, std=0.05)
    gan = ring_gan()
    before = mode_coverage(gan.generate(2000), ring["centres"], 0.05)
    gan.fit(ring["points"], epochs=30, batch_size=256, verbose=0)
    covered, good = mode_coverage(gan.generate(2000), ring["centres"], 0.05)
    assert before[1] < 0.05 and covered >= 6 and good > 0.3, (covered, good)


def test_conditional_dcgan_fit_generate_evaluate():
    digits = load_digits("train", n=256, image_size=16)
    set_seed(0)
    gan = GAN(dcgan_generator(8, (16, 16, 1), filters=(16, 8), num_classes=10),
              dcgan_discriminator((16, 16, 1), filters=(8, 16), num_classes=10), value_range=(-1, 1), seed=0)
    gan.compile()
    gan.fit(digits["image"] * 2 - 1, digits["label"], epochs=1, batch_size=64, verbose=0)
    images = gan.generate(6, labels=np.arange(6), seed=0)
    assert images.shape == (6, 16, 16, 1) and images.min() >= -1 and images.max() <= 1
    np.testing.assert_allclose(images, gan.generate(6, labels=np.arange(6), seed=0), atol=1e-6)
    logs = gan.evaluate(digits["image"] * 2 - 1, digits["label"], batch_size=64, verbose=0, return_dict=True)
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake"}
    p = gan.discriminate(digits["image"][:4] * 2 - 1, labels=digits["label"][:4])
    assert p.shape == (4,) and (0 <= p).all() and (p <= 1).all()


def test_save_reload_resume_with_both_optimizers(tmp_path):
    ring = load_ring(512, std=0.05)
    gan = ring_gan(loss="minimax", d_steps=2)
    gan.fit(ring["points"], epochs=1, batch_size=128, verbose=0)
    gan.save(tmp_path / "gan.keras")
    back = keras.saving.load_model(tmp_path / "gan.keras")
    assert (back.loss_kind, back.d_steps, back.seed) == ("minimax", 2, 0)
    np.testing.assert_allclose(back.generate(8, seed=4), gan.generate(8, seed=4), atol=1e-5)
    assert int(back.d_optimizer.iterations) == 8 and int(back.g_optimizer.iterations) == 4
    for a, b in zip(back.optimizer.variables, gan.optimizer.variables):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=1e-6)
    back.fit(ring["points"], epochs=1, batch_size=128, verbose=0)
    assert int(back.d_optimizer.iterations) == 16 and int(back.g_optimizer.iterations) == 8


def test_bad_input_named():
    gan = ring_gan(value_range=(-3, 3))
    ring = load_ring(64)
    with pytest.raises(ValueError, match="`loss` must be one of"):
        GAN(gan.generator, gan.discriminator, loss="hinge")
    with pytest.raises(ValueError, match="`d_steps` must be an integer ≥ 1"):
        GAN(gan.generator, gan.discriminator, d_steps=0)
    with pytest.raises(ValueError, match=r"`x` must have shape \(N, 2\)"):
        gan.fit(ring["points"][:, None], epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"`x` must lie in \[-3.0, 3.0\]"):
        gan.fit(ring["points"] * 10, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`x` holds 1 NaN"):
        gan.fit(np.where(np.arange(128).reshape(64, 2) == 5, np.nan, ring["points"]), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`n` must be a positive integer"):
        gan.generate(0)
    with pytest.raises(ValueError, match="`latent_dim` must be a positive integer"):
        mlp_generator(0)
