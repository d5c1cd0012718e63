"""Environment for the test run, set before Django reads its settings.

Loaded as a plugin (``-p tests.testenv`` in pyproject.toml) because pytest-django
configures Django before any conftest.py is imported.

Tests run against the real PostgreSQL server (127.0.0.1:5432, trust auth). Each pytest
process gets database names of its own, so parallel runs never share a test database.
"""

import os

os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/voiceapp_t{os.getpid()}")
# The pytest process itself runs the embedded default (in-memory channel layer, eager
# Celery); the integration tests start daphne and a worker with Redis in subprocesses.
os.environ.pop("REDIS_URL", None)
os.environ.setdefault("DEBUG", "false")
# No persistent connections in the test process: worker threads would keep the test
# database open and pytest-django could not drop it at the end.
os.environ.setdefault("DB_CONN_MAX_AGE", "0")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")

_OWN_TEST_DB = f"test_voiceapp_t{os.getpid()}"


def pytest_sessionfinish(session: object, exitstatus: int) -> None:
    """Drop this run's test database even when pytest-django could not.

    A worker thread that still holds a connection at the very end makes Django's own
    teardown fail with "database is being accessed by other users"; left alone, every
    such run would leave a database behind on the shared server.
    """
    if f"/voiceapp_t{os.getpid()}" not in os.environ.get("DATABASE_URL", ""):
        return  # a database the developer chose: not ours to drop
    try:
        import psycopg

        with psycopg.connect(
            "postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True, connect_timeout=5
        ) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{_OWN_TEST_DB}" WITH (FORCE)')
    except Exception as err:  # noqa: BLE001 - cleanup must never fail the run
        print(f"could not drop {_OWN_TEST_DB}: {err}")
