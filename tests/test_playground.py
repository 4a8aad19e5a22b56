"""The GAN playground's buttons and choosers, outside a kernel."""
import keras
import numpy as np

from mmgen_nbdev.playground import GANPlayground
from widget_helpers import PNG, backends, image_bytes


# ----------------------------------------------------------------------------- the GAN playground
def weights(network):
    return [keras.ops.convert_to_numpy(v).copy() for v in network.trainable_variables]


def changed(before, network):
    return any(not np.allclose(a, b) for a, b in zip(before, weights(network)))


@backends
def test_playground_buttons_step_what_they_say():
    playground = GANPlayground(hidden=(8,), n=256, batch_size=32, steps_per_click=2)
    assert image_bytes(playground.field).startswith(PNG) and image_bytes(playground.curves).startswith(PNG)
    d0, g0 = weights(playground.discriminator), weights(playground.generator)
    playground.buttons["d"].click()
    assert changed(d0, playground.discriminator) and not changed(g0, playground.generator)
    d1 = weights(playground.discriminator)
    playground.buttons["g"].click()
    assert changed(g0, playground.generator) and not changed(d1, playground.discriminator)
    g2, d2 = weights(playground.generator), weights(playground.discriminator)
    playground.buttons["both"].click()
    assert changed(g2, playground.generator) and changed(d2, playground.discriminator)
    assert (playground.updates, playground.d_updates, playground.g_updates) == (6, 4, 4)
    assert playground.history["update"] == [0, 2, 4, 6]
    assert int(playground.d_optimizer.iterations) == 4 and int(playground.g_optimizer.iterations) == 4
    assert playground.status.value.startswith("update 6 (D 4, G 4)")
    playground.reset_button.click()
    assert playground.updates == 0 and all(np.allclose(a, b) for a, b in zip(d0, weights(playground.discriminator)))


@backends
def test_playground_choosers_and_play():
    playground = GANPlayground(hidden=(8,), n=256, batch_size=32, steps_per_click=1)
    playground.loss_choice.value = "minimax"
    assert playground.loss == "minimax"
    playground.play.value = 1  # one tick of the Play widget: one click of "step both"
    assert playground.updates == 1 and ("both", "minimax") in playground._models
    points, arrows = playground.generator_gradients(n=10)
    _, other = playground.generator_gradients("non_saturating", n=10)
    assert arrows.shape == (10, 2) and not np.allclose(arrows, other)
    playground.dataset_choice.value = "grid"
    assert playground.dataset == "grid" and playground.updates == 0 and len(playground.data["centres"]) == 25
    assert "modes 0/25" in playground.status.value or "modes" in playground.status.value
