"""The plugin boundary, checked on the source: the core names no strategy, and every
package of the source tree is installed."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from research.plugins import load_plugins

ROOT = Path(__file__).resolve().parent.parent
CORE = ROOT / "research"
DEFAULTS = CORE / "defaults.py"  # the one place the core may name built-in plugins
# Words of the built-in strategies' own vocabulary, beyond their names and option names.
STRATEGY_WORDS = {"segment", "segments", "rollback", "outcome", "panda"}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
        # A string right after an assignment documents it (an attribute docstring).
        for field in ("body", "orelse"):
            statements = getattr(node, field, None)
            if not isinstance(statements, list):
                continue
            for before, after in zip(statements, statements[1:]):
                if isinstance(before, (ast.Assign, ast.AnnAssign)) and isinstance(after, ast.Expr) \
                        and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                    found.add(id(after.value))
    return found


def _code_words(path: Path) -> list[tuple[int, str, bool]]:
    """(line, text, is a string) of every string constant that is not a docstring and of
    every identifier."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = _docstrings(tree)
    words = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.append((node.lineno, node.value, True))
        elif isinstance(node, ast.Name):
            words.append((node.lineno, node.id, False))
        elif isinstance(node, ast.Attribute):
            words.append((node.lineno, node.attr, False))
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            words.append((node.lineno, node.name, False))
        elif isinstance(node, ast.arg):
            words.append((node.lineno, node.arg, False))
    return words


def builtin_strategy_vocabulary() -> set[str]:
    """The built-in strategies' names and option names, and their own words."""
    plugins = load_plugins()
    words = set(STRATEGY_WORDS)
    for name in plugins.names("strategies"):
        if plugins.infos[plugins.owner("strategies", name)].distribution != "research-hparams":
            continue
        words.add(name)
        words |= set(plugins.options_of("strategies", name) or {})
    return words


def test_the_vocabulary_is_what_the_strategies_declare():
    words = builtin_strategy_vocabulary()
    assert {"caviar", "babysit", "segment_epochs", "segments", "interactive", "policy"} <= words


def test_the_core_names_no_strategy_outside_docstrings_and_defaults():
    """Strings must not use a strategy's name, option or words; identifiers must not contain
    a strategy's name or words."""
    words = builtin_strategy_vocabulary()
    # Case matters: SQL's ROLLBACK is not babysit's rollback.
    in_strings = re.compile(r"(?<![A-Za-z0-9_])(" + "|".join(map(re.escape, sorted(words))) + r")(?![A-Za-z0-9_])")
    in_names = {w for w in words if w in STRATEGY_WORDS} | {n for n in load_plugins().names("strategies")}
    found = []
    for path in sorted(CORE.rglob("*.py")):
        if path == DEFAULTS:
            continue
        for line, text, is_string in _code_words(path):
            if in_strings.search(text) if is_string else any(w in text.lower() for w in in_names):
                found.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert not found, "strategy vocabulary in the core:\n" + "\n".join(found)


def test_the_check_sees_code_and_skips_docstrings(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""A docstring may say babysit."""\nKIND = "babysit"\ndef rollback_to(x):\n    return x\n')
    texts = [text for _, text, _ in _code_words(sample)]
    assert "babysit" in texts and "rollback_to" in texts
    assert "A docstring may say babysit." not in texts


def _packages(folder: Path, prefix: str) -> set[str]:
    """The import names of every package (a folder with __init__.py) below ``folder``."""
    return {".".join((prefix, *p.parent.relative_to(folder).parts)) for p in folder.rglob("__init__.py")}


def test_every_package_of_the_tree_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    present = _packages(ROOT / "research", "research") | _packages(ROOT / "plugins", "research_plugins")
    assert present - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


@pytest.mark.parametrize("module", ["research.cli.app", "research.hookspecs", "research.contracts"])
def test_importing_the_shell_does_not_load_plugins(module):
    """The command line builds its plugin parts when a command runs, not at import."""
    import importlib
    import sys

    before = {m for m in sys.modules if m.startswith("research_plugins")}
    importlib.import_module(module)
    assert {m for m in sys.modules if m.startswith("research_plugins")} == before
