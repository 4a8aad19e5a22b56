"""The recipes: each builds the model it names at small sizes, its optimiser follows its schedule, one training step
runs, bad settings are refused by name, and the names that moved here still answer from their old modules."""
import ast
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest

import mmgen_nbdev
from mmgen_nbdev.data import load_digits, load_multidigits, load_shapes
from mmgen_nbdev.fusion import FUSIONS, MultimodalVAE, likeliest_caption
from mmgen_nbdev.recipes import (MULTIDIGITS_SIZES, digits_cgan, digits_cgan_optimizers, digits_vae,
                                 digits_vae_optimizer, likeliest_caption_digit, multidigits_captions, multidigits_vae,
                                 multimodal_optimizer, shapes_vae, training_steps)

MODALITIES = ("image", "text", "audio")


def schedule_of(optimizer):
    "The learning-rate schedule an optimiser was built with, rebuilt from its config."
    return keras.optimizers.schedules.deserialize(optimizer.get_config()["learning_rate"])


def test_the_multimodal_optimizer_decays_along_a_cosine_over_the_run():
    assert training_steps(3, 1000) == 48 and training_steps(1, 64, batch_size=64) == 1
    schedule = schedule_of(multimodal_optimizer(training_steps(2, 100, batch_size=10), learning_rate=np.float32(2e-3)))
    assert [round(float(schedule(s)), 9) for s in (0, 10, 20)] == [2e-3, 1e-3, 0.0]


@pytest.mark.parametrize("fusion", FUSIONS)
def test_multidigits_vae_builds_every_fusion_with_its_default_weights(fusion):
    model = multidigits_vae(fusion, latent_dim=2)
    assert isinstance(model, MultimodalVAE) and model.modalities == MODALITIES and model.latent_dim == 2
    balanced = {m: MULTIDIGITS_SIZES["image"] / size for m, size in MULTIDIGITS_SIZES.items()}
    assert model.likelihood_weights == (balanced if fusion in ("moe", "mopoe") else {m: 1.0 for m in MODALITIES})


@pytest.mark.backends
def test_multidigits_vae_trains_a_step_and_reads_captions():
    data = load_multidigits("train", n=32)
    model = multidigits_vae("moe", latent_dim=2)
    model.compile(optimizer=multimodal_optimizer(training_steps(1, 32, batch_size=32)))
    history = model.fit({m: data[m] for m in MODALITIES}, epochs=1, batch_size=32, verbose=0).history
    assert np.isfinite(history["loss"][-1])
    tokens, digits = multidigits_captions()
    assert tokens.shape == (80, 6) and sorted(set(digits)) == list(range(10))
    codes = np.random.default_rng(0).standard_normal((4, 2)).astype("float32")
    best = likeliest_caption(model, codes, tokens)
    assert best.shape == (4,) and (likeliest_caption_digit(model, codes) == digits[best]).all()


@pytest.mark.backends
def test_shapes_vae_trains_a_step():
    data = load_shapes(2, "train", n=32)
    model = shapes_vae("poe", latent_dim=2, image_size=32)
    model.compile(optimizer=multimodal_optimizer(1))
    history = model.fit({m: data[m] for m in ("image", "text")}, epochs=1, batch_size=32, verbose=0).history
    assert np.isfinite(history["loss"][-1]) and model.encoders["image"].input.shape[1:] == (32, 32, 3)


@pytest.mark.backends
def test_the_demo_models_train_a_step_with_their_optimisers():
    digits = load_digits("train", n=64, image_size=16)
    vae = digits_vae(seed=1)
    vae.compile(optimizer=digits_vae_optimizer())
    vae.fit(digits["image"], epochs=1, batch_size=64, verbose=0)
    assert vae.generate(2).shape == (2, 16, 16, 1) and float(vae.optimizer.learning_rate) == pytest.approx(2e-3)
    gan = digits_cgan(seed=1)
    gan.compile(**digits_cgan_optimizers())
    history = gan.fit(digits["image"] * 2 - 1, digits["label"], epochs=1, batch_size=64, verbose=0).history
    assert np.isfinite(history["d_loss"][-1]) and gan.generate(2, labels=[3, 4]).shape == (2, 16, 16, 1)
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(2e-4) and gan.g_optimizer.beta_1 == 0.5
    decaying = digits_cgan_optimizers(steps=10)["d_optimizer"]
    assert float(schedule_of(decaying)(10)) == pytest.approx(2e-6)


@pytest.mark.parametrize("call, argument", [
    (lambda: training_steps(0, 10), "epochs"), (lambda: training_steps(1, 0), "samples"),
    (lambda: training_steps(1, 10, batch_size=2.5), "batch_size"), (lambda: multimodal_optimizer(0), "steps"),
    (lambda: multimodal_optimizer(10, learning_rate=0), "learning_rate"),
    (lambda: multimodal_optimizer(10, learning_rate=np.nan), "learning_rate"),
    (lambda: multidigits_vae(likelihood_weights="even"), "likelihood_weights"),
    (lambda: multidigits_vae(fusion="sum"), "fusion"), (lambda: shapes_vae(seed=-1), "seed"),
    (lambda: digits_vae(latent_dim=0), "latent_dim"), (lambda: digits_vae(seed=2**40), "seed"),
    (lambda: digits_vae_optimizer(-1e-3), "learning_rate"), (lambda: digits_cgan(latent_dim=True), "latent_dim"),
    (lambda: digits_cgan_optimizers(learning_rate=np.inf), "learning_rate"),
    (lambda: digits_cgan_optimizers(steps=0), "steps")])
def test_bad_settings_are_refused_by_name(call, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        call()


def test_likeliest_caption_refuses_captions_the_decoder_cannot_read():
    model = multidigits_vae("moe", latent_dim=2)
    codes = np.zeros((2, 2), "float32")
    for captions in (np.zeros((3, 5), "int32"), np.full((3, 6), 10_000), np.zeros((0, 6), "int32")):
        with pytest.raises(ValueError, match="`captions`"):
            likeliest_caption(model, codes, captions)


def test_the_moved_names_answer_from_their_old_modules_with_a_warning():
    import mmgen_nbdev.cli as cli
    import mmgen_nbdev.fusion as fusion
    import mmgen_nbdev.recipes as recipes
    import mmgen_nbdev.report as report
    for module, new, name in [(fusion, recipes, "multidigits_vae"), (fusion, recipes, "shapes_vae"),
                              (fusion, recipes, "likeliest_caption_digit"), (fusion, recipes, "MULTIDIGITS_SIZES"),
                              (cli, report, "write_page"), (cli, report, "METRIC_NOTES"),
                              (cli, report, "write_dataset_previews")]:
        with pytest.warns(DeprecationWarning, match=f"moved to {new.__name__}.{name}"):
            assert getattr(module, name) is getattr(new, name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cli.EpochProgress.__name__ == "EpochProgress"
    with pytest.raises(AttributeError):
        fusion.no_such_recipe


def test_the_model_modules_know_no_dataset():
    "fusion imports neither the data module nor the recipes at module level (the deprecation hook imports lazily)."
    tree = ast.parse((Path(mmgen_nbdev.__file__).parent / "fusion.py").read_text())
    top = [node for node in tree.body if isinstance(node, ast.ImportFrom)]
    assert not [n.module for n in top if n.module in ("data", "recipes")]
    assert not [a.name for n in top if n.module is None for a in n.names if a.name in ("data", "recipes")]
