"""alertd: scrape metrics, evaluate Prometheus rules, route and escalate alerts in one process."""

__version__ = "0.1.0"
