"""Scraping Prometheus-format targets: discovery, target labels, relabelling, scrape loops."""
