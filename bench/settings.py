"""Settings for the benchmarks: the project's own, with the baseline view's URL added.

The environment (DEBUG=0, SECRET_KEY, DATABASE_URL, ...) is set by the bench script, exactly
as a deployment would set it; nothing here changes how the portal itself behaves.
"""

from incidencias.settings import *  # noqa: F403
from incidencias.settings import env

ROOT_URLCONF = "bench.urls"

# The consumer the baseline writes into its audit rows, as the portal does for its own.
BENCH_CONSUMIDOR_ID = env.int("BENCH_CONSUMIDOR_ID", default=None)
