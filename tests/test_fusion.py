"""The multimodal VAE and the contrastive encoder on whichever backend KERAS_BACKEND selects, at small sizes: the
closed forms, every fusion trains and logs each term once, missing modalities, cross-modal and joint generation,
save and resume, and bad input rejected by name."""
import json
import os
import re
import time

import keras
import numpy as np
import pytest

from mmgen_nbdev.backend import set_seed
from mmgen_nbdev.data import load_multidigits, load_shapes, multidigits_vocabulary, shapes_vocabulary
from mmgen_nbdev.fusion import (FUSIONS, ContrastiveEncoder, MultimodalVAE, balanced_weights, fusion_subsets, info_nce,
                                product_of_experts)
from mmgen_nbdev.modalities import (audio_decoder, audio_encoder, image_decoder, image_encoder, text_decoder,
                                    text_encoder)
from mmgen_nbdev.recipes import MULTIDIGITS_SIZES, likeliest_caption_digit, multidigits_vae, shapes_vae

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
    mean, log_var = model.posterior({"audio": x["audio"][:4]})
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


@pytest.mark.parametrize("fusion", ["moe", "mopoe", "poe"])
def test_inference_uses_the_posteriors_training_fused(data, fusion):
    """One modality's posterior is its expert times the prior, as in training, for every fusion (the mixture's
    components included): decoding codes the decoders were never trained on would be wrong."""
    x, _ = data
    model = small_model(fusion)
    image = x["image"][:5]
    mean, log_var = model.encoders["image"].predict(image, verbose=0)
    expected_mean, expected_log_var = (keras.ops.convert_to_numpy(v)
                                       for v in product_of_experts(mean[None], log_var[None]))
    got_mean, got_log_var = model.posterior({"image": image})
    np.testing.assert_allclose(got_mean, expected_mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_log_var, expected_log_var, rtol=1e-4, atol=1e-5)


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
    np.testing.assert_allclose(loaded.embed(given), model.embed(given), rtol=1e-5, atol=1e-6)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) == 3
    after_reload = loaded.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0).history["loss"]
    assert int(loaded.optimizer.iterations) == 6
    # the reloaded model continues where the saved one stopped: the same random state, so the same noise and loss
    original = model.fit(x, epochs=1, batch_size=32, shuffle=False, verbose=0).history["loss"]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded.seed_generator.state),
                                  keras.ops.convert_to_numpy(model.seed_generator.state))
    np.testing.assert_allclose(after_reload, original, rtol=1e-4)
    # the weights agree up to rounding: torch's CPU kernels round the reloaded (re-allocated) weights' products
    # differently, and Adam turns a near-zero gradient's rounding into up to a step of its size (1e-3)
    for a, b in zip(loaded.trainable_variables, model.trainable_variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), rtol=0, atol=5e-3)


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


# --- numbers of every kind accepted, bad settings refused by name ----------------------------------------------
@pytest.fixture(scope="module")
def networks():
    "The networks of one tiny MultiDigits model, shared by the tests that only construct models around them."
    model = small_model("mopoe", "recurrent")
    return model.encoders, model.decoders, model.likelihoods


def test_numpy_scalars_are_accepted_and_stored_as_plain_numbers(networks, data):
    encoders, decoders, likelihoods = networks
    model = MultimodalVAE(encoders, decoders, likelihoods, fusion="poe", beta=np.float32(0.5), seed=np.int64(3),
                          likelihood_weights={"image": np.float32(1), "text": np.int64(2), "audio": np.float64(0.25)})
    config = model.get_config()
    assert json.loads(json.dumps({k: config[k] for k in ("beta", "seed", "likelihood_weights")})) == {
        "beta": 0.5, "seed": 3, "likelihood_weights": {"image": 1.0, "text": 2.0, "audio": 0.25}}
    assert type(model.beta) is float and type(model.seed) is int
    assert all(type(w) is float for w in model.likelihood_weights.values())
    contrastive = ContrastiveEncoder({"image": image_encoder((16, 16, 1), 4, "dense", hidden=8),
                                      "text": text_encoder(6, VOCABULARY_SIZE, 4, width=4, hidden=8)},
                                     temperature=np.float32(0.1), learn_temperature=np.bool_(False))
    assert type(contrastive.temperature) is float and contrastive.temperature == pytest.approx(0.1)
    assert multidigits_vae("poe", latent_dim=np.int64(2), seed=np.int64(1), beta=np.float32(2)).beta == 2.0
    assert balanced_weights({"image": np.int64(256), "text": np.int32(6)}, "image") == {"image": 1.0, "text": 256 / 6}
    x, _ = data
    joint = model.generate(n=np.int64(2), seed=np.int64(5), batch_size=np.int64(8))
    assert joint["text"].shape == (2, 6)
    assert model.embed({"image": x["image"][:3]}, batch_size=np.int32(2)).shape == (3, 4)


