"""Data that does not fit in memory, on whichever backend KERAS_BACKEND selects: the models train on a
`keras.utils.PyDataset`, a `tf.data.Dataset` and an image folder (`keras.utils.image_dataset_from_directory`), a
stream's first batch is checked like an array (and a rejected call changes nothing), the metrics read streams batch
by batch, and streaming far more samples than memory holds keeps memory flat."""
from pathlib import Path

import keras
import numpy as np
import pytest

from mmgen_nbdev.ae import Autoencoder
from mmgen_nbdev.data import load_digits
from mmgen_nbdev.gan import GAN, dcgan_discriminator, dcgan_generator
from mmgen_nbdev.metrics import judged_frechet_distance, train_judge
from mmgen_nbdev.modalities import image_decoder, image_encoder
from mmgen_nbdev.vae import VAE

pytestmark = pytest.mark.backends
DIGITS = load_digits("train", n=512, image_size=16)


class Digits(keras.utils.PyDataset):
    "The digits in batches of 64, optionally with their labels and scaled by `scale`."

    def __init__(self, labels=False, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.labels, self.scale = labels, scale

    def __len__(self):
        return 8

    def __getitem__(self, i):
        x = DIGITS["image"][i * 64:(i + 1) * 64] * self.scale
        return (x, DIGITS["label"][i * 64:(i + 1) * 64]) if self.labels else x


class Generated(keras.utils.PyDataset):
    "`batches` batches of 64 random 28×28 images, made when asked for: the dataset holds none of them."

    def __init__(self, batches, **kwargs):
        super().__init__(**kwargs)
        self.batches = batches

    def __len__(self):
        return self.batches

    def __getitem__(self, i):
        return np.random.default_rng(i).random((64, 28, 28, 1), dtype=np.float32)


def small_vae(shape=(16, 16, 1)):
    model = VAE(image_encoder(shape, 2, gaussian=True), image_decoder(2, shape), seed=0)
    model.compile(optimizer="adam")
    return model


def test_every_model_trains_on_a_pydataset():
    small_vae().fit(Digits(), epochs=1, verbose=0)
    ae = Autoencoder(image_encoder((16, 16, 1), 4), image_decoder(4, (16, 16, 1)), seed=0)
    ae.compile(optimizer="adam")
    ae.fit(Digits(), epochs=1, verbose=0)
    cgan = GAN(dcgan_generator(8, (16, 16, 1), num_classes=10), dcgan_discriminator((16, 16, 1), num_classes=10),
               seed=0)
    cgan.compile()
    history = cgan.fit(Digits(labels=True, scale=1.0), epochs=1, verbose=0)
    assert np.isfinite(history.history["d_loss"][-1])


def test_a_streams_first_batch_is_checked_and_a_rejected_call_changes_nothing():
    model = small_vae()
    model.fit(Digits(), epochs=1, verbose=0)
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(ValueError, match=r"`x` must lie in \[0.0, 1.0\].*first batch of the Digits passed as `x`"):
        model.fit(Digits(scale=255.0), epochs=1, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_an_image_folder_trains_the_vae_and_is_judged_batch_by_batch(tmp_path):
    from PIL import Image
    for i, (image, label) in enumerate(zip(DIGITS["image"][:96], DIGITS["label"][:96])):
        folder = Path(tmp_path) / str(label)
        folder.mkdir(exist_ok=True)
        Image.fromarray(np.round(image[..., 0] * 255).astype("uint8")).save(folder / f"{i}.png")
    images = keras.utils.image_dataset_from_directory(tmp_path, image_size=(16, 16), color_mode="grayscale",
                                                      batch_size=32, shuffle=False)
    with pytest.raises(ValueError, match="first batch"):  # the folder's pixels are 0..255
        small_vae().fit(images, epochs=1, verbose=0)
    scaled = images.map(lambda x, y: (x / 255.0, y))
    small_vae().fit(scaled, epochs=1, verbose=0)
    test = load_digits("test", image_size=16)
    judge = train_judge(DIGITS["image"], DIGITS["label"], test["image"], test["label"], epochs=2)
    streamed = judged_frechet_distance(scaled, test["image"], judge)
    in_memory = judged_frechet_distance(np.concatenate([x.numpy() for x, _ in scaled]), test["image"], judge)
    assert streamed == pytest.approx(in_memory, rel=1e-4)


def test_streaming_far_more_than_memory_holds_keeps_memory_flat():
    def resident_mb():
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096 / 2 ** 20

    class Memory(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.mb = []

        def on_epoch_end(self, epoch, logs=None):
            self.mb.append(resident_mb())

    stream, memory = Generated(256), Memory()  # 16,384 images, 51 MB, per epoch; 154 MB over three
    small_vae((28, 28, 1)).fit(stream, epochs=3, verbose=0, callbacks=[memory])
    assert memory.mb[-1] - memory.mb[0] < 40, memory.mb  # holding the data would take over 100 MB more
    test = load_digits("test", image_size=16)
    judge = train_judge(DIGITS["image"], DIGITS["label"], test["image"], test["label"], epochs=1)
    before = resident_mb()
    assert len(judge.features(Digits())) == 512
    assert resident_mb() - before < 40


def test_the_dashboard_and_the_explorer_show_a_stream(tmp_path):
    from mmgen_nbdev.dashboard import TrainingDashboard
    from mmgen_nbdev.explorer import LatentExplorer
    board = TrainingDashboard(Digits(labels=True), every_seconds=0, output="png", folder=tmp_path)
    np.testing.assert_array_equal(board.labels, DIGITS["label"][:500])  # the stream's classes colour the points
    assert board.data.shape == (500, 16, 16, 1)
    vae = small_vae()
    vae.fit(Digits(), epochs=2, verbose=0, callbacks=[board])
    assert "latent" in board.panels and [f.epoch for f in board.frames] == [0, 1, 2]
    assert (tmp_path / "frames.json").exists()
    explorer = LatentExplorer(vae, Digits(labels=True), points=100)
    assert explorer.codes.shape == (100, 2) and len(explorer.labels) == 100
    with pytest.raises(TypeError, match="one-shot iterator"):
        TrainingDashboard(iter(Digits()), output="silent")
