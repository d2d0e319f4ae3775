"""The config file: Prometheus-compatible scrape settings plus alertd's own sections."""

from __future__ import annotations

from daemon.config.duration import Duration, format_duration, parse_duration
from daemon.config.errors import ConfigError, ConfigIssue
from daemon.config.httpclient import Authorization, BasicAuth, TLSConfig
from daemon.config.load import load_config, load_default_config, parse_config
from daemon.config.model import Config, DemoExporterConfig, GlobalConfig, StorageConfig, WebConfig
from daemon.config.scrape import FileSDConfig, ScrapeConfig, StaticConfig
from daemon.config.secret import Secret
from daemon.config.summary import summarize

__all__ = [
    "Authorization",
    "BasicAuth",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "DemoExporterConfig",
    "Duration",
    "FileSDConfig",
    "GlobalConfig",
    "ScrapeConfig",
    "Secret",
    "StaticConfig",
    "StorageConfig",
    "TLSConfig",
    "WebConfig",
    "format_duration",
    "load_config",
    "load_default_config",
    "parse_config",
    "parse_duration",
    "summarize",
]
