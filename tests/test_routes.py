"""Real event exports in: Pingshan's 26 columns without places, routes learned from closed events,
unit names matched to the registry's; every row gets a unit or a reason.

The hierarchy of 2018 (``tests/data/pingshan_event_types_2018.csv``, a copy of the project's reference
facts) is the oracle of the event type table; plain pandas counts over the history, not the routing
table, are the oracle of each route's reason."""

from __future__ import annotations

import html
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import citygrid as cg
from citygrid.events import load_event_types, read_events
from citygrid.routes import RoutingTable, UnitNames

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def district():
    return cg.synth.make_district(seed=21, n_components=12_000, reserve=300)


@pytest.fixture(scope="module")
def reg(district, tmp_path_factory):
    return cg.Registry.create(tmp_path_factory.mktemp("routes") / "r.gpkg", district=district)


@pytest.fixture(scope="module")
def exports(district, tmp_path_factory):
    """A year of closed events (the history) and the next weeks' export, both shaped as Pingshan's of 2018."""
    folder = tmp_path_factory.mktemp("exports")
    history, _ = cg.synth.make_events(district, n=8_000, seed=1, start="2025-01-01", days=365)
    new, truth = cg.synth.make_events(district, n=1_500, seed=2, start="2026-01-01", days=30)
    history.drop(columns=["经度", "纬度"]).to_csv(folder / "history.csv", index=False, encoding="utf-8-sig")
    new.drop(columns=["经度", "纬度"]).to_csv(folder / "export.csv", index=False, encoding="gb18030")  # GBK
    new.to_csv(folder / "export_places.csv", index=False, encoding="utf-8-sig")
    return folder, new, truth


def run(*args):
    return subprocess.run([sys.executable, "-m", "citygrid.cli", *map(str, args)], capture_output=True, text=True,
                          env={**__import__("os").environ, "CITYGRID_LANG": "en"})


def test_the_table_holds_every_sub_type_of_2018_and_components_map_to_fitting_categories():
    real = pd.read_csv(HERE / "data" / "pingshan_event_types_2018.csv", dtype=str)
    table = load_event_types()
    ours = set(zip(table["code"], table["name_zh"]))
    assert {(i, html.unescape(n)) for i, n in zip(real["sub_type_id"], real["sub_type"])} == ours
    catalog = cg.load_catalog()
    kinds = {"井盖": "point", "箅子": "point", "路灯": "point", "灯": "point", "亭": "point", "箱": "point",
             "牌": "point", "眼": "point", "塔": "point", "厕所": "point", "化粪池": "point", "电梯": "point",
             "树": "point", "护栏": "line", "天桥": "line", "隔音屏": "line", "堤坝": "line",
             "道路": "line", "路面": "line", "墙": "line", "绿地": "polygon", "绿化带": "polygon",
             "停车场": "polygon", "边坡": "polygon"}  # what the last word of a name names, as a person reads it
    actions = ("破损", "维护", "养护", "隐患", "故障", "保洁", "塌陷、凹陷", "不洁", "安全", "无法正常使用")
    component = table[table["categories"].map(len) > 0]
    assert len(component) >= 60
    checked = 0
    for row in component.itertuples():
        families = {catalog[c].geometry for c in row.categories}  # every code is the catalog's
        head = row.name_zh
        for action in actions:
            head = head.removesuffix(action)
        said = [family for word, family in kinds.items() if head.endswith(word)]
        if said:
            assert said[0] in families, (row.name_zh, row.categories)
            checked += 1
    assert checked >= 40
    notes = component[component["categories"].map(len) > 1]
    assert (notes["note"].str.len() > 0).mean() > 0.8  # a judgement says why
    covers = table.set_index("name_zh").loc["下水井盖"]
    assert covers["categories"] == ["0102", "0103", "0127"] and "sewer" in covers["note"]
    noise = table.set_index("name_zh").loc["工业红线内噪声"]
    assert noise["categories"] == [] and noise["main_name"] == "工业噪声"


