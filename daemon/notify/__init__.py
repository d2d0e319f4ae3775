"""Notifications: the integrations that deliver them (Slack, email, PagerDuty, webhook, console) and their message formats."""
