"""Rules written once, run interpreted or compiled.

``@jitable`` marks a plain Python function written in the subset numba compiles (scalars,
numpy arrays, tuples, explicit loops). Python code calls it as any function; compiled code
(``sim.compiled.engine``) calls it as compiled code, because ``setup()`` registers every
jitable with ``numba.extending.register_jitable`` (which leaves the function object itself
unchanged, so the Python callers keep the plain function); ``@inlined`` is a jitable that
compiled callers inline; ``@gil_free`` one whose compiled dispatcher releases the GIL.
``compiled(fn)`` is the numba-compiled dispatcher of a jitable, for Python callers whose rule
works on arrays (loops that are slow interpreted).

Numba is imported by ``setup()`` only: importing a module that defines jitables costs
nothing, so ``adaspec-sim --help`` and the protocol path of a user's own policy never wait
for it.

Compiled code is cached on disk (numba's ``cache=True``) under ``$ADASPEC_SIM_JIT_CACHE``
(default ``~/.cache/adaspec-sim/jit``; ``off`` keeps it in memory only), in a folder named
by a hash of the source of every module that defines jitables and of the numba, llvmlite,
numpy and Python versions: numba's own cache checks only the timestamp of the file that
holds the compiled entry point, not the files of the functions it calls, so a changed rule
anywhere gets a fresh folder instead of a stale binary. Making a new folder removes all but
the ``KEEP_FOLDERS`` most recently used (``open_cache_folder``).

Loading cached code does not set up numba's compiler (``_CacheLoadsWithoutCompiler``): numba
installs every typing and lowering registry before it even looks in its cache, about 0.25 s
per process, while running machine code from the cache needs only numba's runtime. The
compiler is set up (``set_up_compiler``) when something has to be compiled after all; inside
``compile_notices(handle)`` each such miss is announced first (the commands print it: the
loop's first compile takes minutes, and a silent command looks hung).

``borrowed(array)`` is the array itself to Python; in compiled code it is the same array
without numba's reference count (see its docstring): the compiled loop borrows its
arguments once, so the rules it runs millions of times count no references. ``setup()``
also lets LLVM inline numba's reference-count functions (``inlinable_reference_counts``),
so what is left of them is a null test in place, not a call.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from sim.compiled import numba_setup
from sim.compiled.numba_setup import (Unimportable, inlinable_reference_counts,
                                      not_needed_by_numba, set_up_compiler,
                                      typed_without_machine_code)
from sim.compiled.ssa_notes import quiet_scope_notes

ENV_VAR = "ADASPEC_SIM_JIT_CACHE"

#: Modules that define jitable rules or compiled entry points, or constants compiled code
#: reads (numba freezes a global's value into the machine code); ``setup`` imports them all
#: (so every rule is registered before anything compiles) and ``source_key`` hashes their
#: source, so a change to any of them compiles again. (numba itself checks only the file
#: of the function it caches: a changed constant or callee elsewhere would load stale code.)
RULE_MODULES = (
    "sim.compiled.layout",
    "sim.core.scheduler_state",
    "sim.core.scheduler",
    "sim.core.speculation",
    "sim.acceptance.base",
    "sim.acceptance.model",
    "sim.latency.ops",
    "sim.latency.exact",
    "sim.latency.pass_costs",
    "sim.latency.profile",
    "sim.latency.piecewise",
    "sim.latency.estimator",
    "sim.latency.iteration",
    "sim.policies.goodput",
    "sim.policies.recovery",
    "sim.policies.trim_selection",
    "sim.policies.adaspec_rules",
    "sim.policies.adaspec",
    "sim.policies.smartspec",
    "sim.policies.threshold",
    "sim.policies.oracle",
    "sim.policies.disable_by_batch",
    "sim.policies.engine_rules",
    "sim.policies.vllm_dynamic",
    "sim.policies.trtllm",
    "sim.policies.sglang_adaptive",
    "sim.drafters.costs",
    "sim.drafters.plan",
    "sim.drafters.trim",
    "sim.compiled.tables",
    "sim.compiled.pricing",
    "sim.compiled.arenas",
    "sim.compiled.stream",
    "sim.compiled.engine",
    "sim.compiled.loop",
)

_JITABLE: list = []
_INLINED: set = set()
_GIL_FREE: set = set()
_DISPATCHERS: dict = {}
_READY = False
_NOTICES: list = []  # the handlers ``compile_notices`` installed, innermost last

#: How long a cold compile of a ``gil_free`` entry point (the simulator's whole loop, its
#: rules inlined) takes: 100-105 s of CPU for a 20-request adaspec:8 command on this
#: project's 2-core VM, 2026-12-02 (README, "Compiled code is cached";
#: docs/compiled_engine.md, "Tenth look").
LOOP_COMPILE_HINT = "about 2 min of CPU on a 2-core machine"


@contextmanager
def compile_notices(handle: Callable[[str], None]) -> Iterator[None]:
    """Inside, every compiled function that numba has to compile because the disk cache
    holds no copy of it (``_CacheLoadsWithoutCompiler``) is announced to ``handle`` as one
    line, before the compile starts: which function, where the cache is, and how long the
    loop's compile takes. Nothing is announced when the cache is off (``off``: the user
    asked for a compile every process) or outside this context (library callers, sweep
    points: what a run prints never depends on the state of the cache)."""
    _NOTICES.append(handle)
    try:
        yield
    finally:
        _NOTICES.remove(handle)


def compile_notice(fn) -> str:
    """The line ``compile_notices`` hands over when ``fn`` is about to be compiled."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    cost = LOOP_COMPILE_HINT if fn in _GIL_FREE else "seconds"
    return (f"compiling {name} with numba, once ({cost}): no copy in the cache {_CACHE[0]} "
            f"yet (the first run after an install or an update); later commands load it")


