"""``delete_user_data`` and ``purge_expired_audio``, and the admin deletion actions."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone

from conversations.models import Turn, TurnAudio, VoiceSession
from tests.conversations.conftest import conversation, files_under

pytestmark = pytest.mark.django_db


def run(*args: str, answer: str | None = None, monkeypatch: Any = None) -> str:
    if answer is not None:
        monkeypatch.setattr("builtins.input", lambda prompt: answer)
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


# --- delete_user_data ----------------------------------------------------------------------


def test_yes_deletes_and_says_what(
    user: Any, other_user: Any, retention_on: Path, django_capture_on_commit_callbacks: Any
) -> None:
    conversation(user, record=True)
    conversation(other_user)
    with django_capture_on_commit_callbacks(execute=True):
        out = run("delete_user_data", "alice", "--yes")
    assert "Deleted for alice: 1 session(s), 4 turn(s), 2 audio file(s)." in out
    assert not VoiceSession.objects.filter(user=user).exists()
    assert VoiceSession.objects.filter(user=other_user).count() == 1
    assert files_under(retention_on) == []
    user.refresh_from_db()  # the account stays


def test_asks_first_and_keeps_everything_unless_yes(
    user: Any, retention_on: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation(user, record=True)
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        return "no"

    monkeypatch.setattr("builtins.input", answer)
    out = run("delete_user_data", "alice")
    assert prompts == [
        "This deletes 1 session(s), 4 turn(s), 2 audio file(s) of alice. Type 'yes' to continue: "
    ]
    assert "Nothing deleted." in out
    assert Turn.objects.count() == 4 and len(files_under(retention_on)) == 2

    out = run("delete_user_data", "alice", answer="yes", monkeypatch=monkeypatch)
    assert "Deleted for alice" in out and not Turn.objects.exists()


def test_no_terminal_means_no(user: Any, media_root: Path, monkeypatch: Any) -> None:
    conversation(user)

    def closed_stdin(prompt: str) -> str:
        raise EOFError

    monkeypatch.setattr("builtins.input", closed_stdin)
    assert "Nothing deleted." in run("delete_user_data", "alice")
    assert VoiceSession.objects.filter(user=user).exists()


def test_unknown_user_is_an_error_with_exit_code_1(db: Any) -> None:
    with pytest.raises(CommandError, match='no user named "nobody"') as raised:
        run("delete_user_data", "nobody", "--yes")
    assert raised.value.returncode == 1


def test_audio_only_keeps_the_transcripts(
    user: Any, retention_on: Path, django_capture_on_commit_callbacks: Any
) -> None:
    conversation(user, record=True)
    with django_capture_on_commit_callbacks(execute=True):
        out = run("delete_user_data", "alice", "--yes", "--audio-only")
    assert "Deleted for alice: 2 audio file(s)." in out
    assert Turn.objects.filter(session__user=user).count() == 4
    assert not TurnAudio.objects.exists() and files_under(retention_on) == []


def test_delete_account(user: Any, media_root: Path, django_user_model: Any) -> None:
    conversation(user)
    out = run("delete_user_data", "alice", "--yes", "--delete-account")
    assert "1 session(s), 4 turn(s), 0 audio file(s), 1 account(s)" in out
    assert not django_user_model.objects.filter(username="alice").exists()


# --- purge_expired_audio -------------------------------------------------------------------


def test_purge_command(
    user: Any, retention_on: Path, django_capture_on_commit_callbacks: Any
) -> None:
    conversation(user, record=True)
    TurnAudio.objects.filter(kind=TurnAudio.Kind.INPUT).update(
        expires_at=timezone.now() - timedelta(days=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        out = run("purge_expired_audio")
    assert "Deleted 1 expired audio file(s)." in out
    assert list(TurnAudio.objects.values_list("kind", flat=True)) == ["output"]
    assert len(files_under(retention_on)) == 1


def test_beat_runs_the_purge_hourly(settings: Any) -> None:
    [entry] = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "conversations.tasks.audio_purge_task"
    ]
    assert entry["schedule"] == 3600.0
    from conversations.tasks import audio_purge_task

    assert audio_purge_task.name == entry["task"]


# --- admin actions ---------------------------------------------------------------------------


def test_session_action_confirms_then_deletes_the_owners_data(
    admin_client: Any,
    user: Any,
    other_user: Any,
    retention_on: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    first = conversation(user, record=True)
    conversation(user)
    theirs = conversation(other_user)
    url = reverse("admin:conversations_voicesession_changelist")
    form = {"action": "delete_session_users_data", "_selected_action": [first.pk]}

    page = admin_client.post(url, form)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Delete conversations and audio?" in html
    assert "<td>alice</td><td>2</td><td>8</td><td>2</td>" in html
    assert VoiceSession.objects.count() == 3  # nothing deleted yet

    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post(url, {**form, "post": "yes"}, follow=True)
    assert "Deleted 2 session(s), 8 turn(s) and 2 audio file(s) of 1 user(s)." in (
        done.content.decode()
    )
    assert list(VoiceSession.objects.values_list("pk", flat=True)) == [theirs.pk]
    assert files_under(retention_on) == []


def test_session_action_is_offered(admin_client: Any, user: Any, media_root: Path) -> None:
    conversation(user)  # the admin shows actions only above a non-empty list
    html = admin_client.get(reverse("admin:conversations_voicesession_changelist")).content
    assert b"Delete conversations and audio of the selected users&#x27; sessions" in html


def test_user_admin_action(
    admin_client: Any,
    user: Any,
    other_user: Any,
    retention_on: Path,
    django_capture_on_commit_callbacks: Any,
) -> None:
    conversation(user, record=True)
    conversation(other_user)
    url = reverse("admin:auth_user_changelist")
    assert b"Delete conversations and audio of the selected users" in admin_client.get(url).content
    form = {"action": "delete_users_data", "_selected_action": [user.pk]}
    assert b"<td>alice</td>" in admin_client.post(url, form).content
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url, {**form, "post": "yes"})
    assert not VoiceSession.objects.filter(user=user).exists()
    assert VoiceSession.objects.filter(user=other_user).exists()
    user.refresh_from_db()  # the account stays
    assert files_under(retention_on) == []
    # The stock user admin still works.
    assert admin_client.get(reverse("admin:auth_user_change", args=[user.pk])).status_code == 200


def test_actions_need_the_delete_permission(
    client: Any, user: Any, django_user_model: Any, media_root: Path
) -> None:
    from django.contrib.auth.models import Permission

    session = conversation(user)
    staff = django_user_model.objects.create_user("carol", password="x", is_staff=True)
    staff.user_permissions.add(
        Permission.objects.get(codename="view_voicesession"),
        Permission.objects.get(codename="view_user"),
    )
    client.force_login(staff)
    for name, url, action, pk in (
        (
            "voicesession",
            "admin:conversations_voicesession_changelist",
            "delete_session_users_data",
            session.pk,
        ),
        ("user", "admin:auth_user_changelist", "delete_users_data", user.pk),
    ):
        page = client.get(reverse(url))
        assert action.encode() not in page.content, name
        client.post(reverse(url), {"action": action, "_selected_action": [pk], "post": "yes"})
    assert VoiceSession.objects.filter(pk=session.pk).exists()
