"""The local full stack as real processes: what `cqo stack`, the demo, the end-to-end
tests and the benchmarks start (compose runs the same `cqo serve` commands).

Each process gets its own database (a SQLite file in the stack folder, or a schema of
its own on a PostgreSQL server), its own port, and the same broker and keys folder.

The folder keeps the record: `stack.json` (names, ports, pids; no secrets) and
`stack.env.json` (0600: each process's environment - database, schema, keys folder and
the settings its config reads that were set when the stack came up), so that one
process can be stopped, started or restarted later, from another shell, as it was.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

from shared.config import ENV_VAR
from cqo.runner import PortInUse, probe_port

CITY_PORTS = {"registry": 8001, "talent": 8002, "notify": 8003}
FIRST_COUNTY_PORT = 8011
STOP_TIMEOUT_S = 12.0


@dataclass
class ProcessSpec:
    name: str             # registry, talent, notify, filing_130921 ...
    service: str          # the `cqo serve` argument
    port: int
    county: str | None = None
    env: dict = field(default_factory=dict)
    pid: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


class StackError(RuntimeError):
    pass


class Stack:
    def __init__(self, workdir: str | Path, *, amqp_uri: str, counties=("130921", "130922"),
                 services=("registry",), database_url: str | None = None,
                 schema_prefix: str = "cqo", port_offset: int = 0, extra_env: dict | None = None):
        self.workdir = Path(workdir).resolve()
        self.amqp_uri = amqp_uri
        self.database_url = database_url
        self.specs: list[ProcessSpec] = []
        for name in services:
            self.specs.append(ProcessSpec(name, name, CITY_PORTS[name] + port_offset))
        for i, county in enumerate(counties):
            self.specs.append(ProcessSpec(f"filing_{county}", "filing",
                                          FIRST_COUNTY_PORT + i + port_offset, county))
        for spec in self.specs:
            spec.env = {
                **_settings_in_environment(spec.service),
                "AMQP_URI": amqp_uri,
                "WEB_SERVER_ADDRESS": f"127.0.0.1:{spec.port}",
                "DEV_KEYS_DIR": str(self.workdir / "keys"),
                **self._database_env(spec, schema_prefix),
                **(extra_env or {}),
            }
            if spec.county:
                spec.env["COUNTY_CODE"] = spec.county
        self.processes: dict[str, subprocess.Popen] = {}

    def _database_env(self, spec: ProcessSpec, schema_prefix: str) -> dict:
        if self.database_url:
            return {"DATABASE_URL": self.database_url, "DATABASE_SCHEMA": f"{schema_prefix}_{spec.name}"}
        return {"DATABASE_URL": f"sqlite:///{self.workdir / (spec.name + '.db')}", "DATABASE_SCHEMA": ""}

    def spec(self, name: str) -> ProcessSpec:
        found = next((s for s in self.specs if s.name == name), None)
        if found is None:
            raise StackError(f"服务栈中没有名为“{name}”的服务，可选："
                             f"{'、'.join(s.name for s in self.specs)}")
        return found

    # -- lifecycle ------------------------------------------------------------------------
    def start(self, names=None, *, wait: float = 60.0, on_ready=None) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        chosen = [s for s in self.specs if names is None or s.name in names]
        for spec in chosen:
            probe_port(f"127.0.0.1:{spec.port}")
        for spec in chosen:
            self._spawn(spec)
        self._save()  # before waiting: a caller killed now still leaves a record to stop
        for spec in chosen:
            self.wait_healthy(spec, timeout=wait)
            if on_ready:
                on_ready(spec)
        self._save()

    def _spawn(self, spec: ProcessSpec) -> None:
        args = [sys.executable, "-m", "cqo.cli", "serve", spec.service]
        if spec.county:
            args += ["--county", spec.county]
        log = open(self.workdir / f"{spec.name}.log", "ab")
        env = {**os.environ, **spec.env, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   cwd=self.workdir, start_new_session=True)
        log.close()
        spec.pid = process.pid
        self.processes[spec.name] = process

    def wait_healthy(self, spec: ProcessSpec, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            process = self.processes.get(spec.name)
            if process is not None and process.poll() is not None:
                raise StackError(f"{spec.name} 启动失败（退出码 {process.returncode}），"
                                 f"详见日志 {self.workdir / (spec.name + '.log')}")
            if self.healthy(spec):
                return
            time.sleep(0.2)
        raise StackError(f"{spec.name} 在 {timeout:.0f} 秒内未就绪，详见日志 "
                         f"{self.workdir / (spec.name + '.log')}")

    @staticmethod
    def healthy(spec: ProcessSpec) -> bool:
        try:
            return requests.get(spec.base_url + "/api/v1/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Fault injection: kill one process without a chance to clean up."""
        spec = self.spec(name)
        os.kill(spec.pid, sig)
        process = self.processes.get(name)
        if process is not None:
            process.wait(timeout=30)

    def restart(self, name: str, wait: float = 60.0) -> None:
        spec = self.spec(name)
        self._spawn(spec)
        self.wait_healthy(spec, timeout=wait)
        self._save()

    def running(self, name: str) -> bool:
        spec = self.spec(name)
        return bool(spec.pid and _alive(spec.pid))

    def start_one(self, name: str, wait: float = 60.0) -> ProcessSpec:
        """Start one recorded process again, with its recorded environment; the record
        follows (the new pid, or none if it did not come up)."""
        spec = self.spec(name)
        if not spec.env:
            raise StackError(f"服务栈记录中没有 {name} 的启动环境（由旧版本启动），"
                             "请先运行 cqo stack down，再 cqo stack up")
        if self.running(name):
            raise StackError(f"{name} 已在运行（进程号 {spec.pid}）")
        probe_port(f"127.0.0.1:{spec.port}")
        self._spawn(spec)
        self._save()  # before waiting: a caller killed now still leaves a record to stop
        try:
            self.wait_healthy(spec, timeout=wait)
        except StackError:
            if not self.running(name):
                spec.pid = None
                self._save()
            raise
        return spec

    def stop(self, names=None) -> list[str]:
        """SIGTERM, then SIGKILL after a timeout (an idle nameko service may not notice
        a SIGTERM until it is woken). Returns the names that had to be killed."""
        chosen = [s for s in self.specs if s.pid and (names is None or s.name in names)]
        for spec in chosen:
            _signal(spec.pid, signal.SIGTERM)
        killed = []
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for spec in chosen:
            while _alive(spec.pid) and time.monotonic() < deadline:
                self._reap(spec)
                time.sleep(0.1)
            if _alive(spec.pid):
                _signal(spec.pid, signal.SIGKILL)
                killed.append(spec.name)
            self._reap(spec)
            spec.pid = None
        self._save()
        return killed

    def _reap(self, spec: ProcessSpec) -> None:
        process = self.processes.get(spec.name)
        if process is not None:
            process.poll()

    def status(self) -> list[dict]:
        return [{"name": s.name, "pid": s.pid, "port": s.port,
                 "running": bool(s.pid and _alive(s.pid)), "healthy": self.healthy(s)}
                for s in self.specs]

    # -- persistence, so `cqo stack down|stop|start|restart` in another shell find them ---
    def _save(self) -> None:
        # the environments hold secrets (token secret, database password): their own
        # owner-only file, so that stack.json can be shown or shared
        self.workdir.mkdir(parents=True, exist_ok=True)
        specs = [{k: v for k, v in asdict(s).items() if k != "env"} for s in self.specs]
        _write_private(self.workdir / ENV_RECORD, {s.name: s.env for s in self.specs})
        _write_private(self.workdir / RECORD, {"specs": specs})

    @classmethod
    def load(cls, workdir: str | Path) -> "Stack":
        path = Path(workdir) / RECORD
        if not path.exists():
            raise StackError(f"{workdir} 中没有正在运行的服务栈记录")
        data = json.loads(path.read_text(encoding="utf-8"))
        env_path = Path(workdir) / ENV_RECORD
        envs = json.loads(env_path.read_text(encoding="utf-8")) if env_path.exists() else {}
        stack = cls.__new__(cls)
        stack.workdir, stack.amqp_uri, stack.database_url = Path(workdir).resolve(), None, None
        stack.specs = [ProcessSpec(**s, env=envs.get(s["name"], {})) for s in data["specs"]]
        stack.processes = {}
        return stack


RECORD, ENV_RECORD = "stack.json", "stack.env.json"


def _write_private(path: Path, data) -> None:
    """Owner-only, and replaced whole: a reader never sees half a record."""
    from shared.keys import write_private

    write_private(path, json.dumps(data, ensure_ascii=False, indent=2))


def _settings_in_environment(service: str) -> dict:
    """The variables the service's config reads that are set in this environment: they
    go into the record, so a restart from another shell gets the same settings."""
    from cqo.service_support import default_config_path

    names = {m.group("name") for m in ENV_VAR.finditer(default_config_path(service).read_text(
        encoding="utf-8"))}
    return {name: os.environ[name] for name in sorted(names) if name in os.environ}


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        if waited == pid:
            return False
    except ChildProcessError:
        pass  # not our child (started by another `cqo stack` call)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


__all__ = ["Stack", "StackError", "ProcessSpec", "PortInUse"]
