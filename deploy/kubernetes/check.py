#!/usr/bin/env python3
"""check.py - helper of validate.sh.

  check.py render DIR          prints the objects of the kustomization in DIR
                               (its resources, plus the ConfigMap and Secret
                               its generators make, without hash suffixes)
                               for machines where `kubectl kustomize` is
                               missing or too old;
  check.py check FILE PIPELINE_H [GRAPEVINE]
                               checks the rendered objects for what the
                               schemas cannot say; exits 1 listing every
                               problem.
"""

import base64
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml


def render(d: Path) -> None:
    k = yaml.safe_load((d / "kustomization.yaml").read_text())
    docs = []
    for r in k.get("resources", []):
        docs += [x for x in yaml.safe_load_all((d / r).read_text()) if x]
    for g in k.get("configMapGenerator", []):
        data = {}
        for f in g.get("files", []):
            key, _, path = f.rpartition("=") if "=" in f else (Path(f).name, "", f)
            data[key] = (d / path).read_text()
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": {"name": g["name"]}, "data": data})
    for g in k.get("secretGenerator", []):
        data = {}
        for f in g.get("files", []):
            key, _, path = f.partition("=") if "=" in f else (Path(f).name, "", f)
            data[key] = base64.b64encode((d / path).read_bytes()).decode()
        docs.append({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                     "metadata": {"name": g["name"]}, "data": data})
    for img in k.get("images", []):
        ref = f"{img.get('newName', img['name'])}:{img.get('newTag', 'latest')}"
        for doc in docs:
            spec = doc.get("spec", {}).get("template", {}).get("spec", {})
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                if c.get("image") == img["name"]:
                    c["image"] = ref
    print(yaml.safe_dump_all(docs, sort_keys=False))


def probe_path(probe: dict) -> str:
    """The admin path an exec or httpGet probe asks for ("" if none)."""
    if "httpGet" in probe:
        return probe["httpGet"].get("path", "")
    cmd = " ".join(probe.get("exec", {}).get("command", []))
    m = re.search(r"http://127\.0\.0\.1:9901(/\w+)", cmd)
    return m.group(1) if m else ""


def check_gateway(sts: dict, by_kind: dict, drain_s: int, bad: list) -> None:
    pod = sts["spec"]["template"]["spec"]
    gw = next(c for c in pod["containers"] if c["name"] == "grapevine")
    env = {e["name"]: e for e in gw.get("env", [])}
    if probe_path(gw.get("readinessProbe", {})) != "/ready":
        bad.append("gateway readinessProbe must ask /ready")
    for p in ("livenessProbe", "startupProbe"):
        if probe_path(gw.get(p, {})) != "/health":
            bad.append(f"gateway {p} must ask /health")
    stop = gw.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    delay = int(stop[1]) if len(stop) == 2 and stop[0] == "sleep" else None
    if delay is None:
        bad.append("gateway needs a preStop `sleep N` (endpoints drop the pod meanwhile)")
    elif pod.get("terminationGracePeriodSeconds", 30) < delay + drain_s:
        bad.append(f"terminationGracePeriodSeconds {pod.get('terminationGracePeriodSeconds', 30)}"
                   f" < preStop {delay}s + drain {drain_s}s")
    if env.get("POD_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") \
            != "status.podIP":
        bad.append("POD_IP must come from status.podIP (the advertised address)")
    join = env.get("GRAPEVINE_JOIN", {}).get("value", "")
    headless = [s for s in by_kind.get("Service", [])
                if s["spec"].get("clusterIP") == "None"
                and s["spec"].get("selector") == sts["spec"]["selector"]["matchLabels"]]
    if not headless:
        bad.append("no headless Service selects the gateways")
    elif join.split(":")[0] != headless[0]["metadata"]["name"] \
            or not headless[0]["spec"].get("publishNotReadyAddresses"):
        bad.append("GRAPEVINE_JOIN must name the headless Service, which must publish "
                   "not-ready addresses (pods join before they are ready)")
    if sts["spec"].get("serviceName") not in [s["metadata"]["name"] for s in headless]:
        bad.append("the StatefulSet's serviceName must be the headless Service")
    ann = sts["spec"]["template"]["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true":
        bad.append("pods need the prometheus.io/scrape annotation")
    if not sts["spec"]["template"]["spec"].get("topologySpreadConstraints"):
        bad.append("gateways need topologySpreadConstraints")
    pdbs = [p for p in by_kind.get("PodDisruptionBudget", [])
            if p["spec"]["selector"] == sts["spec"]["selector"]]
    if not pdbs:
        bad.append("no PodDisruptionBudget covers the gateways")


def check_pods(docs: list, bad: list) -> None:
    for d in docs:
        pod = d.get("spec", {}).get("template", {}).get("spec")
        if pod is None:
            continue
        name = f"{d['kind']}/{d['metadata']['name']}"
        if not pod.get("securityContext", {}).get("runAsNonRoot"):
            bad.append(f"{name}: pod securityContext needs runAsNonRoot")
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            sc = c.get("securityContext", {})
            if not sc.get("readOnlyRootFilesystem") or sc.get("allowPrivilegeEscalation", True):
                bad.append(f"{name}/{c['name']}: needs a read-only root filesystem and no "
                           "privilege escalation")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                bad.append(f"{name}/{c['name']}: must drop all capabilities")
            res = c.get("resources", {})
            if not res.get("requests") or not res.get("limits", {}).get("memory"):
                bad.append(f"{name}/{c['name']}: needs resource requests and a memory limit")


def check_config(by_kind: dict, grapevine: str, bad: list) -> None:
    cms = [c for c in by_kind.get("ConfigMap", []) if "grapevine.yaml" in c.get("data", {})]
    if not cms:
        bad.append("no ConfigMap carries grapevine.yaml")
        return
    if not grapevine:
        print("  (no grapevine binary: the config file was not checked with grapevine validate)")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(cms[0]["data"]["grapevine.yaml"])
        f.flush()
        r = subprocess.run([grapevine, "validate", "-c", f.name], capture_output=True, text=True)
    if r.returncode != 0:
        bad.append(f"grapevine validate rejects grapevine.yaml: {r.stderr.strip() or r.stdout}")
    else:
        print("  grapevine validate: the ConfigMap's grapevine.yaml is valid")


def check(rendered: Path, pipeline_h: Path, grapevine: str) -> int:
    docs = [d for d in yaml.safe_load_all(rendered.read_text()) if d]
    by_kind: dict = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    m = re.search(r"#define GW_DRAIN_MS\s+(\d+)", pipeline_h.read_text())
    drain_s = (int(m.group(1)) + 999) // 1000 if m else 30
    bad: list = []
    sts = [s for s in by_kind.get("StatefulSet", []) if s["metadata"]["name"] == "grapevine"]
    if not sts:
        bad.append("no StatefulSet grapevine")
    else:
        check_gateway(sts[0], by_kind, drain_s, bad)
    check_pods(docs, bad)
    check_config(by_kind, grapevine, bad)
    for b in bad:
        print(f"  PROBLEM: {b}")
    print(f"  {len(docs)} objects ({', '.join(sorted(by_kind))}); "
          f"{len(bad)} problem(s); drain {drain_s}s")
    return 1 if bad else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "render":
        render(Path(sys.argv[2]))
        sys.exit(0)
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]))
    sys.exit(__doc__)
