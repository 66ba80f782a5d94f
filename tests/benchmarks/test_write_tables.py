"""benchmarks/write_tables.py: one short real run, its writes timed in a fresh process."""

from __future__ import annotations

import write_tables as bench


def test_writes_are_timed_in_a_real_command(capsys):
    runs = bench._process(bench.ROOT, "adaspec:8", 40, 2)
    assert len(runs) == 2 and all(wall > 0 and cpu >= 0 for wall, cpu in runs)
    assert bench.main(["--policy", "nospec", "--limit", "40", "--processes", "1",
                       "--writes", "1"]) == 0
    assert "nospec       this      fastest write" in capsys.readouterr().out
