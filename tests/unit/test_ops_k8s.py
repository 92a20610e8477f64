"""ops/k8s: every built-in-kind manifest validates for Kubernetes 1.34, and the blue-green pieces fit together."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "ops" / "k8s"
#: The Kubernetes version the manifests are written for and validated against.
KUBERNETES_VERSION = "1.34.0"
#: Kinds from operators: kubernetes-validate has no schema for them; checked by hand below.
CUSTOM_KINDS = {
    ("mongodbcommunity.mongodb.com/v1", "MongoDBCommunity"),
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
}
# gunicorn's graceful_timeout (nexysync_server/gunicorn_conf.py): how long a stopping API drains.
DRAIN_S = 30


def _kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def _documents() -> Iterator[tuple[str, dict[str, Any]]]:
    for name in _kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc:
                yield name, doc


DOCS = list(_documents())


def _find(kind: str, name: str) -> dict[str, Any]:
    matches = [doc for _, doc in DOCS if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def _pod_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, doc in DOCS:
        if doc["kind"] == "Deployment":
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def test_the_kustomization_lists_every_manifest_and_each_exists() -> None:
    listed = set(_kustomization()["resources"])
    on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


@pytest.mark.parametrize(
    ("source", "doc"),
    [(source, doc) for source, doc in DOCS if (doc["apiVersion"], doc["kind"]) not in CUSTOM_KINDS],
    ids=lambda value: value if isinstance(value, str) else f"{value['kind']}/{value['metadata']['name']}",
)
def test_built_in_manifest_validates(source: str, doc: dict[str, Any]) -> None:
    # strict: an unknown (misspelt) field is an error, not silently dropped by the API server.
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_is_caught_by_the_validator() -> None:
    broken = json.loads(json.dumps(_find("Deployment", "nexysync-api-blue")))
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")  # misspelt: the probe would be lost
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    container["readinessProbe"] = container.pop("readinesProbe")
    container["resources"]["limits"]["memory"] = {"MiB": 512}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_only_the_operator_kinds_are_left_to_their_operators() -> None:
    kinds = {(doc["apiVersion"], doc["kind"]) for _, doc in DOCS}
    assert kinds & CUSTOM_KINDS == CUSTOM_KINDS
    mongo = _find("MongoDBCommunity", "nexysync-mongodb")
    assert mongo["spec"]["members"] == 3 and mongo["spec"]["type"] == "ReplicaSet"
    user = mongo["spec"]["users"][0]
    assert _find("Secret", user["passwordSecretRef"]["name"])
    cert = _find("Certificate", "nexysync-tls")
    issuer = _find("Issuer", cert["spec"]["issuerRef"]["name"])
    assert "letsencrypt.org" in issuer["spec"]["acme"]["server"]
    # HAProxy mounts the Secret cert-manager writes.
    volumes = {v["name"]: v for v in _find("Deployment", "haproxy")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["certs"]["secret"]["secretName"] == cert["spec"]["secretName"]


def test_blue_and_green_differ_only_in_slot_and_replicas() -> None:
    blue, green = _find("Deployment", "nexysync-api-blue"), _find("Deployment", "nexysync-api-green")
    for doc, slot in ((blue, "blue"), (green, "green")):
        assert doc["metadata"]["labels"] == {"app": "nexysync-api", "slot": slot}
        assert doc["spec"]["selector"]["matchLabels"] == {"app": "nexysync-api", "slot": slot}
        assert doc["spec"]["template"]["metadata"]["labels"] == {"app": "nexysync-api", "slot": slot}
    assert blue["spec"]["replicas"] >= 2 and green["spec"]["replicas"] == 0
    text = json.dumps(blue).replace('"blue"', '"green"').replace("nexysync-api-blue", "nexysync-api-green")
    as_green = json.loads(text)
    as_green["spec"]["replicas"] = 0
    assert as_green == green


def test_the_service_selects_one_live_slot() -> None:
    service = _find("Service", "nexysync-api")
    assert service["spec"]["selector"] == {"app": "nexysync-api", "slot": "blue"}


def test_probes_prestop_and_grace_period_cover_the_drain() -> None:
    for name in ("nexysync-api-blue", "nexysync-api-green"):
        spec = _find("Deployment", name)["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/v1/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/v1/health/live"
        pre_stop_s = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert spec["terminationGracePeriodSeconds"] > pre_stop_s + DRAIN_S


def test_every_pod_is_non_root_read_only_and_bounded() -> None:
    for name, spec in _pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"]["drop"] == ["ALL"], name
            assert set(container["resources"]) == {"requests", "limits"}, name


def test_budgets_and_autoscalers_target_what_exists() -> None:
    deployments = {doc["metadata"]["name"]: doc for _, doc in DOCS if doc["kind"] == "Deployment"}
    for _, doc in DOCS:
        if doc["kind"] == "HorizontalPodAutoscaler":
            assert doc["spec"]["scaleTargetRef"]["name"] in deployments
        if doc["kind"] == "PodDisruptionBudget":
            wanted = doc["spec"]["selector"]["matchLabels"]
            assert any(
                wanted.items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in deployments.values()
            )
    scaled = {doc["spec"]["scaleTargetRef"]["name"] for _, doc in DOCS if doc["kind"] == "HorizontalPodAutoscaler"}
    assert {"nexysync-api-blue", "nexysync-api-green"} <= scaled


def _selects(selector: dict[str, Any], app: str) -> bool:
    """Tell whether a pod selector picks pods labelled ``app`` (matchLabels, or an ``In`` expression)."""
    if selector.get("matchLabels", {}).get("app") == app:
        return True
    return any(
        term["key"] == "app" and term["operator"] == "In" and app in term["values"]
        for term in selector.get("matchExpressions", [])
    )


def _allowed_sources(app: str) -> set[str]:
    """Which pods (by app label, or ``namespace:<name>``) the NetworkPolicies let into pods labelled ``app``."""
    sources: set[str] = set()
    for _, doc in DOCS:
        if doc["kind"] != "NetworkPolicy" or not _selects(doc["spec"]["podSelector"], app):
            continue
        for rule in doc["spec"].get("ingress", []):
            if "from" not in rule:
                sources.add("*")
            for peer in rule.get("from", []):
                if "namespaceSelector" in peer:
                    sources.add("namespace:" + peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"])
                else:
                    sources.add(peer["podSelector"]["matchLabels"]["app"])
    return sources


def test_network_policies_let_only_haproxy_reach_the_api_and_only_the_api_and_cdn_reach_mongodb() -> None:
    deny = _find("NetworkPolicy", "default-deny-ingress")
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    # Prometheus, from the monitoring namespace, scrapes /metrics (behind its token).
    assert _allowed_sources("nexysync-api") == {"haproxy", "namespace:monitoring"}
    assert _allowed_sources("nexysync-cdn") == {"haproxy", "namespace:monitoring"}
    # Members of the replica set replicate among themselves.
    assert _allowed_sources("nexysync-mongodb-svc") == {"nexysync-api", "nexysync-cdn", "nexysync-mongodb-svc"}
    assert _allowed_sources("haproxy") == {"*"}


def test_api_and_cdn_pods_are_scraped_on_their_own_port() -> None:
    for name in ("nexysync-api-blue", "nexysync-api-green", "nexysync-cdn"):
        template = _find("Deployment", name)["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        ports = {port["containerPort"] for container in template["spec"]["containers"] for port in container["ports"]}
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) in ports
        assert annotations["prometheus.io/path"] == "/metrics"


def test_the_haproxy_config_in_the_base_is_the_tested_one() -> None:
    assert (K8S / "haproxy" / "haproxy.cfg").read_text() == (REPO / "ops" / "haproxy" / "haproxy.cfg").read_text()
    generated = _kustomization()["configMapGenerator"][0]
    assert generated["files"] == ["haproxy/haproxy.cfg"]
    volumes = {v["name"]: v for v in _find("Deployment", "haproxy")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == generated["name"]


FAKE_KUBECTL = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["KUBECTL_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
joined = " ".join(args)
if "get service nexysync-api" in joined:
    print("blue", end="")
elif "get deployment nexysync-api-blue" in joined and "image" in joined:
    print("registry.example.com/nexysync:1", end="")
elif "get deployment nexysync-api-blue" in joined and "replicas" in joined:
    print("3", end="")
elif "get pods" in joined or "get endpoints" in joined:
    print("10.0.0.7\\n10.0.0.8")
"""


