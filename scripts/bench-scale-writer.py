#!/usr/bin/env python3
"""Fill an etcd 3.4 member with a Kubernetes-shaped keyspace until its db reaches a size.

usage: bench-scale-writer.py ENDPOINT TARGET_BYTES [WORKERS]

Keys are what kube-apiserver writes (`/registry/pods/<ns>/<name>`, `/registry/leases/...`,
`/registry/<group>/<resource>/<ns>/<name>` for custom resources). Built-in kinds are stored as
Kubernetes protobuf (`k8s\\0` + runtime.Unknown holding the object with its ObjectMeta, labels,
owner references, managedFields, spec and status), CRDs and custom resources as JSON; secrets
hold Helm releases (base64 of gzip), TLS PEM and credentials, not encrypted at rest (the kops
default), so the db compresses as a real one does (gzip -6: about 5x). Objects come as
applications (Deployment, ReplicaSet, Pods, Service, EndpointSlice, ConfigMaps, Secrets,
ServiceAccount, Events on leases, custom resources), plus nodes, their leases (renewed in every
transaction) and CRDs.

Phases: create until the db is 60 % of TARGET_BYTES; churn (pod status rewritten, workloads
removed, config changes, expired events: the leases they are attached to are revoked);
compaction (physical) at the revision then reached; create again (reusing the freed
pages) until the db reaches TARGET_BYTES. WORKERS processes (default 3) send transactions of
about 1 MiB through the gRPC gateway (POST /v3/kv/txn); etcd must run with --max-txn-ops and
--max-request-bytes large enough (bench-scale uses 20000 and 16 MiB). One transaction is one
revision, so revisions are far fewer than a real cluster's with as many writes (kube-apiserver
writes one object per transaction); the keys and the bytes per key are the same.
"""
import base64
import functools
import json
import multiprocessing as mp
import random
import sys
import time
import urllib.request

TXN_BYTES = 1 << 20
TXN_OPS = 2000


def post(endpoint, path, body):
    req = urllib.request.Request(endpoint + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=300) as resp:
        out = json.loads(resp.read() or b"{}")
    if "error" in out or "code" in out and out.get("code"):
        raise RuntimeError(f"{path}: {out}")
    return out


def db_status(endpoint):
    st = post(endpoint, "/v3/maintenance/status", {})
    return int(st["dbSize"]), int(st["header"]["revision"])


# ---- protobuf-ish encoding (wire format of Kubernetes' generated.pb.go) ----

def _varint(n):
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINT = [_varint(n) for n in range(1 << 14)]


def varint(n):
    return _VARINT[n] if n < 16384 else _varint(n)


def F(num, b):
    """Length-delimited field (string, bytes or message)."""
    if isinstance(b, str):
        b = b.encode()
    n = len(b)
    return _VARINT[num << 3 | 2] + (_VARINT[n] if n < 16384 else _varint(n)) + b


def I(num, n):
    return varint(num << 3) + varint(n)


def T(num, secs):
    return F(num, I(1, secs))


def unknown(api_version, kind, obj):
    """What kube-apiserver stores for a built-in kind: magic + runtime.Unknown."""
    return b"k8s\x00" + F(1, F(1, api_version) + F(2, kind)) + F(2, obj) + F(3, b"") + F(4, b"")


class Gen:
    def __init__(self, seed, now):
        self.r = random.Random(seed)
        self.now = now

    def uid(self):
        h = "%032x" % self.r.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def hexs(self, n):
        return "%0*x" % (n, self.r.getrandbits(4 * n))

    def suffix(self, n=5):
        return "".join(self.r.choices("bcdfghjklmnpqrstvwxz2456789", k=n))

    def ts(self):
        return self.now - self.r.randint(0, 90 * 86400)

    def ip(self):
        return f"10.{self.r.randint(0, 255)}.{self.r.randint(0, 255)}.{self.r.randint(1, 254)}"

    def words(self, n):
        return " ".join(self.r.choices(WORDS, k=n))


WORDS = ("the a pod node container image pulled started created scheduled successfully assigned "
         "volume mount back-off restarting failed readiness probe liveness http get status code "
         "deployment scaled replica set up down to from kubelet default-scheduler controller "
         "endpoint slice service cluster ip port tcp config map secret token account namespace "
         "error warning normal sync load balancer ingress certificate issued renewed").split()
