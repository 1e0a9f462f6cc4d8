"""Rules on fields and values: ``schema.*``."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

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
    pos = np.flatnonzero(empty.any(axis=1))
    names = np.array([f"{f} ({_LABELS[f]})" for f in fields], dtype=object)
    message = [f"required field(s) empty: {', '.join(names[empty[p]])}" for p in pos]
    return Findings(pos, np.array(message, dtype=object))


@rule("schema.unknown_category", "error", "category code not in the catalog")
def unknown_category(ctx: Context) -> Findings:
    cats = ctx.frame["category"]
    unknown = cats.notna() & ~cats.isin(list(_known_codes(ctx)))
    pos = np.flatnonzero(unknown.to_numpy())
    message = [f"category {c!r} is not in the catalog of {len(ctx.catalog)} categories"
               for c in cats.to_numpy()[pos]]
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
    message += [f"status {s!r} is not one of {'/'.join(STATUSES)}" for s in status.to_numpy()[wrong]]
    order = np.flatnonzero((frame["change_date"] < frame["survey_date"]).to_numpy())
    pos += order.tolist()
    message += [f"change date {c:%Y-%m-%d} is before the initial date {s:%Y-%m-%d}"
                for c, s in zip(frame["change_date"].to_numpy()[order].astype("datetime64[ms]").tolist(),
                                frame["survey_date"].to_numpy()[order].astype("datetime64[ms]").tolist())]
    if ctx.registry is not None and "action" in frame:  # a retirement needs a registered component
        orphan = np.flatnonzero((frame["action"] == "retire").fillna(False).to_numpy() & (ctx.twins() < 0))
        pos += orphan.tolist()
        message += ["asks to retire a component that is not in the registry"] * len(orphan)
    if ctx.notes.get("bad_values"):
        row_pos = pd.Series(np.arange(len(frame)), index=frame["row"].to_numpy())
        for bad in ctx.notes["bad_values"]:
            if bad["row"] in row_pos.index:
                pos.append(int(row_pos[bad["row"]]))
                message.append(f"{bad['field']} {bad['value']!r}: {bad['reason']}")
    return Findings(np.array(pos, dtype=int), np.array(message, dtype=object))


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
        message += [f"{name} {column.iloc[p]!r} looks like mis-decoded text ("
                    + (f"probably {fixes[column.iloc[p]]!r}" if fixes[column.iloc[p]] else
                       "characters were lost in decoding") + "); re-read the file with the right encoding "
                    "(citygrid validate --encoding gbk, or utf-8)" for p in hit]
    return Findings(np.array(pos, dtype=int), np.array(message, dtype=object))
