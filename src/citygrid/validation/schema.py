"""Rules on fields and values: ``schema.*``."""

from __future__ import annotations

import difflib
import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from citygrid._arrays import NONE
from citygrid._i18n import N_, _, language, list_text
from citygrid.schema import FIELDS, REQUIRED_FIELDS, STATUSES
from citygrid.validation._engine import Context, Findings, rule

_TEXT_FIELDS = [f.name for f in FIELDS if f.kind == "str"]
_LABELS = {f.name: f.label_zh for f in FIELDS}
_CJK = re.compile(r"[\u4e00-\u9fff]")


def _gbk_pairs(leads: range, trails: range) -> str:
    out = []
    for lead in leads:
        for trail in trails:
            try:
                out.append(bytes([lead, trail]).decode("gbk"))
            except UnicodeDecodeError:
                pass
    return "".join(out)


# UTF-8 text read as GBK always shows, at its first 3-byte character, a GBK character
# made of a UTF-8 lead byte (0xE2-0xEF) and a continuation byte (0x80-0xBF): only text
# holding one of these can be such mojibake, which a vectorised regex finds first.
_UTF8_READ_AS_GBK = "[" + re.escape(_gbk_pairs(range(0xE2, 0xF0), range(0x80, 0xC0))) + "]"


def _label(field: str) -> str:
    """A field as messages name it: its Chinese label in Chinese, its name in English."""
    return _LABELS.get(field, field) if language() == "zh" else field


@rule("schema.missing_field", "error", "a required field absent or empty")
def missing_field(ctx: Context) -> Findings:
    fields = [f for f in REQUIRED_FIELDS if f != "component_id"]
    empty = np.column_stack([ctx.frame[f].isna().to_numpy() for f in fields])
    unread = {(bad["row"], bad["field"]) for bad in ctx.notes.get("bad_values") or []}
    unread |= {(row, "category") for row in ctx.notes.get("unknown_category_names") or {}}  # not in the catalog
    if unread:  # a value that could not be read is schema.bad_value, not also an empty field
        rows = ctx.frame["row"].to_numpy()
        for k, f in enumerate(fields):
            empty[:, k] &= ~np.isin(rows, [r for r, name in unread if name == f])
    pos = np.flatnonzero(empty.any(axis=1))
    names = np.array([_label(f) for f in fields], dtype=object)
    text = _("required field(s) empty: {fields}")
    message = [text.format(fields=list_text(names[empty[p]].tolist())) for p in pos]
    first = np.array(fields, dtype=object)[empty[pos].argmax(axis=1)] if len(pos) else np.array([], dtype=object)
    return Findings(pos, np.array(message, dtype=object), field=first)


@rule("schema.unknown_category", "error",
      "category code or name not in the catalog (with the nearest names, or the code with its lost leading zero)")
def unknown_category(ctx: Context) -> Findings:
    cats = ctx.frame["category"]
    unknown = cats.notna() & ~cats.isin(list(_known_codes(ctx)))
    pos = np.flatnonzero(unknown.to_numpy())
    text = _("category {category!r} is not in the catalog of {n} categories")
    message = [text.format(category=c, n=len(ctx.catalog)) + _padded(ctx, c) for c in cats.to_numpy()[pos]]
    fields = ["category"] * len(pos)
    names = ctx.notes.get("unknown_category_names") or {}
    if names:
        rows = ctx.frame["row"].to_numpy()
        at = np.flatnonzero(np.isin(rows, list(names)))
        named = _("category {name!r} is not in the catalog of {n} categories")
        for p in at:
            name, field = names[int(rows[p])]
            message.append(named.format(name=name, n=len(ctx.catalog)) + _nearest_names(ctx, name))
            fields.append(field)
        pos = np.concatenate([pos, at])
    return Findings(pos, np.array(message, dtype=object), field=np.array(fields, dtype=object))


