"""``manage.py create_demo_user``: a staff account to try the voice page and the admin.

Idempotent. Without ``--password`` a random password is generated once and kept only in
``VAR_DIR/demo-credentials`` (mode 0600), so every later run prints the same credentials
instead of silently changing them.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from conversations.ratelimits import ratelimit_default_ensure


def credentials_path() -> Path:
    return Path(settings.VAR_DIR) / "demo-credentials"


def _stored_passwords() -> dict[str, str]:
    path = credentials_path()
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {str(name): str(pw) for name, pw in data.items()} if isinstance(data, dict) else {}


def _store_passwords(passwords: dict[str, str]) -> None:
    """Write the file atomically, readable by its owner only from the first byte on."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(passwords, handle)
    os.replace(tmp, path)
    path.chmod(0o600)


class Command(BaseCommand):
    help = "Create or update the staff demo user and the default rate-limit policy."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="demo")
        parser.add_argument(
            "--password",
            default="",
            help="Set this password. Default: the stored one, or a new random one.",
        )
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="Only for the printed URLs."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        password: str = options["password"]
        stored = _stored_passwords()
        if password:
            # The stored one is stale now; an explicit password is not written to disk.
            if stored.pop(username, None) is not None:
                _store_passwords(stored)
        else:
            password = stored.get(username) or secrets.token_urlsafe(18)
            if stored.get(username) != password:
                _store_passwords({**stored, username: password})

        with transaction.atomic():
            user_model = get_user_model()
            user, created = user_model.objects.get_or_create(username=username)
            user.is_active = user.is_staff = user.is_superuser = True
            if created or not user.check_password(password):
                user.set_password(password)
            user.save()
            ratelimit_default_ensure()

        base = options["base_url"].rstrip("/")
        action = "Created" if created else "Updated"
        self.stdout.write(f"{action} demo user.")
        self.stdout.write(f"Demo user: {username} / password: {password}")
        self.stdout.write(f"Voice page: {base}/voice/  (sign in with the user above)")
        self.stdout.write(
            f"Or a client: .venv/bin/python -m realtime.client --url {base} "
            f"--username {username} --password='{password}' --text 'Hello!'"
        )
        self.stdout.write(f"Admin:       {base}/admin/")
