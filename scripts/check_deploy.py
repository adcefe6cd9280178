"""Checks of the rendered Kubernetes manifests and the Dockerfile (run by scripts/check-deploy.sh).

    check_deploy.py render-chart CHART OUTDIR       render the Helm chart with its defaults and with
                                                    each CHART/ci/*-values.yaml (helm-<name>.yaml)
    check_deploy.py schema RENDERED.yaml...         Kubernetes JSON schemas (strict), and the
                                                    ServiceMonitor, PrometheusRule and HTTPRoute
    check_deploy.py invariants RENDERED.yaml...     what the gateway needs that no scanner knows
    check_deploy.py monitoring RENDERED.yaml...     alert rules and dashboard name exported metrics
    check_deploy.py checkov SKIPS.yaml REPORT.json...  findings against the justified skip list
    check_deploy.py self-test RENDERED.yaml         each invariant catches a broken manifest

Each command prints one line per problem and exits 1 when there is any. A rendered file is named
after its overlay (production.yaml, development.yaml) or chart configuration (helm-default.yaml,
helm-production-ingress.yaml).

The settings the gateway accepts are read from its source (the fields of `Settings` in
crates/edge/src/config.rs, and the variables read by name elsewhere in crates/edge/src), so a
setting added to the gateway is allowed here without touching this file.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import re
import sys
from pathlib import Path

import yaml

# Kubernetes versions the manifests must be valid for: the oldest supported here (features used:
# matchLabelKeys, unhealthyPodEvictionPolicy) and the newest whose schemas are bundled.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]

ROOT = Path(__file__).resolve().parent.parent
CONFIG_RS = ROOT / "crates/edge/src/config.rs"
METRICS_RS = ROOT / "crates/edge/src/metrics.rs"
EDGE_SRC = ROOT / "crates/edge/src"
OBSERVABILITY_MD = ROOT / "docs/observability.md"
CHART = ROOT / "deploy/helm/scimgate"
CHART_ALERTS = CHART / "files/alerts.yaml"
CHART_DASHBOARD = CHART / "files/dashboard.json"
COMPONENT_RULES = ROOT / "deploy/kubernetes/components/prometheus-operator/prometheusrule.yaml"

# The environment the gateway reads. Each SCIMGATE_ name may instead be given as NAME_FILE.
REQUIRED_ENV = {
    "SCIMGATE_DATABASE_URL",
    "SCIMGATE_LISTEN",
    "SCIMGATE_METRICS_LISTEN",
    "SCIMGATE_PUBLIC_URL",
    "SCIMGATE_LOG_FORMAT",
    "SCIMGATE_LOG",
    "SCIMGATE_DRAIN_SECONDS",
    "SCIMGATE_TRUSTED_PROXY_HOPS",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_SERVICE_NAME",
}
# The OpenTelemetry SDK's own variables the gateway honours (docs/observability.md).
OTEL_ENV = {
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_SDK_DISABLED",
}
SECRET_ENV = {"SCIMGATE_DATABASE_URL", "SCIMGATE_REDIS_URL"}
FIXED_ENV_VALUES = {
    "SCIMGATE_LISTEN": "0.0.0.0:8080",
    "SCIMGATE_METRICS_LISTEN": "0.0.0.0:9464",
    "SCIMGATE_LOG_FORMAT": "json",
}
IN_FLIGHT_SECONDS = 30  # the gateway's shutdown timeout for requests in flight
GROUP_BODY_BYTES = 16 * 1024 * 1024
# Egress every gateway needs (DNS, PostgreSQL, the OTLP collector) and, with Redis, 6379.
REQUIRED_EGRESS = {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 4317)}
REDIS_EGRESS = ("TCP", 6379)
# Ports open to any destination: those above, and HTTPS to webhook receivers. Anything else (a
# plain-HTTP receiver) must name its destination with `to:`.
OPEN_EGRESS = REQUIRED_EGRESS | {REDIS_EGRESS, ("TCP", 443)}
HTTP_PORT, METRICS_PORT = 8080, 9464
# What the public Ingress or HTTPRoute may route: the SCIM API and the OAuth token endpoint.
# Never /admin/ (the admin API is reached through its own Service inside the cluster).
PUBLIC_PREFIXES = ("/scim/", "/oauth2/")
PROXY_HOPS_ANNOTATION = "scimgate.io/trusted-proxy-hops"
# Metrics Prometheus itself makes, which rules may name beside the gateway's.
PROMETHEUS_METRICS = {"up", "ALERTS", "ALERTS_FOR_STATE"}
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


# The part of the PrometheusRule (monitoring.coreos.com/v1) and of the Gateway API's HTTPRoute
# (gateway.networking.k8s.io/v1) these manifests use, strictly, like the ServiceMonitor.
_METADATA = SERVICE_MONITOR_SCHEMA["properties"]["metadata"]
_DURATION = {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d|w|y))+$"}
PROMETHEUS_RULE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["groups"],
            "additionalProperties": False,
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "rules"],
                        "additionalProperties": False,
                        "properties": {
                            "name": {"type": "string"},
                            "interval": _DURATION,
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "required": ["alert", "expr"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": _DURATION,
                                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
HTTP_ROUTE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "gateway.networking.k8s.io/v1"},
        "kind": {"const": "HTTPRoute"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["parentRefs", "rules"],
            "additionalProperties": False,
            "properties": {
                "parentRefs": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name"],
                        "additionalProperties": False,
                        "properties": {
                            "group": {"type": "string"},
                            "kind": {"type": "string"},
                            "name": {"type": "string"},
                            "namespace": {"type": "string"},
                            "sectionName": {"type": "string"},
                            "port": {"type": "integer"},
                        },
                    },
                },
                "hostnames": {"type": "array", "items": {"type": "string"}},
                "rules": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "matches": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "path": {
                                            "type": "object",
                                            "additionalProperties": False,
                                            "properties": {
                                                "type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]},
                                                "value": {"type": "string", "pattern": "^/"},
                                            },
                                        },
                                    },
                                },
                            },
                            "backendRefs": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "required": ["name"],
                                    "additionalProperties": False,
                                    "properties": {
                                        "name": {"type": "string"},
                                        "port": {"type": "integer"},
                                        "weight": {"type": "integer"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
CRD_SCHEMAS = {
    "ServiceMonitor": SERVICE_MONITOR_SCHEMA,
    "PrometheusRule": PROMETHEUS_RULE_SCHEMA,
    "HTTPRoute": HTTP_ROUTE_SCHEMA,
}


# ---------------------------------------------------------------------------------------------
# what the gateway accepts, from its source


def gateway_settings() -> set[str]:
    """Every SCIMGATE_* variable the gateway reads: one per field of `Settings`, plus the few
    read by name (the log filter, the config file)."""
    source = CONFIG_RS.read_text()
    body = re.search(r"pub struct Settings\s*\{(.*?)\n\}", source, re.S)
    if body is None:
        raise SystemExit(f"{CONFIG_RS}: no `pub struct Settings {{ ... }}` to read the settings from")
    fields = re.findall(r"^\s*pub\s+([a-z0-9_]+)\s*:", body.group(1), re.M)
    names = {f"SCIMGATE_{field.upper()}" for field in fields}
    for path in EDGE_SRC.rglob("*.rs"):
        text = path.read_text()
        names |= set(re.findall(r'env(?:::var)?\s*(?:=|\()\s*"(SCIMGATE_[A-Z0-9_]+)"', text))
        names |= set(re.findall(r'k\s*!=\s*"(SCIMGATE_[A-Z0-9_]+)"', text))
    if len(fields) < 10 or "SCIMGATE_DATABASE_URL" not in names:
        raise SystemExit(f"{CONFIG_RS}: read only {sorted(names)}: has Settings changed shape?")
    return names


def exported_metrics() -> set[str]:
    """The metric names the gateway exports: its constants in metrics.rs (each listed in
    `NAMES`) and the standard process metrics (asserted on a live scrape by the observability
    tests)."""
    source = METRICS_RS.read_text()
    constants = dict(re.findall(r'pub const ([A-Z_]+): &str = "([a-z_:]+)";', source))
    listed = re.search(r"pub const NAMES: &\[&str\] = &\[(.*?)\];", source, re.S)
    if listed is None:
        raise SystemExit(f"{METRICS_RS}: no `pub const NAMES` list of metric names")
    names = {constants[c] for c in re.findall(r"[A-Z_]+", listed.group(1)) if c in constants}
    process = {
        "process_cpu_seconds_total",
        "process_open_fds",
        "process_max_fds",
        "process_virtual_memory_bytes",
        "process_virtual_memory_max_bytes",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_threads",
    }
    return names | process


class StrictLoader(yaml.SafeLoader):
    """YAML as the API server reads it: a key given twice in one mapping is an error (kubectl
    refuses such a manifest), where PyYAML would keep the last value silently."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load(path: str) -> list[dict]:
    with open(path) as f:
        return [doc for doc in yaml.load_all(f, Loader=StrictLoader) if doc]


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
            if obj.get("kind") in CRD_SCHEMAS:
                errors = jsonschema.Draft7Validator(CRD_SCHEMAS[obj["kind"]]).iter_errors(obj)
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
    allowed = gateway_settings() | OTEL_ENV
    for name in env:
        base = name[: -len("_FILE")] if name.endswith("_FILE") and name.startswith("SCIMGATE_") else name
        if base not in allowed:
            problems.append(f"{where}: unknown environment variable {name} (not a setting of crates/edge/src/config.rs)")
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
    services = [o for o in objs if o.get("kind") == "Service"]
    by_component = {}
    for svc in services:
        by_component.setdefault(svc["metadata"].get("labels", {}).get("app.kubernetes.io/component"), []).append(svc)
    if len(by_component.get("gateway", [])) != 1:
        problems.append(f"{where}: expected one Service with component gateway, found {len(by_component.get('gateway', []))}")
    if len(by_component.get("admin-api", [])) != 1:
        problems.append(
            f"{where}: expected one Service with component admin-api (the admin API inside the cluster), "
            f"found {len(by_component.get('admin-api', []))}"
        )
    if deployment is None or len(by_component.get("gateway", [])) != 1:
        return problems
    service = by_component["gateway"][0]
    admin = (by_component.get("admin-api") or [None])[0]
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
    has_hpa = any(o.get("kind") == "HorizontalPodAutoscaler" for o in objs)
    if "replicas" in spec and has_hpa:
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
    if ports != {"http": 8080, "metrics": 9464}:
        problems.append(f"{where}: container ports are {ports}, expected http 8080 and metrics 9464")
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
    if service_ports != {"http": (HTTP_PORT, "http"), "metrics": (METRICS_PORT, "metrics")}:
        problems.append(f"{where}: Service ports are {service_ports}")
    if not selects(service["spec"].get("selector"), pod_labels):
        problems.append(f"{where}: the Service does not select the gateway pods")
    if admin is not None:
        admin_ports = {p.get("name"): (p.get("port"), p.get("targetPort")) for p in admin["spec"].get("ports", [])}
        if admin_ports != {"http": (HTTP_PORT, "http")}:
            problems.append(f"{where}: the admin Service's ports are {admin_ports}, expected http only")
        if not selects(admin["spec"].get("selector"), pod_labels):
            problems.append(f"{where}: the admin Service does not select the gateway pods")
        if admin["spec"].get("type", "ClusterIP") != "ClusterIP":
            problems.append(f"{where}: the admin Service is of type {admin['spec'].get('type')}, not ClusterIP")

    pdb = only(objs, "PodDisruptionBudget", problems, where)
    if pdb and not selects(pdb["spec"].get("selector", {}).get("matchLabels"), pod_labels):
        problems.append(f"{where}: the PodDisruptionBudget does not select the gateway pods")

    hpa = next((o for o in objs if o.get("kind") == "HorizontalPodAutoscaler"), None)
    production = overlay.startswith("production") or overlay.startswith("helm-production")
    if hpa:
        target = hpa["spec"]["scaleTargetRef"]
        if (target.get("kind"), target.get("name")) != ("Deployment", deployment["metadata"]["name"]):
            problems.append(f"{where}: the HorizontalPodAutoscaler scales {target}, not the Deployment")
        if production and hpa["spec"].get("minReplicas", 1) < 3:
            problems.append(f"{where}: production runs fewer than 3 replicas (HPA minReplicas)")
    elif spec.get("replicas", 1) < 2:
        problems.append(f"{where}: a single gateway replica without autoscaling (every rollout or drain is an outage)")

    check_public_entry(objs, service, admin, env, problems, where)
    redis = "SCIMGATE_REDIS_URL" in env or "SCIMGATE_REDIS_URL_FILE" in env
    if production and not redis:
        problems.append(f"{where}: production without SCIMGATE_REDIS_URL: each replica would allow a tenant its whole rate")

    netpol = only(objs, "NetworkPolicy", problems, where)
    if netpol:
        check_network_policy(netpol, pod_labels, redis, admin is not None, problems, where)

    monitor = only_optional(objs, "ServiceMonitor", problems, where)
    if monitor:
        if not selects(monitor["spec"].get("selector", {}).get("matchLabels"), service["metadata"].get("labels", {})):
            problems.append(f"{where}: the ServiceMonitor does not select the gateway Service")
        if admin is not None and selects(monitor["spec"].get("selector", {}).get("matchLabels"), admin["metadata"].get("labels", {})):
            problems.append(f"{where}: the ServiceMonitor also selects the admin Service (every pod scraped twice)")
        endpoints = [(e.get("port"), e.get("path")) for e in monitor["spec"].get("endpoints", [])]
        if endpoints != [("metrics", "/metrics")]:
            problems.append(f"{where}: the ServiceMonitor scrapes {endpoints}, expected /metrics on port metrics")

    for cm in configmaps.values():
        for key, value in cm.get("data", {}).items():
            if CREDENTIALS_IN_URL.search(str(value)):
                problems.append(f"{where}: ConfigMap {cm['metadata']['name']} key {key} holds credentials")
    return problems


