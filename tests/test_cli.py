"""The citygrid command, run as a person runs it: a subprocess, its exit code and output."""

import json
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

DATA = Path(__file__).parents[1] / "data"
CLI = [sys.executable, "-m", "citygrid.cli"]


def run(*args, cwd=None, **env):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**__import__("os").environ, "COLUMNS": "200", "CITYGRID_LANG": "en", **env})


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = run("demo", "--small", "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result.stdout


@pytest.fixture
def registry(demo, tmp_path):
    path = tmp_path / "registry.gpkg"
    shutil.copy(demo[0] / "registry.gpkg", path)
    return path


@pytest.mark.slow
def test_demo_builds_registry_report_and_maps(demo):
    out, stdout = demo
    assert "20,000 components in 136 categories" in stdout and "validation: 0 issue(s)" in stdout
    for step in ("generate a district", "create the registry", "validate the whole registry", "write every"):
        assert step in stdout
    assert (out / "registry.gpkg").exists() and (out / "validation.html").exists()
    index = (out / "maps" / "index.html").read_text(encoding="utf-8")
    assert index.count("href=") == 136 + 6
    assert str((out / "maps" / "index.html").resolve()) in stdout.replace("\n", "")


@pytest.mark.slow
def test_demo_json_is_the_only_thing_on_stdout(tmp_path):
    result = run("demo", "--small", "--out", tmp_path / "demo", "--json")
    assert result.returncode == 0, result.stderr
    said = json.loads(result.stdout)
    assert said["components"] == 20_000 and said["categories"] == 136 and said["issues"] == 0
    assert Path(said["maps"]).is_file() and "generate a district" in result.stderr


def test_help_explains_every_command_with_an_example():
    for command in ("validate", "ingest", "stats", "owner", "export", "history", "demo"):
        result = run(command, "--help")
        assert result.returncode == 0 and "Example" in result.stdout, command
    for kind in ("category", "street", "issues", "district", "grid"):
        assert "Example" in run("map", kind, "--help").stdout


WALK = """
import json, sys
import typer
from citygrid.cli import app

out, commands = [], [typer.main.get_command(app)]
while commands:
    command = commands.pop()
    commands += list(getattr(command, "commands", {}).values())
    out.append({"name": command.name, "help": command.help, "params": [
        {"name": p.name, "help": p.help, "flag": bool(getattr(p, "is_flag", False)), "metavar": p.metavar}
        for p in command.params if p.name != "help"]})
json.dump(out, sys.stdout)
"""


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_option_has_help_in_english_and_chinese_and_flags_take_no_value(lang):
    """Walk the command tree as click builds it, in a process of each language."""
    import re

    done = subprocess.run([sys.executable, "-c", WALK, "--lang", lang], capture_output=True, text=True,
                          env={**__import__("os").environ, "CITYGRID_LANG": ""})
    assert done.returncode == 0, done.stderr
    seen = 0
    for command in json.loads(done.stdout):
        assert command["help"], (lang, command["name"])
        for param in command["params"]:
            seen += 1
            assert param["help"], (lang, command["name"], param["name"])
            assert bool(re.search("[\u4e00-\u9fff]", param["help"])) == (lang == "zh"), (command["name"], param)
            if param["flag"]:
                assert param["metavar"] == "", (command["name"], param["name"])
    assert seen > 60


def test_no_arguments_shows_help_and_chinese_follows_the_locale():
    bare = run()
    assert bare.returncode == 0 and "Usage" in bare.stdout and "validate" in bare.stdout
    chinese = run("validate", "--help", CITYGRID_LANG="", LANG="zh_CN.UTF-8")
    assert "校验普查批次" in chinese.stdout and "<bool>" not in chinese.stdout.split("--help")[0]
    assert "校验普查批次" in run("--lang", "zh", "validate", "--help").stdout
    failed = run("--lang", "zh", "validate", "/nonexistent/批次.shp", CITYGRID_LANG="")
    assert failed.returncode == 2 and failed.stderr.startswith("错误")


def test_messages_name_the_cli_option(registry, tmp_path, monkeypatch):
    monkeypatch.delenv("CITYGRID_TIANDITU_KEY", raising=False)
    tiles = run("map", "category", "0101", "-r", registry, "-o", tmp_path / "t.html", "--basemap", "tianditu-vec",
                CITYGRID_TIANDITU_KEY="")
    assert tiles.returncode == 2 and "--tianditu-key" in tiles.stderr
    given = run("map", "category", "0101", "-r", registry, "-o", tmp_path / "t.html", "--basemap", "tianditu-vec",
                "--tianditu-key", "abc")
    assert given.returncode == 0 and "tk=abc" in (tmp_path / "t.html").read_text(encoding="utf-8")
    colour = run("map", "street", "马峦街道", "-r", registry, "-o", tmp_path / "s.html", "--column", "colour")
    assert colour.returncode == 2 and "--column" in colour.stderr
    missing = run("stats", "-r", tmp_path / "none.gpkg")
    assert missing.returncode == 2 and "Registry.create" not in missing.stderr.split("(Python")[0]


def test_validate_clean_and_defective_batches(registry, tmp_path):
    assert run("validate", DATA / "batch_clean.gpkg", "-r", registry).returncode == 0
    result = run("validate", DATA / "batch_defects_gbk.shp", "-r", registry, "--json")
    assert result.returncode == 1
    found = sorted((i["row"], i["rule"]) for i in json.loads(result.stdout)["issues"])
    truth = pd.read_csv(DATA / "batch_defects_truth.csv")
    assert found == sorted(zip(truth["row"], truth["truth"]))
    report = tmp_path / "issues.json"
    result = run("validate", DATA / "batch_defects.csv", "-r", registry, "--crs", "EPSG:4326", "--report", report)
    assert result.returncode == 1 and "schema.mojibake" in result.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert set(data) == {"issues", "summary"} and data["summary"]["errors"] == len(truth)
    listed = run("validate", DATA / "batch_defects.gpkg", "-r", registry)
    assert "more (all of them with --report FILE)" in listed.stdout
    written = run("validate", DATA / "batch_defects.gpkg", "-r", registry, "--report", tmp_path / "all.csv")
    assert "all of them with" not in written.stdout and "report written to" in written.stdout
    gcj = run("validate", DATA / "batch_gcj02.csv", "-r", registry, "--crs", "EPSG:4326")
    assert gcj.returncode == 1 and "crs.gcj02_suspected" in gcj.stdout
    fixed = run("validate", DATA / "batch_gcj02.csv", "-r", registry, "--crs", "EPSG:4326", "--gcj02")
    assert fixed.returncode == 0, fixed.stdout


def test_json_output_lists_at_most_max_issues_errors_first_and_counts_all(registry, tmp_path):
    full = json.loads(run("validate", DATA / "batch_defects_gbk.shp", "-r", registry, "--json",
                          "--max-issues", "0").stdout)
    capped = json.loads(run("validate", DATA / "batch_defects_gbk.shp", "-r", registry, "--json",
                            "--max-issues", "3").stdout)
    total = full["summary"]["errors"] + full["summary"]["warnings"]
    assert len(full["issues"]) == full["summary"]["listed"] == total > 3
    assert len(capped["issues"]) == capped["summary"]["listed"] == 3
    assert {i["severity"] for i in capped["issues"]} == {"error"}
    assert {k: v for k, v in capped["summary"].items() if k != "listed"} == \
        {k: v for k, v in full["summary"].items() if k != "listed"}
    page = tmp_path / "issues.html"
    from citygrid.validation import report as report_module

    big = report_module.Report(gpd.GeoDataFrame(
        {"rule": ["schema.bad_value"] * 12_000, "severity": ["warning"] * 11_999 + ["error"],
         "component_id": [None] * 12_000, "row": list(range(1, 12_001)), "message": ["<b>x</b>"] * 12_000},
        geometry=[None] * 12_000, crs="EPSG:4547"))
    big.to_file(page)
    text = page.read_text(encoding="utf-8")
    assert text.count("<tr><td>schema.bad_value") == report_module.HTML_ROWS + 1  # + the summary row
    assert "<td>error</td>" in text and "for all 12,000" in text and "<b>x</b>" not in text
    streamed = tmp_path / "issues.json"
    big.to_file(streamed)
    data = json.loads(streamed.read_text(encoding="utf-8"))
    assert len(data["issues"]) == data["summary"]["listed"] == 12_000 and data["issues"][-1]["row"] == 12_000


BAD_INPUT = [
    (("validate", "nope.shp"), "does not exist"),
    (("validate", "{bad}"), "has no .dbf beside it"),
    (("stats", "-r", "missing.gpkg"), "does not exist"),
    (("map", "category", "9999", "-r", "{registry}", "-o", "x.html"), "no category '9999'"),
    (("owner", "114.3", "22.7", "-r", "{registry}", "--crs", "EPSG:99999"), "error"),
    (("owner", "nan", "22.7", "-r", "{registry}"), "finite"),
    (("export", "-r", "{registry}", "-o", "/proc/citygrid/x.gpkg"), "cannot write"),
    (("validate", "{clean}", "-r", "{registry}", "--report", "/proc/citygrid/x.html"), "cannot write"),
    (("map", "category", "0101", "-r", "{registry}", "-o", "/proc/citygrid/x.html"), "cannot write"),
    (("stats", "-r", "{registry}", "--by", "colour"), "--by"),
    (("map", "street", "no such street", "-r", "{registry}", "-o", "x.html"), "no street"),
    (("allow", "4403100101000001", "rule.none", "-r", "{registry}"), "not a rule code"),
    (("dispatch", "{clean}", "-r", "{registry}", "-o", "x.txt"), "--output"),
]
"""Command lines a user gets wrong, and what the one line of error must say (in English)."""
USAGE_ERRORS = [("ingest", "{clean}", "-r", "{registry}", "--wait"), ("owner", "x", "22.7", "-r", "{registry}"),
                ("validate",), ("stats", "-r", "{registry}", "--nope"), ("map", "tiles")]
"""Command lines click refuses before citygrid runs (its usage box, in the user's language too)."""


@pytest.mark.parametrize(("args", "message"), BAD_INPUT)
def test_bad_input_is_one_clear_line_and_exit_2(registry, tmp_path, args, message):
    bad = tmp_path / "bad.shp"
    bad.write_bytes(b"garbage")
    args = [a.format(bad=bad, registry=registry, clean=DATA / "batch_clean.gpkg") for a in args]
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_a_one_row_table_without_a_category_column_gets_issues_not_a_crash(registry, tmp_path):
    table = tmp_path / "one.csv"
    table.write_text("编号,种类,经度,纬度,初始日期,状态,主管部门\n,9999,114.35,22.70,notadate,完好,x\n",
                     encoding="utf-8")  # 种类 is no category header citygrid knows: the category is missing
    result = run("validate", table, "-r", registry, "--json")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    issues = json.loads(result.stdout)["issues"]
    assert any(i["rule"] == "schema.missing_field" and "category" in i["message"] for i in issues), issues
    unknown = {i["column"]: i["message"] for i in issues if i["rule"] == "schema.unknown_column"}
    assert set(unknown) == {"A", "B"} and "'种类'" in unknown["B"], unknown  # named once, with its letter
    assert "--columns" in unknown["B"]
    mapped = run("validate", table, "-r", registry, "--json", "--columns", "category=种类")
    issues = json.loads(mapped.stdout)["issues"]
    assert any(i["rule"] == "schema.unknown_category" and i["column"] == "B" and i["row"] == 2 for i in issues)
    wrong = run("validate", table, "-r", registry, "--columns", "种类")
    assert wrong.returncode == 2 and "--columns '种类'" in wrong.stderr


def test_a_swapped_row_is_one_issue_not_a_crash(registry, tmp_path):
    table = pd.read_csv(DATA / "batch_clean.csv", dtype=str)
    table.loc[2, ["经度", "纬度"]] = table.loc[2, ["纬度", "经度"]].to_numpy()
    path = tmp_path / "swapped.csv"
    table.to_csv(path, index=False)
    for args in (("validate", path, "-r", registry, "--json"),
                 ("ingest", path, "-r", registry, "--source", "test", "--dry-run", "--json")):
        result = run(*args)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert '"crs.axis_swapped"' in result.stdout and "All arrays" not in result.stdout + result.stderr


def test_allow_puts_an_exception_on_the_list(registry):
    result = run("allow", "4403100101000001", "geom.moved_far", "-r", registry, "--note", "道路改造迁移")
    assert result.returncode == 0 and "allowed: geom.moved_far for 4403100101000001" in result.stdout
    wrong = run("allow", "4403100101000001", "geom.nope", "-r", registry)
    assert wrong.returncode == 2 and "not a rule code" in wrong.stderr + wrong.stdout


def test_ingest_accepts_clean_and_rejects_defects(registry):
    result = run("ingest", DATA / "batch_clean_gbk.shp", "-r", registry, "--source", "2026-W48 承包商A", "--json")
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["accepted"] and outcome["created"] > 0 and outcome["retired"] > 0
    rejected = run("ingest", DATA / "batch_defects.gpkg", "-r", registry)
    assert rejected.returncode == 1 and "rejected" in rejected.stdout and "nothing was written" in rejected.stdout
    assert "more (all of them with --json --max-issues 0)" in rejected.stdout  # ingest has no --report
    assert "--report" not in rejected.stdout
    stats = json.loads(run("stats", "-r", registry, "--by", "street", "--json").stdout)
    assert sum(row["count"] for row in stats) == 20_000 + outcome["created"] - outcome["retired"]
    assert all(isinstance(row["count"], int) for row in stats)  # counts stay whole numbers
    assert ".0 │" not in run("stats", "-r", registry, "--by", "street").stdout


def test_a_locked_registry_is_a_clear_error(registry):
    holder = sqlite3.connect(registry, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        result = run("ingest", DATA / "batch_clean.gpkg", "-r", registry, "--wait", "0.5")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 2 and "being changed by another process" in result.stderr


@pytest.mark.slow
def test_maps_stats_owner_export_history(registry, tmp_path):
    made = run("map", "category", "0101", "-r", registry, "-o", tmp_path / "c.html", "--basemap", "none")
    assert made.returncode == 0
    assert "citygrid.add" in (tmp_path / "c.html").read_text(encoding="utf-8")
    assert run("map", "street", "马峦街道", "-r", registry, "-o", tmp_path / "s.html").returncode == 0
    assert run("map", "district", "-r", registry, "-o", tmp_path / "d.html", "--column", "owner").returncode == 0
    assert run("map", "grid", "马峦街道", "-r", registry, "-o", tmp_path / "g.html").returncode == 0
    said = json.loads(run("map", "category", "0104", "-r", registry, "-o", tmp_path / "j.html", "--json").stdout)
    assert said["map"] == str(tmp_path / "j.html") and said["bytes"] == (tmp_path / "j.html").stat().st_size
    exported = run("export", "-r", registry, "--street", "马峦街道", "-o", tmp_path / "m.xlsx", "--json")
    exported = json.loads(exported.stdout)
    assert exported == {"files": [str(tmp_path / "m.xlsx")]}
    for page in ("s.html", "d.html", "g.html"):  # one file each, Leaflet inside, nothing fetched from the net
        text = (tmp_path / page).read_text(encoding="utf-8")
        assert "window.L=" in text and "<script src=" not in text
    result = run("map", "issues", DATA / "batch_defects.gpkg", "-r", registry, "-o", tmp_path / "i.html")
    assert result.returncode == 0 and "issues written" in result.stdout
    table = run("stats", "-r", registry)
    assert table.returncode == 0 and "雨水箅子" in table.stdout
    from citygrid.registry import open_registry

    comp = open_registry(registry).components.iloc[0]
    point = open_registry(registry).components.iloc[[0]].to_crs(4326).geometry.representative_point().iloc[0]
    found = json.loads(run("owner", point.x, point.y, "-r", registry, "--json").stdout)
    assert found["components"][0]["component_id"] == comp["component_id"]
    human = run("owner", point.x, point.y, "-r", registry)
    assert comp["owner"] in human.stdout and "grid cell at the point" in human.stdout
    export = run("export", "-r", registry, "--street", "坑梓街道", "--fields", "gbt47678", "-o", tmp_path / "k.shp")
    assert export.returncode == 0 and (tmp_path / "k_point.cpg").exists()
    history = run("history", comp["component_id"], "-r", registry)
    assert history.returncode == 0 and "create" in history.stdout
    assert run("history", "4403109999000001", "-r", registry).returncode == 2


def test_debug_shows_the_traceback(tmp_path):
    result = run("--debug", "stats", "-r", tmp_path / "missing.gpkg")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_a_registry_the_user_may_only_read(registry, tmp_path):
    """Opened by someone without write access (here: the nobody user): reads work, a merge is refused
    in one line, and nothing is left beside the file."""
    import os
    import stat
    import tempfile

    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("needs root to run the command as another user")
    folder = Path(tempfile.mkdtemp(prefix="citygrid-ro-"))
    os.chmod(folder, 0o755)
    path = folder / "registry.gpkg"
    shutil.copy(registry, path)
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)

    def as_nobody(*args):
        return subprocess.run(["runuser", "-u", "nobody", "--", *CLI, *map(str, args)], capture_output=True,
                              text=True, env={**os.environ, "COLUMNS": "200", "HOME": str(folder)}, cwd=folder)

    probe = as_nobody("--help")
    if probe.returncode != 0:
        pytest.skip(f"the nobody user cannot run this Python: {probe.stderr[-200:]}")
    stats = as_nobody("stats", "-r", path, "--json")
    assert stats.returncode == 0, stats.stderr
    assert sum(row["count"] for row in json.loads(stats.stdout)) == 20_000
    merged = as_nobody("ingest", DATA / "batch_clean.gpkg", "-r", path, "--source", "x")
    assert merged.returncode == 2 and "read-only" in merged.stderr + merged.stdout
    assert "Traceback" not in merged.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["registry.gpkg"]
    shutil.rmtree(folder)


def _readme_commands() -> list[str]:
    """The citygrid commands of the README's command-line block, as written."""
    import re
    import shlex

    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```bash\n(.*?)```", text, re.S) if "citygrid-small" in b)
    return [shlex.split(line.split("  #")[0]) for line in block.splitlines() if line.startswith("citygrid ")]


@pytest.mark.slow
@pytest.mark.parametrize("order", ["as written", "ingest first"])
def test_the_readme_commands_give_what_the_readme_says(tmp_path, demo, order):
    """Run every command of the README's block in a fresh folder, in its order and with the ingest first."""
    commands = _readme_commands()
    assert commands[0][:2] == ["citygrid", "demo"] and len(commands) >= 10
    shutil.copytree(demo[0], tmp_path / "citygrid-small", ignore=shutil.ignore_patterns("maps"))  # = demo --small
    (tmp_path / "data").symlink_to(DATA)
    rest = commands[1:]
    if order == "ingest first":
        rest.sort(key=lambda c: c[1] != "ingest")
    outcome = {}
    for command in rest:
        result = run(*command[1:], cwd=tmp_path)
        outcome[command[1] + (" " + command[2] if command[1] in ("map", "dispatch") else "")] = result
    truth = pd.read_csv(DATA / "batch_defects_truth.csv")
    assert outcome["validate"].returncode == 1
    found = pd.read_csv(tmp_path / "issues.csv")
    errors = found[found["severity"] == "error"]
    assert sorted(zip(errors["row"], errors["rule"])) == sorted(zip(truth["row"], truth["truth"]))
    assert outcome["ingest"].returncode == 0
    assert "120 new, 57 updated, 19 retired" in outcome["ingest"].stdout.replace("\n", " ")
    for name in ("map category", "map street", "map district", "map grid", "allow", "export", "history", "backup",
                 "verify"):
        assert outcome[name].returncode == 0, (name, outcome[name].stderr)
    assert "4403100104000483 雨水箅子" in outcome["owner"].stdout and "坪山区水务局" in outcome["owner"].stdout
    placeless = outcome["dispatch data/events_export.csv"]
    assert placeless.returncode == 0 and "2,020 events, 0 sent" in placeless.stdout, placeless.stderr
    assert re.search(r"1,999 sent to the unit past events.*\n  20 × repeat.*\n  1 × no closed event",
                     placeless.stdout), placeless.stdout
    app = outcome["dispatch data/events_app.csv"]
    sent = int(re.search(r"2,020 events, (\d+) sent to a component's unit", app.stdout).group(1))
    assert app.returncode == 0 and 340 <= sent <= 360, app.stdout  # "about 350"
    answers = pd.read_csv(tmp_path / "app.csv", dtype=str, keep_default_na=False)
    assert len(answers) == 2_020 and ((answers["unit"] != "") | (answers["reason"] != "")).all()
    for page in ("0101.html", "maluan.html", "pingshan.html", "grid.html", "maluan.xlsx"):
        assert (tmp_path / page).stat().st_size > 1000, page


def test_backup_and_verify(registry, tmp_path):
    made = run("backup", registry, tmp_path / "copy.gpkg")
    assert made.returncode == 0 and "backup written to" in made.stdout
    assert run("backup", registry, tmp_path / "copy.gpkg").returncode == 2  # never over an existing file
    checked = run("verify", tmp_path / "copy.gpkg", "--json")
    assert checked.returncode == 0 and json.loads(checked.stdout) == {"ok": True, "problems": []}
    with sqlite3.connect(tmp_path / "copy.gpkg") as conn:
        conn.execute("DELETE FROM gpkg_contents WHERE table_name = 'roads'")
    broken = run("verify", tmp_path / "copy.gpkg")
    assert broken.returncode == 1 and "table roads is not registered in gpkg_contents" in broken.stdout


def test_history_shows_where_a_component_was_and_how_far_it_moved(registry):
    import shapely

    from citygrid.registry import open_registry

    reg = open_registry(registry)
    row = reg.components[reg.components.geom_type == "Point"].iloc[[0]]
    moved = row.assign(geometry=shapely.transform(row.geometry.to_numpy(), lambda xy: xy + [0.6, 0.8]))
    assert reg.ingest(moved, source="moved").accepted  # points stand 1.5 m or more inside their cell
    english = run("history", row["component_id"].iloc[0], "-r", registry)
    assert english.returncode == 0 and "(moved 1.00 m)" in english.stdout, english.stdout
    assert re.search(r"geometry: 114\.\d{7}, 22\.\d{7} → 114\.\d{7}, 22\.\d{7}", english.stdout)
    assert "0101000020" not in english.stdout  # no WKB
    chinese = run("--lang", "zh", "history", row["component_id"].iloc[0], "-r", registry)
    assert "（移动 1.00 米）" in chinese.stdout and "更新" in chinese.stdout


@pytest.mark.parametrize(("given", "used"), [(None, "system"), ("mimalloc", "mimalloc")])
def test_the_command_takes_arrows_memory_from_the_system_allocator(given, used):
    """A command's Arrow buffers go back to the system when freed; a pool the user names is kept."""
    env = {k: v for k, v in __import__("os").environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    done = subprocess.run([sys.executable, "-c", "import citygrid.cli, pyarrow; "
                           "print(pyarrow.default_memory_pool().backend_name)"], capture_output=True, text=True,
                          env=env | ({"ARROW_DEFAULT_MEMORY_POOL": given} if given else {}))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [used]
