"""Small mutants of C source: what ``kdamon check --mutants`` builds and checks.

Each mutant changes one line inside a function body of a C file, with one
of four operators:

* ``delete``: an expression statement becomes the empty statement ``;``
  (also the statement of an ``else`` on the same line);
* ``flip``: a comparison is mirrored (``<`` and ``>``, ``<=`` and ``>=``,
  ``==`` and ``!=``);
* ``constant``: an integer literal is one more, or one less;
* ``negate``: an ``if`` condition is negated, which swaps its branches.

Comments, string and character literals and preprocessor lines are never
mutated.  The lexing is line-based and conservative (a statement spread over
several lines is not deleted); the compiler rejects the rare mutant that is
not C, and it is reported as not built.  :func:`sample` picks ``count``
mutants per file with a fixed seed, cycling over the operators so that each
is represented: the same tree, seed and count give the same mutants.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import attrs

__all__ = ["OPERATORS", "Mutant", "candidates", "code_lines", "sample"]

OPERATORS = ("delete", "flip", "constant", "negate")
_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "==": "!=", "!=": "=="}
_OPERATOR_TOKEN = re.compile(r"<<=|>>=|<<|>>|->|<=|>=|==|!=|<|>")
_LITERAL = re.compile(r"(?<![\w.])(0[xX][0-9a-fA-F]+|\d+)([uUlL]*)(?![\w.])")
_NOT_DELETED = re.compile(r"^(return|break|continue|goto|case|default|else|if|for|while|do|switch)\b")
_TYPE_WORDS = frozenset(
    "struct union enum unsigned signed int long short char bool void const static volatile size_t ssize_t "
    "u8 u16 u32 u64 s8 s16 s32 s64 int8_t int16_t int32_t int64_t uint8_t uint16_t uint32_t uint64_t "
    "phys_addr_t pid_t".split()
)
_DECLARATION = re.compile(r"^[A-Za-z_]\w*(?:\s+[A-Za-z_]\w*)*[\s*]+[A-Za-z_]\w*\s*(?:=|;|\[|,)")
_IF = re.compile(r"^(\s*(?:}\s*else\s+)?if\s*)\(")
_ELSE = re.compile(r"^(\s*(?:}\s*)?else\s+)(\S.*)$")


@attrs.frozen
class Mutant:
    """One line of ``file`` (relative to the tree) changed by ``operator``."""

    file: str
    line: int  # 1-based
    column: int  # 0-based, where the change starts
    operator: str
    original: str
    mutated: str

    @property
    def id(self) -> str:
        return f"{self.file}:{self.line}:{self.column}:{self.operator}"

    def apply(self, text: str) -> str:
        """``text`` (the file's content) with this mutant's line changed.

        Raises ``ValueError`` when the line is not the one this mutant was made from.
        """
        lines = text.split("\n")
        if not 0 < self.line <= len(lines) or lines[self.line - 1] != self.original:
            raise ValueError(
                f"{self.file}:{self.line} is no longer {self.original.strip()!r}: the file changed "
                "since the mutants were generated; generate them again"
            )
        lines[self.line - 1] = self.mutated
        return "\n".join(lines)


def _mask(text: str) -> str:
    """``text`` with comments and string/character literals blanked (newlines and lengths kept)."""
    out = list(text)
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
        elif c in "\"'":
            end = i + 1
            while end < n and text[end] != c and text[end] != "\n":
                end += 2 if text[end] == "\\" else 1
            end = min(end + 1, n)
        else:
            i += 1
            continue
        for j in range(i, end):
            if out[j] != "\n":
                out[j] = " "
        i = end
    return "".join(out)


def code_lines(text: str) -> list[str | None]:
    """Per line of ``text``: its masked code when the line lies inside a function body, else None.

    A line is inside a body when it starts at brace depth 1 or more of a
    block that a function opened (the text before the block's ``{`` at file
    scope has a ``(`` and no ``=``).  Preprocessor lines (with their
    continuations) are None.
    """
    masked = _mask(text).split("\n")
    result: list[str | None] = []
    depth = 0
    in_function = False
    head = ""  # file-scope text since the last ; or } or preprocessor line
    continued = False
    for line in masked:
        preprocessor = continued or line.lstrip().startswith("#")
        continued = preprocessor and line.rstrip().endswith("\\")
        inside = depth > 0 and in_function
        result.append(line if inside and not preprocessor else None)
        if preprocessor:
            continue
        for c in line:
            if c == "{":
                if depth == 0:
                    in_function = "(" in head and "=" not in head
                depth += 1
            elif c == "}":
                depth = max(depth - 1, 0)
                if depth == 0:
                    head = ""
            elif depth == 0:
                head = "" if c == ";" else head + c
    return result


def _balanced(code: str) -> bool:
    level = 0
    for c in code:
        level += {"(": 1, ")": -1}.get(c, 0)
        if level < 0:
            return False
    return level == 0


def _statement_start(previous: str) -> bool:
    """Whether a line following ``previous`` (masked, stripped) starts a statement."""
    return not previous or previous[-1] in ";{}):" or previous.endswith("else")


def _deletable(statement: str) -> bool:
    if not statement.endswith(";") or statement == ";" or statement[0] in "{}":
        return False
    if _NOT_DELETED.match(statement) or statement.split(None, 1)[0].rstrip("*") in _TYPE_WORDS:
        return False
    return _balanced(statement) and "{" not in statement and not _DECLARATION.match(statement)


def _deletions(raw: str, code: str) -> Iterator[tuple[int, str]]:
    m = _ELSE.match(code)
    start = m.end(1) if m else len(code) - len(code.lstrip())
    statement = code[start:].rstrip()
    if statement and _deletable(statement):
        yield start, raw[:start] + ";" + raw[start + len(statement) :]


def _flips(raw: str, code: str) -> Iterator[tuple[int, str]]:
    for m in _OPERATOR_TOKEN.finditer(code):
        flipped = _FLIP.get(m.group())
        if flipped is not None:
            yield m.start(), raw[: m.start()] + flipped + raw[m.end() :]


def _constants(raw: str, code: str) -> Iterator[tuple[int, str]]:
    for m in _LITERAL.finditer(code):
        digits, suffix = m.group(1), m.group(2)
        value = (
            int(digits, 0) if not (len(digits) > 1 and digits[0] == "0" and digits[1] not in "xX") else int(digits, 8)
        )
        for new in (value + 1, value - 1):
            if new < 0:
                continue
            text = f"{new:#x}" if digits[:2].lower() == "0x" else str(new)
            yield m.start(), raw[: m.start()] + text + suffix + raw[m.end() :]


def _negations(raw: str, code: str) -> Iterator[tuple[int, str]]:
    m = _IF.match(code)
    if m is None:
        return
    level, open_at = 0, m.end() - 1
    for i in range(open_at, len(code)):
        level += {"(": 1, ")": -1}.get(code[i], 0)
        if level == 0:
            yield open_at, raw[: open_at + 1] + "!(" + raw[open_at + 1 : i] + ")" + raw[i:]
            return


_MAKERS = {"delete": _deletions, "flip": _flips, "constant": _constants, "negate": _negations}


def candidates(file: str, text: str) -> list[Mutant]:
    """Every mutant of ``text`` (the content of ``file``), in line order."""
    raw_lines = text.split("\n")
    found: list[Mutant] = []
    previous = ""
    for number, (raw, code) in enumerate(zip(raw_lines, code_lines(text), strict=True), 1):
        if code is None:
            continue
        stripped = code.strip()
        if not stripped:
            continue
        for operator, make in _MAKERS.items():
            if operator == "delete" and not _statement_start(previous):
                continue
            for column, mutated in make(raw, code):
                found.append(Mutant(file, number, column, operator, raw, mutated))
        previous = stripped
    return found


def sample(file: str, text: str, count: int, seed: int) -> list[Mutant]:
    """``count`` mutants of ``file``, taken in turn from each operator's shuffled list; in line order.

    The shuffles use ``random.Random(f"{seed}:{file}")``, so the choice
    depends only on the seed, the file's name and its content.
    """
    if count < 1:
        raise ValueError(f"the mutant count must be at least 1, got {count}")
    rng = random.Random(f"{seed}:{file}")
    pools: list[list[Mutant]] = []
    every = candidates(file, text)
    for operator in OPERATORS:
        pool = [m for m in every if m.operator == operator]
        rng.shuffle(pool)
        pools.append(pool)
    chosen: list[Mutant] = []
    while len(chosen) < count and any(pools):
        for pool in pools:
            if pool and len(chosen) < count:
                chosen.append(pool.pop())
    return sorted(chosen, key=lambda m: (m.line, m.column, m.operator, m.mutated))
