"""HTTP routes (PROTOCOL.md "HTTP endpoints"); the WebSocket routes are in realtime.routing."""

from django.contrib import admin
from django.urls import path
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from voiceapp.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("api/auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("healthz", healthz, name="healthz"),
]
