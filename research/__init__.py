"""research: hyperparameter research on small neural networks.

`hookimpl` marks plugin implementations (see research.hookspecs for the contract).

Every name here is made on first use, so that importing the package (as the `research`
command does before anything else, research.__main__) imports nothing: `research --version`
stays instant, and a Ctrl-C in the command's first moments meets the command's own guard.
"""

PROJECT = "research"  # the import package, the command, the entry-point group and pluggy's project
DISTRIBUTION = "research-hparams"  # the name on the package index ("research" is someone else's)

__all__ = ["hookimpl", "hookspec", "__version__", "train", "RunResult", "load_model"]


def __getattr__(name: str):
    """The names of the package, each made or imported once, on first use."""
    if name in ("hookimpl", "hookspec"):
        import pluggy

        globals().update(hookimpl=pluggy.HookimplMarker(PROJECT), hookspec=pluggy.HookspecMarker(PROJECT))
        return globals()[name]
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version(DISTRIBUTION)
        except PackageNotFoundError:  # running from a source tree that was never installed
            found = "0+unknown"
        globals()["__version__"] = found
        return found
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
