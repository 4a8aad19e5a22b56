"""The multimodal VAE and the contrastive encoder on whichever backend KERAS_BACKEND selects, at small sizes: the
closed forms, every fusion trains and logs each term once, missing modalities, cross-modal and joint generation,
save and resume, and bad input rejected by name."""
import keras
import numpy as np
import pytest

from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.data import load_multidigits, load_shapes, multidigits_vocabulary, shapes_vocabulary
from mmgen_nbdev.fusion import (FUSIONS, MULTIDIGITS_SIZES, ContrastiveEncoder, MultimodalVAE, balanced_weights,
                                fusion_subsets, info_nce, multidigits_vae, product_of_experts, shapes_vae)
from mmgen_nbdev.modalities import (audio_decoder, audio_encoder, image_decoder, image_encoder, text_decoder,
                                    text_encoder)

pytestmark = pytest.mark.backends
MODALITIES = ("image", "text", "audio")
VOCABULARY_SIZE = len(multidigits_vocabulary())


@pytest.fixture(scope="module")
def data():
    train = load_multidigits("train", n=96)
    return {m: train[m] for m in MODALITIES}, train["label"]


def small_model(fusion="mopoe", text_kind="parallel", **kwargs):
    "A tiny MultiDigits model; the parallel caption decoder unless asked (the recurrent one costs more to trace)."
    set_seed(0)
    encoders = {"image": image_encoder((16, 16, 1), 4, "dense", hidden=32, gaussian=True),
                "text": text_encoder(6, VOCABULARY_SIZE, 4, width=16, hidden=32, gaussian=True),
                "audio": audio_encoder((32, 32), 4, "dense", hidden=32, gaussian=True)}
    decoders = {"image": image_decoder(4, (16, 16, 1), "dense", hidden=32),
                "text": text_decoder(4, 6, VOCABULARY_SIZE, text_kind, width=16, hidden=32),
                "audio": audio_decoder(4, (32, 32), "dense", hidden=32)}
    model = MultimodalVAE(encoders, decoders, {"image": "bernoulli", "text": "categorical", "audio": "gaussian"},
                          fusion=fusion, seed=0, **kwargs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model


def test_product_of_experts_matches_precision_weighting():
    means = np.array([[[1.0, -2.0]], [[3.0, 0.5]]], "float32")
    log_vars = np.log(np.array([[[0.5, 2.0]], [[0.25, 1.0]]], "float32"))
    mean, log_var = (keras.ops.convert_to_numpy(t) for t in product_of_experts(means, log_vars))
    precision = 1 + 1 / 0.5 + 1 / 0.25, 1 + 1 / 2.0 + 1 / 1.0
    np.testing.assert_allclose(np.exp(-log_var[0]), precision, rtol=1e-5)
    np.testing.assert_allclose(mean[0], [(1 / 0.5 + 3 / 0.25) / precision[0], (-2 / 2 + 0.5 / 1) / precision[1]],
                               rtol=1e-5)
    masked, _ = product_of_experts(means, log_vars, present=np.array([[1.0], [0.0]], "float32"))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(masked)[0], [1 / 0.5 / 3, -2 / 2 / 1.5], rtol=1e-5)


