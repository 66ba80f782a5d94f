"""Figures (matplotlib, Agg canvas, PNG + SVG): ``run_plots`` for one run's tables,
``sweep_plots`` for a sweep's tidy table. Every file embeds its provenance in the image
metadata (PNG text chunk / SVG ``dc:description``)."""
