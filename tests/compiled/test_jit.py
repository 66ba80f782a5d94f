"""sim.compiled.jit: what numba is set up with."""

from __future__ import annotations

import pytest


def test_scipy_linalg_is_blocked_only_while_numba_sets_up():
    """``Unimportable`` refuses scipy.linalg inside the block, and nothing after it."""
    import importlib
    import sys

    from sim.compiled.numba_setup import Unimportable

    saved = {k: v for k, v in sys.modules.items() if k.startswith("scipy.linalg")}
    for name in saved:
        del sys.modules[name]
    try:
        with Unimportable("scipy.linalg", "yaml"):
            with pytest.raises(ImportError):
                importlib.import_module("scipy.linalg.cython_blas")
        assert importlib.import_module("scipy.linalg").__name__ == "scipy.linalg"
        assert not any(isinstance(f, Unimportable) for f in sys.meta_path)
    finally:
        sys.modules.update(saved)


def test_yaml_is_left_out_of_numbas_import_only_without_a_numba_config_file(tmp_path,
                                                                            monkeypatch):
    """numba imports yaml only to read ``.numba_config.yaml`` in the working directory:
    left out where there is none; what is imported already is never in the list."""
    import sys

    from sim.compiled.numba_setup import not_needed_by_numba

    monkeypatch.chdir(tmp_path)
    monkeypatch.delitem(sys.modules, "yaml", raising=False)
    monkeypatch.delitem(sys.modules, "scipy.linalg", raising=False)
    assert not_needed_by_numba() == ["scipy.linalg", "yaml"]
    (tmp_path / ".numba_config.yaml").write_text("DISABLE_JIT: 0\n")
    assert not_needed_by_numba() == ["scipy.linalg"]
    monkeypatch.setitem(sys.modules, "scipy.linalg", object())
    assert not_needed_by_numba() == []


