"""A Bearer endpoint that takes only JWTs, for the tests of `JWTAuthentication`."""

from django.urls import path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from sso.api.jwt_auth import JWTAuthentication


class QuienSoyView(APIView):
    authentication_classes = [JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"username": request.user.username})


urlpatterns = [path("jwt/quien-soy", QuienSoyView.as_view())]
