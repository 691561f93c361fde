"""The portal's Python-drawn <select> writes what Django's own widget writes."""

from django import forms
from django.test.html import parse_html
from django.utils.safestring import mark_safe

from incidencias.widgets import SelectRapido, selects_rapidos


class Formulario(forms.Form):
    uno = forms.ChoiceField(
        label="Uno", required=False, choices=[("", "Todos"), ("a", "<A & b>"), (3, "Tres")]
    )
    varios = forms.MultipleChoiceField(
        label="Varios", required=False, choices=[("x", "X"), ("y", "Y")]
    )
    grupos = forms.ChoiceField(
        label="Grupos", required=False, choices=[("G", [("g1", "Uno"), ("g2", "Dos")])]
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        selects_rapidos(self)


def test_it_draws_the_same_select_as_django():
    opciones = [("", "Todos"), ("a", "<A & b>"), (3, "Tres"), ("s", mark_safe("<i>S</i>"))]
    atributos = {"id": "id_uno", "aria-describedby": "ayuda"}
    esperado = forms.Select(choices=opciones).render("uno", "3", attrs=atributos)
    obtenido = SelectRapido(choices=opciones).render("uno", "3", attrs=atributos)
    assert parse_html(obtenido) == parse_html(esperado)  # attribute order aside
    assert "&lt;A &amp; b&gt;" in obtenido
    assert '<option value="3" selected>Tres</option>' in obtenido
    assert '<option value="s"><i>S</i></option>' in obtenido  # safe labels are not escaped again
    assert isinstance(Formulario().fields["uno"].widget, SelectRapido)


def test_it_leaves_multiple_and_grouped_selects_to_django():
    formulario = Formulario({"varios": ["x", "y"], "grupos": "g2"})
    assert type(formulario.fields["varios"].widget) is forms.SelectMultiple
    html = str(formulario["grupos"])
    assert "<optgroup" in html and 'value="g2" selected' in html


def test_it_takes_choices_set_after_it():
    formulario = Formulario()
    formulario.fields["uno"].choices = [("z", "Zeta")]
    assert '<option value="z">Zeta</option>' in str(formulario["uno"])
