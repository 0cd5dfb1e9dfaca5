"""The built-in plugins research uses when the user names none: the only plugin names the
core holds. Everything else about a plugin comes from the plugin itself.
"""

DEFAULTS = {
    "trainer": "research",
    "model": "mlp",
    "optimizer": "adam",
    "schedule": "constant",
    "dataset": "digits",
    "sampler": "random",
    "executor": "process",
}
"""Plugin name by kind (singular), used when a study or run does not name one."""

NO_PRUNER = "none"
"""``--prune none``: no pruning (not a plugin: the absence of one)."""

STORE = "research.db"
"""The store file in the working directory."""
MAX_CONFIRMED = 100
"""The most trials (``top``) and seeds a confirmation (research.study.confirm) takes: its
replicates are stored, waiting, before they train (--seeds 1000000 stored 310,000 rows in 30 s,
and made every later confirmation slow)."""
