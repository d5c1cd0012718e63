"""``manage.py create_demo_user``: idempotent, stable credentials, default limits."""

from __future__ import annotations

import io
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from conversations.models import RateLimitPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def var_dir(settings: Any, tmp_path: Path) -> Path:
    settings.VAR_DIR = tmp_path
    return tmp_path


def run(*args: str) -> tuple[str, str, str]:
    out = io.StringIO()
    call_command("create_demo_user", *args, stdout=out)
    text = out.getvalue()
    match = re.search(r"Demo user: (\S+) / password: (\S+)", text)
    assert match, text
    return match.group(1), match.group(2), text


def test_idempotent_with_the_same_generated_password(var_dir: Path) -> None:
    name, first, text = run()
    _, second, _ = run()
    assert name == "demo" and first == second and len(first) >= 16
    assert "realtime.client" in text and "/admin/" in text
    user = get_user_model().objects.get(username="demo")
    assert user.is_staff and user.is_superuser and user.is_active
    assert get_user_model().objects.filter(username="demo").count() == 1
    assert authenticate(username="demo", password=first) == user
    credentials = var_dir / "demo-credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert first in credentials.read_text()


def test_explicit_password_and_username(var_dir: Path) -> None:
    name, password, _ = run("--username", "tester", "--password", "correct-horse-42")
    assert (name, password) == ("tester", "correct-horse-42")
    assert authenticate(username="tester", password="correct-horse-42") is not None
    assert not (var_dir / "demo-credentials").exists()  # a given password is not stored
    run("--username", "tester", "--password", "correct-horse-42")
    assert get_user_model().objects.filter(username="tester").count() == 1


def test_updates_an_existing_plain_user(django_user_model: Any) -> None:
    django_user_model.objects.create_user("demo", password="old-password-1")
    _, password, text = run()
    user = django_user_model.objects.get(username="demo")
    assert "Updated" in text and user.is_staff and user.is_superuser
    assert authenticate(username="demo", password=password) == user


def test_default_policy_exists_once(settings: Any) -> None:
    run()
    run()
    policy = RateLimitPolicy.objects.get(user=None)
    assert RateLimitPolicy.objects.count() == 1
    for field, value in settings.RATE_LIMIT_DEFAULTS.items():
        assert getattr(policy, field) == value


def test_edited_default_policy_is_kept() -> None:
    run()
    RateLimitPolicy.objects.filter(user=None).update(turns_per_day=7)
    run()
    assert RateLimitPolicy.objects.get(user=None).turns_per_day == 7
