"""The ``citygrid`` command: the daily work of a data team.

Exit codes: 0 clean (or accepted), 1 issues found (errors) or batch rejected, 2 cannot read
input, bad usage, or the registry is busy. Errors are one line on stderr; ``--debug``
shows the traceback.

Help and everything the command says are in Chinese with ``--lang zh`` or a Chinese locale
(``LANG=zh_CN.UTF-8``; ``CITYGRID_LANG`` wins over the locale), in English otherwise, from one
message catalog. Heavy libraries are imported only by the command that needs them, so
``--help`` is quick. One module per group of commands: ``batches`` (validate, ingest, check,
init), ``registry`` (stats, owner, export, history, allow, backup, upgrade, verify), ``maps``, ``events``
(dispatch) and ``demo``; ``_app`` holds the frame they share.
"""

from citygrid.cli import batches, demo, events, maps, registry  # noqa: F401  (they register the commands)
from citygrid.cli._app import app

__all__ = ["app"]
