"""Redact secret-looking command-line arguments before they are stored or shown.

A session keeps the command that ran (``metadata.argv``) and every face shows it; an
``--api-key=sk-…`` on that command line must not end up in the session store, a JSON
export or an HTML report. Values are replaced by ``***`` when the option's name says
it is secret (``--api-key``, ``--token``, ``--password``…), when an argument is a
``NAME=value`` pair with such a name, when a URL carries a password, or when the value
itself has the shape of a well-known credential (``sk-…``, ``ghp_…``, ``AKIA…``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

MASK = "***"

# Cheap tests first: the patterns are compiled on first need, so an argv without
# anything secret-looking (the always-on monitor's usual ``app.py``) costs no
# regex compilation (about 5 ms at import otherwise).
_NAME_STEMS = (
    "pass", "pwd", "secret", "token", "api", "access", "private", "auth",
    "credential", "cookie", "session", "signature", "dsn",
)  # fmt: skip
_CREDENTIAL_PREFIXES = ("sk-", "gh", "github_pat_", "xox", "AKIA", "AIza", "eyJ")


@functools.cache
def _patterns() -> dict[str, re.Pattern[str]]:
    return {
        # whole words only: --max-tokens and --author are not secrets
        "secret_name": re.compile(
            r"(?<![a-z])(pass(word|wd|phrase)?|pwd|secret|token|api[-_]?key|apikey|"
            r"access[-_]?key|private[-_]?key|auth(orization)?|credentials?|cookie|"
            r"session[-_]?key|signature|dsn)(?![a-z])",
            re.IGNORECASE,
        ),
        "option": re.compile(r"^(--?[A-Za-z0-9][\w.-]*)=(.*)$", re.DOTALL),
        "assignment": re.compile(r"^([A-Za-z_][\w.-]*)=(.*)$", re.DOTALL),
        "url_password": re.compile(
            r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)(?P<pw>[^@/\s]+)(?=@)", re.I
        ),
        "credential": re.compile(
            r"^(sk-[A-Za-z0-9_-]{16,}|sk-ant-[A-Za-z0-9_-]{16,}|gh[pousr]_[A-Za-z0-9]{20,}|"
            r"github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}|"
            r"AIza[0-9A-Za-z_-]{30,}|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+)$"
        ),
    }


def _is_secret_name(name: str) -> bool:
    name = name.lstrip("-")
    lowered = name.lower()
    if not any(stem in lowered for stem in _NAME_STEMS):
        return False
    return bool(_patterns()["secret_name"].search(name))


def _redact_value(value: str) -> str:
    if value.startswith(_CREDENTIAL_PREFIXES) and _patterns()["credential"].match(value):
        return MASK
    if "://" not in value or "@" not in value:
        return value
    return _patterns()["url_password"].sub(lambda m: m.group("head") + MASK, value)


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
        if "=" in arg:
            option = _patterns()["option"].match(arg)
            if option and _is_secret_name(option.group(1)):
                out.append(f"{option.group(1)}={MASK}")
                continue
            assignment = _patterns()["assignment"].match(arg)
            if assignment and _is_secret_name(assignment.group(1)):
                out.append(f"{assignment.group(1)}={MASK}")
                continue
        if arg.startswith("-") and "=" not in arg and _is_secret_name(arg):
            out.append(arg)
            hide_next = True  # --token VALUE: the value is the next argument
            continue
        out.append(_redact_value(arg))
    return out
