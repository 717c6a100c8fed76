"""Prometheus rules and the Grafana dashboard: `promtool check rules`, `promtool test rules`
(each alert with series that fire it and series that do not), broken copies that each check
must reject, the latency alert's exact expression, the dashboard's queries against the
metric names the server exports, and every metric and label that the rules, the dashboard and
the autoscaling (prometheus-adapter, HPA) query against a running server's /metrics."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from grpc_util import GrpcServer, protos  # noqa: F401 (fixture)
from server_util import post, request

REPO = Path(__file__).resolve().parents[2]
PROM = REPO / "deploy" / "prometheus"
RULES = PROM / "wgllm-rules.yml"
RULE_TESTS = PROM / "tests" / "wgllm-rules.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "wgllm-dashboard.json"
ADAPTER = REPO / "deploy" / "k8s" / "prometheus-adapter" / "adapter-config.yaml"
HPA = REPO / "deploy" / "k8s" / "base" / "hpa.yaml"

# The server's metrics (histograms by base name).
HISTOGRAMS = {"gpu_inference_latency_seconds", "wgllm_time_to_first_token_seconds",
              "wgllm_time_per_output_token_seconds"}
SERVER_METRICS = HISTOGRAMS | {
    "tokens_per_second", "gpu_memory_usage_bytes", "wgllm_http_requests_total", "wgllm_queue_depth",
    "wgllm_active_sequences", "wgllm_queue_capacity", "wgllm_kv_cache_usage_ratio", "wgllm_prompt_tokens_total",
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
    ("(wgllm_queue_capacity > 0)) > 0.8", "wgllm_queue_capacity) > 0.8"),  # a queue without limit would fire
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


# ---- every queried metric and label against a running server ----

SCRAPE_LABELS = {"namespace", "pod"}  # added by scrape-config.yml's relabelling


def exported_metrics(body):
    """{name: type} from the # TYPE lines and {name: label names seen} from the samples."""
    types, labels = {}, {}
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
            labels.setdefault(name, set())
        elif line and not line.startswith("#"):
            m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(?:\{(.*)\})? ", line)
            assert m, line
            name = m.group(1)
            for suffix in ("_bucket", "_sum", "_count"):
                if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
                    name = name[: -len(suffix)]
            labels.setdefault(name, set()).update(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', m.group(2) or ""))
    return types, labels


@pytest.fixture(scope="module")
def scraped(wgllm, shared, protos):  # noqa: F811 (fixture)
    """/metrics of `wgllm serve` on the demo model after one HTTP completion and one gRPC call, so
    the labelled counters have samples."""
    s = GrpcServer(wgllm, shared / "models" / "aidreams260K-f32.gguf", protos=protos, name="prom-names")
    try:
        status, _, obj = post(s.url, "/v1/completions", {"prompt": "Hi", "max_tokens": 2, "temperature": 0})
        assert status == 200, obj
        assert s.health().status == protos.health.HealthCheckResponse.SERVING
        s.close_channels()
        status, _, body = request(s.url, "GET", "/metrics")
    finally:
        assert s.stop() == 0
    assert status == 200
    return exported_metrics(body.decode())


def adapter_rules():
    docs = [d for d in yaml.safe_load_all(ADAPTER.read_text()) if d]
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    return yaml.safe_load(cm["data"]["config.yaml"])["rules"]


def deploy_queries():
    """(where, PromQL expression) of everything deploy/ asks Prometheus for."""
    out = [(f"rule {r['alert']}", r["expr"]) for r in load_rules()]
    dash = json.loads(DASHBOARD.read_text())
    out += [(f"panel {p['title']!r}", t["expr"]) for p in dash["panels"] for t in p["targets"]]
    for v in dash["templating"]["list"]:
        for q in (v.get("query"), v.get("definition")):
            q = q.get("query") if isinstance(q, dict) else q
            if v["type"] == "query" and q and (f"variable {v['name']}", q) not in out:
                out.append((f"variable {v['name']}", q))
    for r in adapter_rules():
        out.append(("adapter seriesQuery", r["seriesQuery"]))
        series = re.sub(r"\{.*", "", r["seriesQuery"])
        query = (r["metricsQuery"].replace("<<.Series>>", series).replace("<<.GroupBy>>", "pod")
                 .replace("<<.LabelMatchers>>", 'namespace="wgllm",pod=~"a|b"'))
        out.append(("adapter metricsQuery", query))
    return out


def selectors(expr):
    """(metric, label names of its matchers) of each `metric{...}` in an expression."""
    expr = re.sub(r'"[^"]*"', '""', expr)
    for name, matchers in re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\{([^}]*)\}", expr):
        yield name, set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))


