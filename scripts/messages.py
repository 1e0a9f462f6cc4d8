"""Keep citygrid's message catalog: extract the English messages, merge them into zh_CN, compile.

Usage (from the repository root, with Babel installed: ``pip install -e '.[test]'``)::

    python scripts/messages.py update    # src/citygrid/locale/citygrid.pot and zh_CN/.../citygrid.po
    python scripts/messages.py compile   # zh_CN/.../citygrid.mo, which citygrid reads at run time

Translate the new entries of ``citygrid.po`` (its empty ``msgstr``) between the two steps.
``tests/test_i18n.py`` fails while a message has no translation or the ``.mo`` is stale.
"""

from __future__ import annotations

import ast
import inspect
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir, extract_python
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE = ROOT / "src" / "citygrid" / "locale"
PO = LOCALE / "zh_CN" / "LC_MESSAGES" / "citygrid.po"
MO = PO.with_suffix(".mo")
# a rule(code, severity, doc) says what it finds in its third argument
KEYWORDS = {"_": None, "N_": None, "h": None, "Nn_": (1, 2), "rule": (3,)}


def extract_with_commands(fileobj, keywords, comment_tags, options):
    """Babel's Python extraction, and the docstring of each command (``@command(...)``), its help text."""
    yield from extract_python(fileobj, keywords, comment_tags, options)
    fileobj.seek(0)
    tree = ast.parse(fileobj.read().decode("utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and any(
                isinstance(d, ast.Call) and getattr(d.func, "id", "") == "command" for d in node.decorator_list):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                yield node.lineno, "_", inspect.cleandoc(doc), []


def extract() -> Catalog:
    """Every message of the source (``_()``, ``h()`` and ``N_()`` calls with literal text, command docstrings)."""
    template = Catalog(project="citygrid", charset="utf-8", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
            ROOT / "src" / "citygrid", method_map=[("**.py", extract_with_commands)], keywords=KEYWORDS,
            comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
        template.add(message, None, [(f"src/citygrid/{filename}", lineno)], auto_comments=comments,
                     context=context)
    return template


def read_catalog(path: Path = PO) -> Catalog:
    """The Chinese catalog as it is in the repository."""
    with open(path, "rb") as f:
        return read_po(f, locale="zh_CN", domain="citygrid")


def compiled(catalog: Catalog) -> bytes:
    """The ``.mo`` bytes of a catalog (fuzzy entries left out)."""
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def update() -> None:
    """Write the template and merge it into the Chinese catalog (new messages get an empty translation)."""
    template = extract()
    with open(LOCALE / "citygrid.pot", "wb") as f:
        write_po(f, template, width=120, omit_header=True, sort_output=True, include_lineno=False)
    catalog = read_catalog() if PO.exists() else Catalog(locale="zh_CN", domain="citygrid", project="citygrid",
                                                         fuzzy=False)
    catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
    catalog.revision_date = catalog.creation_date
    with open(PO, "wb") as f:
        write_po(f, catalog, width=120, omit_header=False, sort_output=True, ignore_obsolete=True,
                 include_lineno=False)
    missing = [m.id for m in catalog if m.id and not m.string]
    print(f"{len(template)} messages; {len(missing)} without Chinese")


def compile_mo() -> None:
    """Compile the Chinese catalog into the ``.mo`` citygrid reads."""
    MO.write_bytes(compiled(read_catalog()))
    print(f"wrote {MO.relative_to(ROOT)}")


if __name__ == "__main__":
    {"update": update, "compile": compile_mo}[sys.argv[1]]()
