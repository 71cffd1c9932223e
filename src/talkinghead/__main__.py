"""``python -m talkinghead``: the same as the ``talkinghead`` command."""

import sys

from talkinghead.cli import main

sys.exit(main())
