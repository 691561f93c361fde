"""Forms of the ticket page (`views_ticket`). They check input; the services do the work."""

from django import forms
from django.conf import settings
from django.core.validators import validate_email
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext_lazy as _

from sso.models import Departamento

from .models import Prioridad, Ticket
from .widgets import selects_rapidos

SIN_CAMBIO = ""


class VariosArchivos(forms.ClearableFileInput):
    allow_multiple_selected = True


class CampoArchivos(forms.FileField):
    """Several files in one input; the total size is capped by TICKET_ADJUNTOS_MAX_BYTES."""

    widget = VariosArchivos

    def clean(self, data, initial=None):
        archivos = data if isinstance(data, list | tuple) else ([data] if data else [])
        limpios = [super(CampoArchivos, self).clean(a, initial) for a in archivos]
        maximo = settings.TICKET_ADJUNTOS_MAX_BYTES
        if sum(a.size for a in limpios) > maximo:
            raise forms.ValidationError(
                _("The attachments add up to more than %(max)s.") % {"max": filesizeformat(maximo)},
                code="demasiado_grande",
            )
        return limpios


def _direcciones(valor: str) -> list[str]:
    partes = [p.strip().lower() for p in valor.replace(";", ",").split(",")]
    direcciones = [p for p in partes if p]
    for d in direcciones:
        try:
            validate_email(d)
        except forms.ValidationError:
            raise forms.ValidationError(
                _("%(address)s is not an email address.") % {"address": d}, code="cc"
            ) from None
    return list(dict.fromkeys(direcciones))


class ConIds(forms.Form):
    """Several forms share the page: each names its fields' ids after itself (`respuesta_texto`,
    `nota_texto`…) so no two ids are equal."""

    prefijo_id = ""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.prefijo_id}_%s")
        super().__init__(*args, **kwargs)
        selects_rapidos(self)  # choices set later by a subclass reach the new widget too


class RespuestaForm(ConIds):
    prefijo_id = "respuesta"
    texto = forms.CharField(
        label=_("Reply"), widget=forms.Textarea(attrs={"rows": 8, "aria-keyshortcuts": "r"})
    )
    cc = forms.CharField(
        label=_("Cc"),
        required=False,
        max_length=2000,
        help_text=_("Addresses separated by commas."),
    )
    adjuntos = CampoArchivos(label=_("Attachments"), required=False)
    estado = forms.ChoiceField(label=_("And set state to"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["estado"].choices = [(SIN_CAMBIO, _("(leave as it is)"))] + [
            (v, e) for v, e in Ticket.Estado.choices if v != Ticket.Estado.NUEVO
        ]

    def clean_cc(self):
        return _direcciones(self.cleaned_data["cc"])


class NotaForm(ConIds):
    prefijo_id = "nota"
    texto = forms.CharField(
        label=_("Note"), widget=forms.Textarea(attrs={"rows": 4, "aria-keyshortcuts": "n"})
    )


class AsignarForm(ConIds):
    prefijo_id = "asignar"
    agente = forms.TypedChoiceField(
        label=_("Assignee"), coerce=int, required=False, empty_value=None
    )

    def __init__(self, *args, agentes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.agentes = {a.pk: a for a in agentes}
        self.fields["agente"].choices = [("", _("Nobody (back to the queue)"))] + [
            (a.pk, a.nombre_visible) for a in agentes
        ]


class EstadoForm(ConIds):
    prefijo_id = "estado"
    estado = forms.ChoiceField(label=_("State"), choices=Ticket.Estado.choices)


class PrioridadForm(ConIds):
    prefijo_id = "prioridad"
    prioridad = forms.ChoiceField(label=_("Priority"), choices=Prioridad.choices)


class TransferirForm(ConIds):
    prefijo_id = "transferir"
    departamento = forms.ModelChoiceField(
        label=_("Department"),
        # Active ones, as the API's transfer accepts; the select shows only their names.
        queryset=Departamento.objects.filter(activo=True).only("id", "nombre").order_by("nombre"),
    )


class FusionarForm(ConIds):
    prefijo_id = "fusionar"
    destino = forms.IntegerField(label=_("Merge into ticket number"), min_value=1)
    confirmar = forms.BooleanField(
        label=_("I understand that this ticket will be closed and its thread moved."),
        required=True,
    )