def test_an_export_as_pingshan_wrote_it_is_read_whole(exports):
    folder, new, _ = exports
    events = read_events(folder / "export.csv")  # GBK, 26 columns, OCCUR_PLACE '-' everywhere
    assert len(events) == len(new) and events.geometry.isna().all()
    assert events["event_id"].tolist() == new["REC_ID"].astype(str).tolist()
    assert events["event_type"].str.contains("&#").sum() == 0
    assert (events["event_type"] == "路灯(灯光)井盖").sum() == (new["SUB_TYPE_NAME"].map(html.unescape)
                                                            == "路灯(灯光)井盖").sum()
    plain = new.drop(columns=["REC_ID", "经度", "纬度"])
    twins = plain.duplicated(keep="first").to_numpy()
    assert twins.any() and (events["repeat_of"].notna().to_numpy() == twins).all()
    assert events["test_unit"].sum() == (new["DISPOSE_UNIT_NAME"] == cg.synth.TEST_UNIT).sum() > 0
    shuffled = new.drop(columns=["经度", "纬度"]).sample(frac=1.0, axis=1, random_state=0)  # any column order
    again = read_events(shuffled)
    assert again["event_type"].tolist() == events["event_type"].tolist()
    shuffled.head(300).to_excel(folder / "export.xlsx", index=False)  # as a spreadsheet, in another order
    sheet = read_events(folder / "export.xlsx")
    assert sheet["event_type"].tolist() == events["event_type"].head(300).tolist()
    assert sheet["event_id"].tolist() == events["event_id"].head(300).tolist()


def test_coordinates_in_occur_place_are_a_place(exports):
    _, new, _ = exports
    rows = new.drop(columns=["经度", "纬度"]).head(4).astype({"OCCUR_PLACE": object})
    rows["OCCUR_PLACE"] = ["114.3512,22.7013", "114.3512，22.7013", "-", "坪山大道与东纵路交汇处"]
    events = read_events(rows)
    xy = [(p.x, p.y) if p is not None else None for p in events.geometry]
    assert xy == [(114.3512, 22.7013), (114.3512, 22.7013), None, None]


def test_every_row_gets_a_unit_or_a_reason_and_the_reason_counts_right(reg, exports, tmp_path):
    folder, new, _ = exports
    out = tmp_path / "answers.csv"
    done = run("dispatch", folder / "export.csv", "-r", reg.path, "-o", out, "--history", folder / "history.csv",
               "--json")
    assert done.returncode == 0, done.stderr
    said = json.loads(done.stdout)
    table = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(table) == len(new) == said["events"]
    assert ((table["unit"] != "") | (table["reason"] != "")).all()
    assert (table.loc[table["repeat_of"] != "", "outcome"] == "repeat").all()
    routed = table[table["outcome"] == "routed"]
    assert len(routed) > 0.8 * len(table) and (routed["unit_source"] == "history").all()
    # the oracle: the history counted with pandas, at the level the route names
    history = pd.read_csv(folder / "history.csv", dtype=str, keep_default_na=False)
    history = history[(history["DISPOSE_UNIT_NAME"] != "") & (history["DISPOSE_UNIT_NAME"] != cg.synth.TEST_UNIT)]
    history = history.drop_duplicates(subset=[c for c in history.columns if c != "REC_ID"])
    history["SUB_TYPE_NAME"] = history["SUB_TYPE_NAME"].map(html.unescape)
    checked = 0
    for row in routed.head(200).itertuples():
        n, total, unit = _said(row.reason)
        if f" past events of the main type {row.main_type} " in row.reason:  # backed off to the main type
            pool = history[history["MAIN_TYPE_NAME"] == row.main_type]
        elif " in the district " in row.reason:
            pool = history[history["SUB_TYPE_NAME"] == row.event_type]
        elif f" in {row.community} " in row.reason:
            pool = history[(history["SUB_TYPE_NAME"] == row.event_type) & (history["STREET_NAME"] == row.street)
                           & (history["COMMUNITY_NAME"] == row.community)]
        else:
            pool = history[(history["SUB_TYPE_NAME"] == row.event_type) & (history["STREET_NAME"] == row.street)]
        counts = pool["DISPOSE_UNIT_NAME"].value_counts()
        assert total == len(pool) and n == counts.iloc[0] and unit in set(counts[counts == n].index), row.reason
        assert float(row.confidence) == pytest.approx(n / total, abs=1e-4)
        checked += 1
    assert checked >= 100
    flagged = table[table["flags"] != ""]
    assert len(flagged) == (new["DISPOSE_UNIT_NAME"] == cg.synth.TEST_UNIT).sum()
    # the test unit is flagged, not listed as a name to map; the routes leave the history's out
    assert said["unmatched_units"] == {} and said["coordinates"] is None
    assert table.loc[table["outcome"] == "no_route", "reason"].str.endswith(
        "no closed event of its type or main type in the history to learn a unit from").all()


