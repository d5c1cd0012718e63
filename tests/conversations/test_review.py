"""The staff conversation review page and the staff-only audio view."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from conversations.models import Turn, TurnAudio, VoiceSession
from conversations.retention import audio_purge_expired
from conversations.review import reply_split, session_review_get
from tests.conversations.conftest import conversation

pytestmark = pytest.mark.django_db


def review_url(session: VoiceSession) -> str:
    return reverse("voiceapp_session_review", args=[session.pk])


def audio_url(audio: TurnAudio) -> str:
    return reverse("voiceapp_turn_audio", args=[audio.pk])


def test_urls_live_under_the_staff_prefix() -> None:
    assert review_url(VoiceSession(pk=5)) == "/admin/voiceapp/sessions/5/review/"
    assert reverse("voiceapp_turn_audio", args=[9]) == "/admin/voiceapp/turn-audio/9/"


def test_page_shows_the_conversation(admin_client: Any, user: Any, retention_on: Path) -> None:
    session = conversation(user, record=True)
    html = admin_client.get(review_url(session)).content.decode()
    # Header.
    for text in ("alice", "STT → LLM → TTS pipeline", "closed", "(client)", "user_agent: pytest"):
        assert text in html, text
    # Turns in order, the user's words and the reply.
    assert html.index("what temperature for chicken eggs") < html.index("and how often do I turn")
    assert "Keep them at thirty seven and a half degrees." in html
    # Interrupted: what was heard, then the rest marked as not heard.
    assert "Turn them three" in html
    assert '<span class="unheard">[not heard] times a day, gently, by hand.</span>' in html
    # Status and errors in words.
    for text in ("Completed", "cancelled", "failed", "bad_audio", "no words were recognised"):
        assert text.lower() in html.lower(), text
    # The folded turn is collapsed.
    assert '<details class="turn continued">' in html
    assert "folded into the next turn" in html
    # Timings row and sources.
    for text in ("LLM first clause", "312 ms", "82 ms", "140 ms", "171 ms", "656 ms", "1835 ms"):
        assert text in html, text
    for text in ("Incubation handbook", "doc-7#3", "0.873", "Eggs incubate at 37.5 degrees"):
        assert text in html, text
    # Players for both recordings, through the staff view only.
    for audio in TurnAudio.objects.all():
        assert f'<audio controls preload="none" src="{audio_url(audio)}">' in html
    assert "/media/" not in html
    assert "Audio is kept for 7 days" in html


def test_page_says_when_retention_is_off(admin_client: Any, user: Any, media_root: Path) -> None:
    session = conversation(user)
    html = admin_client.get(review_url(session)).content.decode()
    assert "Audio retention is off" in html
    assert "<audio" not in html


def test_expired_recordings_are_not_offered(
    admin_client: Any, user: Any, retention_on: Path
) -> None:
    session = conversation(user, record=True)
    TurnAudio.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    html = admin_client.get(review_url(session)).content.decode()
    assert "<audio" not in html


def test_unknown_session_is_404(admin_client: Any) -> None:
    assert admin_client.get(review_url(VoiceSession(pk=10**9))).status_code == 404


def test_queries_do_not_grow_with_turns(
    admin_client: Any, user: Any, retention_on: Path, django_assert_max_num_queries: Any
) -> None:
    one = conversation(user, record=True)
    admin_client.get(review_url(one))
    many = conversation(user, record=True)
    for _ in range(3):
        for turn in conversation(user, record=True).turns.all():
            turn.session = many
            turn.index += 100 * (many.turns.count() + 1)
            turn.save()
    with django_assert_max_num_queries(8):
        assert admin_client.get(review_url(many)).status_code == 200


def test_reply_split_by_words() -> None:
    turn = Turn(
        session=VoiceSession(), reply="One, two three.", reply_heard="One, two", interrupted=True
    )
    assert reply_split(turn) == ("One, two", "three.")
    turn.reply_heard = ""
    assert reply_split(turn) == ("", "One, two three.")
    turn.interrupted = False
    assert reply_split(turn) == ("One, two three.", "")


def test_selector_shapes_turns(user: Any, retention_on: Path) -> None:
    review = session_review_get(session_id=conversation(user, record=True).pk)
    assert [item.turn.index for item in review.turns] == [0, 1, 2, 3]
    assert set(review.turns[0].audio) == {"input", "output"}
    assert review.turns[0].sources[0]["title"] == "Incubation handbook"
    assert review.turns[1].unheard == "times a day, gently, by hand."


# --- who may see it ------------------------------------------------------------------------


def test_non_staff_and_anonymous_are_sent_to_login(
    client: Any, user: Any, retention_on: Path
) -> None:
    session = conversation(user, record=True)
    audio = TurnAudio.objects.first()
    assert audio is not None
    for url in (review_url(session), audio_url(audio)):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    client.force_login(user)  # the session's own user is not staff
    for url in (review_url(session), audio_url(audio)):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_staff_without_the_view_permission_gets_403(
    client: Any, user: Any, django_user_model: Any, retention_on: Path
) -> None:
    session = conversation(user, record=True)
    audio = TurnAudio.objects.first()
    assert audio is not None
    staff = django_user_model.objects.create_user("carol", password="x", is_staff=True)
    client.force_login(staff)
    assert client.get(review_url(session)).status_code == 403
    assert client.get(audio_url(audio)).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_voicesession"))
    assert client.get(review_url(session)).status_code == 200
    assert client.get(audio_url(audio)).status_code == 200


# --- the audio view ------------------------------------------------------------------------


def test_audio_view_streams_the_file_to_staff(
    admin_client: Any, user: Any, retention_on: Path, django_capture_on_commit_callbacks: Any
) -> None:
    conversation(user, record=True)
    audio = TurnAudio.objects.get(kind=TurnAudio.Kind.OUTPUT)
    response = admin_client.get(audio_url(audio))
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Cache-Control"] == "private, no-store"
    body = b"".join(response.streaming_content)
    assert body == Path(audio.file.path).read_bytes() and body[:4] == b"RIFF"
    assert admin_client.post(audio_url(audio)).status_code == 405

    TurnAudio.objects.filter(pk=audio.pk).update(expires_at=timezone.now())
    assert admin_client.get(audio_url(audio)).status_code == 404  # expired, not yet purged
    with django_capture_on_commit_callbacks(execute=True):
        audio_purge_expired()
    assert admin_client.get(audio_url(audio)).status_code == 404


def test_audio_view_404_when_the_file_is_missing(
    admin_client: Any, user: Any, retention_on: Path
) -> None:
    conversation(user, record=True)
    audio = TurnAudio.objects.get(kind=TurnAudio.Kind.INPUT)
    Path(audio.file.path).unlink()
    assert admin_client.get(audio_url(audio)).status_code == 404


# --- links from the admin ------------------------------------------------------------------


def test_session_admin_links_to_the_review(admin_client: Any, user: Any, media_root: Path) -> None:
    session = conversation(user)
    changelist = admin_client.get(reverse("admin:conversations_voicesession_changelist"))
    assert f'href="{review_url(session)}">Review<' in changelist.content.decode()
    change = reverse("admin:conversations_voicesession_change", args=[session.pk])
    html = admin_client.get(change).content.decode()
    assert f'href="{review_url(session)}">Review conversation<' in html
