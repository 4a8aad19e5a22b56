"""The embedded datasets: shapes, dtypes, ranges, determinism, disjoint splits, that every modality carries the
shared factor, and a clear `ValueError` for every bad argument. Backend-sensitive (images are resized and audio
features computed with Keras ops), so they run on every backend."""
import gzip
import re
import wave

import keras
import numpy as np
import pytest

from mmgen_nbdev import data, digits, multidigits, shapes
from mmgen_nbdev.data import (SHAPE_FACTORS, SHAPE_LEVELS, caption_digit, decode_dtmf, load_dataset, load_digits,
                              load_fashion_mnist, load_mnist, load_multidigits, load_ring, load_shapes, log_mel,
                              multidigits_vocabulary, shapes_vocabulary, write_wav)

pytestmark = pytest.mark.backends


def image_keys(d):
    return {k for k in d if k in ("image", "text", "audio", "waveform", "label")}


# ---- digits ---------------------------------------------------------------------------------------------------
def test_digits_shapes_ranges_and_split():
    train, test = load_digits(), load_digits("test")
    assert train["image"].shape == (1437, 8, 8, 1) and test["image"].shape == (360, 8, 8, 1)
    assert train["image"].dtype == np.float32 and train["label"].dtype == np.int32
    assert train["image"].min() == 0.0 and train["image"].max() == 1.0
    assert set(np.unique(train["label"])) == set(range(10))
    assert not set(map(bytes, train["image"])) & set(map(bytes, test["image"]))
    assert load_digits(n=7)["image"].shape == (7, 8, 8, 1)


def test_loaders_return_copies():
    first = load_digits(n=3)
    first["image"][:] = -1
    assert load_digits(n=3)["image"].min() >= 0
    md = load_multidigits(n=3)
    md["private"]["template"][:] = 99
    assert load_multidigits(n=3)["private"]["template"].max() < len(data.CAPTION_TEMPLATES)


# ---- multidigits -----------------------------------------------------------------------------------------------
def test_multidigits_shapes_dtypes_ranges():
    md = load_multidigits()
    assert md["image"].shape == (1437, 16, 16, 1) and md["image"].dtype == np.float32
    assert md["text"].shape == (1437, 6) and md["text"].dtype == np.int32
    assert md["audio"].shape == (1437, 32, 32) and md["audio"].dtype == np.float32
    assert md["waveform"].shape == (1437, 4000) and md["waveform"].dtype == np.float32
    assert md["label"].dtype == np.int32
    for key in ("image", "audio"):
        assert 0.0 <= md[key].min() and md[key].max() <= 1.0
    assert np.abs(md["waveform"]).max() <= 1.0
    assert md["text"].min() >= 0 and md["text"].max() < len(multidigits_vocabulary())


def test_every_modality_carries_the_digit():
    md = load_multidigits("test", seed=3)
    vocab = multidigits_vocabulary()
    np.testing.assert_array_equal([caption_digit(c) for c in vocab.decode_batch(md["text"])], md["label"])
    np.testing.assert_array_equal(decode_dtmf(md["waveform"]), md["label"])
    images, labels, _ = digits._digit_split()
    np.testing.assert_array_equal(labels[md["private"]["writer_sample"]], md["label"])
    # the image is the (upsampled) real digit it claims to be
    np.testing.assert_allclose(load_multidigits("test", seed=3, image_size=8)["image"],
                               images[md["private"]["writer_sample"]])


def test_multidigits_private_factors_vary_and_templates_all_used():
    md = load_multidigits()
    assert set(np.unique(md["private"]["template"])) == set(range(len(data.CAPTION_TEMPLATES)))
    for key in ("tone_seconds", "onset_seconds", "amplitude", "noise"):
        assert md["private"][key].std() > 0
    assert (md["private"]["onset_seconds"] + md["private"]["tone_seconds"]).max() <= 0.5 + 1e-6


