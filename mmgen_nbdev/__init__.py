__version__ = "0.1.0"

# Keras finds a saved class (`keras.saving.load_model`) only once the module that registers it has run, so importing
# the package imports every module with a `@keras.saving.register_keras_serializable` class. The one exception is
# the `mmgen` console script's own process: its `--help`, `--version` and usage errors answer before Keras (and
# TensorFlow) is imported, and its commands import what they use. tests/test_cli.py checks both.
import os as _os
import re as _re
import sys as _sys

SAVEABLE_MODULES = ("modalities", "networks", "ae", "vae", "gan", "fusion", "contrastive")


def register_saveables() -> None:
    "Import the modules that register the package's saveable Keras classes (`Autoencoder`, `VAE`, `GAN`, ...)."
    import importlib
    for name in SAVEABLE_MODULES:
        importlib.import_module(f"{__name__}.{name}")


def _in_console_script() -> bool:
    "Whether this process is the `mmgen` console script (`mmgen`, or `mmgen.exe` / `mmgen-script.py` on Windows)."
    argv0 = _sys.argv[0] if getattr(_sys, "argv", None) else ""
    return _re.sub(r"(-script\.pyw?|\.exe)$", "", _os.path.basename(argv0)) == "mmgen"


if not _in_console_script():
    register_saveables()