def test_info_nce_matches_numpy():
    rng = np.random.default_rng(0)
    a, b = (x / np.linalg.norm(x, axis=1, keepdims=True) for x in rng.normal(size=(2, 8, 5)).astype("float32"))
    logits = a @ b.T * 3.0
    logsumexp = lambda v, axis: np.log(np.exp(v).sum(axis))
    expected = 0.5 * np.mean(logsumexp(logits, 1) - np.diag(logits) + logsumexp(logits, 0) - np.diag(logits))
    assert float(info_nce(a, b, 3.0)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_trains_logs_each_term_once_and_generates(data, fusion):
    x, _ = data
    model = small_model(fusion, "recurrent" if fusion == "mopoe" else "parallel")
    history = model.fit(x, epochs=2, batch_size=32, verbose=0).history
    assert sorted(history) == sorted(["loss", "image_nll", "text_nll", "audio_nll", "kl", "neg_elbo"])
    assert all(np.isfinite(v).all() for v in history.values())
    assert history["loss"][-1] < history["loss"][0]
    given = x if fusion == "concat" else {"text": x["text"][:5]}
    images = model.generate(given={m: v[:5] for m, v in given.items()}, target="image")
    assert images.shape == (5, 16, 16, 1) and images.min() >= 0 and images.max() <= 1
    captions = model.generate(given={m: v[:5] for m, v in given.items()}, target="text")
    assert captions.shape == (5, 6) and captions.dtype == np.int32 and captions.max() < VOCABULARY_SIZE
    joint = model.generate(n=3)
    assert {m: v.shape for m, v in joint.items()} == {"image": (3, 16, 16, 1), "text": (3, 6), "audio": (3, 32, 32)}


def test_training_with_missing_modalities(data):
    x, _ = data
    n = len(x["image"])
    present = {"text": (np.arange(n) % 2).astype("float32"), "audio": (np.arange(n) % 3 > 0).astype("float32")}
    model = small_model("mopoe")
    history = model.fit({**x, "present": present}, epochs=2, batch_size=32, verbose=0).history
    assert np.isfinite(history["loss"]).all()
    mean, log_var = model.encode({"audio": x["audio"][:4]})
    assert mean.shape == (4, 4) and np.isfinite(log_var).all()


def test_a_missing_modality_changes_nothing_it_should_not(data):
    """A sample whose text is marked missing gives the same loss whatever its text holds."""
    x, _ = data
    present = {"text": np.zeros(len(x["image"]), "float32")}
    scrambled = {**x, "text": np.roll(x["text"], 1, axis=0)}
    losses = [small_model("poe").evaluate({**d, "present": present}, batch_size=96, verbose=0, return_dict=True)
              for d in (x, scrambled)]  # two identically seeded models, so the same codes are drawn
    assert losses[0]["loss"] == pytest.approx(losses[1]["loss"], rel=1e-6)
    assert losses[0]["text_nll"] == 0.0


def test_mixture_generation_is_reproducible_by_seed(data):
    x, _ = data
    model = small_model("moe")
    given = {"image": x["image"][:6], "text": x["text"][:6]}
    first = model.generate(given=given, target="audio", seed=3)
    np.testing.assert_array_equal(first, model.generate(given=given, target="audio", seed=3))


@pytest.mark.parametrize("fusion", ["mopoe", "concat"])
def test_save_reload_and_resume(tmp_path, data, fusion):
    x, _ = data
    model = small_model(fusion, "recurrent" if fusion == "mopoe" else "parallel")
    model.fit(x, epochs=1, batch_size=32, verbose=0)
    path = tmp_path / "multimodal.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)  # safe_mode on
    assert isinstance(loaded, MultimodalVAE) and loaded.fusion == fusion
    given = {m: v[:8] for m, v in x.items()}
    np.testing.assert_allclose(loaded.encode(given)[0], model.encode(given)[0], rtol=1e-5, atol=1e-6)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 3
    loaded.fit(x, epochs=1, batch_size=32, verbose=0)
    assert int(loaded.optimizer.iterations) == 6


def test_bad_input_is_rejected_by_name(data):
    x, _ = data
    model = small_model("mopoe")
    with pytest.raises(ValueError, match="unknown keys \\['video'\\]"):
        model.fit({**x, "video": x["image"]}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="lacks \\['audio'\\]"):
        model.fit({"image": x["image"], "text": x["text"]}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="same number of samples"):
        model.fit({**x, "text": x["text"][:10]}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="token ids must lie in \\[0, 29\\)"):
        model.generate(given={"text": np.full((2, 6), 99)}, target="image")
    with pytest.raises(ValueError, match="audio'\\]` must have shape \\(N, 32, 32\\)"):
        model.generate(given={"audio": np.zeros((2, 30, 32), "float32")}, target="image")
    everything_missing = {m: np.zeros(len(x["image"]), "float32") for m in MODALITIES}
    with pytest.raises(ValueError, match="marks every modality missing for samples \\[0, 1, 2"):
        model.fit({**x, "present": everything_missing}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="`target` must be one of"):
        model.generate(given={"text": x["text"][:2]}, target="video")
    with pytest.raises(ValueError, match="Pass `given`"):
        model.generate()
    concat = small_model("concat")
    with pytest.raises(ValueError, match="concatenation needs every modality"):
        concat.generate(given={"text": x["text"][:2]}, target="image")
    with pytest.raises(ValueError, match="`fusion` must be one of"):
        small_model("sum")
    with pytest.raises(ValueError, match="`likelihoods` must be a dict with the keys of `encoders`"):
        MultimodalVAE(model.encoders, model.decoders, {"image": "bernoulli"})


def test_contrastive_encoder_aligns_pairs_and_survives_saving(tmp_path, data):
    x, _ = data
    set_seed(0)
    model = ContrastiveEncoder({"image": image_encoder((16, 16, 1), 8, "dense", hidden=32),
                                "text": text_encoder(6, VOCABULARY_SIZE, 8, width=16, hidden=32)})
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    pairs = {"image": x["image"], "text": x["text"]}
    history = model.fit(pairs, epochs=8, batch_size=32, verbose=0).history
    assert history["loss"][-1] < history["loss"][0] - 0.3
    model.save(tmp_path / "contrastive.keras")
    loaded = keras.saving.load_model(tmp_path / "contrastive.keras")
    np.testing.assert_allclose(loaded.embed({"text": x["text"][:8]}), model.embed({"text": x["text"][:8]}),
                               rtol=1e-5, atol=1e-6)
    embedded = model.embed({"image": x["image"][:8]})
    np.testing.assert_allclose(np.linalg.norm(embedded, axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="exactly the keys"):
        model.fit({"image": x["image"]}, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="one key of"):
        model.embed({"audio": x["audio"]})
    with pytest.raises(ValueError, match="exactly two modalities"):
        ContrastiveEncoder({"image": model.encoders["image"]})


def test_fusion_subsets_cover_each_definition():
    assert len(fusion_subsets(MODALITIES, "mopoe")) == 7
    assert fusion_subsets(MODALITIES, "concat") == [MODALITIES]


def test_balanced_weights_are_the_mixtures_default_and_survive_saving(tmp_path):
    balanced = {"image": 1.0, "text": 256 / 6, "audio": 0.25}
    assert balanced_weights(MULTIDIGITS_SIZES, "image") == balanced
    assert multidigits_vae("moe", latent_dim=2).likelihood_weights == balanced
    assert multidigits_vae("poe", latent_dim=2).likelihood_weights == {m: 1.0 for m in MODALITIES}
    assert multidigits_vae("poe", latent_dim=2, likelihood_weights="balanced").likelihood_weights == balanced
    with pytest.raises(ValueError, match="`likelihood_weights` must be 'auto', 'balanced', None or a dict"):
        multidigits_vae("moe", likelihood_weights="even")
    with pytest.raises(ValueError, match="`reference` must be a key"):
        balanced_weights(MULTIDIGITS_SIZES, "video")
    model = small_model("moe", likelihood_weights=balanced)
    model.save(tmp_path / "balanced.keras")
    assert keras.saving.load_model(tmp_path / "balanced.keras").likelihood_weights == balanced


def test_the_weights_scale_each_modalitys_term_of_the_loss(data):
    "The loss with the caption weighted by w exceeds the unweighted one by (w − 1) × the caption's NLL."
    x, _ = data
    batch = {m: v[:32] for m, v in x.items()}
    logs = {}
    for name, weights in (("equal", None), ("text ×3", {"image": 1.0, "text": 3.0, "audio": 1.0})):
        model = small_model("concat", likelihood_weights=weights)
        logs[name] = model.evaluate(batch, batch_size=32, verbose=0, return_dict=True)
    assert logs["equal"]["text_nll"] == pytest.approx(logs["text ×3"]["text_nll"], rel=1e-5)
    assert logs["text ×3"]["loss"] - logs["equal"]["loss"] == pytest.approx(2 * logs["equal"]["text_nll"], rel=1e-3)


def test_shapes_model_trains_and_generates_both_ways():
    train = load_shapes(2, "train", n=64)
    model = shapes_vae("mopoe", latent_dim=4)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit({m: train[m] for m in ("image", "text")}, epochs=1, batch_size=32, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    images = model.generate(given={"text": train["text"][:4]}, target="image")
    captions = model.generate(given={"image": train["image"][:4]}, target="text")
    assert images.shape == (4, 32, 32, 3) and 0 <= images.min() and images.max() <= 1
    assert captions.shape == train["text"][:4].shape and captions.max() < len(shapes_vocabulary())
