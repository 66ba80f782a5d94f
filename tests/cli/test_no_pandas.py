"""adaspec-sim's ordinary runs never import pandas (about a quarter of a second of every
command): a trace is read, every policy simulated and every output written without it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TRACES = ROOT / "traces"

CHILD = """
import json, sys
from sim.cli import main
code = main(json.loads(sys.argv[1]))
print(json.dumps({"code": code, "pandas": sorted(m for m in sys.modules
                                                if m.split(".")[0] in ("pandas", "pyarrow"))}))
"""


@pytest.mark.parametrize("args", [
    ["--trace", str(TRACES / "azure2023" / "AzureLLMInferenceTrace_conv.csv"), "--limit", "300",
     "--policy", "all"],
    ["--trace", str(TRACES / "azure2023" / "AzureLLMInferenceTrace_code.csv"), "--limit", "200",
     "--policy", "adaspec:8", "--chunked-prefill", "--engine-path", "protocol"],
    ["--trace", str(TRACES / "adaspec" / "code.csv"), "--limit", "150", "--policy", "static:5",
     "--lengths", "sharegpt", "--no-iteration-log"],
    ["--trace", str(TRACES / "mooncake" / "synthetic_trace.jsonl"), "--limit", "100",
     "--policy", "smartspec:8"],
], ids=["azure-all-policies", "azure-protocol-chunked", "arrivals-sharegpt", "mooncake"])
def test_a_run_writes_its_outputs_without_pandas(tmp_path, args):
    out = tmp_path / "run"
    argv = [*args, "--out", str(out), "--quiet"]
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(argv)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report == {"code": 0, "pandas": []}
    assert (out / "summary.json").is_file()
    assert list(out.glob("*/requests.csv"))
