"""Packaging for mmgen_nbdev, in nbdev 2's shape: everything is read from settings.ini."""
from configparser import ConfigParser

import setuptools

config = ConfigParser(delimiters=["="])
config.read("settings.ini", encoding="utf-8")
cfg = config["DEFAULT"]

for key in "lib_name user description keywords author author_email license status min_python version".split():
    if key not in cfg:
        raise KeyError(f"settings.ini is missing the key {key!r}")

licenses = {
    "apache2": ("Apache Software License 2.0", "OSI Approved :: Apache Software License"),
    "mit": ("MIT License", "OSI Approved :: MIT License"),
}
statuses = ["1 - Planning", "2 - Pre-Alpha", "3 - Alpha", "4 - Beta", "5 - Production/Stable", "6 - Mature", "7 - Inactive"]
py_versions = "3.10 3.11 3.12 3.13".split()
min_python = cfg["min_python"]
lic = licenses.get(cfg["license"].lower(), (cfg["license"], None))


def words(key):
    """The whitespace-separated requirements under `key`."""
    return cfg.get(key, "").split()


def lines(key):
    """The requirements under `key`, one per line (environment markers may contain spaces)."""
    return [line.strip() for line in cfg.get(key, "").splitlines() if line.strip()]


def version_tuple(v):
    return tuple(int(part) for part in v.split("."))


requirements = words("requirements") + lines("tf_requirements")
extras = {
    "dev": words("dev_requirements") + words("docs_requirements"),
    "docs": words("docs_requirements"),
    "jax": words("jax_requirements"),
    "jax-gpu": words("jax_gpu_requirements"),
    "torch": words("torch_requirements"),
    "gpu": words("gpu_requirements"),
}

setuptools.setup(
    name=cfg["lib_name"],
    license=lic[0],
    classifiers=[
        "Development Status :: " + statuses[int(cfg["status"])],
        "Intended Audience :: " + cfg["audience"].title(),
        "Natural Language :: " + cfg["language"].title(),
    ]
    + [f"Programming Language :: Python :: {v}" for v in py_versions
       if version_tuple(v) >= version_tuple(min_python)]
    + ([f"License :: {lic[1]}"] if lic[1] else []),
    url=cfg["git_url"],
    packages=setuptools.find_packages(include=[cfg["lib_name"], cfg["lib_name"] + ".*"]),
    include_package_data=True,
    install_requires=requirements,
    extras_require=extras,
    python_requires=">=" + min_python,
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    zip_safe=False,
    entry_points={
        "console_scripts": cfg.get("console_scripts", "").split(),
        "nbdev": [f"{cfg['lib_path']}={cfg['lib_path']}._modidx:d"],
    },
    version=cfg["version"],
    description=cfg["description"],
    keywords=cfg["keywords"],
    author=cfg["author"],
    author_email=cfg["author_email"],
)
