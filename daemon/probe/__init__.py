"""Built-in blackbox probes (http, tcp, tls) writing blackbox_exporter's ``probe_*`` series to the store."""

from daemon.probe.http import HTTPProber
from daemon.probe.loop import ProbeLoop
from daemon.probe.manager import ProbeManager, prober_for
from daemon.probe.prober import FakeProber, ProbeReport, Prober
from daemon.probe.tcp import TCPProber, tls_prober

__all__ = [
    "FakeProber",
    "HTTPProber",
    "ProbeLoop",
    "ProbeManager",
    "ProbeReport",
    "Prober",
    "TCPProber",
    "prober_for",
    "tls_prober",
]
