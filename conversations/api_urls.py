"""REST API routes under ``/api/`` (PROTOCOL.md "HTTP endpoints")."""

from django.urls import path  # noqa: F401

urlpatterns: list = []
