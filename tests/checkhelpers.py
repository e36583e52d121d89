"""Assertions shared by the check tests: a check passes quietly with one ✓ line, or fails with a hint."""

import pytest


def assert_passes(check, candidate, capsys):
    """One ✓ line printed, nothing returned (so a notebook shows it once)."""
    assert check(candidate) is None
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and printed[0].startswith("✓ "), printed


def assert_fails_with(check, candidate, *fragments):
    """The check raises AssertionError whose message names what was expected, what came back and the hint."""
    with pytest.raises(AssertionError) as info:
        check(candidate)
    message = str(info.value)
    assert message.startswith("✗ "), message
    assert "\n" not in message.strip(), f"a verdict is one paragraph, got: {message!r}"
    for fragment in fragments:
        assert fragment.lower() in message.lower(), f"expected {fragment!r} in: {message}"
    return message
