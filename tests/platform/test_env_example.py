import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
READERS = re.compile(r"""(?:env\.\w+|secret|_every)\(\s*(?:f?["'])([A-Z][A-Z0-9_]+)["']""")
NAMES_IN_CONTRACT = [
    "DATABASE_URL", "REDIS_URL", "SECRET_KEY", "DEBUG", "ALLOWED_HOSTS", "EMAIL_HOST",
    "EMAIL_PORT", "EMAIL_HOST_USER", "EMAIL_HOST_PASSWORD", "EMAIL_USE_TLS", "EMAIL_USE_SSL",
    "DEFAULT_FROM_EMAIL", "MEDIA_ROOT", "ATTACHMENTS_ROOT", "SYNOLOGY_URL", "SYNOLOGY_BOT_TOKEN",
    "DEFAULT_VIRTUAL_OPERATOR", "TRUSTED_PROXIES",
]  # fmt: skip


def documented() -> set[str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line)}


def test_it_documents_every_variable_settings_reads():
    read = set(READERS.findall((ROOT / "incidencias" / "settings.py").read_text()))
    assert len(read) > 30
    assert read - documented() == set()


def test_it_documents_the_names_other_systems_rely_on():
    assert set(NAMES_IN_CONTRACT) - documented() == set()
