import atexit
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

# Acceptance tables are cached on disk (sim.acceptance.table_cache): keep the test run's copy
# out of the user's cache directory.
if "ADASPEC_SIM_TABLE_CACHE" not in os.environ:
    _tables = tempfile.mkdtemp(prefix="adaspec-sim-tables-")
    os.environ["ADASPEC_SIM_TABLE_CACHE"] = _tables
    atexit.register(shutil.rmtree, _tables, ignore_errors=True)
