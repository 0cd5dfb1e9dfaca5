"""Built-in trainer ``command``: any program that trains, one JSON line of metrics per epoch.

research starts the program once per trial and keeps it running: it hands it the trial's
configuration (a JSON file and environment variables), a checkpoint folder and the epoch to
reach (research.script has the names), reads one line per epoch, and answers each line with
``continue`` or ``stop``. While the program waits for that answer its checkpoint folder is at
rest, so research can copy it (``state()``: the folder packed as bytes) for checkpoints,
babysit's boundaries and exact rollbacks. The program is started again only to resume from
such a copy or to apply a babysit change, with the changed configuration. The protocol is
documented in docs/own-model.md.

Trials of this trainer are not moved between workers between epochs (``whole_trial``): a
caviar study gives each one task that streams its epochs back (research.study.channel).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import queue
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from research import hookimpl, script
from research.contracts import is_number
from research.errors import UsageError
from research.nn import checkpoint
from research.options import Option
from research.scratch import scratch_folder
from research.study.provenance import file_digest
from research.study.trainer import configured_epochs

PLUMBING = ("trainer", "trainer_options")
"""Configuration keys about research itself, not handed to the program."""
FIXED = ("seed", "epochs")
"""Configuration values a babysit change may not touch."""
LINE_LIMIT = 1 << 16
"""The longest line of metrics read; a longer one is garbage."""
TAIL_LINES = 10
"""The lines of a crashed program's stderr shown with its failure."""
EMPTY = "trainer 'command': the command is empty; give the program, e.g. --command 'python train.py'"


class ProgramError(UsageError):
    """The program broke the protocol or failed (``failed``: it crashed); ``detail`` is the
    tail of its stderr."""

    def __init__(self, message: str, detail: str | None = None, failed: bool = False):
        super().__init__(message)
        self.detail = detail
        self.failed = failed


def _as_json(value: Any) -> str:
    """A value of the program's line as the program wrote it (``true``, ``null``, ``"2"``), not
    as Python shows it: the protocol is any language's."""
    return json.dumps(value)


def split_command(command: str) -> list[str]:
    """The program and its arguments, split as a shell would; a UsageError for a command a
    shell could not read either (an unclosed quote)."""
    try:
        return shlex.split(command)
    except ValueError as err:  # shlex's "No closing quotation", "No escaped character"
        raise UsageError(f"trainer 'command': cannot read the command {command!r} ({err}); quote it as a shell "
                         "would, e.g. --command 'python train.py --name \"my run\"'") from None


