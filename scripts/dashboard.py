#!/usr/bin/env python3
"""Generates the gateway's Grafana dashboard (charts/datamind/files/dashboards/gateway.json).

One source for the panels: each panel is (title, unit, kind, [(PromQL, legend)]), laid out
in rows on Grafana's 24-column grid. The Helm chart provisions the JSON for Grafana;
docs/render_dashboard.py draws the same panels from real scrapes into docs/dashboard.png.
Run it after changing a panel; the chart test checks the file is current.
"""
import json
import pathlib
import sys

RATE = "$__rate_interval"

ROWS = [
    ("Traffic and errors", [
        ("Requests per second by status", "reqps", "timeseries",
         [(f"sum by (status) (rate(datamind_requests_total[{RATE}]))", "{{status}}")]),
        ("Error ratio (5xx)", "percentunit", "timeseries",
         [(f'sum(rate(datamind_requests_total{{status=~"5.."}}[{RATE}])) / clamp_min(sum(rate(datamind_requests_total[{RATE}])), 1e-9)', "5xx")]),
        ("Requests in flight", "short", "timeseries",
         [("sum(datamind_requests_in_flight)", "in flight")]),
    ]),
    ("Latency", [
        ("Request duration p50 / p95 / p99", "s", "timeseries",
         [(f"histogram_quantile({q}, sum by (le) (rate(datamind_request_duration_seconds_bucket[{RATE}])))", f"p{int(q*100)}")
          for q in (0.5, 0.95, 0.99)]),
        ("Time to first token p50 / p95 (streams)", "s", "timeseries",
         [(f"histogram_quantile({q}, sum by (le) (rate(gen_ai_server_time_to_first_token_seconds_bucket[{RATE}])))", f"p{int(q*100)}")
          for q in (0.5, 0.95)]),
        ("Gateway overhead p50 / p99 (excl. upstream)", "s", "timeseries",
         [(f"histogram_quantile({q}, sum by (le) (rate(datamind_gateway_overhead_seconds_bucket[{RATE}])))", f"p{int(q*100)}")
          for q in (0.5, 0.99)]),
        ("Time per output token p95 by model", "s", "timeseries",
         [(f"histogram_quantile(0.95, sum by (le, gen_ai_request_model) (rate(gen_ai_server_time_per_output_token_seconds_bucket[{RATE}])))", "{{gen_ai_request_model}}")]),
    ]),
    ("Tokens and spend", [
        ("Tokens per second by model and type", "short", "timeseries",
         [(f"sum by (gen_ai_request_model, gen_ai_token_type) (rate(gen_ai_client_token_usage_sum[{RATE}]))", "{{gen_ai_request_model}} {{gen_ai_token_type}}")]),
        ("Tokens per second by tenant", "short", "timeseries",
         [(f"sum by (tenant, direction) (rate(datamind_tenant_tokens_total[{RATE}]))", "{{tenant}} {{direction}}")]),
        ("Spend (USD per hour) by tenant and model", "currencyUSD", "timeseries",
         [(f"sum by (tenant, model) (rate(datamind_spend_usd_total[{RATE}])) * 3600", "{{tenant}} {{model}}")]),
        ("Budget remaining (USD)", "currencyUSD", "timeseries",
         [("min by (tenant, period) (datamind_budget_remaining_usd)", "{{tenant}} {{period}}")]),
    ]),
    ("Rate limiting and cache", [
        ("Rate-limit rejections by dimension", "reqps", "timeseries",
         [(f"sum by (dimension) (rate(datamind_ratelimit_rejections_total[{RATE}]))", "{{dimension}}")]),
        ("Cache hit ratio", "percentunit", "timeseries",
         [(f'sum(rate(datamind_cache_requests_total{{result="hit"}}[{RATE}])) / clamp_min(sum(rate(datamind_cache_requests_total{{result=~"hit|miss"}}[{RATE}])), 1e-9)', "hit ratio")]),
        ("Cache decisions per second", "reqps", "timeseries",
         [(f"sum by (result) (rate(datamind_cache_requests_total[{RATE}]))", "{{result}}")]),
    ]),
    ("Deployments and routing", [
        ("Upstream attempts by outcome", "reqps", "timeseries",
         [(f"sum by (deployment, outcome) (rate(datamind_upstream_attempts_total[{RATE}]))", "{{deployment}} {{outcome}}")]),
        ("Upstream attempt duration p95 by provider", "s", "timeseries",
         [(f"histogram_quantile(0.95, sum by (le, gen_ai_provider_name) (rate(gen_ai_client_operation_duration_seconds_bucket[{RATE}])))", "{{gen_ai_provider_name}}")]),
        ("In flight and queue depth per deployment", "short", "timeseries",
         [("sum by (deployment) (datamind_deployment_in_flight)", "{{deployment}} in flight"),
          ("sum by (deployment) (datamind_deployment_queue_depth)", "{{deployment}} queued")]),
        ("Route decisions by rule", "reqps", "timeseries",
         [(f"sum by (rule, outcome) (rate(datamind_route_decisions_total[{RATE}]))", "{{rule}} {{outcome}}")]),
    ]),
    ("Gateway health", [
        ("Telemetry dropped per second", "short", "timeseries",
         [(f"sum by (signal, reason) (rate(datamind_telemetry_dropped_total[{RATE}]))", "{{signal}} {{reason}}")]),
        ("Spans exported per second", "short", "timeseries",
         [(f"sum(rate(datamind_telemetry_exported_total[{RATE}]))", "spans")]),
        ("Config reloads", "short", "timeseries",
         [("sum by (result) (increase(datamind_config_reloads_total[1h]))", "{{result}}")]),
    ]),
]


def dashboard():
    panels, y, pid = [], 0, 1
    for row_title, row in ROWS:
        panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y = pid + 1, y + 1
        width = 24 // len(row)
        for i, (title, unit, kind, queries) in enumerate(row):
            panels.append({
                "id": pid, "type": kind, "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": width, "x": i * width, "y": y},
                "fieldConfig": {"defaults": {"unit": unit, "min": 0}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                            "tooltip": {"mode": "multi"}},
                "targets": [{"refId": chr(ord("A") + j), "expr": expr, "legendFormat": legend}
                            for j, (expr, legend) in enumerate(queries)],
            })
            pid += 1
        y += 8
    return {
        "title": "DataMind gateway",
        "uid": "datamind-gateway",
        "description": "Traffic, errors, latency and TTFT, overhead, tokens and spend, rate limits, cache, deployments and routing. Generated by scripts/dashboard.py; metrics documented in README.md (Observability).",
        "tags": ["datamind", "llm", "gateway"],
        "schemaVersion": 39,
        "editable": True,
        "time": {"from": "now-1h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{
            "name": "datasource", "type": "datasource", "query": "prometheus",
            "label": "Prometheus", "current": {}, "hide": 0,
        }]},
        "panels": panels,
    }


if __name__ == "__main__":
    out = pathlib.Path(__file__).resolve().parent.parent / "charts/datamind/files/dashboards/gateway.json"
    text = json.dumps(dashboard(), indent=2) + "\n"
    if sys.argv[1:] == ["--check"]:
        sys.exit(0 if out.read_text() == text else f"{out} is stale: run scripts/dashboard.py")
    out.write_text(text)
    print(f"wrote {out}")
