"""Kubernetes manifests of deploy/k8s: yamllint, kubernetes-validate (strict schemas of a pinned
Kubernetes version) on every base file and on the rendered production overlay, the settings
that must agree with each other, and proof that each validator rejects a broken copy.

No kustomize binary is packaged for Debian 12, so the overlay is rendered here by a small
renderer of exactly the kustomization features the overlay uses (resources, namespace, labels,
images, JSON 6902 patches); any other feature fails the test instead of being ignored."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import kubernetes_validate

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30.0"
BIN = Path(sys.executable).parent

BASE_FILES = sorted(p for p in (K8S / "base").glob("*.yaml") if p.name != "kustomization.yaml")
ADAPTER_FILES = [K8S / "prometheus-adapter" / "adapter-config.yaml"]
OVERLAY = K8S / "overlays" / "production"


# ---------------------------------------------------------------- minimal kustomize renderer

CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


def load_docs(path):
    with open(path, encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def pointer_parts(path):
    assert path.startswith("/"), f"JSON pointer {path!r}"
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def apply_json_patch(doc, ops):
    for op in ops:
        parts = pointer_parts(op["path"])
        parent = doc
        for key in parts[:-1]:
            parent = parent[int(key)] if isinstance(parent, list) else parent[key]
        last = parts[-1]
        kind = op["op"]
        if isinstance(parent, list):
            if kind == "add":
                if last == "-":
                    parent.append(copy.deepcopy(op["value"]))
                else:
                    parent.insert(int(last), copy.deepcopy(op["value"]))
            elif kind == "replace":
                assert int(last) < len(parent), f"replace past the end: {op['path']}"
                parent[int(last)] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[int(last)]
            else:
                raise AssertionError(f"unsupported JSON patch op {kind}")
        else:
            if kind in ("replace", "remove"):
                assert last in parent, f"{kind} of a missing key: {op['path']}"
            if kind in ("add", "replace"):
                parent[last] = copy.deepcopy(op["value"])
            elif kind == "remove":
                del parent[last]
            else:
                raise AssertionError(f"unsupported JSON patch op {kind}")
    return doc


def matches_target(doc, target):
    group, _, version = doc["apiVersion"].rpartition("/")
    checks = {"kind": doc["kind"], "name": doc["metadata"]["name"], "group": group, "version": version}
    return all(checks[k] == v for k, v in target.items())


def render(folder):
    folder = Path(folder)
    k = yaml.safe_load((folder / "kustomization.yaml").read_text())
    supported = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
    assert set(k) <= supported, f"renderer does not support {set(k) - supported}"
    assert k["kind"] == "Kustomization"
    docs = []
    for res in k.get("resources", []):
        path = folder / res
        docs += render(path) if path.is_dir() else load_docs(path)
    for label_set in k.get("labels", []):
        assert set(label_set) <= {"pairs"}, "only plain labels (no selectors/templates) are supported"
        for d in docs:
            d["metadata"].setdefault("labels", {}).update(label_set["pairs"])
    for img in k.get("images", []):
        for d in docs:
            for c in d.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
                name, _, tag = c["image"].partition(":")
                if name == img["name"]:
                    c["image"] = f"{img.get('newName', name)}:{img.get('newTag', tag)}"
    for patch in k.get("patches", []):
        assert set(patch) == {"path", "target"}, "only file patches with a target are supported"
        ops = yaml.safe_load((folder / patch["path"]).read_text())
        assert isinstance(ops, list), "only JSON 6902 patches are supported"
        hits = [d for d in docs if matches_target(d, patch["target"])]
        assert len(hits) == 1, f"patch {patch['path']} matches {len(hits)} resources"
        apply_json_patch(hits[0], ops)
    if "namespace" in k:
        for d in docs:
            if d["kind"] not in CLUSTER_SCOPED:
                d["metadata"]["namespace"] = k["namespace"]
    return docs


def by_kind(docs):
    return {d["kind"]: d for d in docs}


# ---------------------------------------------------------------- validators

def yamllint(*paths):
    return subprocess.run([BIN / "yamllint", "-s", "-c", DEPLOY / ".yamllint.yaml", *paths],
                          capture_output=True, text=True, timeout=60)


def kube_validate_files(*paths):
    return subprocess.run([BIN / "kubernetes-validate", "--strict", "-k", K8S_VERSION, *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def validate_docs(docs):
    for d in docs:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)


def test_yamllint_passes():
    p = yamllint(DEPLOY)
    assert p.returncode == 0, p.stdout + p.stderr


def test_yamllint_rejects_broken_copy(tmp_path):
    text = (K8S / "base" / "service.yaml").read_text()
    bad = tmp_path / "service.yaml"
    bad.write_text(text.replace("  type: ClusterIP", "  type: ClusterIP\n  type: NodePort"))  # duplicate key
    p = yamllint(bad)
    assert p.returncode != 0 and "key-duplicates" in p.stdout, p.stdout


def test_base_and_adapter_files_validate():
    p = kube_validate_files(*BASE_FILES, *ADAPTER_FILES)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count(" passed for resource ") == len(BASE_FILES) + len(ADAPTER_FILES), p.stdout


@pytest.mark.parametrize("mutation", ["unknown_field", "wrong_type", "missing_selector"])
def test_kubernetes_validate_rejects_broken_copy(tmp_path, mutation):
    dep = load_docs(K8S / "base" / "deployment.yaml")[0]
    if mutation == "unknown_field":
        dep["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    elif mutation == "wrong_type":
        dep["spec"]["replicas"] = "two"
    else:
        del dep["spec"]["selector"]
    bad = tmp_path / "deployment.yaml"
    bad.write_text(yaml.safe_dump(dep))
    p = kube_validate_files(bad)
    assert p.returncode != 0, p.stdout


def test_overlay_renders_and_validates():
    docs = render(OVERLAY)
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == sorted(["Namespace", "ConfigMap", "PersistentVolumeClaim", "Deployment", "Service",
                            "PodDisruptionBudget", "HorizontalPodAutoscaler"])
    validate_docs(docs)
    k = by_kind(docs)
    for d in docs:
        if d["kind"] != "Namespace":
            assert d["metadata"]["namespace"] == "wgllm"
        assert d["metadata"]["labels"]["app.kubernetes.io/part-of"] == "wgllm"
    pod = k["Deployment"]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["image"] == "localhost/wgllm:latest"
    cache_vol = next(v for v in pod["volumes"] if v["name"] == "model-cache")
    assert cache_vol == {"name": "model-cache", "hostPath": {"path": "/dev/shm", "type": "Directory"}}
    cache_env = [e["value"] for e in c["env"] if e["name"] == "WGLLM_MODEL_CACHE"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "model-cache")
    assert cache_env == [mount["mountPath"] + "/wgllm-model-cache"]
    assert k["HorizontalPodAutoscaler"]["spec"]["maxReplicas"] == 16


def test_renderer_rejects_a_patch_that_does_not_apply(tmp_path):
    """The overlay check can fail: a patch replacing a volume that is not there is refused."""
    ops = [{"op": "replace", "path": "/spec/template/spec/volumes/9", "value": {"name": "x", "emptyDir": {}}}]
    dep = load_docs(K8S / "base" / "deployment.yaml")[0]
    with pytest.raises((AssertionError, IndexError)):
        apply_json_patch(dep, ops)
    docs = render(OVERLAY)
    dep = by_kind(docs)["Deployment"]
    apply_json_patch(dep, [{"op": "replace", "path": "/spec/template/spec/volumes/1/hostPath/path", "value": 5}])
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_docs([dep])


def test_deployment_settings_agree():
    base = by_kind(render(K8S / "base"))
    dep, cm = base["Deployment"], base["ConfigMap"]["data"]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    # GPU requested and limited; memory and CPU limits set.
    assert c["resources"]["requests"]["nvidia.com/gpu"] == c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"cpu", "memory"} <= set(c["resources"]["limits"])
    # Probes on the server's endpoints.
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["startupProbe"]["httpGet"]["path"] == "/health"
    assert str(c["ports"][0]["containerPort"]) == cm["WGLLM_PORT"]
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert str(ports["grpc"]) == cm["WGLLM_GRPC_PORT"]
    svc = {p["name"]: p for p in base["Service"]["spec"]["ports"]}
    assert svc["grpc"]["targetPort"] == "grpc" and svc["grpc"]["appProtocol"] == "kubernetes.io/h2c"
    # Grace period covers the preStop sleep plus the whole drain, with a margin for exit.
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = int(cm["WGLLM_DRAIN_TIMEOUT"])
    assert pod["terminationGracePeriodSeconds"] >= int(pre_stop[1]) + drain + 5
    # Non-root, like the image's user.
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    # Service, PDB and HPA point at these pods / this Deployment.
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert base["Service"]["spec"]["selector"].items() <= labels.items()
    assert base["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert base["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]
    # Prometheus annotations match the port.
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/port"] == cm["WGLLM_PORT"] and ann["prometheus.io/path"] == "/metrics"


def test_hpa_metric_is_served_by_the_adapter_rule():
    hpa = load_docs(K8S / "base" / "hpa.yaml")[0]
    metrics = hpa["spec"]["metrics"]
    pods = [m for m in metrics if m["type"] == "Pods"]
    cpu = [m for m in metrics if m["type"] == "Resource"]
    assert [m["pods"]["metric"]["name"] for m in pods] == ["tokens_per_second"]
    assert [m["resource"]["name"] for m in cpu] == ["cpu"]
    cm = load_docs(K8S / "prometheus-adapter" / "adapter-config.yaml")[0]
    rules = yaml.safe_load(cm["data"]["config.yaml"])["rules"]
    served = [r for r in rules if r["name"]["as"] == "tokens_per_second"]
    assert len(served) == 1
    rule = served[0]
    assert rule["seriesQuery"].startswith("tokens_per_second{")
    assert rule["resources"]["overrides"] == {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
    assert "<<.Series>>" in rule["metricsQuery"] and "<<.LabelMatchers>>" in rule["metricsQuery"]
    assert "<<.GroupBy>>" in rule["metricsQuery"]
