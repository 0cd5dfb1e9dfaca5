"""Bad input refused in one line (exit 2) before anything is stored: fixed values the space
also searches, repeated or misspelled space names, deeply nested TOML, counts below 1, seeds
beyond 64 bits, study names that are not plain names."""

from __future__ import annotations

import json
import math
import sqlite3
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from research.errors import UsageError
from research.space import TABLE_KEYS, SpaceError, from_table, parse_param
from research.study.spec import MAX_DEPTH, read_toml
from research.study.study import NAME_LIMIT, check_name
from tests.studyutil import cli

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def studies_in(db: Path) -> list[str]:
    if not db.exists():
        return []
    connection = sqlite3.connect(db)
    try:
        return [row[0] for row in connection.execute("SELECT name FROM studies")]
    except sqlite3.OperationalError:  # no tables yet
        return []
    finally:
        connection.close()


def refused(*args: str, store: Path, says: str) -> None:
    """``research ARGS`` exits 2 with one ``error:`` line containing ``says``, storing nothing."""
    before = studies_in(store)
    result = cli(*args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert says in lines[0], lines[0]
    assert studies_in(store) == before


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "research.db"


def train(db: Path, *args: str) -> list[str]:
    return ["train", "--strategy", "caviar", "--store", str(db), "--trials", "1", "--executor", "serial", *args]


def make_study(db: Path, name: str) -> None:
    done = cli(*train(db, "--study", name, "--epochs", "1", "--hidden", "4", "--plot", str(db.with_suffix(".png"))))
    assert done.exit_code == 0, done.stderr


@pytest.fixture(scope="module")
def one_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one trained study, 's'."""
    db = tmp_path_factory.mktemp("one") / "research.db"
    make_study(db, "s")
    return db


# 1. a fixed value the space searches -----------------------------------------------------

@pytest.mark.parametrize("value, says", [
    ("-1", "optimizer 'adam': lr must be a number > 0, got -1.0"),
    ("nan", "optimizer 'adam': lr must be a finite number > 0, got nan"),
    ("0.01", "lr is both fixed (lr = 0.01) and searched (lr=log:0.0001..1.0); drop the fixed lr, or name what to "
             "search with --space (the default space searches lr)"),
])
def test_a_fixed_value_the_default_space_searches(db: Path, value: str, says: str) -> None:
    refused(*train(db, "--lr", value), store=db, says=says)


def test_a_fixed_value_from_a_config_file(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "study.toml"
    config.write_text('strategy = "caviar"\nlr = "fast"\n')
    refused("train", "--config", str(config), "--store", str(db), store=db, says="lr must be a number > 0, got 'fast'")
    config.write_text('strategy = "caviar"\n[options]\nbeta1 = 0.95\n')
    refused("train", "--config", str(config), "--store", str(db), store=db, says="beta1 is both fixed")


def test_a_value_fixed_and_searched_in_one_config_file_is_named_there_and_makes_no_store(db: Path,
                                                                                        tmp_path: Path) -> None:
    """It was refused only after the store was made (an empty research.db left behind), and the
    error named a --space flag the user never typed."""
    config = tmp_path / "study.toml"
    config.write_text('strategy = "caviar"\n[options]\nbeta1 = 0.9\n[space.beta1]\nlow = 0.8\nhigh = 0.99\n'
                      'scale = "log1m"\n')
    refused("train", "--config", str(config), "--store", str(db), store=db,
            says=f"beta1 is both fixed (beta1 = 0.9 in {config}) and searched ([space.beta1] in {config}: "
                 "log1m:0.8..0.99); drop one of them")
    assert not db.exists()


def test_the_trial_length_can_be_searched(db: Path) -> None:
    """epochs was listed as a searchable name, but its default counted as fixed: "epochs is both
    fixed (epochs = 15) and searched", a value the user never set, with an empty store left."""
    done = cli(*train(db, "--trials", "2", "--hidden", "4", "--space", "epochs=1,2", "--seed", "1", "--plot",
                      str(db.with_suffix(".png"))))
    assert done.exit_code == 0, done.stderr
    with sqlite3.connect(db) as con:
        lengths = con.execute("SELECT t.number, COUNT(m.epoch), json_extract(t.config, '$.epochs') FROM trials t "
                              "JOIN metrics m ON m.trial_id = t.id GROUP BY t.id ORDER BY t.number").fetchall()
    assert [(number, epochs) for number, epochs, _ in lengths] == [(number, drawn) for number, _, drawn in lengths]
    refused(*train(db, "--epochs", "2", "--space", "epochs=1,2"), store=db,
            says="epochs is both fixed (--epochs 2) and searched (--space epochs=1,2); drop one of them")


def test_a_fixed_value_the_named_space_searches(db: Path) -> None:
    refused(*train(db, "--lr", "0.1", "--space", "lr=log:1e-3..1"), store=db, says="lr is both fixed")


def test_a_fixed_value_the_space_searches_through_the_python_api(tmp_path: Path) -> None:
    from research.plugins import load_plugins
    from research.study import StudySettings, open_study
    from research.study.store import Store

    db = tmp_path / "research.db"
    settings = StudySettings(strategy="caviar", base={"epochs": 1, "lr": 0.1}, space={"lr": "log:1e-3..1"})
    with Store(db) as store, pytest.raises(UsageError) as info:
        open_study(store, "api", settings, load_plugins(), executor="serial")
    assert str(info.value) == ("lr is both fixed (lr = 0.1) and searched (lr=log:1e-3..1); drop the fixed lr, "
                               "or leave lr out of the space")
    assert studies_in(db) == []
    bad = StudySettings(strategy="caviar", base={"epochs": 1, "lr": -1.0}, space={"lr": "log:1e-3..1"})
    with Store(db) as store, pytest.raises(UsageError, match="lr must be a number > 0, got -1.0"):
        open_study(store, "api", bad, load_plugins(), executor="serial")


@pytest.mark.parametrize("changed, message", [
    ({"trials": 0}, "trials must be an integer >= 1, got 0"),
    ({"trials": True}, "trials must be an integer >= 1, got True"),
    ({"strategy": "cavier"}, "unknown strategy 'cavier'; choose one of: "),
])
def test_a_bad_budget_or_strategy_through_the_python_api_stores_nothing(tmp_path: Path, changed, message) -> None:
    """As on the command line: a study that would train nothing, or that no strategy can resume."""
    from research.plugins import load_plugins
    from research.study import StudySettings, open_study
    from research.study.store import Store

    db = tmp_path / "research.db"
    settings = StudySettings(**{"strategy": "caviar", "base": {"epochs": 1}, "space": {"lr": "log:1e-3..1"},
                                **changed})
    with Store(db) as store, pytest.raises(UsageError) as info:
        open_study(store, "api", settings, load_plugins(), executor="serial")
    assert str(info.value).startswith(message)
    assert studies_in(db) == []


# 2. a name twice, a misspelled key -------------------------------------------------------

def test_a_space_name_given_twice(db: Path) -> None:
    refused(*train(db, "--space", "lr=log:1e-3..1", "--space", "lr=log:1e-2..1"), store=db,
            says="--space lr is given twice")
    refused("sample", "--space", "lr=log:1e-3..1", "--space", "lr=log:1e-2..1", store=db,
            says="--space lr is given twice")


def test_a_misspelled_key_of_a_space_table(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "study.toml"
    config.write_text('strategy = "caviar"\n[space.lr]\nlow = 1e-4\nhigh = 1\nscael = "log"\n')
    refused("train", "--config", str(config), "--store", str(db), store=db,
            says="unknown key 'scael' in [space.lr]; valid keys: low, high, scale, type, values")


toml_scalars = st.one_of(st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                         st.text(max_size=8))
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)


@FAST
@given(st.dictionaries(st.sampled_from([*TABLE_KEYS, "scael", "valeus", "min"]), toml_values, max_size=4))
@example({"values": [[]]})  # a list among the values: was a TypeError
def test_any_space_table_is_a_parameter_or_one_space_error(table: dict) -> None:
    """Whatever a [space.x] table holds: a parameter the --space text says again exactly,
    or a SpaceError (never another exception)."""
    try:
        param = from_table("x", table)
    except SpaceError as err:
        assert "\n" not in str(err)
        return
    assert set(table) <= set(TABLE_KEYS)
    assert "values" not in table or not {"low", "high", "scale", "type"} & set(table)  # a choice or a range
    assert parse_param("x", param.describe()) == param


def test_a_space_table_with_values_and_bounds_is_refused():
    with pytest.raises(SpaceError, match=r"^lr: values make a choice, but low and high are for a range \(low, "
                                         r"high, scale, type\); give one of the two: drop low and high, or values$"):
        from_table("lr", {"low": 0.1, "high": 1, "values": [0.1, 0.2]})
    with pytest.raises(SpaceError, match=r"^x: values make a choice, but type is for a range .*: drop type, or values$"):
        from_table("x", {"values": [1, 2], "type": "int"})


@FAST
@given(st.text(max_size=40))
def test_any_space_text_is_a_parameter_or_one_space_error(text: str) -> None:
    try:
        param = parse_param("x", text)
    except SpaceError as err:
        assert "\n" not in str(err) or "\n" in text
        return
    again = parse_param("x", param.describe())
    assert again.describe() == param.describe()


# 3. deeply nested TOML -------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "x = " + "[" * 5000 + "]" * 5000,
    "x = " + "{a = " * 2000 + "1" + "}" * 2000,
    "x = " + "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
])
def test_deeply_nested_toml(db: Path, tmp_path: Path, text: str) -> None:
    config = tmp_path / "deep.toml"
    config.write_text(text)
    refused("train", "--strategy", "caviar", "--config", str(config), "--store", str(db), store=db,
            says=f"config file {config}: nested too deeply")


