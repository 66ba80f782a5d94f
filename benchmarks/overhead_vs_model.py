"""Compare measured decode passes (``adaspec-calibrate overhead`` documents) with the
simulator's latency model of the same model on the same GPU.

    python benchmarks/overhead_vs_model.py OVERHEAD.json [...] [--gpu H200] [--tp 1]

For every sample (batch B, C cached tokens per sequence, one new token each) it prints the
measured pass time, the operators' own time (``busy``) and the rest (``overhead``), then the
simulator's price of the same pass (``sim.latency.roofline.RooflineLatency.target_verify_s``
of B sequences, B tokens, B*C context tokens) with its per-pass overhead set to 0 (its
kernels alone, against ``busy``) and the overhead the simulator would add by default
(``sim.latency.overhead``). The model is the document's target preset (``random:NAME`` or a
preset name); the GPU is ``--gpu`` (default: the document's GPU name when it names a preset,
e.g. "NVIDIA H200" -> H200). A CPU document has no GPU preset: give ``--gpu`` to compare its
shapes anyway (the numbers then say nothing about the model's accuracy).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sim.errors import ConfigError  # noqa: E402
from sim.latency.hardware import get_gpu, gpu_names  # noqa: E402
from sim.latency.models import get_model  # noqa: E402
from sim.latency.overhead import DEFAULT_TARGET_OVERHEAD_S  # noqa: E402
from sim.latency.roofline import RooflineLatency  # noqa: E402


def preset_of(spec: str) -> str:
    """The model preset a ``--target`` spec names (``random:NAME`` or ``NAME``)."""
    return spec.split(":", 1)[1] if spec.startswith("random:") else spec


def gpu_of(doc: dict, override: str | None) -> str:
    """The GPU preset to price on: ``override``, else the preset the document's GPU names."""
    if override:
        return override
    name = (doc.get("hardware", {}).get("gpu") or "").lower()
    for preset in gpu_names():
        if preset.split("-")[0].lower() in name:
            return preset
    raise ConfigError(f"the document's device ({name or 'cpu'}) is not a GPU preset "
                      f"({', '.join(gpu_names())}): give --gpu")


def compare(doc: dict, gpu: str, tp: int = 1) -> list[dict]:
    """One row per sample: measured (pass, busy, overhead) and the model's kernels-only
    price of the same pass, in seconds."""
    model = get_model(preset_of(doc["config"]["target"]))
    latency = RooflineLatency(model, None, get_gpu(gpu), tp, target_overhead_s=0.0)
    rows = []
    for s in doc["samples"]:
        batch, context = s["batch"], s["context_per_seq"]
        kernels = latency.target_verify_s(batch, batch, batch * context)
        rows.append({"batch": batch, "pass_s": s["pass_s_median"], "busy_s": s["busy_s"],
                     "overhead_s": s["overhead_s"], "model_kernels_s": kernels,
                     "kernel_error": kernels / s["busy_s"] - 1 if s["busy_s"] > 0 else None})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("documents", nargs="+", type=Path)
    parser.add_argument("--gpu", help=f"GPU preset ({', '.join(gpu_names())})")
    parser.add_argument("--tp", type=int, default=1)
    args = parser.parse_args(argv)
    try:
        for path in args.documents:
            doc = json.loads(path.read_text())
            gpu = gpu_of(doc, args.gpu)
            print(f"== {path.name}: {doc['config']['target']} on "
                  f"{doc['hardware'].get('gpu') or doc['hardware'].get('cpu')} "
                  f"({doc['config']['dtype']}), {doc['config']['context_per_seq']} cached tokens "
                  f"per sequence; model: {gpu} TP{args.tp}, overhead 0 (default "
                  f"{1e3 * DEFAULT_TARGET_OVERHEAD_S:g} ms)")
            print(f"{'batch':>6s} {'pass ms':>9s} {'busy ms':>9s} {'overhead ms':>12s} "
                  f"{'model kernels ms':>17s} {'vs busy':>8s}")
            for r in compare(doc, gpu, args.tp):
                error = "" if r["kernel_error"] is None else f"{100 * r['kernel_error']:+7.1f}%"
                print(f"{r['batch']:6d} {1e3 * r['pass_s']:9.3f} {1e3 * r['busy_s']:9.3f} "
                      f"{1e3 * r['overhead_s']:12.3f} {1e3 * r['model_kernels_s']:17.3f} "
                      f"{error:>8s}")
    except ConfigError as exc:
        print(f"overhead_vs_model: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
