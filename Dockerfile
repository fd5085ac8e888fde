# One image recipe for every service: docker build --build-arg SERVICE=chat -t panicsafe/chat .
# (SERVICE: chat, video, logbook, docs, sara, gateway). No Docker engine runs on the build machines
# here, so this file is linted by review, not built, in CI.
FROM python:3.11-slim AS build
ARG SERVICE
RUN test -n "$SERVICE" && pip install --no-cache-dir uv==0.13.9
WORKDIR /src
COPY . .
RUN uv sync --frozen --no-dev --package "panicsafe-${SERVICE}" --no-editable

FROM python:3.11-slim
ARG SERVICE
RUN useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin panicsafe
COPY --from=build /src/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PANICSAFE_SERVICE=${SERVICE}
USER 10001
# Read-only root filesystem friendly: nothing is written outside mounted volumes and /tmp.
ENTRYPOINT ["/bin/sh", "-c", "exec python -m panicsafe.${PANICSAFE_SERVICE}"]
