"""Failures an operator fixes by changing a setting or starting a service, not by reading a traceback."""

from __future__ import annotations


class SetupError(RuntimeError):
    """A wrong setting, a rejected token, an unreachable database or platform API: `otklik` prints the message
    (one or two lines naming the setting and what to do) and exits with status 2."""