def only_optional(objs: list[dict], kind: str, problems: list[str], where: str) -> dict | None:
    found = [o for o in objs if o.get("kind") == kind]
    if len(found) > 1:
        problems.append(f"{where}: expected at most one {kind}, found {len(found)}")
    return found[0] if found else None


def check_public_entry(objs, service: dict, admin: dict | None, env: dict, problems: list[str], where: str):
    """The Ingress or HTTPRoute: TLS, public paths only, the gateway's http port, and the trusted
    proxy hops the gateway is told (SCIMGATE_TRUSTED_PROXY_HOPS) equal to what it declares."""
    entries = [o for o in objs if o.get("kind") in ("Ingress", "HTTPRoute")]
    if len(entries) > 1:
        problems.append(f"{where}: {len(entries)} public entries (Ingress, HTTPRoute): expected at most one")
    hops = str(env.get("SCIMGATE_TRUSTED_PROXY_HOPS", {}).get("value", ""))
    if not hops.isdigit():
        problems.append(f"{where}: SCIMGATE_TRUSTED_PROXY_HOPS is {hops!r}, not a number of proxies")
    admin_name = admin["metadata"]["name"] if admin else None
    for entry in entries:
        kind = entry["kind"]
        declared = entry["metadata"].get("annotations", {}).get(PROXY_HOPS_ANNOTATION)
        if declared is None:
            problems.append(f"{where}: the {kind} has no {PROXY_HOPS_ANNOTATION} annotation (proxies it puts in front)")
        elif not str(declared).isdigit() or int(declared) < 1:
            problems.append(f"{where}: the {kind}'s {PROXY_HOPS_ANNOTATION} is {declared!r}: a proxy is at least 1 hop")
        elif str(declared) != hops:
            problems.append(
                f"{where}: SCIMGATE_TRUSTED_PROXY_HOPS is {hops!r} but the {kind} declares {declared} proxy hop(s): "
                "the auth-failure limiter would count the proxy, not the client, or trust a forged address"
            )
        if kind == "Ingress":
            paths, backends = check_ingress(entry, service, problems, where)
        else:
            paths = [
                m.get("path", {}).get("value", "/").rstrip("/") + "/"
                for rule in entry["spec"].get("rules", [])
                for m in rule.get("matches", [{}])
            ]
            backends = [
                (b.get("name"), b.get("port")) for rule in entry["spec"].get("rules", []) for b in rule.get("backendRefs", [])
            ]
            for name, port in backends:
                if name != service["metadata"]["name"] or port != HTTP_PORT:
                    problems.append(f"{where}: the HTTPRoute sends to {name}:{port}, not the gateway's http port")
        for path in paths:
            if not path.startswith(PUBLIC_PREFIXES):
                problems.append(f"{where}: the {kind} routes {path!r}; only {', '.join(PUBLIC_PREFIXES)} are public")
        if admin_name and any(name == admin_name for name, _ in backends):
            problems.append(f"{where}: the {kind} routes to the admin Service {admin_name}")