GROUPS = ["cert-manager.io", "monitoring.coreos.com", "argoproj.io", "networking.istio.io",
          "external-secrets.io", "kyverno.io", "velero.io", "crd.projectcalico.org",
          "snapshot.storage.k8s.io", "gateway.networking.k8s.io", "karpenter.sh", "keda.sh"]
CR_KINDS = [("cert-manager.io", "certificates", "Certificate"),
            ("monitoring.coreos.com", "servicemonitors", "ServiceMonitor"),
            ("argoproj.io", "applications", "Application"),
            ("external-secrets.io", "externalsecrets", "ExternalSecret"),
            ("networking.istio.io", "virtualservices", "VirtualService")]
IMAGES = ["nginx", "redis", "postgres", "envoy", "app", "worker", "api", "frontend", "fluent-bit",
          "node-exporter", "coredns", "kube-proxy", "istio-proxy", "busybox", "python", "java"]


def _config_docs():
    r = random.Random(3)
    w = lambda n: " ".join(r.choices(WORDS, k=n))
    docs = []
    for _ in range(12):  # Grafana dashboards (JSON)
        panels = [{"id": i, "type": r.choice(["graph", "stat", "table", "timeseries"]), "title": w(3),
                   "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * i},
                   "targets": [{"expr": f"sum(rate({r.choice(WORDS)}_{r.choice(WORDS)}_total{{namespace=\"$namespace\",pod=~\"$pod\"}}[5m])) by ({r.choice(WORDS)})",
                                "legendFormat": "{{%s}}" % r.choice(WORDS), "refId": "A"}],
                   "fieldConfig": {"defaults": {"unit": r.choice(["bytes", "short", "s", "percent"]), "min": 0}}}
                  for i in range(r.randint(20, 80))]
        docs.append(json.dumps({"title": w(4), "uid": "%012x" % r.getrandbits(48), "panels": panels}, indent=2))
    for _ in range(12):  # application / Prometheus rules YAML
        lines = []
        for i in range(r.randint(300, 1500)):
            depth = r.randint(0, 3)
            lines.append("  " * depth + f"{r.choice(WORDS)}{r.choice(WORDS).capitalize()}: "
                         + r.choice(["true", "false", str(r.randint(0, 65535)), w(r.randint(1, 8)), "%08x" % r.getrandbits(32)]))
        docs.append("\n".join(lines))
    return docs


CONFIG_DOCS = _config_docs()


def fields_json(paths):
    """A managedFields FieldsV1 document for the given dotted field paths."""
    return _fields_json(tuple(paths))


@functools.lru_cache(maxsize=4096)
def _fields_json(paths):
    root = {}
    for p in paths:
        node = root
        for part in p.split("."):
            node = node.setdefault(part, {".": {}} if part.startswith("k:") else {})
    return json.dumps(root, separators=(",", ":"))


def managed(g, manager, op, api, paths, sub=""):
    return F(17, F(1, manager) + F(2, op) + F(3, api) + T(4, g.ts()) + F(6, "FieldsV1")
             + F(7, F(1, fields_json(paths))) + (F(8, sub) if sub else b""))


def meta(g, name, ns, labels, annotations=(), owner=None, mf=(), gen_name="", generation=0):
    m = F(1, name) + (F(2, gen_name) if gen_name else b"") + (F(3, ns) if ns else b"") + F(5, g.uid())
    if generation:
        m += I(7, generation)
    m += T(8, g.ts())
    for k, v in labels:
        m += F(11, F(1, k) + F(2, v))
    for k, v in annotations:
        m += F(12, F(1, k) + F(2, v))
    if owner:
        m += F(13, F(5, owner[0]) + F(1, owner[1]) + F(3, owner[2]) + F(4, owner[3]) + I(6, 1) + I(7, 1))
    for e in mf:
        m += e
    return F(1, m)


