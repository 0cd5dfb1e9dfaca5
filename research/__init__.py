"""research: hyperparameter research on small neural networks.

`hookimpl` marks plugin implementations (see research.hookspecs for the contract).
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

PROJECT = "research"  # the import package, the command, the entry-point group and pluggy's project
DISTRIBUTION = "research-hparams"  # the name on the package index ("research" is someone else's)
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

try:
    __version__ = version(DISTRIBUTION)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["hookimpl", "hookspec", "__version__", "train", "RunResult", "load_model"]


def __getattr__(name: str):
    """The Python API, imported on first use so `research --version` stays instant."""
    if name == "train":
        from research.study.trainer import train

        return train
    if name == "load_model":
        from research.nn.exported import load_model

        return load_model
    if name == "RunResult":
        from research.contracts import RunResult

        return RunResult
    raise AttributeError(f"module 'research' has no attribute '{name}'")
