"""Build memebot's Grafana dashboards from code (grafanalib) into deploy/grafana/dashboards/*.json.

Run: .venv/bin/python deploy/grafana/build.py   (the tests check the JSON is in sync with this file, that every
query parses as PromQL (promtool) and reads only series memebot exports or the recording rules define).
Five dashboards: node, execution, risk, data quality, ML. Each has a `job`/`instance` variable from Prometheus."""

import json
from pathlib import Path
from grafanalib.core import Dashboard, GridPos, Stat, Target, Template, Templating, TimeSeries
from grafanalib._gen import DashboardEncoder

OUT = Path(__file__).parent / "dashboards"
DS = "Prometheus"
SEL = 'job=~"$job", instance=~"$instance"'


def ts(title, exprs, unit="short", x=0, y=0, w=12, h=8, legend="{{run_id}}"):
    "A time-series panel of one or more PromQL expressions."
    if isinstance(exprs, str):
        exprs = [(exprs, legend)]
    targets = [Target(expr=e, legendFormat=lg, refId=chr(65 + i)) for i, (e, lg) in enumerate(exprs)]
    return TimeSeries(title=title, dataSource=DS, targets=targets, unit=unit, gridPos=GridPos(h=h, w=w, x=x, y=y))


def stat(title, expr, unit="short", x=0, y=0, w=6, h=4, thresholds=None):
    "A single-value panel."
    return Stat(
        title=title,
        dataSource=DS,
        targets=[Target(expr=expr, refId="A", instant=True)],
        format=unit,
        gridPos=GridPos(h=h, w=w, x=x, y=y),
        thresholds=thresholds or [],
    )


def dashboard(uid, title, panels, tags):
    tmpl = Templating(
        list=[
            Template(name="job", dataSource=DS, query='label_values(up{job=~"memebot-.*"}, job)', includeAll=True,
                     multi=True, default="$__all"),
            Template(name="instance", dataSource=DS, query='label_values(up{job=~"$job"}, instance)',
                     includeAll=True, multi=True, default="$__all"),
        ]
    )  # fmt: skip
    return Dashboard(uid=uid, title=title, tags=["memebot", *tags], timezone="utc", refresh="30s",
                     templating=tmpl, panels=panels).auto_panel_ids()  # fmt: skip