def check_ingress(ingress: dict, service: dict, problems: list[str], where: str):
    annotations = ingress["metadata"].get("annotations", {})
    nginx = ingress["spec"].get("ingressClassName") == "nginx" or any(
        a.startswith("nginx.ingress.kubernetes.io/") for a in annotations
    )
    if nginx:
        body = annotations.get("nginx.ingress.kubernetes.io/proxy-body-size", "")
        if size_bytes(body) < GROUP_BODY_BYTES:
            problems.append(f"{where}: Ingress proxy-body-size {body!r} is below the 16 MiB group body limit")
    tls_hosts = {h for t in ingress["spec"].get("tls", []) for h in t.get("hosts", [])}
    paths, backends = [], []
    for rule in ingress["spec"].get("rules", []):
        if rule.get("host") not in tls_hosts:
            problems.append(f"{where}: Ingress host {rule.get('host')} has no TLS")
        for p in rule.get("http", {}).get("paths", []):
            paths.append(p.get("path", "/"))
            backend = p["backend"]["service"]
            backends.append((backend["name"], backend["port"]))
            if backend["name"] != service["metadata"]["name"] or backend["port"] not in (
                {"name": "http"},
                {"number": HTTP_PORT},
            ):
                problems.append(f"{where}: Ingress path {p.get('path')} does not reach the gateway's http port")
    return paths, backends


