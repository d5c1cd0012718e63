"""``GET /healthz``: ok on the embedded default, 503 with a reason when a probe fails."""

from __future__ import annotations

from typing import Any
from unittest import mock

import pytest
from django.db import OperationalError, connections

from voiceapp.health import celery_app

pytestmark = pytest.mark.django_db

UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
    }
}


def test_ok_in_embedded_default(client: Any) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response["Cache-Control"].startswith("max-age=0")
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True
    assert body["database"]["engine"] == connections["default"].vendor
    assert body["channel_layer"] == {
        "ok": True,
        "backend": "channels.layers.InMemoryChannelLayer",
        "ms": body["channel_layer"]["ms"],
    }
    assert body["workers"]["ok"] is True and body["workers"]["mode"] == "in-process"
    assert body["version"]
    for probe in ("database", "channel_layer", "workers"):
        assert isinstance(body[probe]["ms"], float)


def test_degraded_when_the_database_fails(client: Any) -> None:
    failure = OperationalError('could not connect to "postgres://app:hunter2@db:5432/app"')
    with mock.patch.object(connections["default"], "cursor", side_effect=failure):
        response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    assert body["database"]["ok"] is False
    assert "OperationalError" in body["database"]["error"]
    assert "hunter2" not in response.content.decode()
    assert body["channel_layer"]["ok"] is True


def test_degraded_when_the_channel_layer_is_unreachable(client: Any, settings: Any) -> None:
    # channels drops its cached layers on setting_changed, so the override takes effect.
    settings.CHANNEL_LAYERS = UNREACHABLE_REDIS
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded"
    layer = body["channel_layer"]
    assert layer["ok"] is False
    assert layer["backend"] == "channels_redis.core.RedisChannelLayer"
    assert layer["error"] and layer["ms"] < 3000
    assert body["database"]["ok"] is True


def test_celery_workers_are_pinged_when_not_eager(client: Any, settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    with mock.patch.object(celery_app.control, "ping", return_value=[]) as ping:
        response = client.get("/healthz")
    ping.assert_called_once_with(timeout=1.0)
    assert response.status_code == 503
    assert response.json()["workers"] | {"ms": 0} == {
        "ok": False,
        "mode": "celery",
        "count": 0,
        "ms": 0,
        "error": "no worker answered within 1.0 s",
    }

    replies = [{"celery@a": {"ok": "pong"}}, {"celery@b": {"ok": "pong"}}]
    with mock.patch.object(celery_app.control, "ping", return_value=replies):
        response = client.get("/healthz")
    assert response.status_code == 200
    workers = response.json()["workers"]
    assert (workers["ok"], workers["mode"], workers["count"]) == (True, "celery", 2)


def test_a_broken_broker_is_reported_not_raised(client: Any, settings: Any) -> None:
    settings.CELERY_TASK_ALWAYS_EAGER = False
    failure = ConnectionError("Error connecting to redis://:s3cret@redis:6379/0")
    with mock.patch.object(celery_app.control, "ping", side_effect=failure):
        response = client.get("/healthz")
    assert response.status_code == 503
    workers = response.json()["workers"]
    assert workers["ok"] is False and workers["mode"] == "celery"
    assert "s3cret" not in response.content.decode()
