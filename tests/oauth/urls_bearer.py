"""A DRF endpoint behind the unified Bearer class and a scope, beside the project's URLs."""

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from incidencias.urls import urlpatterns as proyecto
from sso.api.bearer import BearerAuthentication
from sso.api.scopes import requiere_scope


class Perfil(APIView):
    authentication_classes = [BearerAuthentication]
    permission_classes = [IsAuthenticated, requiere_scope("profile", "read")]

    def get(self, request):
        return Response({"id": request.user.pk, "tipo": type(request.auth).__name__})


urlpatterns = [path("prueba/perfil", Perfil.as_view()), *proyecto]
