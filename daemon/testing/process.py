"""`alertd run` as a child process, for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class DaemonProcess:
    """Starts `python -m daemon run` with a config file and stops it, also when the caller fails.

    ``with DaemonProcess(config_path, data_dir) as daemon:`` waits until `/-/healthy` answers;
    ``daemon.url`` is its base URL and ``daemon.log()`` what it printed so far.
    """

    def __init__(
        self,
        config: Path | None,
        data_dir: Path,
        *,
        port: int | None = None,
        env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log_path = data_dir / "alertd.log"
        self._args = [sys.executable, "-m", "daemon", "run", "--listen", f"127.0.0.1:{self.port}"]
        self._args += ["--data-dir", str(data_dir), "--log-format", "json", *(extra_args or [])]
        if config is not None:
            self._args += ["--config", str(config)]
        self._env = {**os.environ, **(env or {})}
        self._data_dir = data_dir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> None:
        self._data_dir.mkdir(parents=True, exist_ok=True)
        log = self._log_path.open("ab")
        self.process = subprocess.Popen(self._args, stdout=log, stderr=subprocess.STDOUT, env=self._env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"alertd exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/-/healthy", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"alertd did not answer within {timeout}s:\n{self.log()}")

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.wait_for(lambda: httpx.get(self.url + "/-/ready", timeout=1).status_code == 200, timeout, "ready")

    def wait_for(self, condition: object, timeout: float = 30.0, what: str = "condition") -> None:
        """Poll ``condition()`` until it is true; fail with the daemon's log after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if condition():  # type: ignore[operator]
                    return
            except (httpx.HTTPError, KeyError, IndexError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}; alertd log:\n{self.log()}")

    def metric_sum(self, name: str) -> float:
        """The sum of every series of ``name`` on the daemon's ``/metrics`` (0 when it has none)."""
        total = 0.0
        for line in httpx.get(self.url + "/metrics", timeout=5).text.splitlines():
            if line.startswith((name + " ", name + "{")):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout``; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def log(self) -> str:
        return self._log_path.read_text(errors="replace") if self._log_path.exists() else ""

    def __enter__(self) -> DaemonProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
