"""``manage.py reindex_knowledge``: after changing the embedder or the vector store.

By default every document is re-chunked and pushed to the store whole (a new Weaviate,
say), embedding only passages that are new or of another model; ``--stale`` limits it to
documents not indexed with the current model; ``--reembed`` embeds everything again.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge.services import documents_reindex


class Command(BaseCommand):
    help = "Re-index knowledge documents (all, or only stale ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ids", nargs="*", type=int, help="Document ids (default: all).")
        parser.add_argument("--stale", action="store_true", help="Only stale documents.")
        parser.add_argument("--reembed", action="store_true", help="Embed every passage again.")

    def handle(self, *args: Any, **options: Any) -> None:
        reports, failures = documents_reindex(
            document_ids=options["ids"] or None,
            stale_only=options["stale"],
            reembed=options["reembed"],
        )
        for report in reports:
            self.stdout.write(f"document {report.document_id} “{report.title}”: {report.summary()}")
        for document_id, err in failures:
            self.stderr.write(f"document {document_id} failed: {err.code}: {err.message}")
        if failures:
            raise CommandError(f"{len(failures)} document(s) failed", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"Re-indexed {len(reports)} document(s)."))
