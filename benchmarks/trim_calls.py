"""Benchmark: AdaSpec's token-trim selection (``sim.policies.trim_selection.lowest_tokens``)
on the calls a real run makes, in isolation.

``capture`` replays the Azure conversation trace under adaspec:8 on the protocol path (the
same rules as the compiled loop, called from Python, so each call can be seen) and records
every verifier call that reaches the selection: the cumulative confidences, drafted
lengths, drop and ``_trim_limit``; it prints what the calls look like (drop, batch, steps,
how many reject the trim and after how many tokens). ``replay`` times ``lowest_tokens``,
compiled as the loop compiles it, over the recorded calls from one compiled driver (inputs
back to back), best of ``--repeat``; ``--module`` names another module with a
``lowest_tokens`` of the same signature to time instead (a candidate), and the return
values and chosen tokens are checked against the project's function, call by call.

    python benchmarks/trim_calls.py capture [--limit N] [--out /tmp/trim_calls.npz]
    python benchmarks/trim_calls.py replay [--calls /tmp/trim_calls.npz] [--repeat 21]
                                           [--drop-one] [--module MODULE]

The full trace's capture takes about 15 s (the protocol path); a replay a second.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TRACE = ROOT / "traces" / "azure2023" / "AzureLLMInferenceTrace_conv.csv"
DEFAULT_CALLS = Path(tempfile.gettempdir()) / "trim_calls.npz"


def capture(limit: int | None, out: Path) -> None:
    """Record the selection's inputs of every trimming verifier call (see the module doc)."""
    import sim.policies.adaspec as adaspec
    from sim.cli import main
    from sim.compiled.jit import compiled
    from sim.policies.adaspec_rules import AI_LAST_TRIM, TRIM_REJECTED, _trim_limit

    calls: list[tuple] = []
    verify_lengths = adaspec.AdaSpecPolicy.verify_lengths

    def recording(self, conf, drafted):
        result = verify_lengths(self, conf, drafted)
        drafted = np.asarray(drafted, dtype=np.int64)
        steps = conf.shape[1]
        if steps == 0 or self._cost is None or not self._cost._pad.enabled:
            return result
        batch = self._batch
        total = batch + int(np.minimum(drafted, steps).sum())
        target = self._cost._pad.next_smaller(total)
        if target < batch or target >= total:
            return result
        cum, _, _, prices_v, prices_d, _, _ = self._work
        limit_sum = compiled(_trim_limit)(self._pi, self._pf, prices_d[steps], prices_v[steps],
                                          self._cost.verify_s(target))
        calls.append((np.array(cum[:steps, :batch]), drafted[:batch].copy(), steps, batch,
                      total - target, limit_sum,
                      int(self._pi[AI_LAST_TRIM]) == TRIM_REJECTED))
        return result

    adaspec.AdaSpecPolicy.verify_lengths = recording
    argv = ["--trace", str(TRACE), "--policy", "adaspec:8", "--engine-path", "protocol",
            "--no-iteration-log", "--quiet"]
    with tempfile.TemporaryDirectory() as scratch:
        main(argv + ["--out", scratch + "/run"] + (["--limit", str(limit)] if limit else []))
    adaspec.AdaSpecPolicy.verify_lengths = verify_lengths
    n = len(calls)
    meta = np.array([(steps, batch, drop) for _, _, steps, batch, drop, _, _ in calls],
                    dtype=np.int64).reshape(n, 3)
    sizes = meta[:, 0] * meta[:, 1]
    np.savez(out, cum=np.concatenate([c[0].ravel() for c in calls]) if n else np.zeros(0),
             drafted=np.concatenate([c[1] for c in calls]) if n else np.zeros(0, np.int64),
             cum_at=np.concatenate([[0], np.cumsum(sizes)]),
             drafted_at=np.concatenate([[0], np.cumsum(meta[:, 1])]), meta=meta,
             limit=np.array([c[5] for c in calls]),
             rejected=np.array([c[6] for c in calls], dtype=bool))
    _describe(calls)
    print(f"wrote {out}")


