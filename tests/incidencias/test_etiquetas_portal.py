"""The portal's rows drawn in Python (incidencias/templatetags/portal.py): the queue's rows, a
ticket's thread and a form field give the text the templates gave, every value escaped, labels
in the active language."""

from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
from django import forms
from django.template import Context, Template
from django.utils import timezone, translation

from incidencias.models import Adjunto, DetalleTicket, Ticket
from incidencias.selectors import cola
from incidencias.templatetags.portal import Fechas, campo, entradas_hilo, filas_cola
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


@pytest.mark.parametrize("idioma", ["es", "en"])
@pytest.mark.parametrize(
    "formato",
    [
        "SHORT_DATETIME_FORMAT",
        "DATETIME_FORMAT",
        "d/m/Y H:i:s",
        r"j \d\e F \d\e Y \a \l\a\s G:i",
        "N j, Y, P",
        "D, d M y h:i A e O",
        r"\\Y-m-d\\",
    ],
)
def test_dates_read_as_the_date_filter_writes_them(formato, idioma):
    momentos = [
        datetime(2026, 1, 4, 6, 0, 0, tzinfo=UTC),  # midnight in Costa Rica
        datetime(2026, 5, 9, 18, 0, 0, tzinfo=UTC),  # noon
        datetime(2026, 9, 30, 23, 7, 5, tzinfo=UTC),
        datetime(999, 12, 31, 15, 59, 59, tzinfo=UTC),
    ]
    with translation.override(idioma), timezone.override("America/Costa_Rica"):
        fechas = Fechas(formato)
        for momento in momentos:
            assert fechas.texto(momento) == filtro(momento, formato), momento


def test_thread_entries_tell_kinds_apart_and_escape_all_but_the_sanitised_html(soporte):
    agente = Usuario.objects.create_user(username="ana", password="x", nombre="Ana <i>")
    ticket = Ticket.objects.create(numero=600, asunto="x", departamento=soporte)
    DetalleTicket.objects.create(
        ticket=ticket,
        tipo="entrante",
        de="Cliente <c@example.com>",
        para="soporte@example.com",
        cc="otro@example.com",
        texto="Hola\r\n<b>uno</b>\ndos",
        automatico="autorespuesta",
    )
    respuesta = DetalleTicket.objects.create(
        ticket=ticket, tipo="respuesta", autor=agente, texto="R"
    )
    DetalleTicket.objects.create(ticket=ticket, tipo="evento", texto="Asignado")
    DetalleTicket.objects.create(ticket=ticket, tipo="nota", texto="")
    hilo = list(DetalleTicket.objects.filter(ticket=ticket).order_by("id"))
    hilo[1].html_seguro = "<p>ya <em>saneado</em></p>"
    adjunto = Adjunto(detalle=respuesta, nombre="<x>.pdf", tamano=2048)
    adjunto.url = "/tickets/600/adjuntos/1/"
    hilo[1].lista_adjuntos = [adjunto]
    with translation.override("es"):
        html = entradas_hilo(hilo)
    assert "<b>" not in html and "<i>" not in html and "<x>" not in html
    assert "Hola<br>&lt;b&gt;uno&lt;/b&gt;<br>dos" in html
    assert '<div class="entrada-cuerpo entrada-html"><p>ya <em>saneado</em></p></div>' in html
    celdas = leer(html)
    clases = [a["class"] for tag, a in celdas.atributos if "entrada " in a.get("class", "")]
    assert clases == [
        "entrada entrada-entrante",
        "entrada entrada-respuesta",
        "entrada entrada-evento",
        "entrada entrada-nota",
    ]
    assert '<span class="entrada-tipo">Correo entrante</span>' in html
    assert '<span class="entrada-autor">Cliente &lt;c@example.com&gt;</span>' in html
    assert '<span class="entrada-autor">Ana &lt;i&gt;</span>' in html
    assert '<span class="entrada-autor">Sistema</span>' in html
    assert '<span class="insignia">respuesta automática</span>' in html
    assert "Para: soporte@example.com · Cc: otro@example.com" in html
    assert '<a href="/tickets/600/adjuntos/1/">&lt;x&gt;.pdf</a> <small>(2,0\xa0KB)</small>' in html
    assert entradas_hilo([]) == ""


class Formulario(forms.Form):
    texto = forms.CharField(label="Texto <b>", help_text="Ayuda & más", max_length=5)


def test_field_describes_its_widget_by_its_help_and_errors():
    limpio = campo(Formulario()["texto"])
    assert '<label for="id_texto">Texto &lt;b&gt;</label>' in limpio
    assert '<small id="id_texto_helptext">Ayuda &amp; más</small>' in limpio
    assert 'aria-describedby="id_texto_helptext"' in limpio
    assert "error" not in limpio
    con_error = campo(Formulario(data={"texto": "demasiado"})["texto"])
    assert 'aria-describedby="id_texto_helptext id_texto_error"' in con_error
    errores = leer(con_error).atributos
    assert ("span", {"class": "error", "id": "id_texto_error"}) in errores


@pytest.mark.parametrize(
    "asunto",
    [
        "e\u0301" * 60,  # decomposed é (mail from macOS): 60 characters, 120 code points
        "é" * 95,
        "x" * 90,
        "x" * 91,
        "Sin conexión",
    ],
)
def test_subjects_are_cut_as_truncatechars_cuts_them(soporte, asunto):
    jefa = Usuario.objects.create_user(
        username="jefa", password="x", departamento=soporte, jefe=True
    )
    Ticket.objects.create(numero=700, asunto=asunto, departamento=soporte)
    (t,) = cola(usuario=jefa, departamento_id=soporte.pk).filas
    esperado = Template("{{ a|truncatechars:90 }}").render(Context({"a": asunto}))
    assert leer(filas_cola([(t, "/t/")])).filas[0][2] == esperado


def test_safe_labels_and_help_are_not_escaped_twice():
    from django.utils.safestring import mark_safe

    class Seguro(forms.Form):
        texto = forms.CharField(label=mark_safe("<b>Texto</b>"), help_text=mark_safe("<i>a</i>"))

    html = campo(Seguro()["texto"])
    assert '<label for="id_texto"><b>Texto</b></label>' in html
    assert "<i>a</i></small>" in html
