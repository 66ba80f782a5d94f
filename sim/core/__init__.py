"""The executor-agnostic serving core: scheduling, KV accounting, padding and the
speculative-decoding policy protocol driver. Reused by ``realrun``."""