def _bad_settings(networks, data):
    "(call, the argument its error must name) for each kind of bad setting of each public function and class."
    encoders, decoders, likelihoods = networks
    x, _ = data
    build = lambda **kwargs: MultimodalVAE(encoders, decoders, likelihoods, **kwargs)
    weights = lambda **change: {"image": 1.0, "text": 1.0, "audio": 1.0, **change}
    model = build(fusion="moe")
    contrastive = lambda **kwargs: ContrastiveEncoder({"image": image_encoder((16, 16, 1), 4, "dense", hidden=8),
                                                       "text": text_encoder(6, VOCABULARY_SIZE, 4, width=4, hidden=8)},
                                                      **kwargs)
    unit = np.eye(4, dtype="float32")
    cases = [(lambda: build(beta=value), "beta") for value in (np.inf, np.nan, -1.0, True, "1")]
    cases += [(lambda: build(likelihood_weights=weights(text=value)), "likelihood_weights['text']")
              for value in (-1.0, np.inf, np.nan, None)]
    cases += [(lambda: build(likelihood_weights={"image": 1.0}), "likelihood_weights"),
              (lambda: build(likelihood_weights=[1.0, 1.0, 1.0]), "likelihood_weights"),
              (lambda: build(fusion="sum"), "fusion")]
    cases += [(lambda: build(seed=value), "seed") for value in (-1, 2**40, 1.5, np.int64(-3))]
    cases += [(lambda: contrastive(temperature=value), "temperature") for value in (0.0, -0.1, np.inf, np.nan, True)]
    cases += [(lambda: contrastive(learn_temperature="yes"), "learn_temperature")]
    cases += [(lambda: multidigits_vae(latent_dim=value), "latent_dim") for value in (0, -1, 2.5, np.int64(0))]
    cases += [(lambda: multidigits_vae(beta=np.float32(np.inf)), "beta"), (lambda: multidigits_vae(seed=-1), "seed"),
              (lambda: multidigits_vae(fusion="sum"), "fusion"), (lambda: shapes_vae(image_size=0), "image_size"),
              (lambda: shapes_vae(latent_dim=-2), "latent_dim"),
              (lambda: balanced_weights({"image": 256, "text": 0}, "image"), "sizes['text']")]
    cases += [(lambda: model.generate(n=value), "n") for value in (0, -1, 2.5)]
    cases += [(lambda: model.generate(n=2, seed=value), "seed") for value in (-1, 2**40)]
    cases += [(lambda: model.generate(n=2, batch_size=0), "batch_size"), (lambda: model.generate(n=2, sample="yes"), "sample"),
              (lambda: model.generate(n=2, target="video"), "target"),
              (lambda: model.posterior({"image": x["image"][:2]}, batch_size=0), "batch_size"),
              (lambda: model.decode(np.zeros((2, 4)), target="video"), "target"),
              (lambda: model.decode(np.full((2, 4), np.inf), target="image"), "z"),
              (lambda: model.decode(np.zeros((2, 5)), target="image"), "z"),
              (lambda: likeliest_caption_digit(model, np.full((2, 4), np.nan)), "codes"),
              (lambda: likeliest_caption_digit(model, np.zeros((2, 3))), "codes")]
    cases += [(lambda: info_nce(unit, unit, value), "inverse_temperature") for value in (0.0, -1.0, np.inf, np.nan)]
    cases += [(lambda: info_nce(np.zeros((4, 4), "float32"), unit, 1.0), "a"),
              (lambda: info_nce(unit, unit[:3], 1.0), "a"),
              (lambda: info_nce(unit, np.full((4, 4), np.nan), 1.0), "b")]
    means, log_vars = np.zeros((2, 3, 4), "float32"), np.zeros((2, 3, 4), "float32")
    cases += [(lambda: product_of_experts(means, log_vars, present=np.array([[1, 0, 1], [1, 0, 0]])), "present"),
              (lambda: product_of_experts(means, log_vars, present=np.full((2, 3), 0.5)), "present"),
              (lambda: product_of_experts(means, np.full((2, 3, 4), np.nan)), "log_vars"),
              (lambda: product_of_experts(means, log_vars[:1]), "means")]
    for setting, value in (("epochs", 0), ("epochs", -1), ("batch_size", 0), ("validation_split", 1.5),
                           ("steps_per_epoch", 0), ("initial_epoch", -1)):
        cases.append((lambda setting=setting, value=value: model.fit(x, **{setting: value}, verbose=0), setting))
    return cases


