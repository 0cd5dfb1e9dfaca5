"""What `pip install .` installs is what the code imports.

The test extras pull in packages of their own (dask brings click), so a module-level import of
a package research does not declare passes every test and breaks `research train` on a fresh
machine: `import click` did. Optional packages (dask, starlette, torch...) are imported inside
the functions that need them, and those say how to install them.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWN = {"research", "research_plugins"}
EXTRA_ONLY = {"plugins/dask_workers.py": "dask", "plugins/dashboard/app.py": "dashboard"}
"""Modules imported only by the code that needs their extra (inside a function), with it."""


def module_level_imports(path: Path) -> set[str]:
    """The top-level package of every import made when ``path`` is imported (not those inside a
    function, nor under ``if TYPE_CHECKING:``)."""
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body + node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body + node.orelse + node.finalbody)
            elif isinstance(node, ast.ClassDef):
                visit(node.body)

    visit(ast.parse(path.read_text()).body)
    return found


def requirements(extra: str | None) -> set[str]:
    """The distributions research-hparams requires (with ``extra``: those that extra adds)."""
    found = set()
    for requirement in importlib.metadata.requires("research-hparams") or []:
        marker = re.search(r'extra == "(\w+)"', requirement)
        if (marker.group(1) if marker else None) == extra:
            found.add(re.split(r"[<>=!~;\[ ]", requirement)[0].lower().replace("_", "-"))
            bracket = re.search(r"\[([\w,-]+)\]", requirement)  # dask[distributed]: the distributed package too
            if bracket:
                found.update(name.lower() for name in bracket.group(1).split(","))
    return found


def test_every_package_imported_at_module_level_is_a_declared_dependency():
    core = requirements(None)
    owners = importlib.metadata.packages_distributions()
    undeclared = {}
    for path in [*ROOT.joinpath("research").rglob("*.py"), *ROOT.joinpath("plugins").rglob("*.py")]:
        where = str(path.relative_to(ROOT))
        declared = core | (requirements(EXTRA_ONLY[where]) if where in EXTRA_ONLY else set())
        for name in module_level_imports(path) - OWN - set(sys.stdlib_module_names) - {"__future__"}:
            distributions = {d.lower().replace("_", "-") for d in owners.get(name, [name])}
            if not distributions & declared:
                undeclared.setdefault(name, []).append(where)
    assert undeclared == {}, f"imported when research is, but not in [project] dependencies: {undeclared}"
