"""User-facing error types: each renders as one line that names what is wrong and where."""

from __future__ import annotations


class AdaSpecError(Exception):
    """Base class of every error the commands print as a single line (exit status 2)."""


class InputError(AdaSpecError):
    """Bad input data: names the file, the 1-based line and the column when known."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 column: str | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        super().__init__(str(self))

    def __str__(self) -> str:
        where = []
        if self.path is not None:
            where.append(str(self.path))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        prefix = ", ".join(where)
        return f"{prefix}: {self.message}" if prefix else self.message


class ConfigError(AdaSpecError):
    """A bad option, name or parameter (unknown policy, GPU, model; impossible SLO; ...)."""


class AdaSpecWarning(Warning):
    """Base class of every warning the commands print as a single line
    (``<command>: warning: ...``, ``sim.cli_common.run_command``); the library issues them
    with :func:`warnings.warn` (a caller may record, silence or raise them)."""
