"""Checks of the rendered Kubernetes manifests and the Dockerfile (run by scripts/check-deploy.sh).

    check_deploy.py schema RENDERED.yaml...        Kubernetes JSON schemas (strict), ServiceMonitor too
    check_deploy.py invariants RENDERED.yaml...    what the gateway needs that no scanner knows
    check_deploy.py checkov SKIPS.yaml REPORT.json...  findings against the justified skip list
    check_deploy.py self-test RENDERED.yaml        each invariant catches a broken manifest

Each command prints one line per problem and exits 1 when there is any. A rendered file is named
after its overlay (production.yaml, development.yaml).
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

import yaml

# Kubernetes versions the manifests must be valid for: the oldest supported here (features used:
# matchLabelKeys, unhealthyPodEvictionPolicy) and the newest whose schemas are bundled.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]

# The environment the gateway reads. Each SCIMGATE_ name may instead be given as NAME_FILE.
REQUIRED_ENV = {
    "SCIMGATE_DATABASE_URL",
    "SCIMGATE_REDIS_URL",
    "SCIMGATE_LISTEN",
    "SCIMGATE_METRICS_LISTEN",
    "SCIMGATE_PUBLIC_URL",
    "SCIMGATE_LOG_FORMAT",
    "SCIMGATE_LOG",
    "SCIMGATE_DRAIN_SECONDS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_SERVICE_NAME",
}
# Further settings the gateway documents (README "Running it"); allowed, not required.
OPTIONAL_ENV = {
    "SCIMGATE_MAX_RESULTS",
    "SCIMGATE_DEFAULT_PAGE_SIZE",
    "SCIMGATE_MAX_PAYLOAD_BYTES",
    "SCIMGATE_MAX_GROUP_PAYLOAD_BYTES",
    "SCIMGATE_MAX_DB_CONNECTIONS",
}
SECRET_ENV = {"SCIMGATE_DATABASE_URL", "SCIMGATE_REDIS_URL"}
FIXED_ENV_VALUES = {
    "SCIMGATE_LISTEN": "0.0.0.0:8080",
    "SCIMGATE_METRICS_LISTEN": "0.0.0.0:9090",
    "SCIMGATE_LOG_FORMAT": "json",
}
IN_FLIGHT_SECONDS = 30  # the gateway's shutdown timeout for requests in flight
GROUP_BODY_BYTES = 16 * 1024 * 1024
EGRESS_PORTS = {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 6379), ("TCP", 4317), ("TCP", 443)}
INGRESS_RULES = {("TCP", 8080): "ingress-nginx", ("TCP", 9090): "monitoring"}
# checkov frameworks that must have scanned something (the secrets scan reports only findings).
REQUIRED_SCANS = {"kubernetes", "dockerfile"}
CREDENTIALS_IN_URL = re.compile(r"://[^/\s:@]+:[^/\s@]+@")

# The part of the ServiceMonitor (monitoring.coreos.com/v1) these manifests use, strictly: no
# published JSON schema ships with kubernetes-validate for this CRD.
SERVICE_MONITOR_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "jobLabel": {"type": "string"},
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchLabels": {"type": "object", "additionalProperties": {"type": "string"}},
                    },
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^([0-9]+(ms|s|m|h))+$"},
                            "honorLabels": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}


def load(path: str) -> list[dict]:
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def name_of(obj: dict) -> str:
    meta = obj.get("metadata", {})
    return f"{obj.get('kind')}/{meta.get('name')}" + (f" (ns {meta['namespace']})" if meta.get("namespace") else "")


# ---------------------------------------------------------------------------------------------
# schema


def check_schema(paths: list[str]) -> list[str]:
    import jsonschema
    import kubernetes_validate

    problems = []
    for path in paths:
        for obj in load(path):
            if obj.get("kind") == "ServiceMonitor":
                errors = jsonschema.Draft7Validator(SERVICE_MONITOR_SCHEMA).iter_errors(obj)
                for e in errors:
                    where = "/".join(str(p) for p in e.absolute_path)
                    problems.append(f"{path}: {name_of(obj)}: {where}: {e.message}")
                continue
            for version in KUBERNETES_VERSIONS:
                try:
                    kubernetes_validate.validate(obj, version, strict=True)
                except kubernetes_validate.ValidationError as e:
                    where = "/".join(str(p) for p in e.path)
                    problems.append(f"{path}: {name_of(obj)} (Kubernetes {version}): {where}: {e.message}")
                except kubernetes_validate.SchemaNotFoundError:
                    problems.append(f"{path}: {name_of(obj)}: no schema for Kubernetes {version}")
    return problems


# ---------------------------------------------------------------------------------------------
# invariants


def only(objs: list[dict], kind: str, problems: list[str], where: str) -> dict | None:
    found = [o for o in objs if o.get("kind") == kind]
    if len(found) != 1:
        problems.append(f"{where}: expected one {kind}, found {len(found)}")
        return None
    return found[0]


def selects(selector: dict | None, labels: dict) -> bool:
    if not selector:
        return False
    return all(labels.get(k) == v for k, v in selector.items())


def container_env(container: dict, configmaps: dict[str, dict], problems: list[str], where: str) -> dict[str, dict]:
    """Every variable the container sees, name -> source ({"value": ...} or {"valueFrom": ...})."""
    env: dict[str, dict] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef", {}).get("name")
        if ref is None:
            problems.append(f"{where}: envFrom other than a ConfigMap ({source})")
            continue
        if ref not in configmaps:
            problems.append(f"{where}: envFrom names ConfigMap {ref}, which the overlay does not render")
            continue
        prefix = source.get("prefix", "")
        for key, value in configmaps[ref].get("data", {}).items():
            env[prefix + key] = {"value": value, "from": f"ConfigMap {ref}"}
    for var in container.get("env", []):
        env[var["name"]] = var
    return env


def check_env(env: dict[str, dict], volumes: dict[str, dict], mounts: list[dict], problems: list[str], where: str):
    allowed = REQUIRED_ENV | OPTIONAL_ENV
    for name in env:
        base = name[: -len("_FILE")] if name.endswith("_FILE") and name.startswith("SCIMGATE_") else name
        if base not in allowed:
            problems.append(f"{where}: unknown environment variable {name}")
    for name in sorted(REQUIRED_ENV):
        direct, file = name in env, f"{name}_FILE" in env
        if direct and file:
            problems.append(f"{where}: both {name} and {name}_FILE are set (the gateway refuses that)")
        elif not direct and not file:
            problems.append(f"{where}: {name} is not set")
    for name, expected in FIXED_ENV_VALUES.items():
        value = env.get(name, {}).get("value")
        if name in env and value != expected:
            problems.append(f"{where}: {name} is {value!r}, expected {expected!r}")
    public = env.get("SCIMGATE_PUBLIC_URL", {}).get("value", "")
    if "SCIMGATE_PUBLIC_URL" in env and not public.startswith("https://"):
        problems.append(f"{where}: SCIMGATE_PUBLIC_URL {public!r} is not an https:// URL")
    for name in sorted(SECRET_ENV):
        if name in env:
            source = env[name]
            if "secretKeyRef" not in source.get("valueFrom", {}):
                problems.append(f"{where}: {name} must come from a Secret (secretKeyRef or {name}_FILE)")
        file_var = env.get(f"{name}_FILE")
        if file_var is not None:
            path = file_var.get("value", "")
            if not from_secret_volume(path, volumes, mounts):
                problems.append(f"{where}: {name}_FILE={path!r} is not a file of a mounted Secret")
    for name, source in env.items():
        if CREDENTIALS_IN_URL.search(str(source.get("value", ""))):
            problems.append(f"{where}: {name} holds a URL with credentials in plain text")


def from_secret_volume(path: str, volumes: dict[str, dict], mounts: list[dict]) -> bool:
    for mount in mounts:
        root = mount["mountPath"].rstrip("/") + "/"
        volume = volumes.get(mount["name"], {})
        if not path.startswith(root) or "secret" not in volume:
            continue
        relative = path[len(root) :]
        items = volume["secret"].get("items")
        return items is None or any(item.get("path") == relative for item in items)
    return False


def probe_path(container: dict, kind: str) -> tuple[str | None, object]:
    probe = container.get(kind) or {}
    http = probe.get("httpGet") or {}
    return http.get("path"), http.get("port")


def resolve_port(container: dict, port: object) -> int | None:
    if isinstance(port, int):
        return port
    for p in container.get("ports", []):
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def check_pod_security(pod: dict, container: dict, problems: list[str], where: str):
    pod_sc = pod.get("securityContext", {})
    sc = container.get("securityContext", {})
    if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
        problems.append(f"{where}: runAsNonRoot is not true")
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if not isinstance(uid, int) or uid == 0:
        problems.append(f"{where}: runAsUser must be a fixed non-zero UID, not {uid!r}")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: readOnlyRootFilesystem is not true")
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: allowPrivilegeEscalation is not false")
    if sc.get("privileged"):
        problems.append(f"{where}: privileged")
    if "ALL" not in (sc.get("capabilities", {}).get("drop") or []) or sc.get("capabilities", {}).get("add"):
        problems.append(f"{where}: capabilities must drop ALL and add none")
    seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
    if seccomp != "RuntimeDefault":
        problems.append(f"{where}: seccompProfile is {seccomp!r}, not RuntimeDefault")


def check_invariants(path: str) -> list[str]:
    problems: list[str] = []
    overlay = Path(path).stem
    objs = load(path)
    where = overlay
    if any(o.get("kind") == "Secret" for o in objs):
        problems.append(f"{where}: renders a Secret; secrets are created in the cluster, never kept in git")
    configmaps = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "ConfigMap"}
    deployment = only(objs, "Deployment", problems, where)
    service = only(objs, "Service", problems, where)
    if deployment is None or service is None:
        return problems
    spec = deployment["spec"]
    pod = spec["template"]["spec"]
    pod_labels = spec["template"]["metadata"].get("labels", {})
    if not selects(spec["selector"].get("matchLabels"), pod_labels):
        problems.append(f"{where}: the Deployment's selector does not match its pod labels")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: the pod mounts a service account token")
    sa_name = pod.get("serviceAccountName", "default")
    sa = next((o for o in objs if o.get("kind") == "ServiceAccount" and o["metadata"]["name"] == sa_name), None)
    if sa is None or sa.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: ServiceAccount {sa_name} is not rendered with automountServiceAccountToken: false")
    rolling = spec.get("strategy", {}).get("rollingUpdate", {})
    if rolling.get("maxUnavailable") not in (0, "0", "0%"):
        problems.append(f"{where}: rollingUpdate.maxUnavailable is {rolling.get('maxUnavailable')!r}, not 0")
    if "replicas" in spec:
        problems.append(f"{where}: the Deployment sets replicas, which fights the HorizontalPodAutoscaler on apply")

    containers = pod.get("containers", [])
    main = next((c for c in containers if c.get("name") == "scimgate"), None)
    if main is None:
        problems.append(f"{where}: no container named scimgate")
        return problems
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    for c in containers + pod.get("initContainers", []):
        cwhere = f"{where}: container {c.get('name')}"
        check_pod_security(pod, c, problems, cwhere)
        env = container_env(c, configmaps, problems, cwhere)
        check_env(env, volumes, c.get("volumeMounts", []), problems, cwhere)
        image = c.get("image", "")
        if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
            problems.append(f"{cwhere}: image {image!r} names no fixed version")
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in c.get("resources", {}).get(kind, {}):
                    problems.append(f"{cwhere}: no {resource} {kind}")

    if main.get("args", []) != ["serve"]:
        problems.append(f"{where}: the gateway container runs {main.get('args')!r}, not ['serve']")
    migrations = [c for c in pod.get("initContainers", []) if c.get("args") == ["migrate"]]
    if len(migrations) != 1 or migrations[0].get("image") != main.get("image"):
        problems.append(f"{where}: expected one initContainer running `migrate` with the gateway's image")

    ports = {p.get("name"): p.get("containerPort") for p in main.get("ports", [])}
    if ports != {"http": 8080, "metrics": 9090}:
        problems.append(f"{where}: container ports are {ports}, expected http 8080 and metrics 9090")
    for kind, expected in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
        path_, port = probe_path(main, kind)
        if path_ != expected or resolve_port(main, port) != 8080:
            problems.append(f"{where}: {kind} is GET {path_} on port {port}, expected {expected} on 8080")

    env = container_env(main, configmaps, [], where)
    drain = env.get("SCIMGATE_DRAIN_SECONDS", {}).get("value")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    readiness = main.get("readinessProbe", {})
    unready_after = readiness.get("periodSeconds", 10) * readiness.get("failureThreshold", 3)
    if drain is None or not str(drain).isdigit():
        problems.append(f"{where}: SCIMGATE_DRAIN_SECONDS is {drain!r}, not a number of seconds")
    else:
        if int(drain) >= grace - IN_FLIGHT_SECONDS:
            problems.append(
                f"{where}: SCIMGATE_DRAIN_SECONDS ({drain}) must stay below terminationGracePeriodSeconds "
                f"({grace}) minus the {IN_FLIGHT_SECONDS} s in-flight allowance"
            )
        if int(drain) < unready_after:
            problems.append(
                f"{where}: SCIMGATE_DRAIN_SECONDS ({drain}) is shorter than the readiness probe needs to mark "
                f"the pod unready ({unready_after} s)"
            )

    service_ports = {p.get("name"): (p.get("port"), p.get("targetPort")) for p in service["spec"].get("ports", [])}
    if service_ports != {"http": (8080, "http"), "metrics": (9090, "metrics")}:
        problems.append(f"{where}: Service ports are {service_ports}")
    if not selects(service["spec"].get("selector"), pod_labels):
        problems.append(f"{where}: the Service does not select the gateway pods")

    pdb = only(objs, "PodDisruptionBudget", problems, where)
    if pdb and not selects(pdb["spec"].get("selector", {}).get("matchLabels"), pod_labels):
        problems.append(f"{where}: the PodDisruptionBudget does not select the gateway pods")

    hpa = only(objs, "HorizontalPodAutoscaler", problems, where)
    if hpa:
        target = hpa["spec"]["scaleTargetRef"]
        if (target.get("kind"), target.get("name")) != ("Deployment", deployment["metadata"]["name"]):
            problems.append(f"{where}: the HorizontalPodAutoscaler scales {target}, not the Deployment")
        if overlay == "production" and hpa["spec"].get("minReplicas", 1) < 3:
            problems.append(f"{where}: production runs fewer than 3 replicas (HPA minReplicas)")

    ingress = only(objs, "Ingress", problems, where)
    if ingress:
        body = ingress["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/proxy-body-size", "")
        if size_bytes(body) < GROUP_BODY_BYTES:
            problems.append(f"{where}: Ingress proxy-body-size {body!r} is below the 16 MiB group body limit")
        tls_hosts = {h for t in ingress["spec"].get("tls", []) for h in t.get("hosts", [])}
        for rule in ingress["spec"].get("rules", []):
            if rule.get("host") not in tls_hosts:
                problems.append(f"{where}: Ingress host {rule.get('host')} has no TLS")
            for p in rule.get("http", {}).get("paths", []):
                backend = p["backend"]["service"]
                if backend["name"] != service["metadata"]["name"] or backend["port"] not in (
                    {"name": "http"},
                    {"number": 8080},
                ):
                    problems.append(f"{where}: Ingress path {p.get('path')} does not reach the gateway's http port")

    netpol = only(objs, "NetworkPolicy", problems, where)
    if netpol:
        check_network_policy(netpol, pod_labels, problems, where)

    monitor = only(objs, "ServiceMonitor", problems, where)
    if monitor:
        if not selects(monitor["spec"].get("selector", {}).get("matchLabels"), service["metadata"].get("labels", {})):
            problems.append(f"{where}: the ServiceMonitor does not select the gateway Service")
        endpoints = [(e.get("port"), e.get("path")) for e in monitor["spec"].get("endpoints", [])]
        if endpoints != [("metrics", "/metrics")]:
            problems.append(f"{where}: the ServiceMonitor scrapes {endpoints}, expected /metrics on port metrics")

    for cm in configmaps.values():
        for key, value in cm.get("data", {}).items():
            if CREDENTIALS_IN_URL.search(str(value)):
                problems.append(f"{where}: ConfigMap {cm['metadata']['name']} key {key} holds credentials")
    return problems


def check_network_policy(netpol: dict, pod_labels: dict, problems: list[str], where: str):
    spec = netpol["spec"]
    if not selects(spec.get("podSelector", {}).get("matchLabels"), pod_labels):
        problems.append(f"{where}: the NetworkPolicy does not select the gateway pods")
    if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
        problems.append(f"{where}: the NetworkPolicy must restrict both Ingress and Egress")
    seen = {}
    for rule in spec.get("ingress", []):
        peers = rule.get("from", [])
        if not peers:
            problems.append(f"{where}: a NetworkPolicy ingress rule admits every source")
        namespaces = {
            p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name") for p in peers
        }
        for port in rule.get("ports", []) or [{}]:
            key = (port.get("protocol", "TCP"), port.get("port"))
            seen[key] = namespaces
            if key not in INGRESS_RULES:
                problems.append(f"{where}: the NetworkPolicy admits port {key}")
            elif namespaces != {INGRESS_RULES[key]}:
                problems.append(f"{where}: port {key[1]} is open to {namespaces}, expected only {INGRESS_RULES[key]}")
        for p in peers:
            selector = p.get("podSelector", {}).get("matchLabels", {})
            if selector.get("app.kubernetes.io/name") == "scimgate":
                problems.append(f"{where}: an ingress peer selects scimgate pods instead of the {namespaces} pods")
    if set(seen) != set(INGRESS_RULES):
        problems.append(
            f"{where}: the NetworkPolicy ingress ports are {sorted(seen)}, expected {sorted(INGRESS_RULES)}"
        )
    egress = set()
    for rule in spec.get("egress", []):
        if not rule.get("ports"):
            problems.append(f"{where}: a NetworkPolicy egress rule allows every port")
        for port in rule.get("ports", []):
            egress.add((port.get("protocol", "TCP"), port.get("port")))
        for p in rule.get("to", []):
            if p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "scimgate":
                problems.append(f"{where}: an egress peer selector was rewritten to scimgate's labels")
    if egress != EGRESS_PORTS:
        problems.append(
            f"{where}: the NetworkPolicy egress ports are {sorted(egress)}, expected {sorted(EGRESS_PORTS)}"
        )


def size_bytes(text: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", str(text).strip())
    if not m:
        return 0
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]


# ---------------------------------------------------------------------------------------------
# checkov


def check_checkov(skips_path: str, reports: list[str]) -> list[str]:
    with open(skips_path) as f:
        skips = yaml.safe_load(f).get("skips", [])
    problems = []
    reasons = {}
    for entry in skips:
        if not str(entry.get("reason", "")).strip():
            problems.append(f"{skips_path}: {entry.get('check')} has no reason")
        reasons[entry.get("check")] = entry
    used = set()
    scanned = set()
    passed = failed = 0
    for report_path in reports:
        with open(report_path) as f:
            data = json.load(f)
        for report in data if isinstance(data, list) else [data]:
            if not isinstance(report, dict) or "results" not in report:
                continue  # checkov writes a bare summary when a framework found nothing to scan
            results = report["results"]
            summary = report.get("summary", {})
            if summary.get("resource_count", 0) > 0:
                scanned.add(report.get("check_type"))
            passed += summary.get("passed", 0)
            if summary.get("parsing_errors"):
                problems.append(
                    f"checkov ({report.get('check_type')}) could not parse {summary['parsing_errors']} file(s)"
                )
            for finding in results.get("failed_checks", []):
                check = finding["check_id"]
                where = f"{finding.get('file_path')} {finding.get('resource')}"
                if check in reasons:
                    used.add(check)
                    print(f"  skipped {check} ({finding.get('check_name')}) for {where}")
                    continue
                failed += 1
                problems.append(
                    f"checkov {check} {finding.get('check_name')}: {where} lines {finding.get('file_line_range')}"
                )
    for framework in sorted(REQUIRED_SCANS - scanned):
        problems.append(f"checkov scanned nothing with its {framework} checks")
    for check in reasons:
        if check not in used:
            problems.append(f"{skips_path}: {check} matched no finding; remove the skip")
    print(f"checkov: {passed} passed, {failed} failed, {sum(1 for _ in used)} kinds of finding skipped with a reason")
    return problems


# ---------------------------------------------------------------------------------------------
# self-test: every invariant must catch the breakage it exists for


def deployment_of(objs):
    return next(o for o in objs if o["kind"] == "Deployment")


def main_container(objs):
    return next(c for c in deployment_of(objs)["spec"]["template"]["spec"]["containers"] if c["name"] == "scimgate")


def configmap_of(objs):
    return next(o for o in objs if o["kind"] == "ConfigMap")["data"]


def kind_of(objs, kind):
    return next(o for o in objs if o["kind"] == kind)


# Broken variants of a good manifest, each with a word the problem it causes must contain.
MUTATIONS = {
    "root filesystem writable": (
        "readOnlyRootFilesystem",
        lambda o: main_container(o)["securityContext"].update(readOnlyRootFilesystem=False),
    ),
    "runs as root": (
        "runAsUser",
        lambda o: deployment_of(o)["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0),
    ),
    "runAsNonRoot off": (
        "runAsNonRoot",
        lambda o: [
            deployment_of(o)["spec"]["template"]["spec"]["securityContext"].update(runAsNonRoot=False),
            main_container(o)["securityContext"].pop("runAsNonRoot", None),
        ],
    ),
    "capabilities kept": (
        "capabilities",
        lambda o: main_container(o)["securityContext"]["capabilities"].update(drop=["NET_RAW"]),
    ),
    "token mounted": (
        "service account token",
        lambda o: deployment_of(o)["spec"]["template"]["spec"].update(automountServiceAccountToken=True),
    ),
    "liveness on /readyz": (
        "livenessProbe",
        lambda o: main_container(o)["livenessProbe"]["httpGet"].update(path="/readyz"),
    ),
    "readiness on /healthz": (
        "readinessProbe",
        lambda o: main_container(o)["readinessProbe"]["httpGet"].update(path="/healthz"),
    ),
    "readiness on the metrics port": (
        "readinessProbe",
        lambda o: main_container(o)["readinessProbe"]["httpGet"].update(port="metrics"),
    ),
    "no startup probe": ("startupProbe", lambda o: main_container(o).pop("startupProbe")),
    "secret inlined": (
        "must come from a Secret",
        lambda o: [
            main_container(o)["env"].__setitem__(
                slice(None), [e for e in main_container(o)["env"] if e["name"] != "SCIMGATE_DATABASE_URL_FILE"]
            ),
            main_container(o)["env"].append({"name": "SCIMGATE_DATABASE_URL", "value": "postgres://u:pw@db/scim"}),
        ],
    ),
    "secret file outside the secret mount": (
        "not a file of a mounted Secret",
        lambda o: next(e for e in main_container(o)["env"] if e["name"] == "SCIMGATE_REDIS_URL_FILE").update(
            value="/tmp/redis-url"
        ),
    ),
    "misspelt variable": (
        "SCIMGATE_LOGFORMAT",
        lambda o: configmap_of(o).update(SCIMGATE_LOGFORMAT=configmap_of(o).pop("SCIMGATE_LOG_FORMAT")),
    ),
    "unknown variable": ("SCIMGATE_METRICS_PORT", lambda o: configmap_of(o).update(SCIMGATE_METRICS_PORT="9090")),
    "metrics on another port": (
        "SCIMGATE_METRICS_LISTEN",
        lambda o: configmap_of(o).update(SCIMGATE_METRICS_LISTEN="0.0.0.0:9100"),
    ),
    "drain too long": ("must stay below", lambda o: configmap_of(o).update(SCIMGATE_DRAIN_SECONDS="40")),
    "drain shorter than readiness": (
        "shorter than the readiness",
        lambda o: configmap_of(o).update(SCIMGATE_DRAIN_SECONDS="2"),
    ),
    "rollout may drop capacity": (
        "maxUnavailable",
        lambda o: deployment_of(o)["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=1),
    ),
    "small body limit": (
        "proxy-body-size",
        lambda o: kind_of(o, "Ingress")["metadata"]["annotations"].update(
            {"nginx.ingress.kubernetes.io/proxy-body-size": "1m"}
        ),
    ),
    "ingress peer rewritten": (
        "selects scimgate pods",
        lambda o: kind_of(o, "NetworkPolicy")["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"].update(
            {"app.kubernetes.io/name": "scimgate"}
        ),
    ),
    "egress opened": (
        "egress ports",
        lambda o: kind_of(o, "NetworkPolicy")["spec"]["egress"].append({"ports": [{"port": 25}]}),
    ),
    "metrics path moved": (
        "ServiceMonitor scrapes",
        lambda o: kind_of(o, "ServiceMonitor")["spec"]["endpoints"][0].update(path="/metric"),
    ),
    "secret rendered": (
        "renders a Secret",
        lambda o: o.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x"}}),
    ),
    "migration dropped": ("migrate", lambda o: deployment_of(o)["spec"]["template"]["spec"].pop("initContainers")),
}


def self_test(path: str) -> list[str]:
    import tempfile

    baseline = load(path)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        clean = Path(tmp) / Path(path).name
        clean.write_text(yaml.safe_dump_all(baseline))
        if check_invariants(str(clean)):
            problems.append(f"self-test: {path} itself does not pass the invariants")
        for label, (expected, mutate) in MUTATIONS.items():
            objs = copy.deepcopy(baseline)
            mutate(objs)
            clean.write_text(yaml.safe_dump_all(objs))
            found = check_invariants(str(clean))
            if not any(expected in problem for problem in found):
                problems.append(f"self-test: the invariants do not notice: {label} (reported: {found})")
        # Strict schema validation catches a misspelt field, in core kinds and the ServiceMonitor.
        for kind, typo in (("Deployment", "replica"), ("ServiceMonitor", "endpoint")):
            objs = copy.deepcopy(baseline)
            kind_of(objs, kind)["spec"][typo] = 1
            clean.write_text(yaml.safe_dump_all(objs))
            if not any(typo in problem for problem in check_schema([str(clean)])):
                problems.append(f"self-test: schema validation accepts `{typo}` in a {kind}")
    print(f"self-test: {len(MUTATIONS) + 2} broken variants of {Path(path).name}, {len(problems)} missed")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command, args = argv[1], argv[2:]
    if command == "schema":
        problems = check_schema(args)
        print(
            f"schema: {sum(len(load(p)) for p in args)} objects, Kubernetes {' and '.join(KUBERNETES_VERSIONS)}, strict"
        )
    elif command == "invariants":
        problems = [p for path in args for p in check_invariants(path)]
    elif command == "checkov":
        problems = check_checkov(args[0], args[1:])
    elif command == "self-test":
        problems = self_test(args[0])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for problem in problems:
        print(f"  FAIL {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
