"""The compiled iteration path (issue 11): numba-compiled engine iterations for the built-in
policies, on the same SimPy backbone and the same rules as the protocol path.

Every rule the compiled loop runs is written once, as a plain numba-compatible Python
function marked ``@jitable`` (``sim.compiled.jit``) next to the Python class it belongs to:
the scheduler's arrivals, admission, reservation and accounting (``sim.core.scheduler``,
``sim.core.scheduler_state``), the decode
shape of an iteration (``sim.core.speculation``), the acceptance draws
(``sim.acceptance``), the ground truth's attention terms (``sim.latency.pass_costs``) and
a calibrated profile's pricing (``sim.latency.profile``), the
estimator's surfaces (``sim.latency.estimator``), the cost model's shapes
(``sim.policies.goodput``) and the policies' own rules (``sim.policies.*``). The Python
classes call those functions (interpreted for scalar rules, compiled for array rules); the
compiled loop (``sim.compiled.loop``, which is handed the trace's arrivals up front and plays
the arrival and engine processes in SimPy's order, and ``sim.compiled.engine``, one
iteration) calls the compiled versions. Importing this package does not import numba;
``sim.compiled.jit.compiled`` does, on first use. docs/compiled_engine.md describes the
design.
"""
