# syntax=docker/dockerfile:1
# Build stage: the pinned, hash-checked dependencies (requirements/, `make lock`) and archiver
# itself, into a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/archiver
COPY requirements/build.txt requirements/runtime.txt requirements/
RUN /opt/archiver/bin/pip install --require-hashes --no-deps \
        -r requirements/build.txt -r requirements/runtime.txt
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/archiver/bin/pip install --no-deps --no-build-isolation . \
    && /opt/archiver/bin/archiver --version

# Runtime stage: the virtual environment only, run as an unprivileged user. The user is numeric
# so that runtimes enforcing "run as non-root" (Kubernetes runAsNonRoot, ECS checks) can see it.
FROM python:3.11-slim
ENV PATH=/opt/archiver/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system --gid 10001 archiver \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent archiver
COPY --from=build /opt/archiver /opt/archiver
USER 10001:10001
# Healthy while the worker keeps touching HEALTH_FILE (every poll, and while a job runs).
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["archiver", "healthcheck"]
# SIGTERM (ECS stop) lets the running job finish; see docs and SHUTDOWN_GRACE_SECONDS.
STOPSIGNAL SIGTERM
ENTRYPOINT ["archiver"]
CMD ["worker"]
