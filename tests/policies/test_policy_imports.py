"""sim/policies and sim/acceptance stay free of torch, transformers and simpy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("torch", "transformers", "simpy")


def test_sources_do_not_import_heavy_frameworks():
    pattern = re.compile(r"^\s*(import|from)\s+(torch|transformers|simpy)\b", re.M)
    for pkg in ("sim/policies", "sim/acceptance"):
        for path in (ROOT / pkg).glob("*.py"):
            assert not pattern.search(path.read_text()), path


def test_importing_policies_and_acceptance_loads_none_of_them():
    code = (
        "import sys, json\n"
        "import sim.policies.registry, sim.policies.goodput, sim.acceptance.presets\n"
        "import sim.acceptance.io, sim.acceptance.model\n"
        "from sim.acceptance.presets import make_acceptance\n"
        "make_acceptance('spec-bench-vicuna-68m')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{FORBIDDEN!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
