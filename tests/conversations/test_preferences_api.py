"""``GET/PUT /api/voice/preferences/``: a user's voice page settings, kept on the server."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from conversations.models import VoicePreferences
from tests.conftest import token_for

pytestmark = pytest.mark.django_db

URL = "/api/voice/preferences/"


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_for(user)}")
    return client


def test_defaults_and_the_choices_this_server_offers(user: Any) -> None:
    body = client_for(user).get(URL).json()
    assert {k: body[k] for k in VoicePreferences.OPTION_FIELDS} == {
        "voice": "",
        "speed": 1.0,
        "input_language": "en",
        "output_language": "en",
        "mode": "pipeline",
        "vad": "server",
    }
    options = body["options"]
    assert options["voices"][0] == "joe"  # piper's bundled voice, the default first
    assert options["languages"] == ["en"]  # Whisper tiny.en knows English only
    assert options["speed"] == {"min": 0.5, "max": 2.0, "step": 0.1}
    realtime = next(m for m in options["modes"] if m["value"] == "realtime")
    assert realtime["available"] is False and realtime["reason"]


def test_a_partial_update_is_kept_and_the_rest_stays(user: Any) -> None:
    client = client_for(user)
    answer = client.put(URL, {"vad": "client", "speed": 1.3}, format="json")
    assert answer.status_code == 200
    assert answer.json()["vad"] == "client" and answer.json()["speed"] == 1.3
    answer = client.put(URL, {"voice": "joe"}, format="json")
    assert answer.json()["vad"] == "client" and answer.json()["voice"] == "joe"
    stored = VoicePreferences.objects.get(user=user)
    assert (stored.vad, stored.speed, stored.voice) == ("client", 1.3, "joe")


def test_preferences_are_per_user(user: Any, other_user: Any) -> None:
    client_for(user).put(URL, {"speed": 0.7}, format="json")
    assert client_for(other_user).get(URL).json()["speed"] == 1.0


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"speed": 3}, "speed"),
        ({"voice": "nobody"}, "voice must be one of joe"),
        ({"input_language": "xx"}, "input_language must be one of en"),
        ({"mode": "realtime"}, "realtime mode is not enabled"),
        ({"vad": "maybe"}, "vad"),
        ({"colour": "blue"}, "unknown setting(s): colour"),
    ],
)
def test_bad_settings_get_a_clear_error(user: Any, change: dict[str, Any], words: str) -> None:
    answer = client_for(user).put(URL, change, format="json")
    assert answer.status_code == 400
    assert answer.json()["code"] == "bad_message"
    assert words in answer.json()["message"]
    assert not VoicePreferences.objects.filter(user=user).exists()


def test_a_body_that_is_not_an_object_is_refused(user: Any) -> None:
    answer = client_for(user).put(URL, ["speed"], format="json")
    assert answer.status_code == 400 and answer.json()["code"] == "bad_message"


def test_anonymous_is_refused() -> None:
    answer = APIClient().get(URL)
    assert answer.status_code == 401 and answer.json()["code"] == "auth_failed"
