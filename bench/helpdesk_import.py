"""django-helpdesk's own mail import, timed: the baseline (b) of bench/ingest.py.

Runs inside the helpdesk virtualenv that bench/ingest.py builds (never the portal's), as

    helpdesk-venv/bin/python bench/helpdesk_import.py --database-url URL --maildir DIR
        --manifest manifest.json --media DIR

The Django project is the smallest helpdesk accepts, configured here: the apps its templates and
mail code use (admin, auth, contenttypes, sessions, messages, sites, humanize, staticfiles,
rest_framework, helpdesk), teams mode off (no pinax), PostgreSQL, DEBUG off, outgoing mail into
Django's locmem backend (helpdesk renders and "sends" its acknowledgements; nothing leaves the
machine). One queue reads a local directory mailbox (`email_box_type="local"`), and the import
is helpdesk's `process_email()` (what `manage.py get_email` runs), timed alone: migrations and
setup are not. Helpdesk deletes each file it imported.

helpdesk takes the files in `os.listdir()` order, which is the file system's hash order: a reply
would often come before the mail it answers and start a ticket of its own. The listing is sorted
here so that helpdesk sees the mails in the order they arrived, as the portal does; `--unsorted`
keeps helpdesk's own order.

Prints one JSON line on stdout: timings, CPU, counts, and the threading of the manifest's
replies (a reply is threaded when its FollowUp is on the ticket of the mail it answers).
"""

import argparse
import json
import os
import re
import resource
import sys
import time
import types
from pathlib import Path
from urllib.parse import unquote, urlsplit

# Run as a script, the folder bench/ comes first on sys.path; nothing there is for helpdesk.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
HELPDESK_DEFAULT_EXTENSIONS = [
    ".txt", ".asc", ".pdf", ".doc", ".docx", ".odt", ".jpg", ".png", ".eml",
]  # fmt: skip


def postgres_ticks(database: str) -> dict[int, int]:
    """CPU ticks so far of each PostgreSQL process working for `database`: its client
    connections and the server's own processes (WAL writer, checkpointer, autovacuum), not the
    connections to other databases (someone else's tests on the same server)."""
    ticks = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        head, _, tail = stat.rpartition(")")
        if head.partition("(")[2] != "postgres":
            continue
        if _CLIENT.search(title) and f" {database} " not in title:
            continue
        fields = tail.split()
        ticks[int(entry.name)] = int(fields[11]) + int(fields[12])
    return ticks


def postgres_cpu_since(before: dict[int, int], database: str) -> float:
    """CPU seconds those processes used since `before` (per process: one that ended is left
    out rather than subtracted)."""
    after = postgres_ticks(database)
    return sum(t - before.get(pid, 0) for pid, t in after.items()) / CLOCK_TICKS


# A client connection's process title: "postgres: 15/main: user database host(port) state".
_CLIENT = re.compile(r"\(\d+\) |\[local\] ")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    values = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


def configure(database_url: str, media: Path) -> None:
    from django.conf import settings

    url = urlsplit(database_url)
    urls = types.ModuleType("helpdesk_bench_urls")
    sys.modules["helpdesk_bench_urls"] = urls
    settings.configure(
        DEBUG=False,
        SECRET_KEY="helpdesk-bench-" + os.urandom(16).hex(),
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": url.path.lstrip("/"),
                "USER": unquote(url.username or "postgres"),
                "PASSWORD": unquote(url.password or ""),
                "HOST": url.hostname or "127.0.0.1",
                "PORT": url.port or 5432,
                "CONN_MAX_AGE": None,
            }
        },
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.sites",
            "django.contrib.humanize",
            "django.contrib.staticfiles",
            "rest_framework",
            "helpdesk",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        ROOT_URLCONF="helpdesk_bench_urls",
        SITE_ID=1,
        STATIC_URL="/static/",
        MEDIA_ROOT=str(media),
        MEDIA_URL="/media/",
        LANGUAGE_CODE="es",
        TIME_ZONE="America/Costa_Rica",
        USE_TZ=True,
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        DEFAULT_FROM_EMAIL="soporte@example.com",
        HELPDESK_TEAMS_MODE_ENABLED=False,
        # Its default list refuses .zip and .xlsx, which the corpus attaches: store them all.
        HELPDESK_VALID_EXTENSIONS=[*HELPDESK_DEFAULT_EXTENSIONS, ".zip", ".xlsx"],
        LOGGING={"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}},
    )
    import django

    django.setup()
    from django.urls import include, path

    urls.urlpatterns = [path("helpdesk/", include("helpdesk.urls"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--maildir", type=Path, required=True)
    parser.add_argument("--manifest", type=Path, required=True)
    parser.add_argument("--media", type=Path, required=True)
    parser.add_argument("--unsorted", action="store_true", help="helpdesk's own listdir order")
    args = parser.parse_args()

    configure(args.database_url, args.media)
    from django.core import mail
    from django.core.management import call_command

    started = time.perf_counter()
    call_command("migrate", verbosity=0, interactive=False)
    migrate_s = time.perf_counter() - started

    import helpdesk
    from helpdesk.email import process_email
    from helpdesk.models import FollowUp, FollowUpAttachment, Queue, Ticket

    Queue.objects.create(
        title="Soporte",
        slug="soporte",
        email_address="soporte@example.com",
        allow_email_submission=True,
        email_box_type="local",
        email_box_local_dir=str(args.maildir),
        email_box_interval=0,
    )
    if not args.unsorted:
        listdir = os.listdir
        os.listdir = lambda path=".": sorted(listdir(path))

    files = len(os.listdir(args.maildir))
    database = urlsplit(args.database_url).path.lstrip("/")
    cpu, db_ticks, busy = own_cpu(), postgres_ticks(database), machine_busy()
    started = time.perf_counter()
    process_email(quiet=True)
    seconds = time.perf_counter() - started
    cpu, db_cpu = own_cpu() - cpu, postgres_cpu_since(db_ticks, database)
    busy = machine_busy() - busy

    manifest = json.loads(args.manifest.read_text())["mails"]
    ticket_of = dict(
        FollowUp.objects.filter(message_id__isnull=False).values_list("message_id", "ticket_id")
    )
    replies = [m for m in manifest if m["parent"]]
    threaded = sum(
        1
        for m in replies
        if m["message_id"] in ticket_of and ticket_of[m["message_id"]] == ticket_of.get(m["parent"])
    )
    imported = sum(1 for m in manifest if m["message_id"] in ticket_of)
    print(
        json.dumps(
            {
                "version": getattr(helpdesk, "__version__", None) or _version(),
                "files": files,
                "imported": imported,
                "left_in_maildir": len(os.listdir(args.maildir)),
                "seconds": seconds,
                "cpu_s": cpu,
                "postgres_cpu_s": db_cpu,
                "others_cpu_s": max(0.0, busy - cpu - db_cpu),
                "migrate_s": migrate_s,
                "tickets": Ticket.objects.count(),
                "followups": FollowUp.objects.count(),
                "attachments": FollowUpAttachment.objects.count(),
                "replies": len(replies),
                "threaded": threaded,
                "mails_sent": len(getattr(mail, "outbox", [])),
                "order": "unsorted" if args.unsorted else "sorted",
            }
        )
    )
    return 0


def _version() -> str | None:
    from importlib.metadata import version

    return version("django-helpdesk")


if __name__ == "__main__":
    sys.exit(main())
