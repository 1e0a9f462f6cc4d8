"""The errors citygrid raises: one root, :class:`CitygridError`.

Each error also inherits the builtin that fits it (as shapely's and pyogrio's errors do), so
a generic ``except ValueError`` or ``except OSError`` still catches what it expects, and
``except CitygridError`` catches everything citygrid raises on purpose. Every message names
the argument or file, the bad value (capped) and what to do.

Examples
--------
>>> import citygrid as cg
>>> try:
...     cg.load_catalog()["9999"]
... except cg.CitygridError as exc:
...     isinstance(exc, KeyError), type(exc).__name__
(True, 'NotFound')
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from citygrid._i18n import N_, _

__all__ = [
    "AccessDenied",
    "BatchError",
    "CatalogError",
    "CitygridError",
    "DistrictError",
    "InputError",
    "MapError",
    "MissingDependency",
    "MissingFile",
    "NotFound",
    "OutputError",
    "RegistryConflict",
    "RegistryError",
    "RegistryExists",
    "RegistryLocked",
    "RegistryNotFound",
    "RegistryUnavailable",
    "UsageError",
]


class CitygridError(Exception):
    """Root of every error citygrid raises on purpose."""


class UsageError(CitygridError, ValueError):
    """An argument has a value citygrid does not accept; the message lists what it does."""


class NotFound(CitygridError, KeyError):
    """A category, street, community or component that is not there; the message lists what is."""

    def __str__(self) -> str:  # KeyError would show the message quoted
        return str(self.args[0]) if self.args else ""


class InputError(CitygridError, ValueError):
    """An input file cannot be read as what it should be (encoding, columns, values)."""


class MissingDependency(CitygridError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require(module: str, purpose: str, extra: str) -> Any:
    """Import `module`, or say in one line which extra of citygrid brings it.

    Parameters
    ----------
    module : str
        The module to import, e.g. ``"psycopg"``.
    purpose : str
        What needs it, translated, e.g. ``_("a PostGIS registry")``.
    extra : str
        The extra that installs it: ``postgis``, ``fiona``, ``pandera`` or ``scale``.

    Examples
    --------
    >>> require("no_such_module", "a test", "postgis")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    citygrid.errors.MissingDependency: a test needs no_such_module, which is not installed: pip install ...
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(_("{purpose} needs {module}, which is not installed: pip install "
                                  "'citygrid[{extra}]'").format(purpose=purpose, module=module.split(".")[0],
                                                               extra=extra)) from None


class MissingFile(CitygridError, FileNotFoundError):
    """An input file does not exist."""


class CatalogError(InputError):
    """A catalog CSV is malformed; the message names the line and column."""


class DistrictError(InputError):
    """A district's files (profile, boundary, units, layers) are incomplete or malformed."""


class BatchError(InputError):
    """A survey batch cannot be read; the message says why and what to pass."""


class RegistryError(CitygridError, ValueError):
    """The registry refuses an operation; the message says why and what to do."""


class RegistryNotFound(MissingFile):
    """There is no registry at that path."""


class RegistryExists(CitygridError, FileExistsError):
    """A registry would be created over an existing file."""


class RegistryLocked(CitygridError, TimeoutError):
    """Another process held the registry's write lock longer than the timeout."""


class RegistryConflict(CitygridError, RuntimeError):
    """Other writers changed the registry under this merge; nothing was written, merge again."""


class RegistryUnavailable(CitygridError, ConnectionError):
    """The shared registry's database cannot be reached, or the connection broke."""


class AccessDenied(CitygridError, PermissionError):
    """The shared registry refused the change (a unit changes only what it owns or maintains)."""


class OutputError(CitygridError, OSError):
    """A file cannot be written where asked (no such folder, no permission, disk full …)."""


class BatchRejected(CitygridError, ValueError):
    """An ingest refused a batch for its errors (nothing was written); ``.report`` holds them."""

    def __init__(self, message: str, report=None) -> None:
        super().__init__(message)
        self.report = report


class MapError(CitygridError, ValueError):
    """A map cannot be drawn as asked (unknown basemap, missing key, empty selection …)."""


@contextlib.contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn a failure to write `path` into :class:`OutputError` naming it.

    The file system's own errors (``OSError``) and the vector drivers' (pyogrio's
    ``DataSourceError``, fiona's ``DriverError``) alike.
    """
    try:
        yield
    except CitygridError:
        raise
    except Exception as exc:
        if isinstance(exc, OSError) or type(exc).__module__.startswith(("pyogrio", "fiona")):
            raise OutputError(_("cannot write {path!r}: {reason}; choose a folder you may write to.").format(
                path=str(path), reason=os_reason(exc))) from exc
        raise


@contextlib.contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Write `path` whole or not at all: the caller writes the file this yields, moved into place when done.

    A failure on the way (a value a format cannot hold, a full disk, a killed process) leaves
    no half-written file that looks finished; a failure to write is :class:`OutputError`.
    """
    path = Path(path)
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    with writing(path):
        try:
            yield partial
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)


_ERRNO = {errno.ENOENT: N_("no such file or folder"), errno.EACCES: N_("permission denied"),
          errno.EPERM: N_("operation not permitted"), errno.ENOSPC: N_("the disk is full"),
          errno.EROFS: N_("the file system is read-only"), errno.EISDIR: N_("it is a folder"),
          errno.ENOTDIR: N_("a part of the path is not a folder"), errno.EEXIST: N_("it exists already"),
          errno.ENAMETOOLONG: N_("the name is too long"), errno.EDQUOT: N_("the disk quota is used up")}
"""The operating system's reasons a person meets, in the language in use."""


def os_reason(exc: BaseException) -> str:
    """Why a file operation failed, in the language in use where the operating system's errno says it.

    Examples
    --------
    >>> os_reason(FileNotFoundError(2, "No such file or directory"))
    'no such file or folder'
    """
    if isinstance(exc, OSError) and exc.errno in _ERRNO:
        return _(_ERRNO[exc.errno])
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
