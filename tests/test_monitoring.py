"""deploy/monitoring: the scrape configurations, alert rules and dashboard parse, promtool accepts them,
and every metric they read is one the services export."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

ROOT = Path(__file__).resolve().parents[1]
MONITORING = ROOT / "deploy" / "monitoring"
METRIC = re.compile(r"\bfundtrail_[a-z0-9_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",),
            "summary": ("_sum", "_count", "")}


def exported_metrics() -> set[str]:
    """Every sample name the three services can expose."""
    from fundtrail_compliance.adapters.metrics import Metrics as ComplianceMetrics
    from fundtrail_gateway.metrics import GatewayMetrics
    from fundtrail_tracker.adapters.metrics import Metrics as TrackerMetrics

    registries = [CollectorRegistry(), CollectorRegistry()]
    TrackerMetrics(registries[0])
    ComplianceMetrics(registries[1])
    registries.append(GatewayMetrics().registry)
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            names |= {family.name + s for s in SUFFIXES[family.type]}
    return names


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load((MONITORING / "alerts.yml").read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    doc = json.loads((MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8"))
    return [t["expr"] for panel in doc["panels"] for t in panel["targets"]]


def test_every_metric_an_alert_or_panel_reads_is_exported() -> None:
    exported = exported_metrics()
    for where, exprs in (("alerts.yml", [r["expr"] for r in alert_rules()]), ("dashboard", dashboard_exprs())):
        used = {m for e in exprs for m in METRIC.findall(e)}
        assert used, where
        assert not used - exported, f"{where} reads metrics no service exports: {sorted(used - exported)}"


def test_the_alerts_cover_lag_dead_letters_checkpoints_and_the_gateway() -> None:
    exprs = " ".join(r["expr"] for r in alert_rules())
    for metric in ("fundtrail_tracker_consumer_lag", "fundtrail_compliance_consumer_lag",
                   "fundtrail_tracker_rejections_total", "fundtrail_tracker_last_checkpoint_timestamp_seconds",
                   "fundtrail_gateway_requests_total", "fundtrail_gateway_request_seconds_bucket"):
        assert metric in exprs, metric
    for rule in alert_rules():
        assert rule["labels"]["severity"] in ("warning", "critical") and rule["annotations"]["summary"]


def test_dashboard_panels_have_unique_ids_and_a_prometheus_datasource() -> None:
    doc = json.loads((MONITORING / "grafana-dashboard.json").read_text(encoding="utf-8"))
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids)) and doc["uid"]
    assert all(p["datasource"]["type"] == "prometheus" for p in doc["panels"])


def _promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is missing: `make install` installs it (Debian package prometheus)"
    return path


def test_promtool_accepts_the_rules_and_the_compose_configuration() -> None:
    promtool = _promtool()
    for args in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"]):
        done = subprocess.run([promtool, *args], cwd=MONITORING, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr


def test_scrape_targets_match_the_manifests() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))["services"]
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text(encoding="utf-8"))
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    env = {name: svc.get("environment", {}) for name, svc in compose.items()}
    assert targets == {
        f"fund-tracker:{env['fund-tracker']['FUNDTRAIL_TRACKER_METRICS_PORT']}",
        f"compliance:{env['compliance']['FUNDTRAIL_COMPLIANCE_METRICS_PORT']}",
        f"gateway:{env['gateway']['FUNDTRAIL_GATEWAY_PORT']}",
    }
    # Reachable from the compose network (the host ports stay on loopback; see test_deploy_manifests).
    assert env["fund-tracker"]["FUNDTRAIL_TRACKER_METRICS_HOST"] == "0.0.0.0"
    assert env["compliance"]["FUNDTRAIL_COMPLIANCE_METRICS_HOST"] == "0.0.0.0"
    kube = yaml.safe_load((MONITORING / "prometheus-kubernetes.yml").read_text(encoding="utf-8"))
    (keep,) = [r for r in kube["scrape_configs"][0]["relabel_configs"] if r.get("action") == "keep"]
    names = set(keep["regex"].split("|"))
    for service in ("fund-tracker", "compliance", "gateway"):
        text = (ROOT / "deploy" / "k8s" / "services" / f"{service}.yaml").read_text(encoding="utf-8")
        deployment = next(d for d in yaml.safe_load_all(text) if d and d.get("kind") == "Deployment")
        ports = {p["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        assert ports & names, f"{service} has no container port named {sorted(names)}"


@pytest.mark.parametrize("module", ["fundtrail_tracker.settings:TrackerSettings",
                                    "fundtrail_compliance.settings:ComplianceSettings"])
def test_workers_listen_on_loopback_unless_told_otherwise(module: str) -> None:
    import importlib

    mod, cls = module.split(":")
    field = getattr(importlib.import_module(mod), cls).model_fields["metrics_host"]
    assert field.default == "127.0.0.1"
