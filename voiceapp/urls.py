"""HTTP routes (PROTOCOL.md "HTTP endpoints"); the WebSocket routes are in realtime.routing."""

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from voiceapp.health import healthz

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="voice_page"), name="home"),
    path("voice/", include("realtime.urls")),
    # Staff pages that live beside the admin (KPI dashboard, conversation review).
    path("admin/voiceapp/", include("conversations.staff_urls")),
    path("admin/", admin.site.urls),
    path("api/", include("conversations.api_urls")),
    path("api/knowledge/", include("knowledge.api_urls")),
    path("api/auth/token/", TokenObtainPairView.as_view(), name="token_obtain_pair"),
    path("api/auth/token/refresh/", TokenRefreshView.as_view(), name="token_refresh"),
    path("healthz", healthz, name="healthz"),
]
