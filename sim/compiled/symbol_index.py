"""Load a cached compiled library without parsing its LLVM bitcode.

numba caches a compiled function as its machine code plus the LLVM bitcode of its module,
kept so that a later compilation can link the module in and inline from it
(``CPUCodeLibrary._get_module_for_linking``). Loading parses that bitcode (about 0.7 MB for
the compiled loop: 40-100 ms here, the largest part of loading it) for the one thing a run
needs from it: the names the module defines, which numba's JIT engine checks before it hands
out a function's address (``JITCodeLibrary.get_pointer_to_function``).

``names_recorded(codegen, folder)`` records those names once per cached library, beside
numba's files (``FOLDER/symbols/SHA1.txt``, SHA1 of the machine code and the bitcode, one
name per line), and while it is active later loads give the engine the recorded names, load
the machine code exactly as numba does, and leave the bitcode unparsed until something asks
for the module (then it is parsed: ``_ModuleOnDemand``). Where the index cannot be read or
written, or numba's library lacks what this relies on, numba's own loading runs.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

#: what this relies on in numba's JIT code library and engine
_LIBRARY_INTERNALS = ("enable_object_caching", "_set_compiled_object",
                      "_finalize_final_module", "_get_module_for_linking")
_ON_DEMAND: dict[type, type] = {}


@contextmanager
def names_recorded(codegen, folder: str | None) -> Iterator[None]:
    """While active, ``codegen`` unserializes cached libraries with the recorded names of
    ``folder``'s index (module doc); ``folder`` None: numba's own loading."""
    engine = getattr(codegen, "_engine", None)
    library_class = getattr(codegen, "_library_class", None)
    if (folder is None or not hasattr(engine, "_defined_symbols")
            or not all(hasattr(library_class, name) for name in _LIBRARY_INTERNALS)):
        yield
        return
    numba_own = codegen.unserialize_library
    codegen.unserialize_library = lambda state: _unserialize(codegen, numba_own, state,
                                                             Path(folder) / "symbols")
    try:
        yield
    finally:
        del codegen.unserialize_library  # the class's method again


def defined_names(module) -> list[str]:
    """The names an LLVM module defines (functions and globals that are not declarations),
    as numba's engine records them (``JitEngine._load_defined_symbols``), sorted."""
    return sorted({g.name for group in (module.functions, module.global_variables)
                   for g in group if not g.is_declaration})


def index_path(index: Path, object_code: bytes, bitcode: bytes) -> Path:
    """The index file of one cached library."""
    digest = hashlib.sha1(object_code)
    digest.update(bitcode)
    return index / f"{digest.hexdigest()}.txt"


def _unserialize(codegen, numba_own, state, index: Path):
    name, kind, data = state
    if kind != "object":
        return numba_own(state)
    object_code, bitcode = data
    path = index_path(index, object_code, bitcode)
    try:
        names = path.read_text(encoding="utf-8").split("\n")
    except OSError:
        library = numba_own(state)  # parses the bitcode; record what it defines
        _write(path, defined_names(library._shared_module))
        return library
    library = codegen.create_library(name)
    library.__class__ = _on_demand(type(library))
    library._bitcode_on_demand = bitcode
    # numba's own steps for a library cached as machine code (CPUCodeLibrary._unserialize),
    # with the recorded names in place of the parsed module's
    library.enable_object_caching()
    library._set_compiled_object(object_code)
    library._finalize_final_module()
    codegen._engine._defined_symbols.update(names)
    return library


def _write(path: Path, names: list[str]) -> None:
    """Write the index file whole or not at all (parallel sweep workers load the same
    library); an unwritable cache only means parsing again next time."""
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text("\n".join(names), encoding="utf-8")
        os.replace(partial, path)
    except OSError:
        try:
            partial.unlink(missing_ok=True)
        except OSError:
            pass


def _on_demand(base: type) -> type:
    """``base`` (numba's JIT code library) whose module for linking is parsed from the
    recorded bitcode when first asked for."""
    if base not in _ON_DEMAND:
        class _ModuleOnDemand(base):
            @property
            def _shared_module(self):
                state = self.__dict__
                if state.get("_shared_module") is None and "_bitcode_on_demand" in state:
                    import llvmlite.binding as ll
                    state["_shared_module"] = ll.parse_bitcode(state.pop("_bitcode_on_demand"))
                return state.get("_shared_module")

            @_shared_module.setter
            def _shared_module(self, module) -> None:
                self.__dict__["_shared_module"] = module

        _ON_DEMAND[base] = _ModuleOnDemand
    return _ON_DEMAND[base]