def _said(reason: str) -> tuple[int, int, str]:
    head = reason.split("; ")[-1]
    n, rest = head.split(" of ", 1)
    total = rest.split(" past ", 1)[0]
    return int(n.replace(",", "")), int(total.replace(",", "")), head.rsplit(" went to ", 1)[1]


def test_with_places_the_app_rows_get_their_component(reg, exports):
    folder, new, truth = exports
    result = reg.dispatch(folder / "export_places.csv", history=folder / "history.csv")
    app = truth["placed"].to_numpy() & (truth["kind"] == "component").to_numpy() & result["repeat_of"].isna().to_numpy()
    assert app.sum() > 100
    right = app & (result["component_id"].to_numpy() == truth["component_id"].to_numpy())
    assert right.sum() / app.sum() >= 0.97
    assert (result.loc[app, "unit_source"] == "registry").mean() >= 0.97
    nearby = result.loc[right, "nearby"]
    assert nearby.str.split("; ").map(len).max() <= 3
    assert all(text.startswith(cid) for cid, text in zip(result.loc[right, "component_id"], nearby))
    differs = result[result["history_unit"].notna()]  # the registry's unit and history's disagree: both shown
    assert (differs["history_unit"] != differs["unit"]).all()
    phone = ~truth["placed"].to_numpy() & result["repeat_of"].isna().to_numpy()
    assert (result.loc[phone, "outcome"] == "routed").mean() >= 0.95


def test_an_edited_routing_table_is_followed(reg, exports, tmp_path):
    folder, new, _ = exports
    saved = tmp_path / "routes.csv"
    assert run("routes", folder / "history.csv", "-o", saved).returncode == 0
    table = pd.read_csv(saved, dtype=str, keep_default_na=False)
    covers = (table["event_type"] == "下水井盖")
    table.loc[covers, "unit"] = "坪山区水务局"  # the dispatcher's own decision
    table.to_csv(saved, index=False, encoding="utf-8-sig")
    result = reg.dispatch(folder / "export.csv", history=saved)
    mine = result[(result["event_type"] == "下水井盖") & (result["outcome"] == "routed")]
    assert len(mine) > 0 and (mine["unit"] == "坪山区水务局").all() and (mine["confidence"] == 1.0).all()


def test_routes_back_off_from_a_quiet_community_to_its_street():
    history = pd.DataFrame({
        "event_type": ["路灯"] * 9, "main_type": "公用部件", "street": "坑梓街道",
        "community": ["秀新社区"] * 6 + ["金沙社区"] * 3,
        "closing_unit": ["坪山区城市照明管理所"] * 5 + ["坑梓街道办事处"] * 4})
    routes = RoutingTable.learn(history, min_events=5)
    asked = pd.DataFrame({"event_type": ["路灯", "路灯", "路名牌"], "main_type": ["公用部件"] * 3,
                          "street": ["坑梓街道"] * 3, "community": ["秀新社区", "金沙社区", "金沙社区"]})
    answer = routes.route(asked)
    assert answer["level"].tolist() == ["community", "street", "main type"]
    assert answer.loc[0, "share"] == pytest.approx(5 / 6, abs=1e-4) and answer.loc[1, "events"] == 9
    assert answer.loc[2, "reason"] == ("5 of 9 past events of the main type 公用部件 in the district went to "
                                       "坪山区城市照明管理所")
    assert answer.loc[1, "alternatives"] == "坑梓街道办事处 (0.44)"
    empty = routes.route(pd.DataFrame({"event_type": ["噪音"], "main_type": ["噪声"], "street": [None],
                                       "community": [None]}))
    assert empty["unit"].isna().all() and "no past event" in empty.loc[0, "reason"]