def _padded(ctx: Context, code: str) -> str:
    """``; did you mean '0118' (…)?`` for a code a spreadsheet stripped of its leading zeros, else ""."""
    if not code.isdigit():
        return ""
    for width in (4, 5):
        padded = code.zfill(width)
        if padded != code and padded in _known_codes(ctx):
            name = ctx.by_category("name_zh", np.array([padded], dtype=object))[0]
            return _("; did you mean {code!r} ({name})? A spreadsheet drops leading zeros from a number: format the "
                     "column as text").format(code=padded, name=name)
    return ""


def _nearest_names(ctx: Context, name: str) -> str:
    """``; nearest: 污水井盖 (0102), …`` from the catalog's Chinese and English names, else ""."""
    names = ctx.memo("category_names", lambda: {n: c.code for c in ctx.catalog for n in (c.name_zh, c.name_en) if n})
    close = difflib.get_close_matches(name, list(names), n=3, cutoff=0.4)
    if not close:
        return ""
    return _("; nearest names: {names}").format(names=list_text([f"{n} ({names[n]})" for n in close]))


def _known_codes(ctx: Context) -> set[str]:
    return {c.code for c in ctx.catalog} | {c.code_2026 for c in ctx.catalog}


@rule("schema.bad_value", "error", "status outside the enum, unparseable date, wrong type")
def bad_value(ctx: Context) -> Findings:
    frame = ctx.frame
    pos, message, fields = [], [], []
    status = frame["status"]
    wrong = np.flatnonzero((status.notna() & ~status.isin(list(STATUSES))).to_numpy())
    pos += wrong.tolist()
    fields += ["status"] * len(wrong)
    text = _("status {status!r} is not one of {known}")
    message += [text.format(status=s, known="/".join(STATUSES)) for s in status.to_numpy()[wrong]]
    initial = _initial_dates(ctx)
    order = np.flatnonzero(frame["change_date"].to_numpy(dtype="datetime64[ms]") < initial)
    pos += order.tolist()
    fields += ["change_date"] * len(order)
    text = _("change date {change:%Y-%m-%d} is before the initial date {initial:%Y-%m-%d}")
    message += [text.format(change=c, initial=s)
                for c, s in zip(frame["change_date"].to_numpy()[order].astype("datetime64[ms]").tolist(),
                                initial[order].tolist())]
    if ctx.registry is not None and "action" in frame:  # a retirement needs a registered component
        orphan = np.flatnonzero((frame["action"] == "retire").fillna(False).to_numpy() & (ctx.twins() < 0))
        pos += orphan.tolist()
        fields += ["action"] * len(orphan)
        message += [_("asks to retire a component that is not in the registry")] * len(orphan)
    if ctx.notes.get("bad_values"):
        row_pos = pd.Series(np.arange(len(frame)), index=frame["row"].to_numpy())
        for bad in ctx.notes["bad_values"]:
            if bad["row"] in row_pos.index:
                pos.append(int(row_pos[bad["row"]]))
                fields.append(bad["field"])
                message.append(_("{field} {value!r}: {reason}").format(
                    field=_label(bad["field"]), value=bad["value"], reason=bad["reason"]))
    return Findings(np.array(pos, dtype=int), np.array(message, dtype=object), field=np.array(fields, dtype=object))


def _initial_dates(ctx: Context) -> np.ndarray:
    """Each row's initial date after a merge: the registered one where the component has one."""
    given = ctx.frame["survey_date"].to_numpy(dtype="datetime64[ms]")
    if ctx.registry is None or not len(ctx.registry):
        return given
    twins = ctx.current_twins()
    registered = ctx.known_registry["survey_date"].to_numpy(dtype="datetime64[ms]")[np.maximum(twins, 0)]
    return np.where((twins >= 0) & ~np.isnat(registered), registered, given)


@rule("schema.initial_date_changed", "warning",
      "an update gives an existing component another initial date (初始日期): the registered one is kept",
      needs=("registry",))
