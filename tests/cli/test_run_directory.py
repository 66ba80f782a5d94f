"""A run directory is one run: never mixed with another, replaced whole with --overwrite,
nothing left behind on an error, summary.json last, byte-identical for the same inputs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sim.cli import main
from sim.output import check_out_dir, run_directory
from sim.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CODE = str(ROOT / "traces" / "adaspec" / "code.csv")
CONV = str(ROOT / "traces" / "adaspec" / "conv.csv")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_reusing_out_is_refused_and_overwrite_replaces_the_whole_run(tmp_path, capsys):
    out = tmp_path / "R"
    assert main(["--trace", CODE, "--limit", "20", "--policy", "static:5", "--out", str(out),
                 "--plot", "--quiet"]) == 0
    first = _files(out)
    assert main(["--trace", CONV, "--limit", "20", "--policy", "nospec", "--out", str(out),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not empty" in err and "--overwrite" in err
    assert "static:5" in err  # it says which run is there
    assert _files(out) == first  # untouched
    assert main(["--trace", CONV, "--limit", "20", "--policy", "nospec", "--out", str(out),
                 "--overwrite", "--quiet"]) == 0
    assert _files(out) == ["nospec/iterations.csv", "nospec/requests.csv", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["inputs"]["trace"]["path"].endswith("conv.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["R"]  # no tmp or old sibling


def test_an_empty_existing_directory_is_used(tmp_path, capsys):
    out = tmp_path / "empty"
    out.mkdir()
    assert main(["--trace", CODE, "--limit", "5", "--policy", "nospec", "--out", str(out),
                 "--quiet"]) == 0
    assert (out / "summary.json").exists()


def test_errors_leave_nothing_behind(tmp_path, capsys):
    out = tmp_path / "a" / "b" / "run"
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival_s,prompt_tokens,output_tokens\n")
    assert main(["--trace", str(bad), "--quiet", "--out", str(out)]) == 2
    assert main(["--trace", CODE, "--limit", "5", "--quiet", "--policy", "bogus",
                 "--out", str(out)]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]
    # an error while writing: the staging folder and the parents made for it are removed
    with pytest.raises(RuntimeError):
        with run_directory(out) as staging:
            (staging / "partial.csv").write_text("x")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv"]


def test_out_that_is_a_file_or_unwritable_is_refused_up_front(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not a directory"):
        check_out_dir(blocker)
    with pytest.raises(ConfigError, match="cannot write"):
        check_out_dir(blocker / "sub")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="cannot write"):
            check_out_dir(locked / "run")


def test_same_inputs_give_byte_identical_files_plots_included(tmp_path, capsys):
    args = ["--trace", CODE, "--limit", "30", "--policy", "nospec", "--policy", "adaspec:8",
            "--quiet", "--plot"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    files = _files(tmp_path / "a")
    assert files == _files(tmp_path / "b")
    assert sum(f.endswith(".svg") for f in files) == 3 and sum(f.endswith(".png") for f in files) == 3
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_summary_json_is_written_last(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--trace", CODE, "--limit", "20", "--policy", "nospec", "--policy", "static:3",
                 "--quiet", "--plot", "--out", str(out)]) == 0
    stamps = {rel: (out / rel).stat().st_mtime_ns for rel in _files(out)}
    last = max(stamps.values())
    assert stamps["summary.json"] == last
    assert all(t <= stamps["summary.json"] for t in stamps.values())


def test_overwrite_never_replaces_a_folder_that_is_not_a_run(tmp_path, capsys):
    home = tmp_path / "home"
    (home / "notes").mkdir(parents=True)
    (home / "thesis.tex").write_text("precious")
    assert main(["--trace", CODE, "--limit", "5", "--policy", "nospec", "--quiet", "--out",
                 str(home), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not an adaspec-sim run" in err
    assert (home / "thesis.tex").read_text() == "precious"
