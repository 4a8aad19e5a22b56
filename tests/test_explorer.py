"""The latent explorer: the sliders' point decoded, the interpolation, on a VAE, a multimodal VAE and a conditional GAN."""
import numpy as np

from mmgen_nbdev.data import load_multidigits
from mmgen_nbdev.explorer import LatentExplorer
from mmgen_nbdev.recipes import multidigits_vae
from mmgen_nbdev.gan import GAN, dcgan_discriminator, dcgan_generator
from widget_helpers import PNG, backends, digits, image_bytes, small_vae


# ----------------------------------------------------------------------------- the latent explorer
@backends
def test_explorer_decodes_the_sliders_point_and_interpolates(digits):
    vae = small_vae()
    vae.fit(digits["image"], epochs=1, verbose=0)
    explorer = LatentExplorer(vae, digits["image"], digits["label"])
    assert len(explorer.sliders) == 2 and "mmgen-explorer" in explorer.widget._dom_classes
    before = image_bytes(explorer.outputs["x"])
    explorer.sliders[0].value = 2.0
    assert image_bytes(explorer.outputs["x"]) != before
    np.testing.assert_allclose(explorer.point(), [2.0, 0.0])
    a, b = (end.value for end in explorer.ends)
    assert digits["label"][a] != digits["label"][b]
    _, decoded = explorer.interpolation(a, b)
    np.testing.assert_allclose(decoded["x"][[0, -1]], vae.reconstruct(digits["image"][[a, b]]), atol=1e-4)
    strip = image_bytes(explorer.strip)
    explorer.ends[1].value = b + 1
    assert image_bytes(explorer.strip) != strip


@backends
def test_explorer_on_a_multimodal_vae_and_a_conditional_gan():
    data = load_multidigits("test", n=24)
    explorer = LatentExplorer(multidigits_vae("mopoe", latent_dim=6), data, sliders=3, steps=2)
    assert explorer.axis_names == ["PC1", "PC2", "PC3"]
    assert set(explorer.outputs) == {"image", "text", "audio"}
    assert explorer.kinds == {"image": "image", "text": "text", "audio": "spectrogram"}
    assert explorer.outputs["text"].value.startswith("<code>")
    assert image_bytes(explorer.outputs["audio"]).startswith(PNG)
    cgan = GAN(dcgan_generator(4, (16, 16, 1), filters=(4, 4), num_classes=10),
               dcgan_discriminator((16, 16, 1), filters=(4, 4), num_classes=10), value_range=(-1, 1), seed=0)
    explorer = LatentExplorer(cgan)
    before = image_bytes(explorer.outputs["x"])
    explorer.label.value = 7
    assert image_bytes(explorer.outputs["x"]) != before
    assert explorer.ends[0].description == "from seed"
