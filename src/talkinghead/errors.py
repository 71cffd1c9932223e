"""The project's single error type.

Every bad input (no face, unreadable audio, a corrupt checkpoint, a config from another version)
raises :class:`TalkingHeadError` with one sentence that says what is wrong and, where possible,
what to do. The CLI prints that sentence and exits with status 2; ``--debug`` adds the traceback. A stop by
SIGINT or SIGTERM raises :class:`KeyboardInterrupt` (:class:`Interrupted` for SIGTERM) and exits with 128 + the
signal number.
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


def first_line(err: BaseException) -> str:
    """The first line of another library's exception message (its type's name when it has none), to quote in a
    sentence."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


class Interrupted(KeyboardInterrupt):
    """A stop asked for by a signal. The CLI raises it on SIGTERM, so a stop by a process manager or a container
    takes the clean-up path of Ctrl-C (temporaries removed, half-made outputs undone); exit status 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum
