"""The ``citygrid`` command: the daily work of a data team.

Exit codes: 0 clean (or accepted), 1 issues found (errors) or batch rejected, 2 cannot read
input, bad usage, or the registry is busy. Errors are one line on stderr; ``--debug``
shows the traceback.

Help and the command's own messages are in Chinese with ``--lang zh`` or a Chinese locale
(``LANG=zh_CN.UTF-8``; ``CITYGRID_LANG`` wins over the locale), in English otherwise.
Heavy libraries are imported only by the command that needs them, so ``--help`` is quick.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table


def _language(argv: list[str]) -> str:
    """``--lang`` if given, else ``CITYGRID_LANG``, else the locale; read before the help texts are made."""
    for k, arg in enumerate(argv):
        if arg == "--lang" and k + 1 < len(argv):
            return argv[k + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    for name in ("CITYGRID_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        if os.environ.get(name):
            return os.environ[name]
    return "en"


ZH = _language(sys.argv[1:]).lower().startswith("zh")


def _t(en: str, zh: str) -> str:
    """The English or the Chinese text, as the user's language is."""
    return zh if ZH else en


_ZH_HELP = {  # the Chinese help of each command; the English is its docstring
    "validate": "校验普查批次；有错误时退出码为 1。\n\n"
                "示例：citygrid validate batch.shp -r pingshan.gpkg --report issues.html",
    "ingest": "校验并合并批次，全部成功或全部不写；被拒绝时退出码为 1。\n\n"
              "示例：citygrid ingest batch.gpkg -r pingshan.gpkg --source 2026-W48承包商A",
    "map category": "绘制一个部件类别（按状态着色）。\n\n"
                    "示例：citygrid map category 0101 -r pingshan.gpkg -o 0101.html",
    "map street": "绘制一个街道的全部部件（每类一个图层）。\n\n"
                  "示例：citygrid map street 马峦街道 -r pingshan.gpkg -o maluan.html",
    "map district": "在一个页面中绘制全区现有部件。\n\n"
                    "示例：citygrid map district -r pingshan.gpkg -o pingshan.html",
    "map grid": "绘制单元网格（每个社区一个图层），可按网格编码搜索。\n\n"
                "示例：citygrid map grid 马峦街道 -r pingshan.gpkg -o grid.html",
    "map issues": "绘制批次的校验问题。\n\n示例：citygrid map issues batch.shp -r pingshan.gpkg -o issues.html",
    "stats": "统计部件数量。\n\n示例：citygrid stats -r pingshan.gpkg --by street",
    "owner": "这是谁的？查询某点附近的部件及其权属、养护单位和所在网格。\n\n"
             "示例：citygrid owner 114.3512 22.7013 -r pingshan.gpkg",
    "export": "为其他系统导出数据。\n\n示例：citygrid export -r pingshan.gpkg --street 马峦街道 -o m.shp",
    "history": "部件的全部变更记录。\n\n示例：citygrid history 4403100101000001 -r pingshan.gpkg",
    "allow": "把已知例外加入白名单：该部件不再报告此规则。\n\n"
             "示例：citygrid allow 4403100101000001 geom.moved_far -r pingshan.gpkg --note 道路改造迁移",
    "dispatch": "把每个热线事件派给应处置的部件及其责任单位，或说明无法派遣的原因。\n\n"
                "示例：citygrid dispatch events.csv -r pingshan.gpkg -o dispatch.csv --map dispatch.html",
    "check": "校验整个登记库或数据集；有错误时退出码为 1。\n\n"
             "示例：citygrid check shenzhen-dataset/ --engine sedona --json",
    "init": "由本区自己的文件建登记库：区界、街道、社区、单元网格、单位名录和部件。\n\n"
            "示例：citygrid init pingshan.gpkg --streets 街道.shp --communities 社区.geojson --grid 网格.gdb "
            "--units 单位.csv --components 部件.shp",
    "backup": "在他人读写的同时为登记库做一致的备份。\n\n示例：citygrid backup pingshan.gpkg backups/pingshan.gpkg",
    "verify": "检查登记库本身（完整性、空间索引、触发器、历史）；有问题时退出码为 1。\n\n"
              "示例：citygrid verify pingshan.gpkg",
    "demo": "生成示例区的登记库，校验全库并写出全部地图。\n\n示例：citygrid demo --small --out /tmp/demo",
}


def _zh(command: str) -> str | None:
    """A command's help in Chinese, or None for its docstring."""
    return _ZH_HELP[command] if ZH else None


def _flag(name: str, en: str, zh: str):
    """An on/off option (no value follows it)."""
    return typer.Option(False, name, help=_t(en, zh), metavar="")


app = typer.Typer(
    help=_t("Keep a district's component registry (城市部件): build, validate, ingest, map, look up.",
            "城市部件登记库：建库、校验、入库、制图、查询。"),
    add_completion=False,
    pretty_exceptions_enable=False,
)
map_app = typer.Typer(help=_t("Write an HTML map (category, street, district, grid or issues); maps work offline.",
                              "生成 HTML 地图（类别、街道、全区、网格或校验问题），离线可用。"), no_args_is_help=True)
app.add_typer(map_app, name="map")
console = Console()
errors = Console(stderr=True)
_state = {"debug": False}