def jitable(fn):
    """Mark ``fn`` as a rule the compiled loop may call (see the module docstring)."""
    _JITABLE.append(fn)
    if _READY:
        _register(fn)
    return fn


def inlined(fn):
    """``jitable``, and compiled callers inline it (numba's IR inlining) instead of calling
    it: for the small rules of the hot path that take many arrays (the estimator's tables),
    where a call's reference counting of every array argument (two atomic operations each)
    costs more than the rule's own work. The same code runs either way."""
    _INLINED.add(fn)
    return jitable(fn)


def gil_free(fn):
    """``jitable``, and its compiled dispatcher (``compiled``) runs without holding Python's
    GIL, so other Python threads run meanwhile. Only for entry points that touch no Python
    object (numba refuses to compile one that does)."""
    _GIL_FREE.add(fn)
    return jitable(fn)


def borrowed(array):
    """``array`` itself; in compiled code, a view of ``array`` that numba does not count
    references to (no meminfo).

    Numba counts references to every array it passes around: each assignment of an array
    and each array argument of an inlined rule is an atomic increment and a decrement, and
    the compiled loop's rules pass tables and state arrays millions of times per run (about
    two fifths of AdaSpec's loop was those counts). A view without meminfo makes each of
    them a null test. Only for arrays that live longer than the compiled call that borrows
    them (the arguments Python passes to ``run_chunk``, which holds them until it returns)
    and never returned to Python or kept past that call: nothing else owns the memory of a
    borrowed view. Views of a borrowed array (``a[i]``, slices) are borrowed too."""
    return array


def prefetch(array, index):
    """A hint, no effect on results: in compiled code, ask the CPU to bring the cache line
    of ``array[index]`` (``index`` along the first axis; its first element) towards the core
    now, ahead of a load that will need it (LLVM's ``llvm.prefetch``: a read, kept in every
    cache level); nothing in Python. Only for an ``index`` within the array (never read, but
    the hint should name memory the array owns)."""
    return None


def _register_prefetch() -> None:
    """``prefetch`` for compiled callers: an intrinsic that computes the address of the
    row and calls ``llvm.prefetch`` on it."""
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic, overload

    @intrinsic
    def _prefetch(typingctx, array, index):
        def codegen(context, builder, signature, args):
            ary = context.make_array(signature.args[0])(context, builder, value=args[0])
            offset = builder.mul(context.cast(builder, args[1], signature.args[1], types.intp),
                                 cgutils.unpack_tuple(builder, ary.strides)[0])
            byte = ir.IntType(8).as_pointer()
            address = builder.gep(builder.bitcast(ary.data, byte), [offset])
            i32 = ir.IntType(32)
            hint = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [byte, i32, i32, i32]),
                "llvm.prefetch.p0i8")
            builder.call(hint, [address, i32(0), i32(3), i32(1)])  # read, keep, data
            return context.get_dummy_value()
        return types.none(array, index), codegen

    @overload(prefetch)
    def _prefetch_overload(array, index):
        if isinstance(array, types.Array) and isinstance(index, types.Integer):
            return lambda array, index: _prefetch(array, index)
        return None


def _register_borrowed() -> None:
    """``borrowed`` for compiled callers: an intrinsic that copies the array's data
    pointer, shape and strides into a new array structure whose meminfo and parent are
    null."""
    from numba.core import cgutils, types
    from numba.extending import intrinsic, overload

    @intrinsic
    def _borrow(typingctx, array):
        def codegen(context, builder, signature, args):
            source = context.make_array(signature.args[0])(context, builder, value=args[0])
            view = context.make_array(signature.return_type)(context, builder)
            for field in ("data", "shape", "strides", "itemsize", "nitems"):
                setattr(view, field, getattr(source, field))
            view.meminfo = cgutils.get_null_value(view.meminfo.type)
            view.parent = cgutils.get_null_value(view.parent.type)
            return view._getvalue()
        return array(array), codegen

    @overload(borrowed)
    def _borrowed(array):
        if isinstance(array, types.Array):
            return lambda array: _borrow(array)
        return None


