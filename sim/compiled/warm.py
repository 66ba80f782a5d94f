"""The compiled loop made ready in this process before runs are handed to worker processes.

``adaspec-sweep``'s workers are separate processes. On a cold disk cache (the first run after
an install or an update) each of them compiled the loop on its own: about 2 minutes of CPU
apiece, all at once, in silence. ``warm_loop`` runs a two-request simulation on the compiled
path first, in the process that starts the workers, so the loop is compiled once (announced
when the caller installed ``sim.compiled.jit.compile_notices``) and written to the disk cache;
the workers then load it. On a warm cache it costs one load, well under a second.

``may_take_compiled_path`` says whether a run could use the loop at all, so that a sweep whose
every point runs the protocol path does not pay for a compile it never uses.
"""

from __future__ import annotations

#: the warm-up's requests (arrival s, prompt tokens, output tokens): two at once, so the
#: loop batches, drafts, verifies and finishes them
WARM_UP_REQUESTS = ((0.0, 32, 8), (0.0, 32, 8))
#: the warm-up's policy: AdaSpec's rules reach every part of the loop's code
WARM_UP_POLICY = "adaspec"


def warm_loop() -> bool:
    """Load the compiled loop, or compile it and write it to the disk cache, by simulating
    ``WARM_UP_REQUESTS`` under ``WARM_UP_POLICY`` on the embedded defaults (the loop has one
    signature for every run, so any run readies it for all). Its warnings are dropped, its
    result is not kept. Returns False, having done nothing, when compiled code is not cached
    on disk (``ADASPEC_SIM_JIT_CACHE=off``: every process compiles anyway)."""
    from sim.compiled.jit import cache_dir
    if cache_dir() is None:
        return False
    from sim.errors import recorded_warnings
    from sim.run import simulate
    from sim.workload.request import Request, Workload

    requests = tuple(Request(i, arrival_s, prompt, output)
                     for i, (arrival_s, prompt, output) in enumerate(WARM_UP_REQUESTS))
    with recorded_warnings():
        result = simulate(Workload(requests, "warm-up", "warm-up"), WARM_UP_POLICY)
    return result.summary["iteration_path"] == "compiled"


def may_take_compiled_path(policy: str, engine_path: str) -> bool:
    """Whether a run of ``policy`` (a registry name) with ``engine_path`` could take the
    compiled path: not when the protocol path is asked for, nor for a policy that has no
    compiled form or does not resolve (its run fails on its own). The models are not built
    here, so a run this answers True for may still take the protocol path."""
    if engine_path == "protocol":
        return False
    from sim.compiled.run import policy_plan
    from sim.run import resolve_policy
    try:
        plan = policy_plan(resolve_policy(policy))
    except Exception:  # noqa: BLE001 - a bad policy is the run's own error, reported there
        return False
    return not isinstance(plan, str)
