"""The one terminal face of a :class:`~memlens.core.findings.Finding`.

Every producer's findings print as the same block (the doctor's report, the
context diagnosis, monitor leak alerts)::

    LEAK  app/cache.py:53  growing collection  +2.0 KiB per call (…)
      allocated at   cache.py:53 in _store  ← _consolidate:41 ← handle:18
      held by        module app.cache → global _cache (dict, 12,034 entries) → …
      why            entries are added on every call and never removed
      fix (5 min)    bound it: functools.lru_cache(maxsize=1000)     frees ≈ 19 MiB
      or             remove entries when done · hold values weakly

Domain details (``stack``, ``source``, ``library``…) print when the finding has them.
Every text in a finding comes from the user's program (file, function and key names,
source lines, type names), so it is shown as text: never parsed as markup, and
characters that would act on the terminal are printed as escapes (``report/safe.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Group
from rich.text import Text

from memlens.core.findings import TOKENS, Finding
from memlens.core.units import format_bytes, format_tokens
from memlens.report.safe import printable

LABEL_WIDTH = 15  # width of the left column

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "dim"}


def amount_text(amount: float, unit: str, signed: bool = False) -> str:
    """``+2.0 KiB`` or ``12.0k tokens``."""
    if unit == TOKENS:
        return ("+" if signed and amount > 0 else "") + format_tokens(int(amount))
    return format_bytes(amount, signed=signed)


def row(label: str, body: Text | str, style: str = "") -> Text:
    """One ``  label          body`` line."""
    out = Text("  " + label.ljust(LABEL_WIDTH), style="dim")
    out.append_text(body if isinstance(body, Text) else Text(printable(body), style=style))
    return out


def _short_frame(text: str, first: bool) -> str:
    # "pkg/file.py:41 in fn" -> "fn:41" after the first frame.
    if first:
        return text
    loc, _, fn = text.partition(" in ")
    line = loc.rsplit(":", 1)[-1]
    return f"{fn or loc}:{line}"


def path_text(f: Finding) -> str:
    """The retained-by path, root first, with collection sizes."""
    if not f.path:
        return f.root or "unknown root"
    parts = []
    for i, hop in enumerate(f.path):
        if i == 0:
            parts.append(hop.label)
            continue
        label = hop.label
        if "entries" in hop.detail:
            label += f" ({hop.detail})"
        elif i == len(f.path) - 1:
            label += f" {hop.type_name.rsplit('.', 1)[-1]}"
        parts.append(label)
    return " → ".join(parts)


def finding_block(
    f: Finding,
    *,
    label: str | None = None,
    labels: Mapping[str, str] | None = None,
    per_word: str | None = None,
    head_note: str = "",
    saving_note: str = "",
) -> Group:
    """The block for one finding.

    ``label`` is the head word (default: the severity), ``labels`` maps categories to
    words, ``per_word`` says a rate's unit ("call"), ``head_note`` follows the head
    and ``saving_note`` follows "frees ≈ X".
    """
    head = Text()
    head.append(label or f.severity.upper(), style=SEVERITY_STYLE.get(f.severity, "bold red"))
    if f.site:
        head.append(f"  {printable(f.site, one_line=True)}", style="bold")
    head.append("  ")
    head.append((labels or {}).get(f.category, f.category.replace("_", " ")), style="yellow")
    if f.amount:
        text = amount_text(f.amount, f.unit, signed=bool(f.per))
        head.append(f"  {text}" + (f" per {per_word or f.per}" if f.per else ""))
    if head_note:
        head.append(head_note, style="dim")
    rows: list[Text] = [head]
    if f.summary:
        rows.append(row("what", f.summary))
    stack: list[str] = getattr(f, "stack", [])
    if stack:
        rows.append(
            row("allocated at", "  ← ".join(_short_frame(s, i == 0) for i, s in enumerate(stack)))
        )
    source: str = getattr(f, "source", "")
    if source:
        rows.append(row("source", source, "cyan"))
    if f.items:
        more = " …" if len(f.items) > 8 else ""
        rows.append(row("items", ", ".join(f.items[:8]) + more))
    if f.path or f.root or f.site:
        objects = getattr(f, "objects_per_iteration", 0.0)
        per_obj = f" · {objects:.2g} objects per {per_word or f.per}" if objects else ""
        rows.append(row("held by", path_text(f) + per_obj))
    library = getattr(f, "library", None)
    if library:
        call = getattr(f, "public_call", None)
        rows.append(row("library", f"{library}, via {call or 'a library call'}"))
    if f.why:
        rows.append(row("why", f.why))
    if f.remedies:
        top = f.remedies[0]
        lines = top.snippet.splitlines() if top.snippet else []
        # A one-line fix reads inline; a longer one prints whole, one line each,
        # so it can be pasted as it is.
        body = Text(printable(f"{top.title}: {lines[0]}" if len(lines) == 1 else top.title))
        if top.saving:
            body.append(
                f"     frees ≈ {amount_text(top.saving, top.unit)}{saving_note}", style="green"
            )
        if len(lines) > 1:
            for line in lines:
                body.append("\n    " + printable(line, one_line=True))
        rows.append(row(f"fix ({top.effort})" if top.effort else "fix", body))
        rest = " · ".join(r.title for r in f.remedies[1:])
        if rest:
            rows.append(row("or", rest))
    return Group(*rows)
