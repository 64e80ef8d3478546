"""deploy/: the image recipe, the compose topology, the Kubernetes manifests, Temporal's values.

All offline: the Compose specification's JSON schema ships with check-jsonschema, the
Kubernetes schemas with kubernetes-validate (pinned to KUBERNETES_VERSION below), and the
kustomization is rendered by tests/kustomize.py (and compared with `kubectl kustomize` where
kubectl is installed). No Docker engine is needed.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from core.settings import Settings
from tests.conftest import ROOT
from tests.kustomize import render

DEPLOY = ROOT / "deploy"
KUBERNETES_VERSION = "1.33.0"
SENSITIVE = re.compile(r"PASSWORD|SECRET|_KEYS?$|KEY$|DATABASE__URL|API_KEY|JWKS|ISSUER")


# ---------------------------------------------------------------- settings names


def _is_setting(env_name: str) -> bool:
    """REHABFLOW_A__B__C names a field of Settings (extra names would be silently ignored)."""
    assert env_name.startswith("REHABFLOW_"), env_name
    model: type[BaseModel] | None = Settings
    for part in env_name.removeprefix("REHABFLOW_").lower().split("__"):
        if model is None or part not in model.model_fields:
            return False
        annotation = model.model_fields[part].annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    return True


def test_the_settings_check_knows_a_typo() -> None:
    assert _is_setting("REHABFLOW_TEMPORAL__TLS__CA_FILE")
    assert not _is_setting("REHABFLOW_TEMPORAL__TLS__CA_FIEL")


# ---------------------------------------------------------------- image


def test_dockerfile_is_multi_stage_non_root_precompiled_without_dev_dependencies() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, re.MULTILINE)
    assert stages == ["build", "runtime"]
    runtime = text.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert "COPY --from=build /opt/venv /opt/venv" in runtime
    assert "pip install" not in runtime and "[dev]" not in text
    assert "compileall" in text.split("AS runtime", 1)[0]
    # Every package of the project is copied into the image (a new one must be added).
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = re.findall(r'"(\w+)\*"', pyproject.split("[tool.setuptools.packages.find]")[1])
    for package in set(packages) - {"deploy"}:
        assert f"COPY {package}/ {package}/" in text, package
    ignored = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and line[0] != "#"
    ]
    assert ignored[0] == "*"  # an allow-list: tests, .venv, .data and keys never enter
    for package in set(packages) - {"deploy"}:
        assert f"!{package}/" in ignored


# ---------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def test_compose_file_is_valid_against_the_compose_specification() -> None:
    check = subprocess.run(
        [
            str(Path(sys.executable).parent / "check-jsonschema"),
            "--builtin-schema",
            "vendor.compose-spec",
            str(DEPLOY / "compose.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_compose_schema_refuses_a_misspelt_field(compose: dict[str, Any]) -> None:
    schema = json.loads(
        (files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json").read_text()
    )
    broken = copy.deepcopy(compose)
    broken["services"]["worker"]["deploy"] = {"replica": 2}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema)


def test_compose_topology(compose: dict[str, Any]) -> None:
    services = compose["services"]
    rehabflow = {name: s for name, s in services.items() if "rehabflow" in str(s.get("image"))}
    assert set(rehabflow) == {"migrate", "api", "worker"}
    assert services["migrate"]["command"] == ["alembic", "upgrade", "head"]
    assert services["worker"]["command"] == ["python", "worker.py"]
    assert "api.app:app_factory" in services["api"]["command"]
    for name in ("api", "worker"):
        assert services[name]["deploy"]["replicas"] == 2
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
        assert services[name]["read_only"] is True
    temporal = services["temporal"]["environment"]
    assert temporal["DB"] == "postgres12" and temporal["POSTGRES_SEEDS"] == "temporal-db"
    assert services["temporal-ui"]["environment"]["TEMPORAL_CODEC_ENDPOINT"].endswith("/codec")
    assert services["smtp-relay"]["profiles"] == ["smtp"]
    # Search attributes the workflows need are created in the namespace before they start.
    setup = " ".join(services["temporal-setup"]["command"])
    for attribute in ("RehabStage", "RehabUnit", "RehabOverdue"):
        assert attribute in setup
    # The script (compose's `$$` is a literal `$`) parses as shell.
    subprocess.run(["sh", "-n", "-c", setup.replace("$$", "$")], check=True, timeout=10)


def test_compose_holds_no_secret_value(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        for key, value in environment.items():
            if re.search(r"PASSWORD|PWD|SECRET|KEYS?$|DATABASE__URL", key):
                assert "${" in str(value), f"{name}.{key} holds a literal secret"
            if key.startswith("REHABFLOW_"):
                assert _is_setting(key), f"{name}.{key} is no rehabflow setting"
    anchor = compose["x-rehabflow"]
    assert anchor["env_file"] == [{"path": "rehabflow.env", "required": True}]
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "deploy/rehabflow.env" in ignored and "deploy/.env" in ignored


# ---------------------------------------------------------------- Kubernetes


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    return render(DEPLOY / "k8s" / "overlays" / "production")


def _by_kind(manifests: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_python_rendering_equals_kubectl_kustomize(manifests: list[dict[str, Any]]) -> None:
    kubectl = subprocess.run(
        ["kubectl", "kustomize", str(DEPLOY / "k8s" / "overlays" / "production")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    theirs = [d for d in yaml.safe_load_all(kubectl.stdout) if d]

    def key(m: dict[str, Any]) -> tuple[str, str]:
        return m["kind"], m["metadata"]["name"]

    assert {key(m): m for m in manifests} == {key(m): m for m in theirs}


def test_every_manifest_is_valid_for_the_pinned_kubernetes_version(
    manifests: list[dict[str, Any]],
) -> None:
    native = [m for m in manifests if not m["apiVersion"].startswith("keda.sh/")]
    assert {m["kind"] for m in native} >= {
        "Deployment",
        "Service",
        "Job",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
        "ConfigMap",
        "ServiceAccount",
    }
    for manifest in native:
        kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
    # Strict: an unknown field is an error, not ignored.
    broken = copy.deepcopy(_by_kind(manifests, "Deployment")["rehabflow-api"])
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


# KEDA's CRDs are not in kubernetes-validate: the fields of keda.sh/v1alpha1 that these
# manifests use, and the temporal scaler's metadata (KEDA >= 2.17), closed to typos.
_SECRET_REF = {
    "type": "object",
    "required": ["parameter", "name", "key"],
    "additionalProperties": False,
    "properties": {"parameter": {"enum": ["ca", "cert", "key", "apiKey"]}, "name": {}, "key": {}},
}
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "TriggerAuthentication": {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "properties": {"secretTargetRef": {"type": "array", "items": _SECRET_REF}},
            }
        },
    },
    "ScaledObject": {
        "type": "object",
        "required": ["spec"],
        "properties": {
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "additionalProperties": False,
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {"apiVersion": {}, "kind": {}, "name": {}},
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer"},
                    "cooldownPeriod": {"type": "integer"},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "additionalProperties": False,
                            "properties": {
                                "type": {"const": "temporal"},
                                "authenticationRef": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {"name": {}},
                                },
                                "metadata": {
                                    "type": "object",
                                    "required": ["endpoint", "namespace", "taskQueue"],
                                    "additionalProperties": {"type": "string"},
                                    "propertyNames": {
                                        "enum": [
                                            "endpoint",
                                            "namespace",
                                            "taskQueue",
                                            "targetQueueSize",
                                            "activationTargetQueueSize",
                                            "queueTypes",
                                            "tlsServerName",
                                            "minConnectTimeout",
                                            "unsafeSsl",
                                        ]
                                    },
                                },
                            },
                        },
                    },
                },
            }
        },
    },
}


def test_workers_scale_with_keda_on_the_task_queue_backlog(
    manifests: list[dict[str, Any]],
) -> None:
    for kind, schema in KEDA_SCHEMAS.items():
        [manifest] = _by_kind(manifests, kind).values()
        jsonschema.validate(manifest, schema)
    [scaled] = _by_kind(manifests, "ScaledObject").values()
    config = _by_kind(manifests, "ConfigMap")["rehabflow-config"]["data"]
    [trigger] = scaled["spec"]["triggers"]
    assert scaled["spec"]["scaleTargetRef"]["name"] in _by_kind(manifests, "Deployment")
    assert trigger["metadata"]["taskQueue"] == config["REHABFLOW_TEMPORAL__TASK_QUEUE"]
    assert trigger["metadata"]["namespace"] == config["REHABFLOW_TEMPORAL__NAMESPACE"]
    assert trigger["metadata"]["endpoint"] == config["REHABFLOW_TEMPORAL__ADDRESS"]
    assert scaled["spec"]["minReplicaCount"] >= 2
    [hpa] = _by_kind(manifests, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "rehabflow-api"


def _pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_selectors_find_their_pods_and_everything_lands_in_the_overlay_namespace(
    manifests: list[dict[str, Any]],
) -> None:
    deployments = _by_kind(manifests, "Deployment")
    api, worker = deployments["rehabflow-api"], deployments["rehabflow-worker"]
    service = _by_kind(manifests, "Service")["rehabflow-api"]
    assert _selects(service["spec"]["selector"], _pod_labels(api))
    assert not _selects(service["spec"]["selector"], _pod_labels(worker))
    pdbs = _by_kind(manifests, "PodDisruptionBudget")
    assert _selects(pdbs["rehabflow-api"]["spec"]["selector"]["matchLabels"], _pod_labels(api))
    assert _selects(
        pdbs["rehabflow-worker"]["spec"]["selector"]["matchLabels"], _pod_labels(worker)
    )
    [policy] = _by_kind(manifests, "NetworkPolicy").values()
    for deployment in (api, worker):
        assert _selects(policy["spec"]["podSelector"]["matchLabels"], _pod_labels(deployment))
    assert set(policy["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert {m["metadata"].get("namespace") for m in manifests} == {"rehabflow"}


def test_pods_are_hardened_probed_and_run_the_released_image(
    manifests: list[dict[str, Any]],
) -> None:
    pods = {
        name: m["spec"]["template"]["spec"]
        for kind in ("Deployment", "Job")
        for name, m in _by_kind(manifests, kind).items()
    }
    assert set(pods) == {"rehabflow-api", "rehabflow-worker", "rehabflow-migrate"}
    for name, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        [container] = pod["containers"]
        assert container["image"] == "registry.example.org/region/rehabflow:0.1.0", name
        hardening = container["securityContext"]
        assert hardening["readOnlyRootFilesystem"] is True
        assert hardening["allowPrivilegeEscalation"] is False
        assert hardening["capabilities"]["drop"] == ["ALL"]
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts, name  # noqa: S108  # the only writable path
    api = pods["rehabflow-api"]["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    worker = pods["rehabflow-worker"]["containers"][0]
    assert worker["command"] == ["python", "worker.py"]
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert {"name": "metrics", "containerPort": 9464} in worker["ports"]
    assert pods["rehabflow-migrate"]["containers"][0]["command"] == [
        "alembic",
        "upgrade",
        "head",
    ]


def test_secrets_are_referenced_never_inlined_and_settings_are_real(
    manifests: list[dict[str, Any]],
) -> None:
    assert not _by_kind(manifests, "Secret")
    config = _by_kind(manifests, "ConfigMap")["rehabflow-config"]["data"]
    for key in config:
        assert _is_setting(key), key
        assert not SENSITIVE.search(key), f"{key} belongs in a Secret"
    # The non-secret settings parse (TLS files, ports, modes).
    Settings.model_validate(
        {
            "temporal": {
                "address": config["REHABFLOW_TEMPORAL__ADDRESS"],
                "tls": {
                    "ca_file": config["REHABFLOW_TEMPORAL__TLS__CA_FILE"],
                    "client_cert_file": config["REHABFLOW_TEMPORAL__TLS__CLIENT_CERT_FILE"],
                    "client_key_file": config["REHABFLOW_TEMPORAL__TLS__CLIENT_KEY_FILE"],
                },
            },
            "telemetry": {"metrics_port": config["REHABFLOW_TELEMETRY__METRICS_PORT"]},
        }
    )
    for name, deployment in _by_kind(manifests, "Deployment").items():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        names = set()
        for variable in container["env"]:
            names.add(variable["name"])
            assert _is_setting(variable["name"]), variable["name"]
            if SENSITIVE.search(variable["name"]):
                assert "value" not in variable, f"{name}: {variable['name']} is inlined"
                assert "secretKeyRef" in variable["valueFrom"]
        assert {
            "REHABFLOW_DATABASE__URL",
            "REHABFLOW_SECURITY__PAYLOAD_KEYS",
            "REHABFLOW_SECURITY__PIN_ENCRYPTION_KEYS",
            "REHABFLOW_SECURITY__PIN_LOOKUP_KEY",
        } <= names
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["temporal-tls"]["secret"]["secretName"] == "rehabflow-temporal-tls"


# ---------------------------------------------------------------- Temporal's Helm values


def test_temporal_helm_values_use_postgresql_and_mtls_with_secrets_by_reference() -> None:
    values = yaml.safe_load((DEPLOY / "temporal" / "values.yaml").read_text())
    config = values["server"]["config"]
    for store in ("default", "visibility"):
        persistence = config["persistence"][store]
        assert persistence["driver"] == "sql"
        assert persistence["sql"]["driver"] == "postgres12"
        assert persistence["sql"]["existingSecret"] == "temporal-db"
        assert "password" not in persistence["sql"]
    for side in ("internode", "frontend"):
        assert config["tls"][side]["server"]["requireClientAuth"] is True
    frontend_name = config["tls"]["frontend"]["client"]["serverName"]
    k8s_config = yaml.safe_load((DEPLOY / "k8s" / "base" / "configmap.yaml").read_text())
    assert k8s_config["data"]["REHABFLOW_TEMPORAL__TLS__SERVER_NAME"] == frontend_name
    assert {n["name"] for n in config["namespaces"]["namespace"]} == {
        k8s_config["data"]["REHABFLOW_TEMPORAL__NAMESPACE"]
    }
    for bundled in ("cassandra", "mysql", "elasticsearch", "prometheus", "grafana"):
        assert values[bundled]["enabled"] is False
