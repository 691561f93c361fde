"""`make run`'s supervisor: honcho, with time for the worker to finish what it has.

honcho sends SIGTERM to every process on Ctrl-C and SIGKILL five seconds later. A Celery
worker on the embedded filesystem broker needs longer than that to stop warmly, so this runs
honcho's own command line with a longer grace period (SUPERVISOR_GRACE_SECONDS, default 30).
"""

import os
import sys

from honcho import manager
from honcho.command import main

if __name__ == "__main__":
    manager.KILL_WAIT = int(os.environ.get("SUPERVISOR_GRACE_SECONDS", "30"))
    sys.exit(main())
