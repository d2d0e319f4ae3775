"""Alerting and recording rules: templates for labels and annotations, evaluation, alert state."""
