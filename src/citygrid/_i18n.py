"""The language of what citygrid says: messages from one gettext catalog, English or Chinese.

Every sentence a user reads (issue messages, errors, report and map text, the command's
output) is written once, in English, inside ``_()``; its Chinese is in
``locale/zh_CN/LC_MESSAGES/citygrid.po`` (compiled to ``.mo``, read by the standard library's
:mod:`gettext`). Text kept in a constant is marked with ``N_()`` and translated where it is
shown. Placeholders are named (``_("{n} m outside {district}").format(n=..., district=...)``)
so that a translation may put them in another order.

The language is ``settings.language`` (``"en"`` or ``"zh"``, from ``CITYGRID_LANG`` or the
locale), or the one given to :func:`using` for a block of code, as the command line does for
``--lang``. Maintainers update the catalog with Babel (``babel.cfg`` and the commands in
``docs/contributing.md``); a test fails when a message has no Chinese.

Examples
--------
>>> with using("zh"):
...     _("error")
'错误'
>>> with using("en"):
...     _("error")
'error'
"""

from __future__ import annotations

import contextlib
import contextvars
import gettext
from collections.abc import Iterator
from functools import cache
from importlib import resources

from citygrid import settings

LANGUAGES = ("en", "zh")
DOMAIN = "citygrid"
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("citygrid_language", default=None)


def normalise_language(value: str | None) -> str:
    """``"zh"`` for any Chinese tag (``zh``, ``zh_CN.UTF-8``, ``zh-Hans``), else ``"en"``.

    Examples
    --------
    >>> normalise_language("zh_CN.UTF-8"), normalise_language("C.UTF-8"), normalise_language(None)
    ('zh', 'en', 'en')
    """
    return "zh" if (value or "").strip().lower().startswith("zh") else "en"


def language() -> str:
    """The language in use here: :func:`using`'s, else ``settings.language``."""
    return normalise_language(_current.get() or settings.language)


@contextlib.contextmanager
def using(lang: str | None) -> Iterator[str]:
    """Speak `lang` (``"en"``, ``"zh"``; None keeps the current one) inside the block."""
    token = _current.set(normalise_language(lang) if lang else language())
    try:
        yield language()
    finally:
        _current.reset(token)


@cache
def _catalog(lang: str) -> gettext.NullTranslations:
    if lang == "en":
        return gettext.NullTranslations()
    folder = resources.files("citygrid") / "locale"
    with resources.as_file(folder) as path:
        return gettext.translation(DOMAIN, localedir=str(path), languages=["zh_CN"])


def _(message: str) -> str:
    """`message` (English, the catalog's id) in the language in use."""
    return _catalog(language()).gettext(message)


def translate(message: str, lang: str) -> str:
    """`message` in `lang`, whatever the language in use (the command line's help, made at import)."""
    return _catalog(normalise_language(lang)).gettext(message)


def set_language(lang: str) -> None:
    """Speak `lang` from now on in this context (the command line, once per run; elsewhere use :func:`using`)."""
    _current.set(normalise_language(lang))


def N_(message: str) -> str:
    """Mark `message` for the catalog without translating it yet (translate it with ``_()`` where shown)."""
    return message


def Nn_(singular: str, plural: str) -> tuple[str, str]:
    """Mark a message with a plural form for the catalog (a library's ``ngettext`` looks it up)."""
    return singular, plural


def list_text(items: list[str]) -> str:
    """Items joined as the language joins a list: ``a, b`` or ``a、b``.

    Examples
    --------
    >>> with using("zh"):
    ...     list_text(["甲", "乙"])
    '甲、乙'
    """
    return ("、" if language() == "zh" else ", ").join(items)