def test_bad_settings_are_refused_by_name(networks, data):
    for call, name in _bad_settings(networks, data):
        with pytest.raises(ValueError, match=f"`{re.escape(name)}`"):
            call()


# --- a rejected call leaves the model as it was -------------------------------------------------------------------
def _bad_data(x):
    "Each kind of bad input a MultiDigits model can get, as (what it is, the data)."
    few = {m: v[:8] for m, v in x.items()}
    text = few["text"].copy()
    text[0, 0] = VOCABULARY_SIZE  # one id past the vocabulary
    return [("an array", few["image"]), ("a list", [few["image"]]), ("a missing key", {"image": few["image"]}),
            ("an unknown key", {**few, "video": few["image"]}), ("a wrong shape", {**few, "image": few["image"][..., 0]}),
            ("NaN values", {**few, "audio": np.where(np.eye(32, dtype=bool), np.nan, few["audio"])}),
            ("an infinite value", {**few, "image": np.where(few["image"] > 0.5, np.inf, few["image"])}),
            ("an out-of-vocabulary id", {**few, "text": text}), ("a negative id", {**few, "text": -few["text"] - 1}),
            ("a wrong dtype", {**few, "text": few["text"].astype("float32")}),
            ("strings", {**few, "text": few["text"].astype(str)}), ("no samples", {m: v[:0] for m, v in few.items()}),
            ("a bad mask", {**few, "present": {"text": np.full(8, 0.5)}})]


def test_a_rejected_call_leaves_the_model_usable(data):
    x, _ = data
    model = small_model("mopoe", "recurrent")
    few = {m: v[:8] for m, v in x.items()}
    valid = {"fit": lambda d: model.fit(d, epochs=1, batch_size=8, verbose=0),
             "evaluate": lambda d: model.evaluate(d, batch_size=8, verbose=0),
             "predict": lambda d: model.predict(d, batch_size=8, verbose=0),
             "posterior": model.posterior,
             "generate": lambda d: model.generate(given=d, target="text")}
    for entry, call in valid.items():
        for kind, bad in _bad_data(x):
            if kind == "a missing key" and entry not in ("fit", "evaluate"):
                continue  # the others read any subset of the modalities
            with pytest.raises(ValueError, match="`(x|inputs|given)"):
                call(bad)
            out = call(few)  # the next valid call works
            assert out is not None, (entry, kind)
    assert np.isfinite(model.evaluate(few, batch_size=8, verbose=0)).all()


def test_a_failed_stream_leaves_the_model_usable(data):
    "A stream is checked by Keras batch by batch; a batch that fails while tracing must not break the next call."
    x, _ = data
    few = {m: v[:8] for m, v in x.items()}
    model = small_model("poe")
    with pytest.raises(Exception):
        model.fit((few["image"] for _ in range(2)), epochs=1, verbose=0)  # arrays, not dicts
    history = model.fit(few, epochs=1, batch_size=8, verbose=0).history
    assert np.isfinite(history["loss"]).all()