@FAST
@given(st.integers(1, 3000), st.sampled_from(["[]", "{}"]))
def test_any_nesting_reads_or_is_one_config_error(tmp_path_factory: pytest.TempPathFactory, depth: int,
                                                  brackets: str) -> None:
    path = tmp_path_factory.mktemp("toml") / "n.toml"
    opening, closing = ("[", "]") if brackets == "[]" else ("{a = ", "}")
    path.write_text("[options]\nx = " + opening * depth + "1" + closing * depth)  # the file and [options]: 2 levels
    try:
        data = read_toml(path)
    except UsageError as err:
        assert "nested too deeply" in str(err) and depth + 2 > MAX_DEPTH
    else:
        assert depth + 2 <= MAX_DEPTH and data == tomllib.loads(path.read_text())


# 4. counts below 1 -----------------------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["show", "s", "--top", "-1"], "--top must be at least 1, got -1"),
    (["show", "s", "--top", "0"], "--top must be at least 1, got 0"),
    (["sample", "-n", "0"], "-n must be from 1 to 100,000"),
    (["sample", "--bins", "-3"], "--bins must be from 1 to 1,000, got -3"),
    (["resume", "s", "--trials", "0"], "trials must be an integer >= 1"),
    (["resume", "s", "--workers", "-2"],
     "workers must be at least 1, got -2; leave --workers out for the default (the study's, else one per core)"),
    (["resume", "s", "--max-epochs", "0"], "--max-epochs must be a whole number > 0"),
    (["confirm", "s", "--top", "0"], "Invalid value for '--top'"),
    (["confirm", "s", "--seeds", "0"], "Invalid value for '--seeds'"),
])
def test_counts_below_one(one_study: Path, args: list[str], says: str) -> None:
    refused(*args, *(["--store", str(one_study)] if args[0] != "sample" else []), store=one_study, says=says)


