"""Speculative methods beyond a separate draft model (``--method``): drafter presets with
their costs on the hardware model (``presets``, ``costs``), the token trees or chains they
propose (``tree``), how the engine and the policies' cost model price them (``plan``), their
Spec-Bench acceptance (``acceptance``), AdaSpec's verifier on trees (``trim``) and what they
may be combined with (``checks``)."""

from sim.drafters.presets import DEFAULT_METHOD, METHODS, MethodPreset, get_method, method_names

__all__ = ["DEFAULT_METHOD", "METHODS", "MethodPreset", "get_method", "method_names"]