def test_multidigits_deterministic_per_seed_and_split_disjoint_across_seeds():
    a, b, c = load_multidigits(seed=0), load_multidigits(seed=0), load_multidigits(seed=1)
    for key in image_keys(a):
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["audio"], c["audio"]) and not np.array_equal(a["text"], c["text"])
    test_images = load_multidigits("test", seed=7, image_size=8)["image"]
    train_images = load_multidigits("train", seed=0, image_size=8)["image"]
    assert not set(map(bytes, train_images)) & set(map(bytes, test_images))


@pytest.mark.parametrize("size", [8, 28])
def test_multidigits_image_size(size):
    assert load_multidigits(n=4, image_size=size)["image"].shape == (4, size, size, 1)


def test_multidigits_more_pairs_than_images_reuses_images_with_new_tones():
    md = load_multidigits("test", n=800)
    assert md["label"].shape == (800,)
    writers = md["private"]["writer_sample"]
    assert len(np.unique(writers)) == 360
    first, again = np.flatnonzero(writers == writers[0])[:2]
    assert not np.array_equal(md["waveform"][first], md["waveform"][again])


# ---- audio -----------------------------------------------------------------------------------------------------
def test_log_mel_is_per_recording_and_checks_shape():
    waves = load_multidigits(n=4)["waveform"]
    together = log_mel(np.concatenate([waves[:1] * 0.01, waves[1:]]))
    alone = log_mel(waves[:1] * 0.01)
    np.testing.assert_allclose(together[0], alone[0], atol=1e-6)
    with pytest.raises(ValueError, match="`waveforms` must have shape \\(N, samples\\)"):
        log_mel(waves[0])


def test_dtmf_tones_decode_at_the_tolerance_edges():
    t = np.arange(4000) / data.SAMPLE_RATE
    for digit in range(10):
        low, high = data.dtmf_frequencies(digit)
        for err in (-0.015, 0.015):
            tone = np.sin(2 * np.pi * low * (1 + err) * t) + np.sin(2 * np.pi * high * (1 + err) * t)
            assert decode_dtmf(tone)[0] == digit


def test_write_wav_round_trip(tmp_path):
    md = load_multidigits(n=2)
    path = write_wav(tmp_path / "t.wav", md["waveform"][1])
    with wave.open(str(path)) as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, 8000)
        back = np.frombuffer(f.readframes(f.getnframes()), "<i2") / 32767
    np.testing.assert_allclose(back, md["waveform"][1], atol=1 / 16000)
    with pytest.raises(ValueError, match="`waveform` must be 1-D"):
        write_wav(tmp_path / "u.wav", md["waveform"])


# ---- vocabularies ----------------------------------------------------------------------------------------------
def test_vocabularies_round_trip_and_reject():
    for vocab in (multidigits_vocabulary(), shapes_vocabulary()):
        assert vocab.tokens[0] == "<pad>"
        text = " ".join(vocab.tokens[1:4])
        assert vocab.decode(vocab.encode(text)) == text
        with pytest.raises(ValueError, match="outside the vocabulary"):
            vocab.encode("zebra")
        with pytest.raises(ValueError, match="at most"):
            vocab.encode(" ".join([vocab.tokens[1]] * (vocab.length + 1)))
        with pytest.raises(ValueError, match="must lie in 0.."):
            vocab.decode([len(vocab)])
        with pytest.raises(ValueError, match="one caption"):
            vocab.decode([[1, 2]])


# ---- shapes ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("level", [1, 2, 3])
def test_shapes_levels(level):
    s = load_shapes(level, n=300)
    assert s["image"].shape == (300, 32, 32, 3) and s["image"].dtype == np.float32
    assert 0.0 <= s["image"].min() and s["image"].max() <= 1.0
    assert s["text"].shape == (300, 10) and s["text"].dtype == np.int32
    assert tuple(s["factors"]) == SHAPE_LEVELS[level]
    vocab = shapes_vocabulary()
    for i in range(300):
        caption = vocab.decode(s["text"][i])
        for factor in SHAPE_LEVELS[level]:
            value = SHAPE_FACTORS[factor][s["factors"][factor][i]]
            assert f" {value} " in f" {caption} ", (caption, factor, value)
    if level == 1:
        assert np.allclose(s["image"][..., 0], s["image"][..., 1])  # level 1 is drawn in white only


