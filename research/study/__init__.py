"""Studies: the store, a study's settings and trials, and the unit of work executors run.

``open_study``, ``Study`` and ``StudySettings`` are importable from here (loaded on first use).
"""

__all__ = ["Study", "StudySettings", "open_study"]


def __getattr__(name: str):
    if name in __all__:
        from research.study import study

        return getattr(study, name)
    raise AttributeError(f"module 'research.study' has no attribute '{name}'")
