//! Static checks of the Kubernetes manifests under `deploy/`: every document parses, the
//! expected objects exist, and the pieces agree with each other and with the webhook crate
//! (service/port/path, probes, metric names used by alerts).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// All YAML documents under deploy/, as JSON values, with their file names.
fn documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("deploy/ exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no YAML under deploy/");
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).expect("read manifest");
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        for (i, doc) in serde_yaml_ng::Deserializer::from_str(&text).enumerate() {
            let yaml = serde_yaml_ng::Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{name} document {i}: invalid YAML: {e}"));
            if yaml.is_null() {
                continue;
            }
            let json = serde_json::to_value(&yaml)
                .unwrap_or_else(|e| panic!("{name} document {i}: not JSON-compatible: {e}"));
            assert!(
                json["apiVersion"].is_string(),
                "{name} document {i}: no apiVersion"
            );
            assert!(json["kind"].is_string(), "{name} document {i}: no kind");
            docs.push((name.clone(), json));
        }
    }
    docs
}

fn find<'a>(docs: &'a [(String, Value)], kind: &str, name: &str) -> &'a Value {
    let hits: Vec<&Value> = docs
        .iter()
        .map(|(_, d)| d)
        .filter(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .collect();
    assert_eq!(
        hits.len(),
        1,
        "expected exactly one {kind} {name}, found {}",
        hits.len()
    );
    hits[0]
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_object_is_expected_with_the_right_api_version() {
    let docs = documents();
    let got: BTreeSet<(String, String, String)> = docs
        .iter()
        .map(|(_, d)| {
            (
                d["kind"].as_str().unwrap().to_string(),
                d["apiVersion"].as_str().unwrap().to_string(),
                d["metadata"]["name"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let want: BTreeSet<(String, String, String)> = [
        ("Kustomization", "kustomize.config.k8s.io/v1beta1", ""),
        ("Namespace", "v1", "etcdguard"),
        ("ServiceAccount", "v1", "etcdguard"),
        ("Issuer", "cert-manager.io/v1", "etcdguard-selfsigned"),
        ("Certificate", "cert-manager.io/v1", "etcdguard-ca"),
        ("Issuer", "cert-manager.io/v1", "etcdguard-ca"),
        ("Certificate", "cert-manager.io/v1", "etcdguard-serving"),
        ("Deployment", "apps/v1", "etcdguard"),
        ("Service", "v1", "etcdguard"),
        ("PodDisruptionBudget", "policy/v1", "etcdguard"),
        (
            "ValidatingWebhookConfiguration",
            "admissionregistration.k8s.io/v1",
            "etcdguard",
        ),
        ("ServiceMonitor", "monitoring.coreos.com/v1", "etcdguard"),
        ("PrometheusRule", "monitoring.coreos.com/v1", "etcdguard"),
    ]
    .iter()
    .map(|(k, a, n)| (k.to_string(), a.to_string(), n.to_string()))
    .collect();
    assert_eq!(got, want);
    // Namespaced objects live in the gate's namespace; nothing grants API access.
    for (file, d) in &docs {
        let kind = d["kind"].as_str().unwrap();
        if !matches!(
            kind,
            "Namespace" | "ValidatingWebhookConfiguration" | "Kustomization"
        ) {
            assert_eq!(d["metadata"]["namespace"], "etcdguard", "{file}: {kind}");
        }
        assert!(
            !matches!(
                kind,
                "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
            ),
            "{file}: the gate needs no Kubernetes API access, but {kind} found"
        );
    }
}

#[test]
fn kustomization_lists_every_manifest() {
    let docs = documents();
    let kust = docs
        .iter()
        .find(|(_, d)| d["kind"] == "Kustomization")
        .expect("kustomization")
        .1
        .clone();
    let listed: BTreeSet<String> = strs(&kust["resources"]).into_iter().collect();
    let files: BTreeSet<String> = docs
        .iter()
        .map(|(f, _)| f.clone())
        .filter(|f| f != "kustomization.yaml")
        .collect();
    assert_eq!(listed, files);
}

#[test]
fn webhook_service_deployment_and_certificate_agree() {
    let docs = documents();
    let vwc = find(&docs, "ValidatingWebhookConfiguration", "etcdguard");
    let svc = find(&docs, "Service", "etcdguard");
    let dep = find(&docs, "Deployment", "etcdguard");
    let cert = find(&docs, "Certificate", "etcdguard-serving");

    // cert-manager injects the CA of the serving Certificate.
    assert_eq!(
        vwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        "etcdguard/etcdguard-serving"
    );
    let svc_port = svc["spec"]["ports"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == "https"))
        .expect("service https port");
    let pod = &dep["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let container_port = container["ports"]
        .as_array()
        .and_then(|p| {
            p.iter().find(|p| {
                Some(p["name"].clone()) == Some(svc_port["targetPort"].clone())
                    || p["containerPort"] == svc_port["targetPort"]
            })
        })
        .expect("Service targetPort names a container port");
    assert_eq!(svc_port["port"], 443);
    assert_eq!(
        container_port["containerPort"].as_u64(),
        Some(u64::from(etcdguard_webhook::DEFAULT_LISTEN.port())),
        "container port must be the server's default listen port"
    );
    // Service selects the Deployment's pods.
    let selector = svc["spec"]["selector"].as_object().expect("selector");
    let labels = dep["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .expect("labels");
    for (k, v) in selector {
        assert_eq!(labels.get(k), Some(v), "pod label {k}");
    }

    let hooks = vwc["webhooks"].as_array().expect("webhooks");
    assert!(hooks.len() >= 2);
    let svc_dns = format!(
        "{}.{}.svc",
        svc["metadata"]["name"].as_str().unwrap(),
        svc["metadata"]["namespace"].as_str().unwrap()
    );
    assert!(
        strs(&cert["spec"]["dnsNames"]).contains(&svc_dns),
        "serving cert lacks {svc_dns}"
    );
    for h in hooks {
        let name = h["name"].as_str().unwrap();
        assert!(
            name.split('.').count() >= 3,
            "{name}: webhook names must be fully qualified"
        );
        let s = &h["clientConfig"]["service"];
        assert_eq!(s["name"], svc["metadata"]["name"], "{name}");
        assert_eq!(s["namespace"], svc["metadata"]["namespace"], "{name}");
        assert_eq!(s["port"], svc_port["port"], "{name}");
        assert_eq!(s["path"], etcdguard_webhook::VALIDATE_PATH, "{name}");
        assert_eq!(h["failurePolicy"], "Fail", "{name}");
        assert_eq!(h["sideEffects"], "None", "{name}");
        assert_eq!(strs(&h["admissionReviewVersions"]), vec!["v1"], "{name}");
        let t = h["timeoutSeconds"].as_u64().expect("timeoutSeconds");
        assert!((1..=30).contains(&t), "{name}: timeoutSeconds {t}");
        // The handler's budget must end before the apiserver gives up.
        let cfg = etcdguard_webhook::ServerConfig::new(etcdguard_webhook::TlsSource::SelfSigned {
            dns_names: vec![],
            ips: vec![],
        });
        assert!(
            cfg.review_budget(Some(std::time::Duration::from_secs(t)))
                < std::time::Duration::from_secs(t)
        );
        let conds: Vec<String> = h["matchConditions"]
            .as_array()
            .expect("matchConditions")
            .iter()
            .map(|c| c["expression"].as_str().unwrap().to_string())
            .collect();
        assert!(
            conds
                .iter()
                .any(|c| c.contains("request.namespace != 'etcdguard'")),
            "{name}"
        );
        assert!(
            conds
                .iter()
                .any(|c| c.contains("system:serviceaccount:etcdguard:etcdguard")),
            "{name}"
        );
        // Never intercept resources the gate itself needs to run.
        for r in h["rules"].as_array().expect("rules") {
            for res in strs(&r["resources"]) {
                assert!(
                    ![
                        "pods",
                        "nodes",
                        "leases",
                        "configmaps",
                        "secrets",
                        "*",
                        "*/*"
                    ]
                    .contains(&res.as_str())
                        && !res.ends_with("/status"),
                    "{name}: must not intercept {res}"
                );
            }
        }
    }
    // The kinds the default policies gate.
    let mut gated: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for h in hooks {
        for r in h["rules"].as_array().unwrap() {
            for g in strs(&r["apiGroups"]) {
                gated.entry(g).or_default().extend(strs(&r["resources"]));
            }
        }
    }
    for (group, resource) in [
        ("kops.k8s.io", "clusters"),
        ("kops.k8s.io", "instancegroups"),
        ("cluster.x-k8s.io", "clusters"),
        ("controlplane.cluster.x-k8s.io", "kubeadmcontrolplanes"),
        ("config.openshift.io", "clusterversions"),
        ("upgrade.cattle.io", "plans"),
        ("etcd.database.coreos.com", "etcdclusters"),
        ("s3.services.k8s.aws", "buckets"),
        ("s3.aws.upbound.io", "bucketlifecycleconfigurations"),
        ("provisioning.cattle.io", "clusters"),
    ] {
        assert!(
            gated.get(group).is_some_and(|r| r.contains(resource)),
            "{group}/{resource} is not gated"
        );
    }
}

#[test]
fn deployment_is_hardened_and_probes_use_the_health_endpoints() {
    let docs = documents();
    let dep = find(&docs, "Deployment", "etcdguard");
    assert_eq!(dep["spec"]["replicas"], 2);
    let pod = &dep["spec"]["template"]["spec"];
    assert!(pod["affinity"]["podAntiAffinity"].is_object());
    assert_eq!(pod["serviceAccountName"], "etcdguard");
    assert_eq!(pod["automountServiceAccountToken"], false);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(strs(&sc["capabilities"]["drop"]), vec!["ALL"]);
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        c["livenessProbe"]["httpGet"]["path"],
        etcdguard_webhook::HEALTHZ_PATH
    );
    assert_eq!(c["livenessProbe"]["httpGet"]["scheme"], "HTTPS");
    assert_eq!(
        c["readinessProbe"]["httpGet"]["path"],
        etcdguard_webhook::READYZ_PATH
    );
    assert_eq!(c["readinessProbe"]["httpGet"]["scheme"], "HTTPS");
    let args = strs(&c["args"]);
    assert_eq!(args.first().map(String::as_str), Some("serve"));
    let flag = |f: &str| {
        args.iter()
            .position(|a| a == f)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    assert_eq!(flag("--tls-cert").as_deref(), Some("/tls/tls.crt"));
    assert_eq!(flag("--tls-key").as_deref(), Some("/tls/tls.key"));
    assert!(flag("--store").is_some_and(|s| s.starts_with("s3://")));
    // The TLS Secret is mounted as a directory (subPath mounts never see renewals).
    let mount = c["volumeMounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["mountPath"] == "/tls"))
        .expect("/tls mount");
    assert!(mount.get("subPath").is_none());
    let vol = pod["volumes"]
        .as_array()
        .and_then(|v| v.iter().find(|v| v["name"] == mount["name"]))
        .expect("tls volume");
    let cert = find(&docs, "Certificate", "etcdguard-serving");
    assert_eq!(vol["secret"]["secretName"], cert["spec"]["secretName"]);
    // The PDB covers the Deployment's pods and keeps one answering.
    let pdb = find(&docs, "PodDisruptionBudget", "etcdguard");
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        dep["spec"]["selector"]["matchLabels"]
    );
}

/// Metric names in a PromQL expression that belong to etcdguard.
fn etcdguard_metrics(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("etcdguard_") {
        let start = i + pos;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(expr.len(), |e| start + e);
        if boundary {
            out.push(expr[start..end].to_string());
        }
        i = end;
    }
    out
}

#[test]
fn alerts_reference_metrics_that_exist() {
    let docs = documents();
    let rule = find(&docs, "PrometheusRule", "etcdguard");
    let known: BTreeSet<String> = etcdguard_webhook::metrics::ALL
        .iter()
        .flat_map(|m| {
            let m = m.to_string();
            [
                m.clone(),
                format!("{m}_bucket"),
                format!("{m}_count"),
                format!("{m}_sum"),
            ]
        })
        .collect();
    let mut alerts = BTreeMap::new();
    for g in rule["spec"]["groups"].as_array().expect("groups") {
        for r in g["rules"].as_array().expect("rules") {
            let name = r["alert"].as_str().expect("alert name").to_string();
            let expr = r["expr"].as_str().expect("expr").to_string();
            for m in etcdguard_metrics(&expr) {
                assert!(known.contains(&m), "alert {name} uses unknown metric {m}");
            }
            assert!(r["labels"]["severity"].is_string(), "{name}: severity");
            alerts.insert(name, expr);
        }
    }
    let uses = |metric: &str| {
        alerts
            .values()
            .any(|e| etcdguard_metrics(e).iter().any(|m| m == metric))
    };
    use etcdguard_webhook::metrics as m;
    for metric in [
        m::SNAPSHOT_AGE_SECONDS,
        m::SNAPSHOT_VALID,
        m::CONTROL_FILES_PRESENT,
        m::FACT_REFRESH_ERRORS_TOTAL,
        m::ADMISSION_REQUESTS_TOTAL,
    ] {
        assert!(uses(metric), "no alert on {metric}");
    }
    assert!(
        alerts.values().any(|e| e.contains("up{job=\"etcdguard\"}")),
        "no webhook-down alert"
    );
    assert!(
        alerts
            .get("EtcdguardControlFilesMissing")
            .is_some_and(|e| e.contains("== 0")),
        "control-files alert must fire on 0"
    );
    // The ServiceMonitor scrapes the path the server serves metrics on.
    let sm = find(&docs, "ServiceMonitor", "etcdguard");
    assert_eq!(
        sm["spec"]["endpoints"][0]["path"],
        etcdguard_webhook::METRICS_PATH
    );
    assert_eq!(sm["spec"]["endpoints"][0]["port"], "https");
}

#[test]
fn metric_name_scanner_finds_names() {
    assert_eq!(
        etcdguard_metrics("rate(etcdguard_a_total{x=\"y\"}[5m]) > 0 or foo_etcdguard_b"),
        vec!["etcdguard_a_total".to_string()]
    );
}