def test_shapes_render_their_factors():
    s = load_shapes(3, n=600)
    img, f = s["image"], s["factors"]
    for colour, rgb in shapes._RGB.items():
        rows = f["colour"] == SHAPE_FACTORS["colour"].index(colour)
        for channel, on in enumerate(rgb):
            assert (img[rows][..., channel].max() > 0.5) == bool(on), (colour, channel)
    mass = img.sum(-1)
    r, c = np.indices(mass.shape[1:])
    top = (mass * r).sum((1, 2)) / mass.sum((1, 2)) < 16
    left = (mass * c).sum((1, 2)) / mass.sum((1, 2)) < 16
    np.testing.assert_array_equal(top * 0 + (~top) * 2 + (~left) * 1, f["position"])
    area = (img.max(-1) > 0.5).sum((1, 2))
    for k in range(len(SHAPE_FACTORS["shape"])):  # of one shape, every large one covers more than any small one
        same = f["shape"] == k
        assert area[same & (f["size"] == 1)].min() > area[same & (f["size"] == 0)].max()
    # at equal size the shapes' areas follow their geometry: circle π r², square 2.56 r², cross 2.04 r²,
    # triangle 1.30 r²
    fill = {}
    for k, name in enumerate(SHAPE_FACTORS["shape"]):
        rows = (f["shape"] == k) & (f["size"] == 1)
        fill[name] = np.median(area[rows])
    assert fill["circle"] > fill["square"] > fill["cross"] > fill["triangle"]


def test_shapes_deterministic_and_splits_differ():
    a, b = load_shapes(2, n=50, seed=4), load_shapes(2, n=50, seed=4)
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["text"], b["text"])
    assert not np.array_equal(a["image"], load_shapes(2, n=50, seed=5)["image"])
    assert not np.array_equal(a["image"], load_shapes(2, "test", n=50, seed=4)["image"])
    assert load_shapes(1, "test")["image"].shape[0] == 500 and load_shapes(1)["image"].shape[0] == 2000


# ---- bad input -------------------------------------------------------------------------------------------------
BAD = [
    (load_digits, {"split": "validation"}, "`split` must be one of 'train', 'test'"),
    (load_digits, {"n": 0}, "`n` must be an integer ≥ 1"),
    (load_multidigits, {"split": "dev"}, "`split` must be one of"),
    (load_multidigits, {"n": -5}, "`n` must be an integer ≥ 1"),
    (load_multidigits, {"n": 2.5}, "`n` must be an integer"),
    (load_multidigits, {"seed": "0"}, "`seed` must be a non-negative integer"),
    (load_multidigits, {"seed": 1.5}, "`seed` must be a non-negative integer"),
    (load_multidigits, {"seed": True}, "`seed` must be a non-negative integer"),
    (load_multidigits, {"seed": -1}, "`seed` must be a non-negative integer"),
    (load_multidigits, {"image_size": 4}, "`image_size` must be an integer ≥ 8"),
    (load_multidigits, {"seconds": 0.01}, "`seconds` must be a finite number ≥ 0.1 and ≤ 2.0"),
    (load_multidigits, {"seconds": float("nan")}, "`seconds` must be a finite number"),
    (load_multidigits, {"image_size": 16.0}, "`image_size` must be an integer"),
    (load_shapes, {"level": 2.0}, "`level` must be 1, 2 or 3"),
    (load_shapes, {"image_size": np.float32(32)}, "`image_size` must be an integer"),
    (load_shapes, {"level": 0}, "`level` must be 1, 2 or 3"),
    (load_shapes, {"level": 4}, "`level` must be 1, 2 or 3"),
    (load_shapes, {"level": "2"}, "`level` must be 1, 2 or 3"),
    (load_shapes, {"split": "all"}, "`split` must be one of"),
    (load_shapes, {"n": 0}, "`n` must be an integer ≥ 1"),
    (load_shapes, {"seed": 2.0}, "`seed` must be a non-negative integer"),
    (load_mnist, {"split": "val"}, "`split` must be one of"),
    (load_mnist, {"n": 0}, "`n` must be an integer ≥ 1"),
    (load_fashion_mnist, {"split": None}, "`split` must be one of"),
    (load_ring, {"std": float("inf")}, "`std` must be a finite number > 0"),
    (load_ring, {"std": 0}, "`std` must be a finite number > 0"),
    (load_ring, {"radius": -1.0}, "`radius` must be a finite number > 0"),
    (load_ring, {"radius": float("nan")}, "`radius` must be a finite number > 0"),
    (load_ring, {"modes": 0}, "`modes` must be an integer ≥ 1"),
    (load_ring, {"n": 1.5}, "`n` must be an integer"),
    (load_ring, {"seed": 2**40}, "`seed` must be a non-negative integer ≤ 4294967295"),
]


