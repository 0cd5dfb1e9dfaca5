"""`research dashboard` over HTTP: every route, the token, the read-only guarantee, the
controls (the same events as the command line), errors as one line, and what is new since
a cursor. The browser side is tests/test_dashboard_browser.py."""

from __future__ import annotations

import copy
import json
import shutil
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the dashboard extra is not installed: pip install -e '.[test]'")

from research_plugins.dashboard.app import TOKEN_HEADER, Dashboard, make_app  # noqa: E402
from research_plugins.dashboard.command import loopback  # noqa: E402
from starlette.testclient import TestClient  # noqa: E402

from research import hookimpl  # noqa: E402
from research.errors import UsageError  # noqa: E402
from research.extras import install_command  # noqa: E402
from research.plugins import load_plugins  # noqa: E402
from research.study.store import Store, StoreError  # noqa: E402
from tests.studyutil import cli  # noqa: E402

TOKEN = "test-token"


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> Path:
    """A store with a caviar study (searched, one trial pruned by hand) and a babysit study."""
    folder = tmp_path_factory.mktemp("dashboard")
    db = folder / "research.db"
    ran = cli("train", "--strategy", "caviar", "--study", "c", "--store", db, "--trials", "4", "--epochs", "3",
              "--hidden", "16", "--executor", "serial", "--space", "lr=log:1e-3..1e-1",
              "--space", "beta1=log1m:0.8..0.99", "--plot", folder / "c.png")
    assert ran.exit_code == 0, ran.output
    ran = cli("train", "--strategy", "babysit", "--study", "b", "--store", db, "--hidden", "16",
              "--segment-epochs", "1", "--segments", "3", "--policy", "none", "--plot", folder / "b.png")
    assert ran.exit_code == 0, ran.output
    return db


def client_for(db: Path, *, allow_control: bool = False, cookies: bool = True) -> TestClient:
    dashboard = Dashboard(db, load_plugins(), token=TOKEN, allow_control=allow_control)
    client = TestClient(make_app(dashboard), raise_server_exceptions=True)
    if cookies:
        client.headers[TOKEN_HEADER] = TOKEN
    return client


def test_every_request_needs_the_token(stores):
    bare = client_for(stores, cookies=False)
    for path in ("/", "/study?name=c", "/api/studies", "/api/study?name=c", "/static/dashboard.js",
                 "/static/plotly.min.js", "/api/updates?name=c"):
        refused = bare.get(path)
        assert refused.status_code == 403, path
        assert "token" in refused.text and "val_acc" not in refused.text and TOKEN not in refused.text
        assert bare.get(path + ("&" if "?" in path else "?") + "token=wrong").status_code == 403
    page = bare.get("/?token=" + TOKEN)
    assert page.status_code == 200 and 'data-page="studies"' in page.text
    cookie = page.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("samesite", "SameSite")
    assert bare.get("/api/studies").status_code == 200  # the page's cookie opens the rest


def test_studies_lists_each_study_with_its_state_and_best(stores):
    studies = {s["name"]: s for s in client_for(stores).get("/api/studies").json()["studies"]}
    assert set(studies) == {"c", "b"}
    c = studies["c"]
    assert (c["strategy"], c["state"], c["dataset"], c["done"], c["total"], c["metric"]) == \
           ("caviar", "finished", "digits", 4, 4, "val_acc")
    shown = json.loads(cli("show", "c", "--store", stores, "--json").stdout)
    assert c["best"] == shown["trials"][0]["best_val_acc"]  # the study's own ranking
    assert studies["b"]["strategy"] == "babysit"
    assert c["trains"] == "mlp on digits"


