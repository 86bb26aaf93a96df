"""The project's URLs plus one bare DRF endpoint: the framework's floor for the HTTP bench."""

from django.urls import path
from rest_framework.authentication import TokenAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from platform_app.urls import handler404, handler500
from platform_app.urls import urlpatterns as project_urlpatterns

__all__ = ["handler404", "handler500", "urlpatterns"]


class BareTokenApi(APIView):
    """DRF's own TokenAuthentication and IsAuthenticated, a tiny JSON body, nothing else."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"ok": True})


urlpatterns = [path("bench/drf-token", BareTokenApi.as_view()), *project_urlpatterns]
