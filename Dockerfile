# syntax=docker/dockerfile:1
# The infrawatch service image: API + scheduler, MQTT ingest, migrations, simulator (one CLI, `infrawatch`).
FROM python:3.11-slim

# The uv release that wrote uv.lock (lock format revision 5).
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /uvx /usr/local/bin/

ENV PYTHONUNBUFFERED=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Dependencies first (cached while only the code changes), exactly as locked, without dev tools.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .
RUN uv sync --frozen --no-dev \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin infrawatch \
    && mkdir -p /data && chown infrawatch /data

ENV PATH=/app/.venv/bin:$PATH \
    INFRAWATCH_DATA_DIR=/data \
    INFRAWATCH_LOG_JSON=true
USER infrawatch
EXPOSE 8000
ENTRYPOINT ["infrawatch"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