@pytest.mark.parametrize("args, says", [
    (["sample", "-n", "1000000000000"], "-n must be from 1 to 100,000 (a preview"),
    (["sample", "--bins", "1000000000000"], "--bins must be from 1 to 1,000"),
    (["sample", "--sampler", "grid", "--sampler-opt", "points_per_axis=10001"], "points_per_axis must be an integer in"),
])
def test_counts_beyond_what_a_preview_needs(one_study: Path, args: list[str], says: str) -> None:
    refused(*args, store=one_study, says=says)


@pytest.mark.parametrize("args, says", [
    (["--bogus"], "error: No such option: --bogus (see `research --help`)"),
    (["nosuch"], "error: No such command 'nosuch' (see `research --help`)"),
    (["show"], "error: Missing argument 'name' (see `research show --help`)"),
    (["show", "s", "--top", "many"], "error: Invalid value for '--top': "),
    (["train", "--hidden", "wide"], "error: Invalid value for '--hidden': "),
    (["confirm", "s", "--bogus"], "error: No such option: --bogus (see `research confirm --help`)"),
    # a switch given a value, as --model-opt batchnorm=false takes one: it named neither the flag nor its off form
    (["train", "--batchnorm", "false"], "error: Got unexpected extra argument(s) (false); --batchnorm takes no value: "
                                        "write --batchnorm or --no-batchnorm (see `research train --help`)"),
    (["train", "--batchnorm=false"],  # its help page was research's own
     "error: Option '--batchnorm' does not take a value; write --batchnorm or --no-batchnorm (see `research train "
     "--help`)"),
    (["show", "s", "--json=1"], "error: Option '--json' does not take a value; write --json, or leave it out (see "
                                "`research show --help`)"),
])
def test_flags_the_parser_refuses_are_one_line_too(one_study: Path, args: list[str], says: str) -> None:
    refused(*args, store=one_study, says=says)