def initial_date_changed(ctx: Context) -> Findings:
    """The initial date is the first survey's; a later batch cannot move it, so the merge keeps it."""
    twins = ctx.current_twins()
    given = ctx.frame["survey_date"].to_numpy(dtype="datetime64[D]")
    pos = np.flatnonzero((twins >= 0) & ~np.isnat(given))
    registered = ctx.known_registry["survey_date"].to_numpy(dtype="datetime64[D]")[twins[pos]]
    differs = ~np.isnat(registered) & (registered != given[pos])
    pos, registered = pos[differs], registered[differs]
    ids = ctx.values("component_id")[pos]
    text = _("{id}: the batch gives initial date {new} where the registry has {old}; the registered date is kept "
             "(the initial date is the first survey's; record later surveys as the change date)")
    message = [text.format(id=i, new=new, old=old) for i, new, old in zip(ids, given[pos], registered)]
    return Findings(pos, np.array(message, dtype=object), field="survey_date")


_LOST = ("\ufffd", "锟斤拷")  # the replacement character, and the same read back as GBK
# characters cp1252 puts where Latin-1 has control codes (UTF-8 read as Windows-1252)
_CP1252 = "".join(bytes([b]).decode("cp1252", errors="ignore") for b in range(0x80, 0xA0))
# text that can be such mojibake, found first by a vectorised regex (literal characters, not
# escapes: Arrow's RE2 reads the pattern too)
_SUSPECT = "[\u0080-\u00ff" + re.escape(_CP1252) + "\ufffd锟]|" + _UTF8_READ_AS_GBK
_WRONG_READS = (("latin-1", "utf-8"), ("latin-1", "gbk"), ("cp1252", "utf-8"), ("cp1252", "gbk"))


def looks_like_mojibake(text: str) -> str | None:
    """The text a wrongly decoded string should have been, "" if that is lost, or None.

    Catches GBK or UTF-8 bytes read as Latin-1 or Windows-1252, UTF-8 bytes read as GBK,
    and text whose reader put replacement characters (``�``, ``锟斤拷``) for bytes it
    could not decode.

    Examples
    --------
    >>> looks_like_mojibake("ÂÌµØ"), looks_like_mojibake("绿地"), looks_like_mojibake("São Paulo")
    ('绿地', None, None)
    >>> looks_like_mojibake("涓滅旱"), looks_like_mojibake("ä¸œçºµ"), looks_like_mojibake("��·��")
    ('东纵', '东纵', '')
    """
    if not _CJK.search(text) and sum(ord(ch) > 0x7F for ch in text) * 2 >= len(text.replace(" ", "")):
        # every character of Chinese text turns into 2 or 3 of these: mostly them, or none
        for wrong, right in _WRONG_READS:
            try:
                fixed = text.encode(wrong).decode(right)
            except (UnicodeEncodeError, UnicodeDecodeError):
                continue
            if _CJK.search(fixed):
                return fixed
    else:
        try:
            fixed = text.encode("gbk").decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            fixed = None
        if fixed and fixed != text and _CJK.search(fixed):
            return fixed
    return "" if any(mark in text for mark in _LOST) else None


@rule("schema.mojibake", "error", "text decoded with the wrong encoding (GBK read as Latin-1 etc.)")
def mojibake(ctx: Context) -> Findings:
    pos, message, fields = [], [], []
    for name in _TEXT_FIELDS:
        column = ctx.frame[name]
        values = pa.array(pd.Series(column.dropna().unique()).astype(str), type=pa.string())
        suspect = pc.match_substring_regex(values, _SUSPECT)
        fixes = {v: looks_like_mojibake(v) for v in values.filter(suspect).to_pylist()}
        fixes = {k: v for k, v in fixes.items() if v is not None}
        if not fixes:
            continue
        hit = np.flatnonzero(column.isin(list(fixes)).to_numpy())
        pos += hit.tolist()
        fields += [name] * len(hit)
        probably = _("{field} {value!r} looks like mis-decoded text (probably {fixed!r}); re-read the file with the "
                     "right encoding (--encoding gbk, or utf-8)")
        lost = _("{field} {value!r} looks like mis-decoded text (characters were lost in decoding); re-read the "
                 "file with the right encoding (--encoding gbk, or utf-8)")
        message += [(probably if fixes[column.iloc[p]] else lost).format(
            field=_label(name), value=column.iloc[p], fixed=fixes[column.iloc[p]]) for p in hit]
    return Findings(np.array(pos, dtype=int), np.array(message, dtype=object), field=np.array(fields, dtype=object))


