"""The command line's frame: the language, the typer apps, shared options and how results are said.

Help texts are made when the commands are defined, so the language is read from the command
line (``--lang``) or the environment before that (:data:`LANG`); everything a command says
while it runs goes through the message catalog (:mod:`citygrid._i18n`) in that language.
Text from data (names, paths, messages) is never read as rich markup.
"""

from __future__ import annotations

import inspect
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from citygrid._i18n import N_, _, normalise_language, set_language, translate
from citygrid.cli._click import speak


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


LANG = normalise_language(_language(sys.argv[1:]))
"""The language of this run: ``"en"`` or ``"zh"``."""
speak(LANG)

# Arrow's buffers come from the C library's allocator, set before Arrow is loaded: a command runs
# and ends, and mimalloc, Arrow's default, keeps freed pages for later use (validating a million
# rows, its peak held about 170 MB more). A pool the user names in this variable is kept.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def h(text: str) -> str:
    """A help text in the run's language (a catalog message, made at import)."""
    return translate(text, LANG)


def flag(name: str, help_text: str):
    """An on/off option (no value follows it)."""
    return typer.Option(False, name, help=h(help_text), metavar="")


def option(default: Any, *names: str, help_text: str, **more: Any):
    """An option whose help is a catalog message."""
    return typer.Option(default, *names, help=h(help_text), **more)


app = typer.Typer(help=h(N_("Keep a district's component registry: build, validate, ingest, map, look up.")),
                  add_completion=False, pretty_exceptions_enable=False)
map_app = typer.Typer(help=h(N_("Write an HTML map (category, street, district, grid or issues); maps work offline.")),
                      no_args_is_help=True)
app.add_typer(map_app, name="map")
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)
_state = {"debug": False}


def command(typer_app: typer.Typer, name: str | None = None) -> Callable[[Callable], Callable]:
    """Register a command whose help is its docstring, in the run's language.

    The docstring is the catalog message (``scripts/messages.py`` extracts it), so each
    command's help is written once.
    """
    def register(func: Callable) -> Callable:
        return typer_app.command(name, help=h(inspect.cleandoc(func.__doc__ or "")))(func)

    return register


@app.callback(invoke_without_command=True)
def main(ctx: typer.Context, debug: bool = flag("--debug", N_("Show tracebacks.")),
         lang: str = option(None, "--lang", show_default=False, help_text=N_(
             "Language of help and messages: en or zh (default: CITYGRID_LANG or the locale)."))) -> None:
    """Keep a district's component registry."""
    _state["debug"] = debug
    set_language(lang or LANG)
    if ctx.invoked_subcommand is None:
        console.print(ctx.get_help(), markup=False)
        raise typer.Exit(0)


REGISTRY = option(..., "--registry", "-r", help_text=N_("The registry: a GeoPackage path or a postgresql:// URL."))
AS_JSON = flag("--json", N_("Print the result as JSON."))
MAX_ISSUES = option(1000, "--max-issues", min=0, help_text=N_(
    "With --json, list at most this many issues, errors first (0: all); the summary counts all."))
REPORT = option(None, "--report", help_text=N_("Write every issue: .json .csv .gpkg or .html."))
BATCH_CRS = option(None, "--crs", help_text=N_("CRS of a batch without one (e.g. EPSG:4326)."))
BATCH_ENCODING = option(None, "--encoding", help_text=N_("Text encoding (default: .cpg or detected)."))
BATCH_GCJ02 = flag("--gcj02", N_("The coordinates are GCJ-02 (from Amap): shift them back."))
BATCH_LAYER = option(None, "--layer", help_text=N_("Layer of a multi-layer file."))
MAX_ROWS = option(None, "--max-rows", min=1, help_text=N_(
    "Most rows read from a CSV or Excel table (default 5,000,000; CITYGRID_MAX_ROWS)."))
BATCH_COLUMNS = option(None, "--columns", help_text=N_(
    "Read a column citygrid does not know as a field: FIELD=HEADER (e.g. component_id=WELL_NO); repeat it. "
    "citygrid headers lists the headers it knows."))


def say(*parts: str | tuple[str, str], err: bool = False) -> None:
    """Print text: plain parts as they are (never markup), ``(text, style)`` parts styled."""
    (errors if err else console).print(Text.assemble(*parts), soft_wrap=True)