# 5. seeds --------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", ["99999999999999999999", str(2**63), "-1"])
def test_seeds_beyond_64_bits(db: Path, seed: str) -> None:
    says = f"seed must be an integer in 0 <= seed < 2**63, got {seed}"
    refused(*train(db, "--seed", seed), store=db, says=says)
    refused("train", "--seed", seed, "--store", str(db), store=db, says=says)
    refused("sample", "--seed", seed, "-n", "2", store=db, says=says)


# 6. study names --------------------------------------------------------------------------

BAD_NAMES = ["../escaped", "/abs/dir", "s/.", "a" * 300, "", "a\nb", "tab\there", " lead", "trail ", ".hidden",
             "-dash", "a\x00b", "two  spaces", "back\\slash",
             "日" * 100]  # 100 letters but 300 bytes: its file names were refused as too long, the study stored


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_study_names(db: Path, name: str) -> None:
    refused(*train(db, "--study", name), store=db, says="is not allowed; a name is 1 to 100")


def test_a_decomposed_accent_in_a_name_is_named() -> None:
    """'café' typed decomposed (e + U+0301) was refused as if the shown name broke the rule."""
    from research.study.study import check_name

    with pytest.raises(UsageError, match=r"^study name 'cafe\u0301' \(it holds U\+0301 COMBINING ACUTE ACCENT\) is "):
        check_name("cafe\u0301")
    assert check_name("café") == "café"


def test_rename_checks_the_new_name_only(db: Path) -> None:
    make_study(db, "old")
    connection = sqlite3.connect(db)  # a name from before the rules: still usable
    connection.execute("UPDATE studies SET name = '../legacy name ' WHERE name = 'old'")
    connection.commit()
    connection.close()
    refused("rename", "../legacy name ", "../x", "--yes", "--store", str(db), store=db, says="'../x' is not allowed")
    assert cli("show", "../legacy name ", "--store", str(db)).exit_code == 0
    assert cli("rename", "../legacy name ", "new.name+1", "--yes", "--store", str(db)).exit_code == 0
    assert studies_in(db) == ["new.name+1"]


def test_a_stored_name_longer_than_a_file_name_may_be_is_still_deleted(db: Path) -> None:
    """Such a study (stored before names were limited in bytes) failed every command with
    "[Errno 36] File name too long", delete and rename too."""
    make_study(db, "old")
    connection = sqlite3.connect(db)
    connection.execute("UPDATE studies SET name = ? WHERE name = 'old'", ("日" * 100,))
    connection.commit()
    connection.close()
    assert cli("show", "日" * 100, "--store", str(db)).exit_code == 0
    assert cli("delete", "日" * 100, "--yes", "--store", str(db)).exit_code == 0
    assert studies_in(db) == []


names = st.text(st.characters(codec="utf-8"), max_size=120)


@FAST
@given(names)
def test_any_name_is_accepted_or_refused_in_one_line(name: str) -> None:
    try:
        assert check_name(name) == name
    except UsageError as err:
        assert "\n" not in str(err) and str(err).startswith("study name ")
        return
    assert 1 <= len(name) <= NAME_LIMIT and name == name.strip() and "/" not in name and "\\" not in name
    assert name[0] not in ".-" and all(c.isprintable() for c in name)


@pytest.mark.parametrize("name", ["a", "first", "lion-rings", "my-study", "adam-digits", "caviar-1", "torch-kill",
                                  "my study", "x.y+z@w=1,2", "_private", "Étude_2"])
def test_good_study_names(name: str) -> None:
    assert check_name(name) == name


def test_python_api_checks_new_names(tmp_path: Path) -> None:
    from research.plugins import load_plugins
    from research.study.store import Store
    from research.study.study import StudySettings, open_study

    settings = StudySettings(strategy="caviar", base={"epochs": 1}, space={"lr": "log:1e-3..1"}, trials=1)
    with Store(tmp_path / "r.db") as store:
        with pytest.raises(UsageError, match="is not allowed"):
            open_study(store, "../x", settings, load_plugins(), executor="serial")
        assert store.studies() == []


def test_nan_is_not_a_seed_or_a_bound() -> None:
    with pytest.raises(SpaceError):
        from_table("x", {"low": math.nan, "high": 1.0})


