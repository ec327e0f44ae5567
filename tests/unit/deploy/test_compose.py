"""docker-compose.yml against the Compose Specification, plus the checks a
schema cannot make (dependencies, pinned images, secrets, the cluster profile,
the files it mounts). Docker is not needed: see compose.py."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from .compose import (
    COMPOSE_FILE,
    REPO,
    MissingVariable,
    active_services,
    env_of,
    interpolate,
    load,
    read_env_file,
    references,
)

HERE = REPO / "tests" / "unit" / "deploy"
SCHEMA_FILE = HERE / "compose-spec.json"
SCHEMA_SHA256 = "bc50c2d79102aed8df21b3a13e56c9396c7a06da6cff5ce37629f2ee7eb41735"
CLUSTER_ENV = REPO / "deploy" / "cluster.env"
REQUIRED_SECRETS = {"CLICKHOUSE_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}
LOCAL_SECRETS = {name: f"test-{name.lower()}" for name in REQUIRED_SECRETS}


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return load()


@pytest.fixture(scope="module")
def single(raw: dict[str, Any]) -> dict[str, Any]:
    """The file as `docker compose up` sees it with only the secrets exported."""
    return interpolate(raw, LOCAL_SECRETS)


@pytest.fixture(scope="module")
def cluster(raw: dict[str, Any]) -> dict[str, Any]:
    """The file as `docker compose --env-file deploy/cluster.env up` sees it."""
    return interpolate(raw, {**read_env_file(CLUSTER_ENV), **LOCAL_SECRETS})


def errors(validator: jsonschema.Draft7Validator, doc: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


# --- the schema itself ------------------------------------------------------

def test_vendored_schema_is_the_recorded_revision() -> None:
    assert hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest() == SCHEMA_SHA256
    assert SCHEMA_SHA256 in (HERE / "README.md").read_text(encoding="utf-8")
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft-07/schema"


# --- validation -------------------------------------------------------------

def test_file_validates_before_interpolation(validator: jsonschema.Draft7Validator,
                                             raw: dict[str, Any]) -> None:
    assert errors(validator, raw) == []


@pytest.mark.parametrize("mode", ["single", "cluster"])
def test_file_validates_after_interpolation(validator: jsonschema.Draft7Validator, mode: str,
                                            request: pytest.FixtureRequest) -> None:
    assert errors(validator, request.getfixturevalue(mode)) == []


MUTATIONS = {
    "typo in a service key": lambda d: d["services"]["worker"].__setitem__(
        "healtcheck", d["services"]["worker"].pop("healthcheck")),
    "typo in a top-level key": lambda d: d.__setitem__("volume", d.pop("volumes")),
    "unknown depends_on condition": lambda d: d["services"]["worker"]["depends_on"]["kafka"].__setitem__(
        "condition", "service_ready"),
    "replicas as a list": lambda d: d["services"]["worker"]["deploy"].__setitem__("replicas", [2]),
    "typo in a healthcheck key": lambda d: d["services"]["clickhouse"]["healthcheck"].__setitem__(
        "intervall", "10s"),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_schema_rejects_a_broken_copy(validator: jsonschema.Draft7Validator, raw: dict[str, Any],
                                      name: str) -> None:
    broken = copy.deepcopy(raw)
    MUTATIONS[name](broken)
    assert errors(validator, broken), f"{name} was accepted"


def test_schema_rejects_a_typo_in_the_file_text(validator: jsonschema.Draft7Validator) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    assert "    depends_on:\n" in text
    broken = yaml.safe_load(text.replace("    depends_on:\n", "    depend_on:\n", 1))
    assert any("depend_on" in e for e in errors(validator, broken))


# --- variables and secrets --------------------------------------------------

def test_every_variable_has_a_default_or_is_a_required_secret(raw: dict[str, Any]) -> None:
    refs = references(raw)
    assert refs, "the file is expected to be configurable through variables"
    loose = sorted({r.name for r in refs if not (r.has_default or r.required)})
    assert loose == [], f"variables with neither a default nor ${{VAR:?}}: {loose}"
    required = {r.name for r in refs if r.required}
    assert required == REQUIRED_SECRETS
    for r in refs:
        if r.required:
            assert r.arg and "docs/operations.md" in r.arg, f"{r.name}: say where to read about it"


@pytest.mark.parametrize("missing", sorted(REQUIRED_SECRETS))
def test_compose_refuses_to_start_without_a_secret(raw: dict[str, Any], missing: str) -> None:
    env = {k: v for k, v in LOCAL_SECRETS.items() if k != missing}
    with pytest.raises(MissingVariable, match=missing):
        interpolate(raw, env)


def test_required_secrets_are_documented() -> None:
    ops = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    for name in REQUIRED_SECRETS:
        assert name in ops


def test_no_secret_is_written_in_the_file(raw: dict[str, Any]) -> None:
    secretish = re.compile(r"(PASSWORD|SECRET|TOKEN|CREDENTIAL)", re.I)
    for name, svc in raw["services"].items():
        for key, value in env_of(svc).items():
            if secretish.search(key):
                assert re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]+\}", value), \
                    f"{name}.{key} must come from a required variable, not {value!r}"


def test_secrets_do_not_leak_into_the_cluster_env_file() -> None:
    assert not REQUIRED_SECRETS & set(read_env_file(CLUSTER_ENV))


# --- services ---------------------------------------------------------------

def test_depends_on_targets_exist_and_conditions_can_be_met(single: dict[str, Any]) -> None:
    services = single["services"]
    for name, svc in services.items():
        for target, dep in (svc.get("depends_on") or {}).items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert not services[target].get("profiles"), f"{name} depends on profiled {target}"
            if dep["condition"] == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck"
            if dep["condition"] == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} must be one-shot"


def test_images_are_pinned(single: dict[str, Any]) -> None:
    for name, svc in single["services"].items():
        image = svc.get("image")
        assert image or svc.get("build"), f"{name}: neither image nor build"
        if svc.get("build"):
            assert (REPO / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"{name}: image {image} has no tag"
        assert tag != "latest" and re.search(r"\d", tag), f"{name}: tag {tag!r} is not a version"
    assert ":latest" not in COMPOSE_FILE.read_text(encoding="utf-8")


def test_official_images(single: dict[str, Any]) -> None:
    images = {svc["image"].rpartition(":")[0] for svc in single["services"].values() if not svc.get("build")}
    assert images == {"apache/kafka", "clickhouse/clickhouse-server",
                      "otel/opentelemetry-collector-contrib", "grafana/grafana"}
    assert single["services"]["kafka"]["image"] == "apache/kafka:4.1.1"


def test_worker(single: dict[str, Any]) -> None:
    worker = single["services"]["worker"]
    assert worker["entrypoint"] == ["overseer", "worker"]
    assert worker["deploy"]["replicas"] == 2
    assert "ports" not in worker, "two replicas cannot publish the same host port"
    env = env_of(worker)
    assert env["OVERSEER_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert env["OVERSEER_CLICKHOUSE_DSN"] == "http://clickhouse:8123"
    assert env["OVERSEER_CLICKHOUSE_PASSWORD"] == LOCAL_SECRETS["CLICKHOUSE_PASSWORD"]
    assert env["OVERSEER_CLICKHOUSE_USERNAME"] == env_of(single["services"]["clickhouse"])["CLICKHOUSE_USER"]
    port = env["OVERSEER_WORKER_WEB_PORT"]
    test = " ".join(worker["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in test and port == "6066"
    assert env["OVERSEER_WORKER_WEB_HOST"] == "0.0.0.0"
    deps = worker["depends_on"]
    assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert deps["kafka"]["condition"] == deps["clickhouse"]["condition"] == "service_healthy"
    migrate = single["services"]["migrate"]
    assert migrate["entrypoint"] == ["overseer", "db", "migrate"]
    assert env_of(migrate) == env


def test_worker_environment_is_accepted_by_settings(single: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.settings import Settings

    for key, value in env_of(single["services"]["worker"]).items():
        monkeypatch.setenv(key, value)
    s = Settings()
    assert s.kafka_bootstrap == "kafka:9092"
    assert s.clickhouse_dsn == "http://clickhouse:8123"
    assert s.clickhouse_password is not None
    assert s.clickhouse_password.get_secret_value() == LOCAL_SECRETS["CLICKHOUSE_PASSWORD"]
    assert s.worker_web_port == 6066
    assert str(s.signing_key_path).startswith("/var/lib/overseer/keys/")


def test_workers_share_the_signing_key_volume(single: dict[str, Any]) -> None:
    keys, worker = single["services"]["keys"], single["services"]["worker"]
    assert env_of(keys)["OVERSEER_SIGNING_KEY_PATH"] == env_of(worker)["OVERSEER_SIGNING_KEY_PATH"]
    assert env_of(keys)["OVERSEER_SIGNING_KEY_ID"] == env_of(worker)["OVERSEER_SIGNING_KEY_ID"]
    key_dir = env_of(worker)["OVERSEER_SIGNING_KEY_PATH"].rsplit("/", 1)[0]
    for svc in (keys, worker):
        assert f"overseer-keys:{key_dir}" in svc["volumes"]
    compile(keys["command"][0], "keys", "exec")  # the one-shot's script is valid Python


def _brokers(doc: dict[str, Any], profiles: set[str]) -> dict[str, dict[str, str]]:
    return {name: env_of(svc) for name, svc in active_services(doc, profiles).items()
            if svc["image"].startswith("apache/kafka:")}


def _check_quorum(brokers: dict[str, dict[str, str]]) -> None:
    voters = {env["KAFKA_CONTROLLER_QUORUM_VOTERS"] for env in brokers.values()}
    assert len(voters) == 1, f"brokers disagree on the quorum: {voters}"
    expected = {f"{env['KAFKA_NODE_ID']}@{name}:9093" for name, env in brokers.items()}
    assert set(voters.pop().split(",")) == expected
    assert len({env["CLUSTER_ID"] for env in brokers.values()}) == 1
    assert len({env["KAFKA_NODE_ID"] for env in brokers.values()}) == len(brokers)
    for name, env in brokers.items():
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_ADVERTISED_LISTENERS"].startswith(f"PLAINTEXT://{name}:9092,")


def test_single_node_kafka(single: dict[str, Any]) -> None:
    brokers = _brokers(single, set())
    assert list(brokers) == ["kafka"]
    _check_quorum(brokers)
    assert brokers["kafka"]["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "1"
    assert brokers["kafka"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_cluster_profile(cluster: dict[str, Any]) -> None:
    env_file = read_env_file(CLUSTER_ENV)
    profiles = set(env_file["COMPOSE_PROFILES"].split(","))
    assert profiles == {"cluster"}
    brokers = _brokers(cluster, profiles)
    assert sorted(brokers) == ["kafka", "kafka-2", "kafka-3"]
    _check_quorum(brokers)
    for env in brokers.values():
        assert env["KAFKA_DEFAULT_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
        assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "3"
        assert env["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"] == "2"
    worker = env_of(cluster["services"]["worker"])
    assert {h.split(":")[0] for h in worker["OVERSEER_KAFKA_BOOTSTRAP"].split(",")} == set(brokers)
    assert worker["OVERSEER_TOPIC_REPLICATION"] == "3"
    assert worker["OVERSEER_TOPIC_MIN_INSYNC"] == "2"


def test_bootstrap_names_running_brokers(single: dict[str, Any]) -> None:
    brokers = _brokers(single, set())
    bootstrap = env_of(single["services"]["worker"])["OVERSEER_KAFKA_BOOTSTRAP"]
    assert {h.split(":")[0] for h in bootstrap.split(",")} <= set(brokers)


def test_published_ports_are_loopback_only(single: dict[str, Any]) -> None:
    for name, svc in single["services"].items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on all interfaces"


def test_named_volumes_are_declared_and_used(single: dict[str, Any]) -> None:
    declared = set(single["volumes"])
    used = set()
    for svc in single["services"].values():
        for vol in svc.get("volumes", []):
            source = vol.split(":", 1)[0]
            if source.startswith((".", "/")):
                assert (REPO / source).exists(), f"bind mount source {source} missing"
            else:
                used.add(source)
    assert used == declared


# --- the files compose mounts -----------------------------------------------

def test_otel_collector_config(single: dict[str, Any]) -> None:
    conf = yaml.safe_load((REPO / "deploy" / "otel-collector.yaml").read_text(encoding="utf-8"))
    for kind in ("receivers", "processors", "exporters"):
        for pipeline, spec in conf["service"]["pipelines"].items():
            for component in spec.get(kind, []):
                assert component in conf[kind], f"{pipeline} uses undefined {kind[:-1]} {component}"
    for ext in conf["service"].get("extensions", []):
        assert ext in conf["extensions"]
    assert "otlp" in conf["service"]["pipelines"]["traces"]["receivers"]
    assert {"debug", "prometheus"} <= set(conf["service"]["pipelines"]["metrics"]["exporters"])
    collector = single["services"]["otel-collector"]
    published = {int(p.rsplit(":", 1)[1]) for p in collector["ports"]}
    http = int(conf["receivers"]["otlp"]["protocols"]["http"]["endpoint"].rsplit(":", 1)[1])
    grpc = int(conf["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"].rsplit(":", 1)[1])
    prom = int(conf["exporters"]["prometheus"]["endpoint"].rsplit(":", 1)[1])
    assert {http, grpc, prom} <= published
    endpoint = env_of(single["services"]["worker"])["OTEL_EXPORTER_OTLP_ENDPOINT"]
    assert endpoint == f"http://otel-collector:{http}"
    mount = next(v for v in collector["volumes"] if "otel-collector.yaml" in v)
    assert collector["command"] == [f"--config={mount.split(':')[1]}"]


def test_grafana_clickhouse_datasource(single: dict[str, Any]) -> None:
    grafana = single["services"]["grafana"]
    env = env_of(grafana)
    assert "grafana-clickhouse-datasource" in env["GF_INSTALL_PLUGINS"].split(",")
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning:ro" in grafana["volumes"]
    path = REPO / "deploy" / "grafana" / "provisioning" / "datasources" / "clickhouse.yaml"
    provisioning = yaml.safe_load(path.read_text(encoding="utf-8"))
    (ds,) = provisioning["datasources"]
    assert ds["type"] == "grafana-clickhouse-datasource"
    assert ds["jsonData"]["host"] in single["services"]
    assert ds["jsonData"]["port"] == 8123 and ds["jsonData"]["protocol"] == "http"
    assert ds["secureJsonData"]["password"] == "${CLICKHOUSE_PASSWORD}"
    used = {r.name for r in references(provisioning)}
    assert used == {"CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD"}
    for name in used:
        assert env.get(name), f"grafana container does not set {name} used by {path.name}"
    assert env["CLICKHOUSE_PASSWORD"] == env_of(single["services"]["clickhouse"])["CLICKHOUSE_PASSWORD"]


def test_grafana_dashboard_provider_points_into_the_mount() -> None:
    base = REPO / "deploy" / "grafana" / "provisioning"
    (provider,) = yaml.safe_load((base / "dashboards" / "overseer.yaml").read_text())["providers"]
    container_path = provider["options"]["path"]
    assert container_path.startswith("/etc/grafana/provisioning/")
    assert (base / container_path.removeprefix("/etc/grafana/provisioning/")).is_dir()


def test_dockerfile() -> None:
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert re.search(r"^RUN pip install \.", text, re.M)
    assert re.search(r'^ENTRYPOINT \["overseer", "worker"\]$', text, re.M)
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and not user[-1].startswith(("0", "root"))
    assert re.search(r"^EXPOSE 6066$", text, re.M)
