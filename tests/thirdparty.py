"""Build throwaway third-party plugin distributions (a dist-info on a temporary sys.path)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path


def make_distribution(site: Path, dist: str, module: str, source: str, version: str = "0.1") -> None:
    """Write ``module.py`` and a dist-info declaring it in the ``research`` entry-point group."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"  # as pip names it: the stem splits at '-'
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[research]\n{module} = {module}\n")


def builds_wheels_here() -> bool:
    """Whether pip can build a package with this environment's setuptools, offline:
    setuptools 70.1 and later have bdist_wheel built in, older ones need the wheel package."""
    try:
        version = tuple(int(part) for part in importlib.metadata.version("setuptools").split(".")[:2])
    except importlib.metadata.PackageNotFoundError:
        return False
    return version >= (70, 1) or importlib.util.find_spec("wheel") is not None


def pip_install(package: Path, target: Path, timeout: float) -> None:
    """``pip install --target`` of a package folder, as a user installs a plugin. Without build
    isolation pip builds with this environment's setuptools, offline; a fresh Python 3.11 venv's
    setuptools 65 cannot build a wheel without the wheel package, so then pip's isolated build
    fetches the build backend from the configured index."""
    isolation = ["--no-build-isolation"] if builds_wheels_here() else []
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
                           *isolation, "--target", str(target), str(package)],
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout + done.stderr


SIGN_SGD = '''
    """A third-party plugin: sign SGD and an observer that records epochs."""
    import numpy as np
    from research import hookimpl
    from research.space import Float

    EPOCHS = []

    class SignSGD:
        """p -= lr * sign(g)."""
        search_space = {"lr": Float(1e-4, 1e-1, "log", name="lr")}

        def __init__(self, params, lr=0.001):
            self.params = params
            self.hyper = {"lr": float(lr)}

        def set(self, name, value):
            self.hyper[name] = float(value)

        def step(self, grads):
            for p, g in zip(self.params, grads):
                p -= self.hyper["lr"] * np.sign(g)

        def state(self):
            return {"lr": np.array(self.hyper["lr"])}

        def load_state(self, state):
            self.hyper["lr"] = float(state["lr"])

    @hookimpl
    def register_optimizers(register):
        register("signsgd", SignSGD)

    @hookimpl
    def on_epoch_end(trial, epoch, metrics):
        EPOCHS.append((epoch, metrics["val_acc"]))
'''