def test_a_fresh_process_imports_numba_without_yaml():
    import os
    import subprocess
    import sys

    code = ("import sys\nfrom sim.compiled import jit\njit.setup()\n"
            "print('numba' in sys.modules, 'yaml' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]


def test_an_inlined_rule_is_the_same_function_and_compiled_callers_get_its_result():
    """``@inlined`` leaves the function as it is (Python callers call it), registers it
    as a jitable, and a compiled caller computes what the interpreted one does."""
    import numpy as np

    from sim.compiled import jit

    def weight(a, i):
        return 0.5 * a[i] + i

    marked = jit.inlined(weight)

    def total(a):
        s = 0.0
        for i in range(a.shape[0]):
            s += weight(a, i)
        return s

    assert marked is weight and weight in jit._INLINED and weight in jit._JITABLE
    values = np.array([0.1, 0.7, 3.0])
    assert weight(values, 2) == 3.5
    jit.jitable(total)
    assert jit.compiled(total)(values) == total(values) == 0.05 + 1.35 + 3.5


def test_an_inlined_rule_is_typed_for_its_callers_without_machine_code_of_its_own():
    """numba would compile an always-inlined overload to machine code only to type a call of
    it (``numba_setup.typed_without_machine_code``): the overload's dispatchers hold no compiled code,
    and the caller, which inlines the rule's IR, computes what Python does."""
    import numpy as np
    from numba.core import types
    from numba.core.typing.templates import builtin_registry

    from sim.compiled import jit

    def scaled(a, i):
        return 2.0 * a[i] - i

    def caller(a):
        s = 0.0
        for i in range(a.shape[0]):
            s += scaled(a, i)
        return s

    jit.inlined(scaled)
    jit.jitable(caller)
    jit.setup()
    import numba
    values = np.array([0.25, 1.5, 4.0])  # compiled here, not loaded from the disk cache
    assert numba.njit(caller)(values) == caller(values) == 0.5 + 2.0 + 6.0
    [template] = [typ.templates[0] for value, typ in builtin_registry.globals
                  if value is scaled and isinstance(typ, types.Function)]
    dispatchers = [disp for disp, _args in template._impl_cache.values()]
    assert dispatchers and all(disp.signatures == [] and not disp._can_compile
                               for disp in dispatchers)


def test_a_borrowed_array_is_the_array_itself_in_python_and_shares_its_memory_compiled():
    """``borrowed`` gives Python the array itself; in compiled code the borrowed array and
    views of it read and write the caller's memory (only the reference count is gone), and
    anything but an array is refused at compile time."""
    import numba
    import numpy as np

    from sim.compiled import jit

    values = np.arange(12.0).reshape(3, 4)
    assert jit.borrowed(values) is values

    def scale_rows(a, factor):
        b = jit.borrowed(a)
        row_sums = 0.0
        for i in range(b.shape[0]):
            row = b[i]  # a view of a borrowed array
            for j in range(row.shape[0]):
                row[j] *= factor
            row_sums += row.sum()
        return row_sums

    jit.jitable(scale_rows)
    expected = values * 2.0
    assert jit.compiled(scale_rows)(values, 2.0) == expected.sum()
    assert np.array_equal(values, expected)  # written through to the caller's array

    def borrow_a_number(x):
        return jit.borrowed(x)

    jit.jitable(borrow_a_number)
    with pytest.raises(numba.core.errors.TypingError):
        jit.compiled(borrow_a_number)(3.0)



def test_prefetch_is_a_hint_python_ignores_and_compiled_code_compiles_to_one_instruction():
    """``prefetch`` returns None in Python; a compiled caller gets the same results with or
    without it (the hint reads nothing back), on 1-D and 2-D arrays, and only arrays with
    an integer index are accepted."""
    import numba
    import numpy as np

    from sim.compiled import jit

    cells = np.arange(40.0).reshape(20, 2)
    assert jit.prefetch(cells, 3) is None

    def gather(cells, rows, hint):
        total = 0.0
        for i in range(rows.shape[0]):
            if hint and i + 1 < rows.shape[0]:
                jit.prefetch(cells, rows[i + 1])
                jit.prefetch(cells[:, 0], rows[i + 1])
            total += cells[rows[i], 0] * (i + 1)
        return total

    jit.jitable(gather)
    rows = np.array([19, 0, 7, 7, 12])
    expected = gather(cells, rows, True)
    assert expected == 38.0 + 0.0 + 42.0 + 56.0 + 120.0
    fn = jit.compiled(gather)
    assert fn(cells, rows, True) == fn(cells, rows, False) == expected
    fresh = numba.njit(gather)  # not from the cache, so its machine code can be read
    assert fresh(cells, rows, True) == expected
    assert "prefetch" in fresh.inspect_asm(fresh.signatures[0])

    def prefetch_a_number(x):
        jit.prefetch(x, 0)

    jit.jitable(prefetch_a_number)
    with pytest.raises(numba.core.errors.TypingError):
        jit.compiled(prefetch_a_number)(3.0)


def test_numbas_scope_note_is_dropped_and_every_other_warning_kept():
    """``WarningsWithoutScopeNotes`` (numba's SSA pass warns through it after ``setup``):
    the "is not in scope" note of an inlined rule's variables goes, any other warning,
    the same category included, is raised as before."""
    import warnings

    import numba.core.ssa as ssa
    from numba.core.errors import NumbaIRAssumptionWarning, NumbaWarning

    from sim.compiled import jit
    from sim.compiled.ssa_notes import WarningsWithoutScopeNotes

    jit.setup()
    assert isinstance(ssa.warnings, WarningsWithoutScopeNotes)
    shim = WarningsWithoutScopeNotes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shim.warn(NumbaIRAssumptionWarning("variable 'draw_v1__vphi2_1' is not in scope."))
        shim.warn(NumbaIRAssumptionWarning("something else"))
        shim.warn(NumbaWarning("Detected uninitialized variable x"))
    assert len(caught) == 2
    assert "something else" in str(caught[0].message)
    assert "uninitialized variable x" in str(caught[1].message)
    assert shim.catch_warnings is warnings.catch_warnings

_CACHED_RULE = '''
import sys

import numpy as np

from sim.compiled.jit import compile_notices, compiled, jitable


@jitable
def weighted_total(a):
    s = 0.0
    for i in range(a.shape[0]):
        s += (i + 1) * a[i]
    return s


if __name__ == "__main__":
    with compile_notices(lambda line: print(line, file=sys.stderr)):
        fn = compiled(weighted_total)
        value = fn(np.array([0.5, 0.25, 2.0]))
    print(value, fn.stats.cache_hits.get(fn.signatures[0], 0) if fn.signatures else -1,
          "numba.np.linalg" in sys.modules, type(fn._cache).__name__)
'''


def test_cached_code_loads_without_setting_up_the_compiler(tmp_path):
    """A second process loads the first one's compiled code from the disk cache without
    numba's compiler set-up (no lowering registry imported, e.g. ``numba.np.linalg``) and
    computes the same; the first process compiled it (a miss sets the compiler up), and
    only the first announced a compile (``compile_notices``). The second runs a copy of the
    source in another folder, written later: the cache goes by the source's content, not
    its place or time (``_content_keyed``)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    runs, notices = [], []
    for checkout in ("first", "second"):  # the same source in another place, written later
        folder = tmp_path / checkout
        folder.mkdir()
        (folder / "cached_rule.py").write_text(_CACHED_RULE)
        env = dict(os.environ, ADASPEC_SIM_JIT_CACHE=str(tmp_path / "jit"),
                   PYTHONPATH=os.pathsep.join([str(folder), str(root)]))
        proc = subprocess.run([sys.executable, str(folder / "cached_rule.py")], env=env,
                              capture_output=True, text=True, cwd=folder, timeout=300)
        assert proc.returncode == 0, proc.stderr
        runs.append(proc.stdout.split())
        notices.append(proc.stderr.splitlines())
    value = 1 * 0.5 + 2 * 0.25 + 3 * 2.0
    assert runs[0] == [repr(value), "0", "True", "_CacheLoadsWithoutCompiler"]
    assert runs[1] == [repr(value), "1", "False", "_CacheLoadsWithoutCompiler"]
    [line] = notices[0]
    assert line.startswith("compiling __main__.weighted_total with numba, once (seconds): no "
                           f"copy in the cache {tmp_path / 'jit'}")
    assert line.endswith(" yet (the first run after an install or an update); later commands "
                         "load it")
    assert notices[1] == []


def test_the_loops_compile_notice_says_it_takes_minutes_and_none_is_given_outside():
    from sim.compiled.jit import LOOP_COMPILE_HINT, compile_notice, compile_notices
    from sim.compiled.loop import run_chunk
    from sim.policies.goodput import array_sum

    assert compile_notice(run_chunk).startswith(
        f"compiling sim.compiled.loop.run_chunk with numba, once ({LOOP_COMPILE_HINT}): ")
    assert compile_notice(array_sum).startswith(
        "compiling sim.policies.goodput.array_sum with numba, once (seconds): ")
    said, inner = [], []
    with compile_notices(said.append):
        with compile_notices(inner.append):
            pass
    assert said == inner == []
    from sim.compiled import jit
    assert jit._NOTICES == []  # both handlers removed on the way out


def test_a_numba_without_the_cache_internals_keeps_its_own_cache(monkeypatch):
    """Where numba's ``FunctionCache`` lacks what the compiler-free load relies on, the
    dispatcher keeps numba's own cache (slower to load, the same code)."""
    from numba.core.caching import FunctionCache

    from sim.compiled import jit

    def plus_one(x):
        return x + 1

    jit.jitable(plus_one)
    monkeypatch.setattr(jit, "_CACHE_INTERNALS", ("_no_such_method",))
    dispatcher = jit.compiled(plus_one)
    if jit._CACHE[0] is not None:
        assert type(dispatcher._cache) is FunctionCache
    assert dispatcher(2) == 3


def test_a_failed_compiler_free_load_falls_back_to_numbas_own(monkeypatch):
    """When loading without the compiler's set-up fails (a numba that needs its registries to
    rebuild cached code), the cache sets the compiler up and loads as numba itself does."""
    from numba.core.caching import FunctionCache

    from sim.compiled import jit

    def minus_one(x):
        return x - 1

    jit.jitable(minus_one)
    dispatcher = jit.compiled(minus_one)
    if jit._CACHE[0] is None:
        return  # no disk cache in this environment: nothing is loaded
    cache = dispatcher._cache
    calls = []

    def refuses(self, sig, target_context):
        raise RuntimeError("needs the registries")

    def numbas_own(self, sig, target_context):
        calls.append(sig)
        return None  # a miss: numba compiles

    monkeypatch.setattr(type(cache), "_load_overload", refuses)
    monkeypatch.setattr(FunctionCache, "load_overload", numbas_own)
    from numba.core.registry import cpu_target
    assert cache.load_overload((), cpu_target.target_context) is None
    assert calls == [()]
    assert dispatcher(3) == 2


def test_a_new_cache_folder_removes_the_least_recently_used_beyond_the_kept(tmp_path):
    """Making a source folder keeps it and the KEEP_FOLDERS - 1 most recently used others;
    reopening an existing folder marks it used and removes nothing; other names stay."""
    import os

    from sim.compiled import jit

    old = [tmp_path / f"{i:016x}" for i in range(6)]
    for age, path in enumerate(old):
        (path / "sub").mkdir(parents=True)
        os.utime(path, (1_000_000 + age, 1_000_000 + age))  # old[5] the most recent
    (tmp_path / "not-a-source-key").mkdir()
    (tmp_path / "0123456789abcdef.txt").write_text("x")
    assert jit.open_cache_folder(old[0]) == old[0]  # exists: marked used, nothing removed
    assert all(p.is_dir() for p in old)
    new = tmp_path / "fedcba9876543210"
    assert jit.open_cache_folder(new) == new
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert kept == sorted([new.name, old[0].name, old[5].name, old[4].name,
                           "not-a-source-key", "0123456789abcdef.txt"])
    assert jit.KEEP_FOLDERS == 4


def test_an_unwritable_cache_folder_is_no_cache(tmp_path):
    from sim.compiled import jit

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert jit.open_cache_folder(blocker / "0123456789abcdef") is None


def test_a_read_only_cache_folder_still_serves(tmp_path, monkeypatch):
    """A folder that exists but cannot be marked used (a read-only cache) is still used."""
    import os

    from sim.compiled import jit

    folder = tmp_path / "0123456789abcdef"
    folder.mkdir()

    def refuse(*args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(os, "utime", refuse)
    assert jit.open_cache_folder(folder) == folder


def test_numba_disable_jit_gives_the_plain_function():
    """Under ``NUMBA_DISABLE_JIT=1`` numba gives back the plain function, which has no disk
    cache to replace: ``compiled`` hands it over as it is (even one defined without a file)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = ("from sim.compiled import jit\n"
            "def f(x):\n    return x + 1\n"
            "jit.jitable(f)\n"
            "d = jit.compiled(f)\n"
            "print(d is f, d(2))\n")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=str(root))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300, cwd=root)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "3"]


def test_reference_counts_are_inlined_and_still_free_what_the_code_allocates():
    """After ``setup`` numba's runtime defines ``NRT_incref`` / ``NRT_decref`` without
    ``noinline`` (LLVM inlines them into compiled code instead of calling them), and
    compiled code that allocates, views and passes arrays still frees every allocation."""
    import numba
    import numpy as np
    from numba.core.registry import cpu_target
    from numba.core.runtime import _nrt_python, nrtdynmod, rtsys

    from sim.compiled import jit

    jit.setup()
    module, _ = nrtdynmod.create_nrt_module(cpu_target.target_context)
    for name in ("NRT_incref", "NRT_decref"):
        assert "noinline" not in module.get_global(name).attributes

    def row_total(a, i):
        row = a[i]  # a view: counted
        return row.sum()

    jit.jitable(row_total)

    def churn(n):
        total = 0.0
        for k in range(n):
            a = np.ones((3, 4)) * k  # two allocations an iteration
            total += row_total(a, k % 3)
        return total

    run = numba.njit(churn)  # compiled after setup: its library links the inlinable ones
    run(1)
    enabled = _nrt_python.memsys_stats_enabled()
    _nrt_python.memsys_enable_stats()
    try:
        before = rtsys.get_allocation_stats()
        assert run(50) == 4.0 * sum(range(50))
        after = rtsys.get_allocation_stats()
    finally:
        if not enabled:
            _nrt_python.memsys_disable_stats()
    made = after.alloc - before.alloc
    assert made >= 100 and after.free - before.free == made  # every array freed


_FOLDER_PROBE = """
import sys
if sys.argv[1] == "numba-first":
    import numba
    numba.njit(lambda x: x + 1)(1)  # numba compiles its runtime now, before sim's setup
from sim.compiled import jit
jit.setup()
from numba.core.runtime import nrtdynmod
print(jit.cache_folder_in_use().name, jit.cache_dir(False).name, jit.cache_dir().name,
      nrtdynmod._adaspec_inlinable)
"""


def test_code_compiled_with_called_reference_counts_is_cached_apart(tmp_path):
    """Where the process compiled numba code before ``setup`` (numba's runtime is compiled
    once, with its ``noinline``), the loop's code calls the reference counts; it goes to a
    folder of its own, never to the one of the faster code."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, ADASPEC_SIM_JIT_CACHE=str(tmp_path))
    got = {}
    for order in ("numba-first", "sim-first"):
        done = subprocess.run([sys.executable, "-c", _FOLDER_PROBE, order], capture_output=True,
                              text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr
        got[order] = done.stdout.split()
    in_use, called, inlined, effective = got["numba-first"]
    assert (in_use, effective) == (called, "False") and called != inlined
    in_use, called, inlined, effective = got["sim-first"]
    assert (in_use, effective) == (inlined, "True")


def test_compile_flags_hash_and_compare_as_numba_does_after_the_quicker_comparisons():
    """``numba_setup.quicker_flag_comparisons`` keeps numba's answers: a flag set's hash is that of its
    sorted option names, and two sets are equal exactly when all their values are (an option
    set to its default equals one left unset)."""
    import itertools

    from numba.core.compiler import Flags

    from sim.compiled.numba_setup import quicker_flag_comparisons

    quicker_flag_comparisons()
    from numba.core import targetconfig
    assert targetconfig.TargetConfig._adaspec_quicker
    made = []
    for nrt, boundscheck, explicit_default in itertools.product((None, True), (None, True),
                                                                (False, True)):
        flags = Flags()
        if nrt is not None:
            flags.nrt = nrt
        if boundscheck is not None:
            flags.boundscheck = boundscheck
        if explicit_default:
            flags.debuginfo = Flags.options["debuginfo"].default
        made.append(flags)
    for a in made:
        assert hash(a) == hash(tuple(sorted(a.values())))
        for b in made:
            assert (a == b) == (a.values() == b.values())
    assert made[0] == made[1] and made[0] != made[2]  # the explicit default; nrt set
    assert made[0] != object() and len({*made}) == 4


def _names_read(code) -> set[str]:
    """The global and attribute names a function's code (its nested code included) reads."""
    import types
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names_read(const)
    return names


def compiled_reads_outside_the_key(rule_modules) -> list[tuple[str, str, list[str]]]:
    """(module, imported module, names) for every name a jitable of a module in
    ``rule_modules`` reads that the module imports from a ``sim`` module outside them
    (``sim.compiled.jit`` and ``numba_setup`` are hashed on their own)."""
    import ast
    import importlib.util
    from pathlib import Path

    from sim.compiled import jit
    jit.setup()
    read: dict[str, set[str]] = {}
    for fn in jit._JITABLE:
        read.setdefault(fn.__module__, set()).update(_names_read(fn.__code__))
    hashed = set(rule_modules) | {"sim.compiled.jit", "sim.compiled.numba_setup"}
    outside = []
    for name in rule_modules:
        tree = ast.parse(Path(importlib.util.find_spec(name).origin).read_text())
        for node in ast.walk(tree):
            if (isinstance(node, ast.ImportFrom) and node.level == 0
                    and (node.module or "").startswith("sim.") and node.module not in hashed):
                used = {alias.asname or alias.name for alias in node.names} & read.get(name,
                                                                                      set())
                if used:
                    outside.append((name, node.module, sorted(used)))
    return outside


def test_every_module_compiled_code_reads_is_in_the_cache_key():
    """numba checks only the cached function's own file, and freezes the globals it reads
    (constants, callees) into the machine code: a module holding a jitable rule or a
    constant that compiled code reads must change the cache key (``RULE_MODULES``), or a
    change to it alone would load the stale loop. (``sim.compiled.layout``, every index and
    kind the loop reads, and ``sim.policies.disable_by_batch``, a rule the loop calls, were
    missing until 2026-12-02.)"""
    from sim.compiled import jit
    jit.setup()
    # (tests register jitables of their own: only the package's are compiled into the loop)
    package = {fn.__module__ for fn in jit._JITABLE if fn.__module__.startswith("sim.")}
    assert package <= set(jit.RULE_MODULES)
    assert compiled_reads_outside_the_key(jit.RULE_MODULES) == []
    # the check itself sees what was missing
    before = tuple(m for m in jit.RULE_MODULES
                   if m not in ("sim.compiled.layout", "sim.policies.disable_by_batch"))
    modules = {module for _, module, _ in compiled_reads_outside_the_key(before)}
    assert modules == {"sim.compiled.layout", "sim.policies.disable_by_batch"}
