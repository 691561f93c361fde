"""Spanish by default, English complete: the catalogs cover every string and are compiled."""

import shutil
import subprocess
from pathlib import Path

import pytest
from django.utils import translation

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "locale" / "es" / "LC_MESSAGES" / "django.po"


def _entries(po: Path):
    """(msgid, msgstr, fuzzy) of every entry but the header."""
    entries, fuzzy, key, buf = [], False, None, {}
    for line in [*po.read_text().splitlines(), ""]:
        if line.startswith("#,") and "fuzzy" in line:
            fuzzy = True
        elif line.startswith(("msgid ", "msgstr ", "msgstr[")):
            key, _, rest = line.partition(" ")
            # A plural entry counts as translated when every form is.
            key = "msgstr" if key.startswith("msgstr") else key
            buf[key] = rest[1:-1] if buf.get(key, "x") else ""
        elif line.startswith('"') and key:
            buf[key] += line[1:-1]
        elif not line.strip() and buf:
            if buf.get("msgid"):
                entries.append((buf["msgid"], buf.get("msgstr", ""), fuzzy))
            fuzzy, key, buf = False, None, {}
    return entries


def test_every_spanish_entry_is_translated_and_not_fuzzy():
    entries = _entries(CATALOG)
    assert len(entries) > 50
    assert [msgid for msgid, msgstr, fuzzy in entries if not msgstr or fuzzy] == []


def _needs_gettext():
    if not shutil.which("msgfmt") or not shutil.which("xgettext"):
        pytest.skip("needs GNU gettext (apt-get install gettext)")


def test_the_compiled_catalog_is_up_to_date(tmp_path):
    _needs_gettext()
    compiled = tmp_path / "django.mo"
    subprocess.run(["msgfmt", "--check", "-o", str(compiled), str(CATALOG)], check=True)
    assert compiled.read_bytes() == CATALOG.with_suffix(".mo").read_bytes()


def test_the_code_has_no_string_missing_from_the_catalog(tmp_path):
    _needs_gettext()
    sources = [
        str(p.relative_to(ROOT))
        for app in ("incidencias", "sso", "credenciales", "webhooks")
        for p in (ROOT / app).rglob("*.py")
        if "migrations" not in p.parts
    ]
    pot = tmp_path / "code.pot"
    subprocess.run(
        ["xgettext", "-L", "Python", "--from-code=UTF-8", "-k_", "-kgettext_lazy", "-kgettext",
         "-kpgettext_lazy:1c,2", "-o", str(pot), *sources],
        cwd=ROOT, check=True,
    )  # fmt: skip
    in_code = {msgid for msgid, _, _ in _entries(pot)}
    in_catalog = {msgid for msgid, _, _ in _entries(CATALOG)}
    assert in_code - in_catalog == set()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("language", "title"), [("es", "consumidores de API"), ("en", "API consumers")]
)
def test_admin_speaks_spanish_by_default_and_english_on_request(admin_client, language, title):
    with translation.override(None):
        headers = {} if language == "es" else {"HTTP_ACCEPT_LANGUAGE": "en"}
        response = admin_client.get("/admin/sso/consumidorapi/", **headers)
    assert response.status_code == 200
    assert title.lower() in response.content.decode().lower()