def container(g, app, i, image):
    c = (F(1, f"{app}-{i}" if i else app) + F(2, image)
         + F(3, "/bin/" + app) + F(4, "--config=/etc/" + app + "/config.yaml") + F(4, "--v=2"))
    for p in range(g.r.randint(1, 3)):
        c += F(6, F(1, f"port-{p}") + I(3, 8080 + p) + F(4, "TCP"))
    for e in range(g.r.randint(2, 8)):
        name = g.r.choice(["LOG_LEVEL", "POD_NAME", "POD_NAMESPACE", "DB_HOST", "FEATURE_FLAGS",
                           "GOMAXPROCS", "JAVA_OPTS", "REDIS_URL", "API_TOKEN", "REGION"]) + f"_{e}"
        val = g.r.choice(["info", "true", g.hexs(16), f"{app}.svc.cluster.local:5432",
                          "-Xmx512m -XX:+UseG1GC", "eu-west-1"])
        c += F(7, F(1, name) + F(2, val))
    c += F(8, F(1, F(1, "cpu") + F(2, F(1, "500m"))) + F(1, F(1, "memory") + F(2, F(1, "512Mi")))
           + F(2, F(1, "cpu") + F(2, F(1, "100m"))) + F(2, F(1, "memory") + F(2, F(1, "128Mi"))))
    c += F(9, F(1, "kube-api-access") + I(2, 1) + F(3, "/var/run/secrets/kubernetes.io/serviceaccount"))
    c += F(9, F(1, "config") + F(3, "/etc/" + app))
    probe = F(1, F(2, F(1, "/healthz") + F(2, F(2, "http"))) + F(6, "HTTP")) + I(2, 10) + I(3, 1) + I(4, 10) + I(5, 1) + I(6, 3)
    c += F(10, probe) + F(11, probe)
    c += F(13, "/dev/termination-log") + F(14, "IfNotPresent") + F(20, "File")
    return F(2, c)


