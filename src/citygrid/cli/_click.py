"""What click and typer say themselves (usage, option errors, help panels), in the run's language.

click and typer take their messages from :mod:`gettext`'s global domain. In a Chinese run the
command binds that domain to citygrid's catalog, which holds their messages that a user of
``citygrid`` meets (:data:`MESSAGES`), so a missing option or a wrong value is said in Chinese too.
"""

from __future__ import annotations

import gettext
import os
from importlib import resources

from citygrid._i18n import DOMAIN, N_, Nn_

MESSAGES = (
    N_("Usage:"), N_("Show this message and exit."), N_("Options"), N_("Arguments"), N_("Commands"), N_("Error"),
    N_("Aborted."), N_("Aborted!"), N_("[default: {}]"), N_("[env var: {}]"), N_("[required]"),
    N_("default: {default}"), N_("env var: {var}"),
    N_("Missing option"), N_("Missing argument"), N_("Missing parameter"), N_("Missing command."),
    N_("Missing {param_type}"), N_("Missing parameter: {param_name}"),
    N_("No such option: {name}"), N_("No such command {name!r}."), N_("Invalid value for {param_hint}: {message}"),
    N_("Invalid value: {message}"), N_("{value!r} is not a valid {number_type}."),
    N_("{value} is not in the range {range}."), N_("Option {name!r} does not take a value."),
    N_("Error: {message}"), N_("Try '{command} {option}' for help."),
    N_("Try [blue]'{command_path} {help_option}'[/] for help."), N_("Choose from:\n\t{choices}"),
    N_("file"), N_("directory"), N_("path"), N_("{name} {filename!r} does not exist."),
    N_("{name} {filename!r} is a directory."), N_("{name} {filename!r} is a file."),
    N_("{name} {filename!r} is not readable."), N_("{name} {filename!r} is not writable."),
    Nn_("Did you mean {possibility}?", "(Possible options: {possibilities})"),
    Nn_("Got unexpected extra argument ({args})", "Got unexpected extra arguments ({args})"),
    Nn_("Option {name!r} requires an argument.", "Option {name!r} requires {nargs} arguments."),
    Nn_("{value!r} is not {choice}.", "{value!r} is not one of {choices}."),
)
"""The messages of click and typer that ``citygrid`` shows, kept in citygrid's catalog."""


def speak(lang: str) -> None:
    """Let click and typer speak `lang` in this process (a command-line run)."""
    if lang != "zh":
        return
    with resources.as_file(resources.files("citygrid") / "locale") as folder:
        gettext.bindtextdomain(DOMAIN, str(folder))
    gettext.textdomain(DOMAIN)
    os.environ["LANGUAGE"] = "zh_CN"
