"""The image and the deploys: the Dockerfile is hadolint-clean and built as
asked, the Kubernetes manifests validate offline (kubernetes-validate --strict) and lint
(yamllint), their numbers agree with the settings, and app.json matches the Procfile."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.processes import ROOT
from shared.settings import Settings

K8S = ROOT / "k8s"
MANIFESTS = sorted(p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml")
# Kinds of the Prometheus Operator: no schema ships with kubernetes-validate.
CRD_KINDS = {"ServiceMonitor", "PodMonitor"}
BIN = Path(sys.executable).parent


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def resource(kind: str, name: str) -> dict[str, Any]:
    """A resource of the production set (k8s/kustomization.yaml)."""
    production = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    for path in (K8S / entry for entry in production):
        for doc in documents(path):
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
    raise LookupError(f"no {kind} {name}")


def test_the_dockerfile_is_hadolint_clean_and_built_as_asked() -> None:
    result = subprocess.run([str(BIN / "hadolint"), str(ROOT / "Dockerfile")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    # The locked dependencies, hashes checked, then the project on them alone.
    assert "pip install --no-cache-dir --require-hashes -r requirements/service.lock" in text
    assert "pip install --no-cache-dir --no-deps --no-build-isolation ." in text
    assert "npm ci" in text and "package-lock.json" in text
    assert re.search(r"^USER \d+:\d+$", text, re.M), "a numeric, non-root user"
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in text
    assert re.search(r'^CMD \["switchboard-gateway"\]$', text, re.M)  # exec form
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "node_modules", "tests"} <= set(ignored)



def test_the_image_installs_the_browser_folder_beside_the_gateway(tmp_path: Path) -> None:
    """From what the Dockerfile copies, pip builds a wheel that carries browser/ (the
    library and the demo pages) next to gateway/, and a gateway installed from it serves
    them from there (gateway/static_files.py). No Docker needed: the COPY lines are read."""
    source = tmp_path / "source"
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] != ["COPY"] or words[1].startswith("--from"):
            continue
        *names, target = words[1:]
        for name in names:
            dest = source / target / Path(name).name if target.endswith("/") else source / target
            if (ROOT / name).is_dir():
                shutil.copytree(ROOT / name, dest, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(ROOT / name, dest)
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "--no-build-isolation", "-w", str(tmp_path / "wheel"), str(source)],
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (tmp_path / "wheel").glob("*.whl")
    contents = set(zipfile.ZipFile(wheel).namelist())
    browser = {path.relative_to(ROOT).as_posix() for path in (ROOT / "browser").glob("*/*")
               if path.suffix in {".js", ".html", ".css"}}
    assert browser and browser <= contents
    assert "gateway/static_files.py" in contents
    installed = tmp_path / "installed"
    zipfile.ZipFile(wheel).extractall(installed)
    found = subprocess.run(
        [sys.executable, "-c", "import json, gateway.browser_library as lib, gateway.demo as "
         "demo; print(json.dumps([str(lib.LIBRARY), sorted(lib.MODULES), str(demo.PAGES)]))"],
        cwd=tmp_path, env={"PYTHONPATH": str(installed)}, capture_output=True, text=True,
        timeout=60)
    assert found.returncode == 0, found.stderr
    library, modules, pages = json.loads(found.stdout)
    assert Path(library) == installed / "browser" / "client"
    assert Path(pages) == installed / "browser" / "demo"
    assert modules == sorted(path.name for path in (ROOT / "browser" / "client").glob("*.js"))

def test_the_manifests_validate_strictly() -> None:
    result = subprocess.run([str(BIN / "kubernetes-validate"), "--strict",
                             *map(str, MANIFESTS)], capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for line in output.splitlines():
        if line.startswith("WARN"):  # only the operator's kinds may lack a schema
            assert any(kind in line for kind in CRD_KINDS), line
    validated = sum(1 for line in output.splitlines() if " passed " in line)
    assert validated == sum(1 for p in MANIFESTS for d in documents(p)
                            if d["kind"] not in CRD_KINDS)


def test_yaml_lints_clean() -> None:
    result = subprocess.run([str(BIN / "yamllint"), "-s", str(K8S), str(ROOT / ".yamllint.yaml")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("kustomization", ["kustomization.yaml", "dev/kustomization.yaml"])
def test_kustomizations_name_files_that_exist(kustomization: str) -> None:
    path = K8S / kustomization
    for entry in yaml.safe_load(path.read_text())["resources"]:
        target = (path.parent / entry).resolve()
        assert target.exists(), entry
        if target.is_dir():
            assert (target / "kustomization.yaml").exists()


def test_the_gateways_grace_period_covers_its_shutdown() -> None:
    config = resource("ConfigMap", "switchboard")["data"]
    pod = resource("Deployment", "switchboard-gateway")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    notice = int(config["SWITCHBOARD_SHUTDOWN_SECONDS"])
    closing = 5  # the drain waits at most this long for sockets to close (gateway.sockets)
    assert pod["terminationGracePeriodSeconds"] >= pause + notice + closing
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == int(config["SWITCHBOARD_METRICS_PORT"])
    annotations = resource("Deployment", "switchboard-gateway")["spec"]["template"][
        "metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == config["SWITCHBOARD_METRICS_PORT"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["topologySpreadConstraints"]
    assert container["resources"]["requests"] and container["resources"]["limits"]


def test_the_relays_probes_and_metrics_are_on_its_health_port() -> None:
    template = resource("Deployment", "switchboard-relay")["spec"]["template"]
    container = template["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    port = int(env["SWITCHBOARD_RELAY_HEALTH_PORT"])
    assert {p["containerPort"] for p in container["ports"]} == {port}
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_autoscaling_and_disruption_budgets() -> None:
    hpa = resource("HorizontalPodAutoscaler", "switchboard-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    for component in ("gateway", "relay"):
        pdb = resource("PodDisruptionBudget", f"switchboard-{component}")
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
    variant = documents(K8S / "extras" / "hpa-connections.yaml")[0]
    assert variant["spec"]["metrics"][0]["pods"]["metric"]["name"] == "switchboard_connections"


def test_the_ingress_reaches_the_gateways_port_and_outlasts_their_pings() -> None:
    ingress = documents(K8S / "extras" / "ingress.yaml")[0]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = resource("Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    settings = Settings()
    for direction in ("read", "send"):
        timeout = int(ingress["metadata"]["annotations"][
            f"nginx.ingress.kubernetes.io/proxy-{direction}-timeout"])
        assert timeout > max(settings.ping_interval_s, settings.idle_timeout_s)


def test_app_json_runs_the_procfiles_processes_on_heroku_redis() -> None:
    app = json.loads((ROOT / "app.json").read_text())
    procfile = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines()
                    if line.strip())
    assert set(app["formation"]) == set(procfile) == {"web", "worker"}
    assert any(addon["plan"].startswith("heroku-redis") for addon in app["addons"])
    # Heroku installs requirements.txt: the service's lock, hashes checked.
    lines = [line for line in (ROOT / "requirements.txt").read_text().splitlines()
             if line and not line.startswith("#")]
    assert lines == ["-r requirements/service.lock"]
