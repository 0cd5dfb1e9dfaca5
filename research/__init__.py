"""research: hyperparameter research on small neural networks.

`hookimpl` marks plugin implementations (see research.hookspecs for the contract).
"""

from importlib.metadata import PackageNotFoundError, version

import pluggy

PROJECT = "research"
hookimpl = pluggy.HookimplMarker(PROJECT)
hookspec = pluggy.HookspecMarker(PROJECT)

try:
    __version__ = version(PROJECT)
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["hookimpl", "hookspec", "__version__"]
