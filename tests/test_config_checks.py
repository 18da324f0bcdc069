"""The range checks every config dataclass shares (`pdebench.config.checks`): each bound on both sides, and each
refusal read back as the whole sentence a user sees (`key=value is not valid: expected ...`)."""

from __future__ import annotations

import math
import re
from types import SimpleNamespace

import numpy as np
import pytest

from pdebench.config.checks import (
    SettingError,
    at_least,
    batch_limit,
    finite_number,
    format_value,
    fraction,
    is_finite_number,
    is_whole_number,
    number_interval,
    positive,
    valid_name,
    valid_seed,
    whole_number,
)


def refusal(check, *args, **kwargs) -> str:
    """The sentence of the SettingError `check(*args, **kwargs)` raises."""
    with pytest.raises(SettingError) as raised:
        check(*args, **kwargs)
    return str(raised.value)


def owner(value: object) -> SimpleNamespace:
    return SimpleNamespace(k=value)


def test_a_setting_error_keeps_its_parts_and_names_the_full_key_and_owner() -> None:
    error = SettingError("hidden", 0, "is not valid: expected {key} > 0")
    assert (error.key, error.value, error.problem) == ("hidden", 0, "is not valid: expected {key} > 0")
    assert str(error) == "hidden=0 is not valid: expected hidden > 0"
    assert error.sentence("model.hidden", "model fno") == (
        "model.hidden=0 for model fno is not valid: expected model.hidden > 0")
    assert isinstance(error, ValueError)  # every command reports it in one line


@pytest.mark.parametrize(("value", "written"), [
    (None, "null"), (True, "true"), (False, "false"), ([0.8, True, None], "[0.8,true,null]"), ((1, 2), "[1,2]"),
    ("cuda", "cuda"), (3, "3")])
def test_values_are_written_as_on_the_command_line(value: object, written: str) -> None:
    assert format_value(value) == written


def test_what_counts_as_a_whole_number_and_a_finite_number() -> None:
    assert all(is_whole_number(v) for v in (0, 3, -2, np.int64(3), np.int8(1)))
    assert not any(is_whole_number(v) for v in (True, np.bool_(True), 3.0, "3", None))
    assert all(is_finite_number(v) for v in (0, 1.5, -2, np.float32(2.0), np.int64(3), 10**300))
    assert not any(is_finite_number(v) for v in (True, np.bool_(False), "1", None, math.nan, math.inf, -math.inf,
                                                 10**400))


def test_at_least_takes_its_minimum_and_refuses_one_below() -> None:
    at_least(owner(2), "k", 2, "a count")
    at_least(owner(None), "k", 2, "a count", optional=True)
    assert refusal(at_least, owner(1), "k", 2, "a count") == "k=1 is not valid: expected a count, a whole number >= 2"
    assert refusal(at_least, owner(1), "k", 2, "a count", optional=True) == (
        "k=1 is not valid: expected a count, a whole number >= 2 (or null)")
    assert refusal(at_least, owner(None), "k", 2, "a count").startswith("k=null is not valid")
    assert refusal(at_least, owner(2.0), "k", 2, "a count").startswith("k=2.0 is not valid")


def test_positive_refuses_zero_unless_allowed() -> None:
    positive(owner(1e-300), "k", "a rate")
    positive(owner(0), "k", "a rate", allow_zero=True)
    assert refusal(positive, owner(0), "k", "a rate") == "k=0 is not valid: expected a rate, a finite number > 0"
    assert refusal(positive, owner(-1e-300), "k", "a rate", allow_zero=True) == (
        "k=-1e-300 is not valid: expected a rate, a finite number >= 0")
    for bad in (math.nan, math.inf, True, "1"):
        with pytest.raises(SettingError):
            positive(owner(bad), "k", "a rate", allow_zero=True)


def test_fraction_takes_both_ends_and_nothing_beyond() -> None:
    for good in (0, 0.5, 1):
        fraction(owner(good), "k", "a share")
    assert refusal(fraction, owner(1.01), "k", "a share") == (
        "k=1.01 is not valid: expected a share, a number between 0 and 1")
    for bad in (-0.01, math.nan, True):
        with pytest.raises(SettingError):
            fraction(owner(bad), "k", "a share")


