"""One message catalog, English and Chinese: complete, compiled, and what a user reads is in one language.

The catalog test extracts the messages from the source with Babel (scripts/messages.py) and
checks every one has its Chinese, with the same placeholders, and that the shipped .mo is
the .po compiled. The scans run the command as a person does, in each language, on the
sample registry: reports (CSV, HTML, JSON messages), the command's output and its errors.
A Chinese run must hold no English sentence and an English run no Chinese, data aside.
"""

import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from citygrid import _i18n, synth
from citygrid.catalog import load_catalog
from citygrid.registry import Registry

ROOT = Path(__file__).parents[1]
DATA = ROOT / "data"
sys.path.insert(0, str(ROOT / "scripts"))
PLACEHOLDER = re.compile(r"\{[^{}]*\}")


def _fields(text: str) -> set[str]:
    return set(PLACEHOLDER.findall(text.replace("{{", "").replace("}}", "")))


def test_every_message_has_chinese_with_the_same_placeholders():
    messages = pytest.importorskip("messages")  # scripts/messages.py, with Babel
    template = messages.extract()
    catalog = messages.read_catalog()
    assert len(template) > 400
    missing, wrong = [], []
    for message in template:
        if not message.id:
            continue
        entry = catalog.get(message.id)
        text = entry.string if entry is not None else None
        if isinstance(text, tuple | list):
            text = text[0]
        if not text or (entry is not None and entry.fuzzy):
            missing.append(message.id)
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        theirs = set().union(*(_fields(i) for i in ids))
        if not _fields(text) <= theirs or (len(ids) == 1 and _fields(text) != theirs):
            wrong.append((message.id, text))
    assert not missing, f"{len(missing)} message(s) without Chinese (python scripts/messages.py update): {missing[:5]}"
    assert not wrong, wrong[:5]


def test_the_shipped_mo_is_the_po_compiled():
    messages = pytest.importorskip("messages")
    assert messages.compiled(messages.read_catalog()) == messages.MO.read_bytes(), \
        "run python scripts/messages.py compile"


def test_the_language_is_chosen_per_call_and_a_block_keeps_its_own():
    with _i18n.using("zh"):
        assert _i18n._("outside the district") == "位于本区以外"
        with _i18n.using("en"):
            assert _i18n._("outside the district") == "outside the district"
        assert _i18n.language() == "zh"
    assert _i18n._("outside the district") == "outside the district"  # the tests' settings.language


# --- scanning what a user reads ---------------------------------------------------------------

ENGLISH_WORDS = re.compile(r"\b[A-Za-z]{2,}(?:[ ,;:()-]+[A-Za-z]{2,}){2,}\b")
CJK = re.compile(r"[\u3400-\u9fff\uff01-\uff5e\u3000-\u303f]")
TECHNICAL = re.compile(
    r"'[^'\n]*'|\"[^\"\n]*\"|(?:[\w.-]*/)+[\w.-]*|[\w-]+\.(?:shp|gpkg|csv|xlsx|html|json|geojson|parquet|prj|dbf)\b"
    r"|--[\w-]+|\b[a-z]+\.[a-z_]+\b|EPSG:\d+|https?://\S+|\b(?:GCJ-02|BD-09|WGS84|CGCS2000|GeoPackage|GeoParquet|"
    r"Shapefile|UTF-8|GBK|GB18030|PostGIS|Excel|CSV|JSON|HTML|WKT|KIND\.FIELD=HEADER|citygrid \w+|OPTIONS|Usage)\b")


def _data_values(reg) -> list[str]:
    """Text that is data, not citygrid's words: names of categories, places, units, statuses, batch values."""
    values = {c.name_zh for c in load_catalog()} | {c.major_name_zh for c in load_catalog()}
    district = reg.district
    values |= set(district.streets["name"]) | set(district.communities["name"]) | set(district.units["name"])
    values |= {district.name, "完好", "破损", "丢失", "占用", "废弃", "移除"}
    for path in (DATA / "batch_defects.csv", DATA / "batch_clean.csv", DATA / "events_app.csv"):
        frame = pd.read_csv(path, dtype=str, encoding="utf-8-sig")
        values |= {v for column in frame for v in frame[column].dropna().unique() if CJK.search(v)}
        values |= {c for c in frame.columns if CJK.search(c)}
    for word in ("井盖", "雨水", "污水", "路灯"):  # kinds the events' descriptions name
        values.add(word)
    return sorted((v for v in values if v), key=len, reverse=True)


def _visible(text: str) -> str:
    """What a page shows: its text, without tags, scripts or styles."""
    import html.parser

    class Text(html.parser.HTMLParser):
        parts: list = []
        skip = False

        def handle_starttag(self, tag, attrs):
            self.skip = tag in ("style", "script")

        def handle_endtag(self, tag):
            self.skip = False

        def handle_data(self, data):
            if not self.skip:
                self.parts.append(data)

    if not text.lstrip().startswith("<!DOCTYPE"):
        return text
    parser = Text()
    parser.parts = []
    parser.feed(text)
    return "\n".join(parser.parts)


def _english_sentences(text: str) -> list[str]:
    return ENGLISH_WORDS.findall(TECHNICAL.sub(" ", _visible(text)))


