"""The errors a user can cause, told apart from bugs.

Every error whose message is the one sentence a user needs (a bad setting, a missing or corrupt file, a name
no registry knows, a busy folder, a full disk) derives from `UserError`. The commands print exactly those as one
`error: ...` line and exit 1; any other exception is a bug and keeps its traceback. The concrete classes also
derive from the builtin a caller would expect (`ValueError`, `KeyError`, `FileNotFoundError`), so code that
catches those keeps working. This module imports nothing, so every layer may use it.
"""

from __future__ import annotations


class UserError(Exception):
    """Base of every error caused by what a user gave (settings, files, names); its message is one sentence."""


class InvalidSetting(UserError, ValueError):
    """A setting (a config value, a model or solver hyper-parameter) that cannot work as given."""


class UnknownName(UserError, KeyError, ValueError):
    """A name that no registry holds (`model=fnoo`); printed as its message, not as a KeyError's repr. Both a
    KeyError (a failed lookup) and a ValueError (a bad setting), as callers of either expect."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MissingFile(UserError, FileNotFoundError):
    """A file or folder a user named (a checkpoint, a result directory) that is not there."""
