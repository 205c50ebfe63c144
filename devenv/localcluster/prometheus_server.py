"""A real Prometheus server (Debian's `prometheus` package) on 127.0.0.1, scraping given targets
every second and evaluating the operator's rule files, for the tests that check metrics, recording
rules and alerts the way an SRE's Prometheus would."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from localcluster.ports import free_port, wait_for_port

STARTUP_TIMEOUT_S = 60.0


class PrometheusServer:
    def __init__(
        self, directory: Path, targets: list[str], rule_files: list[Path], job: str = "vector-operator"
    ) -> None:
        self.directory, self.targets, self.rule_files, self.job = directory, targets, rule_files, job
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        executable = shutil.which("prometheus")
        if executable is None:
            raise RuntimeError(
                "prometheus is not installed: apt-get install prometheus (.ci/run installs it)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in self.rule_files],
            "scrape_configs": [{"job_name": self.job, "static_configs": [{"targets": self.targets}]}],
        }
        (self.directory / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        command = [
            executable,
            f"--config.file={self.directory / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--log.level=warn",
        ]
        with (self.directory / "prometheus.log").open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        if not wait_for_port(
            "127.0.0.1",
            self.port,
            deadline,
            lambda: self._process is not None and self._process.poll() is None,
        ):
            raise RuntimeError(
                f"prometheus did not start:\n{(self.directory / 'prometheus.log').read_text()[-2000:]}"
            )

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _get(self, path: str, **params: str) -> Any:
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:  # noqa: S310 - http://127.0.0.1 only
            body = json.loads(response.read())
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus answered {body}")
        return body["data"]

    def query(self, expression: str) -> list[dict[str, Any]]:
        """The instant vector of ``expression``: [{"metric": labels, "value": [time, "text"]}]."""
        data = self._get("/api/v1/query", query=expression)
        result: list[dict[str, Any]] = data["result"]
        return result

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts
