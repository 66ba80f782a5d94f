"""adaspec-realrun --controlled-acceptance says, as adaspec-sim does, when trace categories the
acceptance model has no profile for take its default profile: one warning line (the same
text) and ``acceptance_category_fallback`` in the run's config (summary.json and every table's
header); a --category the model does not define is refused, as adaspec-sim refuses it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from realrun.cli import main  # noqa: E402
from sim.cli import main as sim_main  # noqa: E402

pytestmark = pytest.mark.real

TINY = ["--target", "random:tiny-llama", "--draft", "random:tiny-llama-draft", "--threads", "1",
        "--max-len", "64", "--time-scale", "0.01", "--quiet"]
FALLBACK = ("acceptance spec-bench-vicuna-68m has no profile for the trace's categories "
            "'mathh' (2): those 2 requests take its default (category '') profile (mean level "
            "0.597)")


def _trace(tmp_path: Path, categories: tuple[str, ...]) -> str:
    path = tmp_path / "cats.csv"
    path.write_text("arrival_s,prompt_tokens,output_tokens,category\n" + "".join(
        f"{0.01 * i},{6 + i},4,{c}\n" for i, c in enumerate(categories)))
    return str(path)


def _warnings(err: str, prog: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"{prog}: warning: ")]


def test_unknown_categories_are_said_and_recorded(tmp_path, capsys):
    trace = _trace(tmp_path, ("coding", "mathh", "Coding", "mathh"))
    out = tmp_path / "real"
    assert main(["--trace", trace, *TINY, "--policy", "static:2", "--controlled-acceptance",
                 "spec-bench-vicuna-68m", "--out", str(out)]) == 0
    assert _warnings(capsys.readouterr().err, "adaspec-realrun") == [
        f"adaspec-realrun: warning: {FALLBACK}"]
    config = json.loads((out / "summary.json").read_text())["config"]
    assert config["acceptance_category_fallback"] == {
        "categories": {"mathh": 2}, "requests": 2, "profile": "default (category '')",
        "mean_level": pytest.approx(0.597, abs=5e-4)}
    for table in ("requests.csv", "iterations.csv"):
        first = (out / "static_2" / table).read_text().splitlines()[0]
        assert json.loads(first.split(" ", 2)[2])["config"]["acceptance_category_fallback"]
    # the simulator says the same of the same trace, in the same words
    assert sim_main(["--trace", trace, "--policy", "nospec", "--quiet"]) == 0
    assert _warnings(capsys.readouterr().err, "adaspec-sim") == [
        f"adaspec-sim: warning: {FALLBACK}"]


@pytest.mark.parametrize("acceptance", ["spec-bench-vicuna-68m", "fixed:0.7", None])
def test_nothing_is_said_or_recorded_without_a_fallback(tmp_path, capsys, acceptance):
    """Known categories, a one-profile model, or no controlled acceptance (the real draft
    decides): no warning and no entry."""
    trace = _trace(tmp_path, ("coding", "mathh") if acceptance == "fixed:0.7" else
                   ("coding", "math"))
    out = tmp_path / "real"
    extra = ["--controlled-acceptance", acceptance] if acceptance else []
    assert main(["--trace", trace, *TINY, "--policy", "static:2", *extra,
                 "--out", str(out)]) == 0
    assert _warnings(capsys.readouterr().err, "adaspec-realrun") == []
    config = json.loads((out / "summary.json").read_text())["config"]
    assert "acceptance_category_fallback" not in config


def test_a_category_the_model_does_not_define_is_refused(tmp_path, capsys):
    path = tmp_path / "plain.csv"
    path.write_text("arrival_s,prompt_tokens,output_tokens\n0.0,6,4\n")
    out = tmp_path / "real"
    assert main(["--trace", str(path), *TINY, "--policy", "static:2", "--category", "mathh",
                 "--controlled-acceptance", "spec-bench-vicuna-68m", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("adaspec-realrun: error: ") and "mathh" in err[0]
    assert not out.exists()
    assert sim_main(["--trace", str(path), "--policy", "nospec", "--category", "mathh",
                     "--quiet"]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].split("error: ", 1)[1] == \
        err[0].split("error: ", 1)[1]
