"""How ``sim.compiled.jit`` sets numba up, process-wide, before and while it compiles: what
numba's import leaves out (``Unimportable``, ``not_needed_by_numba``), its reference-count
functions made inlinable (``inlinable_reference_counts``: the compiled loop's code), and two
changes to how long a compile takes without changing what it makes: always-inlined rules
typed without machine code of their own (``typed_without_machine_code``) and compile flags
compared quicker (``quicker_flag_comparisons``); ``set_up_compiler`` sets the compiler up.
Each checks that numba is as it expects and changes nothing where it is not. Nothing here
imports numba at import time.
"""

from __future__ import annotations

import os
import sys


class Unimportable:
    """While active, the named modules and their submodules cannot be imported (a
    ``sys.meta_path`` finder): what numba imports while it is imported or sets up that the
    rules never need.

    * ``scipy.linalg``: when numba sets up its compiler (the first compile or cache load) it
      imports it only to check that BLAS is there for ``np.dot`` and ``np.linalg`` in
      compiled code (``numba.np.arraymath._check_blas``), about 0.1 s per process. The rules
      use neither (summation orders are reproduced by explicit loops, see
      ``goodput.ddot_ones``), so ``setup`` lets numba find no BLAS.
    * ``yaml``: ``numba.core.config`` imports it only to read a ``.numba_config.yaml`` in the
      working directory (about 16 ms per process); ``setup`` leaves it out only where there
      is no such file (numba then reads its settings from the environment alone, as it does
      without the file).

    Afterwards both import as usual."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def find_spec(self, name, path=None, target=None):
        if any(name == n or name.startswith(n + ".") for n in self.names):
            raise ImportError(f"{name} is not needed by the compiled rules")
        return None

    def __enter__(self):
        sys.meta_path.insert(0, self)
        return self

    def __exit__(self, *exc) -> None:
        sys.meta_path.remove(self)


def not_needed_by_numba() -> list[str]:
    """The modules ``Unimportable`` keeps from numba's import in this process: those not
    imported already (else already paid for), ``yaml`` only without a numba config file."""
    names = ["scipy.linalg"]
    if not os.path.isfile(".numba_config.yaml"):
        names.append("yaml")
    return [name for name in names if name not in sys.modules]


def inlinable_reference_counts() -> None:
    """Let LLVM inline numba's ``NRT_incref`` / ``NRT_decref`` into the compiled code.

    Numba defines them ``noinline`` so that its reference-count pruning (run on each function
    before the libraries are linked, and again after a cheap round of inlining) finds them as
    calls. After that pruning, the calls left are real calls: on the loop's borrowed arrays
    (``borrowed``) each is a call, a null test and a return, and the values live across it
    are spilled, hundreds of times an iteration. Without the attribute, the full
    optimisation inlines them (a test and a branch). Applied before numba's runtime compiles
    its own copy (the one every library links); the code the functions run is unchanged.

    Returns whether it takes effect in this process: numba compiles its runtime once per
    process, so where that happened first (the process compiled numba code of its own
    before ``setup()``), the functions keep their ``noinline`` and the compiled code calls
    them. That code is as correct and slower, and is cached in a folder of its own
    (``cache_dir(reference_counts_inlined=False)``), so it never stands in for the
    faster code of other processes."""
    from numba.core.runtime import nrtdynmod, rtsys

    if not getattr(nrtdynmod, "_adaspec_patched", False):
        nrtdynmod._adaspec_inlinable = not getattr(rtsys, "_init", False)
        for name, symbol in (("_define_nrt_incref", "NRT_incref"),
                             ("_define_nrt_decref", "NRT_decref")):
            define = getattr(nrtdynmod, name, None)
            if define is None:
                nrtdynmod._adaspec_inlinable = False
                continue

            def inlinable(module, atomic, _define=define, _symbol=symbol):
                _define(module, atomic)
                module.get_global(_symbol).attributes.discard("noinline")

            setattr(nrtdynmod, name, inlinable)
        nrtdynmod._adaspec_patched = True
    return nrtdynmod._adaspec_inlinable


def quicker_flag_comparisons() -> None:
    """Give numba's compile flags (``TargetConfig``) the same hash and equality, computed
    faster.

    numba types every call of an overload through a cache keyed by, among others, the
    compile flags in use (``_OverloadFunctionTemplate._get_impl``); the flags' ``__hash__``
    and ``__eq__`` build a dict of all their options each time, 7-12 us a call, and a cold
    compile of the loop makes about 350,000 of each: about 8 s of its 100-130 s. Their hash
    is that of the sorted option names (``sorted`` of a dict is its keys), the same for
    every instance of a class, so it is computed once per class; two instances of one class
    whose explicitly set values are equal are equal, and any other pair is compared as numba
    does. Same answers, so numba's behaviour does not change; nothing is patched where
    ``TargetConfig`` is not as expected."""
    from numba.core import targetconfig

    config = getattr(targetconfig, "TargetConfig", None)
    if config is None or getattr(config, "_adaspec_quicker", False):
        return
    hashes: dict = {}
    slow_hash, slow_eq = config.__hash__, config.__eq__

    def __hash__(self):
        cls = type(self)
        value = hashes.get(cls)
        if value is None:
            value = hashes[cls] = hash(tuple(sorted(cls.options)))
        return value

    def __eq__(self, other):
        if (type(other) is type(self)
                and getattr(self, "_values", None) == getattr(other, "_values", ...)):
            return True
        return slow_eq(self, other)

    probe_type = next((cls for cls in config.__subclasses__() if cls.options), None)
    if probe_type is None or not hasattr(probe_type(), "_values"):
        return
    probe = probe_type()
    if slow_hash(probe) != hash(tuple(sorted(probe_type.options))):
        return  # numba hashes flags some other way now
    config.__hash__, config.__eq__ = __hash__, __eq__
    config._adaspec_quicker = True


def typed_without_machine_code(fn) -> None:
    """Let numba type the always-inlined ``fn`` without compiling it to machine code first.

    To type a call of an always-inlined overload numba asks the overload's dispatcher for a
    call template (``_OverloadFunctionTemplate._build_impl`` and ``generic``), and
    ``Dispatcher.get_call_template`` compiles the function in full, LLVM included, although
    the call is then inlined as typed IR and that machine code is never used (numba stores an
    ``_EmptyImplementationEntry`` in its place). Those compiles took 11.9 s of a 130 s cold
    compile of the loop (docs/compiled_engine.md, "Ninth look"). The dispatchers this
    overload makes are set not to compile (``_can_compile``): the call template then
    only folds the argument types, which is all numba uses of it here; typing runs on the
    function's IR as before. Where numba's registry is not as expected, nothing changes."""
    from numba.core import types
    from numba.core.typing.templates import builtin_registry

    for value, typ in reversed(getattr(builtin_registry, "globals", ())):
        if value is fn and isinstance(typ, types.Function):
            template = typ.templates[0]
            break
    else:
        return
    if not hasattr(template, "_get_jit_decorator"):
        return
    base = template._get_jit_decorator

    def _get_jit_decorator(self):
        jitter = base(self)

        def jit_without_compiling(**options):
            decorate = jitter(**options)

            def make(pyfunc):
                dispatcher = decorate(pyfunc)
                if hasattr(dispatcher, "_can_compile"):  # what ``disable_compile`` sets;
                    dispatcher._can_compile = False  # it refuses a dispatcher with no code
                return dispatcher
            return make
        return jit_without_compiling

    template._get_jit_decorator = _get_jit_decorator


def set_up_compiler() -> None:
    """Set up numba's compiler (load every typing and lowering registry), letting it find no
    BLAS (``Unimportable``) unless ``scipy.linalg`` was imported already; its compile flags
    compared quicker (``quicker_flag_comparisons``)."""
    from numba.core.registry import cpu_target
    quicker_flag_comparisons()
    if "scipy.linalg" in sys.modules:
        cpu_target.target_context.refresh()
        return
    with Unimportable("scipy.linalg"):
        cpu_target.target_context.refresh()  # numba's BLAS check happens here