class App:
    """One application: what a Helm chart or a team's manifests put into a namespace."""

    def __init__(self, g, ns, name, nodes):
        self.g, self.ns, self.name, self.nodes = g, ns, name, nodes
        r = g.r
        self.replicas = r.choice([1, 1, 2, 2, 3, 3, 4, 6, 10])
        self.hash = g.suffix(10)
        self.labels = [("app.kubernetes.io/name", name), ("app.kubernetes.io/instance", name + "-" + ns),
                       ("app.kubernetes.io/managed-by", "Helm"), ("helm.sh/chart", f"{name}-1.{r.randint(0, 40)}.{r.randint(0, 9)}")]
        images = [f"registry.example.com/{r.choice(IMAGES)}:v{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 9)}"
                  for _ in range(r.choice([1, 1, 1, 2, 3]))]
        self.images = images
        spec = b"".join(container(g, name, i, im) for i, im in enumerate(images))
        spec += F(1, F(1, "kube-api-access") + F(2, F(26, F(1, F(4, F(1, "token") + I(2, 3607) + F(3, "token"))) + I(2, 420))))
        spec += F(1, F(1, "config") + F(2, F(19, F(1, F(1, name + "-config")) + I(2, 420))))
        spec += F(3, "Always") + I(4, 30) + F(6, "ClusterFirst") + F(8, name) + F(10, "default-scheduler")
        spec += F(22, F(1, "node.kubernetes.io/not-ready") + F(3, "Exists") + F(4, "NoExecute") + I(5, 300))
        spec += F(22, F(1, "node.kubernetes.io/unreachable") + F(3, "Exists") + F(4, "NoExecute") + I(5, 300))
        self.pod_spec = spec
        cpaths = []
        for i, _ in enumerate(images):
            k = 'k:{"name":"%s"}' % (f"{name}-{i}" if i else name)
            cpaths += [f"f:spec.f:containers.{k}.f:{f}" for f in
                       ("image", "imagePullPolicy", "name", "ports", "resources", "env", "args",
                        "volumeMounts", "livenessProbe", "readinessProbe", "terminationMessagePath")]
        self.pod_paths = ["f:metadata.f:generateName", "f:metadata.f:labels.f:app.kubernetes.io/name",
                          "f:metadata.f:ownerReferences", "f:spec.f:dnsPolicy", "f:spec.f:volumes"] + cpaths
        self.rs_uid = g.uid()
        self.pods = []

    def kv(self):
        """(key, value) of every object of the application, new."""
        g, ns, name, r = self.g, self.ns, self.name, self.g.r
        out = []
        rs_name = f"{name}-{self.hash}"
        tmpl = F(1, F(1, b"") + b"".join(F(11, F(1, k) + F(2, v)) for k, v in self.labels)) + F(2, self.pod_spec)
        dep = meta(g, name, ns, self.labels, [("deployment.kubernetes.io/revision", "3"),
                                              ("meta.helm.sh/release-name", name)],
                   mf=[managed(g, "helm", "Update", "apps/v1", self.pod_paths[:5] + ["f:spec.f:replicas", "f:spec.f:strategy"]),
                       managed(g, "kube-controller-manager", "Update", "apps/v1",
                               ["f:status.f:availableReplicas", "f:status.f:conditions", "f:status.f:replicas"], "status")],
                   generation=3)
        dep_status = I(1, 3) + I(2, self.replicas) + I(3, self.replicas) + I(4, self.replicas) + b"".join(
            F(6, F(1, t) + F(2, "True") + T(6, g.ts()) + T(7, g.ts()) + F(4, "NewReplicaSetAvailable") + F(5, g.words(8)))
            for t in ("Available", "Progressing"))
        out.append((f"/registry/deployments/{ns}/{name}",
                    unknown("apps/v1", "Deployment", dep + F(2, I(1, self.replicas) + F(3, tmpl) + I(9, 10)) + F(3, dep_status))))
        rs = meta(g, rs_name, ns, self.labels + [("pod-template-hash", self.hash)],
                  [("deployment.kubernetes.io/desired-replicas", str(self.replicas))],
                  owner=("apps/v1", "Deployment", name, g.uid()),
                  mf=[managed(g, "kube-controller-manager", "Update", "apps/v1", self.pod_paths)], generation=1)
        out.append((f"/registry/replicasets/{ns}/{rs_name}",
                    unknown("apps/v1", "ReplicaSet", rs + F(2, I(1, self.replicas) + F(3, tmpl)) + F(3, I(1, self.replicas) + I(2, self.replicas)))))
        for _ in range(self.replicas):
            pod = f"{rs_name}-{g.suffix()}"
            node = r.choice(self.nodes)
            self.pods.append((pod, node))
            out.append((f"/registry/pods/{ns}/{pod}", self.pod(pod, node)))
            for ev in self.pod_events(pod, node):
                out.append(ev)
        out.append((f"/registry/services/specs/{ns}/{name}", unknown("v1", "Service", meta(
            g, name, ns, self.labels, mf=[managed(g, "helm", "Update", "v1", ["f:spec.f:ports", "f:spec.f:selector", "f:spec.f:type"])])
            + F(2, F(1, F(1, "http") + F(2, "TCP") + I(3, 80) + F(4, F(1, b"") + I(2, 8080))) + F(2, F(1, "app.kubernetes.io/name") + F(2, name))
                + F(3, f"172.20.{r.randint(0, 255)}.{r.randint(1, 254)}") + F(4, "ClusterIP")))))
        eps = meta(g, f"{name}-{g.suffix()}", ns, self.labels + [("kubernetes.io/service-name", name)],
                   owner=("v1", "Service", name, g.uid()), gen_name=name + "-",
                   mf=[managed(g, "kube-controller-manager", "Update", "discovery.k8s.io/v1", ["f:addressType", "f:endpoints", "f:ports"])])
        for pod, node in self.pods:
            eps += F(2, F(1, g.ip()) + F(2, I(1, 1) + I(2, 1) + I(3, 0)) + F(4, F(1, "Pod") + F(2, ns) + F(3, pod) + F(4, g.uid())) + F(6, node))
        out.append((f"/registry/endpointslices/{ns}/{name}-{g.suffix()}",
                    unknown("discovery.k8s.io/v1", "EndpointSlice", eps + F(3, F(1, "http") + F(2, "TCP") + I(3, 8080)) + F(4, "IPv4"))))
        out.append((f"/registry/serviceaccounts/{ns}/{name}", unknown("v1", "ServiceAccount", meta(g, name, ns, self.labels))))
        for c in range(r.choice([0, 1, 1, 2, 3])):
            out.append(self.configmap(f"{name}-config" if c == 0 else f"{name}-{g.suffix()}"))
        for _ in range(r.choice([0, 1, 1, 2])):
            out.append(self.secret())
        if r.random() < 0.5:
            group, res, kind = r.choice(CR_KINDS)
            out.append((f"/registry/{group}/{res}/{ns}/{name}", self.custom(group, kind)))
        return out

    def pod(self, pod, node, restarts=0):
        g = self.g
        m = meta(g, pod, self.ns, self.labels + [("pod-template-hash", self.hash)], gen_name=pod[:-5],
                 owner=("apps/v1", "ReplicaSet", pod[:-6], self.rs_uid),
                 mf=[managed(g, "kube-controller-manager", "Update", "v1", self.pod_paths),
                     managed(g, "kubelet", "Update", "v1",
                             ["f:status.f:conditions.k:{\"type\":\"%s\"}.f:%s" % (t, f)
                              for t in ("ContainersReady", "Initialized", "Ready", "PodScheduled")
                              for f in ("lastProbeTime", "lastTransitionTime", "status", "type")]
                             + ["f:status.f:containerStatuses", "f:status.f:hostIP", "f:status.f:phase", "f:status.f:podIP",
                                "f:status.f:podIPs", "f:status.f:startTime"], "status")])
        st = F(1, "Running")
        for t in ("Initialized", "Ready", "ContainersReady", "PodScheduled"):
            st += F(2, F(1, t) + F(2, "True") + T(4, g.ts()))
        ip = g.ip()
        st += F(5, f"10.0.{g.r.randint(0, 63)}.{g.r.randint(1, 254)}") + F(6, ip) + T(7, g.ts())
        for i, im in enumerate(self.images):
            st += F(8, F(1, f"{self.name}-{i}" if i else self.name) + F(2, F(2, T(1, g.ts()))) + I(4, 1) + I(5, restarts)
                    + F(6, im) + F(7, im.split(":")[0] + "@sha256:" + g.hexs(64)) + F(8, "containerd://" + g.hexs(64)) + I(9, 1))
        st += F(9, "Burstable") + F(12, F(1, ip))
        return unknown("v1", "Pod", m + F(2, self.pod_spec + F(10, node)) + F(3, st))

    def pod_events(self, pod, node):
        g = self.g
        evs = [("Scheduled", "default-scheduler", f"Successfully assigned {self.ns}/{pod} to {node}"),
               ("Pulling", "kubelet", f"Pulling image \"{self.images[0]}\""),
               ("Pulled", "kubelet", f"Successfully pulled image \"{self.images[0]}\" in {g.r.randint(200, 9000)}ms"),
               ("Created", "kubelet", f"Created container {self.name}"),
               ("Started", "kubelet", f"Started container {self.name}")]
        if g.r.random() < 0.3:
            evs.append(("Unhealthy", "kubelet", "Readiness probe failed: " + g.words(12)))
        out = []
        for reason, comp, msg in evs:
            name = f"{pod}.{g.hexs(16)}"
            m = meta(g, name, self.ns, [], mf=[managed(g, comp, "Update", "v1", ["f:count", "f:firstTimestamp", "f:involvedObject", "f:lastTimestamp", "f:message", "f:reason", "f:source", "f:type"])])
            ev = m + F(2, F(1, "Pod") + F(2, self.ns) + F(3, pod) + F(4, g.uid()) + F(5, "v1") + F(6, str(g.r.randint(1000, 9999999))))
            ev += F(3, reason) + F(4, msg) + F(5, F(1, comp) + F(2, node)) + T(6, g.ts()) + T(7, g.ts()) + I(8, 1) + F(9, "Normal")
            out.append((f"/registry/events/{self.ns}/{name}", unknown("v1", "Event", ev), "event"))
        return out

    def configmap(self, cm):
        g, r = self.g, self.g.r
        m = meta(g, cm, self.ns, self.labels, mf=[managed(g, "helm", "Update", "v1", ["f:data.f:config.yaml", "f:metadata.f:labels"])])
        doc = r.choice(CONFIG_DOCS)
        size = r.choice([300, 1000, 3000, 8000, 20000, 60000])
        start = r.randrange(0, max(1, len(doc) - size))
        body = f"# {self.name} {g.hexs(40)}\n" + doc[start:start + size]
        return (f"/registry/configmaps/{self.ns}/{cm}",
                unknown("v1", "ConfigMap", m + F(2, F(1, "config.yaml") + F(2, body))))

    def secret(self):
        g, r = self.g, self.g.r
        kind = r.random()
        if kind < 0.25:  # Helm release: base64(gzip(release JSON))
            name = f"sh.helm.release.v1.{self.name}.v{r.randint(1, 20)}"
            data = F(2, F(1, "release") + F(2, base64.b64encode(r.randbytes(r.choice([1500, 4000, 9000, 20000])))))
            typ = "helm.sh/release.v1"
        elif kind < 0.6:  # TLS: PEM certificate chain and key
            name = f"{self.name}-tls"
            pem = lambda n, what: (f"-----BEGIN {what}-----\n" + "\n".join(
                base64.b64encode(r.randbytes(48)).decode() for _ in range(n)) + f"\n-----END {what}-----\n")
            data = F(2, F(1, "tls.crt") + F(2, pem(r.choice([20, 40]), "CERTIFICATE"))) + F(2, F(1, "tls.key") + F(2, pem(26, "PRIVATE KEY")))
            typ = "kubernetes.io/tls"
        else:  # credentials
            name = f"{self.name}-{r.choice(['db', 'creds', 'api'])}"
            data = b"".join(F(2, F(1, k) + F(2, base64.b64encode(r.randbytes(r.choice([16, 32, 64]))))) for k in ("username", "password", "url"))
            typ = "Opaque"
        m = meta(g, name, self.ns, self.labels, mf=[managed(g, "helm", "Update", "v1", ["f:data", "f:type"])])
        return (f"/registry/secrets/{self.ns}/{name}", unknown("v1", "Secret", m + data + F(3, typ)))

    def custom(self, group, kind):
        g = self.g
        doc = {"apiVersion": f"{group}/v1", "kind": kind,
               "metadata": {"name": self.name, "namespace": self.ns, "uid": g.uid(), "generation": 1,
                            "creationTimestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(g.ts())),
                            "labels": dict(self.labels),
                            "managedFields": [{"manager": "helm", "operation": "Update", "apiVersion": f"{group}/v1",
                                               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(g.ts())),
                                               "fieldsType": "FieldsV1", "fieldsV1": json.loads(fields_json(self.pod_paths[:6]))}]},
               "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": self.name}},
                        "endpoints": [{"port": "http", "interval": "30s", "path": "/metrics"}],
                        "secretName": f"{self.name}-tls", "dnsNames": [f"{self.name}.{self.ns}.svc", f"{self.name}.example.com"]},
               "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Ready", "message": g.words(10),
                                          "lastTransitionTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(g.ts()))}]}}
        return json.dumps(doc, separators=(",", ":")).encode() + b"\n"


