"""The GAN on whichever backend KERAS_BACKEND selects, at small sizes: stable losses, every loss kind and k > 1
discriminator steps train through fit(), class- and caption-conditioned GANs, save/reload/resume with both
optimizers' states and their learning-rate schedules, and bad input named."""
import keras
import numpy as np
import pytest
from keras import ops

from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.data import load_digits, load_multidigits, load_ring, multidigits_vocabulary
from mmgen_nbdev.gan import (GAN, condition_network, dcgan_discriminator, dcgan_generator, discriminator_loss,
                             gan_optimizers, generator_loss, mlp_discriminator, mlp_generator, mode_coverage,
                             mode_spread)

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


def caption_gan():
    "A small caption-conditioned DCGAN on MultiDigits, and its data."
    data = load_multidigits("train", n=128)
    caption = (data["text"].shape[1], len(multidigits_vocabulary()))
    set_seed(0)
    gan = GAN(dcgan_generator(8, (16, 16, 1), filters=(16, 8), caption=caption),
              dcgan_discriminator((16, 16, 1), filters=(8, 16), caption=caption), value_range=(-1, 1), seed=0)
    gan.compile()
    return gan, data["image"] * 2 - 1, data["text"]


def test_caption_gan_trains_saves_reloads_and_resumes(tmp_path):
    gan, images, captions = caption_gan()
    vocabulary = len(multidigits_vocabulary())
    assert (gan.condition_name, gan.condition_shape, gan.condition_ids) == ("captions", (6,), vocabulary)
    encoders = [network.get_layer("condition") for network in (gan.generator, gan.discriminator)]
    before = [[ops.convert_to_numpy(v).copy() for v in e.trainable_variables] for e in encoders]
    gan.fit(images, captions, epochs=1, batch_size=32, verbose=0)
    # each player's caption encoder (its own, not shared) is trained along with it
    assert not set(map(id, encoders[0].trainable_variables)) & set(map(id, encoders[1].trainable_variables))
    for encoder, weights in zip(encoders, before):
        kernel = [(a, b) for a, b in zip(weights, encoder.trainable_variables) if a.ndim == 3]  # the Conv1D kernel
        assert kernel and not np.allclose(kernel[0][0], ops.convert_to_numpy(kernel[0][1])), encoder.name
    samples = gan.generate(4, captions=captions[:4], seed=3)
    assert samples.shape == (4, 16, 16, 1) and np.abs(samples).max() <= 1
    p = gan.discriminate(images[:4], captions=captions[:4])
    assert p.shape == (4,) and ((0 <= p) & (p <= 1)).all()
    logs = gan.evaluate(images, captions, batch_size=32, verbose=0, return_dict=True)
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake"}
    gan.save(tmp_path / "caption_gan.keras")
    back = keras.saving.load_model(tmp_path / "caption_gan.keras", safe_mode=True)
    np.testing.assert_allclose(back.generate(4, captions=captions[:4], seed=3), samples, atol=1e-5)
    for a, b in zip(back.optimizer.variables, gan.optimizer.variables):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), atol=1e-6)
    back.fit(images, captions, epochs=1, batch_size=32, verbose=0)
    assert int(back.d_optimizer.iterations) == 8 and int(back.g_optimizer.iterations) == 8


def test_caption_gan_bad_input_named():
    gan, images, captions = caption_gan()
    vocabulary = len(multidigits_vocabulary())
    with pytest.raises(ValueError, match=rf"`y` ids must lie in \[0, {vocabulary}\); got ids from 0 to {vocabulary}"):
        gan.fit(images, np.where(captions == captions.max(), vocabulary, captions), verbose=0)
    with pytest.raises(ValueError, match=r"`y` must have shape \(128, 6\), one caption of token ids per sample; "
                                         r"got \(128, 5\)"):
        gan.fit(images, captions[:, :5], verbose=0)
    with pytest.raises(ValueError, match="`y` must hold one entry per sample, 128; got 100"):
        gan.fit(images, captions[:100], verbose=0)
    with pytest.raises(ValueError, match="`y` must hold integer ids; got dtype float32"):
        gan.fit(images, captions.astype("float32"), verbose=0)
    with pytest.raises(ValueError, match="pass `y=captions`"):
        gan.fit(images, verbose=0)
    with pytest.raises(ValueError, match="`y` must hold one entry per sample, 128; got 64"):
        gan.evaluate(images, captions[:64], verbose=0)
    with pytest.raises(ValueError, match=r"`captions` must have shape \(3, 6\)"):
        gan.generate(3)
    with pytest.raises(ValueError, match="`captions` must hold one entry per sample, 3; got 4"):
        gan.generate(3, captions=captions[:4])
    with pytest.raises(ValueError, match="`captions` ids must lie in"):
        gan.generate(2, captions=-captions[:2] - 1)
    with pytest.raises(ValueError, match="conditioned on captions: pass `captions`, not `labels`"):
        gan.generate(2, labels=np.arange(2))
    with pytest.raises(ValueError, match="`captions` must hold one entry per sample, 3; got 2"):
        gan.discriminate(images[:3], captions=captions[:2])
    with pytest.raises(ValueError, match="not both"):
        dcgan_generator(8, (16, 16, 1), num_classes=10, caption=(6, vocabulary))
    with pytest.raises(ValueError, match=r"`caption` must be \(length, vocabulary_size\)"):
        condition_network(caption=6)


def test_class_conditioned_labels_checked():
    set_seed(0)
    gan = GAN(mlp_generator(2, num_classes=3), mlp_discriminator(num_classes=3), seed=0)
    assert (gan.condition_name, gan.condition_shape, gan.condition_ids) == ("labels", (), 3)
    with pytest.raises(ValueError, match=r"`labels` ids must lie in \[0, 3\); got ids from 0 to 3"):
        gan.generate(4, labels=np.arange(4))
    with pytest.raises(ValueError, match=r"`labels` must have shape \(4,\), one class label per sample; got None"):
        gan.generate(4)
    with pytest.raises(ValueError, match="This GAN is unconditional"):
        ring_gan().generate(2, labels=np.zeros(2, "int32"))


def test_decaying_learning_rate_is_saved_and_continues(tmp_path):
    ring = load_ring(512, std=0.02)
    set_seed(0)
    gan = GAN(mlp_generator(2, hidden=(16,)), mlp_discriminator(hidden=(16,)), d_steps=2, seed=0)
    gan.compile(**gan_optimizers(1e-3, steps=16, d_steps=2))
    gan.fit(ring["points"], epochs=1, batch_size=128, verbose=0)  # 4 of 16 generator steps
    rate = float(gan.g_optimizer.learning_rate)
    assert rate == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * 4 / 16))), rel=1e-4)
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(rate, rel=1e-4)  # 8 of 32 discriminator steps
    gan.save(tmp_path / "gan.keras")
    back = keras.saving.load_model(tmp_path / "gan.keras")
    assert float(back.g_optimizer.learning_rate) == pytest.approx(rate, rel=1e-6)
    back.fit(ring["points"], epochs=3, batch_size=128, verbose=0)  # to the end of the schedule: 1 % remains
    assert float(back.g_optimizer.learning_rate) == pytest.approx(1e-5, rel=1e-3)


def test_mode_spread():
    ring = load_ring(4000, std=0.02)
    assert mode_spread(ring["points"], ring["centres"], 0.02) == pytest.approx((1.0, 0.0), abs=0.03)
    shifted = ring["points"] + np.array([0.0, 1.0], "float32")  # far from every mode
    assert mode_spread(shifted, ring["centres"], 0.02)[1] > 0.99
