# incidentflow: one image for every process; the command picks the role
# (e.g. `docker compose run --rm ingest`, or `incidentflow migrate`).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package needs (no .venv, .git or tests in the image).
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY storage ./storage
COPY workers ./workers
COPY incidentflow ./incidentflow
COPY api ./api

RUN pip install . \
    && useradd --system --uid 10001 --no-create-home incidentflow

USER incidentflow
ENTRYPOINT ["incidentflow"]
CMD ["--help"]
