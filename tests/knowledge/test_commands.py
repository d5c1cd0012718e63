"""ingest_knowledge, knowledge_seed_demo and reindex_knowledge."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from knowledge.demo import demo_files
from knowledge.models import Document
from tests.knowledge.conftest import HANDBOOK
from tests.knowledge.fakes import HashEmbedder
from voiceapp.errors import KnowledgeUnavailable

pytestmark = pytest.mark.django_db


def run(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_ingest_files_and_folders(tmp_path: Path) -> None:
    (tmp_path / "handbook.md").write_text(HANDBOOK)
    sub = tmp_path / "more"
    sub.mkdir()
    (sub / "ducks.txt").write_text("Ducks need water to swim.")
    (sub / "ignored.png").write_bytes(b"\x89PNG")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "secret.md").write_text("# Secret")
    out, err = run("ingest_knowledge", str(tmp_path))
    assert err == ""
    assert f"added {tmp_path / 'handbook.md'} as document" in out
    assert "“Farm handbook”: 3 passages (3 embedded, 0 unchanged, 0 removed)" in out
    assert "ducks.txt" in out and "Indexed 2 file(s)." in out
    assert Document.objects.count() == 2
    assert Document.objects.get(title="Farm handbook").source_name == str(
        (tmp_path / "handbook.md").resolve()
    )
    out, _ = run("ingest_knowledge", str(tmp_path / "handbook.md"))
    assert "updated" in out and "(0 embedded, 3 unchanged, 0 removed)" in out


def test_errors_exit_non_zero_after_indexing_the_rest(tmp_path: Path) -> None:
    (tmp_path / "good.md").write_text(HANDBOOK)
    (tmp_path / "bad.docx").write_bytes(b"PK")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(CommandError) as caught:
        run(
            "ingest_knowledge",
            str(tmp_path / "good.md"),
            str(tmp_path / "bad.docx"),
            str(tmp_path / "empty.txt"),
            str(tmp_path / "missing.md"),
        )
    assert caught.value.returncode == 1 and "3 of 4 file(s) failed" in str(caught.value)
    assert Document.objects.get().title == "Farm handbook"


def test_ingest_error_lines(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "bad.docx").write_bytes(b"PK")
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("ingest_knowledge", str(tmp_path / "bad.docx"), stdout=StringIO(), stderr=err)
    assert f"failed {tmp_path / 'bad.docx'}: unsupported_file:" in err.getvalue()


def test_title_and_owner_options(tmp_path: Path, staff: Any) -> None:
    (tmp_path / "a.md").write_text(HANDBOOK)
    run("ingest_knowledge", str(tmp_path / "a.md"), "--title", "Mine", "--owner", "keeper")
    document = Document.objects.get()
    assert document.title == "Mine" and document.owner == staff
    with pytest.raises(CommandError):
        run("ingest_knowledge", str(tmp_path / "a.md"), "--owner", "nobody")


def test_seed_demo_is_idempotent() -> None:
    assert [path.name for path in demo_files()] == ["poultry-handbook.md"]
    out, _ = run("knowledge_seed_demo")
    assert "Knowledge “Poultry Farm Handbook”:" in out and "0 unchanged" in out
    document = Document.objects.get()
    assert document.source_name == "demo/poultry-handbook.md"
    assert document.chunks.count() >= 40
    HashEmbedder.embedded.clear()
    out, _ = run("knowledge_seed_demo")
    assert "(0 embedded," in out and HashEmbedder.embedded == []
    assert Document.objects.count() == 1


def test_seed_demo_reindexes_after_a_model_change() -> None:
    run("knowledge_seed_demo")
    HashEmbedder.model = "fake-hash-256-v2"
    out, _ = run("knowledge_seed_demo")
    assert "0 unchanged" in out  # the handbook was embedded again by the new model
    assert Document.objects.get().embedding_model == "fake-hash-256-v2"


def test_seed_demo_warns_but_succeeds_when_indexing_fails() -> None:
    HashEmbedder.fail_with = KnowledgeUnavailable("embedder down")
    _out, err = run("knowledge_seed_demo")
    assert "not indexed: knowledge_unavailable: embedder down" in err
    with pytest.raises(CommandError):
        run("knowledge_seed_demo", "--strict")


def test_reindex_command(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text(HANDBOOK)
    run("ingest_knowledge", str(tmp_path / "a.md"))
    out, _ = run("reindex_knowledge", "--stale")
    assert "Re-indexed 0 document(s)." in out
    out, _ = run("reindex_knowledge", "--reembed")
    assert "(3 embedded, 0 unchanged, 0 removed)" in out
