# The pipeline's image for deploy/pipeline-rayjob.yaml (python -m serve.manifest --pipeline): every Ray node and the
# job's driver run it. It holds the pipeline's pinned dependencies (requirements.lock: DVC, Ray, XGBoost, ...) and git,
# not the project: the RayJob runs the checkout on the shared volume (PYTHONPATH points there on every node).
#   docker build -f deploy/pipeline.Dockerfile -t credit-scoring-pipeline .
# Its build context is deploy/pipeline.Dockerfile.dockerignore's (BuildKit), not .dockerignore's (the service's image).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE=token MLFLOW_DISABLE_TELEMETRY=true DVC_NO_ANALYTICS=1 \
    GX_ANALYTICS_ENABLED=false

RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 ray
COPY requirements.lock /tmp/requirements.lock
RUN pip install -r /tmp/requirements.lock && rm /tmp/requirements.lock

USER ray
WORKDIR /home/ray
