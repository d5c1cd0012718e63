"""Audio retention services: store, purge and delete, with real files on disk."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from conversations import retention
from conversations.models import Turn, TurnAudio, VoiceSession
from conversations.retention import (
    audio_purge_expired,
    turn_audio_store,
    user_data_counts,
    user_data_delete,
)
from conversations.tasks import audio_purge_task
from realtime import recording
from realtime.audio import read_wav
from realtime.recording import TurnRecorder
from tests.conversations.conftest import conversation, files_under, tone

pytestmark = pytest.mark.django_db


def first_turn(session: VoiceSession) -> Turn:
    return session.turns.get(index=0)


# --- retention off -------------------------------------------------------------------------


def test_off_by_default_nothing_is_stored(settings: Any, media_root: Path, user: Any) -> None:
    assert settings.AUDIO_RETENTION_DAYS == 0
    assert not retention.retention_enabled()
    turn = first_turn(conversation(user))
    stored = turn_audio_store(
        turn_id=turn.pk, kind=TurnAudio.Kind.INPUT, pcm=tone(1.0), sample_rate=16000
    )
    assert stored is None
    assert not TurnAudio.objects.exists()
    assert files_under(media_root) == []


def test_off_the_worker_keeps_no_copy(settings: Any) -> None:
    settings.AUDIO_RETENTION_DAYS = 0
    assert TurnRecorder.start(utterance=tone(1.0)) is None


# --- storing ---------------------------------------------------------------------------------


def test_store_writes_a_playable_wav(retention_on: Path, user: Any) -> None:
    turn = first_turn(conversation(user))
    pcm = tone(1.5, 22050)
    before = timezone.now()
    audio = turn_audio_store(
        turn_id=turn.pk, kind=TurnAudio.Kind.OUTPUT, pcm=pcm + b"\x01", sample_rate=22050
    )
    assert audio is not None
    assert audio.content_type == "audio/wav" and audio.seconds == 1.5
    assert before + timedelta(days=7) <= audio.expires_at <= timezone.now() + timedelta(days=7)
    [path] = files_under(retention_on)
    assert path == Path(audio.file.path)
    assert path.relative_to(retention_on).parts[:2] == ("turn-audio", str(turn.session_id))
    assert read_wav(path.read_bytes()) == (pcm, 22050)  # the odd trailing byte is dropped


def test_store_is_idempotent_per_turn_and_kind(retention_on: Path, user: Any) -> None:
    turn = first_turn(conversation(user))
    args = {"turn_id": turn.pk, "kind": TurnAudio.Kind.INPUT, "sample_rate": 16000}
    first = turn_audio_store(pcm=tone(1.0), **args)
    again = turn_audio_store(pcm=tone(2.0), **args)
    assert first is not None and again is not None and again.pk == first.pk
    assert len(files_under(retention_on)) == 1


def test_store_skips_empty_audio_and_missing_turns(retention_on: Path, user: Any) -> None:
    turn = first_turn(conversation(user))
    kind = TurnAudio.Kind.INPUT
    assert turn_audio_store(turn_id=turn.pk, kind=kind, pcm=b"\x01", sample_rate=16000) is None
    assert turn_audio_store(turn_id=10**9, kind=kind, pcm=tone(0.5), sample_rate=16000) is None
    assert files_under(retention_on) == []


def test_a_failed_insert_leaves_no_file(
    retention_on: Path, user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    turn = first_turn(conversation(user))

    def broken_save(self: TurnAudio, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(TurnAudio, "save", broken_save)
    with pytest.raises(RuntimeError):
        turn_audio_store(
            turn_id=turn.pk, kind=TurnAudio.Kind.INPUT, pcm=tone(0.5), sample_rate=16000
        )
    assert files_under(retention_on) == []


def test_recorder_keeps_at_most_the_bound(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.AUDIO_RETENTION_DAYS = 1
    monkeypatch.setattr(recording, "MAX_KEPT_SECONDS", 1)
    recorder = TurnRecorder.start(utterance=None)
    assert recorder is not None
    for _ in range(5):
        recorder.keep_reply(tone(0.4, 8000), 8000)
    assert len(recorder.reply) == 8000 * 2  # one second at 8 kHz, the rest was not kept


# --- purging ---------------------------------------------------------------------------------


def test_purge_deletes_expired_rows_and_files_after_commit(
    retention_on: Path, user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    conversation(user, record=True)
    expired = TurnAudio.objects.get(kind=TurnAudio.Kind.INPUT)
    kept = TurnAudio.objects.get(kind=TurnAudio.Kind.OUTPUT)
    TurnAudio.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert audio_purge_expired() == 1
    # Until the transaction commits, the file is still there.
    assert Path(expired.file.path).exists()
    for callback in callbacks:
        callback()
    assert list(TurnAudio.objects.values_list("pk", flat=True)) == [kept.pk]
    assert files_under(retention_on) == [Path(kept.file.path)]


def test_purge_task_runs_the_service(
    retention_on: Path, user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    conversation(user, record=True)
    with django_capture_on_commit_callbacks(execute=True):
        assert audio_purge_task() == 0
        TurnAudio.objects.update(expires_at=timezone.now())
        assert audio_purge_task.apply().get() == 2
    assert files_under(retention_on) == []


# --- deleting a user's data ------------------------------------------------------------------


def test_user_data_delete_removes_sessions_turns_and_files(
    retention_on: Path, user: Any, other_user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    conversation(user, record=True)
    conversation(user)
    theirs = conversation(other_user, record=True)
    assert user_data_counts(user=user) == {
        "sessions": 2,
        "turns": 8,
        "audio_files": 2,
        "accounts": 0,
    }
    with django_capture_on_commit_callbacks(execute=True):
        counts = user_data_delete(user=user)
    assert counts == {"sessions": 2, "turns": 8, "audio_files": 2, "accounts": 0}
    user.refresh_from_db()  # the account stays
    assert not VoiceSession.objects.filter(user=user).exists()
    assert set(VoiceSession.objects.values_list("pk", flat=True)) == {theirs.pk}
    kept = {Path(audio.file.path) for audio in TurnAudio.objects.all()}
    assert len(kept) == 2 and set(files_under(retention_on)) == kept


def test_user_data_delete_audio_only_keeps_transcripts(
    retention_on: Path, user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    conversation(user, record=True)
    with django_capture_on_commit_callbacks(execute=True):
        counts = user_data_delete(user=user, audio_only=True)
    assert counts == {"sessions": 0, "turns": 0, "audio_files": 2, "accounts": 0}
    assert Turn.objects.filter(session__user=user).count() == 4
    assert files_under(retention_on) == []


def test_user_data_delete_with_the_account(
    retention_on: Path, user: Any, django_user_model: Any, django_capture_on_commit_callbacks: Any
) -> None:
    conversation(user, record=True)
    with django_capture_on_commit_callbacks(execute=True):
        counts = user_data_delete(user=user, delete_account=True)
    assert counts == {"sessions": 1, "turns": 4, "audio_files": 2, "accounts": 1}
    assert not django_user_model.objects.filter(username="alice").exists()
    assert files_under(retention_on) == []


def test_any_cascade_takes_the_files_along(
    retention_on: Path, user: Any, django_capture_on_commit_callbacks: Any
) -> None:
    """The admin's stock delete and user deletion bypass the services: no file stays."""
    session = conversation(user, record=True)
    assert len(files_under(retention_on)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        session.delete()
    assert files_under(retention_on) == []
