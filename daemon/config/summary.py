"""What ``alertd check config`` prints about a config that loaded: jobs, targets, rule files."""

from __future__ import annotations

from daemon.config.duration import format_duration
from daemon.config.model import Config


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def summarize(config: Config) -> str:
    """A few human-readable lines describing ``config``."""
    glob = config.global_
    lines = [
        f"config {config.source}: OK",
        f"  scrape every {format_duration(glob.scrape_interval)} (timeout {format_duration(glob.scrape_timeout)}), "
        f"evaluate every {format_duration(glob.evaluation_interval)}",
        f"  {_plural(len(config.scrape_configs), 'scrape job')}:",
    ]
    for job in config.scrape_configs:
        static = sum(len(group.targets) for group in job.static_configs)
        parts = [_plural(static, "static target")]
        globs = [pattern for sd in job.file_sd_configs for pattern in sd.files]
        if globs:
            parts.append("file_sd " + ", ".join(globs))
        parts.append(f"every {format_duration(job.scrape_interval)}")
        lines.append(f"    {job.job_name}: " + ", ".join(parts))
    lines.append(f"  {_plural(len(config.rule_files), 'rule file pattern')}" + (":" if config.rule_files else ""))
    lines.extend(f"    {pattern}" for pattern in config.rule_files)
    if config.demo_exporter is not None:
        demo = config.demo_exporter
        lines.append(f"  demo exporter on {demo.listen} ({demo.series} series)")
    lines.extend(config.cloudwatch.summary_lines() if config.cloudwatch is not None else ())
    lines.extend(f"  probe job {p.job_name}: {p.prober}, {_plural(len(p.targets), 'target')}, every {format_duration(p.interval)}" for p in config.probes)
    lines.append(f"  web on {config.web.listen}, samples kept {format_duration(config.storage.retention)}")
    return "\n".join(lines)
