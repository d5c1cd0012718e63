"""``manage.py ingest_knowledge PATH...``: index files, or every supported file in folders.

Each file is stored under its absolute path as source name, so running the command again
on a changed file updates that document and embeds only its changed passages. Prints one
line per file; exits non-zero when any file failed (the others are still indexed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from knowledge.extraction import KINDS
from knowledge.services import document_ingest
from voiceapp.errors import AppError


def files_under(paths: list[str]) -> tuple[list[Path], list[str]]:
    """The files to index, and the paths that do not exist."""
    files: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            files.extend(
                sorted(
                    found
                    for found in path.rglob("*")
                    if found.is_file()
                    and found.suffix.lower() in KINDS
                    and not any(part.startswith(".") for part in found.relative_to(path).parts)
                )
            )
        elif path.is_file():
            files.append(path)  # an unsupported kind is reported by the extractor
        else:
            missing.append(raw)
    return files, missing


class Command(BaseCommand):
    help = "Index .txt, .md, .html and .pdf files (or folders of them) into the knowledge base."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="Files or folders.")
        parser.add_argument("--title", default="", help="Title (only with a single file).")
        parser.add_argument("--owner", default="", help="Username recorded as the owner.")

    def handle(self, *args: Any, **options: Any) -> None:
        files, missing = files_under(options["paths"])
        if options["title"] and len(files) != 1:
            raise CommandError("--title needs exactly one file", returncode=2)
        owner = None
        if options["owner"]:
            model = get_user_model()
            owner = model._default_manager.filter(
                **{model.USERNAME_FIELD: options["owner"]}
            ).first()
            if owner is None:
                raise CommandError(f'no user named "{options["owner"]}"', returncode=2)
        failed = len(missing)
        for raw in missing:
            self.stderr.write(f"failed {raw}: no such file or folder")
        for path in files:
            try:
                document, report = document_ingest(
                    name=str(path.resolve()),
                    data=path.read_bytes(),
                    title=options["title"],
                    owner=owner,
                )
            except AppError as err:
                failed += 1
                self.stderr.write(f"failed {path}: {err.code}: {err.message}")
                continue
            except OSError as err:
                failed += 1
                self.stderr.write(f"failed {path}: {err.strerror or err}")
                continue
            verb = "added" if report.created else "updated"
            self.stdout.write(
                f"{verb} {path} as document {document.pk} “{document.title}”: {report.summary()}"
            )
        total = len(files) + len(missing)
        if failed:
            raise CommandError(f"{failed} of {total} file(s) failed", returncode=1)
        self.stdout.write(self.style.SUCCESS(f"Indexed {total} file(s)."))
