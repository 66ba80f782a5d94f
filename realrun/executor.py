"""The real decode executor: ``sim.core.speculation.DecodeExecutor`` over real models.

One decode iteration over the requests in ``begin(slots)`` (batch order = BatchView order):
``draft_step`` runs the draft model one token for the masked rows (one batched pass),
``verify`` runs ONE batched target pass over each row's last emitted token plus its first k_i
drafted tokens and accepts the longest prefix whose tokens equal the target's greedy argmax
(lossless greedy: the output is the target's own greedy decoding, for every policy). Each row
emits a_i accepted tokens plus one bonus/correction token from the target.

Cache invariants between iterations, per request:
- the target cache holds every token except the last emitted one (fed first at verify);
- the draft cache holds every token except ``draft_pending`` (one or more trailing emitted
  tokens: the bonus token, plus the last drafted token when all drafts were accepted, plus
  everything emitted in iterations where the row did not draft). Draft step 0 feeds all of
  them in one pass (valid lengths per row), so the draft always catches up exactly.
Rejected tokens are rolled back with ``truncate`` on both caches.

Options: ``temperature > 0`` uses standard speculative rejection sampling with a seeded
``torch.Generator`` (distribution-preserving, not token-identical). Controlled acceptance
(``begin(..., controlled=(conf, accept))``): the real passes run, but the draft confidences
and accept outcomes come from the given matrices (the simulator's acceptance model); a row
emits its first a_i drafted tokens and the target's token after them, keeping the caches
consistent with the emitted text (which is then not the target's greedy text).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from realrun import forward
from realrun.kvcache import SlotKVCache
from sim.acceptance.base import accepted_prefix
from sim.errors import ConfigError


@dataclass
class RowState:
    """Per-request decoding state, keyed by slot."""

    slot: int
    generated: list[int] = field(default_factory=list)  # emitted tokens, first token included
    draft_pending: list[int] = field(default_factory=list)  # emitted, not yet in the draft cache

    @property
    def last_token(self) -> int:
        return self.generated[-1]


class RealDecodeExecutor:
    """Runs prefill and decode iterations on a target (and optional draft) with slot caches."""

    def __init__(self, target: torch.nn.Module, target_cache: SlotKVCache,
                 draft: torch.nn.Module | None = None, draft_cache: SlotKVCache | None = None, *,
                 temperature: float = 0.0, seed: int = 0, log_acceptance: bool = False) -> None:
        if (draft is None) != (draft_cache is None):
            raise ConfigError("a draft model needs a draft cache and vice versa")
        if temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {temperature}")
        self.target, self.target_cache = target, target_cache
        self.draft, self.draft_cache = draft, draft_cache
        self.temperature = float(temperature)
        self.generator = torch.Generator(device=target_cache.device).manual_seed(seed)
        self.rows: dict[int, RowState] = {}
        self.log_acceptance = log_acceptance
        # (draft confidence, accepted, position) per verified drafted token up to the first
        # rejection; what ``calibrate`` fits the acceptance model on.
        self.acceptance_log: list[tuple[float, bool, int]] = []
        self.last_emitted: list[list[int]] = []
        self._batch: list[int] = []
        self._drafted: list[list[int]] = []
        self._draft_q: list[list[torch.Tensor]] = []
        self._conf: list[list[float]] = []
        self._controlled: tuple[np.ndarray, np.ndarray] | None = None

    # ---- request lifecycle ----------------------------------------------------------------
    def prefill(self, slots: Sequence[int], prompts: Sequence[Sequence[int]]) -> list[int]:
        """Allocate ``slots``, prefill target and draft with the prompts (one batched pass
        each); return each request's first token (emitted by the target). A request resumed
        after preemption by recompute passes its prompt plus the tokens generated so far."""
        for slot in slots:
            if slot in self.rows:
                raise ConfigError(f"slot {slot} already holds a request")
            self.target_cache.allocate(slot)
            if self.draft_cache is not None:
                self.draft_cache.allocate(slot)
        try:
            logits = forward.prefill(self.target, self.target_cache, slots, prompts)
            if self.draft is not None:
                forward.prefill(self.draft, self.draft_cache, slots, prompts)
        except Exception:
            for slot in slots:  # leave the caches as they were
                for cache in (self.target_cache, self.draft_cache):
                    if cache is not None and cache.is_allocated(slot):
                        cache.free(slot)
            raise
        first = self._pick(logits).tolist()
        for slot, tok in zip(slots, first):
            self.rows[slot] = RowState(slot, [tok], [tok])
        return first

    def release(self, slot: int) -> list[int]:
        """Free ``slot`` in both caches; return the tokens it generated."""
        row = self.rows.pop(slot)
        forward.free(self.target_cache, slot)
        if self.draft_cache is not None:
            forward.free(self.draft_cache, slot)
        return row.generated

    def generated(self, slot: int) -> list[int]:
        return list(self.rows[slot].generated)

    # ---- one decode iteration -------------------------------------------------------------
    def begin(self, slots: Sequence[int],
              controlled: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Start a decode iteration over ``slots`` (batch order); ``controlled`` = (conf,
        accept), both (B, K), replaces the real confidences and verdicts."""
        for slot in slots:
            if slot not in self.rows:
                raise ConfigError(f"slot {slot} holds no request")
        self._batch = [int(s) for s in slots]
        self._drafted = [[] for _ in slots]
        self._draft_q = [[] for _ in slots]
        self._conf = [[] for _ in slots]
        if controlled is not None:
            conf, accept = (np.asarray(a) for a in controlled)
            if conf.shape != accept.shape or conf.ndim != 2 or conf.shape[0] != len(slots):
                raise ValueError("controlled (conf, accept) must both be (B, K)")
            controlled = (conf.astype(np.float64), accept.astype(bool))
        self._controlled = controlled
        self.last_emitted = []

    def draft_step(self, step: int, mask: np.ndarray) -> np.ndarray:
        """One batched draft pass for the rows in ``mask``; (B,) draft probabilities."""
        if self.draft is None:
            raise ConfigError("no draft model loaded: this executor cannot draft")
        batch = len(self._batch)
        rows = np.flatnonzero(np.asarray(mask, dtype=bool))
        probs_out = np.zeros(batch, dtype=np.float64)
        if rows.size == 0:
            return probs_out
        feeds = []
        for r in rows:
            if len(self._drafted[r]) != step:
                raise ValueError(f"row {r} drafts step {step} after {len(self._drafted[r])} steps")
            state = self.rows[self._batch[r]]
            feeds.append(list(state.draft_pending) if step == 0 else [self._drafted[r][-1]])
        valid = [len(f) for f in feeds]
        ids = torch.zeros((len(rows), max(valid)), dtype=torch.long)
        for i, f in enumerate(feeds):
            ids[i, :len(f)] = torch.as_tensor(f, dtype=torch.long)
        slots = [self._batch[r] for r in rows]
        logits = forward.decode(self.draft, self.draft_cache, slots, ids, valid)
        last = logits[torch.arange(len(rows)), torch.as_tensor(valid) - 1]  # [n, V]
        if self.temperature > 0:
            q = torch.softmax(last / self.temperature, dim=-1)
            tokens = torch.multinomial(q, 1, generator=self.generator)[:, 0]
            probs = q.gather(1, tokens[:, None])[:, 0]
        else:
            q = torch.softmax(last, dim=-1)
            probs, tokens = q.max(dim=-1)
        tokens_l, probs_np = tokens.tolist(), probs.double().cpu().numpy()
        for i, r in enumerate(rows):
            self._drafted[r].append(int(tokens_l[i]))
            self._conf[r].append(float(probs_np[i]))
            if self.temperature > 0:
                self._draft_q[r].append(q[i])
            if step == 0:
                self.rows[self._batch[r]].draft_pending = []
        probs_out[rows] = probs_np
        if self._controlled is not None:
            probs_out[rows] = self._controlled[0][rows, step]
        return probs_out

    def verify(self, verify_tokens: np.ndarray) -> np.ndarray:
        """One batched target pass over each row's last token + k_i drafted tokens; returns
        the accepted prefix lengths, records the emitted tokens and rolls both caches back."""
        k = np.asarray(verify_tokens, dtype=np.int64)
        batch = len(self._batch)
        if k.shape != (batch,):
            raise ValueError(f"verify needs ({batch},) lengths, got {k.shape}")
        drafted_n = np.array([len(d) for d in self._drafted], dtype=np.int64)
        if np.any(k < 0) or np.any(k > drafted_n):
            raise ValueError("verify lengths must lie in 0..drafted")
        valid = (k + 1).tolist()
        ids = torch.zeros((batch, int(k.max(initial=0)) + 1), dtype=torch.long)
        for r, slot in enumerate(self._batch):
            ids[r, :valid[r]] = torch.as_tensor([self.rows[slot].last_token] + self._drafted[r][:k[r]])
        before = [self.target_cache.lengths[s] for s in self._batch]
        logits = forward.decode(self.target, self.target_cache, self._batch, ids, valid)
        accepted, emitted = self._judge(logits, k)
        forward.truncate(self.target_cache, self._batch, [b + 1 + a for b, a in zip(before, accepted)])
        self._roll_back_draft(accepted, emitted)
        self.last_emitted = emitted
        return np.asarray(accepted, dtype=np.int64)

    # ---- internals ------------------------------------------------------------------------
    def _pick(self, logits: torch.Tensor) -> torch.Tensor:
        if self.temperature > 0:
            p = torch.softmax(logits / self.temperature, dim=-1)
            return torch.multinomial(p, 1, generator=self.generator)[:, 0]
        return logits.argmax(dim=-1)

    def _judge(self, logits: torch.Tensor, k: np.ndarray) -> tuple[list[int], list[list[int]]]:
        if self._controlled is not None:
            accept = self._controlled[1]
            width = min(accept.shape[1], int(k.max(initial=0)))
            acc = accepted_prefix(accept[:, :width], np.minimum(k, width)) if width else np.zeros_like(k)
            greedy = logits.argmax(dim=-1).tolist()
            out = [(int(a), self._drafted[r][:a] + [greedy[r][a]]) for r, a in enumerate(acc)]
        elif self.temperature > 0:
            out = [self._rejection_sample(logits[r], r, int(k[r])) for r in range(len(k))]
        else:
            greedy = logits.argmax(dim=-1).tolist()
            out = []
            for r in range(len(k)):
                a = 0
                while a < k[r] and self._drafted[r][a] == greedy[r][a]:
                    a += 1
                out.append((a, self._drafted[r][:a] + [greedy[r][a]]))
        accepted = [a for a, _ in out]
        emitted = [toks for _, toks in out]
        if self.log_acceptance:
            self._log(k, accepted)
        return accepted, emitted

    def _rejection_sample(self, logits: torch.Tensor, r: int, k: int) -> tuple[int, list[int]]:
        p_all = torch.softmax(logits[:k + 1] / self.temperature, dim=-1)
        drafted = self._drafted[r]
        for j in range(k):
            x = drafted[j]
            p, q = p_all[j], self._draft_q[r][j]
            u = torch.rand((), generator=self.generator, device=p.device)
            if u * q[x] <= p[x]:
                continue
            residual = torch.clamp(p - q, min=0)
            total = residual.sum()
            residual = residual / total if total > 0 else p
            tok = int(torch.multinomial(residual, 1, generator=self.generator))
            return j, drafted[:j] + [tok]
        tok = int(torch.multinomial(p_all[k], 1, generator=self.generator))
        return k, drafted[:k] + [tok]

    def _roll_back_draft(self, accepted: list[int], emitted: list[list[int]]) -> None:
        slots, lengths = [], []
        for r, slot in enumerate(self._batch):
            state = self.rows[slot]
            state.generated.extend(emitted[r])
            d, a = len(self._drafted[r]), accepted[r]
            if d == 0:
                state.draft_pending.extend(emitted[r])
                continue
            # The draft cache holds drafted[:d-1]; keep the accepted ones among them.
            kept = min(a, d - 1)
            slots.append(slot)
            lengths.append(self.draft_cache.lengths[slot] - (d - 1 - kept))
            state.draft_pending = self._drafted[r][kept:a] + [emitted[r][-1]]
        if slots:
            forward.truncate(self.draft_cache, slots, lengths)

    def _log(self, k: np.ndarray, accepted: list[int]) -> None:
        for r, a in enumerate(accepted):
            for j in range(min(int(k[r]), a + 1)):
                self.acceptance_log.append((self._conf[r][j], j < a, j))
