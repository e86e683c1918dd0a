# One image for every steno-collab service; docker-compose.yml picks the command
# (gateway, projector, snapshotter, migrate). The web bundle is prebuilt and committed
# (web/dist), so the image needs no Node.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
RUN pip install . \
 && useradd --system --home-dir /app --shell /usr/sbin/nologin steno \
 && mkdir -p /app/.steno && chown steno /app/.steno

# The gateway finds the bundle at ./web/dist (working directory /app).
USER steno
EXPOSE 8000
CMD ["steno-collab", "gateway", "--host", "0.0.0.0", "--port", "8000"]
