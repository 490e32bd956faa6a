"""Generated agent sessions with planted probes, for the fit quality benchmark.

A session is an OpenAI chat list (system prompt, then turns). Each turn: a user
prompt, an assistant reply that calls tools (read a file, run the tests, grep, run a
command), the tools' results (source files of 40-160 lines, test logs of 30-120 lines
with failures buried in the middle, search hits), and a closing assistant message.
Around them is the noise a real session has: many other file paths, function names,
numbers, passing tests and log lines, so the strings worth keeping compete for room.

*Probes* are exact strings planted in known turns, one kind per probe, where an agent
would later need them:

* ``constraint`` — a user rule, the whole sentence ("Never edit ... under vendor/...");
* ``decision`` — an assistant decision, the whole sentence ("We decided to use ...");
* ``error`` — an exception message buried in the middle of a long test log;
* ``path`` — a file path only a tool call and its result mention;
* ``number`` — a figure the user gives ("set the retry limit to 7421");
* ``url`` — a runbook URL in a user message or a command's output;
* ``identifier`` — a function a file read defines and the assistant then names.

The generator is seeded and knows nothing about memlens: it was written before any
fitter ran on its output, and the probes are what a user would ask about later.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

SYSTEM = (
    "You are a senior software engineer working as a coding agent in the repository "
    "at /srv/shop. Use the tools to read files, search, run commands and tests. Keep "
    "changes minimal and explain what you changed."
)

AREAS = ["billing", "orders", "catalog", "search", "auth", "shipping", "payments", "reports"]
NOUNS = [
    "invoice",
    "order",
    "cart",
    "ledger",
    "token",
    "session",
    "refund",
    "batch",
    "queue",
    "report",
    "tenant",
    "coupon",
    "price",
    "stock",
    "webhook",
    "export",
]
VERBS = [
    "compute",
    "load",
    "render",
    "validate",
    "merge",
    "apply",
    "sync",
    "parse",
    "build",
    "resolve",
    "fetch",
    "flush",
    "schedule",
    "reconcile",
    "encode",
]
ERRORS = [
    "KeyError",
    "ValueError",
    "TimeoutError",
    "IntegrityError",
    "AssertionError",
    "TypeError",
    "DeadlockDetected",
    "ConnectionResetError",
    "PermissionError",
]
PROSE = [
    "The handler retries twice before giving up and logs the payload.",
    "This path is hot during the nightly export, so allocations matter.",
    "The tests cover the happy path but not the partial refund case.",
    "I will keep the public signature and change only the internals.",
    "The cache is warmed on startup and invalidated on every deploy.",
    "There is a second copy of this logic in the legacy module.",
    "The query runs inside a transaction opened by the caller.",
    "Most of the time is spent serialising the response body.",
]


@dataclass(frozen=True)
class Probe:
    """One planted string: what it is, where it was planted, the exact text."""

    kind: str
    turn: int
    text: str


class _Names:
    """Distinct, plausible names from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.used: set[str] = set()

    def _fresh(self, make: Any) -> str:
        while True:
            name = make()
            if name not in self.used:
                self.used.add(name)
                return str(name)

    def function(self) -> str:
        """A name never used before (for planted identifiers)."""
        r = self.rng
        return self._fresh(
            lambda: f"{r.choice(VERBS)}_{r.choice(NOUNS)}_{r.choice(NOUNS)}s_{r.randrange(100)}"
        )

    def any_function(self) -> str:
        """A name that may repeat (noise)."""
        r = self.rng
        return f"{r.choice(VERBS)}_{r.choice(NOUNS)}_{r.choice(NOUNS)}s"

    def path(self, area: str | None = None) -> str:
        """A path never used before (for planted paths)."""
        r = self.rng
        return self._fresh(
            lambda: (
                f"src/shop/{area or r.choice(AREAS)}/{r.choice(NOUNS)}_{r.choice(VERBS)}"
                f"_{r.randrange(1000)}.py"
            )
        )

    def any_path(self, area: str | None = None) -> str:
        """A path that may repeat (noise: the same files come up again and again)."""
        r = self.rng
        return f"src/shop/{area or r.choice(AREAS)}/{r.choice(NOUNS)}_{r.choice(VERBS)}.py"


