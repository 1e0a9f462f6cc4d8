"""Pages generated from the code at each build, so the docs never lag behind it."""

from __future__ import annotations

from pathlib import Path

TITLES = {"en": ("Rules", "Every rule `citygrid validate` runs, from `citygrid.RULES`, by family.",
                 ("code", "severity", "what it finds", "needs")),
          "zh": ("规则一览", "`citygrid validate` 运行的全部规则（取自 `citygrid.RULES`），按类别列出。",
                 ("代码", "级别", "发现的问题", "需要"))}


def write_rules(path: Path, *, language: str) -> None:
    """The rules reference, one table per family, in `language` (``en`` or ``zh``)."""
    from citygrid import settings
    from citygrid._i18n import _
    from citygrid.validation import RULES
    from citygrid.validation.report import severity_name

    before, settings.language = settings.language, language
    try:
        title, intro, header = TITLES[language]
        lines = [f"# {title}", "", intro, ""]
        for family in sorted({r.family for r in RULES.values()}):
            lines += [f"## {family}", "", "| " + " | ".join(header) + " |", "|---|---|---|---|"]
            for rule in (r for r in RULES.values() if r.family == family):
                needs = ", ".join(rule.needs) or "—"
                severity = severity_name(rule.severity)
                lines.append(f"| `{rule.code}` | {severity} | {_(rule.doc)} | {needs} |")
            lines.append("")
    finally:
        settings.language = before
    text = "\n".join(lines)
    if not path.exists() or path.read_text(encoding="utf-8") != text:  # unchanged: no rebuild of the page
        path.write_text(text, encoding="utf-8")


def click_command():
    """The ``citygrid`` command as click sees it, for sphinx-click (help in the build's language)."""
    import typer

    from citygrid.cli import app

    return typer.main.get_command(app)


def __getattr__(name: str):  # ``_pages:command``: made when sphinx-click asks, after conf.py set the language
    if name == "command":
        return click_command()
    raise AttributeError(name)
