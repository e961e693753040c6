#!/usr/bin/env python3
"""Checks the Kubernetes manifests under deploy/k8s: renders the base and every overlay,
validates each resource against the Kubernetes JSON schemas of a pinned Kubernetes version
(kubernetes-validate, strict: unknown fields are errors), checks the ServiceMonitor (a CRD, for
which kubernetes-validate has no schema) by hand, and asserts what the manifests promise
(docs/operations.md, "Kubernetes"): TLS passes the balancer as TCP and is never terminated
there, exactly one PROXY v2 header reaches the gateway, the NetworkPolicy limits egress to DNS
and 443, the pods run as non-root with a read-only root file system and no capabilities, and
so on. Nothing is applied: no cluster is needed.

    .ci/check_k8s.py               # check deploy/k8s: exit 1 listing every problem
    .ci/check_k8s.py --dir PATH    # check another copy of deploy/k8s
    .ci/check_k8s.py --self-test   # break copies of deploy/k8s in a temporary directory, one
                                   # way at a time, and show that each is caught

Rendering. kustomize is not on PyPI, so this script renders the kustomizations itself, as a
stand-in for `kubectl kustomize DIR` that understands only what deploy/k8s uses, and refuses
anything else (then extend it, or render with kustomize): `resources` (files, or directories
with a kustomization.yaml) and `patches` entries with only a `path` to strategic-merge patches.
A patch applies to the resource of its kind and name; it merges maps key by key (null deletes
a key), merges the lists that Kubernetes merges by key (containers, volumes, env, volumeMounts,
container ports, Service ports, ...) and replaces all other lists, and understands three
directives: `$patch: delete` at the top (remove the resource), `$patch: replace` in a map
(replace it) or as a list element (replace the list). When `kubectl` with kustomize v5 or later
is on PATH, every target is also rendered by it and the two renderings must be equal.
"""
import argparse
import copy
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib

import kubernetes_validate
import kubernetes_validate.utils as kv_utils
import yaml

# The Kubernetes version whose schemas the resources must satisfy (the oldest minor still
# supported by the big managed offerings when this was written; raise it as clusters move on).
KUBERNETES_VERSION = "1.30.0"

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ["base", "overlays/nitro", "overlays/confidential"]

# Resources without a schema in kubernetes-validate, checked by hand below.
CRDS = {("monitoring.coreos.com", "ServiceMonitor")}

# Kinds that would terminate TLS (or HTTP) in front of the gateway.
TLS_TERMINATING_KINDS = {"Ingress", "Gateway", "HTTPRoute", "GRPCRoute", "TLSRoute", "IngressRoute",
                         "VirtualService"}

GATEWAY_HTTPS_PORT = 8443
GATEWAY_METRICS_PORT = 9464
PEER_PORT = 7443
MONITORING_NAMESPACE = "monitoring"
JOB_NAME = "shroud"


class Problems:
    def __init__(self):
        self.items = []

    def add(self, where, message):
        self.items.append(f"{where}: {message}")


# ---------------------------------------------------------------------------------------------
# Rendering: a documented subset of kustomize.


class RenderError(Exception):
    pass


def load_yaml_docs(path):
    with open(path) as f:
        try:
            return [doc for doc in yaml.safe_load_all(f) if doc is not None]
        except yaml.YAMLError as e:
            raise RenderError(f"{path}: not YAML: {e}")


def group_of(api_version):
    return api_version.split("/")[0] if "/" in api_version else ""


def res_id(doc):
    meta = doc.get("metadata") or {}
    return (group_of(doc.get("apiVersion", "")), doc.get("kind"), meta.get("namespace"), meta.get("name"))


def show_id(rid):
    return f"{rid[1]}/{rid[3]}"


# The lists Kubernetes merges by key in a strategic merge patch (its patchMergeKey), by field
# name; everything else is replaced whole.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "resourceClaims": "name",
    "topologySpreadConstraints": "topologyKey",
}


def merge_key(kind, path):
    field = path[-1] if path else None
    if field == "ports":
        if any(p in ("containers", "initContainers", "ephemeralContainers") for p in path):
            return "containerPort"
        if kind == "Service" and tuple(path) == ("spec", "ports"):
            return "port"
        return None
    return MERGE_KEYS.get(field)


def strip_directives(value, where):
    if isinstance(value, dict):
        if "$patch" in value:
            raise RenderError(f"{where}: $patch: {value['$patch']} is not understood here")
        return {k: strip_directives(v, where) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_directives(v, where) for v in value]
    return copy.deepcopy(value)


