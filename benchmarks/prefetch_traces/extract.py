"""Turn recorded coding-agent trajectories into file-access sequences.

The input is a mini-swe-agent trajectory (``*.traj.json``: a ``messages`` list whose
assistant turns each hold one ```` ```bash ```` block). Every command the agent ran is
split into its simple commands and each is mapped to the files it touched, in order:

- ``read``: ``cat``/``nl``/``head``/``tail``/``less``/``wc`` of a file, ``sed`` without
  ``-i``, ``cp``'s source;
- ``edit``: ``sed -i``, ``ed``, ``patch`` of a file;
- ``write``: an output redirection (``> f``, ``>> f``, ``tee f``, ``cp``'s target),
  including a here-document written to a file;
- ``run``: ``python f.py``, ``bash f.sh``, ``./f``;
- ``test``: ``pytest`` paths (``::`` node ids cut to the file), django's
  ``runtests.py`` labels, sympy's ``bin/test`` paths;
- ``search``: ``grep``/``rg``/``find`` over a named path other than the root;
- ``list``: ``ls`` of a named directory other than the root.

Paths are made relative to the checkout (``/testbed/`` and ``./`` dropped, a ``cd``
earlier in the same command line followed); globs, ``-`` and the root itself are not
items. The mapping is a heuristic over shell text, not a trace of system calls: a file
opened by a Python script the agent ran is not seen, and a path built by the shell
(``$VAR``) is skipped.

Output: one JSON line per trajectory, ``{"id": ..., "source": ..., "accesses":
[[kind, path], ...]}``, in the order the files are given (gzip-compressed when OUT
ends with ``.gz``).

    python benchmarks/prefetch_traces/extract.py OUT.jsonl[.gz] TRAJ.traj.json... [--root DIR]
"""

from __future__ import annotations

import gzip
import json
import posixpath
import re
import shlex
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

Access = tuple[str, str]

ROOT = "/testbed"
READERS = {"cat", "nl", "head", "tail", "less", "more", "wc"}
SEARCHERS = {"grep", "egrep", "rg", "ag"}
PYTHONS = re.compile(r"^(?:.*/)?python(?:3(?:\.\d+)?)?$")
#: mini-swe-agent runs a turn's command only if the turn has exactly one such block.
BASH_BLOCK = re.compile(r"```bash\s*\n(.*?)\n```", re.S)
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
#: Options of the tools above that take a value (so the value is not a path).
VALUED = {
    "grep": {"-e", "-f", "-A", "-B", "-C", "-m", "--include", "--exclude", "--exclude-dir"},
    "rg": {"-e", "-g", "-t", "-A", "-B", "-C", "-m", "--glob", "--type"},
    "head": {"-n", "-c"},
    "tail": {"-n", "-c"},
    "sed": {"-e", "-f"},
    "nl": {"-b", "-s", "-w", "-v", "-i"},
    "pytest": {"-k", "-m", "-p", "-n", "--tb", "-o", "--rootdir", "-c", "-W"},
    "runtests.py": {"--parallel", "--settings", "-v", "--verbosity", "-k", "--tag"},
    "test": {"-k", "--seed", "--timeout", "--split"},
}


def commands_of(trajectory: dict[str, object]) -> Iterator[str]:
    """The shell command of each assistant turn that ran, in order."""
    messages = trajectory.get("messages")
    if not isinstance(messages, list):
        raise ValueError("not a mini-swe-agent trajectory: no 'messages' list")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") != "assistant":
            continue
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content)
        found = BASH_BLOCK.findall(text)
        if len(found) == 1:
            yield found[0]


def strip_heredocs(command: str) -> str:
    """The command without here-document bodies (their text is data, not commands)."""
    out: list[str] = []
    lines = command.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        for match in HEREDOC.finditer(line):
            end = match.group(2)
            while i < len(lines) and lines[i].strip() != end:
                i += 1
            i += 1  # the terminator
    return "\n".join(out)


