"""GetRandomPassword: defaults, every parameter, length bounds, exclusions."""

import string

import pytest

from helpers import VALIDATION_CODES, expect_error

# Documented ExcludePunctuation set: ! " # $ % & ' ( ) * + , - . / : ; < = > ? @ [ \ ] ^ _ ` { | } ~
PUNCT = set(string.punctuation)
LOWER, UPPER, DIGITS = set(string.ascii_lowercase), set(string.ascii_uppercase), set(string.digits)
ALLOWED = PUNCT | LOWER | UPPER | DIGITS


def pw(sm, **kw) -> str:
    return sm.get_random_password(**kw)["RandomPassword"]


def test_default(sm):
    p = pw(sm)
    assert len(p) == 32  # documented default length
    assert set(p) <= ALLOWED  # no space unless IncludeSpace
    # RequireEachIncludedType defaults to true: one of every type.
    for charset in (LOWER, UPPER, DIGITS, PUNCT):
        assert set(p) & charset, p


def test_passwords_differ(sm):
    assert len({pw(sm) for _ in range(5)}) == 5


@pytest.mark.parametrize("length", [1, 4, 100, 4096])
def test_length(sm, length):
    kw = {"PasswordLength": length}
    if length < 4:
        kw["RequireEachIncludedType"] = False
    assert len(pw(sm, **kw)) == length


@pytest.mark.parametrize("length", [0, 4097, -1])
def test_length_out_of_range(sm_raw, length):
    expect_error(VALIDATION_CODES, sm_raw.get_random_password, PasswordLength=length)


def test_exclude_numbers(sm):
    p = pw(sm, PasswordLength=512, ExcludeNumbers=True)
    assert not set(p) & DIGITS and set(p) & LOWER and set(p) & UPPER and set(p) & PUNCT


def test_exclude_punctuation(sm):
    p = pw(sm, PasswordLength=512, ExcludePunctuation=True)
    assert not set(p) & PUNCT and set(p) & DIGITS


def test_exclude_uppercase(sm):
    p = pw(sm, PasswordLength=512, ExcludeUppercase=True)
    assert not set(p) & UPPER and set(p) & LOWER


def test_exclude_lowercase(sm):
    p = pw(sm, PasswordLength=512, ExcludeLowercase=True)
    assert not set(p) & LOWER and set(p) & UPPER


def test_only_digits(sm):
    p = pw(sm, PasswordLength=64, ExcludePunctuation=True, ExcludeUppercase=True, ExcludeLowercase=True)
    assert set(p) <= DIGITS and len(p) == 64


def test_exclude_characters(sm):
    excluded = "abcABC123!@#"
    p = pw(sm, PasswordLength=2048, ExcludeCharacters=excluded)
    assert len(p) == 2048
    assert not set(p) & set(excluded)


def test_include_space(sm):
    p = pw(sm, PasswordLength=4096, IncludeSpace=True)
    # 4096 draws from ~95 characters: the chance of no space is about e^-43.
    assert " " in p
    assert set(p) <= ALLOWED | {" "}


def test_require_each_included_type_on_short_password(sm):
    for _ in range(20):
        p = pw(sm, PasswordLength=4, RequireEachIncludedType=True)
        assert set(p) & LOWER and set(p) & UPPER and set(p) & DIGITS and set(p) & PUNCT


def test_require_each_type_with_exclusions(sm):
    for _ in range(10):
        p = pw(sm, PasswordLength=3, ExcludePunctuation=True, RequireEachIncludedType=True)
        assert set(p) & LOWER and set(p) & UPPER and set(p) & DIGITS


def test_everything_excluded_rejected(sm):
    # Nothing left to draw from. Docs are silent on the code; a parameter error is asserted.
    expect_error(VALIDATION_CODES, sm.get_random_password, PasswordLength=8, ExcludeNumbers=True,
                 ExcludePunctuation=True, ExcludeUppercase=True, ExcludeLowercase=True)
