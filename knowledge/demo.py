"""The demo knowledge seeded by ``make run``: the handbooks in ``knowledge/demo/``.

Idempotent: each file is stored under a fixed source name (``demo/<file>``), so a second
run finds the same documents, embeds nothing and changes nothing. Documents indexed by
another embedding model than the configured one are re-indexed on the way.
"""

from __future__ import annotations

from pathlib import Path

from knowledge.extraction import KINDS
from knowledge.services import IndexReport, document_ingest, documents_reindex
from voiceapp.errors import AppError

DEMO_DIR = Path(__file__).resolve().parent / "demo"


def demo_files() -> list[Path]:
    return sorted(path for path in DEMO_DIR.iterdir() if path.suffix.lower() in KINDS)


def knowledge_seed_demo() -> tuple[list[IndexReport], list[tuple[str, AppError]]]:
    """Index the demo handbooks, then anything stale; returns reports and failures."""
    reports: list[IndexReport] = []
    failures: list[tuple[str, AppError]] = []
    for path in demo_files():
        try:
            _, report = document_ingest(name=f"demo/{path.name}", data=path.read_bytes())
            reports.append(report)
        except AppError as err:
            failures.append((f"demo/{path.name}", err))
    stale, stale_failures = documents_reindex(stale_only=True)
    reports += stale
    failures += [(f"document {document_id}", err) for document_id, err in stale_failures]
    return reports, failures