def check_network_policy(netpol: dict, pod_labels: dict, redis: bool, admin: bool, problems: list[str], where: str):
    spec = netpol["spec"]
    if not selects(spec.get("podSelector", {}).get("matchLabels"), pod_labels):
        problems.append(f"{where}: the NetworkPolicy does not select the gateway pods")
    if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
        problems.append(f"{where}: the NetworkPolicy must restrict both Ingress and Egress")
    http_sources = []
    metrics_open = False
    for rule in spec.get("ingress", []):
        peers = rule.get("from", [])
        if not peers:
            problems.append(f"{where}: a NetworkPolicy ingress rule admits every source")
        if not rule.get("ports"):
            problems.append(f"{where}: a NetworkPolicy ingress rule admits every port")
        for port in rule.get("ports", []):
            key = (port.get("protocol", "TCP"), port.get("port"))
            if key == ("TCP", HTTP_PORT):
                http_sources.append(peers)
            elif key == ("TCP", METRICS_PORT):
                metrics_open = True
            else:
                problems.append(f"{where}: the NetworkPolicy admits port {key}")
        for p in peers:
            selector = p.get("podSelector", {}).get("matchLabels", {})
            if selector.get("app.kubernetes.io/name") == "scimgate":
                problems.append(f"{where}: an ingress peer selects scimgate pods instead of the namespace's pods")
            if "ipBlock" in p and p["ipBlock"].get("cidr") in ("0.0.0.0/0", "::/0"):
                problems.append(f"{where}: the NetworkPolicy admits {p['ipBlock']['cidr']}")
    if not http_sources:
        problems.append(f"{where}: the NetworkPolicy admits nobody to the http port {HTTP_PORT}")
    if admin and len(http_sources) < 2:
        problems.append(
            f"{where}: the NetworkPolicy admits one source to port {HTTP_PORT}: the admin API's clients "
            "(the product's namespace) need a rule of their own beside the ingress controller"
        )
    if not metrics_open:
        problems.append(f"{where}: the NetworkPolicy admits nobody to the metrics port {METRICS_PORT}")
    egress = set()
    for rule in spec.get("egress", []):
        if not rule.get("ports"):
            problems.append(f"{where}: a NetworkPolicy egress rule allows every port")
        for port in rule.get("ports", []):
            key = (port.get("protocol", "TCP"), port.get("port"))
            egress.add(key)
            if key not in OPEN_EGRESS and not rule.get("to"):
                problems.append(f"{where}: egress port {key} is open to every destination; name the receivers with `to:`")
        for p in rule.get("to", []):
            if p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "scimgate":
                problems.append(f"{where}: an egress peer selector was rewritten to scimgate's labels")
    needed = REQUIRED_EGRESS | ({REDIS_EGRESS} if redis else set())
    if not needed <= egress:
        problems.append(f"{where}: the NetworkPolicy egress ports lack {sorted(needed - egress)}")


