"""The project's single error type.

Every bad input (no face, unreadable audio, a corrupt checkpoint, a config from another version)
raises :class:`TalkingHeadError` with one sentence that says what is wrong and, where possible,
what to do. The CLI prints that sentence and exits with status 2; ``--debug`` adds the traceback.
"""

from __future__ import annotations


class TalkingHeadError(Exception):
    """A user-facing error: ``str(err)`` is one clear sentence."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        message = " ".join(message.split())
        if message and message[-1] not in ".!?":
            message += "."
        super().__init__(message)
