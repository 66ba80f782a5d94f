"""Trace categories the acceptance model has no profile for: their requests take the model's
default profile, as before, but never silently -- one warning line naming them with their
request counts and the profile, a header line, and ``acceptance_category_fallback`` in the
``simulated`` block (summary.json and every table's header). Known categories (any case,
aliases), requests without a category and one-profile models say nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.acceptance.presets import make_acceptance, unknown_categories
from sim.cli import main
from sim.workload.request import Request, Workload
from sim.workload.spec import WorkloadSpec

ROOT = Path(__file__).resolve().parents[2]


def _trace(tmp_path: Path, categories: list[str]) -> str:
    path = tmp_path / "trace.csv"
    path.write_text("arrival_s,prompt_tokens,output_tokens,category\n" + "".join(
        f"{0.1 * i},{20 + i},{8 + i % 3},{c}\n" for i, c in enumerate(categories)))
    return str(path)


def test_unknown_categories_warn_once_and_are_recorded(tmp_path, capsys):
    trace = _trace(tmp_path, ["coding", "mathh", "Math", "", "mathh", "Poetry", " QA "])
    out = tmp_path / "run"
    assert main(["--trace", trace, "--policy", "nospec", "--policy", "static:2", "--quiet",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    line = ("acceptance spec-bench-vicuna-68m has no profile for the trace's categories "
            "'mathh' (2), 'Poetry' (1): those 3 requests take its default (category '') "
            "profile (mean level 0.597)")
    assert printed.err.splitlines() == [f"adaspec-sim: warning: {line}"]
    assert line in printed.out.splitlines()  # the header states it too
    fallback = {"categories": {"mathh": 2, "Poetry": 1}, "requests": 3,
                "profile": "default (category '')", "mean_level": 0.5967}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["simulated"]["acceptance_category_fallback"] == fallback
    for table in ("requests.csv", "iterations.csv"):
        first = (out / "static_2" / table).read_text().splitlines()[0]
        header = json.loads(first.split(" ", 2)[2])
        assert header["simulated"]["acceptance_category_fallback"] == fallback


@pytest.mark.parametrize("categories, acceptance", [
    (["coding", "Math", "", " QA ", "mt-bench", "multi_turn"], "spec-bench-vicuna-68m"),
    (["mathh", "Poetry"], "fixed:0.5"),          # one profile for every request
    (["mathh", "Poetry"], "positions:0.6/0.3"),  # likewise
])
def test_known_categories_and_one_profile_models_say_nothing(tmp_path, capsys, categories,
                                                             acceptance):
    out = tmp_path / "run"
    assert main(["--trace", _trace(tmp_path, categories), "--policy", "nospec", "--quiet",
                 "--acceptance", acceptance, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert printed.err == "" and "has no profile" not in printed.out
    summary = json.loads((out / "summary.json").read_text())
    assert "acceptance_category_fallback" not in summary["simulated"]


def test_category_counts_of_both_request_stores():
    records = tuple(Request(i, 0.1 * i, 10, 5, c) for i, c in enumerate("abacb"))
    assert Workload(records, "x", "native").category_counts() == {"a": 2, "b": 2, "c": 1}
    spec = WorkloadSpec(trace=str(ROOT / "traces" / "adaspec" / "code.csv"), limit=50)
    built = spec.build(0)
    assert sum(built.category_counts().values()) == 50
    assert built.category_counts() == Workload(tuple(built.requests), "x", "y").category_counts()


@pytest.mark.parametrize("trace", ["adaspec/code.csv", "adaspec/conv.csv", "adaspec/mooncake.csv",
                                   "azure2023/AzureLLMInferenceTrace_code.csv",
                                   "samples/burstgpt_sample.csv",
                                   "mooncake/synthetic_trace.jsonl"])
def test_the_shipped_traces_fall_back_nowhere_on_the_presets(trace):
    """Spec-Bench lengths carry Spec-Bench's categories, which every preset defines; the
    other traces carry none. A model calibrated on fewer categories does fall back."""
    counts = WorkloadSpec(trace=str(ROOT / "traces" / trace), limit=400).build(0).category_counts()
    for preset in ("spec-bench-vicuna-68m", "spec-bench-eagle", "spec-bench-pld"):
        assert unknown_categories(make_acceptance(preset), counts) == {}
    if trace.startswith("adaspec/"):
        assert len(counts) == 13 and "" not in counts
    else:
        assert set(counts) == {""}
