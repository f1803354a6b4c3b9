"""The mutant generator of kdamon check --mutants: which lines, which operators, deterministic by seed."""

from __future__ import annotations

import pytest

from kdamon.check.mutants import OPERATORS, Mutant, candidates, code_lines, sample

SOURCE = r"""/* a file header; if (a < b) x++; */
#include <linux/damon.h>
#define LIMIT(x) ((x) < 10 ? \
		(x) : 10)

static const struct ops table = { .size = 3 };

static int helper(int a, int b)
{
	int err = 0;
	struct damon_region *r = first(a);

	if (a < b)
		a++;	// count < it
	else r->age++;
	if (a == b &&
	    b > 2)
		err = -22;
	pr_debug("a < b %d\n", a);
	foo(a,
	    b);
	return err;
}
"""


def _by(operator: str) -> list[Mutant]:
    return [m for m in candidates("f.c", SOURCE) if m.operator == operator]


def test_only_code_inside_function_bodies_is_mutated() -> None:
    lines = code_lines(SOURCE)
    inside = [n for n, code in enumerate(lines, 1) if code is not None]
    assert inside == list(range(10, 24))  # the body of helper, its closing brace included
    mutated_lines = {m.line for m in candidates("f.c", SOURCE)}
    assert mutated_lines and all(10 <= n <= 22 for n in mutated_lines)
    # comments, strings and the preprocessor are left alone
    assert not any("count" in m.mutated and m.mutated.count("<") != m.original.count("<") for m in _by("flip"))
    assert all(m.line != 19 or m.operator == "delete" for m in candidates("f.c", SOURCE))


def test_each_operator() -> None:
    deleted = {(m.line, m.mutated.strip()) for m in _by("delete")}
    # simple statements and an else's statement; not declarations, returns or a statement split over lines
    assert deleted == {(14, ";\t// count < it"), (15, "else ;"), (18, ";"), (19, ";")}
    assert {(m.line, m.mutated.strip()) for m in _by("flip")} == {
        (13, "if (a > b)"),
        (16, "if (a != b &&"),
        (17, "b < 2)"),
    }
    constants = {(m.line, m.mutated.strip()) for m in _by("constant")}
    assert {(10, "int err = 1;"), (17, "b > 3)"), (17, "b > 1)"), (18, "err = -23;"), (18, "err = -21;")} == constants
    assert {(m.line, m.mutated.strip()) for m in _by("negate")} == {(13, "if (!(a < b))")}


def test_apply_changes_one_line_and_refuses_a_changed_file() -> None:
    m = next(m for m in _by("flip") if m.line == 13)
    mutated = m.apply(SOURCE)
    assert mutated.split("\n")[12] == "\tif (a > b)"
    assert [a == b for a, b in zip(mutated.split("\n"), SOURCE.split("\n"), strict=True)].count(False) == 1
    with pytest.raises(ValueError, match="no longer"):
        m.apply(SOURCE.replace("if (a < b)", "if (a <= b)"))


def test_sample_is_deterministic_and_spreads_over_operators() -> None:
    first = sample("f.c", SOURCE, 6, seed=7)
    assert first == sample("f.c", SOURCE, 6, seed=7)
    assert len(first) == 6 and len(set(first)) == 6
    assert {m.operator for m in first} == set(OPERATORS)
    assert first == sorted(first, key=lambda m: (m.line, m.column, m.operator, m.mutated))
    others = [sample("f.c", SOURCE, 6, seed=s) for s in range(8, 14)]
    assert any(o != first for o in others)
    assert len(sample("f.c", SOURCE, 1000, seed=7)) == len(candidates("f.c", SOURCE))
    with pytest.raises(ValueError, match="at least 1"):
        sample("f.c", SOURCE, 0, seed=7)