_HOW = {"full-width": N_("full-width characters"), "spaces": N_("spaces around it dropped"),
        "chinese": N_("a Chinese date"), "excel": N_("an Excel date number"),
        "offset": N_("a time with a UTC offset, in the district's time"),
        "dms": N_("degrees, minutes and seconds as decimal degrees"),
        "ddm": N_("degrees and decimal minutes as decimal degrees"),
        "degrees": N_("degrees with a sign or hemisphere as decimal degrees"),
        "decimal comma": N_("a decimal comma")}
"""Why a value was read into another form (the ``how`` of ``notes["read_as"]``)."""


@rule("schema.read_as", "info",
      "a value read into another form (full-width digits, a Chinese date, an Excel date number, DMS coordinates …), "
      "or a note under a spreadsheet's table left unread", whole=True)
def read_as(ctx: Context) -> Findings:
    """What the reader made of values not written in the standard's form, so that the contractor can be told."""
    at = pd.Series(np.arange(len(ctx.frame)), index=ctx.frame["row"].to_numpy())
    notes = [note for note in ctx.notes.get("read_as") or [] if note["row"] in at.index]
    below = ctx.notes.get("notes_below") or {}
    text = _("{field} {value!r} read as {read!r} ({how})")
    said = _("row {row} ({text!r}) is a note under the table, not a component: not read")
    message = [said.format(row=row, text=note[:80]) for row, note in below.items()]
    message += [text.format(field=_label(note["field"]), value=note["value"], read=note["read"],
                            how=_(_HOW.get(note["how"], note["how"]))) for note in notes]
    pos = np.array([0] * len(below) + [at[note["row"]] for note in notes], dtype=int)
    whole = np.arange(len(pos)) < len(below)  # the notes below are rows of no component
    return Findings(pos, np.array(message, dtype=object),
                    geometry=np.where(whole, NONE, ctx.geoms[pos]) if len(pos) else None,
                    component_id=np.where(whole, NONE, ctx.values("component_id")[pos]) if len(pos) else None,
                    field=np.array([None] * len(below) + [note["field"] for note in notes], dtype=object),
                    whole=whole)


@rule("schema.unknown_column", "warning",
      "a column that is no field citygrid reads: its values are not kept (with the nearest known header)", whole=True)
def unknown_column(ctx: Context) -> Findings:
    """Each column the reader did not understand, once, so that no column of data is dropped unseen."""
    columns = ctx.notes.get("unknown_columns") or []
    if not columns:
        return Findings.none()
    near = _("column {name!r} is not a field citygrid reads, so its values are not kept; the nearest known header "
             "is {header!r} ({field}): if that is what it holds, read it with --columns '{field}={name}'")
    none = _("column {name!r} is not a field citygrid reads, so its values are not kept; citygrid headers lists "
             "the headers it reads, and --columns 'FIELD=HEADER' maps another one")
    message = [near.format(name=name, header=found[0], field=found[1]) if found else none.format(name=name)
               for name, found in columns]
    n = len(columns)
    return Findings(np.zeros(n, dtype=int), np.array(message, dtype=object), geometry=np.full(n, None),
                    component_id=np.full(n, None), layer="batch-level",
                    field=np.array([name for name, _found in columns], dtype=object))