class CommandTrainer:
    """A trial trained by a program of the user's (see the module docstring)."""

    whole_trial = True

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        command: Annotated[str, Option("Program that trains one trial, e.g. 'python train.py'", flag="--command")],
        idle_timeout: Annotated[float, Option("Seconds the program may print nothing before it is ended",
                                              above=0.0, max=1e9, flag="--idle-timeout")] = 1800.0,
        grace: Annotated[float, Option("Seconds the program gets to exit after stop, and between SIGTERM and "
                                       "SIGKILL when it is ended", min=0.0)] = 10.0,
        workdir: Annotated[str, Option("Directory the program runs in ('.': the one the study was started in)",
                                       path=True, flag="--workdir")] = ".",
    ):
        self.argv = split_command(command)
        if not self.argv:
            raise UsageError(EMPTY)
        if not Path(workdir).is_dir():
            raise UsageError(f"trainer 'command': workdir {workdir!r} is not a directory on this machine; create it "
                             "(the program and its files go there) or give another with --workdir")
        self.command, self.idle_timeout, self.grace, self.workdir = command, idle_timeout, grace, Path(workdir)
        self.params = {k: v for k, v in config.items() if k not in PLUMBING}
        self.epochs = configured_epochs(config)
        self.params["epochs"] = self.epochs
        self.done = 0  # epochs trained, in the checkpoint folder once the program waits
        self.home = scratch_folder("research-command-")
        self.folder = self.home / "checkpoint"
        self.folder.mkdir()
        self._remove_home = weakref.finalize(self, shutil.rmtree, self.home, True)
        self.process: subprocess.Popen | None = None
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.line_number = 0
        self.went_on = False  # the program was ended after it did not exit on `stop`: its folder may be ahead

    @staticmethod
    def check_space(space: Mapping[str, Any], base: Mapping[str, Any], plugins: Any) -> None:
        """Before a study is stored (research.study.study.check_study): a command that cannot be
        read, or an empty one, is refused once, not by every trial of a study that keeps it (its
        provenance reads it first). Whether the program exists is left to the trials: on a
        cluster it is the workers' machines that run it."""
        if not split_command(str((base.get("trainer_options") or {}).get("command", ""))):
            raise UsageError(EMPTY)

    @staticmethod
    def provenance(config: Mapping[str, Any]) -> dict[str, Any]:
        """What a study records of the program: the command and a digest of each file it names
        that exists in its ``workdir`` (``train.py``), so a changed script shows in ``research show``."""
        options = config.get("trainer_options") or {}
        command, workdir = str(options.get("command", "")), Path(str(options.get("workdir", ".")))
        files = {word: file_digest(workdir / word) for word in split_command(command) if (workdir / word).is_file()}
        return {"command": command, **{f"sha256 of {name}": digest for name, digest in files.items()}}

    # the program ------------------------------------------------------------------------

    def _start(self) -> None:
        """Start the program from the checkpoint folder, at epoch ``done``; refused when the
        last program did not exit on ``stop`` (it may have trained on into the folder)."""
        if self.went_on:
            raise ProgramError(f"the command did not exit within {self.grace:g}s of reading stop and was ended, so its "
                               "checkpoint folder may hold a later epoch than it reported; a program must exit when it "
                               "reads stop (or raise --trainer-opt grace=SECONDS if it needs longer)")
        config_path = self.home / "config.json"
        config_path.write_text(json.dumps(self.params, indent=1), encoding="utf-8")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", script.CONFIG: str(config_path),
               script.CHECKPOINT_DIR: str(self.folder), script.START_EPOCH: str(self.done),
               script.EPOCHS: str(self.epochs)}
        env |= {script.param_variable(name): script.param_text(value) for name, value in self.params.items()}
        env["PATH"] = _with_own_python(env.get("PATH", os.defpath))
        with open(self.home / "stderr.txt", "wb") as stderr:  # this start's stderr only
            try:
                self.process = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                                stderr=stderr, env=env, cwd=self.workdir)
            except OSError as err:  # not found, not executable
                raise UsageError(f"trainer 'command' cannot start {self.argv[0]!r} ({err.strerror}); "
                                 "check --command") from None
        self.lines = queue.Queue()
        self.line_number = 0
        threading.Thread(target=_read_lines, args=(self.process.stdout, self.lines), daemon=True).start()
        self._kill_at_exit = weakref.finalize(self, _kill, self.process)

    def _answer(self, word: str) -> None:
        process = self.process
        assert process is not None and process.stdin is not None
        try:
            process.stdin.write(word.encode() + b"\n")
            process.stdin.flush()
        except OSError:  # it exited: reading its output says how
            pass

    def _next_line(self) -> bytes:
        try:
            line = self.lines.get(timeout=self.idle_timeout)
        except queue.Empty:
            self._terminate()
            raise ProgramError(f"the command printed nothing for {self.idle_timeout:g} s after epoch {self.done} "
                               "and was ended; raise --idle-timeout if its epochs take longer") from None
        if line is None:
            self._exited()
        self.line_number += 1
        return line

    def _exited(self) -> None:
        """The program closed its output: say how it ended."""
        process = self.process
        assert process is not None
        try:
            code = process.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            self._terminate()
            code = process.returncode
        self._release()
        tail = self._stderr_tail()
        last = tail.splitlines()[-1].strip() if tail else ""
        if code == 0:
            raise ProgramError(f"the command exited after epoch {self.done} of {self.epochs} without reporting the "
                               f"rest; it must train until epoch ${script.EPOCHS}", tail or None)
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        more = tail if len(tail.splitlines()) > 1 else None  # a lone line is quoted in the message already
        raise ProgramError(f"the command {how} after epoch {self.done}" + (f": {last[:200]}" if last else ""),
                           more, failed=True)

    def _stderr_tail(self) -> str:
        path = self.home / "stderr.txt"
        if not path.exists():
            return ""
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 8192))
            text = handle.read().decode("utf-8", "replace")
        lines = [line for line in text.splitlines() if line.strip()][-TAIL_LINES:]
        return "\n".join("  " + line for line in lines)

    def _finish(self) -> None:
        """End a program that waits for its answer: ``stop``, then SIGTERM after the grace period."""
        if self.process is None:
            return
        self._answer(script.STOP)
        try:
            self.process.wait(timeout=self.grace)
        except subprocess.TimeoutExpired:
            self._terminate()
            self.went_on = True
        self._release()

    def _terminate(self) -> None:
        """End the program now, with every process it started (a wrapper script's child would
        otherwise go on alone): SIGTERM, then SIGKILL after the grace period."""
        if self.process is None:
            return
        if self.process.poll() is None:
            family = _descendants(self.process.pid)
            _signal(family, signal.SIGTERM)
            self.process.terminate()
            try:
                self.process.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            _signal(family, signal.SIGKILL)
        self._release()

    def _release(self) -> None:
        """Let the ended program go. Its output is closed by the thread that reads it, at its
        end: a program that left a child holding the pipe (a wrapper script's) would make a
        close here wait on that read. Its input may hold an answer it never read: flushing
        that as the pipe closes raises BrokenPipeError, which says nothing about the trial."""
        if self.process is not None:
            if self.process.stdin is not None:
                with contextlib.suppress(OSError):
                    self.process.stdin.close()
            self._kill_at_exit.detach()
            self.process = None

    # the trainer contract -----------------------------------------------------------------

    def train_epoch(self) -> dict[str, float]:
        """Let the program train one more epoch (starting it if it is not running) and return
        the metrics of the line it prints."""
        if self.process is None:
            self._start()
        else:
            self._answer(script.CONTINUE)
        try:
            metrics = self._parse(self._next_line())
        except ProgramError:
            self._terminate()
            raise
        self.done += 1
        return metrics

    def _parse(self, raw: bytes) -> dict[str, float]:
        text = raw.decode("utf-8", "replace").strip()
        where = f"line {self.line_number} of its output"
        try:
            values = json.loads(text) if raw.endswith(b"\n") or len(raw) < LINE_LIMIT else None
        except ValueError:
            values = None
        if len(raw) >= LINE_LIMIT and not raw.endswith(b"\n"):
            raise ProgramError(f"the command printed a line of over {LINE_LIMIT // 1024} KiB ({where}), longer than a "
                               "line of metrics may be; print only the metrics on stdout, logs to stderr")
        if not isinstance(values, dict) or not values:
            shown = text if len(text) <= 80 else text[:77] + "..."
            raise ProgramError(f"the command printed {shown!r} ({where}), not a JSON object of metrics; "
                               "print logs to stderr")
        epoch = values.pop("epoch", self.done + 1)
        if isinstance(epoch, float) and epoch.is_integer():  # 2.0, as some languages print a number
            epoch = int(epoch)
        if isinstance(epoch, bool) or not isinstance(epoch, int):  # "2": the type is wrong, not the count
            raise ProgramError(f"the command reported epoch {_as_json(epoch)} ({where}); an epoch is a whole number "
                               f"without quotes, as {{\"epoch\": {self.done + 1}}}")
        if epoch != self.done + 1:
            raise ProgramError(f"the command reported epoch {_as_json(epoch)} ({where}) where epoch {self.done + 1} "
                               "was due; "
                               f"resume from ${script.CHECKPOINT_DIR} and count from ${script.START_EPOCH}")
        for name, value in values.items():
            if not is_number(value):
                shown = _as_json(value)
                shown = shown if len(shown) <= 40 else shown[:37] + "..."
                raise ProgramError(f"the command reported {name} = {shown} ({where}); metrics must be numbers "
                                   "a float holds")
        return {name: float(value) for name, value in values.items()}

    def state(self) -> dict[str, np.ndarray]:
        """The checkpoint folder (the program is waiting for its answer, or not running),
        packed as bytes, with the configuration it trains with."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as archive:
            archive.add(self.folder, arcname=".")
        return {"folder": np.frombuffer(buffer.getvalue(), dtype=np.uint8).copy(), "done": np.array(self.done),
                "params": checkpoint.pack_json(self.params)}

    def load_state(self, state: Mapping[str, np.ndarray]) -> None:
        """Go back (or on) to a packed state: the program is ended and started again from it."""
        self._finish()
        self.went_on = False  # the folder is replaced
        shutil.rmtree(self.folder)
        self.folder.mkdir()
        with tarfile.open(fileobj=io.BytesIO(np.asarray(state["folder"], dtype=np.uint8).tobytes())) as archive:
            if hasattr(tarfile, "data_filter"):
                archive.extractall(self.folder, filter="data")
            else:  # Python without extraction filters: the archive is research's own
                archive.extractall(self.folder)
        self.done = int(state["done"])
        self.params = checkpoint.unpack_json(state["params"])

    def tunable(self) -> dict[str, Any]:
        """Every configuration value but the seed and the epochs: the program reads them when
        it starts again."""
        return {name: value for name, value in self.params.items() if name not in FIXED}

    def set_hyper(self, name: str, value: Any) -> None:
        """Change a configuration value (converted to its current type); the program is ended
        at this boundary and started again with it from its checkpoint."""
        tunable = self.tunable()
        if name not in tunable:
            raise ValueError(f"unknown hyperparameter '{name}'; changeable: {', '.join(sorted(tunable)) or 'nothing'}")
        self.params[name] = _like(tunable[name], value, name)
        self._finish()

    def close(self) -> None:
        """End the program: asked to stop when its epochs are done, else (a pruned or stopped
        trial) terminated; then remove the working folder."""
        if self.done >= self.epochs:
            self._finish()
        else:
            if self.process is not None:
                self._answer(script.STOP)
            self._terminate()
        self._remove_home()


def _like(current: Any, value: Any, name: str) -> Any:
    """``value`` (text from `research set`, or a number) as the type of ``current``; a current
    value that is text reading as a number (given with --opt) takes only such text."""
    try:
        if isinstance(current, bool):
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            if isinstance(value, bool):
                return value
            raise ValueError
        if isinstance(current, int):
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if isinstance(current, float):
            number = float(value)
            if not math.isfinite(number):  # a program would train on with nan: refused, as the other trainers do
                raise ValueError
            return number
        if isinstance(current, str) and _is_finite_number(current):  # --opt momentum=0.9 arrives as text
            if not _is_finite_number(value):
                raise ValueError
            return str(value).strip()
    except (TypeError, ValueError):
        kind = {float: "a finite float", str: "a finite number"}.get(type(current), type(current).__name__)
        raise ValueError(f"'{name}' must be {kind}, like its value {current!r}; got {value!r}") from None
    return value


def _is_finite_number(text: Any) -> bool:
    try:
        return math.isfinite(float(text))
    except (TypeError, ValueError):
        return False


def _read_lines(stream: Any, lines: queue.Queue) -> None:
    """The program's output, a line at a time (at most LINE_LIMIT bytes), then None; the
    stream is closed here, at its end, since closing it elsewhere would wait for this read."""
    try:
        while line := stream.readline(LINE_LIMIT):
            lines.put(line)
    except (OSError, ValueError):  # closed under us
        pass
    finally:
        with contextlib.suppress(OSError):
            stream.close()
    lines.put(None)


def _with_own_python(path: str) -> str:
    """``path`` with the folder of the Python research runs in first when that is a virtual
    environment's, as activating it would: ``python train.py`` then runs where research (and
    its script helper) is installed, activated or not."""
    if sys.prefix == sys.base_prefix:
        return path
    own = os.path.dirname(sys.executable)
    return os.pathsep.join([own, *(entry for entry in path.split(os.pathsep) if entry != own)])


def _descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs, as Linux's /proc says (none where there is
    no /proc: then only the program itself is signalled)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):  # gone while read
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(stat.parent.name))
    found: list[int] = []
    waiting = [pid]
    while waiting:
        started = children.get(waiting.pop(), [])
        found += started
        waiting += started
    return found


def _signal(pids: list[int], sig: int) -> None:
    """Send ``sig`` to each of ``pids`` that still runs."""
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, sig)


def _kill(process: subprocess.Popen) -> None:
    """At exit, a program still running is killed with every process it started, not left behind."""
    if process.poll() is None:
        _signal(_descendants(process.pid), signal.SIGKILL)
        process.kill()


@hookimpl
def register_trainers(register: Any) -> None:
    register("command", CommandTrainer)
