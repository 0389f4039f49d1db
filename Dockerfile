# One image for the server and the workers (docker-compose.yml runs it both ways).
# PyPI's torch wheels carry CUDA, so the same image trains on a GPU host and serves on a CPU one.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY hpsearch ./hpsearch
COPY api ./api
COPY workers ./workers
COPY studies ./studies
RUN pip install . && useradd --create-home --uid 1000 hpsearch \
    && mkdir -p /home/hpsearch/.cache/hpsearch && chown -R hpsearch /home/hpsearch/.cache \
    && mkdir -p /files && chown hpsearch /files
USER hpsearch

# the server's uploaded datasets and model files (a volume: compose's files, Kubernetes' PVC)
ENV HPSEARCH_DATA_DIR=/files/datasets \
    HPSEARCH_ARTIFACT_DIR=/files/artifacts
EXPOSE 8000
CMD ["hpsearch", "serve", "--host", "0.0.0.0", "--port", "8000"]