def dashboards() -> dict:
    node = dashboard("memebot-node", "memebot / node", [
        stat("Up", f"min(up{{{SEL}}})", x=0),
        stat("Heartbeat age", f"max(time() - memebot_node_heartbeat_timestamp_seconds{{{SEL}}})", "s", x=6),
        stat("Feed lag", f"max(memebot_feed_lag_seconds{{{SEL}}})", "s", x=12),
        stat("Resident memory", f"max(process_resident_memory_bytes{{{SEL}}})", "bytes", x=18),
        ts("Events / s", f"sum by (run_id) (memebot:node_events:rate1m{{{SEL}}})", y=4),
        ts("Equity", f"memebot_node_equity{{{SEL}}}", y=4, x=12),
        ts("PnL", [(f'memebot_node_pnl{{{SEL}, kind="realized"}}', "realized {{run_id}}"),
                   (f'memebot_node_pnl{{{SEL}, kind="unrealized"}}', "unrealized {{run_id}}")], y=12),
        ts("CPU seconds / s", f"rate(process_cpu_seconds_total{{{SEL}}}[5m])", y=12, x=12, legend="{{instance}}"),
        ts("Disk free", f"memebot:disk_free:ratio{{{SEL}}}", "percentunit", y=20, legend="{{path}}"),
        ts("Gross exposure", f"memebot_node_exposure{{{SEL}}}", y=20, x=12),
    ], ["node"])  # fmt: skip
    execution = dashboard("memebot-execution", "memebot / execution", [
        ts("Tick-to-order p99", f"memebot:tick_to_order_seconds:p99_5m{{{SEL}}}", "s", legend="{{instance}}"),
        ts("Orders / s", f"memebot:node_orders:rate5m{{{SEL}}}", x=12),
        ts("Open orders", f"memebot_node_open_orders{{{SEL}}}", y=8),
        ts("Chain requests / s by outcome",
           f"sum by (api, outcome) (rate(memebot_chain_requests_total{{{SEL}}}[5m]))", y=8, x=12,
           legend="{{api}} {{outcome}}"),
        ts("RPC error ratio", f"memebot:chain_requests:error_ratio5m{{{SEL}}}", "percentunit", y=16,
           legend="{{api}}"),
        ts("Confirmation p95", [
            (f"histogram_quantile(0.95, sum by (le) (rate(memebot_solana_confirm_seconds_bucket{{{SEL}}}[5m])))",
             "solana"),
            (f"histogram_quantile(0.95, sum by (le) (rate(memebot_evm_confirm_seconds_bucket{{{SEL}}}[5m])))",
             "evm")], "s", y=16, x=12),
        ts("Reconciliation differences", f"memebot_reconcile_differences{{{SEL}}}", y=24, legend="{{venue}}"),
        ts("Ledger fills / s", f"sum by (run_id) (rate(memebot_ledger_fills_total{{{SEL}}}[5m]))", y=24, x=12),
        ts("Ledger write p99",
           f"histogram_quantile(0.99, sum by (instance, le) (rate(memebot_ledger_write_seconds_bucket{{{SEL}}}[5m])))",
           "s", y=32, legend="{{instance}}"),
    ], ["execution"])  # fmt: skip
    risk = dashboard("memebot-risk", "memebot / risk", [
        stat("Risk state (0 active, 1 reducing, 2 halted)", f"max(memebot_risk_state{{{SEL}}})", x=0, w=8),
        stat("Latches holding", f"sum(memebot_risk_latched{{{SEL}}})", x=8, w=8),
        stat("Breaker trips (24 h)", f"sum(increase(memebot_risk_circuit_trips_total{{{SEL}}}[24h]))", x=16, w=8),
        ts("Latches", f"memebot_risk_latched{{{SEL}}} > 0", y=4, legend="{{engine}} {{kind}}"),
        ts("Rejections / s by reason", f"memebot:risk_rejections:rate5m{{{SEL}}}", y=4, x=12, legend="{{reason}}"),
        ts("Breaker trips / s", f"sum by (breaker) (rate(memebot_risk_circuit_trips_total{{{SEL}}}[5m]))", y=12,
           legend="{{breaker}}"),
        ts("Token safety refusals / s", f"sum(rate(memebot_token_safety_refused_total{{{SEL}}}[5m]))", y=12, x=12,
           legend="refused"),
    ], ["risk"])  # fmt: skip
    data = dashboard("memebot-data", "memebot / data quality", [
        ts("Provider requests / s", f"sum by (provider, outcome) (rate(memebot_http_requests_total{{{SEL}}}[5m]))",
           legend="{{provider}} {{outcome}}"),
        ts("Provider error ratio", f"memebot:http_requests:error_ratio5m{{{SEL}}}", "percentunit", x=12,
           legend="{{provider}}"),
        ts("Provider latency p95",
           f"histogram_quantile(0.95, sum by (provider, le) (rate(memebot_http_request_seconds_bucket{{{SEL}}}[5m])))",
           "s", y=8, legend="{{provider}}"),
        ts("Retries / s", f"sum by (provider, reason) (rate(memebot_http_retries_total{{{SEL}}}[5m]))", y=8, x=12,
           legend="{{provider}} {{reason}}"),
        ts("Feed reconnects / s", f"sum by (feed) (rate(memebot_feed_reconnects_total{{{SEL}}}[5m]))", y=16,
           legend="{{feed}}"),
        ts("Quality flags / s", f"sum by (reason) (rate(memebot_quality_flags_total{{{SEL}}}[1h]))", y=16, x=12,
           legend="{{reason}}"),
    ], ["data"])  # fmt: skip
    ml = dashboard("memebot-ml", "memebot / ML", [
        ts("Predictions / s", f"sum by (model, role) (rate(memebot_model_predictions_total{{{SEL}}}[5m]))",
           legend="{{model}} {{role}}"),
        ts("Prediction latency p99",
           f"histogram_quantile(0.99, sum by (model, le) (rate(memebot_model_predict_seconds_bucket{{{SEL}}}[5m])))",
           "s", x=12, legend="{{model}}"),
        ts("Feature drift (PSI)", f"memebot_feature_psi{{{SEL}}}", y=8, legend="{{model}} {{feature}}"),
        ts("Serving version", f"memebot_model_serving_version{{{SEL}}}", y=8, x=12, legend="{{model}} {{alias}}"),
    ], ["ml"])  # fmt: skip
    return {d.uid: d for d in (node, execution, risk, data, ml)}


def render(d) -> str:
    return json.dumps(d.to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for uid, d in dashboards().items():
        (OUT / f"{uid}.json").write_text(render(d))
