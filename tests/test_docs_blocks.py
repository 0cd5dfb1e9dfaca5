"""Every fenced block of README.md and docs/*.md, run as a reader runs it.

Each page is one test. Its blocks run in order in one fresh folder, with this environment's
`research` and `python` first on PATH, so a block can use what an earlier one made (a store, a
file): ``bash`` blocks as shell commands (each must succeed); ``console`` blocks as a session,
each ``$ `` line run and the lines after it compared with what it printed; ``python`` blocks
as scripts, ``python block.py``, so a script that starts worker processes without its
``if __name__ == "__main__":`` guard fails here as it would for a reader. Any other block is a
file, an output or an illustration, and says which; a block that is neither run nor marked
fails the test.

Markers are HTML comments, invisible on the rendered page, on the lines right above a block
(above its file name, when it has one):

- a line `` `PATH` `` right above the block (as in docs/plugins.md and docs/own-model.md): the
  block is the file PATH, written into the folder when reached (and not run by itself);
- ``<!-- output -->``: what the block above printed (stdout and stderr as they came), compared
  with every number masked and runs of spaces and rules collapsed, since trained values
  depend on the machine's floating point and timings on its load; ``...`` lines stand for
  lines left out, and the block may show an excerpt. A ``console`` block's outputs are compared
  the same way;
- ``<!-- exact -->``, with ``<!-- output -->`` or on a ``console`` block: numbers are compared too
  (for what does not depend on the machine: messages, shapes, a file's header);
- ``<!-- continues -->``: a python block that goes on from the python block above it, as in a
  notebook: run as one script with it;
- ``<!-- needs: PATH, PATH -->``: files of this repository (docs/examples/...) copied into the
  folder before the block runs, by name and at PATH (a block may ``cd docs/examples``); a
  folder (``csrc``) is copied at PATH;
- ``<!-- background -->``: a command that runs until it is stopped (a server): started, and
  ended with the page;
- ``<!-- requires: MODULE -->``: the block needs a Python module of an extra (``distributed``):
  without it the whole page is skipped, as the project's own tests skip;
- ``<!-- replace: OLD => NEW -->``, anywhere: OLD is NEW in every block after it (``{port}`` in
  NEW is a free port of this machine): a cluster's address played by this machine;
- ``<!-- not run: REASON -->``, ``<!-- illustrative: REASON -->``: left alone, for the reason
  given (a block that cannot run here; an output or a picture that is not compared);
- ``<!-- run by tests/test_NAME.py -->``: that module runs it, or the same, smaller (it must exist).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT = 300  # seconds for one command, script or session line
SHELL = {"bash", "sh", "shell"}
RUN = SHELL | {"console", "python"}
SKIPS = ("not run", "illustrative", "run by")
MARKERS = {*SKIPS, "output", "exact", "continues", "needs", "background", "requires"}

FENCE = re.compile(r"(?P<indent> *)(?P<fence>```+)(?P<language>[\w-]*)\s*")
COMMENT = re.compile(r"\s*<!--\s*(?P<body>.*?)\s*-->\s*")
FILE_NAME = re.compile(r"\s*`(?P<name>[\w./-]+\.\w+)`\s*")
REPLACE = re.compile(r"replace:\s*(?P<old>\S.*?)\s*=>\s*(?P<new>\S.*)")
NUMBER = re.compile(r"[-+]?\d+(?:[.,:]\d+)*(?:e[-+]?\d+)?", re.IGNORECASE)
ERROR_SHOWN = re.compile(r"^(error:|[\w.]*(Error|Exception): )", re.MULTILINE)


@dataclass(frozen=True)
class Block:
    doc: Path
    line: int  # of the opening fence, counted from 1
    language: str
    code: str
    file: str | None  # the file it is, named on the line above it
    markers: dict[str, str]  # marker -> its text ("" when it has none)
    replace: tuple[tuple[str, str], ...] = ()  # the page's replacements in force here

    @property
    def where(self) -> str:
        return f"{self.doc.relative_to(ROOT)}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in RUN and self.file is None and not self.skipped

    @property
    def skipped(self) -> bool:
        return any(name in self.markers for name in SKIPS)


def parse(doc: Path) -> list[Block]:
    """The fenced blocks of ``doc`` in order, with the markers above them."""
    lines = doc.read_text().splitlines()
    found, replacements, i = [], [], 0
    while i < len(lines):
        comment = COMMENT.fullmatch(lines[i])
        swap = comment and REPLACE.fullmatch(comment.group("body"))
        if swap:
            replacements.append((swap.group("old"), swap.group("new")))
        opening = FENCE.fullmatch(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening.group("indent"), opening.group("fence")
        end = next(j for j in range(i + 1, len(lines)) if lines[j].strip() == fence)
        code = "".join(line.removeprefix(indent) + "\n" for line in lines[i + 1:end])
        file, markers = above(lines, i, doc)
        found.append(Block(doc, i + 1, opening.group("language"), code, file, markers, tuple(replacements)))
        i = end + 1
    return found


def above(lines: list[str], opening: int, doc: Path) -> tuple[str | None, dict[str, str]]:
    """The file name right above a block and the markers above it (blank lines between them)."""
    file, markers, k = None, {}, opening - 1
    while k >= 0 and not lines[k].strip():
        k -= 1
    named = FILE_NAME.fullmatch(lines[k]) if k >= 0 else None
    if named:
        file, k = named.group("name"), k - 1
    while k >= 0 and (not lines[k].strip() or COMMENT.fullmatch(lines[k])):
        comment = COMMENT.fullmatch(lines[k])
        if comment and not REPLACE.fullmatch(comment.group("body")):
            name, text = marker(comment.group("body"))
            assert name in MARKERS, f"{doc.relative_to(ROOT)}:{k + 1}: unknown marker <!-- {comment.group('body')} -->"
            markers[name] = text
        k -= 1
    return file, markers


def marker(body: str) -> tuple[str, str]:
    """A marker's name and text: ``run by PATH``, ``NAME: TEXT`` or ``NAME``."""
    if body.startswith("run by "):
        return "run by", body.removeprefix("run by ").strip()
    name, _, text = body.partition(":")
    return name.strip(), text.strip()