def size_bytes(text: str) -> int:
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", str(text).strip())
    if not m:
        return 0
    return int(m.group(1)) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[m.group(2).lower()]



# ---------------------------------------------------------------------------------------------
# monitoring: alert rules and dashboard

PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset",
    "inf", "nan",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (histogram series as their base name)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)  # label lists
    names = set()
    for m in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = m.group(0)
        following = text[m.end() :].lstrip()
        if following.startswith("(") or word.lower() in PROMQL_WORDS:
            continue  # a function or a keyword
        if text[: m.start()].rstrip().endswith(tuple("0123456789.")) and re.fullmatch(r"[eE]\d*", word):
            continue
        names.add(re.sub(r"_(bucket|sum|count)$", "", word) if word.startswith("scimgate_") else word)
    return names


def check_expressions(where: str, exprs: list[str], exported: set[str], problems: list[str]):
    for expr in exprs:
        for name in sorted(metric_names(expr)):
            if name not in exported and name not in PROMETHEUS_METRICS:
                problems.append(f"{where}: {expr!r} reads {name}, which the gateway does not export")


def rule_groups(objs: list[dict]) -> list[dict] | None:
    rules = [o for o in objs if o.get("kind") == "PrometheusRule"]
    return rules[0]["spec"]["groups"] if rules else None


