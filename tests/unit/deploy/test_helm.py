"""The Helm chart helm/overseer, with a real helm binary.

The session fixture builds helm v3.22.0 from source with `go install` the
first time (scripts/ensure-helm.sh, a few minutes; Go module proxy only) and
reuses it afterwards. Rendered manifests are validated offline against the
Kubernetes JSON schemas shipped in the kubernetes-validate package.
"""

from __future__ import annotations

import base64
import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from .compose import REPO

CHART = REPO / "helm" / "overseer"
SCALED = CHART / "ci" / "scaled-values.yaml"
ENSURE_HELM = REPO / "scripts" / "ensure-helm.sh"
# The oldest Kubernetes the chart declares (Chart.yaml kubeVersion) and the
# newest the schema package ships.
K8S_VERSIONS = ["1.25.0", "1.37.0"]
SECRET_SETTINGS = {"kafka_sasl_password", "clickhouse_password"}

# The first test pays for building helm on a fresh machine (a few minutes on
# two shared cores); the project-wide 600 s timeout is too tight for that.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="session")
def helm() -> Path:
    done = subprocess.run(["bash", str(ENSURE_HELM)], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"building helm failed:\n{done.stderr[-4000:]}"
    path = Path(done.stdout.strip().splitlines()[-1])
    assert path.is_file()
    version = subprocess.run([str(path), "version", "--template", "{{.Version}}"],
                             capture_output=True, text=True, check=True).stdout
    assert version == "v3.22.0"
    return path


def run(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120)


def render(helm: Path, *args: str) -> list[dict[str, Any]]:
    done = run(helm, "template", "rel", str(CHART), "--namespace", "monitoring", *args)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def one(docs: list[dict[str, Any]], kind: str, name_suffix: str = "") -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix)]
    assert len(found) == 1, f"expected one {kind}*{name_suffix}, got {[d['metadata']['name'] for d in found]}"
    return found[0]