@pytest.mark.parametrize("loader,kwargs,message", BAD, ids=[f"{l.__name__}-{k}" for l, k, _ in BAD])
def test_bad_arguments_raise_value_error_naming_them(loader, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", "\\(")):
        loader(**kwargs)


def test_numpy_scalars_are_numbers():
    assert load_ring(np.int64(10), np.int64(4), np.float32(1.5), np.float64(0.1), np.int64(3))["points"].shape == (10, 2)
    assert load_multidigits(n=np.int64(2), image_size=np.int32(8), seed=np.uint32(1),
                            seconds=np.float32(0.5))["waveform"].shape == (2, 4000)
    assert load_shapes(np.int64(2), n=np.int64(2))["image"].shape == (2, 32, 32, 3)
    assert decode_dtmf(load_multidigits(n=1)["waveform"], sample_rate=np.int64(8000)).shape == (1,)


WAVES = np.zeros((2, 4000), "float32")
NAN_WAVES = np.where(np.arange(4000) == 7, np.nan, 0.0)[None].astype("float32")
VOCAB = multidigits_vocabulary()

# (call, the argument its error must name): numbers that are not allowed settings, NaN data, bad token ids
BAD_CALLS = [
    (lambda: decode_dtmf(NAN_WAVES), "waveforms"),
    (lambda: decode_dtmf(WAVES + np.inf), "waveforms"),
    (lambda: decode_dtmf(WAVES, sample_rate=8000.5), "sample_rate"),
    (lambda: decode_dtmf(WAVES, sample_rate=float("inf")), "sample_rate"),
    (lambda: decode_dtmf(WAVES, sample_rate=-8000), "sample_rate"),
    (lambda: decode_dtmf(WAVES, sample_rate=2000), "sample_rate"),
    (lambda: decode_dtmf(WAVES[:, :50]), "waveforms"),
    (lambda: decode_dtmf(np.zeros((2, 3, 4000))), "waveforms"),
    (lambda: log_mel(NAN_WAVES), "waveforms"),
    (lambda: log_mel(WAVES[:, :100]), "waveforms"),
    (lambda: log_mel(WAVES[:0]), "waveforms"),
    (lambda: write_wav("never.wav", NAN_WAVES[0]), "waveform"),
    (lambda: write_wav("never.wav", WAVES[0], sample_rate=8000.5), "sample_rate"),
    (lambda: write_wav("never.wav", WAVES[0], sample_rate=0), "sample_rate"),
    (lambda: data.Vocabulary(["a", "b"], length=-1), "length"),
    (lambda: data.Vocabulary(["a", "b"], length=2.5), "length"),
    (lambda: data.Vocabulary(["a b"], length=2), "words"),
    (lambda: data.Vocabulary([], length=2), "words"),
    (lambda: VOCAB.decode([1.0, np.nan]), "ids"),
    (lambda: VOCAB.decode([1.5]), "ids"),
    (lambda: VOCAB.decode([-1]), "ids"),
    (lambda: VOCAB.decode([len(VOCAB)]), "ids"),
    (lambda: VOCAB.decode(["one"]), "ids"),
    (lambda: VOCAB.decode_batch(np.array([[1, 2], [3, len(VOCAB) + 5]])), "ids"),
    (lambda: VOCAB.decode_batch(np.full((2, 3), np.inf)), "ids"),
    (lambda: VOCAB.decode_batch([1, 2]), "ids"),
    (lambda: data.digit_caption(10, 0), "digit"),
    (lambda: data.digit_caption(3.5, 0), "digit"),
    (lambda: data.digit_caption(3, -1), "template"),
    (lambda: data.dtmf_frequencies(2.7), "digit"),
    (lambda: data.dtmf_frequencies(10), "digit"),
    (lambda: data.shape_caption({"shape": 9}, 0, 1), "factors['shape']"),
    (lambda: data.shape_caption({"shape": 0}, 7, 1), "template"),
    (lambda: data.preview_digits(load_digits(n=3), n=5), "n"),
    (lambda: data.preview_digits(load_digits(n=3), n=0), "n"),
    (lambda: data.preview_digits(load_digits(n=3), n=3, columns=0), "columns"),
    (lambda: data.preview_shapes({"image": np.zeros((2, 8, 8, 3))}), "data"),
]


@pytest.mark.parametrize("call,argument", BAD_CALLS, ids=[f"{i}-{a}" for i, (_, a) in enumerate(BAD_CALLS)])
def test_bad_settings_and_data_are_refused_naming_the_argument(call, argument):
    with pytest.raises(ValueError, match=re.escape(f"`{argument}`")):
        call()


def test_text_that_is_not_a_string_is_a_type_error():
    with pytest.raises(TypeError, match="`text`"):
        VOCAB.encode(3)
    with pytest.raises(TypeError, match="`caption`"):
        data.caption_digit(None)


def test_token_ids_round_trip_as_whole_floats_and_silence_decodes_to_no_digit():
    ids = VOCAB.encode("the digit 7")
    assert VOCAB.decode(ids.astype("float32")) == "the digit 7"
    assert VOCAB.decode_batch(np.stack([ids, ids]).astype("float64")) == ["the digit 7"] * 2
    assert decode_dtmf(np.zeros((3, 4000))).tolist() == [-1, -1, -1]  # silence names no key


def test_unknown_dataset_name():
    with pytest.raises(ValueError, match="`name` must be one of 'digits', 'multidigits', 'shapes', 'ring', 'mnist'"):
        load_dataset("cifar10")
    assert load_dataset("shapes", level=2, n=3)["image"].shape == (3, 32, 32, 3)


@pytest.mark.parametrize("loader", [load_digits, load_multidigits, load_shapes, load_mnist, load_fashion_mnist])
def test_docstrings_state_shapes_dtypes_and_ranges(loader):
    doc = loader.__doc__
    assert "float32" in doc and "int32" in doc and "[0, 1]" in doc and "(N," in doc


# ---- MNIST and Fashion-MNIST through Keras's cache -------------------------------------------------------------
def write_mnist(folder, n_train=6, n_test=3):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "y_train": (np.arange(n_train) % 10).astype(np.uint8),
              "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "y_test": (np.arange(n_test) % 10).astype(np.uint8)}
    folder.mkdir(parents=True, exist_ok=True)
    np.savez(folder / "mnist.npz", **arrays)
    return arrays


def write_fashion(folder, n_train=5, n_test=4):
    "Miniature Fashion-MNIST in the IDX format Keras downloads (8-byte label and 16-byte image headers)."
    rng = np.random.default_rng(1)
    sub = folder / "fashion-mnist"
    sub.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        labels = (np.arange(n) % 10).astype(np.uint8)
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        with gzip.open(sub / f"{prefix}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(b"\x00\x00\x08\x01" + n.to_bytes(4, "big") + labels.tobytes())
        with gzip.open(sub / f"{prefix}-images-idx3-ubyte.gz", "wb") as f:
            f.write(b"\x00\x00\x08\x03" + n.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + images.tobytes())
        arrays[prefix] = (images, labels)
    return arrays


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    "An empty Keras home, and Keras's downloaders replaced by ones that fail as they do offline."
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))

    def offline():
        raise OSError("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", offline)
    return tmp_path / "keras" / "datasets"


def test_mnist_read_from_keras_cache_without_download(keras_home):
    arrays = write_mnist(keras_home)
    train, test = load_mnist(), load_mnist("test", n=2)
    assert train["image"].shape == (6, 28, 28, 1) and train["image"].dtype == np.float32
    np.testing.assert_allclose(train["image"][..., 0], arrays["x_train"] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(test["label"], arrays["y_test"][:2])
    assert train["label"].dtype == np.int32


def test_fashion_mnist_read_from_cache_dir(tmp_path, keras_home):
    arrays = write_fashion(tmp_path / "mine")
    test = load_fashion_mnist("test", cache_dir=tmp_path / "mine")
    assert test["image"].shape == (4, 28, 28, 1)
    np.testing.assert_allclose(test["image"][..., 0], arrays["t10k"][0] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(load_fashion_mnist(cache_dir=tmp_path / "mine")["label"], arrays["train"][1])


def test_offline_and_not_cached_names_the_file_and_the_folder(keras_home):
    with pytest.raises(FileNotFoundError) as error:
        load_mnist()
    message = str(error.value)
    assert "mnist.npz" in message and str(keras_home) in message and "could not be downloaded" in message
    with pytest.raises(FileNotFoundError) as error:
        load_fashion_mnist()
    assert "fashion-mnist/train-images-idx3-ubyte.gz" in str(error.value)


def test_missing_file_in_explicit_cache_dir_does_not_try_to_download(tmp_path, keras_home, monkeypatch):
    def must_not_download():
        raise AssertionError("no download may be attempted for an explicit cache_dir")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", must_not_download)
    with pytest.raises(FileNotFoundError, match="no mnist.npz in"):
        load_mnist(cache_dir=tmp_path / "empty")


def test_online_download_goes_through_keras_loader(keras_home, monkeypatch):
    calls = []

    def download():  # what Keras's loader does when online: fetch into its cache
        calls.append(1)
        write_mnist(keras_home)

    monkeypatch.setattr(keras.datasets.mnist, "load_data", download)
    assert load_mnist(n=2)["image"].shape == (2, 28, 28, 1)
    assert load_mnist(n=2)["label"].shape == (2,)
    assert calls == [1], "the second call reads the cache"


# ---- the layout: one module per dataset, every name still importable from mmgen_nbdev.data ---------------------
DATA_NAMES = ['SPLITS', 'DIGIT_WORDS', 'CAPTION_TEMPLATES', 'SAMPLE_RATE', 'DTMF_ROWS', 'DTMF_COLUMNS', 'DTMF_KEYS',
              'MEL_BANDS', 'MEL_FRAMES_PER_SECOND', 'DB_RANGE', 'SHAPE_FACTORS', 'SHAPE_LEVELS', 'SHAPE_TEMPLATES',
              'TOY_DATASETS', 'LOADERS', 'check_count', 'load_digits', 'preview_digits', 'Vocabulary',
              'multidigits_vocabulary', 'digit_caption', 'caption_digit', 'dtmf_frequencies', 'decode_dtmf', 'log_mel',
              'load_multidigits', 'preview_multidigits', 'shapes_vocabulary', 'shape_caption', 'load_shapes',
              'preview_shapes', 'load_ring', 'load_toy', 'keras_cache_dir', 'load_mnist', 'load_fashion_mnist',
              'load_dataset', 'write_wav']


def test_data_still_exports_every_name_it_exported_before_the_split():
    assert set(DATA_NAMES) <= set(data.__all__) and all(hasattr(data, name) for name in DATA_NAMES)
    # the same objects as in their new homes, not copies
    assert data.load_multidigits is multidigits.load_multidigits and data.load_digits is digits.load_digits
    assert data.load_shapes is shapes.load_shapes and data.LOADERS["shapes"] is shapes.load_shapes
