"""What every Python client test needs: an okr-pulse server of its own (the
binary in $OKR_PULSE_BIN, on a free port, in a fresh data folder), tokens
minted with `okr-pulse token`, GraphQL over HTTP to make data, and deadlines.
"""

import asyncio
import datetime
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest

# 40 characters; the server needs at least 32.
SECRET = "okr-pulse-client-tests-secret-0123456789"


def okr_pulse_bin() -> str:
    value = os.environ.get("OKR_PULSE_BIN")
    if not value:
        raise RuntimeError("OKR_PULSE_BIN must name the okr-pulse binary (run the tests with tests/clients/run.sh)")
    return value


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One okr-pulse process, up once GET /healthz answers 200."""

    def __init__(self, env=None):
        self.port = free_port()
        self.data_dir = tempfile.mkdtemp(prefix="okr-pulse-clients-")
        self.origin = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}/graphql"
        self.extra_env = env or {}
        self.log_path = os.path.join(self.data_dir, "server.log")
        self.process = None

    def env(self, **extra):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),
            "DATA_DIR": self.data_dir,
            "AUTH_JWT_SECRET": SECRET,
            "LISTEN_ADDR": f"127.0.0.1:{self.port}",
            "BIGQUERY_EMULATOR_HOST": "127.0.0.1:9",
            "GCE_METADATA_HOST": "127.0.0.1:9",
            "SCHEDULER_ENABLED": "false",
            **self.extra_env,
            **extra,
        }
        if "RUST_LOG" in os.environ:
            env["RUST_LOG"] = os.environ["RUST_LOG"]
        return env

    def start(self):
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [okr_pulse_bin()], env=self.env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"okr-pulse exited before it was up ({self.process.returncode}):\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.origin}/healthz", timeout=2) as response:
                    if response.status == 200:
                        return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"okr-pulse did not answer /healthz within 20 s:\n{self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def token(self, org="acme", email="admin@example.com", role="admin", ttl=None, secret=SECRET) -> str:
        args = [okr_pulse_bin(), "token", "--org", org, "--email", email, "--role", role]
        if ttl:
            args += ["--ttl", ttl]
        out = subprocess.run(
            args, env=self.env(AUTH_JWT_SECRET=secret), capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()

    def graphql(self, token: str, query: str, variables=None) -> dict:
        request = urllib.request.Request(
            f"{self.origin}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        if body.get("errors"):
            raise RuntimeError(f"{query[:60]}…: {body}")
        return body["data"]

    def make_key_result(self, token: str) -> dict:
        year = datetime.date.today().year
        objective = self.graphql(
            token,
            "mutation($i: CreateObjectiveInput!) { createObjective(input: $i) { id } }",
            {"i": {"title": "Live dashboards", "periodStart": f"{year}-01-01", "periodEnd": f"{year}-12-31"}},
        )["createObjective"]["id"]
        key_result = self.graphql(
            token,
            "mutation($i: CreateKeyResultInput!) { createKeyResult(input: $i) { id } }",
            {
                "i": {
                    "objectiveId": objective,
                    "title": "Subscribers",
                    "kind": "METRIC",
                    "startValue": 0,
                    "targetValue": 100,
                }
            },
        )["createKeyResult"]["id"]
        return {"objectiveId": objective, "keyResultId": key_result}

    def check_in(self, token: str, key_result_id: str, value: float):
        self.graphql(
            token,
            "mutation($i: CheckInInput!) { checkIn(input: $i) { id } }",
            {"i": {"keyResultId": key_result_id, "value": value}},
        )

    def memory_kib(self) -> dict:
        """VmRSS and VmHWM (peak) of the server process, in KiB."""
        values = {}
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
        return values


@pytest.fixture
def server():
    s = Server().start()
    yield s
    s.stop()


@pytest.fixture
def token(server):
    return server.token()


@pytest.fixture
def key_result(server, token):
    return server.make_key_result(token)["keyResultId"]


def run(coro, timeout: float):
    """Runs a test's coroutine with a deadline."""

    async def bounded():
        return await asyncio.wait_for(coro, timeout)

    return asyncio.run(bounded())


async def until(predicate, timeout: float, what: str, every: float = 0.01):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        await asyncio.sleep(every)