def crd(g, i):
    group = GROUPS[i % len(GROUPS)]
    plural = f"{g.r.choice(WORDS)}{g.r.choice(WORDS)}s{i}"

    def schema(depth):
        props = {}
        for _ in range(g.r.randint(3, 9 if depth < 3 else 4)):
            key = g.r.choice(WORDS) + g.r.choice(WORDS).capitalize()
            if depth < 4 and g.r.random() < 0.4:
                props[key] = {"type": "object", "description": g.words(g.r.randint(5, 40)), "properties": schema(depth + 1)}
            else:
                props[key] = {"type": g.r.choice(["string", "integer", "boolean"]), "description": g.words(g.r.randint(5, 60))}
        return props

    versions = [{"name": v, "served": True, "storage": v == "v1",
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": schema(0)},
                                                                                 "status": {"type": "object", "properties": schema(1)}}}}}
                for v in ("v1alpha1", "v1beta1", "v1")]
    doc = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"{plural}.{group}", "uid": g.uid(), "generation": 1},
           "spec": {"group": group, "names": {"plural": plural, "kind": plural.capitalize()}, "scope": "Namespaced", "versions": versions},
           "status": {"acceptedNames": {"plural": plural}, "storedVersions": ["v1"]}}
    return f"/registry/apiextensions.k8s.io/customresourcedefinitions/{plural}.{group}", json.dumps(doc).encode()


