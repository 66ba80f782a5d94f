"""User-facing error and warning types: each renders as one line that names what is wrong and
where; ``recorded_warnings`` keeps the package's warnings as those lines."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Callable, Iterator


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


def warning_line(message) -> str:
    """A warning's text as one line (what ``PROG: warning: ...`` prints after the prefix)."""
    return " ".join(str(message).split())


@contextmanager
def routed_warnings(handle: Callable[[str], None]) -> Iterator[None]:
    """Inside, every ``AdaSpecWarning`` issued goes to ``handle`` as one line
    (``warning_line``), each time it is issued (the models say once where once matters),
    instead of Python's display; any other warning is shown as Python shows it."""
    with warnings.catch_warnings():
        warnings.simplefilter("always", AdaSpecWarning)
        show = warnings.showwarning

        def route(message, category, filename, lineno, file=None, line=None):
            if not issubclass(category, AdaSpecWarning):
                return show(message, category, filename, lineno, file, line)
            handle(warning_line(message))

        warnings.showwarning = route
        yield


@contextmanager
def recorded_warnings() -> Iterator[list[str]]:
    """Inside, the package's warnings are appended to the yielded list as one line each, not
    shown: for work whose warnings belong to its result (a sweep point records its own; the
    sweep command then says each distinct one once)."""
    lines: list[str] = []
    with routed_warnings(lines.append):
        yield lines
