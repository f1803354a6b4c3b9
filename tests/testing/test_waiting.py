"""The test waits: one polling loop, a raising form and a yes/no form."""

from __future__ import annotations

import itertools

import pytest

from kdamon.testing.waiting import holds_within, poll, wait_until


def test_a_condition_that_comes_to_hold_returns_its_value() -> None:
    counter = itertools.count()
    assert wait_until(lambda: next(counter), lambda n: n >= 3, "three polls") == 3


def test_a_condition_that_never_holds_fails_naming_what_was_awaited() -> None:
    with pytest.raises(AssertionError, match=r"waited 0 s for the sky to fall; last seen: 'blue'"):
        wait_until(lambda: "blue", lambda v: v == "falling", "the sky to fall", timeout_s=0.05)


def test_poll_says_whether_and_what() -> None:
    assert poll(lambda: 7, lambda n: n > 10, 0.05) == (False, 7)
    assert poll(lambda: 11, lambda n: n > 10, 0.05) == (True, 11)


def test_holds_within_answers_yes_or_no() -> None:
    counter = itertools.count()
    assert holds_within(lambda: next(counter) >= 2, 5.0)
    assert not holds_within(lambda: False, 0.05)