REGISTRY = typer.Option(..., "--registry", "-r", help=_t("The registry: a GeoPackage path or a postgresql:// URL.",
                                                         "登记库：GeoPackage 文件路径或 postgresql:// 地址。"))
AS_JSON = _flag("--json", "Print the result as JSON.", "以 JSON 输出结果。")
MAX_ISSUES = typer.Option(1000, "--max-issues", min=0, help=_t(
    "With --json, list at most this many issues, errors first (0: all); the summary counts all.",
    "配合 --json 最多列出的问题条数，错误优先（0 为全部）；汇总统计全部。"))


@app.callback(invoke_without_command=True)
def main(ctx: typer.Context, debug: bool = _flag("--debug", "Show tracebacks.", "显示错误堆栈。"),
         lang: str = typer.Option(None, "--lang", show_default=False, help=_t(
             "Language of help and messages: en or zh (default: CITYGRID_LANG or the locale).",
             "帮助和提示的语言：en 或 zh（默认取 CITYGRID_LANG 或系统语言）。"))) -> None:
    """citygrid: a city's component registry (城市部件)."""
    _state["debug"] = debug
    if ctx.invoked_subcommand is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)


def _fail(exc: BaseException) -> None:
    if _state["debug"]:
        raise exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    errors.print(f"[bold red]{_t('error', '错误')}:[/] {text}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def _guard():
    from citygrid.errors import CitygridError

    try:
        yield
    except CitygridError as exc:
        _fail(exc)


def _save(page, output: Path) -> None:
    """Save a map page, a failure to write it being one clear error."""
    from citygrid.errors import writing

    with writing(output):
        page.save(output)


def _open(path: str, timeout: float = 10.0):
    from citygrid.registry import open_registry

    return open_registry(path, timeout=timeout)


def _print_json(data) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n")


def _read_options(crs: str | None, encoding: str | None, gcj02: bool, layer: str | None) -> dict:
    return {k: v for k, v in {"crs": crs, "encoding": encoding, "gcj02": gcj02 or None, "layer": layer}.items()
            if v is not None}


def _report_table(report) -> None:
    summary = report.summary()
    if summary.empty:
        console.print(_t(f"[green]clean[/]: {report.checked:,} features, no issue",
                         f"[green]通过[/]：{report.checked:,} 个要素，无问题"))
        return
    table = Table(title=_t(f"{report.checked:,} features checked", f"已检查 {report.checked:,} 个要素"))
    table.add_column(_t("rule", "规则"))
    table.add_column(_t("errors", "错误"), justify="right")
    table.add_column(_t("warnings", "警告"), justify="right")
    for rule, row in summary.iterrows():
        table.add_row(str(rule), str(row["error"]), str(row["warning"]))
    console.print(table)
    for rec in report.issues.head(10).itertuples():
        where = _t(f"row {rec.row}", f"第 {rec.row} 行") if not _missing(rec.row) else (rec.component_id or "")
        console.print(f"  {rec.severity} {rec.rule} {where}: {rec.message}", highlight=False, markup=False)
    if len(report) > 10:
        console.print(_t(f"  … and {len(report) - 10:,} more (write them all with --report FILE)",
                         f"  …… 另有 {len(report) - 10:,} 条（用 --report FILE 全部写出）"))


def _missing(value) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


BATCH_CRS = typer.Option(None, "--crs", help=_t("CRS of a batch without one (e.g. EPSG:4326).",
                                                "批次缺坐标系时指定（如 EPSG:4326）。"))
BATCH_ENCODING = typer.Option(None, "--encoding", help=_t("Text encoding (default: .cpg or detected).",
                                                          "文字编码（默认取 .cpg 或自动识别，如 GBK）。"))
BATCH_GCJ02 = _flag("--gcj02", "The coordinates are GCJ-02 (from Amap): shift them back.",
                    "坐标为 GCJ-02（高德）加偏坐标：纠偏还原。")
BATCH_LAYER = typer.Option(None, "--layer", help=_t("Layer of a multi-layer file.", "多图层文件中的图层名。"))


@app.command(help=_zh("validate"))
def validate(
    batch: Path = typer.Argument(..., help=_t("Survey batch: .shp .gpkg .geojson .csv .xlsx …",
                                              "普查批次：.shp .gpkg .geojson .csv .xlsx ……")),
    registry: str = typer.Option(None, "--registry", "-r",
                                 help=_t("Check against this registry too (path or postgresql:// URL).",
                                         "同时对照此登记库校验（文件路径或 postgresql:// 地址）。")),
    report: Path = typer.Option(None, "--report", help=_t("Write every issue: .json .csv .gpkg or .html.",
                                                          "写出全部问题：.json .csv .gpkg 或 .html。")),
    as_json: bool = AS_JSON, max_issues: int = MAX_ISSUES,
    crs: str = BATCH_CRS, encoding: str = BATCH_ENCODING, gcj02: bool = BATCH_GCJ02, layer: str = BATCH_LAYER,
) -> None:
    """Check a survey batch; exit 1 if it has errors.

    Example: ``citygrid validate batch.shp --registry pingshan.gpkg --report issues.html``
    """
    from citygrid.validation import validate as run_validation

    with _guard():
        reg = _open(registry) if registry else None
        with console.status(_t(f"Validating {batch.name}…", f"正在校验 {batch.name}……")):
            result = run_validation(batch, registry=reg, **_read_options(crs, encoding, gcj02, layer))
        _show(result, report, as_json=as_json, max_issues=max_issues)
    raise typer.Exit(0 if result.ok else 1)


def _show(result, report: Path | None, *, as_json: bool, max_issues: int) -> None:
    """Write `result` to the --report file if given, and print it as JSON or as a table."""
    if report:
        result.to_file(report)
    if as_json:
        _print_json(result.to_dict(limit=max_issues or None))
        return
    _report_table(result)
    if report:
        console.print(_t(f"report written to {report}", f"报告已写入 {report}"))


@app.command(help=_zh("ingest"))
def ingest(
    batch: Path = typer.Argument(..., help=_t("Survey batch to merge.", "要合并的普查批次。")),
    registry: str = REGISTRY,
    source: str = typer.Option(None, "--source", help=_t("Where the batch comes from (default: its file name).",
                                                         "批次来源（默认为文件名）。")),
    user: str = typer.Option(None, "--user", help=_t("Who merges it.", "操作人。")),
    dry_run: bool = _flag("--dry-run", "Validate and plan only.", "只校验和预演，不写入。"),
    as_json: bool = AS_JSON, max_issues: int = MAX_ISSUES,
    wait: float = typer.Option(10.0, "--wait", help=_t("Seconds to wait while another process writes.",
                                                       "其他进程写入时等待的秒数。")),
    crs: str = BATCH_CRS, encoding: str = BATCH_ENCODING, gcj02: bool = BATCH_GCJ02, layer: str = BATCH_LAYER,
) -> None:
    """Validate a batch and merge it, all or nothing; exit 1 if rejected.

    Example: ``citygrid ingest batch.gpkg --registry pingshan.gpkg --source "2026-W48 contractor A"``
    """
    with _guard():
        reg = _open(registry, timeout=wait)
        with console.status(_t(f"Ingesting {batch.name}…", f"正在入库 {batch.name}……")):
            result = reg.ingest(batch, source=source or batch.name, user=user, dry_run=dry_run,
                                **_read_options(crs, encoding, gcj02, layer))
    outcome = {"accepted": result.accepted, "batch_id": result.batch_id, "created": result.created,
               "updated": result.updated, "retired": result.retired, "unchanged": result.unchanged,
               "seconds": round(result.seconds, 2), "dry_run": dry_run}
    if as_json:
        _print_json({**outcome, "report": result.report.to_dict(limit=max_issues or None)
                                   if result.report is not None else None})
    elif result.accepted:
        verb = _t("would merge", "预演") if dry_run else _t(f"merged as batch {result.batch_id}",
                                                            f"已作为第 {result.batch_id} 批合并")
        console.print(_t(f"[green]accepted[/], {verb}: {result.created:,} new, {result.updated:,} updated, "
                         f"{result.retired:,} retired, {result.unchanged:,} unchanged ({result.seconds:.1f} s)",
                         f"[green]通过[/]，{verb}：新增 {result.created:,}，更新 {result.updated:,}，"
                         f"注销 {result.retired:,}，未变 {result.unchanged:,}（{result.seconds:.1f} 秒）"))
    else:
        console.print(_t("[red]rejected[/]: nothing was written", "[red]拒绝[/]：未写入任何数据"))
        _report_table(result.report)
    raise typer.Exit(0 if result.accepted else 1)


MAP_OUT = typer.Option(..., "--output", "-o", help=_t("The HTML file to write.", "要写出的 HTML 文件。"))
MAP_BASEMAP = typer.Option(None, "--basemap", help=_t(
    "Background tiles: none (default, works offline; CITYGRID_BASEMAP changes it), osm, tianditu-vec, "
    "tianditu-img, amap or an intranet tile URL with {z}/{x}/{y}.",
    "底图：none（默认，离线可用；可用 CITYGRID_BASEMAP 修改）、osm、tianditu-vec、tianditu-img、amap，"
    "或含 {z}/{x}/{y} 的内网瓦片地址。"))
MAP_ASSETS = typer.Option(None, "--assets", help=_t(
    "Link Leaflet from this folder or URL (relative to the map, or 'cdn') instead of embedding it in the file.",
    "从此文件夹或地址（相对地图文件，或 cdn）引用 Leaflet，而不嵌入文件。"))
MAP_INLINE = _flag("--inline", "With --assets: embed that Leaflet in the file.",
                   "与 --assets 同用：把该 Leaflet 嵌入文件。")
MAP_COLUMN = typer.Option(None, "--column", help=_t(
    "Colour by status, category, owner, department, maintainer, street or community.",
    "着色字段：status、category、owner、department、maintainer、street 或 community。"))
MAP_KEY = typer.Option(None, "--tianditu-key", envvar="CITYGRID_TIANDITU_KEY", help=_t(
    "Tianditu (天地图) user key, for --basemap tianditu-vec or tianditu-img.",
    "天地图密钥，用于 --basemap tianditu-vec 或 tianditu-img。"))


def _written(output: Path, as_json: bool, **facts) -> None:
    """Say where a map went (as JSON with --json)."""
    if as_json:
        _print_json({"map": str(output), "bytes": output.stat().st_size, **facts})
    elif "issues" in facts:
        console.print(_t(f"map of {facts['issues']:,} issues written to {output}",
                         f"{facts['issues']:,} 个问题的地图已写入 {output}"))
    else:
        console.print(_t(f"map written to {output}", f"地图已写入 {output}"))


def _map_options(basemap: str | None, assets: str | None, inline: bool, key: str | None,
                 column: str | None = None) -> dict:
    chosen = {"basemap": basemap, "assets": assets, "inline": inline, "tianditu_key": key, "column": column}
    return {k: v for k, v in chosen.items() if v is not None}


@map_app.command("category", help=_zh("map category"))
def map_category(code: str = typer.Argument(..., help=_t("Category code or Chinese name.", "类别代码或中文名称。")),
                 registry: str = REGISTRY,
                 output: Path = MAP_OUT, column: str = MAP_COLUMN, basemap: str = MAP_BASEMAP,
                 assets: str = MAP_ASSETS, inline: bool = MAP_INLINE, tianditu_key: str = MAP_KEY,
                 as_json: bool = AS_JSON) -> None:
    """Map one category, coloured by status.

    Example: ``citygrid map category 0101 -r pingshan.gpkg -o 0101.html``
    """
    from citygrid import maps

    with _guard():
        options = _map_options(basemap, assets, inline, tianditu_key, column)
        _save(maps.category_map(_open(registry), code, **options), output)
    _written(output, as_json)


@map_app.command("street", help=_zh("map street"))
def map_street(name: str = typer.Argument(..., help=_t("Street name or code.", "街道名称或代码。")),
               registry: str = REGISTRY,
               output: Path = MAP_OUT, column: str = MAP_COLUMN, basemap: str = MAP_BASEMAP,
               assets: str = MAP_ASSETS, inline: bool = MAP_INLINE, tianditu_key: str = MAP_KEY,
               as_json: bool = AS_JSON) -> None:
    """Map one street, a layer per category.

    Example: ``citygrid map street 马峦街道 -r pingshan.gpkg -o maluan.html``
    """
    from citygrid import maps

    with _guard():
        options = _map_options(basemap, assets, inline, tianditu_key, column)
        _save(maps.street_map(_open(registry), name, **options), output)
    _written(output, as_json)


@map_app.command("district", help=_zh("map district"))
def map_district(registry: str = REGISTRY, output: Path = MAP_OUT, column: str = MAP_COLUMN,
                 basemap: str = MAP_BASEMAP, assets: str = MAP_ASSETS, inline: bool = MAP_INLINE,
                 tianditu_key: str = MAP_KEY, as_json: bool = AS_JSON) -> None:
    """Map every current component of the district in one page.

    Example: ``citygrid map district -r pingshan.gpkg -o pingshan.html``
    """
    from citygrid import maps

    with _guard():
        options = _map_options(basemap, assets, inline, tianditu_key, column)
        _save(maps.district_map(_open(registry), **options), output)
    _written(output, as_json)


@map_app.command("grid", help=_zh("map grid"))
def map_grid(street: str = typer.Argument(None, help=_t("Street name or code (default: the whole district).",
                                                       "街道名称或代码（默认全区）。")),
             registry: str = REGISTRY, output: Path = MAP_OUT, basemap: str = MAP_BASEMAP,
             assets: str = MAP_ASSETS, inline: bool = MAP_INLINE, tianditu_key: str = MAP_KEY,
                 as_json: bool = AS_JSON) -> None:
    """Map the unit grid cells, a layer per community; the search box finds a cell by code.

    Example: ``citygrid map grid 马峦街道 -r pingshan.gpkg -o grid.html``
    """
    from citygrid import maps

    with _guard():
        options = _map_options(basemap, assets, inline, tianditu_key)
        _save(maps.grid_map(_open(registry), street, **options), output)
    _written(output, as_json)


@map_app.command("issues", help=_zh("map issues"))
def map_issues(batch: Path = typer.Argument(..., help=_t("A survey batch, or a report written by --report (.gpkg).",
                                                        "普查批次，或由 --report 写出的报告（.gpkg）。")),
               registry: str = REGISTRY, output: Path = MAP_OUT, basemap: str = MAP_BASEMAP,
               assets: str = MAP_ASSETS, inline: bool = MAP_INLINE, tianditu_key: str = MAP_KEY,
                 as_json: bool = AS_JSON) -> None:
    """Map the issues of a batch.

    Example: ``citygrid map issues batch.shp -r pingshan.gpkg -o issues.html``
    """
    from citygrid import maps
    from citygrid.validation import Report
    from citygrid.validation import validate as run_validation

    with _guard():
        reg = _open(registry)
        report = Report.read(batch) if batch.name.endswith(".issues.gpkg") else run_validation(batch, registry=reg)
        options = _map_options(basemap, assets, inline, tianditu_key)
        _save(maps.issues_map(report, district=reg.district, **options), output)
    _written(output, as_json, issues=len(report))


@app.command(help=_zh("stats"))
def stats(registry: str = REGISTRY,
          by: str = typer.Option("category", "--by", help=_t(
              "Count by category, street, community, owner, maintainer, department, status or grid.",
              "按 category、street、community、owner、maintainer、department、status 或 grid 统计。")),
          as_json: bool = AS_JSON) -> None:
    """Count components.

    Example: ``citygrid stats -r pingshan.gpkg --by street``
    """
    with _guard():
        table = _open(registry).stats(by)
    rows = table.rename_axis(by).reset_index().to_dict("records")  # each column keeps its type
    if as_json:
        _print_json(rows)
        return
    out = Table(title=_t(f"components by {by}", f"部件统计（按 {by}）"))
    for column in (by, *table.columns):
        out.add_column(column, justify="right" if column in ("count", "share") else "left")
    for row in rows:
        out.add_row(*[f"{v:.1%}" if c == "share" else f"{v:,}" if c == "count" else str(v) for c, v in row.items()])
    console.print(out)


@app.command(help=_zh("owner"))
def owner(x: float = typer.Argument(..., help=_t("Longitude (or easting).", "经度（或东坐标）。")),
          y: float = typer.Argument(..., help=_t("Latitude (or northing).", "纬度（或北坐标）。")),
          registry: str = REGISTRY,
          crs: str = typer.Option("EPSG:4326", "--crs", help=_t("CRS of x y; 'gcj02' for Amap coordinates.",
                                                                "x y 的坐标系；高德坐标用 gcj02。")),
          radius: float = typer.Option(10.0, "--radius", help=_t("Search radius in metres.", "搜索半径（米）。")),
          as_json: bool = AS_JSON) -> None:
    """Whose is this? Components near a point with owner, maintainer and grid cell.

    Example: ``citygrid owner 114.3512 22.7013 -r pingshan.gpkg``
    """
    with _guard():
        found = _open(registry).owner_at(x, y, crs=crs, radius=radius)
    if as_json:
        _print_json({"grid": found.attrs.get("grid"), "street": found.attrs.get("street"),
                     "components": found.to_dict("records")})
    else:
        console.print(_t(f"grid cell at the point: {found.attrs.get('grid')} ({found.attrs.get('street')})",
                         f"该点所在网格：{found.attrs.get('grid')}（{found.attrs.get('street')}）"))
        if found.empty:
            console.print(_t(f"no component within {radius:g} m", f"{radius:g} 米内没有部件"))
        for rec in found.itertuples():
            console.print(f"{rec.distance_m:6.1f} m  {rec.component_id} {rec.category_name}  权属 {rec.owner} · "
                          f"养护 {rec.maintainer} · 主管 {rec.department} · 网格 {rec.grid}", highlight=False)
    raise typer.Exit(0)


@app.command(help=_zh("export"))
def export(registry: list[str] = typer.Option(..., "--registry", "-r", help=_t(
               "The registry: a GeoPackage path or a postgresql:// URL (several with --partitioned).",
               "登记库：GeoPackage 文件路径或 postgresql:// 地址（--partitioned 时可多个）。")),
           output: Path = typer.Option(..., "--output", "-o", help=_t(
               "The file to write: .gpkg .shp .geojson .csv or .parquet.",
               "输出文件：.gpkg .shp .geojson .csv 或 .parquet。")),
           street: str = typer.Option(None, "--street", help=_t("Only this street (name or code).",
                                                                "只导出此街道（名称或代码）。")),
           department: str = typer.Option(None, "--department", help=_t(
               "Only this responsible department (name or code).", "只导出此主管部门（名称或代码）。")),
           category: str = typer.Option(None, "--category", help=_t("Only this category (code or name).",
                                                                    "只导出此类别（代码或名称）。")),
           fields: str = typer.Option("citygrid", "--fields", help=_t(
               "Field names: citygrid, cjt214 or gbt47678.", "字段名称：citygrid、cjt214 或 gbt47678。")),
           partitioned: bool = _flag("--partitioned", "Write a folder of GeoParquet 1.1 partitioned by admin_code, "
                                     "street_code and category, for Sedona/Spark (-r may be given several times).",
                                     "写出按 admin_code、street_code、category 分区的 GeoParquet 1.1 文件夹，供 "
                                     "Sedona/Spark 使用（-r 可重复）。"),
           as_json: bool = AS_JSON) -> None:
    """Write an extract for another system.

    Example: ``citygrid export -r pingshan.gpkg --street 马峦街道 -o m.shp``
    """
    with _guard():
        if partitioned:
            from citygrid.scale import export_dataset

            files = [export_dataset([_open(r) for r in registry], output)]
        else:
            if len(registry) > 1:
                from citygrid.errors import UsageError

                raise UsageError("one --registry for an extract; several only with --partitioned.")
            files = _open(registry[0]).export(output, street=street, department=department, category=category,
                                              fields=fields)
    if as_json:
        _print_json({"files": [str(p) for p in files]})
        return
    for path in files:
        console.print(_t(f"written {path}", f"已写出 {path}"))


@app.command(help=_zh("history"))
def history(component_id: str = typer.Argument(..., help=_t("Identifier (old 16-digit ids are resolved).",
                                                            "标识码（旧的 16 位标识码也可）。")),
            registry: str = REGISTRY, as_json: bool = AS_JSON) -> None:
    """Every change of a component.

    Example: ``citygrid history 4403100101000001 -r pingshan.gpkg``
    """
    from citygrid.errors import NotFound

    with _guard():
        table = _open(registry).history(component_id)
        if table.empty:
            raise NotFound(f"no history for {component_id!r}: it is not in the registry.")
    if as_json:
        _print_json(table.to_dict("records"))
        return
    for rec in table.itertuples():
        change = "" if _missing(rec.field) else f" {rec.field}: {rec.old_value} → {rec.new_value}"
        console.print(f"{rec.changed_at[:19]} batch {rec.batch_id} ({rec.source}) {rec.action}{change}",
                      highlight=False, markup=False)


@app.command(help=_zh("allow"))
def allow(component_id: str = typer.Argument(..., help=_t("Identifier of the component.", "部件标识码。")),
          rule: str = typer.Argument(..., help=_t("Rule code, e.g. geom.moved_far.", "规则代码，如 geom.moved_far。")),
          registry: str = REGISTRY,
          note: str = typer.Option("", "--note", help=_t("Why; kept with the entry.", "原因，随条目保存。"))) -> None:
    """Put a known exception on the allow-list: the rule is no longer reported for the component.

    Example: ``citygrid allow 4403100101000001 geom.moved_far -r pingshan.gpkg --note 道路改造迁移``
    """
    with _guard():
        _open(registry).allow(component_id, rule, note)
    console.print(_t(f"allowed: {rule} for {component_id}", f"已加入白名单：{component_id} 的 {rule}"),
                  highlight=False, markup=False)


DISPATCH_COLUMNS = ("row", "event_id", "component_id", "distance_m", "candidates", "confidence", "owner", "owner_code",
                    "maintainer", "maintainer_code", "department", "category", "category_name", "grid", "community",
                    "street", "reason", "event_type", "channel", "created_at", "closed_at")


@app.command(help=_zh("dispatch"))
def dispatch(
    events: Path = typer.Argument(..., help=_t("Hotline events: CSV or XLSX export (id, time, type, lon/lat …).",
                                               "热线事件：CSV 或 XLSX 导出（编号、时间、类型、经纬度……）。")),
    registry: str = REGISTRY,
    output: Path = typer.Option(..., "--output", "-o", help=_t("One row per event: .csv or .xlsx.",
                                                              "每个事件一行：.csv 或 .xlsx。")),
    map_file: Path = typer.Option(None, "--map", help=_t("Also write a map of the events (HTML).",
                                                        "同时写出事件地图（HTML）。")),
    gcj02: bool = _flag("--gcj02", "Locations are GCJ-02 (WeChat, Amap).", "坐标为 GCJ-02（微信、高德）。"),
    bd09: bool = _flag("--bd09", "Locations are BD-09 (Baidu).", "坐标为 BD-09（百度）。"),
    radius: float = typer.Option(10.0, "--radius", help=_t("Metres searched around each event.",
                                                           "每个事件周围的搜索半径（米）。")),
    gps_m: float = typer.Option(3.0, "--gps-m", min=0.01, help=_t(
        "Location error of the events (metres, standard deviation per axis); it weighs the confidence column.",
        "事件位置误差（米，每轴标准差），用于计算 confidence 列。")),
    event_types: Path = typer.Option(None, "--event-types", help=_t(
        "Your own event type → category table (CSV: code, name_zh, categories).",
        "自定义事件类型→部件类别对照表（CSV：code、name_zh、categories）。")),
    as_json: bool = AS_JSON,
) -> None:
    """Send each hotline event to the component and the unit that must act, or say why there is none.

    Example: ``citygrid dispatch events.csv -r pingshan.gpkg -o dispatch.csv --map dispatch.html``
    """
    import pandas as pd

    from citygrid import maps
    from citygrid._text import spreadsheet_safe
    from citygrid.errors import UsageError, writing

    with _guard():
        if gcj02 and bd09:
            raise UsageError("give --gcj02 or --bd09, not both.")
        if output.suffix.lower() not in (".csv", ".xlsx"):
            raise UsageError(f"--output {output.name!r}: write .csv or .xlsx.")
        reg = _open(registry)
        with console.status(_t(f"Dispatching {events.name}…", f"正在派遣 {events.name}……")):
            coords = "gcj02" if gcj02 else "bd09" if bd09 else "auto"
            result = reg.dispatch(events, radius=radius, gps_m=gps_m, coords=coords, event_types=event_types)
        table = spreadsheet_safe(pd.DataFrame(result[list(DISPATCH_COLUMNS)]))
        with writing(output):
            if output.suffix.lower() == ".csv":
                table.to_csv(output, index=False, encoding="utf-8-sig")
            else:
                table.to_excel(output, index=False, sheet_name="dispatch", engine="openpyxl")
        if map_file is not None:
            _save(maps.events_map(reg, result), map_file)
    matched = int(result["component_id"].notna().sum())
    reasons = result.loc[result["reason"] != "", "reason"].str.replace(r"^no .* within", "no component within",
                                                                        regex=True).value_counts()
    sure = int((result["confidence"] >= 0.9).sum())
    if as_json:
        _print_json({"events": len(result), "matched": matched, "confident": sure,
                     "coordinates": result.attrs["coordinates"], "reasons": reasons.to_dict(), "output": str(output),
                     **({"map": str(map_file)} if map_file else {})})
        return
    console.print(_t(f"{len(result):,} events, {matched:,} sent to a component's unit, {sure:,} of them with "
                     f"confidence ≥ 0.9 (coordinates read as {result.attrs['coordinates']}); written to {output}",
                     f"共 {len(result):,} 个事件，{matched:,} 个已派至部件责任单位，其中 {sure:,} 个置信度 ≥ 0.9"
                     f"（坐标按 {result.attrs['coordinates']} 读取）；已写入 {output}"))
    for why, count in reasons.items():
        console.print(f"  {count:,} × {why}", highlight=False, markup=False)


def _layer_option(name: str, en: str, zh: str, required: bool = False):
    return typer.Option(... if required else None, name, help=_t(en, zh))


@app.command(help=_zh("init"))
def init(
    registry: Path = typer.Argument(..., help=_t("The registry to create (.gpkg; must not exist).",
                                                 "要新建的登记库（.gpkg，不能已存在）。")),
    streets: str = _layer_option("--streets", "Street polygons: FILE or FILE#LAYER (.shp .gpkg .gdb .geojson).",
                                 "街道面：FILE 或 FILE#图层（.shp .gpkg .gdb .geojson）。", True),
    communities: str = _layer_option("--communities", "Community polygons (a street code column, or found by place).",
                                     "社区面（含街道代码列，或按位置归属）。", True),
    grid: str = _layer_option("--grid", "Unit grid cells (a community code column, or found by place).",
                              "单元网格（含社区代码列，或按位置归属）。", True),
    units: str = _layer_option("--units", "Unit list CSV: code, name_zh, level, kind, maintainer.",
                               "单位名录 CSV：code、name_zh、level、kind、maintainer。", True),
    boundary: str = _layer_option("--boundary", "District outline (default: the union of the streets).",
                                  "区界（默认取街道面的合并）。"),
    roads: str = _layer_option("--roads", "Road centre lines, drawn on maps.", "道路中心线，用于制图。"),
    components: str = _layer_option("--components", "Components to load, in any batch format (validated).",
                                    "要载入的部件，任意批次格式（会全部校验）。"),
    code: str = _layer_option("--code", "District division code (default: from the boundary or street codes).",
                              "区县代码（默认取自区界或街道代码）。"),
    name: str = _layer_option("--name", "District name.", "区县名称。"),
    crs: str = _layer_option("--crs", "CRS of layers without one (no .prj), e.g. EPSG:4490.",
                             "缺坐标系图层的坐标系，如 EPSG:4490。"),
    columns: list[str] = typer.Option(None, "--columns", help=_t(
        "A header to use, as KIND.FIELD=HEADER (e.g. street.code=JDDM); repeat it.",
        "指定字段名：KIND.FIELD=表头（如 street.code=JDDM），可重复。")),
    as_json: bool = AS_JSON,
) -> None:
    """Build a registry from a district's own files: boundary, streets, communities, grid, units, components.

    Example: ``citygrid init pingshan.gpkg --streets streets.shp --communities communities.geojson
    --grid grid.gdb --units units.csv --components components.shp``
    """
    from citygrid.district_files import init_registry
    from citygrid.errors import BatchRejected, UsageError

    with _guard():
        mapping = {}
        for item in columns or []:
            key, sep, header = item.partition("=")
            if not sep:
                raise UsageError(f"--columns {item!r}: write KIND.FIELD=HEADER, e.g. street.code=JDDM.")
            mapping[key.strip()] = header.strip()
        try:
            reg, warnings = init_registry(registry, components=components, streets=streets, communities=communities,
                                          grid=grid, units=units, boundary=boundary, roads=roads, code=code,
                                          name=name, crs=crs, columns=mapping)
        except BatchRejected as exc:
            console.print(_t("[red]rejected[/]: the components have errors, so no registry was made",
                             "[red]拒绝[/]：部件有错误，未建登记库"))
            _report_table(exc.report)
            raise typer.Exit(1) from None
    district = reg.district
    facts = {"registry": str(registry), "district": f"{district.code} {district.name}",
             "streets": len(district.streets), "communities": len(district.communities),
             "grid_cells": len(district.grid), "components": len(reg.components), "warnings": warnings}
    if as_json:
        _print_json(facts)
        return
    for line in warnings:
        console.print(f"[yellow]{line}[/]", highlight=False)
    console.print(_t(f"registry {registry} made: {facts['district']}, {facts['streets']} streets, "
                     f"{facts['communities']} communities, {facts['grid_cells']:,} grid cells, "
                     f"{facts['components']:,} components",
                     f"登记库 {registry} 已建立：{facts['district']}，街道 {facts['streets']} 个，"
                     f"社区 {facts['communities']} 个，单元网格 {facts['grid_cells']:,} 个，"
                     f"部件 {facts['components']:,} 个"))


@app.command(help=_zh("check"))
def check(target: str = typer.Argument(..., help=_t("A registry (.gpkg or postgresql:// URL) or a dataset folder.",
                                                    "登记库（.gpkg 或 postgresql:// 地址）或数据集文件夹。")),
          engine: str = typer.Option("local", "--engine", help=_t(
              "local (this machine, every rule) or sedona (Spark, the rules that join, any number of districts).",
              "local（本机，全部规则）或 sedona（Spark，需要连接的规则，任意多个区）。")),
          master: str = typer.Option(None, "--master", help=_t("Spark master URL for --engine sedona (default local).",
                                                               "--engine sedona 的 Spark master 地址（默认本机）。")),
          report: Path = typer.Option(None, "--report", help=_t("Write every issue: .json .csv .gpkg or .html.",
                                                                "写出全部问题：.json .csv .gpkg 或 .html。")),
          as_json: bool = AS_JSON, max_issues: int = MAX_ISSUES) -> None:
    """Validate a whole registry or dataset; exit 1 if it has errors.

    Example: ``citygrid check shenzhen-dataset/ --engine sedona --json``
    """
    from citygrid.scale import check as run_check

    with _guard():
        result = run_check(target, engine=engine, master=master)
        _show(result, report, as_json=as_json, max_issues=max_issues)
    raise typer.Exit(0 if result.ok else 1)


@app.command(help=_zh("backup"))
def backup(registry: str = typer.Argument(..., help=_t("The registry: a GeoPackage path or a postgresql:// URL.",
                                                      "登记库：GeoPackage 文件路径或 postgresql:// 地址。")),
           dest: Path = typer.Argument(..., help=_t("The backup file to write (must not exist).",
                                                   "要写出的备份文件（不能已存在）。")),
           as_json: bool = AS_JSON) -> None:
    """Take a consistent copy of a registry while others read and write it.

    Example: ``citygrid backup pingshan.gpkg backups/pingshan-2026-12-01.gpkg``
    """
    with _guard():
        written = _open(registry).backup(dest)
    if as_json:
        _print_json({"backup": str(written), "bytes": written.stat().st_size})
    else:
        console.print(_t(f"backup written to {written}", f"备份已写入 {written}"))


@app.command(help=_zh("verify"))
def verify(registry: str = typer.Argument(..., help=_t("The registry: a GeoPackage path or a postgresql:// URL.",
                                                      "登记库：GeoPackage 文件路径或 postgresql:// 地址。")),
           as_json: bool = AS_JSON) -> None:
    """Check the stored registry itself (integrity, spatial indexes, triggers, history); exit 1 if wrong.

    Example: ``citygrid verify pingshan.gpkg``
    """
    with _guard():
        problems = _open(registry).verify()
    if as_json:
        _print_json({"ok": not problems, "problems": problems})
    elif problems:
        for line in problems:
            console.print(f"[red]✗[/] {line}", highlight=False)
    else:
        console.print(_t("[green]ok[/]: nothing wrong found", "[green]正常[/]：未发现问题"))
    raise typer.Exit(1 if problems else 0)


@app.command(help=_zh("demo"))
def demo(
    out: Path = typer.Option(Path("citygrid-demo"), "--out", help=_t("Folder for the results.", "结果文件夹。")),
    small: bool = _flag("--small", "20,000 components instead of 420,000.", "生成 2 万个部件（而非 42 万）。"),
    seed: int = typer.Option(0, "--seed", help=_t("Seed of the synthetic district.", "示例区的随机种子。")),
    as_json: bool = AS_JSON,
) -> None:
    """Build the sample district registry, validate it and write every map.

    Example: ``citygrid demo --small --out /tmp/demo``
    """
    from rich.progress import Progress

    from citygrid import maps, synth
    from citygrid.registry import Registry

    n = 20_000 if small else 420_000
    steps: list[tuple[str, float]] = []

    say = errors.print if as_json else console.print  # with --json, stdout holds the JSON alone

    def step(label: str):
        @contextmanager
        def timed():
            start = time.perf_counter()
            say(f"  {label}…")
            yield
            steps.append((label, time.perf_counter() - start))
            say(f"  {label}: {steps[-1][1]:.1f} s")
        return timed()

    with _guard():
        out.mkdir(parents=True, exist_ok=True)
        with step(f"generate a district with {n:,} components"):
            district = synth.sample_district() if small and seed == synth.SAMPLE_SEED else \
                synth.make_district(seed=seed, n_components=n)
        path = out / "registry.gpkg"
        with step(f"create the registry {path}"):
            reg = Registry.create(path, district=district, overwrite=True)
        with step("validate the whole registry and its grid"):
            report = reg.validate()
            report.to_file(out / "validation.html")
        shown = errors if as_json else console
        with step("write every category and street map"), Progress(console=shown, transient=True) as bar:
            task = bar.add_task(_t("maps", "地图"), total=None)
            index = maps.write_all(reg, out / "maps", progress=lambda done, total, name: bar.update(
                task, completed=done, total=total, description=f"{_t('maps', '地图')} {name}"))
    if as_json:
        _print_json({"registry": str(path.resolve()), "report": str((out / "validation.html").resolve()),
                     "maps": str(index.resolve()), "components": len(reg.components),
                     "categories": int(reg.components["category"].nunique()), "issues": len(report),
                     "steps": {label: round(seconds, 2) for label, seconds in steps}})
        return
    table = Table(title=f"{district.name} ({district.code}) sample registry")
    for column in ("street", "communities", "grid cells", "components"):
        table.add_column(column, justify="left" if column == "street" else "right")
    per_street = reg.components.groupby("street").size()
    cells = district.grid.groupby("street_code").size()
    comms = district.communities.groupby("street_code").size()
    for row in district.streets.itertuples():
        table.add_row(row.name, str(comms.get(row.code, 0)), f"{cells.get(row.code, 0):,}",
                      f"{per_street.get(row.name, 0):,}")
    console.print(table)
    console.print(f"{len(reg.components):,} components in {reg.components['category'].nunique()} categories; "
                  f"validation: {len(report)} issue(s)")
    console.print(f"registry: {path.resolve()}")
    console.print(f"report:   {(out / 'validation.html').resolve()}")
    console.print(f"maps:     {index.resolve()}")
    console.print(f"total {sum(s for _, s in steps):.1f} s")


if __name__ == "__main__":
    app()