def test_seeds_and_names_are_checked_by_the_one_rule_and_long_values_are_cut() -> None:
    valid_seed(owner(0), "k")
    valid_seed(owner(None), "k", optional=True)
    valid_name(owner(None), "k", optional=True)
    assert refusal(valid_seed, owner(-1), "k") == (
        "k=-1 is not a valid seed: expected a whole number from 0 to 4294967295")
    assert refusal(valid_seed, owner(None), "k").startswith("k=null is not a valid seed")
    assert refusal(valid_name, owner("a/b"), "k").startswith("k=a/b is not a name: expected 1 to 64 characters")
    eighty, longer = "/" * 80, "/" * 81
    assert refusal(valid_name, owner(eighty), "k").startswith(f"k={eighty} is not a name")
    assert refusal(valid_name, owner(longer), "k").startswith(f"k={eighty}... is not a name")


@pytest.mark.parametrize("good", [None, 0, 7, 0.0, 0.25, 1.0])
def test_a_batch_limit_is_a_count_or_a_fraction(good: object) -> None:
    batch_limit(owner(good), "k")


@pytest.mark.parametrize("bad", [-1, 1.5, -0.5, True, "2"])
def test_a_batch_limit_refuses_anything_else(bad: object) -> None:
    assert refusal(batch_limit, owner(bad), "k") == (
        f"k={format_value(bad)} is not valid: expected a number of batches (a whole number >= 0) or a fraction of "
        "them (a float between 0.0 and 1.0)")


def test_whole_number_returns_a_python_int_from_the_owner_or_the_value_given() -> None:
    count = whole_number(owner(np.int64(3)), "k", 3)
    assert count == 3 and type(count) is int
    assert whole_number(owner("ignored"), "k", 0, value=5) == 5
    assert refusal(whole_number, owner(2), "k", 3) == "k=2 is not valid: expected a whole number >= 3"
    assert refusal(whole_number, owner(2), "k", 3, "a width") == (
        "k=2 is not valid: expected a width, a whole number >= 3")
    assert refusal(whole_number, owner(5), "k", 0, value=-1).startswith("k=-1 is not valid")


def test_finite_number_takes_its_closed_bounds_and_refuses_an_open_one() -> None:
    value = finite_number(owner(np.float32(0.5)), "k")
    assert value == 0.5 and type(value) is float
    assert finite_number(owner(0), "k") == 0.0 and finite_number(owner(2), "k", high=2) == 2.0
    assert finite_number(owner("ignored"), "k", value=-3, low=-math.inf) == -3.0
    assert refusal(finite_number, owner(-0.5), "k") == "k=-0.5 is not valid: expected a finite number >= 0"
    assert refusal(finite_number, owner(0), "k", low_open=True) == "k=0 is not valid: expected a finite number > 0"
    assert refusal(finite_number, owner(2.5), "k", high=2, what="a factor") == (
        "k=2.5 is not valid: expected a factor, a finite number >= 0 and <= 2")
    assert refusal(finite_number, owner(math.nan), "k", low=-math.inf, high=1) == (
        "k=nan is not valid: expected a finite number <= 1")
    assert refusal(finite_number, owner(math.inf), "k", low=-math.inf) == "k=inf is not valid: expected a finite number"


def test_a_number_interval_is_an_ordered_pair_inside_its_bounds() -> None:
    pair = number_interval(owner([0, 2]), "k", 0, 2)
    assert pair == (0.0, 2.0) and all(type(v) is float for v in pair)
    assert number_interval(owner((0.5, 0.5)), "k", 0, low_open=True) == (0.5, 0.5)
    expected = "is not valid: expected a pair [low, high] of finite numbers with 0 <= low <= high <= 2"
    for bad in ([1, 0.5], [0, 3], [-1, 1], [0, 1, 2], [0], "01", None, [0, math.nan], [True, 1]):
        assert refusal(number_interval, owner(bad), "k", 0, 2) == f"k={format_value(bad)} {expected}"
    assert refusal(number_interval, owner([0, 1]), "k", 0, low_open=True, what="band edges") == (
        "k=[0,1] is not valid: expected band edges, a pair [low, high] of finite numbers with 0 < low <= high")
    assert refusal(number_interval, owner([1, 0]), "k", -math.inf) == (
        "k=[1,0] is not valid: expected a pair [low, high] of finite numbers with low <= high")
    assert re.fullmatch(r"k=\[2,1\] .* 1 < low <= high", refusal(number_interval, owner([2, 1]), "k", 1, low_open=True))
