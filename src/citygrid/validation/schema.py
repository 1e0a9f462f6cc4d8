"""Rules on fields and values: ``schema.*``."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from citygrid._i18n import _, language, list_text
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


@rule("schema.missing_field", "error", "a required field absent or empty")
def missing_field(ctx: Context) -> Findings:
    fields = [f for f in REQUIRED_FIELDS if f != "component_id"]
    empty = np.column_stack([ctx.frame[f].isna().to_numpy() for f in fields])
    unread = {(bad["row"], bad["field"]) for bad in ctx.notes.get("bad_values") or []}
    if unread:  # a value that could not be read is schema.bad_value, not also an empty field
        rows = ctx.frame["row"].to_numpy()
        for k, f in enumerate(fields):
            empty[:, k] &= ~np.isin(rows, [r for r, name in unread if name == f])
    pos = np.flatnonzero(empty.any(axis=1))
    names = np.array([_LABELS[f] if language() == "zh" else f for f in fields], dtype=object)
    text = _("required field(s) empty: {fields}")
    message = [text.format(fields=list_text(names[empty[p]].tolist())) for p in pos]
    return Findings(pos, np.array(message, dtype=object))


@rule("schema.unknown_category", "error", "category code not in the catalog")
def unknown_category(ctx: Context) -> Findings:
    cats = ctx.frame["category"]
    unknown = cats.notna() & ~cats.isin(list(_known_codes(ctx)))
    pos = np.flatnonzero(unknown.to_numpy())
    text = _("category {category!r} is not in the catalog of {n} categories")
    message = [text.format(category=c, n=len(ctx.catalog)) for c in cats.to_numpy()[pos]]
    return Findings(pos, np.array(message, dtype=object))


def _known_codes(ctx: Context) -> set[str]:
    return {c.code for c in ctx.catalog} | {c.code_2026 for c in ctx.catalog}


@rule("schema.bad_value", "error", "status outside the enum, unparseable date, wrong type")
def bad_value(ctx: Context) -> Findings:
    frame = ctx.frame
    pos, message = [], []
    status = frame["status"]
    wrong = np.flatnonzero((status.notna() & ~status.isin(list(STATUSES))).to_numpy())
    pos += wrong.tolist()
    text = _("status {status!r} is not one of {known}")
    message += [text.format(status=s, known="/".join(STATUSES)) for s in status.to_numpy()[wrong]]
    initial = _initial_dates(ctx)
    order = np.flatnonzero(frame["change_date"].to_numpy(dtype="datetime64[ms]") < initial)
    pos += order.tolist()
    text = _("change date {change:%Y-%m-%d} is before the initial date {initial:%Y-%m-%d}")
    message += [text.format(change=c, initial=s)
                for c, s in zip(frame["change_date"].to_numpy()[order].astype("datetime64[ms]").tolist(),
                                initial[order].tolist())]
    if ctx.registry is not None and "action" in frame:  # a retirement needs a registered component
        orphan = np.flatnonzero((frame["action"] == "retire").fillna(False).to_numpy() & (ctx.twins() < 0))
        pos += orphan.tolist()
        message += [_("asks to retire a component that is not in the registry")] * len(orphan)
    if ctx.notes.get("bad_values"):
        row_pos = pd.Series(np.arange(len(frame)), index=frame["row"].to_numpy())
        for bad in ctx.notes["bad_values"]:
            if bad["row"] in row_pos.index:
                pos.append(int(row_pos[bad["row"]]))
                message.append(_("{field} {value!r}: {reason}").format(
                    field=_LABELS.get(bad["field"], bad["field"]) if language() == "zh" else bad["field"],
                    value=bad["value"], reason=bad["reason"]))
    return Findings(np.array(pos, dtype=int), np.array(message, dtype=object))


def _initial_dates(ctx: Context) -> np.ndarray:
    """Each row's initial date after a merge: the registered one where the component has one."""
    given = ctx.frame["survey_date"].to_numpy(dtype="datetime64[ms]")
    if ctx.registry is None or not len(ctx.registry):
        return given
    twins = ctx.current_twins()
    registered = ctx.registry["survey_date"].to_numpy(dtype="datetime64[ms]")[np.maximum(twins, 0)]
    return np.where((twins >= 0) & ~np.isnat(registered), registered, given)


@rule("schema.initial_date_changed", "warning",
      "an update gives an existing component another initial date (初始日期): the registered one is kept",
      needs=("registry",))
def initial_date_changed(ctx: Context) -> Findings:
    """The initial date is the first survey's; a later batch cannot move it, so the merge keeps it."""
    twins = ctx.current_twins()
    given = ctx.frame["survey_date"].to_numpy(dtype="datetime64[D]")
    pos = np.flatnonzero((twins >= 0) & ~np.isnat(given))
    registered = ctx.registry["survey_date"].to_numpy(dtype="datetime64[D]")[twins[pos]]
    differs = ~np.isnat(registered) & (registered != given[pos])
    pos, registered = pos[differs], registered[differs]
    ids = ctx.values("component_id")[pos]
    text = _("{id}: the batch gives initial date {new} where the registry has {old}; the registered date is kept "
             "(the initial date is the first survey's; record later surveys as the change date)")
    message = [text.format(id=i, new=new, old=old) for i, new, old in zip(ids, given[pos], registered)]
    return Findings(pos, np.array(message, dtype=object))


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
    pos, message = [], []
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
        probably = _("{field} {value!r} looks like mis-decoded text (probably {fixed!r}); re-read the file with the "
                     "right encoding (--encoding gbk, or utf-8)")
        lost = _("{field} {value!r} looks like mis-decoded text (characters were lost in decoding); re-read the "
                 "file with the right encoding (--encoding gbk, or utf-8)")
        label = _LABELS[name] if language() == "zh" else name
        message += [(probably if fixes[column.iloc[p]] else lost).format(
            field=label, value=column.iloc[p], fixed=fixes[column.iloc[p]]) for p in hit]
    return Findings(np.array(pos, dtype=int), np.array(message, dtype=object))
