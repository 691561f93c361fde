"""The TOTP enrolment page, the session verification page and the staff 2FA requirement."""

import re
from datetime import timedelta

import pyotp
import pytest
import time_machine
from django.utils import timezone

from sso import dosfa
from sso.models import CodigoRecuperacion, DispositivoTOTP, Usuario

ENROL = "/cuenta/2fa/"
VERIFY = "/cuenta/2fa/verificar/"

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(db):
    return Usuario.objects.create_user(
        username="jefa", email="jefa@example.com", password="x", is_staff=True, is_superuser=True
    )


def secret_on(page: str) -> str:
    return re.search(r'<code class="secreto">([A-Z2-7 ]+)</code>', page).group(1).replace(" ", "")


def enrol(client) -> tuple[pyotp.TOTP, list[str]]:
    page = client.get(ENROL).content.decode()
    totp = pyotp.TOTP(secret_on(page))
    response = client.post(ENROL, {"code": totp.now(), "next": "/admin/"})
    assert response.status_code == 200
    codes = re.findall(
        r"<li><code>([a-z2-9]{5}-[a-z2-9]{5})</code></li>", response.content.decode()
    )
    return totp, codes


def test_the_enrolment_page_needs_a_signed_in_user(client):
    response = client.get(ENROL)
    assert response.status_code == 302
    assert response["Location"].startswith("/oauth/login?next=")


def test_it_shows_a_qr_code_and_the_secret_and_confirms_with_a_code(client, staff):
    client.force_login(staff)
    page = client.get(ENROL).content.decode()
    assert 'src="data:image/svg+xml' in page
    secreto = secret_on(page)
    dispositivo = DispositivoTOTP.objects.get(user=staff)
    assert not dispositivo.confirmed
    assert dosfa.totp_secreto(dispositivo) == secreto
    assert "otpauth://totp/" in dosfa.totp_uri(dispositivo)

    _totp, codes = enrol(client)
    assert len(codes) == 10
    dispositivo.refresh_from_db()
    assert dispositivo.confirmed
    assert CodigoRecuperacion.objects.filter(usuario=staff).count() == 10
    # Shown once: the page now only says 2FA is on.
    again = client.get(ENROL).content.decode()
    assert "<li><code>" not in again


def test_a_wrong_code_does_not_confirm(client, staff):
    client.force_login(staff)
    client.get(ENROL)
    response = client.post(ENROL, {"code": "000000"}, follow=True)
    assert "no es válido" in response.content.decode()
    assert not DispositivoTOTP.objects.get(user=staff).confirmed


def test_a_password_alone_cannot_add_a_device_to_an_account_that_has_one(client, staff):
    client.force_login(staff)
    enrol(client)
    client.logout()
    client.force_login(staff)  # a new session, not verified
    response = client.get(ENROL)
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)


def test_staff_are_left_alone_when_the_setting_is_off(client, staff, settings):
    settings.TWO_FACTOR_STAFF_REQUIRED = False
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200


def test_required_staff_without_a_device_are_sent_to_enrolment(client, staff, settings):
    settings.TWO_FACTOR_STAFF_REQUIRED = True
    client.force_login(staff)
    response = client.get("/admin/sso/usuario/")
    assert response.status_code == 302
    assert response["Location"] == f"{ENROL}?next=%2Fadmin%2Fsso%2Fusuario%2F"
    enrol(client)  # the confirmation verifies the session
    assert client.get("/admin/sso/usuario/").status_code == 200


def test_required_staff_with_a_device_verify_their_session(client, staff, settings):
    settings.TWO_FACTOR_STAFF_REQUIRED = True
    client.force_login(staff)
    totp, _codes = enrol(client)
    client.logout()
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith(VERIFY)
    assert client.get(response["Location"]).status_code == 200
    wrong = client.post(VERIFY, {"code": "000000", "next": "/admin/"})
    assert wrong.status_code == 200
    with time_machine.travel(timezone.now() + timedelta(seconds=60), tick=False):
        ok = client.post(VERIFY, {"code": totp.now(), "next": "/admin/"})
    assert ok.status_code == 302
    assert ok["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_recovery_code_verifies_a_staff_session(client, staff, settings):
    settings.TWO_FACTOR_STAFF_REQUIRED = True
    client.force_login(staff)
    _, codes = enrol(client)
    client.logout()
    client.force_login(staff)
    client.get(VERIFY)
    response = client.post(VERIFY, {"code": codes[3], "next": "/admin/"})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_customers_and_apis_are_not_redirected(client, staff, settings, db):
    settings.TWO_FACTOR_STAFF_REQUIRED = True
    cliente = Usuario.objects.create_user(username="cliente", password="x")
    client.force_login(cliente)
    assert client.get("/healthz").status_code == 200
    client.force_login(staff)
    assert client.get("/api/schema/").status_code == 200


def test_the_next_parameter_cannot_leave_the_site(client, staff):
    client.force_login(staff)
    totp = pyotp.TOTP(secret_on(client.get(ENROL).content.decode()))
    page = client.post(ENROL, {"code": totp.now(), "next": "https://evil.example.com/"})
    assert "evil.example.com" not in page.content.decode()


@pytest.mark.parametrize("model", ["dispositivocodigo", "dispositivototp", "sesionapp"])
def test_admin_lists_second_factors_and_app_sessions(admin_client, model):
    assert admin_client.get(f"/admin/sso/{model}/").status_code == 200
    assert admin_client.get(f"/admin/sso/{model}/add/").status_code in (200, 403)