class NaNBatches(keras.utils.PyDataset):
    "Dict batches of `x`, the third with a NaN pixel: streamed, so nothing sees them before training."

    def __init__(self, x):
        super().__init__()
        self.x = x

    def __len__(self):
        return 4

    def __getitem__(self, index):
        batch = {m: v[index * 8:(index + 1) * 8].copy() for m, v in self.x.items()}
        if index == 2:
            batch["image"][0, 0, 0, 0] = np.nan
        return batch


def test_a_streamed_nan_stops_training_at_its_batch(data):
    x, _ = data
    model = small_model("mopoe")
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 3\b"):
        model.fit(NaNBatches(x), epochs=2, shuffle=False, verbose=0)


def test_contrastive_encoder_refuses_bad_data_and_stays_usable(data):
    x, _ = data
    set_seed(0)
    model = ContrastiveEncoder({"image": image_encoder((16, 16, 1), 4, "dense", hidden=8),
                                "text": text_encoder(6, VOCABULARY_SIZE, 4, width=4, hidden=8)})
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    pairs = {"image": x["image"][:8], "text": x["text"][:8]}
    bad_text = pairs["text"].copy()
    bad_text[1, 2] = VOCABULARY_SIZE + 3
    bad = [x["image"][:8], {"image": pairs["image"]}, {**pairs, "text": bad_text},
           {**pairs, "image": np.full_like(pairs["image"], np.nan)}, {**pairs, "image": pairs["image"][..., 0]},
           {**pairs, "text": pairs["text"].astype("float32")}]
    for entry, call in {"fit": lambda d: model.fit(d, epochs=1, batch_size=8, verbose=0),
                        "evaluate": lambda d: model.evaluate(d, batch_size=8, verbose=0),
                        "predict": lambda d: model.predict(d, batch_size=8, verbose=0)}.items():
        for data_ in bad:
            with pytest.raises(ValueError):
                call(data_)
            call(pairs)
    with pytest.raises(ValueError, match="`inputs\\['text'\\]` token ids must lie in"):
        model.embed({"text": bad_text})
    with pytest.raises(ValueError, match="`inputs\\['image'\\]` holds"):
        model.embed({"image": np.full_like(pairs["image"], np.nan)})
    assert model.embed({"text": pairs["text"]}).shape == (8, 4)


# --- repeated use runs at a steady memory ---------------------------------------------------------------------
def _resident_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) / 1024 for line in status if line.startswith("VmRSS"))


@pytest.fixture
def one_torch_thread():
    "On a busy 2-core machine torch's two intra-op threads wait on each other (500 µs a tiny matmul): use one."
    if keras.backend.backend() != "torch":
        yield
        return
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the resident memory from /proc")
def test_repeated_generation_sampling_and_encoding_run_at_steady_memory(data, one_torch_thread):
    """200 image→caption generations (the recurrent decoder's word-by-word loop), with encodings and draws from the
    prior between them, grow the process by far less than the 11 MB a call an eager decoding loop cost on JAX."""
    x, _ = data
    model = small_model("mopoe", "recurrent")
    images, pair = x["image"][:3], {"image": x["image"][:3], "text": x["text"][:3]}
    for seed in range(3):  # the first calls trace and compile
        model.generate(given={"image": images}, target="text"), model.posterior(pair), model.generate(n=3, seed=seed)
    before, start = _resident_mb(), time.perf_counter()
    for i in range(200):
        captions = model.generate(given={"image": images}, target="text", sample=bool(i % 2), seed=i)
        if i % 2:
            model.posterior(pair)
            model.generate(n=3, seed=i)
    grown, seconds = _resident_mb() - before, time.perf_counter() - start
    assert captions.shape == (3, 6)
    assert grown < 100, f"the process grew by {grown:.0f} MB over 200 generations"
    assert seconds < 60, f"200 generations took {seconds:.0f} s"