def _source(
    rng: random.Random, names: _Names, path: str, lines: int, planted: str | None = None
) -> tuple[str, list[str]]:
    out = [f'"""{path}: {rng.choice(PROSE)}"""', "", "from __future__ import annotations", ""]
    defined = []
    spot = rng.randrange(2, 6)
    while len(out) < lines:
        name = planted if planted and len(defined) == spot else names.any_function()
        defined.append(name)
        arg = rng.choice(NOUNS)
        out.append(f"def {name}({arg}, limit={rng.randrange(2, 500)}):")
        out.append(f'    """{rng.choice(PROSE)}"""')
        for _ in range(rng.randrange(2, 7)):
            out.append(
                f"    {arg} = {rng.choice(VERBS)}_{rng.choice(NOUNS)}({arg}, {rng.randrange(1000)})"
            )
        out.append(f"    return {arg}")
        out.append("")
    return "\n".join(out[:lines]), defined


def _test_log(rng: random.Random, names: _Names, area: str, lines: int, error: str | None) -> str:
    out = [f"============ test session starts: {rng.randrange(40, 400)} items ============"]
    failing = rng.randrange(lines // 3, 2 * lines // 3)
    for i in range(lines):
        test = f"tests/{area}/test_{rng.choice(NOUNS)}.py::test_{names.any_function()}"
        if error and i == failing:
            out.append(f"{test} FAILED")
            out.append(f"E   {error}")
        else:
            out.append(f"{test} PASSED [{100 * i // lines:3d}%]")
    summary = "1 failed" if error else "0 failed"
    out.append(f"============ {summary}, {lines} passed in {rng.uniform(1, 90):.2f}s ============")
    return "\n".join(out)


def _grep(rng: random.Random, names: _Names, term: str, hits: int) -> str:
    return "\n".join(
        f"{names.any_path()}:{rng.randrange(1, 900)}:    {term}({rng.choice(NOUNS)})"
        for _ in range(hits)
    )


class _Session:
    def __init__(self, turns: int, seed: int, size: float = 1.0) -> None:
        self.size = size
        self.rng = random.Random(seed)
        self.names = _Names(self.rng)
        self.turns = turns
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": SYSTEM}]
        self.probes: list[Probe] = []
        self.calls = 0

    def lines(self, n: int, least: int = 3) -> int:
        """``n`` lines scaled by the session's size (never fewer than ``least``)."""
        return n if self.size == 1.0 else max(least, round(n * self.size))

    def call(self, name: str, args: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return {
            "id": f"call_{self.calls:05d}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }

    def plant(self, kind: str, turn: int, text: str) -> str:
        self.probes.append(Probe(kind, turn, text))
        return text

    def build(self) -> None:
        rng = self.rng
        kinds = ["constraint", "decision", "error", "path", "number", "url", "identifier"]
        # the pinned rule (message 1): the benchmark pins it for memlens
        self.messages.append(
            {
                "role": "user",
                "content": self.plant(
                    "pinned",
                    0,
                    "Project rule for the whole session: every change needs a test "
                    "and the public HTTP API must stay backwards compatible.",
                ),
            }
        )
        self.messages.append({"role": "assistant", "content": "Understood, I will follow it."})
        for turn in range(1, self.turns + 1):
            kind = kinds[turn % len(kinds)] if rng.random() < 0.45 else None
            self.turn(turn, kind)

    def turn(self, turn: int, kind: str | None) -> None:
        rng, names = self.rng, self.names
        area = rng.choice(AREAS)
        path = names.any_path(area)
        ask = [f"Next: look at {path}. {rng.choice(PROSE)}"]
        if kind == "constraint":
            folder = f"vendor/{rng.choice(NOUNS)}_{rng.choice(NOUNS)}_{rng.randrange(100, 999)}/"
            ask.append(
                self.plant(
                    kind, turn, f"Never edit anything under {folder} because another team owns it."
                )
            )
        elif kind == "number":
            value = str(rng.randrange(1000, 99999))
            ask.append(
                f"Set the retry limit of the {area} worker to {self.plant(kind, turn, value)}."
            )
        elif kind == "url" and rng.random() < 0.5:
            url = f"https://runbooks.shop.example/{area}/{rng.choice(NOUNS)}-{rng.randrange(1000, 9999)}"
            ask.append(f"The runbook is at {self.plant(kind, turn, url)} if you need it.")
            kind = None
        else:
            ask.append(f"Keep the change under {rng.randrange(20, 200)} lines.")
        self.messages.append({"role": "user", "content": " ".join(ask)})
        # read the file (sometimes the planted path or identifier lives here)
        read_path = self.plant("path", turn, names.path(area)) if kind == "path" else path
        planted_fn = names.function() if kind == "identifier" else None
        if planted_fn:
            self.plant("identifier", turn, planted_fn)
        read = self.call("read_file", {"path": read_path})
        self.messages.append({"role": "assistant", "content": None, "tool_calls": [read]})
        lines = self.lines(rng.randrange(40, 160), least=12)
        source, defined = _source(rng, names, read_path, lines, planted_fn)
        self.messages.append({"role": "tool", "tool_call_id": read["id"], "content": source})
        # run the tests, and sometimes grep or a shell command, in parallel
        calls = [self.call("run_tests", {"path": f"tests/{area}"})]
        if rng.random() < 0.5:
            calls.append(self.call("grep", {"pattern": rng.choice(defined)}))
        if kind == "url":  # the other half of URL probes: in a command's output
            calls.append(self.call("bash", {"cmd": f"cat docs/{area}/RUNBOOK"}))
        self.messages.append(
            {"role": "assistant", "content": "Running the checks.", "tool_calls": calls}
        )
        for c in calls:
            name = c["function"]["name"]
            if name == "run_tests":
                error = None
                if kind == "error":
                    error = self.plant(
                        kind,
                        turn,
                        f"{rng.choice(ERRORS)}: {rng.choice(NOUNS)} "
                        f"{rng.randrange(10000, 99999)} not found in "
                        f"{rng.choice(NOUNS)}_index",
                    )
                elif rng.random() < 0.3:
                    error = f"{rng.choice(ERRORS)}: {rng.choice(NOUNS)} {rng.randrange(100)}"
                text = _test_log(rng, names, area, self.lines(rng.randrange(30, 120)), error)
            elif name == "grep":
                text = _grep(
                    rng,
                    names,
                    json.loads(c["function"]["arguments"])["pattern"],
                    self.lines(rng.randrange(3, 25)),
                )
            else:
                url = f"https://runbooks.shop.example/{area}/{rng.choice(NOUNS)}-{rng.randrange(1000, 9999)}"
                steps = self.lines(rng.randrange(10, 40))
                lines = [f"step {i}: {rng.choice(PROSE)}" for i in range(steps)]
                lines.insert(len(lines) // 2, f"escalation: {self.plant('url', turn, url)}")
                text = "\n".join(lines)
            self.messages.append({"role": "tool", "tool_call_id": c["id"], "content": text})
        close = [rng.choice(PROSE)]
        if kind == "decision":
            close.insert(
                0,
                self.plant(
                    kind,
                    turn,
                    f"We decided to use a {rng.choice(NOUNS)} "
                    f"{rng.choice(['lock', 'queue', 'index', 'cache'])} "
                    f"in {path} instead of polling.",
                ),
            )
        if planted_fn:
            close.append(f"The slow part is `{planted_fn}`, which I left unchanged.")
        close.append(f"Changed {rng.randrange(2, 60)} lines in {path}.")
        self.messages.append({"role": "assistant", "content": " ".join(close)})


def generate(
    turns: int = 500, seed: int = 1, size: float = 1.0
) -> tuple[list[dict[str, Any]], list[Probe]]:
    """An OpenAI chat session of ``turns`` turns and its probes; ``size`` scales the
    length of every tool output (files, logs, search hits), 1.0 being the default."""
    session = _Session(turns, seed, size)
    session.build()
    return session.messages, session.probes
