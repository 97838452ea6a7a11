"""Containers, manifests and dashboards, checked statically (no container engine or cluster runs on these machines):
the Dockerfile's shape, `docker-compose config` on the compose file, the Kubernetes manifests against Kubernetes
1.31's JSON schemas (kubernetes-validate, strict), and the Grafana dashboards against the code that builds them,
PromQL's parser (promtool) and the series memebot exports."""

import importlib.util, json, os, re, shutil, subprocess, sys
from pathlib import Path

import pytest, yaml

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def _tool(name: str, pkg: str) -> str:
    path = shutil.which(name) or (
        str(Path(sys.executable).parent / name) if (Path(sys.executable).parent / name).exists() else None
    )
    if path is None:
        if os.environ.get("CI") or os.environ.get("MEMEBOT_REQUIRE_SHARED") == "1":
            pytest.fail(f"{name} is required in CI ({pkg})")
        pytest.skip(f"{name} not installed ({pkg})")
    return path


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _exported_series() -> set[str]:
    "Every memebot_ series name the code registers (counters, gauges, histograms, collectors)."
    src = "\n".join(p.read_text() for p in (ROOT / "memebot").rglob("*.py"))
    names = {f"memebot_{n}" for n in re.findall(r'(?:counter|gauge|histogram)\(\s*"([a-z_]+)"', src)}
    return names | set(re.findall(r'"(memebot_[a-z_]+)"', src))


# --- Dockerfile -------------------------------------------------------------------------------------------------------
def test_dockerfile_is_multistage_nonroot_pinned_with_healthcheck():
    "Two stages (build, runtime), a pinned base, torch's CPU build, a numeric non-root user, a /healthz check."
    text = (DEPLOY / "docker/Dockerfile").read_text()
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert [f.split()[-1] for f in froms] == ["build", "runtime"]
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", text).group(1)
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base), base  # a patch version, not a moving tag
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in text
    assert "COPY --from=build /opt/memebot /opt/memebot" in text
    runtime = text[text.index("AS runtime") :]
    user = re.search(r"^USER (\d+):(\d+)$", runtime, re.M)
    assert user and int(user.group(1)) >= 1000
    assert "HEALTHCHECK" in runtime and "/healthz" in runtime and 'ENTRYPOINT ["memebot"]' in runtime


# --- docker compose ---------------------------------------------------------------------------------------------------
def _compose_dir(tmp_path: Path) -> Path:
    d = tmp_path / "deploy"
    shutil.copytree(DEPLOY, d)
    shutil.copy(d / "memebot.env.example", d / "memebot.env")
    (d / "secrets").mkdir()
    for s in yaml.safe_load((d / "docker-compose.yml").read_text())["secrets"]:
        (d / "secrets" / s).write_text("placeholder\n")
    return d


