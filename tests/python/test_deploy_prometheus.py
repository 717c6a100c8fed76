"""Prometheus rules and the Grafana dashboard: `promtool check rules`, `promtool test rules`
(each alert with series that fire it and series that do not), broken copies that each check
must reject, the latency alert's exact expression, and the dashboard's queries against the
metric names the server exports."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PROM = REPO / "deploy" / "prometheus"
RULES = PROM / "wgllm-rules.yml"
RULE_TESTS = PROM / "tests" / "wgllm-rules.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "wgllm-dashboard.json"

# The server's metrics (histograms by base name).
HISTOGRAMS = {"gpu_inference_latency_seconds", "wgllm_time_to_first_token_seconds",
              "wgllm_time_per_output_token_seconds"}
SERVER_METRICS = HISTOGRAMS | {
    "tokens_per_second", "gpu_memory_usage_bytes", "wgllm_requests_total", "wgllm_queue_depth",
    "wgllm_active_sequences", "wgllm_max_queue", "wgllm_kv_cache_usage_ratio", "wgllm_prompt_tokens_total",
    "wgllm_generated_tokens_total", "wgllm_grpc_requests_total"}
# Other exporters the rules rely on (kube-state-metrics, dcgm-exporter).
EXTERNAL = {"kube_deployment_status_replicas_unavailable", "kube_deployment_status_replicas_available",
            "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE"}
ALERTS = {"WgllmInferenceLatencyP95High", "WgllmErrorRateHigh", "WgllmGrpcErrorRateHigh", "WgllmQueueSaturated", "WgllmGpuMemoryNearLimit",
          "WgllmKvCacheNearFull", "WgllmPodsNotReady", "WgllmNoReadyPods"}
PROMQL_WORDS = {"sum", "by", "rate", "histogram_quantile", "max", "avg", "on", "le", "and", "or", "without",
                "label_values", "namespace", "pod", "route", "status", "group_left", "avg_over_time"}


def promtool(*args):
    exe = shutil.which("promtool")
    assert exe, "promtool not found (scripts/install-deps.sh installs Debian's prometheus package)"
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=120)


def metric_names(expr):
    """Identifiers of a PromQL expression that name series (not functions, keywords, labels)."""
    expr = re.sub(r'"[^"]*"', '""', expr)          # drop string literals
    expr = re.sub(r"\{[^}]*\}", "{}", expr)         # drop label matchers
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)        # drop ranges
    expr = re.sub(r"by \([^)]*\)|on \([^)]*\)", "", expr)
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)) - PROMQL_WORDS
    return {n for n in names if not re.fullmatch(r"\d+[smhd]?|e\d+", n)}


def base_name(name):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in HISTOGRAMS:
            return name[: -len(suffix)]
    return name


def load_rules():
    return yaml.safe_load(RULES.read_text())["groups"][0]["rules"]


def test_promtool_check_rules_passes():
    p = promtool("check", "rules", RULES)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in p.stdout


def test_promtool_rule_unit_tests_pass():
    p = promtool("test", "rules", RULE_TESTS)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "SUCCESS" in p.stdout


def test_every_alert_has_firing_and_quiet_cases():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired, quiet = set(), set()
    for t in tests:
        for case in t["alert_rule_test"]:
            (fired if case["exp_alerts"] else quiet).add(case["alertname"])
    assert fired == ALERTS and quiet == ALERTS


def test_latency_alert_is_the_histogram_p95():
    rule = next(r for r in load_rules() if r["alert"] == "WgllmInferenceLatencyP95High")
    expr = " ".join(rule["expr"].split())
    assert expr == ("histogram_quantile(0.95, sum by (le) (rate(gpu_inference_latency_seconds_bucket[5m]))) "
                    "> 0.25")
    assert rule["for"] == "5m"


def test_rules_use_known_metrics():
    for rule in load_rules():
        names = {base_name(n) for n in metric_names(rule["expr"])}
        assert names <= SERVER_METRICS | EXTERNAL, (rule["alert"], names - SERVER_METRICS - EXTERNAL)


def write_mutated_rules(tmp_path, old, new):
    text = RULES.read_text()
    assert old in text
    (tmp_path / "tests").mkdir()
    (tmp_path / "wgllm-rules.yml").write_text(text.replace(old, new, 1))
    shutil.copy(RULE_TESTS, tmp_path / "tests" / RULE_TESTS.name)
    return tmp_path


def test_check_rules_rejects_broken_expression(tmp_path):
    folder = write_mutated_rules(tmp_path, "[5m]))) > 0.25", "[5m])) > 0.25")  # unbalanced parentheses
    p = promtool("check", "rules", folder / "wgllm-rules.yml")
    assert p.returncode != 0 and "FAILED" in p.stdout + p.stderr


def test_check_rules_rejects_bad_duration(tmp_path):
    folder = write_mutated_rules(tmp_path, "for: 5m", "for: five minutes")
    p = promtool("check", "rules", folder / "wgllm-rules.yml")
    assert p.returncode != 0


@pytest.mark.parametrize("old,new", [
    ("> 0.25\n", "> 0.5\n"),                              # latency alert no longer fires at ~488 ms
    ("{status=~\"5..\"}", "{status=~\"4..\"}"),          # error ratio counts the wrong class
    ("(wgllm_max_queue > 0)) > 0.8", "wgllm_max_queue) > 0.8"),  # a queue without limit would fire
])
def test_rule_unit_tests_catch_wrong_rules(tmp_path, old, new):
    text = RULES.read_text()
    if old not in text:  # the error-rate matcher carries the route too
        old, new = old.replace("{", "{route=~\"/v1/.*\","), new.replace("{", "{route=~\"/v1/.*\",")
    folder = write_mutated_rules(tmp_path, old, new)
    p = promtool("test", "rules", folder / "tests" / RULE_TESTS.name)
    assert p.returncode != 0, p.stdout


def dashboard_exprs(dash):
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


def test_dashboard_queries_reference_server_metrics():
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "wgllm-server"
    titles = {p["title"] for p in dash["panels"]}
    for needed in ("Request rate by route and status", "5xx error ratio (API routes)",
                   "Inference latency (p50 / p95 / p99)", "Generated tokens per second per pod",
                   "Queue depth vs limit", "KV cache usage", "GPU memory used"):
        assert needed in titles
    used = set()
    for expr in dashboard_exprs(dash):
        names = {base_name(n) for n in metric_names(expr)}
        assert names and names <= SERVER_METRICS, (expr, names - SERVER_METRICS)
        used |= names
    assert used == SERVER_METRICS, SERVER_METRICS - used  # every metric has a panel
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert variables == {"datasource", "namespace", "pod"}


def test_dashboard_check_rejects_unknown_metric(tmp_path):
    dash = json.loads(DASHBOARD.read_text())
    dash["panels"][0]["targets"][0]["expr"] = "rate(wgllm_request_total[5m])"  # misspelt
    names = {base_name(n) for n in metric_names(dashboard_exprs(dash)[0])}
    assert not names <= SERVER_METRICS


def test_scrape_config_labels_namespace_and_pod():
    """Debian's promtool is built without Kubernetes service discovery, so `promtool check config`
    cannot read this file; its relabelling is checked here instead (yamllint covers syntax)."""
    cfg = yaml.safe_load((PROM / "scrape-config.yml").read_text())
    assert cfg["rule_files"] == ["wgllm-rules.yml"]
    job = cfg["scrape_configs"][0]
    assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
    targets = {r.get("target_label"): r["source_labels"] for r in job["relabel_configs"] if "target_label" in r}
    assert targets["namespace"] == ["__meta_kubernetes_namespace"]
    assert targets["pod"] == ["__meta_kubernetes_pod_name"]
    port = next(r for r in job["relabel_configs"] if r.get("target_label") == "__address__")
    assert re.fullmatch(port["regex"], "10.0.0.7:9999;8080").expand(port["replacement"].replace("$", "\\")) \
        == "10.0.0.7:8080"
