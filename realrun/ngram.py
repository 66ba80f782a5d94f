"""Prompt-lookup (n-gram) drafting for the real engine: no draft model, no draft weights, no
accelerator time. Proposals come from the request's own tokens (prompt + output so far) on
the CPU; the target verifies them as a chain exactly as it verifies a draft model's tokens.

The lookup (``propose``), as vLLM V1's n-gram proposer does it
(vllm-project/vllm ``vllm/v1/spec_decode/ngram_proposer.py``,
``_find_longest_matched_ngram_and_propose_tokens``; options ``prompt_lookup_min``,
``prompt_lookup_max``, ``num_speculative_tokens``), itself the serving form of Prompt Lookup
Decoding (apoorvumang/prompt-lookup-decoding, ``find_candidate_pred_tokens``: n from
``max_ngram_size`` down to 1, first match, the next ``num_pred_tokens`` tokens):

- the longest suffix n-gram of the tokens, n in ``max_n`` .. ``min_n``, that also occurs
  earlier (an occurrence must end before the last token; it may overlap the suffix);
- of its occurrences, the earliest;
- the proposal is the (up to) k tokens that follow that occurrence (fewer when the tokens
  end first: a continuation never reaches past the last token);
- no occurrence for any n: no proposal, the request drafts nothing this iteration.

Prompt Lookup Decoding's notebook also skips occurrences whose continuation would start
inside the suffix itself; vLLM does not, and this module follows vLLM.

Draft probability (what ``draft_step`` reports to the policies). A lookup has no model
confidence. Reporting 1.0 would tell AdaSpec that every proposed token is certain (its
goodput estimate and its confidence-ordered trimming would be meaningless) and 0 would stop
every confidence-driven policy at once. So the executor reports an empirical, causal estimate
of the probability that the token is accepted given that every earlier token of the chain
was: ``NgramConfidence``, per (matched n-gram length n, draft position j), the running ratio
(accepted + a) / (judged + a + b) over every token of this run that verification judged so
far (all earlier positions accepted), with a Beta(a, b) = Beta(1, 1) prior (0.5 before any
evidence). It is learned online from the run's own verdicts (never from the future), so a
long match earns a higher confidence than a one-token match, and later positions the lower
ones they turn out to have. Cumulative products of these values are what AdaSpec uses as
c_{i,j}; SmartSpec and static policies ignore confidences (SmartSpec learns its own rate).

Every request proposes once per decode iteration (``NgramDecodeExecutor.propose``), before
the policy decides: the engine caps each request's ``max_draft_tokens`` at its proposal
length, so the policies see how much can be drafted, and the driver's prefix rule keeps a
request with no proposal out of every draft step. The time spent looking up is measured
(``perf_counter``) and logged per iteration as ``draft_cpu_s``; it is inside the iteration's
measured duration (there is no other drafting cost: no draft pass, no draft KV cache).
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import torch

from realrun.executor import RealDecodeExecutor
from realrun.kvcache import SlotKVCache
from realrun.lookup import NgramConfidence, NgramConfig, propose


class NgramDecodeExecutor(RealDecodeExecutor):
    """``RealDecodeExecutor`` whose drafts come from prompt lookup instead of a draft model.

    Per decode iteration: ``begin(slots)``, then ``propose(max_tokens)`` (the lookup for every
    row, capped per row; returns the proposal lengths), then the policy loop's
    ``draft_step``s reveal the proposal one position at a time (a row may only draft
    positions its proposal has), then ``verify`` (the target pass and greedy acceptance of
    ``RealDecodeExecutor``; lossless). ``temperature > 0``: the proposal is a point mass, so
    rejection sampling accepts token x with probability p(x) and resamples from p without x.
    """

    def __init__(self, target: torch.nn.Module, target_cache: SlotKVCache,
                 config: NgramConfig | None = None, *, temperature: float = 0.0, seed: int = 0,
                 log_acceptance: bool = False) -> None:
        super().__init__(target, target_cache, None, None, temperature=temperature, seed=seed,
                         log_acceptance=log_acceptance)
        self.config = config or NgramConfig()
        self.confidence = NgramConfidence(self.config.max_n, prior_accept=self.config.prior_accept,
                                          prior_reject=self.config.prior_reject)
        self.history: dict[int, list[int]] = {}  # slot -> prompt + emitted tokens
        self.proposals: list[np.ndarray] = []
        self.matched_n: list[int] = []  # per batch row: n-gram length matched (0: none)
        self.draft_cpu_s = 0.0  # lookup time of the current iteration
        self._vocab = int(target.config.vocab_size)

    # ---- request lifecycle ----------------------------------------------------------------
    def prefill(self, slots: Sequence[int], prompts: Sequence[Sequence[int]]) -> list[int]:
        first = super().prefill(slots, prompts)
        for slot, prompt, tok in zip(slots, prompts, first):
            self.history[slot] = [int(t) for t in prompt] + [int(tok)]
        return first

    def release(self, slot: int) -> list[int]:
        self.history.pop(slot, None)
        return super().release(slot)

    @property
    def confidences(self) -> list[list[float]]:
        """Per batch row, the confidence reported for each token drafted this iteration."""
        return [list(c) for c in self._conf]

    # ---- one decode iteration -------------------------------------------------------------
    def begin(self, slots: Sequence[int],
              controlled: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        super().begin(slots, controlled)
        self.proposals = [np.zeros(0, dtype=np.int64) for _ in self._batch]
        self.matched_n = [0] * len(self._batch)
        self.draft_cpu_s = 0.0

    def propose(self, max_tokens: np.ndarray | Sequence[int]) -> np.ndarray:
        """Look up every row's proposal of at most ``max_tokens[i]`` tokens; (B,) lengths."""
        began = time.perf_counter()
        caps = np.asarray(max_tokens, dtype=np.int64)
        if caps.shape != (len(self._batch),):
            raise ValueError(f"propose needs ({len(self._batch)},) caps, got {caps.shape}")
        cfg = self.config
        lengths = np.zeros(len(self._batch), dtype=np.int64)
        for r, slot in enumerate(self._batch):
            proposal, n = propose(self.history[slot], int(caps[r]), cfg.min_n, cfg.max_n)
            self.proposals[r] = proposal
            self.matched_n[r] = n
            lengths[r] = proposal.size
        self.draft_cpu_s += time.perf_counter() - began
        return lengths

    def draft_step(self, step: int, mask: np.ndarray) -> np.ndarray:
        """Reveal proposal position ``step`` for the rows in ``mask``; (B,) confidences."""
        began = time.perf_counter()
        batch = len(self._batch)
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        probs_out = np.zeros(batch, dtype=np.float64)
        for r in rows.tolist():
            if len(self._drafted[r]) != step:
                raise ValueError(f"row {r} drafts step {step} after {len(self._drafted[r])} steps")
            if step >= self.proposals[r].size:
                raise ValueError(f"row {r} has a proposal of {self.proposals[r].size} tokens, "
                                 f"cannot draft position {step}")
            token = int(self.proposals[r][step])
            conf = self.confidence.value(self.matched_n[r], step)
            self._drafted[r].append(token)
            self._conf[r].append(conf)
            if self.temperature > 0:
                q = torch.zeros(self._vocab, device=self.target_cache.device)
                q[token] = 1.0
                self._draft_q[r].append(q)
            probs_out[r] = conf
        if self._controlled is not None and rows.size:
            probs_out[rows] = self._controlled[0][rows, step]
        self.draft_cpu_s += time.perf_counter() - began
        return probs_out

    def verify(self, verify_tokens: np.ndarray) -> np.ndarray:
        accepted = super().verify(verify_tokens)
        k = np.asarray(verify_tokens, dtype=np.int64)
        for r in range(len(self._batch)):
            self.confidence.observe(self.matched_n[r], int(k[r]), int(accepted[r]))
        return accepted

    def _roll_back_draft(self, accepted: list[int], emitted: list[list[int]]) -> None:
        """No draft cache: record the emitted tokens (history for the next lookups)."""
        for r, slot in enumerate(self._batch):
            self.rows[slot].generated.extend(emitted[r])
            self.history[slot].extend(emitted[r])