def fail(exc: BaseException) -> None:
    """One line on stderr and exit 2 (the traceback with --debug)."""
    if _state["debug"]:
        raise exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    say((_("error"), "bold red"), _(": ") + text, err=True)
    raise typer.Exit(2)


@contextmanager
def guard() -> Iterator[None]:
    """Turn citygrid's errors into :func:`fail`."""
    from citygrid.errors import CitygridError

    try:
        yield
    except CitygridError as exc:
        fail(exc)


def open_registry(path: str, timeout: float = 10.0):
    from citygrid.registry import open_registry as opened

    return opened(path, timeout=timeout)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n")


def read_options(crs: str | None, encoding: str | None, gcj02: bool, layer: str | None,
                 max_rows: int | None = None, columns: list[str] | None = None) -> dict:
    """The batch-reading options that were given (--max-rows is this run's setting).

    Raises
    ------
    UsageError
        If a --columns is not FIELD=HEADER.
    """
    from citygrid.errors import UsageError

    if max_rows is not None:
        from citygrid import settings

        settings.max_rows = max_rows
    mapping = {}
    for item in columns or []:
        field, sep, header = item.partition("=")
        if not sep or not header.strip() or not field.strip():
            raise UsageError(_("--columns {item!r}: write FIELD=HEADER, e.g. component_id=WELL_NO.").format(item=item))
        mapping[header.strip()] = field.strip()
    return {k: v for k, v in {"crs": crs, "encoding": encoding, "gcj02": gcj02 or None, "layer": layer,
                              "columns": mapping or None}.items() if v is not None}


def missing(value: Any) -> bool:
    import pandas as pd

    return value is None or bool(pd.isna(value))


def table(title: str, columns: list[tuple[str, str]]) -> Table:
    """A rich table whose title and headers are text, not markup; ``columns`` are ``(header, justify)``."""
    out = Table(title=Text(title))
    for header, justify in columns:
        out.add_column(Text(header), justify=justify)  # type: ignore[arg-type]  # "left" / "right" …
    return out


def row(out: Table, *cells: Any) -> None:
    """A table row of values shown as text (a ``[/]`` in a street's name is no markup)."""
    out.add_row(*(Text(str(c)) for c in cells))


def report_table(report, *, option: str | None) -> None:
    """The issue counts per rule and the first ten issues (errors first, then warnings, then info).

    The others are counted; `option` is how the command lists them all (None: it has no such
    option, or the report is being written to a file).
    """
    from citygrid.validation.report import SEVERITY_NAMES

    summary = report.summary()
    if summary.empty:
        say((_("clean"), "green"), _(": ") + _("{n:,} features, no issue").format(n=report.checked))
        return
    out = table(_("{n:,} features checked").format(n=report.checked),
                [(_("rule"), "left"), (_("errors"), "right"), (_("warnings"), "right"), (_("info"), "right")])
    for rule, counts in summary.iterrows():
        row(out, rule, *(counts[s] for s in SEVERITY_NAMES))
    console.print(out)
    sheets = report.sheets
    if len(sheets) == 1:
        say(_("sheet {sheet!r}").format(sheet=sheets[0]))
    for rec in report.first(10).issues.itertuples():
        say(f"  {_(SEVERITY_NAMES.get(rec.severity, rec.severity))} {rec.rule} {where(rec)}: {rec.message}")
    more = len(report) - 10
    if more > 0 and option:
        say(_("  … and {n:,} more (all of them with {option})").format(n=more, option=option))
    elif more > 0:
        say(_("  … and {n:,} more").format(n=more))


def where(issue: Any) -> str:
    """Where an issue is, as a person finds it: ``row 7, column C``, else its component id."""
    if missing(issue.row):
        return issue.component_id or ""
    if missing(issue.column):
        return _("row {row}").format(row=issue.row)
    return _("row {row}, column {column}").format(row=issue.row, column=issue.column)


def show(result, report: Path | None, *, as_json: bool, max_issues: int) -> None:
    """Write `result` to the --report file if given, and print it as JSON or as a table."""
    if report:
        result.to_file(report)
    if as_json:
        print_json(result.to_dict(limit=max_issues or None))
        return
    report_table(result, option=None if report else "--report FILE")
    if report:
        say(_("report written to {path}").format(path=report))
