# One image for every process: web, worker, beat, bridge (see docker-compose.yml, helm/).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    NUMBA_CACHE_DIR=/app/.numba-cache PROMETHEUS_MULTIPROC_DIR=/tmp/prometheus \
    MC_VAR_DIR=/tmp/montecarlo

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# Static files for the admin; compile the kernels once into the image's numba cache.
RUN DATABASE_URL=sqlite:////tmp/build.sqlite3 SECRET_KEY=collectstatic-at-build-time-only-not-a-secret python manage.py collectstatic --noinput -v0 \
 && python -c "from simulations.engine import warm_up; warm_up()" \
 && useradd --uid 10001 --create-home app && mkdir -p /tmp/prometheus && chown -R app /app /tmp/prometheus

USER app
EXPOSE 8000 9100 9108
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "montecarlo.wsgi"]