def simple_commands(command: str) -> Iterator[list[str]]:
    """Token lists of the simple commands in a command line (split on ; && || | and
    newlines outside quotes); text shlex cannot parse falls back to whitespace."""
    buffer = ""
    lines = strip_heredocs(command).splitlines()
    for number, line in enumerate(lines):
        buffer += line
        if buffer.endswith("\\"):
            buffer = buffer[:-1] + " "
            continue
        lexer = shlex.shlex(buffer, posix=True, punctuation_chars=";&|()<>")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:
            if number + 1 < len(lines):
                buffer += "\n"  # a quote still open: the string goes on
                continue
            tokens = buffer.split()
        buffer = ""
        current: list[str] = []
        for token in tokens:
            if token and set(token) <= set(";&|()"):
                if current:
                    yield current
                current = []
            else:
                current.append(token)
        if current:
            yield current


def normalise(path: str, cwd: str) -> str | None:
    """``path`` relative to the checkout, or None when it is not a file item."""
    path = path.split("::", 1)[0].rstrip("/:")
    if (
        not path
        or path == "-"
        or path.startswith("-")
        or any(c in path for c in "*?[]{}$`~=\"'(),")
    ):
        return None
    full = posixpath.normpath(posixpath.join(cwd, path))
    if full == ROOT:
        return None
    if full.startswith(ROOT + "/"):
        return full[len(ROOT) + 1 :]
    return full


def _operands(tool: str, args: list[str]) -> list[str]:
    """The non-option arguments of ``tool`` (values of valued options skipped)."""
    valued = VALUED.get(tool, set())
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg == "--":
            continue
        elif arg.startswith("--"):
            skip = arg in valued
        elif arg.startswith("-") and len(arg) > 1:
            # ``-nC 3``: a cluster of short flags whose last one takes the value
            skip = arg in valued or (arg[1:].isalpha() and "-" + arg[-1] in valued)
        else:
            out.append(arg)
    return out


def accesses_of_command(tokens: list[str], cwd: str) -> tuple[list[tuple[str, str]], str]:
    """``(kind, raw path)`` pairs of one simple command, and the cwd after it."""
    out: list[tuple[str, str]] = []
    words: list[str] = []
    i = 0
    while i < len(tokens):  # redirections first: ``> f`` / ``>> f`` / ``< f``
        token = tokens[i]
        if token.isdigit() and i + 1 < len(tokens) and tokens[i + 1][:1] in "<>":
            i += 1  # the file descriptor of ``2>``
            continue
        if token in (">&", ">>&", "<&") and i + 1 < len(tokens):
            i += 2  # ``2>&1``: a descriptor, not a file
            continue
        if token in ("&>", "&>>"):
            token = ">"
        if token in (">", ">>", "<") and i + 1 < len(tokens):
            target = tokens[i + 1]
            if target != "&" and not target.startswith("&"):
                out.append(("write" if token != "<" else "read", target))
            i += 2
            continue
        if token in ("<<", "<<<", "<<-") and i + 1 < len(tokens):
            i += 2
            continue
        words.append(token)
        i += 1
    while words and re.match(r"^\w+=", words[0]):
        words.pop(0)  # VAR=value prefixes
    while words and words[0] in ("timeout", "time", "env", "sudo", "exec"):
        words.pop(0)
        while words and (words[0].startswith("-") or re.match(r"^[\d.]+[smh]?$", words[0])):
            words.pop(0)
    if not words:
        return out, cwd
    tool, args = posixpath.basename(words[0]), words[1:]
    if tool == "cd":
        target = args[0] if args else ROOT
        return out, posixpath.normpath(posixpath.join(cwd, target))
    ops = _operands(tool, args)
    if tool in READERS:
        out += [("read", p) for p in ops if not (tool in ("head", "tail") and p.isdigit())]
    elif tool == "sed":
        in_place = any(a.startswith("-i") or a == "--in-place" for a in args)
        has_script = any(a in ("-e", "-f") for a in args)
        files = ops if has_script else ops[1:]
        out += [("edit" if in_place else "read", p) for p in files]
    elif tool in ("ed", "patch") and ops:
        out += [("edit", p) for p in ops[:1]]
    elif tool == "tee":
        out += [("write", p) for p in ops]
    elif tool == "cp" and len(ops) >= 2:
        out += [("read", p) for p in ops[:-1]] + [("write", ops[-1])]
    elif tool in SEARCHERS:
        has_pattern = any(a in ("-e", "-f") for a in args)
        out += [("search", p) for p in (ops if has_pattern else ops[1:])]
    elif tool == "find":
        for arg in args:
            if arg.startswith("-") or arg in ("(", "!"):
                break
            out.append(("search", arg))
    elif tool == "ls":
        out += [("list", p) for p in ops]
    elif PYTHONS.match(tool):
        out += _python_accesses(args)
    elif tool in ("pytest", "py.test"):
        out += [("test", p) for p in _operands("pytest", args)]
    elif tool in ("bash", "sh") and ops:
        out.append(("run", ops[0]))
    elif words[0].startswith(("./", "/")) or "/" in words[0]:
        out += _script_accesses(words[0], ops)
    return out, cwd