def _register(fn) -> None:
    from numba.extending import register_jitable
    if fn in _INLINED:
        register_jitable(inline="always")(fn)
        typed_without_machine_code(fn)
    else:
        register_jitable(fn)


def cache_dir(reference_counts_inlined: bool = True) -> Path | None:
    """Where compiled code is cached (a folder per source hash), or None when off; code
    compiled where numba's reference counts could not be made inlinable
    (``inlinable_reference_counts``) has a folder of its own."""
    value = os.environ.get(ENV_VAR)
    if value is not None and value.strip().lower() in ("", "off", "0", "none"):
        return None
    root = Path(value).expanduser() if value else Path.home() / ".cache" / "adaspec-sim" / "jit"
    return root / source_key(reference_counts_inlined)


def cache_folder_in_use() -> Path | None:
    """The folder ``setup()`` pointed numba's cache at (None: not set up, or no cache)."""
    return Path(_CACHE[0]) if _CACHE[0] is not None else None


#: source folders the compiled-code cache keeps (about 12-30 MB each): the one in use and
#: the most recently used others; older ones are removed when a new one is made
KEEP_FOLDERS = 4


def open_cache_folder(folder: Path) -> Path | None:
    """Make (or mark as used, by its modification time) the cache ``folder``; when it is new,
    remove all but the ``KEEP_FOLDERS`` most recently used source folders beside it (names of
    16 hex digits, as ``source_key`` makes; nothing else there is touched). None when it
    cannot be written: an unwritable cache only costs compiling again."""
    try:
        made = not folder.is_dir()
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    try:
        os.utime(folder)
    except OSError:  # a read-only cache still serves what it holds
        pass
    if made:
        _prune(folder.parent, KEEP_FOLDERS)
    return folder


def _prune(root: Path, keep: int) -> None:
    """Remove all but the ``keep`` most recently used source folders under ``root``."""
    import shutil

    def used(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    try:
        folders = [p for p in root.iterdir()
                   if len(p.name) == 16 and all(c in "0123456789abcdef" for c in p.name)
                   and p.is_dir()]
    except OSError:
        return
    for path in sorted(folders, key=used, reverse=True)[keep:]:
        shutil.rmtree(path, ignore_errors=True)


def source_key(reference_counts_inlined: bool = True) -> str:
    """Hash of the rule modules' source and the compiler's versions (16 hex digits), and of
    whether numba's reference counts are inlined (``inlinable_reference_counts``)."""
    import llvmlite
    import numba
    import numpy

    digest = hashlib.sha256()
    for name in RULE_MODULES:
        spec = importlib.util.find_spec(name)
        origin = spec.origin if spec is not None else None
        if origin:
            digest.update(name.encode())
            digest.update(Path(origin).read_bytes())
    digest.update(Path(__file__).read_bytes())
    digest.update(Path(numba_setup.__file__).read_bytes())  # how numba is set up
    versions = (numba.__version__, llvmlite.__version__, numpy.__version__,
                sys.version.split()[0])
    digest.update(repr(versions).encode())
    if not reference_counts_inlined:
        digest.update(b"reference counts called")
    return digest.hexdigest()[:16]


def setup() -> None:
    """Import numba, let it inline its reference counts (``inlinable_reference_counts``),
    set up its compiler (without BLAS: ``Unimportable``), point its cache at
    ``cache_dir()`` and register every jitable."""
    global _READY
    if _READY:
        return
    with Unimportable(*not_needed_by_numba()):
        import numba.extending  # noqa: F401
    for name in RULE_MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)
    folder = cache_dir(inlinable_reference_counts())
    if folder is not None:
        folder = open_cache_folder(folder)
    _CACHE[0] = str(folder) if folder is not None else None
    if folder is None:  # everything will be compiled
        set_up_compiler()
    _register_borrowed()
    _register_prefetch()
    from sim.compiled.stream import register_compiled
    register_compiled()
    quiet_scope_notes()
    for fn in _JITABLE:
        _register(fn)
    _READY = True


def is_set_up() -> bool:
    """Whether ``setup()`` has run in this process (numba imported, rules registered)."""
    return _READY


_CACHE: list[str | None] = [None]


