"""Opt-in checks on real hardware/weights: the fetched Qwen2.5-Coder pair (``-m slow``, skipped
unless cached by ``adaspec-realrun fetch-models``) and the tiny-model losslessness on CUDA
(``gpu``, skipped without a GPU)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from realrun import fetch  # noqa: E402
from realrun.models import load_model  # noqa: E402
from realrun_helpers import Req, StaticPolicy, greedy_reference, perturbed_copy, run_engine, tiny_model  # noqa: E402


@pytest.mark.slow
@pytest.mark.real
def test_real_pair_speculation_is_lossless():
    if not all(fetch.is_cached(n) for n in fetch.REAL_PAIR):
        pytest.skip("real pair not fetched (adaspec-realrun fetch-models)")
    target = load_model(fetch.REAL_PAIR[0])
    draft = load_model(fetch.REAL_PAIR[1])
    tok = target.tokenizer
    prompts = ["def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
               "# Sort a list of dicts by the key 'age' in Python\n"]
    ids = [tok(p)["input_ids"] for p in prompts]
    outputs = {}
    for k in (0, 4):
        reqs = [Req(0, ids[0], 24), Req(1, ids[1], 16)]
        _, outcomes = run_engine(target.model, draft.model, reqs, StaticPolicy(k), max_slots=2, max_len=256)
        outputs[k] = [r.output for r in reqs]
        if k:
            assert sum(int(o.accepted.sum()) for o in outcomes) > 0
    assert outputs[0] == outputs[4]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_lossless_on_cuda(arch):
    target_cpu = tiny_model(arch, seed=3, dtype=torch.float32)
    reqs_ref = [Req(0, [1, 2, 3, 4, 5], 12), Req(0, [7, 8], 16), Req(2, [9, 10, 11], 10)]
    target = target_cpu.to("cuda")
    draft = perturbed_copy(target_cpu, 0.02).to("cuda")
    refs = [greedy_reference(target, r.prompt, r.new_tokens) for r in reqs_ref]
    for k in (0, 3):
        reqs = [Req(r.arrival_iter, r.prompt, r.new_tokens) for r in reqs_ref]
        run_engine(target, draft, reqs, StaticPolicy(k), max_slots=2)
        assert [r.output for r in reqs] == refs