def check_monitoring(paths: list[str], groups=None, component=None, dashboard=None) -> list[str]:
    """The alert rules and the dashboard: they name only exported metrics; the chart and the
    kustomize component ship the same rules; every alert is in docs/observability.md. (The
    keyword arguments replace the shipped files, for the self-test.)"""
    problems: list[str] = []
    exported = exported_metrics()
    if groups is None:
        with open(CHART_ALERTS) as f:
            groups = yaml.safe_load(f)["groups"]
    alerts = [r for g in groups for r in g["rules"]]
    check_expressions(str(CHART_ALERTS.relative_to(ROOT)), [r["expr"] for r in alerts], exported, problems)
    documented = OBSERVABILITY_MD.read_text()
    for rule in alerts:
        if f"`{rule['alert']}`" not in documented:
            problems.append(f"docs/observability.md does not describe the alert {rule['alert']}")
        if not {"summary", "description"} <= set(rule.get("annotations", {})):
            problems.append(f"{CHART_ALERTS.name}: {rule['alert']} lacks a summary or description")
    if component is None:
        component = rule_groups(load(str(COMPONENT_RULES)))
    if component != groups:
        problems.append(f"{COMPONENT_RULES.relative_to(ROOT)} and {CHART_ALERTS.relative_to(ROOT)} hold different rules")
    for path in paths:
        rendered = rule_groups(load(path))
        if rendered is not None and rendered != groups:
            problems.append(f"{Path(path).stem}: the rendered PrometheusRule differs from {CHART_ALERTS.name}")
        for obj in load(path):
            for key, value in (obj.get("data") or {}).items() if obj.get("kind") == "ConfigMap" else ():
                if key.endswith(".json") and json.loads(value) != json.loads(CHART_DASHBOARD.read_text()):
                    problems.append(f"{Path(path).stem}: ConfigMap {obj['metadata']['name']} is not files/dashboard.json")
    if dashboard is None:
        dashboard = json.loads(CHART_DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard.get("panels", []) for t in p.get("targets", [])]
    exprs += [v["query"]["query"].replace("label_values(", "").split(",")[0] for v in dashboard["templating"]["list"]
              if isinstance(v.get("query"), dict)]
    if not exprs:
        problems.append(f"{CHART_DASHBOARD.name}: no panel queries anything")
    check_expressions(CHART_DASHBOARD.name, exprs, exported, problems)
    print(f"monitoring: {len(alerts)} alerts and {len(exprs)} dashboard queries read {len(exported)} exported metrics")
    return problems


