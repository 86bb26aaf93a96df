# The sv_sdk web app; the same image runs migrations and the Procrastinate worker.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
# No extras: the embedded PostgreSQL and the test tools stay out of the image.
RUN pip install .

# gunicorn reads its worker count from WEB_CONCURRENCY when --workers is not given.
ENV DJANGO_SETTINGS_MODULE=sv_sdk.settings.production \
    WEB_CONCURRENCY=2

# Production settings refuse to load without SECRET_KEY and DATABASE_URL, and refuse keys
# published here. These values exist for this one step (random, never stored in the image);
# collectstatic opens no database connection.
RUN SECRET_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(50))') \
    DATABASE_URL=postgres://build@localhost/build \
    SV_ENCRYPTION_KEYS=$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
    python manage.py collectstatic --no-input --verbosity 0

# Code and static files stay owned by root: the app user can read them but not change them.
# It gets a home because gunicorn 25.1+ puts its control socket in ~/.gunicorn.
RUN groupadd --system --gid 10001 sv \
    && useradd --system --uid 10001 --gid sv --create-home --home-dir /home/sv \
       --shell /usr/sbin/nologin sv \
    && mkdir -p /var/lib/sv_sdk/metrics && chown sv:sv /var/lib/sv_sdk/metrics
USER 10001:10001
# Every process of a container keeps its metrics here, so a scrape adds up all gunicorn
# workers (see docs/operations.md). Set after the build steps, which count nothing.
ENV PROMETHEUS_MULTIPROC_DIR=/var/lib/sv_sdk/metrics

EXPOSE 8000
# Liveness: the process answers (no database access). Orchestrators that route traffic
# should also ask /readyz; the Compose stack does.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# sv_sdk.gunicorn_config: graceful shutdown (SV_SHUTDOWN_TIMEOUT), the app's log format,
# the metrics directory's bookkeeping. The app logs each request itself.
CMD ["gunicorn", "--config", "python:sv_sdk.gunicorn_config", "--bind", "0.0.0.0:8000"]
