"""Fit quality: memlens ``fit_messages`` beside oldest-first truncation and LangChain.

    python benchmarks/context/fit_quality.py                  # the figures in docs/context.md
    python benchmarks/context/fit_quality.py --budgets 500    # a quicker run

For each generated agent session (``fit_sessions.py``: >= 500 turns, tool calls, file
reads, test logs with errors, decisions, user constraints, planted probes), fit the
request to 50 %, 25 % and 10 % of its size with three methods, side by side in one
run:

* **memlens** — ``memlens.fit_messages`` (extractive, offline; the session's first
  rule pinned, the last 2 turns kept);
* **truncate** — drop the oldest messages after the system prompt until it fits;
* **langchain** — ``langchain_core.messages.trim_messages`` (strategy ``last``,
  system kept, starting on a human message), given a per-message token counter with
  the same encoding.

Reported per size: probe recall (the probe's exact string anywhere in the fitted
request, verbatim or inside a summary), kept/original tokens, orphaned tool calls and
results, whether the list is one the OpenAI API accepts, the pinned rule kept, and for
memlens the measured ratio of each level. Then fit success over random budgets on
smaller sessions (every budget between what must be kept and the original), and
milliseconds per 100k tokens with a cold token cache (counting included), beside the
time counting alone takes in the same run. Every size is measured by the profiler's
own OpenAI reader.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_sessions import Probe, generate  # noqa: E402

from memlens.context.memory import BudgetError, fit_messages, keepset  # noqa: E402
from memlens.context.memory.messages import RequestFitter, measure  # noqa: E402
from memlens.context.tokens import get_counter, load_encoding  # noqa: E402

FMT = "openai-chat"
COUNTER = get_counter("cl100k_base")
SIZES = (0.50, 0.25, 0.10)
KEEP_TURNS = 2


def tokens(messages: list[dict[str, Any]]) -> int:
    return measure(messages, FMT, model=None, system=None, tools=None, counter=COUNTER)


# ---------------------------------------------------------------- baselines
def truncate(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """Oldest first: drop messages after the system prompt until the request fits."""
    head, rest = messages[:1], list(messages[1:])
    costs = [tokens([m]) for m in rest]
    total = tokens(messages)
    start = 0
    while start < len(rest) and total > budget:
        total -= costs[start]
        start += 1
    out = head + rest[start:]
    while len(out) > 1 and tokens(out) > budget:
        out.pop(1)
    return out


def langchain_trim(messages: list[dict[str, Any]], budget: int) -> list[dict[str, Any]] | None:
    try:
        from langchain_core.messages import convert_to_messages, convert_to_openai_messages
        from langchain_core.messages import trim_messages as lc_trim
    except ImportError:
        return None

    def one(message: Any) -> int:
        text = message.content if isinstance(message.content, str) else str(message.content)
        calls = getattr(message, "tool_calls", None) or []
        extra = sum(COUNTER.count(str(c.get("args", ""))) + 8 for c in calls)
        return COUNTER.count(text) + 4 + extra

    def count(batch: list[Any]) -> int:
        return sum(one(m) for m in batch)

    trimmed = lc_trim(
        convert_to_messages(messages),
        max_tokens=budget - 3,
        token_counter=count,
        strategy="last",
        include_system=True,
        start_on="human",
        allow_partial=False,
    )
    return list(convert_to_openai_messages(trimmed))


# ---------------------------------------------------------------- measures
def blob(messages: list[dict[str, Any]]) -> str:
    return "\n".join(plain_texts(messages))


def orphans(messages: list[dict[str, Any]]) -> int:
    calls = {c["id"] for m in messages for c in m.get("tool_calls") or []}
    results = {m.get("tool_call_id") for m in messages if m.get("role") == "tool"}
    return len(calls - results) + len(results - calls)


def api_problems(messages: list[dict[str, Any]]) -> int:
    """Rules of the OpenAI chat API: a tool message answers the assistant call before it;
    an assistant's calls are all answered before the next other message."""
    problems = 0
    pending: set[str] = set()
    for m in messages:
        if m.get("role") == "tool":
            if m.get("tool_call_id") not in pending:
                problems += 1
            pending.discard(m.get("tool_call_id"))
            continue
        if pending:
            problems += 1
            pending = set()
        if m.get("role") == "assistant" and m.get("tool_calls"):
            pending = {c["id"] for c in m["tool_calls"]}
    return problems + (1 if pending else 0)