def merge(base, patch, kind, path, where):
    if isinstance(patch, dict):
        directive = patch.get("$patch")
        if directive == "replace":
            return strip_directives({k: v for k, v in patch.items() if k != "$patch"}, where)
        if directive is not None:
            raise RenderError(f"{where}: $patch: {directive} at {'.'.join(path)} is not understood by this stand-in")
        if not isinstance(base, dict):
            return strip_directives(patch, where)
        out = copy.deepcopy(base)
        for key, value in patch.items():
            if value is None:
                out.pop(key, None)
            elif key in out:
                out[key] = merge(out[key], value, kind, path + [key], where)
            else:
                out[key] = strip_directives(value, where)
        return out
    if isinstance(patch, list):
        replace = [x for x in patch if isinstance(x, dict) and x.get("$patch") == "replace" and len(x) == 1]
        if replace:
            return strip_directives([x for x in patch if x not in replace], where)
        key = merge_key(kind, path)
        if key is None or not isinstance(base, list):
            return strip_directives(patch, where)
        out = copy.deepcopy(base)
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                raise RenderError(f"{where}: an element of {'.'.join(path)} has no {key}")
            found = [i for i, x in enumerate(out) if isinstance(x, dict) and x.get(key) == item[key]]
            directive = item.get("$patch")
            if directive == "delete":
                out = [x for i, x in enumerate(out) if i not in found]
            elif directive is not None and directive != "replace":
                raise RenderError(f"{where}: $patch: {directive} in {'.'.join(path)} is not understood")
            elif found:
                out[found[0]] = merge(out[found[0]], item, kind, path + [str(item[key])], where)
            else:
                out.append(strip_directives(item, where))
        return out
    return copy.deepcopy(patch)


def render(directory, seen=()):
    directory = os.path.abspath(directory)
    if directory in seen:
        raise RenderError(f"{directory}: kustomizations include each other")
    path = os.path.join(directory, "kustomization.yaml")
    if not os.path.exists(path):
        raise RenderError(f"{directory}: no kustomization.yaml")
    docs = load_yaml_docs(path)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise RenderError(f"{path}: expected one mapping")
    kust = docs[0]
    unknown = set(kust) - {"apiVersion", "kind", "resources", "patches"}
    if unknown:
        raise RenderError(f"{path}: {', '.join(sorted(unknown))}: not understood by this stand-in for "
                          "kustomize (.ci/check_k8s.py): use resources and patches, or extend it")
    if kust.get("kind") != "Kustomization":
        raise RenderError(f"{path}: kind must be Kustomization")
    resources = []
    for entry in kust.get("resources") or []:
        target = os.path.join(directory, entry)
        if os.path.isdir(target):
            resources.extend(render(target, seen + (directory,)))
        elif os.path.isfile(target):
            for doc in load_yaml_docs(target):
                doc["__file__"] = os.path.relpath(target, directory)
                resources.append(doc)
        else:
            raise RenderError(f"{path}: resource {entry} does not exist")
    ids = [res_id(r) for r in resources]
    for rid in set(ids):
        if ids.count(rid) > 1:
            raise RenderError(f"{path}: {show_id(rid)} is defined {ids.count(rid)} times")
    for entry in kust.get("patches") or []:
        if not isinstance(entry, dict) or set(entry) != {"path"}:
            raise RenderError(f"{path}: patches entries must have only a path (got {entry!r})")
        patch_path = os.path.join(directory, entry["path"])
        if not os.path.isfile(patch_path):
            raise RenderError(f"{path}: patch {entry['path']} does not exist")
        for patch in load_yaml_docs(patch_path):
            where = os.path.relpath(patch_path, directory)
            rid = res_id(patch)
            matches = [i for i, r in enumerate(resources) if res_id(r) == rid]
            if not matches:
                raise RenderError(f"{where}: no {show_id(rid)} to patch")
            index = matches[0]
            if patch.get("$patch") == "delete":
                del resources[index]
                continue
            source = resources[index].pop("__file__", None)
            resources[index] = merge(resources[index], patch, patch.get("kind"), [], where)
            if source:
                resources[index]["__file__"] = source
    return resources


def without_bookkeeping(resources):
    return [{k: v for k, v in r.items() if k != "__file__"} for r in resources]


def kubectl_kustomize_major():
    if shutil.which("kubectl") is None:
        return None
    try:
        out = subprocess.run(["kubectl", "version", "--client"], capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"Kustomize Version: v(\d+)", out)
    return int(match.group(1)) if match else None


