"""Fingerprints of the simulator's outputs, for checking that a speed-up changed nothing.

Runs every policy on slices of four traces plus a few option variants (as ``adaspec-sim``
would, seed 0) and prints one line per output table: the scenario, the policy, the table and
the first 12 hex digits of the SHA-1 of its rows (the provenance header line is left out).
Run it before and after a change and ``diff`` the two outputs; about two minutes on one core.

    python benchmarks/output_fingerprints.py > before.txt
    ... change ...
    python benchmarks/output_fingerprints.py > after.txt && diff before.txt after.txt
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRACES = ROOT / "traces"

SCENARIOS: dict[str, list[str]] = {
    "azure-conv": ["--trace", str(TRACES / "azure2023/AzureLLMInferenceTrace_conv.csv"),
                   "--limit", "2500", "--policy", "all"],
    "azure-code": ["--trace", str(TRACES / "azure2023/AzureLLMInferenceTrace_code.csv"),
                   "--limit", "1500", "--policy", "all"],
    "adaspec-conv-x4": ["--trace", str(TRACES / "adaspec/conv.csv"), "--rate-scale", "4",
                        "--limit", "1500", "--policy", "all"],
    "mooncake-chunked": ["--trace", str(TRACES / "adaspec/mooncake.csv"), "--limit", "800",
                         "--policy", "all", "--chunked-prefill"],
    "adaspec-variants": ["--trace", str(TRACES / "azure2023/AzureLLMInferenceTrace_conv.csv"),
                         "--limit", "2000", "--policy", "adaspec:8,slo=tokens",
                         "--policy", "adaspec:8,artifact", "--policy", "adaspec:8,slo=strict,lost=plain",
                         "--policy", "adaspec:4,slo=off", "--policy", "smartspec:4",
                         "--acceptance", "fixed:0.58"],
    "eager-exact": ["--trace", str(TRACES / "azure2023/AzureLLMInferenceTrace_code.csv"),
                    "--limit", "1000", "--policy", "adaspec:8", "--policy", "oracle:8",
                    "--no-cuda-graphs", "--estimator", "exact"],
}


def table_digest(path: Path) -> str:
    """SHA-1 of a CSV's rows, without its ``# adaspec-sim {...}`` provenance line."""
    lines = path.read_bytes().split(b"\n", 1)
    return hashlib.sha1(lines[1] if len(lines) > 1 else b"").hexdigest()[:12]


def main(argv: list[str] | None = None) -> int:
    names = argv if argv else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    for name in names:
        with tempfile.TemporaryDirectory() as out:
            subprocess.run([sys.executable, "-m", "sim.cli", *SCENARIOS[name], "--out", out,
                            "--quiet"], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
            for table in sorted(Path(out).glob("*/*.csv")):
                print(f"{name} {table.parent.name} {table.name} {table_digest(table)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
