"""Sphinx configuration of the Chinese pages (中文文档): the guide, the command and rule references.

构建：``sphinx-build -W -b html docs/zh docs/_build/zh``。命令参考与规则一览在每次构建时由代码生成，
命令帮助与规则说明取自 citygrid 的中文消息目录。
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ["CITYGRID_LANG"] = "zh"  # the commands' help, read by sphinx-click, in Chinese

from _pages import write_rules  # noqa: E402

project = "citygrid"
author = "citygrid 作者"
copyright = "2026, citygrid 作者"
language = "zh_CN"
extensions = ["myst_parser", "sphinx_click"]
exclude_patterns = ["_build", "conf.py"]
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3
html_theme = "alabaster"
html_title = "citygrid 中文文档"
html_search_language = "zh"
suppress_warnings = ["myst.header"]


def setup(app):  # noqa: D103
    app.connect("builder-inited", lambda app: write_rules(HERE / "reference" / "rules.md", language="zh"))
