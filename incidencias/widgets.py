"""Form widgets of the portal's pages."""

from html import escape

from django import forms
from django.forms.utils import flatatt
from django.utils.safestring import SafeData, mark_safe


class SelectRapido(forms.Select):
    """A `<select>` written in Python. Django's own draws each `<option>` through two
    templates, which on the queue (agents, departments, states in two forms) cost more than the
    page's SQL. Same markup and attributes; option groups fall back to Django's rendering."""

    def render(self, name, value, attrs=None, renderer=None):
        opciones = list(iter(self.choices))  # not len(): a ModelChoiceIterator would COUNT
        if any(isinstance(etiqueta, list | tuple) for _valor, etiqueta in opciones):
            return super().render(name, value, attrs, renderer)
        elegidos = {str(v) for v in self.format_value(value)}
        atributos = self.build_attrs(self.attrs, attrs)
        if self.allow_multiple_selected:
            atributos["multiple"] = True
        filas = []
        for valor, etiqueta in opciones:
            valor = "" if valor is None else str(valor)
            marcada = " selected" if valor in elegidos else ""
            texto = etiqueta if isinstance(etiqueta, SafeData) else escape(str(etiqueta))
            filas.append(f'<option value="{escape(valor)}"{marcada}>{texto}</option>')
        return mark_safe(  # noqa: S308 - every value and label escaped (or safe already)
            f'<select name="{escape(name)}"{flatatt(atributos)}>{"".join(filas)}</select>'
        )


def selects_rapidos(form: forms.Form) -> None:
    """Every plain `<select>` of `form` drawn by `SelectRapido` (call at the end of __init__)."""
    for campo in form.fields.values():
        if type(campo.widget) is forms.Select:
            nuevo = SelectRapido(attrs=campo.widget.attrs)
            nuevo.choices = campo.widget.choices
            nuevo.is_required = campo.widget.is_required
            campo.widget = nuevo
