"""Forms of the agents' portal: the queue's filters, its bulk actions, a saved filter's name
and a ticket taken by hand. They only read and check; the views call the services."""

from django import forms
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from sso.models import Departamento, Usuario

from .models import EstadoSLA, FiltroGuardado, Prioridad, Ticket
from .selectors import ASIGNADO_NADIE, ASIGNADO_YO
from .widgets import selects_rapidos

TODOS = [("", _("All"))]


def agentes_asignables(usuario):
    """The agents `usuario` may hand tickets to: the active people who work tickets in their
    department (staff: in every department)."""
    agentes = Usuario.objects.filter(Q(acceso_ticket=True) | Q(jefe=True), is_active=True)
    if not usuario.is_staff:
        agentes = agentes.filter(departamento_id=usuario.departamento_id or 0)
    return agentes.only("id", "username", "nombre").order_by("nombre", "username")


def departamentos_trabajables(usuario):
    """The departments in which `usuario` may open and work tickets: staff with the permission
    every active one; agents and heads their own."""
    activos = Departamento.objects.filter(activo=True).order_by("nombre")
    if not usuario.is_active:
        return activos.none()
    if usuario.is_staff and usuario.has_perm("incidencias.change_ticket"):
        return activos
    if usuario.departamento_id and (usuario.acceso_ticket or usuario.jefe):
        return activos.filter(pk=usuario.departamento_id)
    return activos.none()


def _nombre(agente) -> str:
    return agente.nombre or agente.username


class FiltrosForm(forms.Form):
    """The queue's GET form. Its values are checked by `selectors.cola_filtros`; this form only
    draws the fields with the user's choices."""

    q = forms.CharField(label=_("Search"), required=False, max_length=200)
    departamento = forms.ChoiceField(label=_("Department"), required=False)
    estado = forms.MultipleChoiceField(
        label=_("State"),
        required=False,
        choices=Ticket.Estado.choices,
        widget=forms.CheckboxSelectMultiple,
    )
    prioridad = forms.ChoiceField(
        label=_("Priority"), required=False, choices=TODOS + list(Prioridad.choices)
    )
    asignado = forms.ChoiceField(label=_("Assignee"), required=False)
    sla = forms.ChoiceField(label=_("SLA"), required=False, choices=TODOS + list(EstadoSLA.choices))
    canal = forms.ChoiceField(
        label=_("Channel"), required=False, choices=TODOS + list(Ticket.Canal.choices)
    )
    orden = forms.ChoiceField(
        label=_("Sort by"), required=False, choices=list(FiltroGuardado.Orden.choices)
    )

    def __init__(self, *args, departamentos, agentes, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["departamento"].choices = TODOS + [(d.pk, d.nombre) for d in departamentos]
        self.fields["asignado"].choices = [
            *TODOS,
            (ASIGNADO_YO, _("Me")),
            (ASIGNADO_NADIE, _("Unassigned")),
            *((a.pk, _nombre(a)) for a in agentes),
        ]
        selects_rapidos(self)


class Enteros(forms.Field):
    """Ids sent as a repeated field (the queue's checkboxes)."""

    widget = forms.MultipleHiddenInput
    maximo = 500

    def to_python(self, valor):
        try:
            ids = sorted({int(v) for v in valor or []})
        except (TypeError, ValueError):
            raise forms.ValidationError(_("Choose the tickets from the list.")) from None
        if len(ids) > self.maximo:
            raise forms.ValidationError(
                _("Choose at most %(maximo)d tickets at once.") % {"maximo": self.maximo}
            )
        return ids


class LoteForm(forms.Form):
    """A bulk action on the checked rows of the queue."""

    ASIGNAR, ESTADO = "asignar", "estado"

    tickets = Enteros(required=False)
    accion = forms.ChoiceField(choices=[(ASIGNAR, _("Assign")), (ESTADO, _("Change state"))])
    agente = forms.ChoiceField(label=_("Assign to"), required=False)
    estado = forms.ChoiceField(
        label=_("New state"), required=False, choices=[("", "—"), *Ticket.Estado.choices]
    )

    def __init__(self, *args, agentes, **kwargs):
        super().__init__(*args, **kwargs)
        self.agentes = {a.pk: a for a in agentes}
        self.fields["agente"].choices = [
            ("", "—"),
            (ASIGNADO_YO, _("Me")),
            (ASIGNADO_NADIE, _("Nobody (back to the queue)")),
            *((pk, _nombre(a)) for pk, a in self.agentes.items()),
        ]
        selects_rapidos(self)

    def clean(self):
        datos = super().clean()
        if not datos.get("tickets"):
            raise forms.ValidationError(_("Choose at least one ticket."))
        if datos.get("accion") == self.ASIGNAR and not datos.get("agente"):
            self.add_error("agente", _("Choose whom to assign the tickets to."))
        if datos.get("accion") == self.ESTADO and not datos.get("estado"):
            self.add_error("estado", _("Choose the new state."))
        return datos

    def agente_elegido(self, usuario):
        """The chosen agent (None: back to the queue)."""
        valor = self.cleaned_data["agente"]
        if valor == ASIGNADO_YO:
            return usuario
        if valor == ASIGNADO_NADIE:
            return None
        return self.agentes[int(valor)]


class FiltroGuardarForm(forms.Form):
    nombre = forms.CharField(label=_("Name"), max_length=80)
    consulta = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)
    orden = forms.ChoiceField(
        required=False, choices=FiltroGuardado.Orden.choices, widget=forms.HiddenInput
    )


class TicketNuevoForm(forms.Form):
    solicitante_nombre = forms.CharField(label=_("Requester's name"), max_length=255)
    solicitante_email = forms.EmailField(
        label=_("Requester's email"), max_length=254, required=False
    )
    departamento = forms.ModelChoiceField(label=_("Department"), queryset=None)
    asunto = forms.CharField(label=_("Subject"), max_length=998)
    texto = forms.CharField(label=_("What the requester says"), widget=forms.Textarea)
    prioridad = forms.ChoiceField(
        label=_("Priority"), choices=Prioridad.choices, initial=Prioridad.NORMAL
    )

    def __init__(self, *args, departamentos, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["departamento"].queryset = departamentos
        if len(departamentos) == 1:
            self.fields["departamento"].initial = departamentos[0].pk