def test_study_page_and_its_data(stores):
    client = client_for(stores)
    page = client.get("/study?name=c")
    assert page.status_code == 200 and 'data-name="c"' in page.text and "/static/plotly.min.js" in page.text
    overview = client.get("/api/study", params={"name": "c"}).json()
    assert overview["searched"] == ["lr", "beta1"] and len(overview["trials"]) == 4
    assert overview["controls"] == []  # neither allowed nor offered by caviar
    shown = json.loads(cli("show", "c", "--store", stores, "--json").stdout)
    assert [t["number"] for t in overview["trials"]] == [t["number"] for t in shown["trials"]]
    figures = client.get("/api/figures", params={"name": "c"}).json()["figures"]
    names = [f["figure"]["name"] for f in figures]
    assert names == ["Learning curves", "Score against each hyperparameter", "Parallel coordinates"]
    assert figures[0]["live"] == "val_acc" and figures[1]["live"] is None
    scales = [panel["x"]["scale"] for panel in figures[1]["figure"]["panels"]]
    assert scales == ["log", "log1m"]  # each hyperparameter on its own scale
    hover = figures[0]["figure"]["panels"][0]["series"][0]["info"]
    assert set(hover) >= {"trial", "config"} and "lr" in hover["config"]


def test_a_plugins_own_figure_and_events_come_through(stores):
    client = client_for(stores)
    figures = client.get("/api/figures", params={"name": "b"}).json()["figures"]
    own = figures[0]
    assert own["live"] is None  # babysit's picture: redrawn whole, not extended point by point
    with Store(stores, read_only=True) as store:
        from research.report.figures import study_figure

        expected = study_figure(store, store.study("b"), None, load_plugins()).as_dict()
    assert json.loads(json.dumps(expected)) == own["figure"]  # the same data the PNG and the report draw
    events = client.get("/api/study", params={"name": "b"}).json()["events"]
    logged = json.loads(cli("log", "b", "--store", stores, "--json").stdout)["events"]
    assert [(e["id"], e["number"]) for e in events] == [(e["id"], e["number"]) for e in logged] and events
    with Store(stores, read_only=True) as store:  # in the words of the plugin, as `research log` prints them
        plugins = load_plugins()
        assert [e["text"] for e in events] == [plugins.describe(store.study("b"), e) for e in logged]


def test_trial_and_compare(stores):
    client = client_for(stores)
    assert client.get("/trial?name=c&number=1").status_code == 200
    trial = client.get("/api/trial", params={"name": "c", "number": 1}).json()
    assert trial["number"] == 1 and "lr" in trial["config"] and trial["figure"]["panels"]
    missing = client.get("/api/trial", params={"name": "c", "number": 99})
    assert missing.status_code == 404 and missing.json()["error"] == "study 'c' has no trial 99"
    bad = client.get("/api/trial", params={"name": "c", "number": "x"})
    assert bad.status_code == 400 and "whole number" in bad.json()["error"]
    huge = "9" * 23  # beyond SQLite's 64-bit integers: a bad request, not a bug
    for path, params in [("/api/trial", {"name": "c", "number": huge}), ("/api/updates", {"name": "c", "after": huge}),
                         ("/api/updates", {"name": "c", "events_after": huge})]:
        answer = client.get(path, params=params)
        assert answer.status_code == 400 and "whole number" in answer.json()["error"], (path, answer.text)
    # a cursor no row can come after stalled a script in silence; a time that is no time was taken
    for params, said in [({"after": -1}, "after must be a whole number from 0"),
                         ({"after": 10**6}, "after=1000000 is past the store's last row ("),
                         ({"events_after": 10**5}, "events_after=100000 is past the store's last row ("),
                         ({"since": "nan"}, "since must be a time in seconds, got 'nan'"),
                         ({"since": "inf"}, "since must be a time in seconds, got 'inf'")]:
        answer = client.get("/api/updates", params={"name": "c", **params})
        assert answer.status_code == 400 and answer.json()["error"].startswith(said), (params, answer.text)
    assert client.get("/compare?study=c&study=b").status_code == 200
    compared = client.get("/api/compare", params=[("study", "c"), ("study", "b")]).json()["studies"]
    assert [s["name"] for s in compared] == ["c", "b"] and all(s["figure"]["panels"] for s in compared)
    assert client.get("/api/compare").status_code == 400
    unknown = client.get("/api/study", params={"name": "nope"})
    assert unknown.status_code == 404 and unknown.json()["error"].startswith("no study 'nope'")