def problems(blocks: list[Block]) -> list[str]:
    """What is wrong with a page's markers: a skip without its reason, a test module that does
    not exist, a marker out of place, an output after no block that runs, a block neither run
    nor marked."""
    found = []
    for block in blocks:
        found += [f"{block.where}: {problem}" for problem in block_problems(block)]
        earlier = [b for b in blocks if b.line < block.line and (b.runs or b.skipped)]
        if "output" in block.markers and not (earlier and earlier[-1].runs):
            found.append(f"{block.where}: <!-- output --> follows no block that runs")
    return found


def block_problems(block: Block) -> list[str]:
    """The problems of one block's markers, taken alone."""
    found = []
    for name in ("not run", "illustrative", "needs", "requires"):
        if name in block.markers and not block.markers[name]:
            found.append(f"<!-- {name}: ... --> says {'why' if name in SKIPS else 'what'}")
    test = block.markers.get("run by")
    if test is not None and not (test.startswith("tests/test_") and (ROOT / test).is_file()):
        found.append(f"<!-- run by {test} --> names no test module")
    if "background" in block.markers and block.language not in SHELL:
        found.append("<!-- background --> is for shell commands")
    if any(block.markers.get(name) for name in ("output", "exact", "continues", "background")):
        found.append("<!-- output -->, <!-- exact -->, <!-- continues --> and <!-- background --> take no text")
    if "exact" in block.markers and not ("output" in block.markers or block.language == "console"):
        found.append("<!-- exact --> is for an output or a console block")
    if "continues" in block.markers and block.language != "python":
        found.append("<!-- continues --> is for python blocks")
    if not (block.runs or block.file or block.skipped or "output" in block.markers):
        found.append(f"a {block.language or 'plain'} block is neither run nor marked (<!-- output -->, "
                     "<!-- not run: REASON -->, <!-- illustrative: REASON -->, <!-- run by TEST -->, or a file name)")
    return found


