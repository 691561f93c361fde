"""Settings for bench/pages.py: the project's own.

The environment (DEBUG=0, DATABASE_URL, ...) is set by the bench, as a deployment would set it.
"""

from incidencias.settings import *  # noqa: F403
