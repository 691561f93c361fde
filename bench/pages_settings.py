"""Settings for bench/pages.py: the project's own, plus the stand-in pages' templates and URLs.

The environment (DEBUG=0, DATABASE_URL, ...) is set by the bench, as a deployment would set it.
"""

from incidencias.settings import *  # noqa: F403
from incidencias.settings import BASE_DIR, TEMPLATES

ROOT_URLCONF = "bench.pages_urls"
TEMPLATES[0]["DIRS"] = [*TEMPLATES[0]["DIRS"], BASE_DIR / "bench" / "templates"]
