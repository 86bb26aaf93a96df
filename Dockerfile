# The sv_sdk web app; the same image runs migrations and the Procrastinate worker.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
RUN pip install .

# gunicorn reads its worker count from WEB_CONCURRENCY when --workers is not given.
ENV DJANGO_SETTINGS_MODULE=sv_sdk.settings.production \
    WEB_CONCURRENCY=2

# Production settings refuse to load without SECRET_KEY and DATABASE_URL. These values
# exist for this one step; collectstatic opens no database connection.
RUN SECRET_KEY=build-only DATABASE_URL=postgres://build@localhost/build \
    SV_ENCRYPTION_KEYS=$(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') \
    python manage.py collectstatic --no-input --verbosity 0

# Code and static files stay owned by root: the app user can read them but not change them.
# It gets a home because gunicorn 25.1+ puts its control socket in ~/.gunicorn.
RUN groupadd --system --gid 10001 sv \
    && useradd --system --uid 10001 --gid sv --create-home --home-dir /home/sv \
       --shell /usr/sbin/nologin sv
USER 10001:10001

EXPOSE 8000
CMD ["gunicorn", "sv_sdk.wsgi", "--bind", "0.0.0.0:8000", "--access-logfile", "-", \
     "--logger-class", "sv_sdk.accesslog.AccessLogger"]