def node(g, name):
    m = meta(g, name, "", [("kubernetes.io/hostname", name), ("kubernetes.io/os", "linux"), ("node.kubernetes.io/instance-type", "m5.2xlarge"),
                           ("topology.kubernetes.io/zone", "eu-west-1" + g.r.choice("abc"))],
             [("node.alpha.kubernetes.io/ttl", "0"), ("volumes.kubernetes.io/controller-managed-attach-detach", "true")],
             mf=[managed(g, "kubelet", "Update", "v1", ["f:status.f:allocatable", "f:status.f:capacity", "f:status.f:conditions", "f:status.f:images"], "status")])
    st = b""
    for t in ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready"):
        st += F(4, F(1, t) + F(2, "False" if t != "Ready" else "True") + T(3, g.ts()) + T(4, g.ts()) + F(5, "Kubelet" + t) + F(6, g.words(6)))
    st += F(5, F(1, "InternalIP") + F(2, g.ip())) + F(5, F(1, "Hostname") + F(2, name))
    st += F(7, F(1, g.hexs(32)) + F(2, g.uid()) + F(3, g.uid()) + F(4, "5.15.0") + F(5, "Ubuntu 22.04") + F(6, "containerd://1.7.2") + F(7, "v1.29.3"))
    for _ in range(g.r.randint(30, 80)):
        im = f"registry.example.com/{g.r.choice(IMAGES)}"
        st += F(8, F(1, f"{im}@sha256:{g.hexs(64)}") + F(1, f"{im}:v{g.r.randint(0, 9)}.{g.r.randint(0, 30)}") + I(2, g.r.randint(10 ** 6, 10 ** 9)))
    return f"/registry/minions/{name}", unknown("v1", "Node", m + F(2, F(3, "aws:///eu-west-1a/i-" + g.hexs(17))) + F(3, st))


