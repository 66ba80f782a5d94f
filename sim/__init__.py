"""AdaSpec-Sim: a trace-driven discrete-event simulator of speculative-decoding LLM serving.

Nothing here performs I/O at import time; the command-line entry point is ``sim.cli:main``.
"""

__version__ = "0.4.0"
SCHEMA_VERSION = 2
