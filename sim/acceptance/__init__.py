"""Acceptance models: per-token draft confidence and accept/reject outcomes for the simulator."""
