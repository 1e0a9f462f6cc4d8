"""Sphinx configuration of citygrid's documentation (English; the Chinese pages are in ``zh/``).

Build: ``sphinx-build -W -b html docs docs/_build/en`` and ``sphinx-build -W -b html docs/zh docs/_build/zh``
(``pip install -e '.[docs]'``). The rules reference and the CLI reference are generated from the code
at each build; the performance page includes ``benchmarks/RESULTS.md`` as the last run wrote it.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("CITYGRID_LANG", "en")

from _pages import write_rules  # noqa: E402

project = "citygrid"
author = "The citygrid authors"
copyright = "2026, The citygrid authors"
language = "en"
extensions = ["myst_nb", "numpydoc", "sphinx.ext.autodoc", "sphinx_click"]
exclude_patterns = ["_build", "zh", "_pages.py", "conf.py", "**/.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = "citygrid"
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
nb_execution_mode = os.environ.get("CITYGRID_DOCS_EXECUTE", "force")
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_in_temp = False
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]
nitpicky = False


def setup(app):  # noqa: D103
    app.connect("builder-inited", lambda app: write_rules(HERE / "reference" / "rules.md", language="en"))
