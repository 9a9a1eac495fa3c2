# Serves a trained model with `kedro serve` (POST /predict, GET /health, GET /metadata, /docs).
# NOT BUILT OR RUN: the environment this was written in has no container runtime and no network
# for base images. Kept deliberately simple.
#
#   make train                                   # a model under data/06_models first
#   docker build -t model-trainer-serve .
#   docker run -p 8000:8000 -v "$PWD/serving-logs:/app/data/09_serving" model-trainer-serve
#
# It serves the latest model baked in from data/06_models. Arguments after the image name are
# passed to `kedro serve`, e.g. a registered model from an MLflow server:
#   docker run -p 8000:8000 -e MLFLOW_TRACKING_URI=http://mlflow:5000 model-trainer-serve \
#       --model models:/01_raw_credit_data_Status/3 --unknown-columns refuse
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    KEDRO_DISABLE_TELEMETRY=1 \
    MLFLOW_DISABLE_TELEMETRY=true \
    KEDRO_LOGGING_CONFIG=/app/conf/logging.yml \
    PATH="/app/.venv/bin:$PATH"

RUN pip install --no-cache-dir uv
WORKDIR /app

# Dependencies first, so a code change does not reinstall them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project

COPY .telemetry ./
COPY conf/base conf/base
COPY conf/logging.yml conf/logging.yml
COPY src src
RUN uv sync --frozen --no-dev && mkdir -p conf/local data/09_serving

# Only what serving reads: the versioned models and their cards (the latest one is served).
COPY data/06_models/model.joblib data/06_models/model.joblib
COPY data/06_models/model_card.json data/06_models/model_card.json

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health')"
ENTRYPOINT ["kedro", "serve", "--host", "0.0.0.0", "--port", "8000"]
