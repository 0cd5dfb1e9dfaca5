"""Words for messages and labels, shared by the commands, the reports and the data checks."""


def plural(count: int, word: str) -> str:
    """``1 trial``, ``2 trials``: a count with its noun, for labels and messages."""
    return f"{count} {word}{'s' * (count != 1)}"
