"""``manage.py knowledge_seed_demo``: the demo handbook, for ``make run``. Idempotent.

A second run embeds nothing. It also re-indexes documents embedded by another model
than the configured one. A store that cannot be reached (Weaviate down) is a warning,
not a failure, so the server still starts; ``--strict`` makes it a failure.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge.demo import knowledge_seed_demo


class Command(BaseCommand):
    help = "Index the demo knowledge (a poultry-farm handbook) and re-index stale documents."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--strict", action="store_true", help="Exit non-zero when anything failed."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        reports, failures = knowledge_seed_demo()
        for report in reports:
            self.stdout.write(f"Knowledge “{report.title}”: {report.summary()}")
        for what, err in failures:
            self.stderr.write(f"Knowledge {what} not indexed: {err.code}: {err.message}")
        if failures and options["strict"]:
            raise CommandError(f"{len(failures)} document(s) failed", returncode=1)
