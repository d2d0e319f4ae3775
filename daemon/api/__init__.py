"""The HTTP API: health, reload, own metrics, and Prometheus-compatible read endpoints."""