def recall(messages: list[dict[str, Any]], probes: list[Probe]) -> float:
    text = blob(messages)
    found = sum(1 for p in probes if p.text in text)
    return found / len(probes) if probes else 1.0


def last_turns(messages: list[dict[str, Any]], n: int) -> list[dict[str, Any]]:
    users = [i for i, m in enumerate(messages) if m["role"] == "user"]
    return messages[users[-n] :] if len(users) >= n else messages[1:]


# ---------------------------------------------------------------- runs
def quality(sessions: list[tuple[list[dict[str, Any]], list[Probe]]]) -> dict[str, Any]:
    rows: dict[tuple[str, float], list[dict[str, float]]] = {}
    levels: dict[float, dict[str, list[float]]] = {}
    for messages, probes in sessions:
        probes = [p for p in probes if p.kind != "pinned"]
        pinned = messages[1]
        before = tokens(messages)
        for share in SIZES:
            budget = int(before * share)
            outputs: dict[str, list[dict[str, Any]] | None] = {}
            result = fit_messages(messages, budget=budget, pinned=[1], keep_last_turns=KEEP_TURNS)
            outputs["memlens"] = result.messages
            for name, row in result.report.per_level.items():
                levels.setdefault(share, {}).setdefault(name, []).append(float(row["ratio"]))
            outputs["truncate"] = truncate(messages, budget)
            outputs["langchain"] = langchain_trim(messages, budget)
            for method, out in outputs.items():
                if out is None:
                    continue
                after = tokens(out)
                rows.setdefault((method, share), []).append(
                    {
                        "recall": recall(out, probes),
                        "ratio": after / before,
                        "fits": float(after <= budget),
                        "orphans": float(orphans(out)),
                        "invalid": float(api_problems(out) > 0),
                        "pinned": float(pinned in out),
                    }
                )
    return {"rows": rows, "levels": levels}


