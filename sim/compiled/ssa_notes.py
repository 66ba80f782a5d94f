"""Numba's SSA pass without its "variable ... is not in scope" note: ``sim.compiled.jit.setup``
calls ``quiet_scope_notes`` so that the IR inliner's renamed variables (``@inlined`` rules)
do not print a note on every cold compile (and fail a test run, where warnings are errors).
Numba is imported only when ``quiet_scope_notes`` runs."""

from __future__ import annotations

import warnings


class WarningsWithoutScopeNotes:
    """``warnings`` as numba's SSA pass (``numba.core.ssa``) sees it: its pedantic note
    "variable ... is not in scope" (a ``NumbaIRAssumptionWarning``) is dropped, every
    other warning passes through.

    Numba writes that note when the first assignment of a variable, which keeps its name,
    finds the name missing from the function's list of local variables; its IR inliner
    (``@inlined``) leaves the renamed variables of an inlined rule out of that list, and
    the assignment is kept as it is either way, so the code is the same (the outputs are:
    ``benchmarks/output_fingerprints.py``). Without this, a cold compile of the loop
    prints the note and a test run (warnings as errors) fails."""

    def warn(self, message, *args, **kwargs):
        from numba.core.errors import NumbaIRAssumptionWarning

        if isinstance(message, NumbaIRAssumptionWarning) and "is not in scope" in str(message):
            return None
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        return warnings.warn(message, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(warnings, name)


def quiet_scope_notes() -> None:
    """Give ``numba.core.ssa`` the ``WarningsWithoutScopeNotes`` (where it has the module
    attribute this numba's SSA pass warns through)."""
    import numba.core.ssa as ssa

    if getattr(ssa, "warnings", None) is warnings:
        ssa.warnings = WarningsWithoutScopeNotes()
