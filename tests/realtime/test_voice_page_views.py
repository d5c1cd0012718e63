"""The voice page's server side: sign-in, the page itself and its access token."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

pytestmark = pytest.mark.django_db


def signed_in(user: Any, *, csrf_checks: bool = False) -> Client:
    client = Client(enforce_csrf_checks=csrf_checks)
    client.force_login(user)
    return client


def test_the_site_root_leads_to_the_voice_page_and_its_sign_in() -> None:
    client = Client()
    assert client.get("/").url == "/voice/"
    answer = client.get("/voice/")
    assert answer.status_code == 302 and answer.url.startswith("/voice/login/?next=/voice/")
    page = client.get(answer.url)
    assert page.status_code == 200 and b'name="password"' in page.content


def test_signing_in_opens_the_page_with_its_configuration(user: Any) -> None:
    client = Client()
    answer = client.post(
        "/voice/login/?next=/voice/", {"username": "alice", "password": "alice-password-1"}
    )
    assert answer.status_code == 302 and answer.url == "/voice/"
    page = client.get("/voice/")
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"] or "max-age=0" in page["Cache-Control"]
    match = re.search(
        rb'<script id="voice-config" type="application/json">(.*?)</script>', page.content
    )
    config = json.loads(match.group(1))
    assert config["user"] == "alice"
    assert config["preferences"]["vad"] == "server"
    assert config["urls"]["token"] == "/voice/token/"
    assert config["urls"]["worklet"].endswith("voice/capture-worklet.js")
    assert config["options"]["voices"]


def test_a_wrong_password_is_explained(user: Any) -> None:
    page = Client().post("/voice/login/", {"username": "alice", "password": "nope"})
    assert page.status_code == 200 and b"did not match" in page.content


def test_the_token_endpoint_gives_a_short_lived_token_for_the_signed_in_user(user: Any) -> None:
    client = signed_in(user, csrf_checks=True)
    page = client.get("/voice/")
    csrf = page.cookies["csrftoken"].value
    answer = client.post("/voice/token/", HTTP_X_CSRFTOKEN=csrf)
    assert answer.status_code == 200
    body = answer.json()
    assert (
        AccessToken(body["access"])["user_id"] == str(user.pk)
        or AccessToken(body["access"])["user_id"] == user.pk
    )
    assert body["expires_in"] == 30 * 60


def test_the_token_endpoint_needs_the_csrf_token_a_session_and_post(user: Any) -> None:
    assert signed_in(user, csrf_checks=True).post("/voice/token/").status_code == 403
    anonymous = Client().post("/voice/token/")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "auth_failed"
    assert signed_in(user).get("/voice/token/").status_code == 405


def test_the_page_scripts_are_served(user: Any) -> None:
    client = signed_in(user)
    for name in ("app.js", "pcm.js", "capture-worklet.js", "playback.js", "voice.css"):
        answer = client.get(f"/static/voice/{name}")
        assert answer.status_code == 200, name