def test_switch_sh_rolls_the_idle_slot_then_moves_the_service_then_drains_the_old_one(tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable))
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    log = tmp_path / "calls.jsonl"
    env = {**os.environ, "KUBECTL": str(kubectl), "KUBECTL_LOG": str(log), "NAMESPACE": "prod"}
    result = subprocess.run(
        ["bash", str(K8S / "switch.sh"), "green", "registry.example.com/nexysync:2"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert all(call[:2] == ["--namespace", "prod"] for call in calls)
    changes = [call[2:] for call in calls if call[2] in ("set", "scale", "rollout", "patch", "wait")]
    assert changes == [
        ["set", "image", "deployment/nexysync-api-green", "api=registry.example.com/nexysync:2"],
        ["scale", "deployment/nexysync-api-green", "--replicas=3"],
        ["rollout", "status", "deployment/nexysync-api-green", "--timeout=300s"],
        ["wait", "pod", "--selector=app=nexysync-api,slot=green", "--for=condition=Ready", "--timeout=300s"],
        ["patch", "service", "nexysync-api", "--type=merge", "-p", '{"spec":{"selector":{"slot":"green"}}}'],
        ["scale", "deployment/nexysync-api-blue", "--replicas=0"],
        ["wait", "pod", "--selector=app=nexysync-api,slot=blue", "--for=delete", "--timeout=300s"],
    ]
    assert "live: green" in result.stdout


def test_switch_sh_refuses_an_unknown_slot() -> None:
    result = subprocess.run(["bash", str(K8S / "switch.sh"), "purple"], capture_output=True, text=True)
    assert result.returncode == 2 and "usage" in result.stderr
