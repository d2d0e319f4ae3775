# alertd container image.
#
#   docker build -t alertd .
#   docker run -p 9095:9095 -v alertd-data:/data alertd
#
# The image holds the production config (config/ -> /etc/alertd/) and the rule files
# (rules/ -> /etc/alertd/rules/), so one image tag is one tested release of code, config and
# rules. Mount another file over /etc/alertd/alertd.yml, or pass --config, to run another config.

ARG PYTHON_IMAGE=python:3.11-slim

# Builder: alertd's wheel plus its dependencies' wheels, installed into a virtualenv that the
# runtime stage copies whole. Build tools, pip's cache and the wheels stay behind.
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY daemon ./daemon
RUN pip wheel --wheel-dir /wheels . \
 && python -m venv /opt/alertd \
 && /opt/alertd/bin/pip install --no-index --find-links /wheels alertd \
 && /opt/alertd/bin/pip uninstall --yes pip

# Runtime.
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="alertd" \
      org.opencontainers.image.description="Scrape metrics, evaluate Prometheus alerting rules, route and escalate alerts in one process." \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/alertd/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# A fixed UID/GID, so that volumes (an EFS access point, a host directory) can be given to it.
RUN groupadd --system --gid 10001 alertd \
 && useradd --system --uid 10001 --gid alertd --home-dir /data --no-create-home --shell /usr/sbin/nologin alertd \
 && install -d -o alertd -g alertd -m 0700 /data \
 && ln -s alertd/rules /etc/rules
# The link keeps a config's rule_files working whether they are written relative to the
# config file as it sits in the image (rules/*.yml) or in the repository (../rules/*.yml).
COPY --from=builder /opt/alertd /opt/alertd
COPY config/ /etc/alertd/
COPY rules/ /etc/alertd/rules/
VOLUME /data
WORKDIR /data
USER alertd:alertd
EXPOSE 9095
# No curl in the slim image: Python asks /-/healthy (exit 1, "unhealthy", on any error).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9095/-/healthy', timeout=4)"]
# Exec form: alertd is PID 1 itself and gets SIGTERM from `docker stop` / ECS; it stops
# within 10 s and exits 0. It starts no child processes, so there is nothing to reap (no tini).
STOPSIGNAL SIGTERM
ENTRYPOINT ["alertd"]
CMD ["run", "--config", "/etc/alertd/alertd.yml", "--data-dir", "/data", "--log-format", "json"]
