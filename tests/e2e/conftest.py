"""Browser tests: Playwright driving Debian's Chromium (`apt-get install chromium`) against the
portal served by pytest-django's live server.

- `navegador`: one Chromium for the session (CHROMIUM names another binary).
- `pagina`: a fresh browser context and page per test, Spanish by default.
- `entrar(pagina, usuario)`: signs a user in by handing the browser a real session cookie (the
  sign-in form itself is tested on its own, with its second factor).
- `auditar(pagina)`: an axe-core audit of the page; serious or critical violations fail.
- `captura(pagina, nombre)`: a full-page screenshot under test-output/screenshots/ for a person
  to look at.
"""

import os
import shutil
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; the ORM calls the tests make
# between browser steps are synchronous and safe here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CAPTURAS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    return (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def navegador():
    ejecutable = _chromium()
    if ejecutable is None:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ejecutable, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def pagina(navegador, live_server, settings):
    # The live server speaks plain HTTP.
    settings.SESSION_COOKIE_SECURE = False
    settings.CSRF_COOKIE_SECURE = False
    settings.SECURE_SSL_REDIRECT = False
    contexto = navegador.new_context(
        base_url=live_server.url, locale="es-ES", viewport={"width": 1280, "height": 900}
    )
    contexto.set_default_timeout(15_000)
    page = contexto.new_page()
    errores: list[str] = []
    page.on("console", lambda m: errores.append(m.text) if m.type == "error" else None)
    page.errores_consola = errores
    yield page
    contexto.close()


@pytest.fixture
def entrar(live_server):
    from django.conf import settings as django_settings
    from django.test import Client

    def entrar(page, usuario):
        cliente = Client()
        cliente.force_login(usuario)
        cookie = cliente.cookies[django_settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [
                {
                    "name": django_settings.SESSION_COOKIE_NAME,
                    "value": cookie.value,
                    "url": live_server.url,
                    "httpOnly": True,
                }
            ]
        )
        return page

    return entrar


@pytest.fixture
def auditar():
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()

    def auditar(page, *, contexto: str = ""):
        resultado = axe.run(page)
        graves = [
            v
            for v in resultado.response["violations"]
            if v.get("impact") in ("serious", "critical")
        ]
        detalle = "\n".join(
            f"{v['id']} ({v['impact']}): {v['help']} — "
            + ", ".join(str(n.get("target")) for n in v.get("nodes", [])[:5])
            for v in graves
        )
        assert not graves, f"axe found serious/critical violations {contexto}:\n{detalle}"
        return resultado

    return auditar


@pytest.fixture
def captura():
    CAPTURAS.mkdir(parents=True, exist_ok=True)

    def captura(page, nombre: str):
        ruta = CAPTURAS / f"{nombre}.png"
        page.screenshot(path=str(ruta), full_page=True)
        return ruta

    return captura