def test_updates_send_only_what_is_new(stores, tmp_path):
    db = tmp_path / "research.db"
    shutil.copy(stores, db)
    client = client_for(db)
    cursor = client.get("/api/study", params={"name": "c"}).json()["cursor"]
    quiet = client.get("/api/updates", params={"name": "c", "after": cursor["epoch"],
                                                "events_after": cursor["event"], "since": cursor["time"]}).json()
    assert quiet["epochs"] == [] and quiet["events"] == [] and quiet["trials"] == []
    with Store(db) as store:
        study = store.study("c")
        trial = store.add_trial(study, 4, {"lr": 0.01, "beta1": 0.9}, seed=7)
        store.add_epoch(trial, 1, {"val_acc": 0.5, "val_loss": 1.0})
    news = client.get("/api/updates", params={"name": "c", "after": cursor["epoch"],
                                               "events_after": cursor["event"], "since": cursor["time"]}).json()
    assert news["epochs"] == [[4, 1, {"val_acc": 0.5, "val_loss": 1.0}]]
    assert [t["number"] for t in news["trials"]] == [4]
    assert news["cursor"]["epoch"] > cursor["epoch"]
    again = client.get("/api/updates", params={"name": "c", "after": news["cursor"]["epoch"],
                                                "events_after": news["cursor"]["event"],
                                                "since": news["cursor"]["time"]}).json()
    assert again["epochs"] == []
    # the whole views are read again once the study changed
    assert len(client.get("/api/study", params={"name": "c"}).json()["trials"]) == 5


def test_reads_cannot_write(stores, tmp_path):
    db = tmp_path / "research.db"
    shutil.copy(stores, db)
    with Store(db, read_only=True) as store:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.add_event(store.study("c"), "x", {})
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.db.execute("CREATE TABLE sneaky (x)")
    with pytest.raises(StoreError, match="does not exist"):
        Store(tmp_path / "missing.db", read_only=True)
    assert not (tmp_path / "missing.db").exists()


