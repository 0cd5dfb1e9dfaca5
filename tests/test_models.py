"""Model plugins: the built-in mlp trains exactly as before it was a plugin, a third party's
model trains through the CLI and a caviar study with process workers, and model flags and
options are checked like every plugin's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import research
from research.cli import app
from research.errors import UsageError
from research.plugins import load_plugins
from tests.thirdparty import make_distribution

runner = CliRunner()
GOLDEN = Path(__file__).parent / "data" / "mlp_curves.json"


@pytest.mark.parametrize("key", ["float32-0", "float32-1", "float32-2", "float64-0", "float64-1", "float64-2"])
def test_mlp_curves_are_the_ones_it_gave_before_it_was_a_plugin(key):
    """Recorded with the MLP before models were plugins, again when the digits gained a held-out
    test split (every curve changed then, on purpose). Equal value for value on the machine
    that recorded them; elsewhere BLAS may round a product differently, hence the tolerances
    (a loss to 1e-4 relative, an accuracy to one validation sample)."""
    golden = json.loads(GOLDEN.read_text())
    dtype, seed = key.split("-")
    result = research.train(seed=int(seed), dtype=dtype, **golden["config"])
    assert result.config["model"] == "mlp"
    for got, want in zip(result.history, golden["curves"][key], strict=True):
        for name, value in want.items():
            tolerance = {"train_acc": 1 / 1079, "val_acc": 1 / 359, "test_acc": 1 / 359}.get(name, 1e-4 * abs(value))
            assert got[name] == pytest.approx(value, abs=tolerance), (name, got[name], value)


TINY_MODEL = '''
    """A third party's model: softmax regression with a temperature, numpy only."""
    from typing import Annotated
    import numpy as np
    from research import hookimpl
    from research.options import Option

    class Softmax:
        def __init__(self, input_shape, n_classes, *, dtype, rng,
                     temperature: Annotated[float, Option("Divides the logits", above=0, flag="--temperature")] = 1.0):
            self.features = int(np.prod(input_shape))
            self.temperature = temperature
            self.W = np.ascontiguousarray(rng.standard_normal((self.features, n_classes)) * 0.01, dtype=dtype)
            self.b = np.zeros(n_classes, dtype)
            self.params = [self.W, self.b]

        def check_data(self, x, y):
            return np.ascontiguousarray(x, dtype=self.W.dtype), np.asarray(y)

        def _probabilities(self, x):
            z = (x @ self.W + self.b) / self.temperature
            z -= z.max(axis=1, keepdims=True)
            p = np.exp(z)
            return p / p.sum(axis=1, keepdims=True)

        def loss_and_grads(self, x, y, *, checked=False):
            p = self._probabilities(x)
            n = len(y)
            loss = float(-np.log(p[np.arange(n), y] + 1e-12).mean())
            acc = float((p.argmax(axis=1) == y).mean())
            d = p.copy()
            d[np.arange(n), y] -= 1
            d /= n * self.temperature
            return loss, acc, [np.ascontiguousarray(x.T @ d), d.sum(axis=0)]

        def evaluate(self, x, y):
            p = self._probabilities(np.asarray(x, dtype=self.W.dtype))
            n = len(y)
            return float(-np.log(p[np.arange(n), y] + 1e-12).mean()), float((p.argmax(axis=1) == y).mean())

        def state(self):
            return {"W": self.W.copy(), "b": self.b.copy()}

        def load_state(self, state):
            np.copyto(self.W, state["W"])
            np.copyto(self.b, state["b"])

    @hookimpl
    def register_models(register):
        register("softmax", Softmax)
