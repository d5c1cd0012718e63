"""The production path on one machine: daphne + Redis + a Celery worker + PostgreSQL.

Used by the integration tests and by ``bench/latency.py``. It creates a database of its
own on the local PostgreSQL server, uses key prefixes and a queue of its own on the
local Redis, starts daphne and a worker as subprocesses with the same environment, and
removes everything again on ``stop()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("VOICEAPP_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("VOICEAPP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Stack:
    username = "stackuser"

    def __init__(self, *, log_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        tag = f"{os.getpid()}_{secrets.token_hex(3)}"
        self.db_name = f"voiceapp_stack_{tag}"
        self.prefix = f"vstack{tag}"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(12)
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            **os.environ,
            "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{self.db_name}",
            "REDIS_URL": REDIS,
            "VOICEAPP_REDIS_PREFIX": self.prefix,
            "VOICEAPP_CELERY_QUEUE": self.prefix,
            "SECRET_KEY": secrets.token_urlsafe(40),
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "VOICEAPP_VAR_DIR": str(log_dir / "var"),
            "PYTHONUNBUFFERED": "1",
            "DB_CONN_MAX_AGE": "300",
            **(extra_env or {}),
        }

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> Stack:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.manage("migrate", "--noinput")
        self.manage(
            "create_demo_user", f"--username={self.username}", f"--password={self.password}"
        )
        self.manage("knowledge_seed_demo", "--strict")
        self.start_worker()
        self.procs["daphne"] = self._spawn(
            "daphne",
            [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(self.port),
                "voiceapp.asgi:application",
            ],
        )
        self.wait_healthy()
        return self

    def start_worker(self) -> None:
        self.procs["worker"] = self._spawn(
            "worker",
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "voiceapp",
                "worker",
                "-Q",
                self.prefix,
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "-l",
                "info",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"{self.prefix}@%h",
            ],
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs.clear()
        with contextlib.suppress(Exception):
            import redis

            client = redis.Redis.from_url(REDIS)
            for key in client.scan_iter(f"*{self.prefix}*"):
                client.delete(key)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')

    def __enter__(self) -> Stack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- helpers ---------------------------------------------------------------------------
    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.log_dir / f"{name}.log", "ab")
        return subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def health(self) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(self.base_url + "/healthz", timeout=5) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def wait_healthy(self, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited early; see {self.log_dir / (name + '.log')}")
            try:
                status, body = self.health()
                last = body
                if status == 200:
                    return body
            except OSError as err:
                last = err
            time.sleep(0.3)
        raise RuntimeError(f"the stack did not become healthy: {last}")

    def token(self) -> str:
        from realtime.client import login

        return login(self.base_url, self.username, self.password)

    def worker_children(self) -> list[int]:
        """PIDs of the worker's pool processes (where the turns run)."""
        parent = self.procs["worker"].pid
        children = Path(f"/proc/{parent}/task/{parent}/children")
        return [int(pid) for pid in children.read_text().split()] if children.exists() else []

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.env["DATABASE_URL"]) as conn:
            return list(conn.execute(sql, params).fetchall())
