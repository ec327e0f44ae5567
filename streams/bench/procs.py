"""Subprocesses of a bench run, and the peak RSS of each (psutil, sampled)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil
from streams.kafka.launcher import free_port



class PeakRss:
    """Samples the resident set size of some processes every ``interval`` s; keeps the peak of each."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="bench-rss")
        self._thread.start()

    def watch(self, pid: int) -> None:
        self._procs[pid] = psutil.Process(pid)

    def peak_mb(self, pid: int) -> float:
        self._sample()
        return round(self.peaks.get(pid, 0) / 1e6, 1)

    def _sample(self) -> None:
        for pid, proc in list(self._procs.items()):
            try:
                self.peaks[pid] = max(self.peaks.get(pid, 0), proc.memory_info().rss)
            except psutil.Error:
                self._procs.pop(pid, None)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def python_module(module: str, *args: str, env: dict[str, str] | None = None, log: Path | None = None
                  ) -> subprocess.Popen[bytes]:
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    try:
        return subprocess.Popen([sys.executable, "-m", module, *args], env={**os.environ, **(env or {})},
                                stdout=subprocess.PIPE if log is None else out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    finally:
        if log:
            out.close()  # type: ignore[union-attr]


def stop(proc: subprocess.Popen[bytes] | None, timeout: float = 20.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


class Worker:
    """A real ``overseer worker`` subprocess with its own home (its own embedded ClickHouse)."""

    def __init__(self, home: Path, bootstrap: str, prefix: str, partitions: int, env: dict[str, str]) -> None:
        self.home = home
        self.port = free_port()
        self.log = home / "worker.log"
        self.env = {"OVERSEER_HOME": str(home), "OVERSEER_KAFKA_BOOTSTRAP": bootstrap,
                    "OVERSEER_TOPIC_PREFIX": prefix, "OVERSEER_APP_ID": f"{prefix}-app",
                    "OVERSEER_WORKER_WEB_PORT": str(self.port), "OVERSEER_TOPIC_PARTITIONS": str(partitions),
                    **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.proc = python_module("streams.cli", "worker", env=self.env, log=self.log)

    def wait_ready(self, timeout: float = 180.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.sql("SELECT 1")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"worker not ready after {timeout}s:\n{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
            return json.loads(r.read())

    def sql(self, query: str) -> list[list[Any]]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}/overseer/sql",
                                     data=json.dumps({"sql": query}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return list(json.loads(r.read())["rows"])

    def stop(self) -> None:
        stop(self.proc)