# ---------------------------------------------------------------------------------------------
# the Helm chart


def render_chart(chart: str, outdir: str) -> list[str]:
    """Render the chart as `helm template` would (Helm's own engine, through the helm-python-sdk
    bindings: no helm binary is installable from the registries this project uses), with its
    defaults and with each ci/*-values.yaml, and lint each configuration strictly."""
    import helm_python
    from helm_python import Chart

    problems = []
    configurations = {"default": None}
    for values_file in sorted(Path(chart, "ci").glob("*-values.yaml")):
        configurations[values_file.name[: -len("-values.yaml")]] = values_file
    with Chart.load(chart) as loaded:
        for name, values_file in configurations.items():
            values = yaml.safe_load(values_file.read_text()) if values_file else {}
            lint = helm_python.chart.lint(chart, values, strict=True, namespace="scimgate")
            for message in lint.get("messages", []):
                # Severity 1 is informational (e.g. "icon is recommended").
                if message.get("severity", 0) > 1:
                    problems.append(f"helm lint ({name}): {message.get('path')}: {message.get('error')}")
            try:
                manifests = loaded.render(values, name="scimgate", namespace="scimgate", is_install=True)
            except helm_python.errors.HelmError as e:
                problems.append(f"helm template ({name}): {e}")
                continue
            docs = [
                text
                for template, text in sorted(manifests.items())
                if template.endswith(".yaml") and "/tests/" not in template and text.strip()
            ]
            out = Path(outdir) / f"helm-{name}.yaml"
            out.write_text("\n---\n".join(docs) + "\n")
            print(f"rendered helm-{name}: {sum(1 for d in load(str(out)))} objects")
        # Values the chart must refuse outright, before any manifest exists.
        for label, values in REFUSED_VALUES.items():
            try:
                loaded.render(values, name="scimgate", namespace="scimgate", is_install=True)
                problems.append(f"helm template renders {label} ({values}); the chart must refuse it")
            except helm_python.errors.HelmError:
                pass
    print(f"chart: {len(configurations)} configurations rendered, {len(REFUSED_VALUES)} bad ones refused")
    return problems


REFUSED_VALUES = {
    "the admin API as a public path": {"publicPaths": ["/scim/", "/admin/"]},
    "a setting not named SCIMGATE_* or OTEL_*": {"config": {"RUST_LOG": "debug"}},
    "a setting the chart owns": {"config": {"SCIMGATE_TRUSTED_PROXY_HOPS": "3"}},
    "no trusted proxy behind an Ingress": {"trustedProxyHops": 0},
    "an Ingress and an HTTPRoute at once": {"ingress": {"enabled": True}, "httpRoute": {"enabled": True}},
}

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
        "egress port",
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
    "proxy hops unset": (
        "SCIMGATE_TRUSTED_PROXY_HOPS is not set",
        lambda o: configmap_of(o).pop("SCIMGATE_TRUSTED_PROXY_HOPS"),
    ),
    "proxy hops do not match the ingress": (
        "declares",
        lambda o: configmap_of(o).update(SCIMGATE_TRUSTED_PROXY_HOPS="0"),
    ),
    "ingress hops undeclared": (
        PROXY_HOPS_ANNOTATION,
        lambda o: kind_of(o, "Ingress")["metadata"]["annotations"].pop(PROXY_HOPS_ANNOTATION),
    ),
    "admin API on the public ingress": (
        "are public",
        lambda o: kind_of(o, "Ingress")["spec"]["rules"][0]["http"]["paths"].append(
            {
                "path": "/admin/",
                "pathType": "Prefix",
                "backend": {"service": {"name": "scimgate", "port": {"name": "http"}}},
            }
        ),
    ),
    "admin Service behind the ingress": (
        "routes to the admin Service",
        lambda o: kind_of(o, "Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(
            name=admin_service_of(o)["metadata"]["name"]
        ),
    ),
    "admin Service dropped": ("admin-api", lambda o: o.remove(admin_service_of(o))),
    "admin clients shut out": (
        "need a rule of their own",
        lambda o: kind_of(o, "NetworkPolicy")["spec"]["ingress"].pop(1),
    ),
    "redis unreachable": (
        "lack",
        lambda o: kind_of(o, "NetworkPolicy")["spec"]["egress"].__setitem__(
            slice(None),
            [r for r in kind_of(o, "NetworkPolicy")["spec"]["egress"] if {"port": 6379, "protocol": "TCP"} not in r["ports"]],
        ),
    ),
}


