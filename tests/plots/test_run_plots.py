"""Single-run figures: non-empty PNG and SVG files and the numbers behind them."""

from __future__ import annotations

import warnings

import pandas as pd
import pytest

from fakes import FixedK, LinearLatency, PlainPolicy
from sim.acceptance.base import FixedAcceptance
from sim.output import write_results
from sim.plots.run_plots import (decode_timeline, latency_breakdown, mean_verify_length,
                                 plot_anatomy, write_run_plots)
from sim.run import SimConfig, simulate
from sim.workload.request import Request, Workload

CFG = SimConfig(kv_blocks=10_000, estimator="exact", cuda_graphs=False)


@pytest.fixture(scope="module")
def results():
    requests = tuple(Request(i, 0.05 * i, 100, 20 + i % 7) for i in range(30))
    workload = Workload(requests, "test", "native")
    return [simulate(workload, policy, CFG, seed=0, latency=LinearLatency(),
                     acceptance=FixedAcceptance(0.6)) for policy in (PlainPolicy(), FixedK(3))]


def test_run_plots_write_png_and_svg_with_provenance(tmp_path, results):
    write_results(tmp_path, results, CFG.to_dict(), {"trace": {"path": "t", "sha256": "x"}}, 7)
    paths = write_run_plots(tmp_path, results, CFG)
    names = sorted(p.name for p in paths)
    assert names == sorted(f"{s}.{e}" for s in ("tpot_cdf", "latency_breakdown", "anatomy")
                           for e in ("png", "svg"))
    for path in paths:
        assert path.parent == tmp_path / "plots" and path.stat().st_size > 2000
        data = path.read_bytes()
        if path.suffix == ".png":
            assert data.startswith(b"\x89PNG") and b"schema_version" in data
        else:
            assert b"<svg" in data and b"schema_version" in data


def test_run_plots_of_runs_that_rejected_every_request(tmp_path):
    # no finish times at all: the anatomy's time axis used to come from NaN (an "All-NaN
    # axis" RuntimeWarning on the command's stderr)
    workload = Workload((Request(0, 0.0, 100, 10), Request(1, 2.0, 100, 10)), "test", "native")
    config = SimConfig(kv_blocks=1, estimator="exact", cuda_graphs=False)
    runs = [simulate(workload, PlainPolicy(), config, latency=LinearLatency(),
                     acceptance=FixedAcceptance(0.6))]
    assert runs[0].summary["rejected"] == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        figure = plot_anatomy(runs)
    assert figure.axes[-1].get_xlim()[1] >= 2.0  # the time axis reaches the last arrival


def test_plots_accept_tables_read_back_from_csv(tmp_path, results):
    write_results(tmp_path, results, CFG.to_dict(), {}, 0)

    class Loaded:
        def __init__(self, policy, sub):
            self.policy = policy
            self.requests = pd.read_csv(tmp_path / sub / "requests.csv", comment="#")
            self.iterations = pd.read_csv(tmp_path / sub / "iterations.csv", comment="#")

    loaded = [Loaded("nospec", "nospec"), Loaded("fixed-k:3", "fixed-k_3")]
    assert len(write_run_plots(tmp_path / "again", loaded)) == 6


def test_mean_verify_length_and_breakdown(results):
    assert list(mean_verify_length(pd.Series(["", "1;2;3", None, "4", 2.0]))) == [0, 2, 0, 4, 2]
    plain, fixed = results
    parts = latency_breakdown(plain.requests)
    done = plain.requests
    assert sum(parts.values()) == pytest.approx(done["e2e_s"].mean())
    assert parts["prefill_s"] > 0 and parts["decode_s"] > parts["prefill_s"]
    import numpy as np
    edges = np.linspace(0, fixed.requests["finish_s"].max(), 11)
    line = decode_timeline(fixed.iterations, edges)
    assert len(line) == 10 and np.nanmax(line["mean_k"]) <= 3 and np.nanmax(line["mean_k"]) > 0


def test_figures_are_byte_identical_and_titles_fit(tmp_path, results):
    from sim.plots.run_plots import plot_anatomy, plot_latency_breakdown, plot_tpot_cdf
    from sim.plots.common import save_figure

    import dataclasses
    long_names = [dataclasses.replace(r, policy=name) for r, name in
                  zip(results, ("adaspec:8,slo=tokens,trim=request", "disable-by-batch:5,32"))]
    for name, make in (("cdf", lambda: plot_tpot_cdf(results, 0.04)),
                       ("breakdown", lambda: plot_latency_breakdown(long_names)),
                       ("anatomy", lambda: plot_anatomy(results))):
        first = save_figure(make(), tmp_path / "a", name, {"seed": 1})
        second = save_figure(make(), tmp_path / "b", name, {"seed": 1})
        for a, b in zip(first, second):
            assert a.read_bytes() == b.read_bytes(), a.name
        figure = make()
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        width = figure.bbox.width
        titles = [ax.title for ax in figure.axes] + [figure._suptitle]
        titles = [t for t in titles if t is not None and t.get_text()]
        assert titles, name
        for title in titles:
            box = title.get_window_extent(renderer)
            assert box.x0 >= 0 and box.x1 <= width, (name, title.get_text())
