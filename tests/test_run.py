"""``sim.run.simulate``'s checks of the workload it is given."""

from __future__ import annotations

import pytest

from fakes import LinearLatency, PlainPolicy
from sim.acceptance.base import FixedAcceptance
from sim.errors import ConfigError
from sim.run import MAX_ARRIVAL_S, SimConfig, simulate
from sim.workload.request import Request, Workload

CFG = SimConfig(kv_blocks=10_000, estimator="exact", cuda_graphs=False)


def _run(*arrivals_s: float, engine_path: str = "auto"):
    workload = Workload(tuple(Request(i, t, 100, 10) for i, t in enumerate(arrivals_s)),
                        "test", "native")
    config = SimConfig(kv_blocks=10_000, estimator="exact", cuda_graphs=False,
                       engine_path=engine_path)
    return simulate(workload, PlainPolicy(), config, latency=LinearLatency(),
                    acceptance=FixedAcceptance(0.5))


@pytest.mark.parametrize("last_s", [1.7e12, 1.7e18, 1e300])
@pytest.mark.parametrize("engine_path", ["auto", "protocol"])
def test_arrivals_past_the_clocks_resolution_are_an_error(last_s, engine_path):
    # epoch milliseconds/nanoseconds read as seconds: the clock would not move during an
    # iteration (0.1e-3 s steps vanish at 1.7e18 s), so every latency would read 0
    with pytest.raises(ConfigError, match=r"last arrival is at .* s, past the 4294967296 s"):
        _run(0.0, last_s, engine_path=engine_path)


def test_arrivals_up_to_the_limit_keep_their_latencies():
    # epoch seconds (1.7e9 s) still resolve well under a microsecond: hand-computed TTFT
    # (prefill 0.010 + 0.0001 * 100 = 0.020 s) and TPOT (decode 0.020 s) at the limit
    for last_s in (1.7e9, MAX_ARRIVAL_S):
        r = _run(last_s).requests.iloc[0]
        assert r.ttft_s == pytest.approx(0.020, abs=2e-6)
        assert r.tpot_s == pytest.approx(0.020, abs=2e-6)


def test_empty_workload_is_an_error():
    with pytest.raises(ConfigError, match="no requests"):
        simulate(Workload((), "test", "native"), PlainPolicy(), CFG)
