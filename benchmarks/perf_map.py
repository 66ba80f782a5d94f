"""Run ``adaspec-sim`` in this process, then name its compiled functions for Linux ``perf``.

``perf`` shows samples in numba's machine code as bare addresses (``[JIT] tid N``). After the
run this writes ``/tmp/perf-PID.map`` (the file ``perf report`` reads for just-in-time code):
for every object file in the compiled-code cache folder in use (``sim.compiled.jit``), its
functions' start, size and name (``nm -S`` of the object; numba's mangled names shortened to
``module.function``), placed where the JIT engine loaded that object (the address of its
exported entry point, minus the entry point's offset in the object; every function of an
object lies in its one ``.ltext`` section). Objects this process did not load are skipped.
Numba's runtime helpers (``NRT_incref`` / ``NRT_decref``) are compiled at start-up, not
cached, and stay unnamed.

    perf record -F 4000 -o /tmp/perf.data python benchmarks/perf_map.py \\
        --trace traces/azure2023/AzureLLMInferenceTrace_conv.csv --policy adaspec:8
    perf report -i /tmp/perf.data --sort dso,sym --stdio

Run it once beforehand (or any command with the same policies) so the cache holds the code;
the arguments are ``adaspec-sim``'s (``--out`` defaults to a temporary folder). Needs ``nm``
(binutils).
"""

from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
import tempfile
from pathlib import Path

_MANGLED = re.compile(r"(?:cfunc\.|cpython\.)?_ZN(.*?)B\d")


def short_name(symbol: str) -> str:
    """``sim.policies.goodput.ddot_ones`` for numba's Itanium-style mangled ``symbol``."""
    match = _MANGLED.match(symbol)
    if not match:
        return symbol
    parts, text, i = [], match.group(1), 0
    while i < len(text) and text[i].isdigit():
        j = i
        while text[j].isdigit():
            j += 1
        length = int(text[i:j])
        parts.append(text[j:j + length])
        i = j + length
    prefix = "cpython." if symbol.startswith("cpython.") else ""
    return prefix + ".".join(parts)


def _object_code(cache_file: Path) -> bytes | None:
    """The ELF object inside one of numba's cached overload files (``*.nbc``); None for a
    file this process cannot unpickle (code cached by other programs sharing the folder,
    such as the tests' own compiled functions, names modules not importable here)."""
    found: list[bytes] = []

    def walk(value) -> None:
        if isinstance(value, bytes) and value[:4] == b"\x7fELF":
            found.append(value)
        elif isinstance(value, (tuple, list)):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    try:
        walk(pickle.loads(cache_file.read_bytes()))
    except Exception:  # noqa: BLE001 - any unreadable entry is skipped, not fatal
        return None
    return found[0] if found else None


def _symbols(elf: bytes) -> list[tuple[int, int, str, str]]:
    """(offset, size, nm type, name) of every function defined in object ``elf``."""
    with tempfile.NamedTemporaryFile(suffix=".o") as handle:
        handle.write(elf)
        handle.flush()
        listing = subprocess.run(["nm", "-S", "--defined-only", handle.name],
                                 capture_output=True, text=True, check=True).stdout
    out = []
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 4 and fields[2] in "tTWw":
            out.append((int(fields[0], 16), int(fields[1], 16), fields[2], fields[3]))
    return out


def loaded_objects(cache_folder: Path, address_of) -> list[tuple[Path, int, list]]:
    """(cache file, load address, ``_symbols``) of each object under ``cache_folder`` that
    ``address_of(symbol)`` (the JIT engine's address, 0 when not loaded) places."""
    out = []
    for cache_file in sorted(cache_folder.glob("*/*.nbc")):
        elf = _object_code(cache_file)
        if elf is None:
            continue
        symbols = _symbols(elf)
        base = None
        for offset, _size, kind, name in symbols:
            if kind == "T" and address_of(name):
                base = address_of(name) - offset
                break
        if base is not None:
            out.append((cache_file, base, symbols))
    return out


def symbol_lines(base: int, symbols: list) -> list[str]:
    """``perf`` map lines of one object's ``symbols`` loaded at ``base``."""
    return [f"{base + offset:x} {size:x} {short_name(name)}"
            for offset, size, _kind, name in symbols]


def map_lines(cache_folder: Path, address_of) -> list[str]:
    """``perf`` map lines (``START SIZE NAME``, hex) for the objects under ``cache_folder``
    that ``address_of(symbol)`` (the JIT engine's address, 0 when not loaded) places."""
    return [line for _cache_file, base, symbols in loaded_objects(cache_folder, address_of)
            for line in symbol_lines(base, symbols)]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    from sim.cli import main as simulate
    from sim.compiled.jit import cache_folder_in_use

    with tempfile.TemporaryDirectory() as out:
        if "--out" not in argv:
            argv += ["--out", out, "--overwrite"]
        status = simulate(argv)
        folder = cache_folder_in_use()
        if folder is None or not folder.is_dir():
            print("perf_map: no compiled-code cache in use (ADASPEC_SIM_JIT_CACHE=off?)",
                  file=sys.stderr)
            return status or 1
        from numba.core.registry import cpu_target
        engine = cpu_target.target_context.codegen()._engine._ee
        lines = map_lines(folder, engine.get_function_address)
    path = Path(f"/tmp/perf-{os.getpid()}.map")
    path.write_text("\n".join(lines) + "\n")
    print(f"perf_map: {len(lines)} functions named in {path}", file=sys.stderr)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
