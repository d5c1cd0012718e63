"""``manage.py delete_user_data USERNAME``: a privacy request, answered in one command.

Deletes every session, turn and retained audio file of the user (or only the audio with
``--audio-only``); the account stays unless ``--delete-account``. It says what it is
about to delete and asks first, unless ``--yes``.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.retention import user_data_counts, user_data_delete


def describe(counts: dict[str, int], *, audio_only: bool) -> str:
    parts = [f"{counts['audio_files']} audio file(s)"]
    if not audio_only:
        parts[:0] = [f"{counts['sessions']} session(s)", f"{counts['turns']} turn(s)"]
    if counts.get("accounts"):
        parts.append(f"{counts['accounts']} account(s)")
    return ", ".join(parts)


class Command(BaseCommand):
    help = "Delete a user's conversations (sessions, turns) and retained audio."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument(
            "--audio-only",
            action="store_true",
            help="Delete only the retained audio; keep sessions and transcripts.",
        )
        parser.add_argument(
            "--delete-account", action="store_true", help="Delete the user account as well."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        audio_only: bool = options["audio_only"]
        delete_account: bool = options["delete_account"] and not audio_only
        model = get_user_model()
        user = model._default_manager.filter(**{model.USERNAME_FIELD: username}).first()
        if user is None:
            raise CommandError(f'no user named "{username}"', returncode=1)
        planned = user_data_counts(user=user)
        planned["accounts"] = int(delete_account)
        summary = describe(planned, audio_only=audio_only)
        if not options["yes"] and not self._confirmed(username, summary):
            self.stdout.write("Nothing deleted.")
            return
        counts = user_data_delete(user=user, audio_only=audio_only, delete_account=delete_account)
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted for {username}: {describe(counts, audio_only=audio_only)}."
            )
        )

    def _confirmed(self, username: str, summary: str) -> bool:
        try:
            answer = input(f"This deletes {summary} of {username}. Type 'yes' to continue: ")
        except EOFError:  # no terminal: never delete without an explicit answer
            return False
        return answer.strip().lower() == "yes"