def _python_accesses(args: list[str]) -> list[tuple[str, str]]:
    while args and args[0].startswith("-") and args[0] not in ("-c", "-m"):
        args = args[1:]  # interpreter flags (-u, -bb, -W ...)
    if not args or args[0] == "-c":
        return []
    if args[0] == "-m":
        if len(args) > 1 and args[1] in ("pytest", "py.test"):
            return [("test", p) for p in _operands("pytest", args[2:])]
        return []
    if not args:
        return []
    return _script_accesses(args[0], _operands(posixpath.basename(args[0]), args[1:]))


def _script_accesses(script: str, ops: list[str]) -> list[tuple[str, str]]:
    out = [("run", script)]
    name = posixpath.basename(script)
    if name == "runtests.py":  # django: labels are dotted test modules under tests/
        base = posixpath.dirname(script)  # labels are relative to the script's directory
        out += [("test", posixpath.join(base, label.replace(".", "/"))) for label in ops]
    elif name == "test" and posixpath.basename(posixpath.dirname(script)) == "bin":
        out += [("test", p) for p in ops]  # sympy's bin/test takes paths
    return out


def extract(trajectory: dict[str, object]) -> list[Access]:
    """The ``(kind, path)`` accesses of one trajectory, in order."""
    out: list[Access] = []
    for command in commands_of(trajectory):
        cwd = ROOT
        for tokens in simple_commands(command):
            found, cwd = accesses_of_command(tokens, cwd)
            for kind, raw in found:
                path = normalise(raw, cwd)
                if path is not None and not path.startswith(("/dev/", "/proc/")):
                    out.append((kind, path))
    return out


def extract_files(paths: Iterable[Path], root: Path | None = None) -> Iterator[dict[str, object]]:
    for path in paths:
        try:
            trajectory = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SystemExit(f"{path}: not a readable JSON trajectory ({exc})") from None
        if not isinstance(trajectory, dict):
            raise SystemExit(f"{path}: not a mini-swe-agent trajectory (not a JSON object)")
        try:
            accesses = extract(trajectory)
        except ValueError as exc:
            raise SystemExit(f"{path}: {exc}") from None
        if root is not None and not path.is_relative_to(root):
            raise SystemExit(f"{path}: not under --root {root}")
        ident = trajectory.get("instance_id") or path.name.split(".")[0]
        source = str(path.relative_to(root)) if root else path.name
        yield {"id": ident, "source": source, "accesses": [list(a) for a in accesses]}


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit("usage: extract.py OUT.jsonl TRAJ.traj.json... [--root DIR]")
    root = None
    if "--root" in argv:
        at = argv.index("--root")
        root = Path(argv[at + 1]).resolve()
        argv = argv[:at] + argv[at + 2 :]
    out, files = Path(argv[0]), [Path(p).resolve() for p in argv[1:]]
    text = "".join(
        json.dumps(record, separators=(",", ":")) + "\n" for record in extract_files(files, root)
    )
    data = text.encode("utf-8")
    if out.suffix == ".gz":  # mtime 0: the same input gives the same bytes
        data = gzip.compress(data, mtime=0)
    out.write_bytes(data)


if __name__ == "__main__":
    main(sys.argv[1:])