def test_unit_names_match_exactly_without_a_street_qualifier_or_by_alias():
    registry = ["坪山区水务局", "六和社区", "城建办（坑梓街道办事处）", "城建办（龙田街道办事处）",
                "市政服务中心（马峦街道办事处）"]
    names = UnitNames(registry, {"环境保护和水务局": "坪山区水务局"})
    asked = pd.Series(["坪山区水务局", "六和社区（坪山街道办事处）", "城建办", "城建办（坑梓街道办事处）",
                       "环境保护和水务局", "市政服务中心", "区测试责任单位一", "区测试责任单位一", None])
    matched = names.match(asked).astype(object).where(lambda s: s.notna(), None).tolist()
    assert matched == ["坪山区水务局", "六和社区", None, "城建办（坑梓街道办事处）", "坪山区水务局",
                       "市政服务中心（马峦街道办事处）", None, None, None]
    assert names.unmatched(asked).to_dict() == {"区测试责任单位一": 2, "城建办": 1}
    real = pd.read_csv(HERE / "data" / "pingshan_dispose_units_2018.csv", dtype=str)
    spelled = real.groupby("dispose_unit_id")["dispose_unit"].agg(list)
    twice = spelled[spelled.map(len) > 1]
    merged = sum(len(set(UnitNames([v[0]]).match(pd.Series(v)).dropna())) == 1 and
                 UnitNames([v[0]]).match(pd.Series(v)).notna().all() for v in twice)
    assert merged >= 0.8 * len(twice)  # the real units of two spellings are one unit


def test_the_cli_lists_unit_names_it_cannot_match_once(reg, exports, tmp_path):
    folder, new, _ = exports
    renamed = new.drop(columns=["经度", "纬度"])
    old = renamed["DISPOSE_UNIT_NAME"] == "坪山区水务局"
    assert old.sum() >= 5
    renamed.loc[old, "DISPOSE_UNIT_NAME"] = "坪山区环境保护和水务局"  # the agency's name before 2019
    renamed.to_csv(tmp_path / "renamed.csv", index=False, encoding="utf-8-sig")
    aliases = tmp_path / "aliases.csv"
    aliases.write_text("name,unit\n坪山区环境保护和水务局,坪山区水务局\n", encoding="utf-8")
    plain = run("dispatch", tmp_path / "renamed.csv", "-r", reg.path, "-o", tmp_path / "a.csv")
    assert plain.returncode == 0 and plain.stdout.count("坪山区环境保护和水务局") == 1, plain.stdout
    assert f"坪山区环境保护和水务局 ({old.sum():,})" in plain.stdout and "--unit-aliases" in plain.stdout
    tests = int((new["DISPOSE_UNIT_NAME"] == cg.synth.TEST_UNIT).sum())
    assert f"{tests:,} events closed by a test unit" in plain.stdout and cg.synth.TEST_UNIT not in plain.stdout
    mapped = run("dispatch", tmp_path / "renamed.csv", "-r", reg.path, "-o", tmp_path / "b.csv", "--unit-aliases",
                 aliases)
    assert mapped.returncode == 0 and "坪山区环境保护和水务局" not in mapped.stdout
    assert np.isfinite(pd.read_csv(tmp_path / "b.csv")["row"]).all()