def test_controls_write_what_the_commands_write(stores, tmp_path):
    db = tmp_path / "research.db"
    shutil.copy(stores, db)
    off = client_for(db).post("/api/control/stop", params={"name": "b"}, json={"values": {}})
    assert off.status_code == 403 and "--allow-control" in off.json()["error"]
    client = client_for(db, allow_control=True)
    offered = client.get("/api/study", params={"name": "b"}).json()["controls"]
    assert [c["name"] for c in offered] == ["set", "rollback", "stop"]
    assert client.get("/api/study", params={"name": "c"}).json()["controls"] == []
    # the study has ended: refused in the command's words
    ended = client.post("/api/control/set", params={"name": "b"}, json={"values": {"assignment": "lr=0.01"}})
    assert ended.status_code == 400 and "has ended (finished)" in ended.json()["error"]
    with Store(db) as store:  # as if it were running again (resumed)
        trial = store.trials(store.study("b"))[0]
        store.set_status(trial, "interrupted")
    named = client.post("/api/control/set", params={"name": "b"}, json={"values": {"lr": "0.2"}})  # "cannot read ''"
    assert named.status_code == 400 and named.json()["error"] == "control 'set' takes the fields assignment; got lr"
    bad = client.post("/api/control/set", params={"name": "b"}, json={"values": {"assignment": "nonsense=1"}})
    assert bad.status_code == 400 and bad.json()["error"].startswith("unknown hyperparameter 'nonsense'")
    sent = client.post("/api/control/set", params={"name": "b"}, json={"values": {"assignment": "lr=0.003"}})
    assert sent.status_code == 200, sent.text
    assert sent.json()["message"] == "queued set lr=0.003 for 'b': applied when it resumes (it is not running now)"
    by_cli = cli("set", "b", "lr=0.003", "--store", db)  # one mechanism: the CLI sees the form's command
    assert by_cli.exit_code == 0, by_cli.output
    assert "the same set lr=0.003 for 'b' is queued already: applied when it resumes" in by_cli.stderr
    stop = client.post("/api/control/stop", params={"name": "b"}, json={"values": {}})
    assert stop.status_code == 400 and stop.json()["error"].startswith("study 'b' is not running, so there is nothing")
    bare = client.post("/api/control/stop", params={"name": "b"})  # no fields, no body: it was 400 "send JSON"
    assert bare.status_code == 400 and bare.json()["error"] == stop.json()["error"]
    nameless = client.post("/api/control/stop", json={"values": {}})  # a 404 "no study ''" before
    assert nameless.status_code == 400 and nameless.json()["error"] == "name a study: ?name=STUDY"
    got = client.get("/api/control/stop", params={"name": "b"})  # Starlette's plain-text 405 before
    assert got.status_code == 405 and got.json()["error"] == "a control is sent with POST, not GET"
    with Store(db) as store:
        commands = [e["data"] for e in store.events(store.study("b"), kind="command")]
    assert commands == [{"action": "set", "name": "lr", "value": "0.003"}]
    # a control needs the header, not only the cookie (another site cannot post through it)
    cookie_only = client_for(db, allow_control=True, cookies=False)
    cookie_only.get("/?token=" + TOKEN)
    refused = cookie_only.post("/api/control/stop", params={"name": "b"}, json={"values": {}})
    assert refused.status_code == 403 and TOKEN_HEADER in refused.json()["error"]
    unknown = client.post("/api/control/fly", params={"name": "b"}, json={"values": {}})
    assert unknown.status_code == 404 and "offers: set, rollback, stop" in unknown.json()["error"]
    nobody = client.post("/api/control/stop", params={"name": "nosuch"}, json={"values": {}})
    assert nobody.status_code == 404 and nobody.json()["error"].startswith("no study 'nosuch' in ")  # as a page says
    assert client.post("/api/control/stop", params={"name": "b"}, content=b"not json").status_code == 400


def test_missing_or_corrupt_store_is_one_line(tmp_path):
    client = client_for(tmp_path / "absent.db")
    page = client.get("/")
    assert page.status_code == 503 and 'class="error"' in page.text and "does not exist" in page.text
    assert "Traceback" not in page.text and 'http-equiv="refresh"' in page.text  # shown once a study writes it
    assert client.get("/api/studies").json()["error"].startswith("store ")
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not sqlite" * 100)
    page = client_for(broken).get("/study?name=c")
    assert page.status_code == 503 and "is not a research store" in page.text
    assert client_for(broken).get("/api/study", params={"name": "c"}).status_code == 503