def _describe(calls: list[tuple]) -> None:
    """What the recorded calls look like."""
    if not calls:
        print("no trimming verifier calls")
        return
    drop = np.array([c[4] for c in calls])
    batch = np.array([c[3] for c in calls])
    steps = np.array([c[2] for c in calls])
    tokens = np.array([int(np.minimum(c[1], c[2]).sum()) for c in calls])
    rejected = np.array([c[6] for c in calls])
    taken = []
    for cum, drafted, n_steps, n_batch, n_drop, limit_sum, _ in calls:
        values = np.sort(np.concatenate(
            [cum[:min(drafted[i], n_steps), i] for i in range(n_batch)]))
        take = min(n_drop, values.size)
        partial = take < values.size
        over = np.flatnonzero(np.cumsum(values[:take]) > limit_sum) if partial else []
        taken.append(over[0] + 1 if len(over) else take)
    p10, p50, p90 = np.percentile(drop, [10, 50, 90])
    print(f"{len(calls)} calls; drop mean {drop.mean():.1f} (10/50/90 %: {p10:.0f}/{p50:.0f}/"
          f"{p90:.0f}), {np.mean(drop / tokens):.0%} of the drafted tokens; batch mean "
          f"{batch.mean():.1f}; steps mean {steps.mean():.2f}")
    print(f"rejected {rejected.mean():.0%}; tokens taken before deciding: mean "
          f"{np.mean(taken):.1f}")


def _driver(select):
    """A compiled loop calling ``select`` (``lowest_tokens``' signature) on every call."""
    import numba

    @numba.njit
    def drive(cum, drafted, cum_at, drafted_at, meta, limit, vals, rows, tree_v, tree_t,
              tree_i, found, digest):
        for j in range(meta.shape[0]):
            steps, batch, drop = meta[j, 0], meta[j, 1], meta[j, 2]
            size = 4 * batch  # what the callers reserve (TREE_FLOATS_PER_ROW)
            m = select(cum[cum_at[j]:cum_at[j + 1]].reshape((steps, batch)),
                       drafted[drafted_at[j]:drafted_at[j + 1]], steps, batch, drop, vals,
                       rows, tree_v[:size], tree_t[:size], tree_i[:size], limit[j])
            found[j] = m
            total, mix = 0.0, 0
            for q in range(min(m, drop) if m >= 0 else 0):
                total += vals[q]
                mix = mix * 31 + rows[q]
            digest[j] = total + mix

    return drive


def replay(path: Path, repeat: int, drop_one: bool, module: str | None) -> None:
    """Time the selection over the recorded calls (see the module doc)."""
    from sim.compiled.jit import compiled
    data = np.load(path)
    meta = data["meta"].copy()
    if drop_one:
        meta[:, 2] = np.minimum(meta[:, 2], 1)
    n = meta.shape[0]
    width = int(4 * meta[:, 1].max()) if n else 1
    results = {}
    for name in ("sim.policies.trim_selection",) + ((module,) if module else ()):
        select = compiled(importlib.import_module(name).lowest_tokens)
        drive = _driver(select)
        found, digest = np.zeros(n, np.int64), np.zeros(n)
        args = (data["cum"], data["drafted"], data["cum_at"], data["drafted_at"], meta,
                data["limit"], np.zeros(width), np.zeros(width, np.int64), np.zeros(width),
                np.zeros(width, np.int64), np.zeros(width, np.int64), found, digest)
        drive(*args)  # compiles
        best = float("inf")
        for _ in range(repeat):
            began = time.perf_counter()
            drive(*args)
            best = min(best, time.perf_counter() - began)
        results[name] = (found.copy(), digest.copy())
        print(f"{name}: {best * 1e3:.2f} ms for {n} calls, {best / max(n, 1) * 1e9:.0f} ns a "
              f"call (best of {repeat}); returned -1 (rejected early) {np.sum(found < 0)}")
    if module:
        same = all(np.array_equal(a, b) for a, b in
                   zip(results[module], results["sim.policies.trim_selection"]))
        print(f"{module}: {'same' if same else 'DIFFERENT'} returns and tokens, call by call")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    cap = sub.add_parser("capture")
    cap.add_argument("--limit", type=int)
    cap.add_argument("--out", type=Path, default=DEFAULT_CALLS)
    rep = sub.add_parser("replay")
    rep.add_argument("--calls", type=Path, default=DEFAULT_CALLS)
    rep.add_argument("--repeat", type=int, default=21)
    rep.add_argument("--drop-one", action="store_true",
                     help="every drop cut to 1: the tree's set-up alone")
    rep.add_argument("--module", help="a module with a candidate lowest_tokens")
    args = parser.parse_args(argv)
    if args.command == "capture":
        capture(args.limit, args.out)
    else:
        replay(args.calls, args.repeat, args.drop_one, args.module)
    return 0


if __name__ == "__main__":
    sys.exit(main())