'''


@pytest.fixture
def site(site):
    """The shared plugin folder (tests/conftest.py) with the softmax model installed."""
    make_distribution(site, "tp-softmax", "tp_softmax", TINY_MODEL)
    return site


def test_a_third_party_model_trains_alone_and_in_a_caviar_study_with_two_workers(site):
    one = runner.invoke(app, ["train", "--model", "softmax", "--temperature", "2", "--epochs", "3", "--lr", "0.05",
                              "--json"])
    assert one.exit_code == 0, one.output
    data = json.loads(one.stdout)
    assert data["config"]["model"] == "softmax" and data["config"]["temperature"] == 2.0
    assert data["history"][-1]["val_acc"] > 0.8
    study = runner.invoke(app, ["train", "--strategy", "caviar", "--model", "softmax", "--trials", "4", "--workers",
                                "2", "--epochs", "2", "--space", "temperature=log:0.5..4", "--space",
                                "lr=log:0.01..0.1", "--json"])
    assert study.exit_code == 0, study.output
    trials = json.loads(study.stdout)["trials"]
    assert [t["status"] for t in trials] == ["finished"] * 4
    assert all(0.5 <= t["config"]["temperature"] <= 4 for t in trials)


def test_research_plugins_lists_the_model_and_its_options(site):
    listing = json.loads(runner.invoke(app, ["plugins", "--json"]).stdout)
    plugin = next(p for p in listing["plugins"] if p["name"] == "tp_softmax")
    assert plugin["registers"] == {"models": ["softmax"]}
    assert listing["options"]["models"]["softmax"]["temperature"] == {
        "type": "float", "valid": "a number > 0", "default": 1.0, "required": False, "help": "Divides the logits",
        "flag": "--temperature"}
    assert listing["options"]["models"]["mlp"]["hidden"]["flag"] == "--hidden"
    table = runner.invoke(app, ["plugins"]).stdout
    assert "temperature=1.0 (a number > 0; flag --temperature)" in table
    assert "command (required, a string; flag --command)" in table  # an option without a default


@pytest.mark.parametrize("args, message", [
    (["--model", "softmax", "--hidden", "32"],
     "error: --hidden does not apply to model 'softmax'; it is an option of --model mlp"),
    (["--temperature", "2"], "error: --temperature does not apply to model 'mlp'; it is an option of --model softmax"),
    # a model given by its import path takes its options by --model-opt, which the message said nothing of
    (["--model", "research.nn.model:MLP", "--hidden", "32"],
     "error: --hidden does not apply to model 'research.nn.model:MLP'; it is an option of --model mlp (to model "
     "'research.nn.model:MLP', give it as --model-opt hidden=VALUE)"),
    (["--model", "softmax", "--model-opt", "temperature=-1"],
     "error: model 'softmax': temperature must be a number > 0, got '-1'"),
    (["--model", "softmax", "--model-opt", "depth=3"],
     "error: model 'softmax': unknown option 'depth'; valid names: temperature"),
    (["--model", "nope"], "error: unknown model 'nope'; choose one of: "),
    # an unknown name given with a flag of another: the flag was blamed ("--hidden does not apply to model 'nope'")
    (["--model", "nope", "--hidden", "8"], "error: unknown model 'nope'; choose one of: "),
    (["--trainer", "nope", "--hidden", "8"], "error: unknown trainer 'nope'; choose one of: "),
    # another trainer trains its own model: the research trainer's choices were dropped in silence
    (["--trainer", "tests.test_trainers:Decaying", "--model", "softmax", "--hidden", "32"],
     "error: --model, --hidden choose what the research trainer trains, and trainer 'tests.test_trainers:Decaying' "
     "trains its own model; drop them (a value your trainer reads goes in --opt NAME=VALUE)"),
    (["--trainer", "tests.test_trainers:Decaying", "--dataset", "rings"], "error: --dataset chooses what the research"),
    # a trainer's own flag picked it: the refusal said to drop the --model asked for, not the flag that chose
    (["--command", "python x.py", "--model", "softmax"],
     "error: --command is an option of trainer 'command', so it trains with that trainer, which trains its own "
     "model: --model cannot apply; drop --command to train with the research trainer, or --model"),
    (["--trainer", "tests.test_trainers:Decaying", "--model-opt", "hidden=3", "--dataset-opt", "noise=1"],
     "error: --model-opt, --dataset-opt choose what the research trainer trains, and trainer "
     "'tests.test_trainers:Decaying' trains its own model; drop them"),
])
def test_model_flags_and_options_that_do_not_apply_are_one_line(site, args, message):
    result = runner.invoke(app, ["train", "--epochs", "1", *args])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith(message) and "\n" not in result.stderr.strip()


def test_a_name_two_parts_declare_must_be_qualified():
    class Both:
        """A schedule that also has an option called beta1, like adam."""

        name = "both"

        @research.hookimpl
        def register_schedules(self, register):
            def schedule(*, beta1: float = 0.5):
                class Schedule:
                    options = {"beta1": beta1}

                    def lr(self, base_lr, epoch):
                        return base_lr * self.options["beta1"] ** 0
                return Schedule()
            register("both", schedule)

    plugins = [Both()]
    with pytest.raises(UsageError, match=r"'beta1' is an option of optimizer 'adam' and schedule 'both'; "
                                         r"write optimizer.beta1 or schedule.beta1"):
        research.train(schedule="both", beta1=0.8, epochs=1, hidden=8, plugins=plugins)
    run = research.train({"schedule": "both", "optimizer.beta1": 0.8, "schedule.beta1": 0.25, "epochs": 1,
                          "hidden": 8}, plugins=plugins)
    assert run.config["optimizer.beta1"] == 0.8 and run.config["schedule.beta1"] == 0.25


def test_models_get_the_samples_shape():
    seen = []

    class Recorder:
        @research.hookimpl
        def register_models(self, register):
            from research.nn.model import MLP

            def recording(input_shape, n_classes, **options):
                seen.append(tuple(input_shape))
                return MLP(input_shape, n_classes, **options)
            register("recording", recording)

    research.train(model="recording", epochs=1, hidden=8, plugins=[Recorder()])
    assert seen == [(1, 8, 8)]
    assert load_plugins().options_of("models", "mlp").keys() >= {"hidden", "layers", "batchnorm"}
    assert np.prod(seen[0]) == 64


@pytest.mark.parametrize("mangle, says", [
    (lambda got: (got[0], got[1], got[2][:2]), r"loss_and_grads returned 2 gradients for its 4 parameter arrays; it "
                                               r"must return one per entry of params, in order$"),
    (lambda got: (got[0], got[1], [got[2][0].T, *got[2][1:]]),
     r"loss_and_grads returned gradient 0 as \(16, 64\) float32, for params\[0\] of \(64, 16\) float32; each "
     r"gradient must be like its "),
    (lambda got: ("loss", got[1], got[2]), r"loss_and_grads returned its loss as 'loss'; it must return \(loss, "
                                           r"accuracy, gradients\), the first two numbers$"),
    (lambda got: (got[0], None, got[2]), r"loss_and_grads returned its accuracy as None"),
])
def test_a_model_whose_gradients_do_not_fit_its_parameters_is_named_not_the_optimizer(mangle, says):
    """The optimizer's own check caught it: 'plugin optimizers: optimizer adam failed ...'; a
    loss given as text failed in research's own sum: "TypeError: unsupported operand"."""
    from research.errors import PluginFailure

    class Mangled:
        @research.hookimpl
        def register_models(self, register):
            from research.nn.model import MLP

            class Wrong(MLP):
                def loss_and_grads(self, x, y, *, checked=False):
                    loss, acc, grads = super().loss_and_grads(x, y, checked=checked)
                    return mangle((loss, acc, grads))
            register("wrong", Wrong)

    with pytest.raises(PluginFailure, match=r"^plugin '.*': model 'wrong': " + says):
        research.train(model="wrong", epochs=1, hidden=16, layers=1, batchnorm=False, plugins=[Mangled()])


@pytest.mark.parametrize("answer, shown", [
    (("low", "high"), r"\('low', 'high'\)"),
    (("0.5", "0.9"), r"\('0.5', '0.9'\)"),
    (None, "None"),
    ((0.5,), r"\(0.5,\)"),
])
def test_a_model_whose_evaluate_returns_no_two_numbers_is_named(answer, shown):
    """Text failed in research's own float() ("ValueError: could not convert string to float:
    'low' (this is a bug, not a mistake of yours ... report it)"), or was stored as a number
    in silence ('0.5'); None failed as "TypeError: cannot unpack non-iterable NoneType"."""
    from research.errors import PluginFailure

    class Wordy:
        @research.hookimpl
        def register_models(self, register):
            from research.nn.model import MLP

            class Words(MLP):
                def evaluate(self, x, y):
                    return answer
            register("words", Words)

    with pytest.raises(PluginFailure, match=r"^plugin '.*': model 'words': evaluate returned " + shown
                       + r"; it must return \(loss, accuracy\), two numbers$"):
        research.train(model="words", epochs=1, hidden=8, plugins=[Wordy()])


@pytest.mark.parametrize("method, accuracy", [("evaluate", 2.0), ("evaluate", -0.5), ("loss_and_grads", 97.5),
                                              ("evaluate", float("inf"))])
def test_a_model_whose_accuracy_is_no_fraction_is_named(method, accuracy):
    """An accuracy of 2.0 was stored, and ranked above every true one, in silence."""
    from research.errors import PluginFailure
    from research.nn.model import MLP

    class Boastful(MLP):
        def evaluate(self, x, y):
            loss, acc = super().evaluate(x, y)
            return loss, accuracy if method == "evaluate" else acc

        def loss_and_grads(self, x, y, *, checked=False):
            loss, acc, grads = super().loss_and_grads(x, y, checked=checked)
            return loss, accuracy if method == "loss_and_grads" else acc, grads

    class Plugin:
        @research.hookimpl
        def register_models(self, register):
            register("boastful", Boastful)

    with pytest.raises(PluginFailure, match=rf"^plugin '.*': model 'boastful': {method} returned the accuracy "
                                            rf"{accuracy!r}; an accuracy is the fraction of samples classified right, "
                                            r"a number in \[0, 1\]$"):
        research.train(model="boastful", epochs=1, hidden=8, plugins=[Plugin()])


@pytest.mark.parametrize("reads_first", [False, True])
def test_a_model_whose_state_leaves_out_what_its_load_state_needs_is_named(tmp_path, reads_first):
    """A lone run resumed from its checkpoint blamed the user's options ("does not fit this run
    ('b1'); use the options it was written with"); a study's trial failed with "KeyError: 'b1'"."""
    from research.errors import PluginFailure

    class Forgetful:
        @research.hookimpl
        def register_models(self, register):
            from research.nn.model import MLP

            class Partial(MLP):
                def state(self):
                    return {k: v for k, v in super().state().items() if k != "W1"}

                def load_state(self, state):
                    if reads_first:  # as a plugin's own load_state does: a KeyError, not MLP's ValueError
                        state["W1"]
                    super().load_state(state)
            register("partial", Partial)

    run = {"model": "partial", "hidden": 8, "checkpoint_path": tmp_path / "m.npz", "plugins": [Forgetful()]}
    research.train(epochs=1, **run)
    said = "KeyError: 'W1'" if reads_first else r"ValueError: state does not match .* missing \['W1'\]"
    with pytest.raises(PluginFailure, match=r"^plugin '.*': model 'partial': load_state cannot read what its own "
                                            rf"state\(\) returns \({said}.*\); state\(\) must return every parameter"):
        research.train(epochs=2, resume=True, **run)


@pytest.mark.parametrize("broken, says", [
    ("state_raises", r"optimizer 'brittle' failed in state: RuntimeError: no state today"),
    ("state_none", r"optimizer 'brittle': state\(\) returned NoneType, not a dict of arrays by name"),
    ("load_raises", r"optimizer 'brittle' failed in load_state: KeyError: 't'"),
])
def test_an_optimizer_whose_state_or_load_state_breaks_is_named(tmp_path, broken, says):
    """A study's trials failed with "KeyError: 'state'" or "AttributeError: 'NoneType' object has
    no attribute 'items'", naming no plugin."""
    from research_plugins.optimizers import Adam

    from research.errors import PluginFailure

    class Brittle(Adam):
        def state(self):
            if broken == "state_raises":
                raise RuntimeError("no state today")
            return None if broken == "state_none" else super().state()

        def load_state(self, state):
            if broken == "load_raises":
                raise KeyError("t")
            super().load_state(state)

    class Plugin:
        @research.hookimpl
        def register_optimizers(self, register):
            register("brittle", Brittle)

    run = {"optimizer": "brittle", "hidden": 8, "checkpoint_path": tmp_path / "m.npz", "plugins": [Plugin()]}
    with pytest.raises(PluginFailure, match=r"^plugin '.*': " + says):
        research.train(epochs=1, **run)
        research.train(epochs=2, resume=True, **run)