def check_deploy_queries(types, labels):
    """Problems of the deploy/ queries against a server's exports (empty when all match)."""
    def base(name):
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
                return name[: -len(suffix)]
        return name

    problems = []
    for where, expr in deploy_queries():
        referenced = metric_names(expr) | set(re.findall(r"\bwgllm_[A-Za-z0-9_:]*", expr))
        names = {base(n) for n in referenced} - EXTERNAL
        problems += [f"{where}: {n} is not exported" for n in sorted(names - set(types))]
        for name, used in selectors(expr):
            if name in EXTERNAL or base(name) not in types:
                continue
            known = labels[base(name)] | SCRAPE_LABELS | ({"le"} if name.endswith("_bucket") else set())
            problems += [f"{where}: {name} has no label {lb}" for lb in sorted(used - known)]
        if not metric_names(expr) & EXTERNAL:  # other exporters' labels are not known here
            grouped = set()
            for clause in re.findall(r"\b(?:by|on|without)\s*\(([^)]*)\)", expr):
                grouped |= {g.strip() for g in clause.split(",") if g.strip()}
            known = set().union(*(labels.get(n, set()) for n in names)) | SCRAPE_LABELS | {"le"}
            problems += [f"{where}: groups by {lb}, a label none of its series has"
                         for lb in sorted(grouped - known)]
    served = {r["name"]["as"] for r in adapter_rules()}
    for r in adapter_rules():
        if not re.fullmatch(r["name"]["matches"], re.sub(r"\{.*", "", r["seriesQuery"])):
            problems.append(f"adapter: name.matches {r['name']['matches']} misses {r['seriesQuery']}")
    hpa = yaml.safe_load(HPA.read_text())
    for m in hpa["spec"]["metrics"]:
        if m["type"] in ("Pods", "Object"):
            name = m[m["type"].lower()]["metric"]["name"]
            if name not in served:
                problems.append(f"HPA: {name} is served by no prometheus-adapter rule")
            elif name not in types:
                problems.append(f"HPA: {name} is not exported")
    return problems


def test_deploy_queries_match_the_server_exports(scraped):
    types, labels = scraped
    # the scrape itself is what the check relies on: histograms and labelled counters present
    assert types["gpu_inference_latency_seconds"] == "histogram"
    assert {"route", "status"} <= labels["wgllm_http_requests_total"]
    assert {"method", "code"} <= labels["wgllm_grpc_requests_total"]
    assert len(deploy_queries()) > 20
    problems = check_deploy_queries(types, labels)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("var,old,new", [
    ("RULES", "wgllm_queue_capacity > 0", "wgllm_max_queue > 0"),             # a name not exported
    ("DASHBOARD", "rate(wgllm_http_requests_total{", "rate(wgllm_requests_total{"),
    ("DASHBOARD", '\\"5..\\"', '\\"5..\\",code=\\"500\\"'),                  # a label not on the series
    ("DASHBOARD", "sum by (method, code)", "sum by (method, status)"),        # grouped by a missing label
    ("ADAPTER", "'tokens_per_second{", "'wgllm_tokens_per_second{"),
    ("HPA", "name: tokens_per_second", "name: wgllm_tokens_per_second"),       # served by no adapter rule
])
def test_deploy_query_check_catches_wrong_names(scraped, monkeypatch, tmp_path, var, old, new):
    """Copies of the deploy files with one wrong name or label: the check reports them."""
    original = globals()[var]
    text = original.read_text()
    assert old in text
    copy = tmp_path / original.name
    copy.write_text(text.replace(old, new, 1))
    monkeypatch.setitem(globals(), var, copy)
    assert check_deploy_queries(*scraped)
