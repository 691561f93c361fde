"""OpenAPI helpers: the envelopes of each family as schema components."""

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers


def envelope_a(name: str, data_serializer) -> serializers.Serializer:
    """Envelope A (consumo) around `data_serializer`."""
    return inline_serializer(
        name=f"{name}Respuesta",
        fields={
            "data": data_serializer,
            "status": serializers.CharField(default="ok"),
            "message": serializers.CharField(),
            "code": serializers.IntegerField(default=200),
            "id_bitacora_log": serializers.IntegerField(allow_null=True),
        },
    )


ERROR_A = inline_serializer(
    name="ErrorConsumo",
    fields={
        "data": serializers.JSONField(allow_null=True, default=None),
        "status": serializers.CharField(default="error"),
        "message": serializers.CharField(),
        "code": serializers.IntegerField(),
        "errors": serializers.DictField(child=serializers.ListField(), required=False),
        "id_bitacora_log": serializers.IntegerField(allow_null=True),
    },
)
