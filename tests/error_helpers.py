"""Checks shared by tests of refusals (nothing here is a test itself)."""

from __future__ import annotations

import pytest

from talkinghead.errors import TalkingHeadError


def one_sentence(err: pytest.ExceptionInfo[TalkingHeadError]) -> str:
    """The refusal's message, checked to be one sentence: one line, ending in a full stop, no other stop."""
    text = str(err.value)
    assert "\n" not in text and text.endswith(".") and ". " not in text.rstrip("."), text
    return text
