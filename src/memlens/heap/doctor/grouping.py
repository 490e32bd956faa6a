"""One finding per leak: findings kept alive by one retainer become one.

A single registration often leaves several traces — the leaked value, its key, the
library's bookkeeping next to it (``receivers`` and ``_by_sender`` of one signal;
an engine's listener list and the event registry's index of it). They share a
retainer: the same named root object in the program, or the same library. The
biggest becomes the finding; the others' sites are listed under it and their bytes
added to it.
"""

from __future__ import annotations

from collections.abc import Callable

from memlens.heap.doctor.diagnosis import Finding

# Categories that describe how memory is kept without a path to a named root.
_STANDALONE = ("native", "gc_disabled_cycles")


def retainer(f: Finding) -> str:
    """What keeps ``f`` alive, at the granularity of "one leak"."""
    if f.category in _STANDALONE or not f.root:
        return f"{f.category}:{f.site}"
    if f.library:
        return f"library:{f.library}"
    parts = f.root.split(" → ")
    return " → ".join(parts[:2])


def group(
    findings: list[Finding], lead: Callable[[list[Finding]], int] | None = None
) -> list[Finding]:
    """Merge findings with one retainer; biggest first, related sites under it.

    ``lead`` may pick another member (by index, biggest first) to lead its group:
    the user's data a library's wrapper holds, rather than the wrapper.
    """
    by_key: dict[str, list[Finding]] = {}
    for f in findings:
        by_key.setdefault(retainer(f), []).append(f)
    out: list[Finding] = []
    for members in by_key.values():
        members.sort(key=lambda f: -f.bytes_per_iteration)
        if lead is not None and len(members) > 1:
            members.insert(0, members.pop(lead(members)))
        main, rest = members[0], members[1:]
        alone = main.bytes_per_iteration
        for other in rest:
            for site in [other.site, *other.related_sites]:
                if site != main.site and site not in main.related_sites:
                    main.related_sites.append(site)
            main.bytes_per_iteration += other.bytes_per_iteration
            main.growth_bytes += other.growth_bytes
            main.samples += other.samples
            for key, value in dict(other.evidence).items():
                main.evidence.setdefault(key, value)
        del alone
        out.append(main)
    out.sort(key=lambda f: -f.bytes_per_iteration)
    return out