def lease(g, name, ns="kube-node-lease"):
    m = meta(g, name, ns, [], owner=("v1", "Node", name, g.uid()),
             mf=[managed(g, "kubelet", "Update", "coordination.k8s.io/v1", ["f:spec.f:holderIdentity", "f:spec.f:leaseDurationSeconds", "f:spec.f:renewTime"])])
    spec = F(1, name) + I(2, 40) + F(4, I(1, int(time.time())) + I(2, random.randint(0, 999999) * 1000))
    return f"/registry/leases/{ns}/{name}", unknown("coordination.k8s.io/v1", "Lease", m + F(2, spec))


class Writer:
    def __init__(self, endpoint, wid, nodes):
        self.endpoint, self.wid, self.nodes = endpoint, wid, nodes
        self.g = Gen(1000 + wid, int(time.time()))
        self.ops, self.size, self.txns, self.keys = [], 0, 0, set()
        self.apps = []
        self.event_leases = []
        self.events_on = None
        self.new_event_lease()

    def new_event_lease(self):
        # kube-apiserver attaches events to a lease shared by the events of one minute (TTL 1 h).
        lid = post(self.endpoint, "/v3/lease/grant", {"TTL": 7200})["ID"]
        self.event_leases.append(lid)
        self.events_on = lid

    def put(self, key, value, lease=None):
        if key in self.keys:  # a txn may name a key once
            self.flush()
        self.keys.add(key)
        op = {"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(value).decode()}
        if lease:
            op["lease"] = lease
        self.ops.append({"request_put": op})
        self.size += len(value) + len(key)
        if self.size >= TXN_BYTES or len(self.ops) >= TXN_OPS:
            self.flush()

    def delete(self, key):
        if key in self.keys:
            self.flush()
        self.keys.add(key)
        self.ops.append({"request_delete_range": {"key": base64.b64encode(key.encode()).decode()}})
        if len(self.ops) >= TXN_OPS:
            self.flush()

    def flush(self):
        if not self.ops:
            return
        # Node heartbeats: the kubelets renew their leases all the time.
        for name in self.g.r.sample(self.nodes, min(len(self.nodes), 8)):
            k, v = lease(self.g, name)
            if k in self.keys:
                continue
            self.ops.append({"request_put": {"key": base64.b64encode(k.encode()).decode(), "value": base64.b64encode(v).decode()}})
        post(self.endpoint, "/v3/kv/txn", {"success": self.ops})
        self.ops, self.size, self.keys = [], 0, set()
        self.txns += 1
        if self.txns % 300 == 0:
            self.new_event_lease()

    def create_app(self):
        g = self.g
        ns = f"team-{self.wid}-{g.r.randint(0, 39):02d}"
        app = App(g, ns, f"{g.r.choice(IMAGES)}-{g.suffix(4)}", self.nodes)
        for kv in app.kv():
            self.put(kv[0], kv[1], self.events_on if len(kv) == 3 else None)
        self.apps.append(app)

    def churn(self):
        g, r = self.g, self.g.r
        r.shuffle(self.apps)
        n = len(self.apps)
        for app in self.apps[: n // 20]:  # scaled away: Deployment, Service and Pods deleted
            self.delete(f"/registry/deployments/{app.ns}/{app.name}")
            self.delete(f"/registry/services/specs/{app.ns}/{app.name}")
            for pod, _ in app.pods:
                self.delete(f"/registry/pods/{app.ns}/{pod}")
        self.apps = self.apps[n // 20:]
        for app in self.apps[: len(self.apps) // 3]:  # pods restarted, status rewritten (several times)
            for _ in range(r.randint(1, 3)):
                for pod, node in app.pods:
                    self.put(f"/registry/pods/{app.ns}/{pod}", app.pod(pod, node, restarts=r.randint(1, 5)))
        for app in self.apps[: len(self.apps) // 10]:  # config changes
            self.put(*app.configmap(f"{app.name}-config"))
        self.flush()
        # Events expire: the leases of the older half are revoked (etcd deletes their keys).
        for lid in self.event_leases[: len(self.event_leases) // 2]:
            post(self.endpoint, "/v3/lease/revoke", {"ID": lid})
        self.event_leases = self.event_leases[len(self.event_leases) // 2:]
        self.new_event_lease()


def worker(endpoint, wid, nodes, stop_a, stop_c, barrier):
    w = Writer(endpoint, wid, nodes)
    while not stop_a.is_set():
        w.create_app()
    w.flush()
    barrier.wait()
    w.churn()
    barrier.wait()  # main compacts
    barrier.wait()
    while not stop_c.is_set():
        w.create_app()
    w.flush()
    barrier.wait()


def main():
    endpoint, target = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    t0 = time.time()
    g = Gen(7, int(time.time()))
    gib = target / 2 ** 30
    nodes = [f"ip-10-0-{i // 250}-{i % 250}.eu-west-1.compute.internal" for i in range(int(20 + 60 * gib))]
    w = Writer(endpoint, 99, nodes)
    for n in nodes:
        w.put(*node(g, n))
        w.put(*lease(g, n))
    for i in range(int(80 + 40 * gib)):
        w.put(*crd(g, i))
    for ns in ["kube-system", "kube-public", "default"] + [f"team-{x}-{y:02d}" for x in range(workers) for y in range(40)]:
        w.put(f"/registry/namespaces/{ns}", unknown("v1", "Namespace", meta(g, ns, "", [("kubernetes.io/metadata.name", ns)]) + F(3, F(1, "Active"))))
    w.flush()
    stop_a, stop_c = mp.Event(), mp.Event()
    barrier = mp.Barrier(workers + 1)
    procs = [mp.Process(target=worker, args=(endpoint, i, nodes, stop_a, stop_c, barrier)) for i in range(workers)]
    for p in procs:
        p.start()

    def wait_for(size, what):
        last = 0
        while True:
            db, rev = db_status(endpoint)
            if db >= size:
                return db, rev
            if any(not p.is_alive() for p in procs):
                sys.exit("a writer died")
            if time.time() - last > 15:
                print(f"  {what}: db {db / 2 ** 20:.0f} MiB of {size / 2 ** 20:.0f} MiB, revision {rev}, {time.time() - t0:.0f} s",
                      file=sys.stderr, flush=True)
                last = time.time()
            time.sleep(0.3)

    wait_for(int(target * 0.6), "create")
    stop_a.set()
    barrier.wait()
    barrier.wait()  # churn done
    db, rev = db_status(endpoint)
    post(endpoint, "/v3/kv/compaction", {"revision": rev, "physical": True})
    print(f"  churn done, compacted at revision {rev} (db {db / 2 ** 20:.0f} MiB), {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
    barrier.wait()
    db, rev = wait_for(target, "fill")
    stop_c.set()
    barrier.wait()
    for p in procs:
        p.join()
    db, rev = db_status(endpoint)
    print(f"  done: db {db / 2 ** 20:.0f} MiB, revision {rev}, {time.time() - t0:.0f} s", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