def container(docs: list[dict[str, Any]], name: str = "worker") -> dict[str, Any]:
    spec = one(docs, "Deployment")["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name)


def settings_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    return one(docs, "ConfigMap", "-settings")["data"]


@pytest.fixture(scope="module")
def default(helm: Path) -> list[dict[str, Any]]:
    return render(helm)


@pytest.fixture(scope="module")
def scaled(helm: Path) -> list[dict[str, Any]]:
    return render(helm, "-f", str(SCALED))


# --- lint and schema validation ----------------------------------------------

@pytest.mark.parametrize("values", [None, SCALED], ids=["default", "scaled"])
def test_lint_strict(helm: Path, values: Path | None) -> None:
    args = ["lint", "--strict", str(CHART)] + (["-f", str(values)] if values else [])
    done = run(helm, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("k8s", K8S_VERSIONS)
@pytest.mark.parametrize("mode", ["default", "scaled"])
def test_manifests_validate_against_kubernetes_schemas(mode: str, k8s: str,
                                                       request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(mode)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, k8s, strict=True)


def test_strict_validation_catches_an_unknown_field(default: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(one(default, "Deployment"))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"tcpSocket": {"port": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


def test_kinds(default: list[dict[str, Any]], scaled: list[dict[str, Any]]) -> None:
    assert sorted(d["kind"] for d in default) == [
        "ConfigMap", "Deployment", "Pod", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount"]
    assert sorted(d["kind"] for d in scaled) == [
        "ConfigMap", "ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Pod", "PodDisruptionBudget",
        "Service", "ServiceAccount"]


def test_helm_test_pod_checks_readiness_through_the_service(default: list[dict[str, Any]]) -> None:
    pod = one(default, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    service = one(default, "Service")
    selector = service["spec"]["selector"]
    assert not selector.items() <= pod["metadata"]["labels"].items(), "the test pod must not be a backend"
    script = pod["spec"]["containers"][0]["command"][-1]
    port = service["spec"]["ports"][0]["port"]
    assert f'"http://{service["metadata"]["name"]}:{port}/readyz"' in script
    compile(script, "test-ready", "exec")
    assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


def test_recommended_labels(scaled: list[dict[str, Any]]) -> None:
    for doc in scaled:
        labels = doc["metadata"]["labels"]
        for key in ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                    "app.kubernetes.io/managed-by", "helm.sh/chart"):
            assert key in labels, f"{doc['kind']} {doc['metadata']['name']} lacks {key}"
        assert doc["metadata"]["namespace"] == "monitoring"


# --- values.schema.json --------------------------------------------------------

BAD_VALUES = {
    "replicas as a word": {"replicaCount": "two"},
    "zero replicas": {"replicaCount": 0},
    "a password in settings": {"settings": {"clickhouse_password": "hunter2"}},
    "a typo in settings": {"settings": {"kafka_bootstrp": "kafka:9092"}},
    "a bootstrap without a port": {"settings": {"kafka_bootstrap": "kafka"}},
    "an unknown top-level key": {"replicas": 3},
    "the latest tag": {"image": {"tag": "latest"}},
    "a relative rules mount": {"rules": {"mountPath": "rules"}},
    "both PDB bounds": {"podDisruptionBudget": {"minAvailable": 1, "maxUnavailable": 1}},
    "an unknown log level": {"logLevel": "LOUD"},
}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_values_schema_rejects(helm: Path, tmp_path: Path, name: str) -> None:
    values = tmp_path / "bad.yaml"
    values.write_text(yaml.safe_dump(BAD_VALUES[name]))
    template = run(helm, "template", "rel", str(CHART), "-f", str(values))
    assert template.returncode != 0, f"helm template accepted {name}"
    assert "schema" in template.stderr
    lint = run(helm, "lint", "--strict", str(CHART), "-f", str(values))
    assert lint.returncode != 0, f"helm lint accepted {name}"


def test_values_schema_accepts_the_shipped_values() -> None:
    import jsonschema

    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    for path in (CHART / "values.yaml", SCALED):
        merged = yaml.safe_load((CHART / "values.yaml").read_text())
        merged.update(yaml.safe_load(path.read_text()))
        errors = [e.message for e in jsonschema.Draft7Validator(schema).iter_errors(merged)]
        assert errors == [], f"{path.name}: {errors}"


def test_settings_in_the_schema_are_real_non_secret_settings() -> None:
    from streams.settings import Settings

    schema = json.loads((CHART / "values.schema.json").read_text())
    allowed = set(schema["properties"]["settings"]["properties"])
    assert allowed <= set(Settings.model_fields), allowed - set(Settings.model_fields)
    assert not allowed & SECRET_SETTINGS


@pytest.mark.parametrize(("values", "message"), [
    (["--set", "replicaCount=13"], "13 worker replicas but settings.topic_partitions is 12"),
    (["-f", str(SCALED), "--set", "autoscaling.maxReplicas=30"], "30 worker replicas"),
    (["--set", "settings.topic_min_insync=4"], "topic_min_insync cannot exceed"),
    (["--set", "settings.kafka_security_protocol=SASL_SSL"], "kafka_sasl_mechanism is empty"),
    (["--set", "kafkaTls.enabled=true"], "kafkaTls.caSecret"),
])
def test_guards_the_schema_cannot_express(helm: Path, values: list[str], message: str) -> None:
    done = run(helm, "template", "rel", str(CHART), *values)
    assert done.returncode != 0
    assert message in done.stderr


# --- the Deployment -------------------------------------------------------------

@pytest.mark.parametrize("mode", ["default", "scaled"])
def test_pdb_and_service_select_the_deployment_pods(mode: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(mode)
    deployment = one(docs, "Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["selector"] == {"matchLabels": selector}
    assert one(docs, "Service")["spec"]["selector"] == selector
    assert ("maxUnavailable" in pdb) != ("minAvailable" in pdb)


def test_replicas_and_hpa(default: list[dict[str, Any]], scaled: list[dict[str, Any]]) -> None:
    assert one(default, "Deployment")["spec"]["replicas"] == 2
    assert one(default, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    deployment = one(scaled, "Deployment")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    hpa = one(scaled, "HorizontalPodAutoscaler")["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                     "name": deployment["metadata"]["name"]}
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
    assert one(scaled, "PodDisruptionBudget")["spec"]["minAvailable"] == 2


def test_three_replicas_without_hpa(helm: Path) -> None:
    docs = render(helm, "-f", str(SCALED), "--set", "autoscaling.enabled=false")
    assert one(docs, "Deployment")["spec"]["replicas"] == 3
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]


@pytest.mark.parametrize("mode", ["default", "scaled"])
def test_probes_hit_the_worker_port(mode: str, request: pytest.FixtureRequest) -> None:
    docs = request.getfixturevalue(mode)
    worker = container(docs)
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    web_port = int(settings_env(docs)["OVERSEER_WORKER_WEB_PORT"])
    assert web_port == 6066 == ports["http"]
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        get = worker[probe]["httpGet"]
        assert get["path"] == path
        assert ports.get(get["port"], get["port"]) == web_port
    assert settings_env(docs)["OVERSEER_WORKER_WEB_HOST"] == "0.0.0.0"
    service_port = one(docs, "Service")["spec"]["ports"][0]
    assert ports[service_port["targetPort"]] == web_port


def test_rules_configmap_is_mounted_where_rules_paths_points(scaled: list[dict[str, Any]],
                                                             tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from rules.engine import load_engine
    from streams.settings import Settings

    monkeypatch.setenv("OVERSEER_RULES_PATHS", settings_env(scaled)["OVERSEER_RULES_PATHS"])
    (rules_path,) = Settings().rules_paths
    pod = one(scaled, "Deployment")["spec"]["template"]["spec"]
    mounts = {m["name"]: m for m in container(scaled)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (volume,) = [v for v in volumes.values() if "configMap" in v]
    assert Path(mounts[volume["name"]]["mountPath"]) == rules_path
    assert mounts[volume["name"]]["readOnly"] is True
    assert "subPath" not in mounts[volume["name"]], "subPath mounts never see ConfigMap updates"
    rules_cm = one(scaled, "ConfigMap", "-rules")
    assert volume["configMap"]["name"] == rules_cm["metadata"]["name"]
    assert sorted(rules_cm["data"]) == ["site-egress.yaml", "site-payments.yaml"]
    # the embedded files are real rules: load them as the worker would
    for name, text in rules_cm["data"].items():
        (tmp_path / name).write_text(text)
    engine = load_engine([tmp_path])
    assert engine.stats["rules"] == 2


def test_default_uses_the_builtin_packs(default: list[dict[str, Any]]) -> None:
    assert "OVERSEER_RULES_PATHS" not in settings_env(default)
    assert not [d for d in default if d["metadata"]["name"].endswith("-rules")]


@pytest.mark.parametrize("mode", ["default", "scaled"])
def test_settings_configmap_is_read_by_settings(mode: str, request: pytest.FixtureRequest,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.settings import Settings

    docs = request.getfixturevalue(mode)
    env = settings_env(docs)
    values = yaml.safe_load((CHART / "values.yaml").read_text())["settings"]
    if mode == "scaled":
        values |= yaml.safe_load(SCALED.read_text())["settings"]
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = Settings()
    for key, value in values.items():
        if value != "":
            assert getattr(s, key) == value, key
    home = Path(env["OVERSEER_HOME"])
    assert s.signing_key_path is not None and s.signing_key_path.is_relative_to(home)


def test_secrets_never_reach_configmaps(helm: Path) -> None:
    marks = {"secrets.clickhousePassword": "ch-pw-7f3a", "secrets.kafkaSaslPassword": "sasl-pw-91bc"}
    docs = render(helm, *[a for k, v in marks.items() for a in ("--set", f"{k}={v}")])
    for doc in docs:
        if doc["kind"] != "Secret":
            text = yaml.safe_dump(doc)
            for mark in marks.values():
                assert mark not in text, f"{mark} rendered into {doc['kind']}"
    secret = one(docs, "Secret")["data"]
    decoded = {k: base64.b64decode(v).decode() for k, v in secret.items()}
    assert decoded["clickhouse-password"] == "ch-pw-7f3a"
    assert decoded["kafka-sasl-password"] == "sasl-pw-91bc"
    env = {e["name"]: e for e in container(docs)["env"]}
    ref = env["OVERSEER_CLICKHOUSE_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert (ref["name"], ref["key"]) == (one(docs, "Secret")["metadata"]["name"], "clickhouse-password")


def test_existing_secret(scaled: list[dict[str, Any]]) -> None:
    assert not [d for d in scaled if d["kind"] == "Secret"]
    env = {e["name"]: e for e in container(scaled)["env"]}
    for var, key in (("OVERSEER_CLICKHOUSE_PASSWORD", "ch-password"),
                     ("OVERSEER_KAFKA_SASL_PASSWORD", "sasl-password")):
        ref = env[var]["valueFrom"]["secretKeyRef"]
        assert (ref["name"], ref["key"]) == ("overseer-prod", key)
    volumes = {v["name"]: v for v in one(scaled, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    signing = volumes["signing-key"]["secret"]
    assert signing["secretName"] == "overseer-prod"
    assert signing["items"] == [{"key": "killswitch.pem", "path": "killswitch.pem"}]
    assert "optional" not in signing, "a missing signing key must stop the pod, not fork the key"


def test_signing_key_reaches_the_worker(default: list[dict[str, Any]], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from streams.killswitch.signing import load_or_create_signing_key

    init = container(default, "signing-key")
    key_path = settings_env(default)["OVERSEER_SIGNING_KEY_PATH"]
    assert init["command"][-1] == key_path
    source = init["command"][-2]
    mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    assert source == f"{mounts['signing-key']}/signing-key.pem"
    assert key_path.startswith(mounts["state"] + "/")
    worker_mounts = {m["name"]: m["mountPath"] for m in container(default)["volumeMounts"]}
    assert worker_mounts["state"] == mounts["state"]
    # the generated key is one the worker loads (Ed25519, PKCS#8 PEM)
    pem = base64.b64decode(one(default, "Secret")["data"]["signing-key.pem"])
    (tmp_path / "k.pem").write_bytes(pem)
    signer = load_or_create_signing_key(tmp_path / "k.pem", "k8s-1")
    assert isinstance(signer.private_key, Ed25519PrivateKey)
    assert signer.sign_bytes(b"payload")
    assert (tmp_path / "k.pem").read_bytes() == pem, "an existing key must be used, not replaced"
    assert one(default, "Secret")["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_locked_down_pod(scaled: list[dict[str, Any]]) -> None:
    pod = one(scaled, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    assert one(scaled, "ServiceAccount")["automountServiceAccountToken"] is False
    volumes = {v["name"]: v for v in pod["volumes"]}
    for c in pod["containers"] + pod["initContainers"]:
        ctx = c["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"]["drop"] == ["ALL"]
    worker = container(scaled)
    writable = {m["mountPath"] for m in worker["volumeMounts"]
                if "emptyDir" in volumes[m["name"]] and not m.get("readOnly")}
    env = settings_env(scaled)
    assert {env["OVERSEER_HOME"], "/tmp"} <= writable
    assert worker["workingDir"] in writable
    assert worker["resources"]["limits"]["memory"]
    assert worker["resources"]["requests"]["cpu"]


def _checksums(docs: list[dict[str, Any]]) -> dict[str, str]:
    annotations = one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    return {k: v for k, v in annotations.items() if k.startswith("checksum/")}


def test_checksums_roll_pods_on_config_change(helm: Path, default: list[dict[str, Any]]) -> None:
    base = _checksums(default)
    assert set(base) == {"checksum/settings", "checksum/rules", "checksum/secret"}
    assert _checksums(render(helm)) == base, "same values must not roll pods"
    changed = _checksums(render(helm, "--set", "settings.batch_max=500"))
    assert changed["checksum/settings"] != base["checksum/settings"]
    assert changed["checksum/rules"] == base["checksum/rules"]
    rules = _checksums(render(helm, "--set-string", "rules.files.x\\.yaml=- required_engine_version: 1"))
    assert rules["checksum/rules"] != base["checksum/rules"]
    secret = _checksums(render(helm, "--set", "secrets.clickhousePassword=rotated"))
    assert secret["checksum/secret"] != base["checksum/secret"]
    assert secret["checksum/settings"] == base["checksum/settings"]
