"""Redact secret-looking command-line arguments before they are stored or shown.

A session keeps the command that ran (``metadata.argv``) and every face shows it; an
``--api-key=sk-…`` on that command line must not end up in the session store, a JSON
export or an HTML report. Values are replaced by ``***`` when the option's name says
it is secret (``--api-key``, ``--token``, ``--password``…), when an argument is a
``NAME=value`` pair with such a name, when a URL carries a password, or when the value
itself has the shape of a well-known credential (``sk-…``, ``ghp_…``, ``AKIA…``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"

# whole words only: --max-tokens and --author are not secrets
_SECRET_NAME = re.compile(
    r"(?<![a-z])(pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|apikey|"
    r"access[-_]?key|private[-_]?key|auth(orization)?|credentials?|cookie|"
    r"session[-_]?key|signature|dsn)(?![a-z])",
    re.IGNORECASE,
)
_OPTION = re.compile(r"^(--?[A-Za-z0-9][\w.-]*)=(.*)$", re.DOTALL)
_ASSIGNMENT = re.compile(r"^([A-Za-z_][\w.-]*)=(.*)$", re.DOTALL)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)(?P<pw>[^@/\s]+)(?=@)", re.I)
_CREDENTIAL = re.compile(
    r"^(sk-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|"
    r"github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|"
    r"AIza[0-9A-Za-z_-]{30,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+)$"
)


def _is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.lstrip("-")))


def _redact_value(value: str) -> str:
    if _CREDENTIAL.match(value):
        return MASK
    return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, value)


def redact_argv(argv: Iterable[str]) -> list[str]:
    """``argv`` with secret-looking values replaced by ``***`` (option names kept)."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        arg = str(arg)
        if hide_next:
            hide_next = False
            if not arg.startswith("-"):
                out.append(MASK)
                continue
        option = _OPTION.match(arg)
        if option and _is_secret_name(option.group(1)):
            out.append(f"{option.group(1)}={MASK}")
            continue
        assignment = _ASSIGNMENT.match(arg)
        if assignment and _is_secret_name(assignment.group(1)):
            out.append(f"{assignment.group(1)}={MASK}")
            continue
        if arg.startswith("-") and "=" not in arg and _is_secret_name(arg):
            out.append(arg)
            hide_next = True  # --token VALUE: the value is the next argument
            continue
        out.append(_redact_value(arg))
    return out