def _chinese_outside_data(text: str, data: list[str]) -> list[str]:
    text = TECHNICAL.sub(" ", _visible(text))
    for value in data:
        text = text.replace(value, " ")
    return [line for line in text.splitlines() if CJK.search(line)]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """The sample registry the data/ batches fit, and the data values they bring."""
    folder = tmp_path_factory.mktemp("i18n")
    reg = Registry.create(folder / "registry.gpkg", district=synth.sample_district())
    return folder / "registry.gpkg", _data_values(reg)


def _run(lang: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, "COLUMNS": "200", "CITYGRID_LANG": "", "LANG": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "citygrid.cli", "--lang", lang, *map(str, args)],
                          capture_output=True, text=True, cwd=cwd, env=env)


def _what_a_user_reads(lang: str, registry: Path, folder: Path) -> dict[str, str]:
    """Every report, output and error of a day's work in `lang`, by where it was read."""
    from test_cli import BAD_INPUT, USAGE_ERRORS

    reg = folder / "registry.gpkg"
    shutil.copy(registry, reg)
    read: dict[str, str] = {}

    def run(name, *args):
        done = _run(lang, *args, cwd=folder)
        read[f"{name} (stdout)"] = done.stdout
        read[f"{name} (stderr)"] = done.stderr
        return done

    for suffix in (".csv", ".html", ".json"):
        run(f"validate {suffix}", "validate", DATA / "batch_defects_gbk.shp", "-r", reg, "--report",
            folder / f"issues{suffix}")
        report = (folder / f"issues{suffix}").read_text(encoding="utf-8-sig")
        if suffix == ".json":
            report = "\n".join(i["message"] for i in json.loads(report)["issues"])
        read[f"report {suffix}"] = report
    done = run("ingest rejected", "ingest", DATA / "batch_defects.gpkg", "-r", reg, "--json")
    issues = json.loads(done.stdout)["report"]["issues"]
    read["ingest rejected (json messages)"] = "\n".join(i["message"] for i in issues)
    run("ingest", "ingest", DATA / "batch_clean.gpkg", "-r", reg)
    run("dispatch", "dispatch", DATA / "events_app.csv", "-r", reg, "-o", folder / "dispatch.csv")
    read["dispatch reasons"] = "\n".join(pd.read_csv(folder / "dispatch.csv", dtype=str)["reason"].dropna().unique())
    run("history", "history", "4403100104000483", "-r", reg)
    run("owner", "owner", "114.42550", "22.68354", "-r", reg)
    run("stats", "stats", "-r", reg, "--by", "street")
    run("verify", "verify", reg)
    bad = folder / "bad.shp"
    bad.write_bytes(b"garbage")
    for args, _ in BAD_INPUT:
        run(" ".join(args[:2]), *[a.format(bad=bad, registry=reg, clean=DATA / "batch_clean.gpkg") for a in args])
    for args in USAGE_ERRORS:
        run(" ".join(args[:2]), *[a.format(registry=reg, clean=DATA / "batch_clean.gpkg") for a in args])
    return read


@pytest.mark.slow
def test_a_chinese_run_holds_no_english_sentence(sample, tmp_path):
    registry, _ = sample
    found = {where: said for where, text in _what_a_user_reads("zh", registry, tmp_path).items()
             if (said := _english_sentences(text))}
    assert not found, json.dumps(found, ensure_ascii=False, indent=1)[:3000]


@pytest.mark.slow
def test_an_english_run_holds_no_chinese_but_data(sample, tmp_path):
    registry, data = sample
    found = {where: said for where, text in _what_a_user_reads("en", registry, tmp_path).items()
             if (said := _chinese_outside_data(text, data))}
    assert not found, json.dumps(found, ensure_ascii=False, indent=1)[:3000]


def test_the_scanners_see_what_they_must(sample):
    """The scans fail on a mixed message, as the old ones were (English with a Chinese tail)."""
    _, data = sample
    mixed = "the batch looks shifted as GCJ-02 (Amap/Gaode coordinates); 批次疑为 GCJ-02（高德）坐标"
    assert _english_sentences(mixed) and _chinese_outside_data(mixed, data)
    assert not _english_sentences("文件 '/tmp/batch.shp' 不存在；请用 --crs EPSG:4326 指定")
    assert not _chinese_outside_data("no street '马峦街道x' in 坪山区", data)
    report = io.StringIO("规则,级别\nschema.mojibake,错误\n")
    assert not _english_sentences(report.getvalue())


def test_stats_heads_its_columns_in_the_language_in_use(sample, tmp_path):
    """`citygrid stats` in Chinese: the title and every header Chinese; --json keeps the field names."""
    registry, _ = sample
    zh = _run("zh", "stats", "-r", registry, "--by", "street", cwd=tmp_path).stdout
    assert "部件统计" in zh and all(word in zh for word in ("街道", "数量", "占比"))
    assert not any(word in zh for word in ("street", "count", "share", "components by"))
    en = _run("en", "stats", "-r", registry, "--by", "street", cwd=tmp_path).stdout
    assert all(word in en for word in ("street", "count", "share"))
    data = json.loads(_run("zh", "stats", "-r", registry, "--by", "street", "--json", cwd=tmp_path).stdout)
    assert set(data[0]) == {"street", "count", "share"}