def test_compose_file_validates_with_docker_compose(tmp_path):
    "`docker-compose config` accepts the stack, which has every service the issue names; a typo is refused."
    exe = _tool("docker-compose", "Debian's docker-compose; .ci/run installs it")
    d = _compose_dir(tmp_path)
    r = subprocess.run([exe, "config"], cwd=d, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    want = {
        "node",
        "api",
        "prefect-server",
        "worker",
        "postgres",
        "redis",
        "prometheus",
        "alertmanager",
        "grafana",
    }
    assert set(cfg["services"]) == want
    for name, svc in cfg["services"].items():
        assert ":" in svc["image"] and not svc["image"].endswith(":latest"), name
    assert cfg["services"]["node"]["environment"]["MEMEBOT_MONITORING_METRICS_HOST"] == "0.0.0.0"
    assert "/readyz" in json.dumps(cfg["services"]["node"]["healthcheck"]["test"])
    bad = (d / "docker-compose.yml").read_text().replace("healthcheck:", "healthchek:", 1)
    (d / "docker-compose.yml").write_text(bad)
    r = subprocess.run([exe, "config", "-q"], cwd=d, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "healthchek" in r.stderr


# --- Kubernetes -------------------------------------------------------------------------------------------------------
def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_k8s_manifests_validate_against_kubernetes_schemas(tmp_path):
    "Every manifest the kustomization lists (and the Secret example) is valid Kubernetes 1.31, strictly."
    exe = _tool("kubernetes-validate", "pip install kubernetes-validate; in the dev extras")
    kust = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = [K8S / f for f in kust["resources"]] + [K8S / "secret.example.yaml"]
    r = subprocess.run([exe, "--strict", "--quiet", "-k", "1.31.0", *map(str, files)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text((K8S / "api.yaml").read_text().replace("readinessProbe:", "readinesProbe:"))
    r = subprocess.run([exe, "--strict", "--quiet", str(bad)], capture_output=True, text=True)
    assert r.returncode != 0 and "readinesProbe" in r.stdout + r.stderr


def test_k8s_workloads_have_probes_resources_and_run_as_non_root():
    "Every workload runs as non-root with limits; memebot's have liveness and readiness probes on its endpoints."
    kinds = {}
    for f in yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]:
        for d in _docs(K8S / f):
            kinds.setdefault(d["kind"], []).append(d)
    assert {"Deployment", "StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy"} <= set(kinds)
    for w in kinds["Deployment"] + kinds["StatefulSet"]:
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, w["metadata"]["name"]
        for c in pod["containers"]:
            assert c["resources"]["limits"] and c["resources"]["requests"], c["name"]
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            if c["image"] == "memebot" and w["metadata"]["name"] in ("node", "api"):
                assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
                assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    node = next(d for d in kinds["Deployment"] if d["metadata"]["name"] == "node")
    assert node["spec"]["replicas"] == 1 and node["spec"]["strategy"]["type"] == "Recreate"  # one ledger writer
    api = next(d for d in kinds["Deployment"] if d["metadata"]["name"] == "api")  # it supervises its users' bots:
    assert api["spec"]["replicas"] == 1 and api["spec"]["strategy"]["type"] == "Recreate"  # one owner of them
    env = {e["name"]: e["value"] for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    mounts = {m["mountPath"] for m in api["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert {
        env["MEMEBOT_ENTERPRISE_BOTS_DIR"].rsplit("/", 1)[0],
        env["MEMEBOT_ENTERPRISE_WALLETS_DIR"].rsplit("/", 1)[0],
    } <= mounts
    assert any(p["spec"].get("podSelector") == {} for p in kinds["NetworkPolicy"])  # default deny


def test_k8s_configmap_is_in_sync_with_settings_ini():
    "deploy/k8s/configmap.yaml is what deploy/k8s/configmap.py renders from settings.ini."
    mod = _load(K8S / "configmap.py", "k8s_configmap")
    assert (K8S / "configmap.yaml").read_text() == mod.render(), "run: python deploy/k8s/configmap.py"
    settings = _docs(K8S / "configmap.yaml")[0]["data"]["settings.ini"]
    assert settings == (ROOT / "settings.ini").read_text()


# --- Grafana ----------------------------------------------------------------------------------------------------------
def test_grafana_dashboards_built_from_code_parse_and_read_real_series(tmp_path):
    "The JSON matches deploy/grafana/build.py; every query parses as PromQL and reads exported or recorded series."
    mod = _load(DEPLOY / "grafana/build.py", "grafana_build")
    boards = mod.dashboards()
    assert set(boards) == {"memebot-node", "memebot-execution", "memebot-risk", "memebot-data", "memebot-ml"}
    exprs = []
    for uid, d in boards.items():
        assert (DEPLOY / f"grafana/dashboards/{uid}.json").read_text() == mod.render(d), "run deploy/grafana/build.py"
        doc = json.loads(mod.render(d))
        assert doc["uid"] == uid and len({p["id"] for p in doc["panels"]}) == len(doc["panels"])
        exprs += [t["expr"] for p in doc["panels"] for t in p["targets"]]
    assert len(exprs) >= 30
    rules_text = (DEPLOY / "prometheus/rules/memebot.yml").read_text()
    recorded = set(re.findall(r"record: (\S+)", rules_text))
    exported = _exported_series() | {"up", "process_resident_memory_bytes", "process_cpu_seconds_total"}
    for e in exprs:
        for name in re.findall(r"\b(memebot:[a-z0-9_:]+)", e):
            assert name in recorded, (name, e)
        for name in re.findall(r"\b(memebot_[a-z_]+)", e):
            assert re.sub(r"_bucket$", "", name) in exported, (name, e)
    promtool = _tool("promtool", "Debian's prometheus; .ci/run installs it")
    concrete = [e.replace("$job", ".*").replace("$instance", ".*") for e in exprs]
    rules = {
        "groups": [{"name": "panels", "rules": [{"record": f"panel_{i}", "expr": e} for i, e in enumerate(concrete)]}]
    }
    (tmp_path / "panels.yml").write_text(yaml.safe_dump(rules))
    r = subprocess.run([promtool, "check", "rules", str(tmp_path / "panels.yml")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# --- log shipping -----------------------------------------------------------------------------------------------------
def test_log_shipping_examples_read_fields_memebot_writes(tmp_path):
    "Promtail's and Fluent Bit's examples parse, and the fields they extract are in memebot's own JSON lines."
    from memebot.obs import configure_logging, get_logger
    import structlog

    f, saved = tmp_path / "node.log", structlog.get_config()
    try:
        configure_logging("WARNING", "json", file=str(f), bot_id=3)
        get_logger("memebot.node", run_id="r1").debug("order_submitted", client_id="r1-000001")
    finally:  # leave logging as the other tests found it
        structlog.contextvars.clear_contextvars()
        structlog.configure(**saved)
    line = json.loads(f.read_text().splitlines()[-1])
    promtail = yaml.safe_load((DEPLOY / "logging/promtail.yml").read_text())
    stages = promtail["scrape_configs"][0]["pipeline_stages"]
    fields = set(next(s["json"]["expressions"].values() for s in stages if "json" in s))
    assert fields <= set(line), fields - set(line)
    assert line["client_id"] == "r1-000001" and line["bot_id"] == 3
    fb = yaml.safe_load((DEPLOY / "logging/fluent-bit.yaml").read_text())
    parser = fb["parsers"][0]
    assert parser["format"] == "json" and parser["time_key"] in line
    from datetime import datetime

    datetime.strptime(line["timestamp"], parser["time_format"].replace("%L", "%f"))  # the format matches
