"""``python -m citygrid.cli``: the ``citygrid`` command."""

from citygrid.cli import app

app()