def test_every_block_is_run_or_marked_with_a_reason():
    """Markers alone, on every page at once (the pages' own tests check them again before running)."""
    found = [problem for doc in DOCS for problem in problems(parse(doc))]
    assert not found, "\n".join(found)


# -- comparing what a page shows with what ran ---------------------------------------------------


def normalized(text: str, exact: bool) -> list[str]:
    """Lines as compared: numbers masked (unless ``exact``), rules and bars shortened, spaces
    collapsed, blank lines dropped."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"([━─═█])\1+", r"\1", line if exact else NUMBER.sub("#", line))
        line = " ".join(line.split())
        if line:
            lines.append(line)
    return lines


def shown_in(shown: str, printed: str, exact: bool = False) -> str | None:
    """None when ``printed`` has the lines of ``shown`` (an excerpt: each run of lines
    between ``...`` lines found in order, consecutive), else what is missing."""
    real, at = normalized(printed, exact), 0
    for chunk in re.split(r"^\s*\.\.\.\s*$", shown, flags=re.MULTILINE):
        want = normalized(chunk, exact)
        if not want:
            continue
        hit = next((k for k in range(at, len(real) - len(want) + 1) if real[k:k + len(want)] == want), None)
        if hit is None:
            return "\n".join(want)
        at = hit + len(want)
    return None


# -- running a page ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment() -> dict[str, str]:
    """A reader's environment: this one's `research`, `python` and `dask` first on PATH, no
    PYTHONPATH, stdout and stderr unbuffered so that they interleave as they were written."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COLUMNS")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Session:
    """One page's folder, environment and background processes, and what ran last."""

    folder: Path
    env: dict[str, str] = field(default_factory=environment)
    port: int = field(default_factory=free_port)  # the page's {port}
    printed: str | None = None  # what the last block that ran printed
    script: str = ""  # the last python block run, with what it continues
    background: list[subprocess.Popen] = field(default_factory=list)

    def code(self, block: Block) -> str:
        code = block.code
        for old, new in block.replace:
            code = code.replace(old, new.replace("{port}", str(self.port)))
        return code

    def shell(self, command: str, where: str) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(["bash", "-o", "pipefail", "-e", "-c", command], cwd=self.folder, env=self.env,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired as err:
            pytest.fail(f"{where}: still running after {TIMEOUT} s\n{err.output}")

    def run(self, block: Block) -> None:
        for path in filter(None, (p.strip() for p in block.markers.get("needs", "").split(","))):
            if (ROOT / path).is_dir():  # a folder, where the checkout has it (csrc)
                shutil.copytree(ROOT / path, self.folder / path, dirs_exist_ok=True)
                continue
            shutil.copy(ROOT / path, self.folder / Path(path).name)  # beside the reader, and where the checkout has it
            (self.folder / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / path, self.folder / path)
        if block.file is not None:
            (self.folder / block.file).parent.mkdir(parents=True, exist_ok=True)
            (self.folder / block.file).write_text(self.code(block))
        elif "output" in block.markers:
            missing = shown_in(block.code, self.printed or "", exact="exact" in block.markers)
            assert missing is None, f"{block.where}: not in the output of the block above:\n{missing}\n" \
                                    f"-- it printed:\n{self.printed}"
        elif "background" in block.markers:
            with open(self.folder / f"background-{block.line}.log", "w") as log:
                self.background.append(subprocess.Popen(
                    ["bash", "-c", self.code(block)], cwd=self.folder, env=self.env, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        elif block.language == "console":
            self.console(block)
        elif block.language == "python":
            self.script = (self.script if "continues" in block.markers else "") + self.code(block)
            script = self.folder / f"block-{block.line}.py"
            script.write_text(self.script)
            self.expect_success(block, self.shell(f"python {script.name}", block.where))
        else:
            self.expect_success(block, self.shell(self.code(block), block.where))

    def expect_success(self, block: Block, done: subprocess.CompletedProcess) -> None:
        self.printed = done.stdout
        assert done.returncode == 0, f"{block.where}: exit status {done.returncode}\n{done.stdout}"

    def console(self, block: Block) -> None:
        """A session: each ``$ `` line (with its ``\\`` continuations) run, and compared with the
        lines after it; it must succeed unless they show an error."""
        for command, shown in transcript(self.code(block)):
            done = self.shell(command, block.where)
            self.printed = done.stdout
            assert done.returncode == 0 or ERROR_SHOWN.search(shown), \
                f"{block.where}: `{command}` exit status {done.returncode}\n{done.stdout}"
            missing = shown_in(shown, done.stdout, exact="exact" in block.markers)
            assert missing is None, f"{block.where}: `{command}` did not print\n{missing}\n-- it printed:\n{done.stdout}"

    def close(self) -> None:
        """End the background commands: SIGTERM to each one's process group, then SIGKILL to
        whatever of it is left."""
        for process in self.background:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    break
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    pass


def transcript(text: str) -> list[tuple[str, str]]:
    """A console block as (command, the lines shown after it)."""
    found: list[tuple[str, list[str]]] = []
    lines = iter(text.splitlines())
    for line in lines:
        if line.startswith("$ "):
            command = line[2:]
            while command.endswith("\\"):
                command = command[:-1] + " " + next(lines).strip()
            found.append((command, []))
        else:
            assert found, f"a console block starts with `$ COMMAND`, not {line!r}"
            found[-1][1].append(line)
    return [(command, "\n".join(shown)) for command, shown in found]


@pytest.mark.parametrize("doc", DOCS, ids=lambda doc: str(doc.relative_to(ROOT)))
def test_the_page_runs_as_shown(doc, tmp_path):
    blocks = parse(doc)
    found = problems(blocks)
    assert not found, "\n".join(found)
    for module in {b.markers["requires"] for b in blocks if "requires" in b.markers}:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (an extra of research-hparams)")
    runner = Session(tmp_path)
    try:
        for block in blocks:
            if not block.skipped:
                runner.run(block)
    finally:
        runner.close()


def test_the_study_script_without_its_guard_stops_at_once_in_one_line(tmp_path):
    """docs/python-api.md's study.py with `main()` called at import: its workers, spawned, import
    it again and would start the study again. The study stops before any trial, with one
    error that says how to fix it, a short stderr and exit status 1 (not every trial failed
    after its retries, thousands of lines of tracebacks, and exit status 0)."""
    [block] = [b for b in parse(ROOT / "docs" / "python-api.md") if b.file == "study.py"]
    unguarded = re.sub(r'^if __name__ == "__main__":.*\n\s+main\(\)$', "main()", block.code, flags=re.MULTILINE)
    assert unguarded != block.code and "__main__" not in unguarded
    (tmp_path / "study.py").write_text(unguarded)
    done = subprocess.run([sys.executable, "study.py"], cwd=tmp_path, env=environment(), capture_output=True,
                          text=True, timeout=TIMEOUT)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("research.errors.UsageError: worker processes could not start: "), done.stderr
    assert 'start it under `if __name__ == "__main__":`' in lines[-1]
    assert len(lines) < 40 and done.stderr.count("Traceback") == 1, done.stderr  # this script's own traceback

    from research.study.store import Store

    with Store(tmp_path / "research.db", create=False) as store:  # the study it made stored nothing, so it is gone
        assert store.studies() == []
