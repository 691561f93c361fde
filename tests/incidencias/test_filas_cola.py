"""The queue's rows drawn in Python (`{% filas_cola %}`): the same text the template filters
give, every value escaped, labels in the active language."""

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from django.template import Context, Template
from django.utils import timezone, translation

from incidencias.models import Ticket
from incidencias.selectors import cola
from incidencias.templatetags.portal import _strftime, filas_cola
from sso.models import Usuario

pytestmark = pytest.mark.django_db


class Celdas(HTMLParser):
    """Each row's cells as text, and the attributes of every element, as a browser reads them."""

    def __init__(self):
        super().__init__()
        self.filas, self.atributos = [], []

    def handle_starttag(self, tag, attrs):
        self.atributos.append((tag, dict(attrs)))
        if tag == "tr":
            self.filas.append([])
        elif tag == "td":
            self.filas[-1].append("")

    def handle_data(self, data):
        if self.filas and self.filas[-1]:
            self.filas[-1][-1] += data


def leer(html) -> Celdas:
    celdas = Celdas()
    celdas.feed(str(html))
    return celdas


def filtro(valor, formato) -> str:
    """What the template's `date` filter writes."""
    return Template("{{ v|date:f }}").render(Context({"v": valor, "f": formato}))


@pytest.fixture
def filas(soporte):
    jefa = Usuario.objects.create_user(
        username="jefa", password="x", departamento=soporte, jefe=True, nombre="Jefa <b>"
    )
    ahora = timezone.now()
    Ticket.objects.create(
        numero=501,
        asunto='<script>alert("x")</script> ' + "impresora " * 20,
        solicitante_nombre="Ana & Co",
        departamento=soporte,
        asignado=jefa,
        prioridad="alta",
        vence_primera_respuesta=ahora + timedelta(hours=3),
    )
    Ticket.objects.create(
        numero=502, asunto="", solicitante_email="b@example.com", departamento=soporte
    )
    pagina = cola(usuario=jefa, departamento_id=soporte.pk, orden="-creado")
    return [(t, f"/tickets/{t.numero}/?a=1&b=<2>") for t in pagina.filas]


def test_rows_escape_every_value_and_read_as_the_template_did(filas):
    with translation.override("es"):
        html = filas_cola(filas)
    assert "<script>" not in html and "<b>" not in html
    celdas = leer(html)
    sin_asunto, con_asunto = celdas.filas
    assert con_asunto[1] == "501"
    assert con_asunto[2].startswith('<script>alert("x")</script> impresora')
    assert len(con_asunto[2]) == 90 and con_asunto[2].endswith("…")
    assert con_asunto[3] == "Ana & Co"
    assert con_asunto[4] == "Soporte"
    assert con_asunto[5] == "Jefa <b>"
    assert con_asunto[6] == "Nuevo" and con_asunto[7] == "Alta"
    assert sin_asunto[2] == "(sin asunto)"
    assert sin_asunto[3] == "b@example.com"
    assert sin_asunto[5] == "Sin asignar"
    enlaces = [a["href"] for tag, a in celdas.atributos if tag == "a"]
    assert enlaces == ["/tickets/502/?a=1&b=<2>", "/tickets/501/?a=1&b=<2>"]
    casillas = [a for tag, a in celdas.atributos if tag == "input"]
    assert [c["value"] for c in casillas] == [str(t.pk) for t, _url in filas]


@pytest.mark.parametrize("idioma", ["es", "en"])
def test_dates_are_the_date_filters_text_in_the_local_time_zone(filas, idioma):
    ticket = filas[1][0]
    with translation.override(idioma):
        celdas = leer(filas_cola(filas))
        vence = filtro(ticket.vence_sla, "SHORT_DATETIME_FORMAT")
        actividad = filtro(ticket.ultima_actividad, "SHORT_DATETIME_FORMAT")
    assert ticket.vence_sla is not None and vence and actividad
    fila = celdas.filas[1]
    assert fila[8].endswith(vence) and fila[9] == actividad
    tiempos = [a["datetime"] for tag, a in celdas.atributos if tag == "time"]
    assert tiempos[-2:] == [  # the `c` format, as the template wrote it
        filtro(ticket.vence_sla, "c"),
        filtro(ticket.ultima_actividad, "c"),
    ]


def test_empty_page_draws_nothing():
    assert filas_cola([]) == ""


@pytest.mark.parametrize(
    "formato, esperado",
    [
        ("d/m/Y H:i", "%d/%m/%Y %H:%M"),
        (r"Y-m-d \a \l\a\s H:i:s", "%Y-%m-%d a las %H:%M:%S"),
        ("d%m", "%d%%%m"),
        ("m/d/Y P", None),  # a.m./p.m., translated: Django's formatter
        ("j \\d\\e F", None),
    ],
)
def test_strftime_only_where_it_writes_what_django_writes(formato, esperado):
    assert _strftime(formato) == esperado
    if esperado is not None:
        momento = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
        with timezone.override("America/Costa_Rica"):
            assert timezone.localtime(momento).strftime(esperado) == filtro(momento, formato)
