# syntax=docker/dockerfile:1
# Build stage: install archiver and its dependencies into a virtual environment.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/archiver
COPY pyproject.toml README.md ./
COPY src ./src
RUN /opt/archiver/bin/pip install .

# Runtime stage: the virtual environment only, run as an unprivileged user.
FROM python:3.11-slim
ENV PATH=/opt/archiver/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN groupadd --system archiver && useradd --system --gid archiver --no-create-home archiver
COPY --from=build /opt/archiver /opt/archiver
USER archiver
# SIGTERM (ECS stop) lets the running job finish; see docs and SHUTDOWN_GRACE_SECONDS.
STOPSIGNAL SIGTERM
ENTRYPOINT ["archiver"]
CMD ["worker"]