def test_static_files_and_plotly_are_served(stores):
    client = client_for(stores)
    assert "drawFigure" in client.get("/static/dashboard.js").text
    assert client.get("/static/dashboard.css").status_code == 200
    plotly = client.get("/static/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000
    assert client.get("/static/../app.py").status_code == 404


def test_command_line(tmp_path):
    assert loopback("127.0.0.1") and loopback("::1") and loopback("localhost")
    assert not loopback("0.0.0.0") and not loopback("192.168.1.4")
    result = cli("dashboard", "--help")
    assert result.exit_code == 0
    for flag in ("--store", "--port", "--host", "--allow-control"):
        assert flag in result.stdout
    bad = cli("dashboard", "--port", "70000")
    assert bad.exit_code == 2


class Annotations:
    """A third party's control for caviar studies: a note, stored as an event."""

    @staticmethod
    def note(store, study, values, plugins):
        text = values.get("text", "").strip()
        if not text:
            from research.errors import UsageError

            raise UsageError("write a note, e.g. 'lr above 0.1 diverges'")
        store.add_event(study, "note", {"text": text})
        return f"noted on '{study.name}'"

    @hookimpl
    def study_controls(self, study):
        from research.study.control import Control, ControlField

        if study.strategy != "caviar":
            return None
        return [Control("note", "Note", "Add a note to the study's log.", self.note,
                        (ControlField("text", "note", "what you saw"),))]

    @hookimpl
    def describe_event(self, study, event):
        return f"note: {event['data']['text']}" if event["kind"] == "note" else None


def test_a_plugins_controls_and_words_appear_without_dashboard_changes(stores, tmp_path):
    db = tmp_path / "research.db"
    shutil.copy(stores, db)
    dashboard = Dashboard(db, load_plugins([Annotations()]), token=TOKEN, allow_control=True)
    client = TestClient(make_app(dashboard))
    client.headers[TOKEN_HEADER] = TOKEN
    assert [c["name"] for c in client.get("/api/study", params={"name": "c"}).json()["controls"]] == ["note"]
    empty = client.post("/api/control/note", params={"name": "c"}, json={"values": {"text": " "}})
    assert empty.status_code == 400 and empty.json()["error"].startswith("write a note")
    done = client.post("/api/control/note", params={"name": "c"}, json={"values": {"text": "lr above 0.1 diverges"}})
    assert done.json() == {"message": "noted on 'c'"}
    assert client.get("/api/study", params={"name": "c"}).json()["events"][-1]["text"] == "note: lr above 0.1 diverges"


def test_port_in_use_and_missing_extra_are_one_line(tmp_path, monkeypatch):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = cli("dashboard", "--store", tmp_path / "r.db", "--port", port)
    assert busy.exit_code == 2
    assert busy.stderr.startswith(f"error: cannot listen on 127.0.0.1:{port} (") and "pass another --port" in busy.stderr
    unknown = cli("dashboard", "--store", tmp_path / "r.db", "--host", "nosuchhost.invalid", "--port", 0)
    assert unknown.exit_code == 2  # the name is the problem, not the port
    assert unknown.stderr.startswith("error: cannot listen on nosuchhost.invalid:0: no address of this machine is "
                                     "named 'nosuchhost.invalid' (") and "--port" not in unknown.stderr
    empty = cli("dashboard", "--store", tmp_path / "r.db", "--host", "", "--port", 0)  # listened everywhere
    assert empty.exit_code == 2 and empty.stderr.startswith("error: --host is empty; pass an address of this machine")
    elsewhere = cli("dashboard", "--store", tmp_path / "r.db", "--host", "192.0.2.1", "--port", 0)  # TEST-NET-1
    assert elsewhere.exit_code == 2 and "192.0.2.1 is not an address of this machine" in elsewhere.stderr
    assert "--port" not in elsewhere.stderr
    monkeypatch.setattr("research_plugins.dashboard.command.NEEDED", ("starlette", "no_such_package_here"))
    missing = cli("dashboard", "--store", tmp_path / "r.db")
    assert missing.exit_code == 2
    assert missing.stderr.strip() == ("error: research dashboard needs no_such_package_here: install the extra with "
                                      f"{install_command('dashboard')}")


def test_serves_until_interrupted_and_warns_of_other_hosts(tmp_path, reap):
    import signal
    import socket

    from tests.studyutil import start

    process = start(["dashboard", "--store", "later.db", "--host", "0.0.0.0", "--port", "0"], tmp_path)
    reap.append(process)
    address = process.stdout.readline() and process.stdout.readline().strip()
    assert address.startswith(f"http://{socket.gethostname()}:") and "/?token=" in address  # not 0.0.0.0
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err  # Ctrl-C, as for every command
    assert err.splitlines()[-1] == "interrupted"
    assert "warning: listening on 0.0.0.0, not only this machine" in err
    assert "warning: store later.db does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "later.db").exists()  # a viewer never creates a store


def shown(store: Store, study, curves) -> tuple:
    """What the views make of ``curves``: the ranking, the fixed values, the curves figure."""
    from research.report.figures import curves_figure
    from research.report.html import fixed_values
    from research.report.tables import ranked

    rows = ranked(store, study, curves=curves)
    return rows, fixed_values(store, study, curves), curves_figure(store, study, curves=curves, rows=rows).as_dict()


def test_curves_are_read_whole_once_then_only_what_is_new(stores, tmp_path):
    from research_plugins.dashboard.views import Views

    db = tmp_path / "research.db"
    shutil.copy(stores, db)
    views = Views()
    with Store(db) as writer, Store(db, read_only=True) as reader:
        study = writer.study("c")
        first = views.curves(reader, study)
        assert shown(reader, study, first) == shown(reader, study, reader.curves(study))
        kept = copy.deepcopy(first)
        assert views.curves(reader, study) is first  # nothing new: the same
        trial = writer.trials(study)[0]
        writer.add_epoch(trial, 4, {"val_acc": 0.5, "val_loss": 1.0})
        new = writer.add_trial(study, 4, {"lr": 0.01}, seed=1)
        writer.add_epoch(new, 1, {"val_acc": 0.25})
        grown = views.curves(reader, study)
        assert grown is not first and grown[4] == reader.curves(study)[4]  # the new epochs whole
        assert shown(reader, study, grown) == shown(reader, study, reader.curves(study))
        assert first == kept  # the earlier answer is left as it was
        writer.roll_back(trial, 2)  # not new epochs: read whole again
        assert shown(reader, study, views.curves(reader, study)) == shown(reader, study, reader.curves(study))


def test_the_views_show_what_every_metric_of_every_epoch_shows(tmp_path):
    """The views read of each epoch what they show (views.read_curves): the page's data is what
    the whole curves (Store.curves) give, with ties the tie-break decides, missing values, test
    metrics, rolled back epochs, a failed trial, a trial with no epoch, and a study ranked by a
    metric its trainer adds."""
    from research_plugins.dashboard import views
    from research_plugins.dashboard.views import Views

    from research.report.figures import curves_figure, parallel_figure, scores_figure
    from research.report.html import fixed_values
    from research.report.importance import importance_figure
    from research.report.tables import ranked

    db = tmp_path / "research.db"
    with Store(db) as store:
        for name, metric in (("acc", "val_acc"), ("loss", "val_loss"), ("own", "val_f1")):
            study = store.create_study(name, "caviar", {"space": {"lr": "log:1e-3..1e-1", "act": "relu,tanh"},
                                                        "metric": metric, "trials": 14})
            for number in range(14):
                config = {"lr": 10 ** (-3 + number / 7), "act": ("relu", "tanh")[number % 2]}
                trial = store.add_trial(study, number, config, seed=number)
                for epoch in range(1, 6 + number % 3):
                    acc = 0.5 + 0.1 * ((number * epoch) % 4)  # ties, within and between trials
                    loss = 1.5 - acc - 0.01 * epoch  # the tie-break picks the latest of equal scores
                    store.add_epoch(trial, epoch, {
                        "val_acc": float("nan") if (number, epoch) == (3, 2) else acc, "val_loss": loss,
                        "train_acc": acc + 0.01, "lr": 0.1 / epoch, "val_f1": round(acc * 0.9, 2),
                        "test_acc": acc - 0.02 * epoch, "test_loss": 1.6 - acc})
                if number == 5:
                    store.roll_back(trial, 2)
                    store.add_epoch(trial, 3, {"val_acc": 0.95, "val_loss": 0.1, "test_acc": 0.9})
                store.set_status(trial, "failed" if number == 7 else "pruned" if number % 4 == 1 else "finished",
                                 "boom" if number == 7 else None)
            store.add_trial(study, 14, {"lr": 0.01, "act": "relu"}, seed=14)  # no epoch yet
    plugins = load_plugins()
    with Store(db, read_only=True) as store:
        for name, metric in (("acc", "val_acc"), ("loss", "val_loss"), ("own", "val_f1")):
            study = store.study(name)
            kept = Views()
            overview = views.overview(store, study, plugins, kept, False)
            rows = ranked(store, study)
            assert overview["trials"] == views._ranked_rows(rows, metric)
            assert overview["fixed"] == fixed_values(store, study)
            assert any(row["test"] for row in overview["trials"])
            made = [curves_figure(store, study, rows=rows), scores_figure(store, study, rows=rows),
                    parallel_figure(store, study, rows=rows), importance_figure(store, study)]
            figures = views.figures(store, study, plugins, kept)["figures"]
            assert [item["figure"] for item in figures] == [figure.as_dict() for figure in made]
            (compared,) = views.compare(store, [name], kept)
            assert compared["figure"] == made[0].as_dict() and compared["trials"] == overview["trials"][:5]


def test_what_two_requests_need_at_once_is_made_once(stores, monkeypatch):
    """A study page asks for its figures and its table at once and both need the study's curves
    and ranking: the second request waits for what the first is making (its error too)."""
    from research_plugins.dashboard import views

    kept = views.Views()
    release = threading.Event()
    calls = []

    def slowly(answer):
        def make(*args):
            calls.append(args)
            release.wait(10)
            if isinstance(answer, Exception):
                raise answer
            return answer(*args) if callable(answer) else answer
        return make

    def ask(what):
        with Store(stores, read_only=True) as store:
            return what(store, store.study("c"))

    monkeypatch.setattr(views, "read_curves", slowly(views.read_curves))
    for what in (lambda store, study: kept.get(store, study, "made", slowly({"made": True})),
                 lambda store, study: kept.get(store, study, "failed", slowly(UsageError("no"))),
                 kept.curves):
        calls.clear()
        release.clear()
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(ask, what)
            second = pool.submit(ask, what)
            time.sleep(0.3)  # both are asking
            release.set()
            answers = [first.exception() or first.result(), second.exception() or second.result()]
        assert len(calls) == 1 and answers[0] is answers[1]


def test_views_are_prepared_ahead_of_the_first_visit(stores, tmp_path):
    dashboard = Dashboard(stores, load_plugins(), token=TOKEN)
    dashboard.prepare()
    kinds = {key[2] for key in dashboard.views._kept}
    assert {"ranked", "fixed", "figures"} <= kinds
    Dashboard(tmp_path / "absent.db", load_plugins(), token=TOKEN).prepare()  # nothing to prepare, no error


def test_a_bug_is_one_line_not_a_traceback(stores, monkeypatch, caplog):
    from research_plugins.dashboard import views

    def broken(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(views, "overview", broken)
    answer = client_for(stores).get("/api/study", params={"name": "c"})
    assert answer.status_code == 500
    assert answer.json() == {"error": "KeyError: 'oops' (a bug; the dashboard's terminal shows the traceback)"}
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)


def test_a_study_of_its_own_trainer_is_listed_with_it_not_a_dataset(tmp_path):
    """A --command study was listed as training 'digits', which its program never read."""
    with Store(tmp_path / "research.db") as store:
        store.create_study("p", "caviar", {"base": {"trainer": "command",
                                                    "trainer_options": {"command": "python train.py"}}})
    (row,) = client_for(tmp_path / "research.db").get("/api/studies").json()["studies"]
    assert (row["trains"], row["dataset"]) == ("command (command=python train.py)", None)
    listed = json.loads(cli("studies", "--store", tmp_path / "research.db", "--json").stdout)["studies"]
    assert listed[0]["trains"] == row["trains"]  # as the command says it
