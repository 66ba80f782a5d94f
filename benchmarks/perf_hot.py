"""Where the compiled loop's cycles go, instruction by instruction: Linux ``perf`` samples
mapped onto the disassembly (``objdump -dr``) of the object code numba cached.

Two steps (run any command with the same policies once first, so the cache holds the code):

    perf record -F 4000 -o /tmp/perf.data python benchmarks/perf_hot.py run \\
        --policy adaspec:8 --repeat 6
    python benchmarks/perf_hot.py report /tmp/perf.data [--function decode_iteration] \\
        [--top 30] [--context 4]

``run`` replays the full trace with ``benchmarks/loop_only.py`` in this process (its
arguments), then writes ``/tmp/perf-PID.map`` (``benchmarks/perf_map.py``: ``perf report``
names the compiled functions with it) and ``/tmp/perf-PID.objects.json``: each loaded
object's cache file and load address. ``report`` reads the samples' addresses (``perf script
-F pid,ip``), prints each compiled function's share of the process's samples, and for the
functions named with ``--function`` (a substring of the short name; all above 2 % without
it) the hottest instructions: offset in the function, share of the function's samples, the
instruction, and ``--context`` instructions before it (a sample usually lands on the
instruction after the one that stalled: a load's miss shows on its first user). Relocations
are printed (``objdump -r``), so a call says what it calls.

Needs ``perf``, ``nm`` and ``objdump`` (binutils).
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import perf_map  # noqa: E402  (the benchmarks folder is not a package)


def run(argv: list[str]) -> int:
    """Replay with ``loop_only`` (its arguments), then write the map and the objects."""
    import loop_only

    status = loop_only.main(argv)
    from numba.core.registry import cpu_target

    from sim.compiled.jit import cache_folder_in_use
    address_of = cpu_target.target_context.codegen()._engine._ee.get_function_address
    objects = perf_map.loaded_objects(cache_folder_in_use(), address_of)
    pid = os.getpid()
    lines = [line for _cache_file, base, symbols in objects
             for line in perf_map.symbol_lines(base, symbols)]
    Path(f"/tmp/perf-{pid}.map").write_text("\n".join(lines) + "\n")
    Path(f"/tmp/perf-{pid}.objects.json").write_text(json.dumps(
        [{"cache_file": str(cache_file), "base": base} for cache_file, base, _ in objects]))
    print(f"perf_hot: {len(objects)} objects, {len(lines)} functions "
          f"(/tmp/perf-{pid}.map, .objects.json)", file=sys.stderr)
    return status


class Functions:
    """The compiled functions of one process: (start, size, name, object index, offset in
    the object), searchable by address."""

    def __init__(self, objects: list[dict]) -> None:
        self.elfs: list[bytes] = []
        rows = []
        for entry in objects:
            elf = perf_map._object_code(Path(entry["cache_file"]))
            if elf is None:
                continue
            index = len(self.elfs)
            self.elfs.append(elf)
            for offset, size, _kind, name in perf_map._symbols(elf):
                rows.append((entry["base"] + offset, size, perf_map.short_name(name), index,
                             offset))
        rows.sort()
        self.rows = rows
        self.starts = [row[0] for row in rows]

    def find(self, address: int):
        """The row of the function holding ``address``, or None."""
        at = bisect.bisect_right(self.starts, address) - 1
        if at >= 0 and address < self.rows[at][0] + self.rows[at][1]:
            return self.rows[at]
        return None


def sample_addresses(perf_data: str) -> dict[int, list[int]]:
    """Instruction addresses of the samples in ``perf_data``, per process id."""
    listing = subprocess.run(["perf", "script", "-i", perf_data, "-F", "pid,ip"],
                             capture_output=True, text=True, check=True).stdout
    out: dict[int, list[int]] = collections.defaultdict(list)
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 2:
            out[int(fields[0])].append(int(fields[1], 16))
    return out


_INSTRUCTION = re.compile(r"^\s*([0-9a-f]+):\s*(.*)$")
_TARGET = re.compile(r"<([^>+]+)(\+0x[0-9a-f]+)?>")


def _short_targets(text: str) -> str:
    """``text`` with each ``<mangled+0x10>`` jump or call target shortened."""
    return _TARGET.sub(lambda m: f"<{perf_map.short_name(m.group(1))}{m.group(2) or ''}>", text)


def disassembly(elf: bytes) -> list[tuple[int, str]]:
    """(offset, text) of each instruction of ``elf``, with its relocations joined on."""
    with tempfile.NamedTemporaryFile(suffix=".o") as handle:
        handle.write(elf)
        handle.flush()
        listing = subprocess.run(["objdump", "-dr", "--no-show-raw-insn", "-M", "intel",
                                  handle.name], capture_output=True, text=True,
                                 check=True).stdout
    out: list[tuple[int, str]] = []
    for line in listing.splitlines():
        match = _INSTRUCTION.match(line)
        if not match:
            continue
        text = _short_targets(" ".join(match.group(2).split()))
        if text.startswith("R_X86_64") and out:  # a relocation of the last instruction
            offset, previous = out[-1]
            out[-1] = (offset, f"{previous}  <{perf_map.short_name(text.split()[-1])}>")
        else:
            out.append((int(match.group(1), 16), text))
    return out


def hot_instructions(counts: dict[int, int], code: list[tuple[int, str]], start: int,
                     size: int, top: int, context: int) -> list[str]:
    """Lines for the ``top`` most sampled instructions of one function (object offsets
    ``start``..``start + size``; ``counts`` by object offset), each with ``context``
    instructions before it; offsets printed relative to the function."""
    inside = [(offset, text) for offset, text in code if start <= offset < start + size]
    total = sum(counts.get(offset, 0) for offset, _ in inside) or 1
    index = {offset: i for i, (offset, _) in enumerate(inside)}
    lines = []
    for offset, n in sorted(((o, c) for o, c in counts.items() if o in index),
                            key=lambda item: -item[1])[:top]:
        i = index[offset]
        lines.append(f"  {100 * n / total:5.1f} %  +{offset - start:#x}")
        for j in range(max(0, i - context), i + 1):
            o, text = inside[j]
            mark = ">" if j == i else " "
            lines.append(f"      {mark} {o - start:#7x} {counts.get(o, 0):5d}  {text}")
    return lines


def report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="perf_hot.py report")
    parser.add_argument("perf_data")
    parser.add_argument("--function", action="append", default=[])
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--context", type=int, default=3)
    args = parser.parse_args(argv)
    samples = sample_addresses(args.perf_data)
    pids = [pid for pid in samples if Path(f"/tmp/perf-{pid}.objects.json").is_file()]
    if not pids:
        print("perf_hot: no process of these samples wrote /tmp/perf-PID.objects.json",
              file=sys.stderr)
        return 1
    pid = max(pids, key=lambda p: len(samples[p]))
    functions = Functions(json.loads(Path(f"/tmp/perf-{pid}.objects.json").read_text()))
    per_function: collections.Counter = collections.Counter()
    per_offset: dict[tuple, collections.Counter] = collections.defaultdict(collections.Counter)
    addresses = samples[pid]
    for address in addresses:
        row = functions.find(address)
        if row is None:
            continue
        key = row[:5]
        per_function[key] += 1
        per_offset[row[3]][row[4] + address - row[0]] += 1
    compiled_total = sum(per_function.values())
    print(f"process {pid}: {len(addresses)} samples, {compiled_total} in compiled code")
    for key, n in per_function.most_common(25):
        print(f"  {100 * n / len(addresses):5.1f} %  {key[2]}")
    chosen = [key for key, n in per_function.most_common()
              if (any(name in key[2] for name in args.function) if args.function
                  else n >= 0.02 * len(addresses))]
    codes: dict[int, list] = {}
    for key in chosen:
        _start, size, name, obj, offset = key
        if obj not in codes:
            codes[obj] = disassembly(functions.elfs[obj])
        print(f"\n{name}: {per_function[key]} samples "
              f"({100 * per_function[key] / len(addresses):.1f} % of the process)")
        for line in hot_instructions(per_offset[obj], codes[obj], offset, size, args.top,
                                     args.context):
            print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in ("run", "report"):
        print(__doc__, file=sys.stderr)
        return 2
    return run(argv[1:]) if argv[0] == "run" else report(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