def test_a_config_that_is_a_folder_or_not_text_is_one_line(tmp_path: Path) -> None:
    """A folder gave the system's "[Errno 21] Is a directory" (exit 1), binary bytes a
    UnicodeDecodeError called a bug."""
    (tmp_path / "dir.toml").mkdir()
    (tmp_path / "bin.toml").write_bytes(bytes(range(128, 256)) * 3)
    for name, says in (("dir.toml", "is a folder; give the study.toml file in it"),
                       ("bin.toml", "is not text (not UTF-8); give a study.toml file")):
        result = cli("train", "--config", tmp_path / name)
        assert result.exit_code == 2 and result.stderr.strip() == f"error: config file {tmp_path / name} {says}"


def test_a_config_that_starts_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Notepad's UTF-8 mark before the first key was "not valid TOML: Invalid statement (at line 1,
    column 1)"."""
    (tmp_path / "bom.toml").write_bytes(b"\xef\xbb\xbfepochs = 1\nhidden = 8\n")
    result = cli("train", "--config", tmp_path / "bom.toml", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["history"]) == 1


def test_a_damaged_store_is_named_with_its_fix_not_called_a_bug(tmp_path: Path) -> None:
    """SQLite's "database disk image is malformed" was "this is a bug ... report it"."""
    db = tmp_path / "r.db"
    done = cli("train", "--strategy", "caviar", "--store", db, "--trials", "4", "--epochs", "2", "--hidden", "8",
               "--executor", "serial", "--plot", tmp_path / "c.png")
    assert done.exit_code == 0, done.output
    data = bytes(db.read_bytes())
    overwritten = data[:len(data) // 2] + b"\xff" * 4000 + data[len(data) // 2 + 4000:]
    cut = data[:len(data) // 2]  # it was "not a research store ...; pass another --store PATH", exit 2
    from research_plugins.dashboard.views import store_problem

    for damaged in (overwritten, cut):
        db.write_bytes(damaged)
        # babysit's commands said "plugin 'babysit': command 'set' failed: DatabaseError ... (a bug in that
        # plugin)", and the dashboard ended so, serving no page
        steer = [["set", "caviar-1", "lr=0.1"], ["rollback", "caviar-1"]] if damaged is cut else []
        for args in (["studies"], ["show", "caviar-1"], *steer):
            result = cli(*args, "--store", db)
            assert result.exit_code == 1, result.output
            assert result.stderr.strip() == ("error: the store's file is damaged (database disk image is malformed); "
                                             "restore it from a copy, or use another --store")
        if damaged is cut:  # the other reads as a store until a damaged page is read (a 503 then)
            assert store_problem(db) == ("the store's file is damaged (database disk image is malformed); restore "
                                         "it from a copy, or use another --store")


def test_a_path_too_long_or_through_a_file_is_a_mistake_of_input(tmp_path: Path, monkeypatch) -> None:
    """`[Errno 36] File name too long: '...'` and `[Errno 20] Not a directory`, exit 1, as if the
    system had failed; they are the path given, exit 2, with the fix."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    long = "a" * 300
    for args, path, says in [
        (["train", "--config", f"{long}.toml"], f"{long}.toml", "the name is too long for the file system"),
        (["show", "x", "--store", f"{long}.db"], f"{long}.db", "the name is too long for the file system"),
        (["train", "--epochs", "1", "--checkpoint", f"{long}.npz"], f"{long}.npz", "the name is too long"),
        (["train", "--config", "afile/x.toml"], "afile/x.toml", "a part of that path is a file, not a folder"),
    ]:
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)
        assert " ".join(result.stderr.split()).startswith(f"error: {path}: {says}"), result.stderr


@pytest.mark.parametrize("flag", ["--metric", "--direction", "--sampler"])
def test_an_empty_name_is_refused_not_taken_for_the_default(tmp_path: Path, flag: str) -> None:
    """--metric '' ran the study on val_acc, --direction '' on its metric's own direction."""
    result = cli("train", "--strategy", "caviar", "--trials", "1", "--epochs", "1", flag, "", "--store",
                 tmp_path / "r.db")
    assert result.exit_code == 2 and result.stderr.strip() == f"error: {flag} is empty; give it a value, or leave the " \
        "flag out"
    assert not (tmp_path / "r.db").exists()
    (tmp_path / "s.toml").write_text('strategy = "caviar"\nmetric = " "\n')
    assert "s.toml: metric is empty; give it a value, or leave it out" in cli("train", "--config",
                                                                              tmp_path / "s.toml").stderr
