"""Which layer doubles a decoder's resolution fastest on each backend, run by hand (not a test): samples per second
of a decoder trained from a 16-dimensional code (batch 128, Adam, mean squared error on random targets), growing its
images with an upsampling layer then a 3x3 convolution, a 4x4 stride-2 transposed convolution, or the package's
sub-pixel convolution (`modalities.upsample`), at 28x28x1 (filters 64, 32) and at 32x32x3 and 64x64x3 (filters 128,
64, 32). The modalities chapter's table came from this script on a 2-core CPU.

    python benchmarks/upsampling.py --out benchmark-out                  # about 6 minutes on a 2-core CPU
    python benchmarks/upsampling.py --out benchmark-out --sizes 28 --backends jax
Each configuration runs in a fresh process on its backend; results go to upsampling.json and upsampling.md in --out.
"""
import argparse
import json
from pathlib import Path

from mmgen_nbdev.bench.turns import run_script

LAYERS = ("upsample_conv", "transposed", "sub_pixel")
SHAPES = {"28": (28, 28, 1), "32": (32, 32, 3), "64": (64, 64, 3)}

MEASURE = """import json, sys, time
import keras, numpy as np
from keras import layers
from mmgen_nbdev.modalities import upsample
c = json.loads(sys.argv[1])
height, width, channels = c["shape"]
filters = (64, 32) if height == 28 else (128, 64, 32)


def grow(h, f):
    if c["layer"] == "upsample_conv":
        return layers.Conv2D(f, 3, padding="same", activation="relu")(layers.UpSampling2D(2)(h))
    if c["layer"] == "transposed":
        return layers.Conv2DTranspose(f, 4, strides=2, padding="same", activation="relu")(h)
    return upsample(h, f, activation="relu")


scale = 2 ** len(filters)
z = keras.Input((16,))
h = layers.Reshape((height // scale, width // scale, filters[0]))(
    layers.Dense((height // scale) * (width // scale) * filters[0], activation="relu")(z))
for f in filters:
    h = grow(h, f)
model = keras.Model(z, layers.Conv2D(channels, 3, padding="same")(h))
model.compile("adam", "mse")
n = 2048 if height < 64 else 1024
rng = np.random.default_rng(0)
x, y = rng.standard_normal((n, 16), "float32"), rng.random((n, height, width, channels), "float32")
model.fit(x, y, batch_size=128, epochs=1, verbose=0)  # traces and warms up
start, cpu = time.perf_counter(), time.process_time()
model.fit(x, y, batch_size=128, epochs=2, verbose=0)
wall, cpu = time.perf_counter() - start, time.process_time() - cpu
print(json.dumps({"samples_per_s": 2 * n / wall, "cpu_ms_per_sample": 1000 * cpu / (2 * n),
                  "parameters": model.count_params()}), flush=True)"""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sizes", default="28,32,64")
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    args = parser.parse_args()
    rows = []
    for size in args.sizes.split(","):
        for backend in args.backends.split(","):
            for layer in LAYERS:
                result = run_script(MEASURE, {"shape": SHAPES[size], "layer": layer}, backend, timeout=900)
                rows.append({"size": size, "backend": backend, "layer": layer, **result})
                print(json.dumps(rows[-1]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "upsampling.json").write_text(json.dumps(rows, indent=1))
    lines = ["| size | backend | layer | samples/s | CPU ms/sample | parameters |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['size']} | {r['backend']} | {r['layer']} | {r.get('samples_per_s', float('nan')):,.0f} | "
              f"{r.get('cpu_ms_per_sample', float('nan')):.2f} | {r.get('parameters', r.get('error', ''))} |"
              for r in rows]
    (out / "upsampling.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