def compiled(fn):
    """The compiled (numba) dispatcher of jitable ``fn``, compiled on its first call and
    cached on disk."""
    dispatcher = _DISPATCHERS.get(fn)
    if dispatcher is None:
        setup()
        import numba
        folder = _CACHE[0]
        if folder is None:
            dispatcher = numba.njit(nogil=fn in _GIL_FREE)(fn)
        else:  # numba reads the folder when the dispatcher is made: ours, then the user's
            previous = numba.config.CACHE_DIR
            numba.config.CACHE_DIR = folder
            try:
                dispatcher = numba.njit(cache=True, nogil=fn in _GIL_FREE)(fn)
                _load_without_compiler(dispatcher, fn)
            finally:
                numba.config.CACHE_DIR = previous
        _DISPATCHERS[fn] = dispatcher
    return dispatcher


def _load_without_compiler(dispatcher, fn) -> None:
    """Give ``dispatcher`` the cache of ``_CacheLoadsWithoutCompiler`` (made while numba's
    ``CACHE_DIR`` points at ours); where this numba's cache lacks what it relies on, the
    dispatcher keeps numba's own cache (which sets up the compiler first: slower, same code)."""
    from numba.core.caching import FunctionCache
    if not isinstance(getattr(dispatcher, "_cache", None), FunctionCache):
        return  # no disk cache to replace (e.g. NUMBA_DISABLE_JIT: a plain function)
    if not all(hasattr(FunctionCache, name) for name in _CACHE_INTERNALS):
        return
    dispatcher._cache = _cache_class(FunctionCache)(fn)


#: what ``_CacheLoadsWithoutCompiler`` uses of numba's ``FunctionCache`` besides the public
#: ``load_overload`` it overrides
_CACHE_INTERNALS = ("_load_overload", "_guard_against_spurious_io_errors")
_CACHE_CLASS: list = []


def _content_keyed(impl_class):
    """numba's cache implementation ``impl_class`` with ``_ContentLocator`` tried first.

    numba files a function's cached code under a hash of its source file's folder and keeps it
    while that file's modification time and size are unchanged, so a fresh checkout, a second
    clone or a reinstall of the same sources compiled the loop again (about 2 min), although
    our cache folder is named by a hash of every rule module's source already
    (``source_key``). ``_ContentLocator`` files it under, and checks it against, a hash of the
    file's bytes instead: the same sources anywhere, at any time, load the same code; a
    changed file never does. Where numba's locators are not as expected, numba's own are
    used."""
    import numba.core.caching as caching

    locator = getattr(caching, "UserProvidedCacheLocator", None)
    if locator is None or not hasattr(impl_class, "_locator_classes"):
        return impl_class

    class _ContentLocator(locator):
        """``UserProvidedCacheLocator`` keyed by the source file's bytes, not its place and
        modification time."""

        @classmethod
        def get_suitable_cache_subpath(cls, py_file):
            return "src_" + _file_digest(py_file)

        def get_source_stamp(self):
            return _file_digest(self._py_file)

    class _ContentKeyedImpl(impl_class):
        _locator_classes = [_ContentLocator, *impl_class._locator_classes]

    return _ContentKeyedImpl


def _file_digest(path: str) -> str:
    """SHA-256 of a file's bytes, 16 hex digits (a cached function's place and stamp)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def _cache_class(base):
    """``_CacheLoadsWithoutCompiler``, made once on numba's ``FunctionCache`` (numba is
    imported only by ``setup``)."""
    if not _CACHE_CLASS:
        class _CacheLoadsWithoutCompiler(base):
            """numba's disk cache of one function, loading a cached overload with numba's
            runtime initialised but without setting up its compiler (numba's own
            ``load_overload`` refreshes the target context first: every typing and lowering
            registry, ~0.25 s per process), and without parsing the overload's LLVM bitcode
            where the names it defines were recorded (``sim.compiled.symbol_index``). On a
            miss the compiler is set up (``set_up_compiler``) and numba compiles as usual.
            Cached code is filed by its source file's content (``_content_keyed``)."""

            _impl_class = _content_keyed(base._impl_class)

            def load_overload(self, sig, target_context):
                from numba.core.runtime import rtsys

                from sim.compiled.symbol_index import names_recorded
                rtsys.initialize(target_context)  # what the cached code links against
                result = None
                try:
                    with (self._guard_against_spurious_io_errors(),
                          names_recorded(target_context.codegen(), _CACHE[0])):
                        result = self._load_overload(sig, target_context)
                except Exception:  # this numba needs its registries to rebuild the code:
                    set_up_compiler()  # numba's own load, after the full set-up
                    return super().load_overload(sig, target_context)
                if result is None:  # a miss: numba compiles next
                    if _NOTICES:
                        _NOTICES[-1](compile_notice(self._py_func))
                    set_up_compiler()
                return result

        _CACHE_CLASS.append(_CacheLoadsWithoutCompiler)
    return _CACHE_CLASS[0]


def entry(fn):
    """Decorator for a compiled entry point defined in ``sim.compiled``: like ``jitable``,
    and ``compiled(fn)`` gives its dispatcher."""
    return jitable(fn)