def random_budgets(
    count: int,
    seed: int,
    turns: int,
    size: float,
    sessions: int,
    progress: bool = False,
    first_session: int = 1000,
) -> dict[str, Any]:
    """``count`` random budgets over ``sessions`` generated sessions of ``turns`` turns
    (tool outputs scaled by ``size``), each fit checked whole: within budget, no orphaned
    tool pair, API-valid, pinned rule kept, last turns verbatim. Each session is read
    once by a :class:`RequestFitter`, which gives what ``fit_messages`` gives."""
    rng = random.Random(seed)
    prepared = []
    for i in range(sessions):
        messages = generate(turns, seed=first_session + i, size=size)[0]
        floor = tokens([messages[0], messages[1], *last_turns(messages, KEEP_TURNS)]) + 64
        fitter = RequestFitter(messages, pinned=[1], keep_last_turns=KEEP_TURNS)
        prepared.append((messages, floor, fitter, last_turns(messages, KEEP_TURNS)))
    stats: dict[str, Any] = {
        "sessions": [f.tokens_before for _, _, f, _ in prepared],
        "turns": turns,
        "budgets": 0,
        "fit": 0,
        "orphans": 0,
        "invalid": 0,
        "pinned_lost": 0,
        "last_turns_changed": 0,
        "failed": 0,
        "below_floor": 0,
        "refused": 0,
        "remeasured": 0,
        "count_mismatch": 0,
    }
    started = time.perf_counter()
    for i in range(count):
        messages, floor, fitter, tail = prepared[i % len(prepared)]
        if rng.random() < 0.05:  # a few budgets below what must be kept: a clear refusal
            budget = rng.randrange(max(1, floor // 3), floor - 64)
            stats["below_floor"] += 1
            try:
                fitter.fit(budget)
            except BudgetError:
                stats["refused"] += 1
            continue
        budget = rng.randrange(floor, fitter.tokens_before + 1)
        stats["budgets"] += 1
        try:
            result = fitter.fit(budget)
        except BudgetError:
            stats["failed"] += 1
            continue
        out = result.messages
        # every fit's own exact count, and every 10th fit measured again from scratch by
        # the profiler's reader (the whole list: no shortcut of the fitter's)
        fits = result.tokens_after <= budget
        if stats["budgets"] % 10 == 1:
            stats["remeasured"] += 1
            again = tokens(out)
            stats["count_mismatch"] += int(again != result.tokens_after)
            fits = fits and again <= budget
        stats["fit"] += int(fits)
        stats["orphans"] += orphans(out)
        stats["invalid"] += int(api_problems(out) > 0)
        stats["pinned_lost"] += int(messages[1] not in out)
        stats["last_turns_changed"] += int(out[-len(tail) :] != tail)
        if progress and (i + 1) % 250 == 0:
            stats["seconds"] = time.perf_counter() - started
            print(f"after {i + 1:,} budgets:", end="")
            _print_budgets(stats)
            sys.stdout.flush()
    stats["seconds"] = time.perf_counter() - started
    return stats


def _print_budgets(stats: dict[str, Any]) -> None:
    ok = stats["fit"]
    sizes = ", ".join(f"{t:,}" for t in stats["sessions"])
    print(
        f"\nrandom budgets on {len(stats['sessions'])} sessions of {stats['turns']} turns "
        f"({sizes} tokens): {stats['budgets']:,} between what must be kept and the "
        f"original: fit {ok:,} ({ok / max(1, stats['budgets']):.2%}), failed "
        f"{stats['failed']}, orphaned tool pairs {stats['orphans']}, API-invalid "
        f"{stats['invalid']}, pinned lost {stats['pinned_lost']}, last turns changed "
        f"{stats['last_turns_changed']}; {stats['below_floor']} below it: refused with "
        f"BudgetError {stats['refused']}; {stats['remeasured']:,} fits measured again from "
        f"scratch by the reader: {stats['count_mismatch']} differed from the fit's own count "
        f"({stats['seconds']:.0f} s)"
    )


def plain_texts(messages: list[dict[str, Any]]) -> list[str]:
    """Every text of a request (contents, call arguments) as tiktoken's plain encode
    would see it: the floor any exact count of the request has to pay."""
    out = []
    for m in messages:
        content = m.get("content")
        out.append(content if isinstance(content, str) else str(content or ""))
        for call in m.get("tool_calls") or []:
            out.append(str(call.get("function", {}).get("arguments", "")))
    return out


def timing(
    sessions: list[tuple[list[dict[str, Any]], list[Probe]]], rounds: int = 1
) -> dict[str, float]:
    """Milliseconds per 100k tokens, each method timed right after the plain encode of
    the same request (so the ratios hold under a noisy machine's load)."""
    encoding = load_encoding("cl100k_base")
    fit_ms, count_ms, plain_ms, lc_ms = [], [], [], []
    fit_ratio, count_ratio = [], []
    for _ in range(rounds):
        for messages, _ in sessions:
            before = tokens(messages)
            texts = plain_texts(messages)
            per = 1000 * 100_000 / before
            for share in SIZES:
                t0 = time.perf_counter()
                for text in texts:
                    encoding.encode_ordinary(text)
                plain = (time.perf_counter() - t0) * per
                plain_ms.append(plain)
                COUNTER.clear()
                t0 = time.perf_counter()
                tokens(messages)
                count_ms.append((time.perf_counter() - t0) * per)
                count_ratio.append(count_ms[-1] / plain)
                COUNTER.clear()
                keepset.clear_cache()
                t0 = time.perf_counter()
                fit_messages(
                    messages, budget=int(before * share), pinned=[1], keep_last_turns=KEEP_TURNS
                )
                fit_ms.append((time.perf_counter() - t0) * per)
                fit_ratio.append(fit_ms[-1] / plain)
                COUNTER.clear()
                t0 = time.perf_counter()
                if langchain_trim(messages, int(before * share)) is not None:
                    lc_ms.append((time.perf_counter() - t0) * per)
    return {
        "fit": statistics.median(fit_ms),
        "count": statistics.median(count_ms),
        "plain": statistics.median(plain_ms),
        "fit_ratio": statistics.median(fit_ratio),
        "count_ratio": statistics.median(count_ratio),
        "langchain": statistics.median(lc_ms) if lc_ms else float("nan"),
    }


def _print_timing(times: dict[str, float]) -> None:
    print(
        f"\nms per 100k tokens, cold token cache: memlens fit {times['fit']:.1f}, "
        f"{times['fit_ratio']:.2f}x tiktoken's plain encode of the same texts "
        f"({times['plain']:.1f}); counting through the profiler's reader {times['count']:.1f} "
        f"({times['count_ratio']:.2f}x); langchain trim_messages {times['langchain']:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--budgets", type=int, default=10_000)
    parser.add_argument(
        "--budget-turns",
        type=int,
        default=500,
        help="turns of the sessions the random budgets run on",
    )
    parser.add_argument(
        "--budget-size",
        type=float,
        default=0.1,
        help="tool output length of those sessions, relative to the quality sessions",
    )
    parser.add_argument("--budget-sessions", type=int, default=5)
    parser.add_argument("--budget-seed", type=int, default=7, help="seed of the budgets")
    parser.add_argument(
        "--first-session", type=int, default=1000, help="seed of the first budget session"
    )
    parser.add_argument("--budgets-only", action="store_true", help="only the random budgets")
    parser.add_argument(
        "--progress", action="store_true", help="the figures so far every 250 budgets"
    )
    parser.add_argument(
        "--timing-only", action="store_true", help="only the milliseconds per 100k tokens"
    )
    parser.add_argument("--rounds", type=int, default=1, help="timing rounds (medians)")
    args = parser.parse_args()
    load_encoding("cl100k_base")  # a one-off per process, not part of any figure
    if args.budgets_only:
        _print_budgets(_budgets(args))
        return
    sessions = [generate(args.turns, seed=s) for s in range(1, args.sessions + 1)]
    sizes = [tokens(m) for m, _ in sessions]
    probes = [len([p for p in ps if p.kind != "pinned"]) for _, ps in sessions]
    print(
        f"{len(sessions)} sessions of {args.turns} turns: {', '.join(f'{s:,}' for s in sizes)} "
        f"tokens, {', '.join(map(str, probes))} probes"
    )
    if args.timing_only:
        _print_timing(timing(sessions, args.rounds))
        return
    result = quality(sessions)
    print(
        "\n| size | method | probe recall | kept / original | fits | orphaned tool pairs "
        "| API-valid | pinned kept |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for share in SIZES:
        for method in ("memlens", "truncate", "langchain"):
            rows = result["rows"].get((method, share))
            if not rows:
                print(f"| {share:.0%} | {method} | not installed | | | | | |")
                continue

            def mean(key: str, rows: list[dict[str, float]] = rows) -> float:
                return statistics.fmean(r[key] for r in rows)

            print(
                f"| {share:.0%} | {method} | {mean('recall'):.1%} | {mean('ratio'):.1%} | "
                f"{mean('fits'):.0%} | {sum(r['orphans'] for r in rows):.0f} | "
                f"{1 - mean('invalid'):.0%} | {mean('pinned'):.0%} |"
            )
    print("\nmemlens levels, measured ratio (target): ")
    targets = {"summary": 0.5, "grouped": 0.2, "cold": 0.05}
    for share, per in result["levels"].items():
        cells = ", ".join(
            f"{name} {statistics.fmean(v):.1%} ({targets[name]:.0%})" for name, v in per.items()
        )
        print(f"  at {share:.0%}: {cells}")
    _print_timing(timing(sessions, args.rounds))
    if args.budgets:
        _print_budgets(_budgets(args))


def _budgets(args: argparse.Namespace) -> dict[str, Any]:
    return random_budgets(
        args.budgets,
        seed=args.budget_seed,
        first_session=args.first_session,
        turns=args.budget_turns,
        size=args.budget_size,
        sessions=args.budget_sessions,
        progress=args.progress,
    )


if __name__ == "__main__":
    main()