def admin_service_of(objs):
    return next(
        o
        for o in objs
        if o["kind"] == "Service" and o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "admin-api"
    )


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
        # Strict schema validation catches a misspelt field, in core kinds and the CRDs.
        for kind, typo in (("Deployment", "replica"), ("ServiceMonitor", "endpoint"), ("PrometheusRule", "group")):
            objs = copy.deepcopy(baseline)
            kind_of(objs, kind)["spec"][typo] = 1
            clean.write_text(yaml.safe_dump_all(objs))
            if not any(typo in problem for problem in check_schema([str(clean)])):
                problems.append(f"self-test: schema validation accepts `{typo}` in a {kind}")
    # The settings come from the gateway's source; the metric check notices a made-up metric.
    settings = gateway_settings()
    for name in ("SCIMGATE_TRUSTED_PROXY_HOPS", "SCIMGATE_WEBHOOK_WORKERS", "SCIMGATE_LOG", "SCIMGATE_DATABASE_URL"):
        if name not in settings:
            problems.append(f"self-test: {name} is not among the settings read from {CONFIG_RS.name}")
    exported = exported_metrics()
    for expr, unknown in (
        ('sum(rate(scimgate_no_such_total{tenant="a"}[5m]))', True),
        ("histogram_quantile(0.99, sum by (le, route) (rate(scimgate_http_request_duration_seconds_bucket[5m])))", False),
        ("process_open_fds / process_max_fds > 0.8", False),
    ):
        found: list[str] = []
        check_expressions("self-test", [expr], exported, found)
        if bool(found) != unknown:
            problems.append(f"self-test: the metric check misjudges {expr!r}: {found}")
    # The monitoring check notices rules that drift apart, an undocumented alert and a dashboard
    # query of a metric nobody exports.
    with open(CHART_ALERTS) as f:
        groups = yaml.safe_load(f)["groups"]
    dashboard = json.loads(CHART_DASHBOARD.read_text())
    drifted = copy.deepcopy(groups)
    drifted[0]["rules"][0]["expr"] += " * 2"
    undocumented = copy.deepcopy(groups)
    undocumented[0]["rules"].append({"alert": "ScimgateNobodyWroteThisDown", "expr": "up == 0"})
    broken_panel = copy.deepcopy(dashboard)
    broken_panel["panels"][0]["targets"][0]["expr"] = "rate(scimgate_requests_served_total[5m])"
    for label, kwargs, expected in (
        ("rules drift apart", {"component": drifted}, "hold different rules"),
        ("undocumented alert", {"groups": undocumented, "component": undocumented}, "does not describe"),
        ("dashboard reads a made-up metric", {"dashboard": broken_panel}, "scimgate_requests_served_total"),
    ):
        with contextlib.redirect_stdout(io.StringIO()):
            found = check_monitoring([], **kwargs)
        if not any(expected in p for p in found):
            problems.append(f"self-test: the monitoring check does not notice: {label} (reported: {found})")
    print(f"self-test: {len(MUTATIONS) + 6} broken variants of {Path(path).name}, {len(problems)} missed")
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
    elif command == "monitoring":
        problems = check_monitoring(args)
    elif command == "render-chart":
        problems = render_chart(args[0], args[1])
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
