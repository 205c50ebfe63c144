"""A real S3-compatible object store on 127.0.0.1, for the tests: SeaweedFS's S3 gateway.

Parquet/object-store code paths are tested against a real S3 server rather than a mock, so
request signing, authentication, bucket and key semantics are what a client meets in production.
SeaweedFS (Apache-2.0) is built from its Go module by devenv/build-seaweedfs.sh (release binaries
are not downloaded: the Go module proxy is the only source the build machines can reach), and
`weed server -s3` runs its master, volume server, filer and S3 gateway in one process.

Every listener is bound to 127.0.0.1 on a free port, the data lives under ``data_dir``, and S3
authentication is on: one identity whose access and secret keys are generated at each start.
Clients use pyarrow's S3FileSystem (see :meth:`S3Server.filesystem`).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

from pyarrow import fs as pafs

from localcluster.ports import free_port, wait_for_port

DEVENV_DIR = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_S = 60.0
REGION = "us-east-1"
# Created, written to and deleted at start: the server is ready when that round trip works.
PROBE_BUCKET = "vo-s3-server-readiness-probe"
# SeaweedFS reads these from the environment (an extra admin identity from AWS_*, configuration
# overrides from WEED_*): none of them may leak into the server from the caller's environment.
_IGNORED_ENV_PREFIXES = ("AWS_", "WEED_")


def weed_binary() -> Path:
    """The `weed` binary: $VO_WEED when set, else the one devenv/build-seaweedfs.sh builds (a
    no-op once cached in ~/.cache/vector-operator)."""
    override = os.environ.get("VO_WEED")
    if override:
        path = Path(override)
        if not os.access(path, os.X_OK):
            raise RuntimeError(f"VO_WEED={override} is not an executable file")
        return path
    result = subprocess.run(
        [str(DEVENV_DIR / "build-seaweedfs.sh")], stdout=subprocess.PIPE, text=True, check=False
    )
    if result.returncode != 0 or not result.stdout.strip():
        raise RuntimeError("building SeaweedFS failed (devenv/build-seaweedfs.sh); see its output above")
    return Path(result.stdout.strip().splitlines()[-1]) / "weed"


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class S3Server:
    """Starts and stops one SeaweedFS (master + volume + filer + S3 gateway in one `weed server`
    process) bound to 127.0.0.1, its S3 endpoint on a free (or given) port."""

    def __init__(self, data_dir: Path, port: int | None = None, log_path: Path | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path or data_dir.parent / f"{data_dir.name}.log"
        self._access_key = ""
        self._secret_key = ""
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("the S3 server has not been started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_key(self) -> str:
        if not self._access_key:
            raise RuntimeError("the S3 server has not been started")
        return self._access_key

    @property
    def secret_key(self) -> str:
        if not self._secret_key:
            raise RuntimeError("the S3 server has not been started")
        return self._secret_key

    @property
    def region(self) -> str:
        return REGION

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def filesystem(self, **options: object) -> pafs.S3FileSystem:
        """A pyarrow S3 client for this server with its credentials (``options`` override them)."""
        arguments: dict[str, object] = {
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "endpoint_override": self.endpoint,
            "scheme": "http",
            "region": self.region,
            "connect_timeout": 5,
            "request_timeout": 30,
        }
        arguments.update(options)
        return pafs.S3FileSystem(**arguments)

    def create_bucket(self, name: str) -> None:
        self.filesystem(allow_bucket_creation=True).create_dir(name)

    def start(self) -> None:
        executable = weed_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        storage = self.data_dir / "data"
        storage.mkdir(exist_ok=True)
        # An AWS-style access key id (20 characters) and secret (40), new at every start.
        self._access_key = "VO" + secrets.token_hex(9).upper()
        self._secret_key = secrets.token_urlsafe(30)
        config = self.data_dir / "s3.json"
        config.touch(mode=0o600)
        config.chmod(0o600)
        identity = {
            "name": "vector-operator-tests",
            "credentials": [{"accessKey": self._access_key, "secretKey": self._secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}, indent=2) + "\n")

        self.port = self.port or free_port()
        master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3_grpc = _free_ports(7)
        command = [
            str(executable),
            "-logtostderr=true",  # glog writes its files to $TMPDIR otherwise
            f"-config_dir={self.data_dir}",  # no master.toml/filer.toml from ~/.seaweedfs or /etc
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",  # set explicitly, there is no extra listener on localhost
            f"-dir={storage}",
            "-master.peers=none",  # a single master: the raft cluster is minted at once
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=256",  # volumes are sparse; many small ones serve many buckets
            "-volume.max=100",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            "-s3",
            f"-s3.port={self.port}",
            f"-s3.port.grpc={s3_grpc}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.iam=false",
            f"-s3.config={config}",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
            "-s3.autoCreateBucket=false",  # a missing bucket is an error, as on AWS
        ]
        environment = {
            name: value for name, value in os.environ.items() if not name.startswith(_IGNORED_ENV_PREFIXES)
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(("$ " + " ".join(command) + "\n").encode())
            log.flush()
            self._process = subprocess.Popen(
                command,
                cwd=self.data_dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=environment,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        if not wait_for_port("127.0.0.1", self.port, deadline, alive=lambda: self._alive()):
            self.stop()
            raise RuntimeError(
                f"SeaweedFS did not start listening on 127.0.0.1:{self.port}; see {self.log_path}"
            )
        self._wait_until_serving(deadline)

    def _alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _wait_until_serving(self, deadline: float) -> None:
        """Until a real object round trip succeeds. The S3 port answers (and ListBuckets works)
        seconds before writes do: an object write takes a lock from the filer, which joins the
        master's lock ring only after its startup membership checks (about 10 s after start)."""
        last_error: Exception | None = None
        client = self.filesystem(
            allow_bucket_creation=True,
            allow_bucket_deletion=True,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
        )
        while time.monotonic() < deadline and self._alive():
            try:
                client.create_dir(PROBE_BUCKET)
                with client.open_output_stream(f"{PROBE_BUCKET}/probe") as probe:
                    probe.write(b"ready")
                client.delete_dir(PROBE_BUCKET)
                return
            except OSError as error:  # the server is still starting: any error is retried
                last_error = error
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"SeaweedFS S3 at {self.endpoint} did not answer ({last_error}); see {self.log_path}"
        )

    def stop(self, timeout: float = 20.0) -> None:
        """Stops the server (SIGTERM, then SIGKILL after `timeout`). The data directory stays."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
