"""``adaspec-sweep``: run a grid of simulations (traces x rates x policies x SLOs x configs) in
parallel, resumably, into one tidy table plus derived SLO metrics and plots.

Modules: ``spec`` (SWEEP.toml -> points), ``runner`` (local process pool or Ray), ``store``
(one atomic JSON per point, resumable), ``table`` (tidy CSV/Parquet), ``derived`` (attainment
curves, goodput-rate, speedups), ``cli`` (the command).
"""