def kubectl_render(directory):
    result = subprocess.run(["kubectl", "kustomize", directory], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {directory}: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc is not None]


def first_difference(a, b, path=""):
    if type(a) is not type(b):
        return f"{path or '.'}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a or key not in b:
                return f"{path}.{key}: only in {'kustomize' if key in b else 'the stand-in'}"
            diff = first_difference(a[key], b[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} elements != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            diff = first_difference(x, y, f"{path}[{i}]")
            if diff:
                return diff
        return None
    return None if a == b else f"{path}: {a!r} != {b!r}"


# ---------------------------------------------------------------------------------------------
# Schemas.


def validate_schemas(target, resources, problems):
    checked = 0
    for r in resources:
        rid = res_id(r)
        where = f"{target}: {show_id(rid)}"
        if (rid[0], rid[1]) in CRDS:
            continue
        try:
            kubernetes_validate.validate(r, KUBERNETES_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as e:
            location = ".".join(str(p) for p in e.path) or "(top)"
            problems.add(where, f"does not validate against Kubernetes {KUBERNETES_VERSION}: {location}: {e.message}")
        except kv_utils.SchemaNotFoundError:
            problems.add(where, f"no schema for {r.get('apiVersion')} {r.get('kind')} in Kubernetes "
                                f"{KUBERNETES_VERSION}, and it is not a CRD this check knows")
    return checked


DURATION = re.compile(r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$")
SERVICEMONITOR_SPEC = {"jobLabel", "targetLabels", "podTargetLabels", "endpoints", "selector",
                       "selectorMechanism", "namespaceSelector", "sampleLimit", "scrapeProtocols",
                       "fallbackScrapeProtocol", "targetLimit", "labelLimit", "labelNameLengthLimit",
                       "labelValueLengthLimit", "keepDroppedTargets", "attachMetadata", "scrapeClass",
                       "bodySizeLimit", "nativeHistogramBucketLimit", "nativeHistogramMinBucketFactor",
                       "scrapeClassicHistograms", "convertClassicHistogramsToNHCB"}
SERVICEMONITOR_ENDPOINT = {"port", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout",
                           "tlsConfig", "bearerTokenFile", "bearerTokenSecret", "authorization",
                           "honorLabels", "honorTimestamps", "trackTimestampsStaleness", "basicAuth",
                           "oauth2", "metricRelabelings", "relabelings", "proxyUrl", "noProxy",
                           "proxyFromEnvironment", "proxyConnectHeader", "followRedirects",
                           "enableHttp2", "filterRunning"}


def check_servicemonitor(target, sm, resources, problems):
    where = f"{target}: ServiceMonitor/{(sm.get('metadata') or {}).get('name')}"
    if sm.get("apiVersion") != "monitoring.coreos.com/v1":
        problems.add(where, "apiVersion must be monitoring.coreos.com/v1")
    meta = sm.get("metadata") or {}
    if not meta.get("name"):
        problems.add(where, "metadata.name is required")
    spec = sm.get("spec")
    if not isinstance(spec, dict):
        problems.add(where, "spec is required")
        return
    for key in sorted(set(spec) - SERVICEMONITOR_SPEC):
        problems.add(where, f"spec.{key}: not a ServiceMonitor field")
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        problems.add(where, "spec.selector (matchLabels or matchExpressions) is required")
        selector = {}
    endpoints = spec.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints:
        problems.add(where, "spec.endpoints must list at least one endpoint")
        endpoints = []
    services = [r for r in resources if r.get("kind") == "Service"
                and labels_match((selector or {}).get("matchLabels") or {}, (r.get("metadata") or {}).get("labels") or {})]
    if not services:
        problems.add(where, "spec.selector matches no Service")
    for i, ep in enumerate(endpoints):
        ew = f"spec.endpoints[{i}]"
        if not isinstance(ep, dict):
            problems.add(where, f"{ew}: must be a mapping")
            continue
        for key in sorted(set(ep) - SERVICEMONITOR_ENDPOINT):
            problems.add(where, f"{ew}.{key}: not a ServiceMonitor endpoint field")
        if not isinstance(ep.get("port"), str) and "targetPort" not in ep:
            problems.add(where, f"{ew}: port (a Service port name) or targetPort is required")
        if "path" in ep and not str(ep["path"]).startswith("/"):
            problems.add(where, f"{ew}.path must start with /")
        if ep.get("scheme", "http") not in ("http", "https"):
            problems.add(where, f"{ew}.scheme must be http or https")
        for key in ("interval", "scrapeTimeout"):
            if key in ep and not DURATION.match(str(ep[key])):
                problems.add(where, f"{ew}.{key}: {ep[key]!r} is not a Prometheus duration")
        for svc in services:
            names = [p.get("name") for p in (svc.get("spec") or {}).get("ports") or []]
            if isinstance(ep.get("port"), str) and ep["port"] not in names:
                problems.add(where, f"{ew}.port {ep['port']!r} is not a port of Service/{svc['metadata']['name']} ({names})")
    job_label = spec.get("jobLabel")
    for svc in services:
        job = ((svc.get("metadata") or {}).get("labels") or {}).get(job_label) if job_label else None
        if job != JOB_NAME:
            problems.add(where, f"the job name must be {JOB_NAME!r} (the alert rules select job=\"{JOB_NAME}\"): "
                                f"set jobLabel to a label of Service/{svc['metadata']['name']} whose value is {JOB_NAME!r}")


# ---------------------------------------------------------------------------------------------
# Promises.


def labels_match(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def port_number(container, port):
    if isinstance(port, int):
        return port
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return p.get("containerPort")
    return None


def listen_port(address):
    host, _, port = address.rpartition(":")
    return host.strip("[]"), int(port)


def check_promises(target, resources, problems):
    by_kind = {}
    for r in resources:
        by_kind.setdefault(r.get("kind"), []).append(r)
    for kind in TLS_TERMINATING_KINDS & set(by_kind):
        problems.add(target, f"a {kind} would terminate TLS or HTTP outside the TEE: the public path is a TCP Service only")

    deployments = by_kind.get("Deployment", [])
    if len(deployments) != 1:
        problems.add(target, f"expected one Deployment, found {len(deployments)}")
        return
    deployment = deployments[0]
    dw = f"{target}: Deployment/{deployment['metadata']['name']}"
    template = (deployment.get("spec") or {}).get("template") or {}
    pod_labels = (template.get("metadata") or {}).get("labels") or {}
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    all_containers = containers + (pod.get("initContainers") or [])
    if not labels_match(((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}, pod_labels):
        problems.add(dw, "spec.selector does not match the pod template's labels")

    # The pod: non-root, read-only root file system, no capabilities, nothing of the host.
    pod_sc = pod.get("securityContext") or {}
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(key):
            problems.add(dw, f"{key} must not be set")
    if pod.get("automountServiceAccountToken") is not False:
        problems.add(dw, "automountServiceAccountToken must be false (the gateway uses no Kubernetes API)")
    for volume in pod.get("volumes") or []:
        if "hostPath" in volume:
            problems.add(dw, f"volume {volume.get('name')}: no hostPath volumes")
    for c in all_containers:
        cw = f"{dw}: container {c.get('name')}"
        sc = c.get("securityContext") or {}
        if not (sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True):
            problems.add(cw, "must run as non-root (runAsNonRoot: true)")
        if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
            problems.add(cw, "runAsUser must not be 0")
        if sc.get("readOnlyRootFilesystem") is not True:
            problems.add(cw, "readOnlyRootFilesystem must be true")
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.add(cw, "allowPrivilegeEscalation must be false")
        if sc.get("privileged"):
            problems.add(cw, "must not be privileged")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            problems.add(cw, "capabilities.drop must include ALL")
        if caps.get("add"):
            problems.add(cw, f"capabilities.add must be empty, not {caps['add']}")
        resources_ = c.get("resources") or {}
        for kind in ("requests", "limits"):
            for res in ("cpu", "memory"):
                if res not in (resources_.get(kind) or {}):
                    problems.add(cw, f"resources.{kind}.{res} must be set")
        image = c.get("image", "")
        if ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
            problems.add(cw, f"image {image!r} has no tag or digest")
        elif image.endswith(":latest"):
            problems.add(cw, f"image {image!r}: not latest (users pin measurements, operators pin images)")

    # The public Service: TCP 443 passed through, no TLS at the balancer.
    services = by_kind.get("Service", [])
    public = [s for s in services if (s.get("spec") or {}).get("type") == "LoadBalancer"]
    if len(public) != 1:
        problems.add(target, f"expected one Service of type LoadBalancer, found {len(public)}")
        return
    lb = public[0]
    lw = f"{target}: Service/{lb['metadata']['name']}"
    annotations = (lb.get("metadata") or {}).get("annotations") or {}
    for key, value in annotations.items():
        if re.search(r"ssl|tls|cert", key, re.I):
            problems.add(lw, f"annotation {key}: the balancer must not terminate TLS (pass TCP through)")
        if key.endswith("backend-protocol") and str(value).lower() != "tcp":
            problems.add(lw, f"annotation {key}: {value!r}: the backend protocol must be tcp")
    if not labels_match((lb.get("spec") or {}).get("selector") or {}, pod_labels):
        problems.add(lw, "its selector does not match the gateway pods")
    lb_ports = (lb.get("spec") or {}).get("ports") or []
    if len(lb_ports) != 1:
        problems.add(lw, f"must expose exactly one port (443), not {len(lb_ports)}")
    serving = None
    for p in lb_ports:
        if p.get("port") != 443:
            problems.add(lw, f"port {p.get('port')}: the public port is 443")
        if p.get("protocol", "TCP") != "TCP":
            problems.add(lw, f"port {p.get('port')}: protocol must be TCP, not {p.get('protocol')}")
        if "appProtocol" in p:
            problems.add(lw, f"port {p.get('port')}: no appProtocol (it asks some balancers to speak {p['appProtocol']})")
        target_port = p.get("targetPort", p.get("port"))
        for c in containers:
            if port_number(c, target_port) == GATEWAY_HTTPS_PORT:
                serving = c
        if serving is None:
            problems.add(lw, f"targetPort {target_port!r} is not container port {GATEWAY_HTTPS_PORT} of any container")

    # Probes on the container that serves the public port.
    if serving is not None:
        cw = f"{dw}: container {serving.get('name')}"
        has_metrics = any(p.get("containerPort") == GATEWAY_METRICS_PORT for p in serving.get("ports") or [])
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = ((serving.get(probe) or {}).get("httpGet")) or {}
            if get.get("path") != path:
                problems.add(cw, f"{probe} must be an HTTP GET of {path}")
            elif has_metrics and port_number(serving, get.get("port")) != GATEWAY_METRICS_PORT:
                problems.add(cw, f"{probe} must use the metrics port {GATEWAY_METRICS_PORT} (plain HTTP, no PROXY header)")

    # Exactly one PROXY v2 header reaches the gateway.
    proxy_annotation = annotations.get("service.beta.kubernetes.io/aws-load-balancer-proxy-protocol")
    lb_sends_proxy = proxy_annotation == "*"
    host_ingress = [c for c in containers if (c.get("args") or [None])[0] == "ingress"]
    configmaps = by_kind.get("ConfigMap", [])
    config = None
    if host_ingress:
        if lb_sends_proxy:
            problems.add(lw, "shroud-host ingress writes the PROXY v2 header itself: the balancer must not send one too")
    else:
        cms = [cm for cm in configmaps if "gateway.toml" in (cm.get("data") or {})]
        if len(cms) != 1:
            problems.add(target, "the gateway runs in the pod, so one ConfigMap must hold gateway.toml")
        else:
            cmw = f"{target}: ConfigMap/{cms[0]['metadata']['name']}"
            try:
                config = tomllib.loads(cms[0]["data"]["gateway.toml"])
            except tomllib.TOMLDecodeError as e:
                problems.add(cmw, f"gateway.toml is not TOML: {e}")
            if config is not None:
                listen = config.get("listen") or {}
                if bool(listen.get("proxy_protocol")) != lb_sends_proxy:
                    problems.add(cmw, f"[listen] proxy_protocol = {str(bool(listen.get('proxy_protocol'))).lower()}, but the balancer "
                                      f"{'sends' if lb_sends_proxy else 'does not send'} PROXY v2 headers: they must agree")
                for key, port in (("https", GATEWAY_HTTPS_PORT), ("metrics", GATEWAY_METRICS_PORT)):
                    try:
                        host, number = listen_port(listen.get(key, "127.0.0.1:0"))
                    except ValueError:
                        problems.add(cmw, f"[listen] {key} is not IP:PORT")
                        continue
                    if number != port or ipaddress.ip_address(host).is_loopback:
                        problems.add(cmw, f"[listen] {key} must listen on the pod's address, port {port} "
                                          f"(the Services and probes use it), not {listen.get(key, 'the default')}")
                platform = (config.get("tee") or {}).get("platform", "auto")
                if platform == "simulated" and target != "base":
                    problems.add(cmw, "an overlay must not run the simulated TEE (only the development base does)")

    # The headless Service for peers ([cluster]).
    peers = [s for s in services if (s.get("spec") or {}).get("clusterIP") == "None"
             and any(p.get("port") == PEER_PORT for p in (s.get("spec") or {}).get("ports") or [])]
    if len(peers) != 1:
        problems.add(target, f"expected one headless Service with port {PEER_PORT} for the replicas' peers")
    else:
        pw = f"{target}: Service/{peers[0]['metadata']['name']}"
        if (peers[0].get("spec") or {}).get("publishNotReadyAddresses") is not True:
            problems.add(pw, "publishNotReadyAddresses must be true (a replica without the secret is not ready and must still be found)")
        if not labels_match((peers[0].get("spec") or {}).get("selector") or {}, pod_labels):
            problems.add(pw, "its selector does not match the gateway pods")
    for s in services:
        if s is not lb and (s.get("spec") or {}).get("type") in ("NodePort", "LoadBalancer"):
            problems.add(f"{target}: Service/{s['metadata']['name']}", "only the public Service may be reachable from outside")

    # The PodDisruptionBudget.
    pdbs = by_kind.get("PodDisruptionBudget", [])
    if len(pdbs) != 1 or not labels_match(((pdbs[0].get("spec") or {}).get("selector") or {}).get("matchLabels") or {}, pod_labels):
        problems.add(target, "expected one PodDisruptionBudget selecting the gateway pods")

    # The NetworkPolicy: ingress only to 8443 and (from the monitoring namespace) 9464; egress
    # only DNS and 443.
    policies = [p for p in by_kind.get("NetworkPolicy", [])
                if labels_match(((p.get("spec") or {}).get("podSelector") or {}).get("matchLabels") or {}, pod_labels)]
    if len(policies) != 1:
        problems.add(target, f"expected one NetworkPolicy selecting the gateway pods, found {len(policies)}")
        return
    policy = policies[0]
    nw = f"{target}: NetworkPolicy/{policy['metadata']['name']}"
    spec = policy.get("spec") or {}
    if set(spec.get("policyTypes") or []) != {"Ingress", "Egress"}:
        problems.add(nw, "policyTypes must be Ingress and Egress (without Egress, egress is not restricted)")
    egress = spec.get("egress")
    if not egress:
        problems.add(nw, "egress must list what is allowed (an empty list denies all, which breaks upstreams)")
    for i, rule in enumerate(egress or []):
        ports = rule.get("ports") or []
        if not ports:
            problems.add(nw, f"egress[{i}] allows every port: list them (53 for DNS, 443)")
        for p in ports:
            allowed = {(53, "UDP"), (53, "TCP"), (443, "TCP")}
            if (p.get("port"), p.get("protocol", "TCP")) not in allowed or "endPort" in p:
                problems.add(nw, f"egress[{i}] allows {p.get('protocol', 'TCP')} {p.get('port')}: only DNS (53) and 443")
        if any(p.get("port") == 53 for p in ports) and not rule.get("to"):
            problems.add(nw, f"egress[{i}]: DNS only to the cluster's resolver (a to: selector)")
        for peer in rule.get("to") or []:
            block = peer.get("ipBlock")
            if block:
                network = ipaddress.ip_network(block["cidr"])
                excepted = [ipaddress.ip_network(e) for e in block.get("except") or []]
                metadata = ipaddress.ip_address("169.254.169.254" if network.version == 4 else "fd00:ec2::254")
                if metadata in network and not any(metadata in e for e in excepted):
                    problems.add(nw, f"egress[{i}]: {block['cidr']} includes the instance metadata endpoint {metadata}: except it")
    ingress = spec.get("ingress") or []
    for i, rule in enumerate(ingress):
        ports = rule.get("ports") or []
        if not ports:
            problems.add(nw, f"ingress[{i}] allows every port")
        for p in ports:
            if p.get("port") not in (GATEWAY_HTTPS_PORT, "https", GATEWAY_METRICS_PORT, "metrics") or "endPort" in p:
                problems.add(nw, f"ingress[{i}] allows port {p.get('port')}: only {GATEWAY_HTTPS_PORT} and {GATEWAY_METRICS_PORT}")
            if p.get("port") in (GATEWAY_METRICS_PORT, "metrics"):
                sources = rule.get("from") or []
                ok = sources and all(set(s) == {"namespaceSelector"} and
                                     (s["namespaceSelector"].get("matchLabels") or {}) ==
                                     {"kubernetes.io/metadata.name": MONITORING_NAMESPACE} for s in sources)
                if not ok:
                    problems.add(nw, f"ingress[{i}]: the metrics port only from the namespace {MONITORING_NAMESPACE}")
    if not any(p.get("port") in (GATEWAY_HTTPS_PORT, "https") for rule in ingress for p in rule.get("ports") or []):
        problems.add(nw, f"ingress must admit port {GATEWAY_HTTPS_PORT} (the gateway's clients)")

    # What each overlay is for.
    if target == "overlays/nitro":
        if (pod.get("nodeSelector") or {}).get("aws-nitro-enclaves-k8s-dp") != "enabled":
            problems.add(dw, "nodeSelector aws-nitro-enclaves-k8s-dp: enabled (the device plugin's node label)")
        enclave = [c for c in containers if "aws.ec2.nitro/nitro_enclaves" in ((c.get("resources") or {}).get("limits") or {})]
        if not enclave:
            problems.add(dw, "a container must request aws.ec2.nitro/nitro_enclaves")
        for c in enclave:
            res = c.get("resources") or {}
            if not any(k.startswith("hugepages-") for k in res.get("limits") or {}):
                problems.add(dw, f"container {c.get('name')}: the enclave's memory comes from huge pages (hugepages-2Mi or -1Gi)")
            if res.get("requests") != res.get("limits") and \
                    (res.get("requests") or {}).get("aws.ec2.nitro/nitro_enclaves") != res["limits"]["aws.ec2.nitro/nitro_enclaves"]:
                problems.add(dw, f"container {c.get('name')}: request and limit the enclave device alike")
            if "--debug-mode" in " ".join(str(x) for x in (c.get("command") or []) + (c.get("args") or [])):
                problems.add(dw, "never --debug-mode: a debug enclave reports PCRs of zeros")
        if not host_ingress:
            problems.add(dw, "shroud-host ingress must carry TCP to the enclave")
    if target == "overlays/confidential":
        if not pod.get("runtimeClassName"):
            problems.add(dw, "runtimeClassName must name the confidential runtime (e.g. kata-qemu-tdx)")


# ---------------------------------------------------------------------------------------------


def check(k8s_dir, compare_with_kubectl=True, quiet=False):
    problems = Problems()
    totals = {"schema": 0, "crd": 0}
    major = kubectl_kustomize_major() if compare_with_kubectl else None
    for target in TARGETS:
        directory = os.path.join(k8s_dir, target)
        try:
            resources = without_bookkeeping(render(directory))
        except RenderError as e:
            problems.add(target, f"cannot render: {e}")
            continue
        if major is not None and major >= 5:
            try:
                theirs = kubectl_render(directory)
            except RenderError as e:
                problems.add(target, str(e))
            else:
                mine = {res_id(r): r for r in resources}
                other = {res_id(r): r for r in theirs}
                if set(mine) != set(other):
                    problems.add(target, f"kubectl kustomize renders {sorted(map(show_id, other))}, "
                                         f"the stand-in {sorted(map(show_id, mine))}")
                for rid in set(mine) & set(other):
                    diff = first_difference(mine[rid], other[rid])
                    if diff:
                        problems.add(target, f"{show_id(rid)}: the stand-in and kubectl kustomize differ at {diff}")
        totals["schema"] += validate_schemas(target, resources, problems)
        for r in resources:
            if (group_of(r.get("apiVersion", "")), r.get("kind")) == ("monitoring.coreos.com", "ServiceMonitor"):
                check_servicemonitor(target, r, resources, problems)
                totals["crd"] += 1
        check_promises(target, resources, problems)
        if not quiet:
            kinds = ", ".join(sorted(f"{r['kind']}/{r['metadata']['name']}" for r in resources))
            print(f"{target}: {len(resources)} resources: {kinds}")
    if not quiet:
        if major is None:
            print("kubectl: not found (or no kustomize version): the stand-in's rendering was not compared with kustomize")
        elif major < 5:
            print(f"kubectl: kustomize v{major} is too old to compare with (v5 or later)")
        else:
            print(f"kubectl kustomize (kustomize v{major}) renders every target exactly as the stand-in does")
    return problems, totals


def self_test():
    """Break a copy of deploy/k8s in one way at a time; each must be reported."""

    def edit(rel, old, new):
        def apply(directory):
            path = os.path.join(directory, rel)
            text = open(path).read()
            if old not in text:
                raise SystemExit(f"self-test: {rel} no longer contains {old!r}: update the self-test")
            open(path, "w").write(text.replace(old, new, 1))
        return apply

    cases = [
        ("a misspelt field (strict schema)",
         edit("base/deployment.yaml", "readinessProbe:", "readinesProbe:"), "does not validate"),
        ("a wrong type (schema)",
         edit("base/deployment.yaml", "replicas: 3", "replicas: three"), "does not validate"),
        ("TLS terminated at the balancer",
         edit("base/service-public.yaml", "    service.beta.kubernetes.io/aws-load-balancer-type: external\n",
              "    service.beta.kubernetes.io/aws-load-balancer-type: external\n"
              "    service.beta.kubernetes.io/aws-load-balancer-ssl-cert: arn:aws:acm:eu-west-1:1:certificate/x\n"),
         "must not terminate TLS"),
        ("the public port not TCP 443",
         edit("base/service-public.yaml", "port: 443", "port: 80"), "the public port is 443"),
        ("egress to every port",
         edit("base/networkpolicy.yaml", "  egress:\n", "  egress:\n    - {}\n"), "allows every port"),
        ("egress without a policy type",
         edit("base/networkpolicy.yaml", "    - Egress\n", ""), "policyTypes must be Ingress and Egress"),
        ("metrics from anywhere",
         edit("base/networkpolicy.yaml", "              kubernetes.io/metadata.name: monitoring\n",
              "              kubernetes.io/metadata.name: default\n"), "the metrics port only from"),
        ("a writable root file system",
         edit("base/deployment.yaml", "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false"),
         "readOnlyRootFilesystem must be true"),
        ("root",
         edit("base/deployment.yaml", "runAsUser: 65532", "runAsUser: 0"), "runAsUser must not be 0"),
        ("the gateway not expecting the balancer's PROXY header",
         edit("base/configmap.yaml", "proxy_protocol = true", "proxy_protocol = false"), "they must agree"),
        ("two PROXY headers on Nitro",
         edit("overlays/nitro/service-public.yaml", "aws-load-balancer-proxy-protocol: null",
              "aws-load-balancer-proxy-protocol: \"*\""), "must not send one too"),
        ("no enclave device on Nitro",
         edit("overlays/nitro/deployment.yaml", "            limits:\n              aws.ec2.nitro/nitro_enclaves: \"1\"\n",
              "            limits:\n"), "must request aws.ec2.nitro/nitro_enclaves"),
        ("the simulated TEE on a confidential overlay",
         edit("overlays/confidential/configmap.yaml", 'platform = "auto"', 'platform = "simulated"'),
         "must not run the simulated TEE"),
        ("a ServiceMonitor endpoint on a port the Service lacks",
         edit("base/servicemonitor.yaml", "    - port: metrics", "    - port: metric"), "is not a port of"),
        ("a kustomize field the stand-in does not know",
         edit("overlays/confidential/kustomization.yaml", "resources:\n", "namePrefix: x-\nresources:\n"),
         "not understood by this stand-in"),
    ]
    source = os.path.join(ROOT, "deploy/k8s")
    problems, _ = check(source, compare_with_kubectl=False, quiet=True)
    if problems.items:
        raise SystemExit("self-test: deploy/k8s itself has problems; run .ci/check_k8s.py first")
    with tempfile.TemporaryDirectory(prefix="check_k8s.") as tmp:
        for name, apply, expected in cases:
            copy_dir = os.path.join(tmp, "k8s")
            shutil.rmtree(copy_dir, ignore_errors=True)
            shutil.copytree(source, copy_dir)
            apply(copy_dir)
            problems, _ = check(copy_dir, compare_with_kubectl=False, quiet=True)
            hits = [p for p in problems.items if expected in p]
            if not hits:
                print(f"self-test: {name}: NOT caught (expected {expected!r}); reported: {problems.items}")
                sys.exit(1)
            print(f"self-test: {name}: caught: {hits[0]}")
    print(f"self-test: all {len(cases)} broken copies were caught")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default=os.path.join(ROOT, "deploy/k8s"), help="the deploy/k8s directory to check")
    parser.add_argument("--self-test", action="store_true", help="show that broken copies are caught")
    args = parser.parse_args()
    if args.self_test:
        self_test()
        return
    started = time.monotonic()
    problems, totals = check(args.dir)
    if problems.items:
        for p in problems.items:
            print(f"check_k8s: {p}", file=sys.stderr)
        print(f"check_k8s: {len(problems.items)} problem(s)", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {totals['schema']} resources valid against the Kubernetes {KUBERNETES_VERSION} schemas "
          f"(kubernetes-validate {kubernetes_validate.__version__}, strict), {totals['crd']} ServiceMonitor(s) "
          f"checked by hand, every promise kept, in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
