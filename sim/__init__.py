"""AdaSpec-Sim: a trace-driven discrete-event simulator of speculative-decoding LLM serving.

Nothing here performs I/O at import time; the command-line entry point is ``sim.cli:main``
(``sim.cli:entry`` runs it as a process: the console script and ``python -m sim.cli``).
"""

__version__ = "0.4.0"
SCHEMA_VERSION = 2
