//! The webhook over real HTTPS on loopback: real AdmissionReview bodies, a test implementation
//! of our `Gate` trait, HTTP/1.1 and HTTP/2, readiness, metrics, timeouts, certificate reload.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use etcdguard_webhook::{bind, generate_self_signed, Decision, Operation, ServerConfig, TlsSource};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::Value;

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn self_signed_config() -> ServerConfig {
    let mut cfg = ServerConfig::new(TlsSource::SelfSigned {
        dns_names: vec!["localhost".to_string()],
        ips: vec![LOOPBACK],
    });
    cfg.listen = SocketAddr::new(LOOPBACK, 0);
    cfg.metrics_listen = Some(SocketAddr::new(LOOPBACK, 0));
    cfg.shutdown_delay = Duration::ZERO;
    cfg
}

/// A gate shaped like the real one: deny a control-plane version change (pretend the newest
/// snapshot is 26 h old), allow anything else.
fn upgrade_gate() -> std::sync::Arc<TestGate> {
    TestGate::new(|r| {
        let version = |o: &Option<etcdguard_webhook::RawObject>| {
            o.as_ref()
                .and_then(|o| o.to_value().ok())
                .and_then(|v| v.pointer("/spec/version").cloned())
        };
        let (new, old) = (version(&r.object), version(&r.old_object));
        if r.operation == Operation::Update && new != old {
            Decision::deny(format!(
                "{} {}/{}: upgrade {} -> {} refused: newest valid etcd snapshot is 26h old (max 6h)",
                r.kind.kind,
                r.namespace.as_deref().unwrap_or(""),
                r.name,
                old.as_ref().and_then(Value::as_str).unwrap_or("?"),
                new.as_ref().and_then(Value::as_str).unwrap_or("?"),
            ))
            .with_annotation("snapshot-age-seconds", "93600")
            .with_warning("etcd snapshot is stale\nsee the runbook")
        } else {
            Decision::allow().with_annotation("snapshot-age-seconds", "93600")
        }
    })
}

fn response(reply: &Reply) -> Value {
    assert_eq!(reply.status, 200, "body: {}", reply.text());
    let v = reply.json();
    assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(v["kind"], "AdmissionReview");
    v["response"].clone()
}

#[tokio::test]
async fn kcp_upgrade_is_denied_and_non_upgrade_allowed() {
    let gate = upgrade_gate();
    let server = bind(self_signed_config(), gate.clone())
        .await
        .expect("bind");
    let run = Running::start(server);
    let ca = run.ca_pem.clone().expect("self-signed CA");
    let c = connector(&[&ca], &[b"http/1.1"]);

    // The version change is refused: HTTP 200, allowed false, code 403, the gate's message.
    let reply = post_review(
        run.addr,
        &c,
        "?timeout=5s",
        kcp_update_with_uid("uid-deny-1"),
    )
    .await;
    let r = response(&reply);
    assert_eq!(r["uid"], "uid-deny-1");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 403);
    assert_eq!(r["status"]["reason"], "Forbidden");
    let msg = r["status"]["message"].as_str().expect("message");
    assert!(
        msg.contains("clusters/prod-eu1-control-plane: upgrade v1.33.4 -> v1.34.1 refused"),
        "{msg}"
    );
    assert_eq!(r["auditAnnotations"]["decision"], "denied");
    assert_eq!(r["auditAnnotations"]["snapshot-age-seconds"], "93600");
    // The warning's newline became a space (the apiserver drops warnings with control chars).
    assert_eq!(
        r["warnings"],
        serde_json::json!(["etcd snapshot is stale see the runbook"])
    );

    // Same object without a version change: allowed, uid echoed, no warnings key.
    let mut same = kcp_update();
    same["request"]["uid"] = "uid-allow-1".into();
    same["request"]["object"]["spec"]["version"] = "v1.33.4".into();
    let reply = post_review(run.addr, &c, "", serde_json::to_vec(&same).unwrap()).await;
    let r = response(&reply);
    assert_eq!(r["uid"], "uid-allow-1");
    assert_eq!(r["allowed"], true);
    assert_eq!(r["auditAnnotations"]["decision"], "allowed");
    assert!(r.get("warnings").is_none(), "{r}");
    assert!(r.get("patch").is_none() && r.get("patchType").is_none());

    // A DELETE (object null) reaches the gate with object None and old_object Some.
    let mut del = kcp_update();
    del["request"]["uid"] = "uid-delete-1".into();
    del["request"]["operation"] = "DELETE".into();
    del["request"]["object"] = Value::Null;
    let reply = post_review(run.addr, &c, "", serde_json::to_vec(&del).unwrap()).await;
    let r = response(&reply);
    assert_eq!(r["uid"], "uid-delete-1");
    // new (None) != old (Some) under UPDATE only; DELETE is allowed by this gate.
    assert_eq!(r["allowed"], true);
    assert_eq!(gate.calls.load(Ordering::SeqCst), 3);
    run.stop().await.expect("clean shutdown");
}

#[tokio::test]
async fn gate_sees_typed_request_fields() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let s2 = seen.clone();
    let gate = TestGate::new(move |r| {
        *s2.lock().unwrap() = Some(r.clone());
        Decision::allow()
    });
    let run = Running::start(bind(self_signed_config(), gate).await.expect("bind"));
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    let mut dry = kcp_update();
    dry["request"]["dryRun"] = true.into();
    post_review(run.addr, &c, "", serde_json::to_vec(&dry).unwrap()).await;
    let r = seen.lock().unwrap().clone().expect("gate called");
    assert_eq!(r.uid, "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(r.kind.group, "controlplane.cluster.x-k8s.io");
    assert_eq!(r.kind.version, "v1beta2");
    assert_eq!(r.kind.kind, "KubeadmControlPlane");
    assert_eq!(r.resource.resource, "kubeadmcontrolplanes");
    assert_eq!(r.sub_resource, None);
    assert_eq!(r.operation, Operation::Update);
    assert_eq!(r.namespace.as_deref(), Some("clusters"));
    assert_eq!(r.name, "prod-eu1-control-plane");
    assert_eq!(
        r.username,
        "system:serviceaccount:flux-system:kustomize-controller"
    );
    assert!(r
        .groups
        .iter()
        .any(|g| g == "system:serviceaccounts:flux-system"));
    assert!(r.dry_run);
    let obj = r.object.expect("object").to_value().expect("object JSON");
    assert_eq!(
        obj.pointer("/spec/kubeadmConfigSpec/clusterConfiguration/etcd/local/imageTag"),
        Some(&Value::from("3.6.4-0"))
    );
    assert_eq!(
        obj.pointer("/metadata/labels/cluster.x-k8s.io~1cluster-name"),
        Some(&Value::from("prod-eu1"))
    );
    assert_eq!(
        r.old_object
            .expect("oldObject")
            .to_value()
            .expect("oldObject JSON")
            .pointer("/spec/version"),
        Some(&Value::from("v1.33.4"))
    );
    run.stop().await.unwrap();
}

#[tokio::test]
async fn malformed_requests_get_400_and_never_reach_the_gate() {
    let gate = TestGate::new(|_| Decision::allow());
    let run = Running::start(
        bind(self_signed_config(), gate.clone())
            .await
            .expect("bind"),
    );
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);

    let mut wrong_kind = kcp_update();
    wrong_kind["kind"] = "Pod".into();
    let mut wrong_version = kcp_update();
    wrong_version["apiVersion"] = "admission.k8s.io/v1beta1".into();
    let mut no_request = kcp_update();
    no_request.as_object_mut().unwrap().remove("request");
    let mut no_uid = kcp_update();
    no_uid["request"]["uid"] = "".into();
    // Just over the 3 MiB default: a big (but well-formed) object.
    let mut oversized = kcp_update();
    oversized["request"]["object"]["metadata"]["annotations"] =
        serde_json::json!({"big": "x".repeat(3 * 1024 * 1024)});

    let cases: Vec<(&str, Option<&str>, Vec<u8>, &str)> = vec![
        (
            "bad JSON",
            Some("application/json"),
            b"{\"apiVersion\": ".to_vec(),
            "not a valid",
        ),
        ("empty body", Some("application/json"), Vec::new(), "empty"),
        (
            "wrong kind",
            Some("application/json"),
            serde_json::to_vec(&wrong_kind).unwrap(),
            "expected \\\"AdmissionReview\\\"",
        ),
        (
            "wrong apiVersion",
            Some("application/json"),
            serde_json::to_vec(&wrong_version).unwrap(),
            "admission.k8s.io/v1beta1",
        ),
        (
            "no request",
            Some("application/json"),
            serde_json::to_vec(&no_request).unwrap(),
            "no request",
        ),
        (
            "empty uid",
            Some("application/json"),
            serde_json::to_vec(&no_uid).unwrap(),
            "empty uid",
        ),
        (
            "oversized",
            Some("application/json"),
            serde_json::to_vec(&oversized).unwrap(),
            "exceeds the limit of 3145728 bytes",
        ),
        (
            "wrong content type",
            Some("text/plain"),
            kcp_update_with_uid("u"),
            "Content-Type is \\\"text/plain\\\"",
        ),
        (
            "no content type",
            None,
            kcp_update_with_uid("u"),
            "Content-Type is \\\"none\\\"",
        ),
    ];
    for (what, ct, body, expect) in cases {
        let reply = request(run.addr, &c, false, "POST", "/validate", ct, body).await;
        assert_eq!(reply.status, 400, "{what}: {}", reply.text());
        let text = reply.text();
        assert!(text.contains(expect), "{what}: {text}");
        let status = reply.json();
        assert_eq!(status["kind"], "Status", "{what}");
        assert_eq!(status["code"], 400, "{what}");
        // Never a fail-open AdmissionReview.
        assert!(!text.contains("\"allowed\""), "{what}: {text}");
    }
    // A chunked oversized body (no Content-Length) is cut by the streaming limit as well.
    let reply = request(
        run.addr,
        &c,
        true,
        "POST",
        "/validate",
        Some("application/json"),
        vec![b' '; 4 * 1024 * 1024],
    )
    .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.text().contains("exceeds the limit"),
        "{}",
        reply.text()
    );

    assert_eq!(gate.calls.load(Ordering::SeqCst), 0);
    // GET on /validate is not a review.
    let reply = request(run.addr, &c, false, "GET", "/validate", None, Vec::new()).await;
    assert_eq!(reply.status, 405);
    run.stop().await.unwrap();
}

#[tokio::test]
async fn warnings_are_single_line_and_within_apiserver_limits() {
    let gate = TestGate::new(|_| {
        let mut d = Decision::allow()
            .with_warning("line one\nline two\r\n\ttabbed")
            .with_warning("line one line two tabbed"); // duplicate after cleaning
        for i in 0..30 {
            d = d.with_warning(format!("warning {i}: {}", "y".repeat(500)));
        }
        d
    });
    let run = Running::start(bind(self_signed_config(), gate).await.expect("bind"));
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    let r = response(&post_review(run.addr, &c, "", kcp_update_with_uid("w-1")).await);
    assert_eq!(r["allowed"], true);
    let warnings: Vec<String> = r["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().expect("string").to_string())
        .collect();
    assert_eq!(warnings[0], "line one line two tabbed");
    assert_eq!(
        warnings
            .iter()
            .filter(|w| w.as_str() == "line one line two tabbed")
            .count(),
        1
    );
    assert!(warnings.iter().all(|w| !w.chars().any(char::is_control)));
    assert!(
        warnings.iter().all(|w| w.chars().count() <= 256),
        "{warnings:?}"
    );
    let total: usize = warnings.iter().map(|w| w.chars().count()).sum();
    assert!(total <= 4096, "total {total}");
    assert!(warnings[1].ends_with('…'), "{}", warnings[1]);
    assert!(warnings.last().unwrap().contains("omitted"), "{warnings:?}");
    run.stop().await.unwrap();
}

#[tokio::test]
async fn readiness_follows_the_gate_and_health_is_always_up() {
    let gate = TestGate::new(|_| Decision::allow());
    gate.ready.store(false, Ordering::SeqCst);
    let run = Running::start(
        bind(self_signed_config(), gate.clone())
            .await
            .expect("bind"),
    );
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    let get = |path: &'static str| request(run.addr, &c, false, "GET", path, None, Vec::new());
    assert_eq!(get("/readyz").await.status, 503);
    assert_eq!(get("/healthz").await.status, 200);
    gate.ready.store(true, Ordering::SeqCst);
    assert_eq!(get("/readyz").await.status, 200);
    // Also on the plain metrics port.
    let m = run.metrics_addr.expect("metrics port");
    assert_eq!(plain_get(m, "/readyz").await.0, 200);
    gate.ready.store(false, Ordering::SeqCst);
    assert_eq!(plain_get(m, "/readyz").await.0, 503);
    assert_eq!(get("/nope").await.status, 404);
    run.stop().await.unwrap();
}

fn metric_value(text: &str, line_prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_prefix) && l[line_prefix.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_and_include_gate_facts() {
    let gate = upgrade_gate();
    let run = Running::start(bind(self_signed_config(), gate).await.expect("bind"));
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    let (denials, allows, invalid) = (3, 2, 1);
    for i in 0..denials {
        post_review(run.addr, &c, "", kcp_update_with_uid(&format!("d{i}"))).await;
    }
    for i in 0..allows {
        let mut v = kcp_update();
        v["request"]["uid"] = format!("a{i}").into();
        v["request"]["object"]["spec"]["version"] = "v1.33.4".into();
        post_review(run.addr, &c, "", serde_json::to_vec(&v).unwrap()).await;
    }
    for _ in 0..invalid {
        post_review(run.addr, &c, "", b"nope".to_vec()).await;
    }
    let reply = request(run.addr, &c, false, "GET", "/metrics", None, Vec::new()).await;
    assert_eq!(reply.status, 200);
    let ct = reply
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = reply.text();
    assert_eq!(
        metric_value(
            &text,
            r#"etcdguard_admission_requests_total{decision="denied",kind="KubeadmControlPlane"}"#
        ),
        Some(denials as f64),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"etcdguard_admission_requests_total{decision="allowed",kind="KubeadmControlPlane"}"#
        ),
        Some(allows as f64),
        "{text}"
    );
    assert_eq!(
        metric_value(
            &text,
            r#"etcdguard_admission_requests_total{decision="invalid",kind="unknown"}"#
        ),
        Some(invalid as f64),
        "{text}"
    );
    assert_eq!(
        metric_value(&text, "etcdguard_admission_duration_seconds_count"),
        Some((denials + allows + invalid) as f64),
        "{text}"
    );
    // The gate's fact gauge lives in the same registry.
    assert_eq!(
        metric_value(&text, "etcdguard_snapshot_age_seconds"),
        Some(4242.0),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"));
    // The plain-HTTP metrics port serves the same registry.
    let (status, plain) = plain_get(run.metrics_addr.unwrap(), "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        metric_value(&plain, "etcdguard_snapshot_age_seconds"),
        Some(4242.0)
    );
    run.stop().await.unwrap();
}

#[tokio::test]
async fn a_gate_that_blocks_is_answered_with_a_denial_before_the_apiserver_timeout() {
    let gate = TestGate::new(|_| {
        std::thread::sleep(Duration::from_secs(4));
        Decision::allow()
    });
    let run = Running::start(bind(self_signed_config(), gate).await.expect("bind"));
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    let started = Instant::now();
    let reply = post_review(run.addr, &c, "?timeout=2s", kcp_update_with_uid("slow-1")).await;
    let elapsed = started.elapsed();
    let r = response(&reply);
    assert_eq!(r["uid"], "slow-1");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 503);
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("gate timed out"),
        "{r}"
    );
    assert_eq!(r["auditAnnotations"]["decision"], "timed_out");
    // Functional bound: the apiserver would have given up at 2 s.
    assert!(
        elapsed < Duration::from_secs(2),
        "answered after {elapsed:?}"
    );
    // Shutdown does not wait for the abandoned gate call.
    run.stop().await.unwrap();
}

#[tokio::test]
async fn a_panicking_gate_is_a_denial() {
    let gate = TestGate::new(|_| panic!("test gate panics"));
    let run = Running::start(bind(self_signed_config(), gate).await.expect("bind"));
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    let r = response(&post_review(run.addr, &c, "", kcp_update_with_uid("p-1")).await);
    assert_eq!(r["uid"], "p-1");
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 500);
    run.stop().await.unwrap();
}

#[tokio::test]
async fn http2_is_negotiated_by_alpn() {
    let gate = upgrade_gate();
    let run = Running::start(bind(self_signed_config(), gate).await.expect("bind"));
    let c2 = connector(&[run.ca_pem.as_deref().unwrap()], &[b"h2", b"http/1.1"]);
    let reply = request(
        run.addr,
        &c2,
        true,
        "POST",
        "/validate?timeout=10s",
        Some("application/json"),
        kcp_update_with_uid("h2-1"),
    )
    .await;
    assert_eq!(reply.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(reply.version, hyper::Version::HTTP_2);
    let r = response(&reply);
    assert_eq!(r["uid"], "h2-1");
    assert_eq!(r["allowed"], false);
    // The apiserver forces HTTP/1.1; that works too.
    let c1 = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    let reply = post_review(run.addr, &c1, "", kcp_update_with_uid("h1-1")).await;
    assert_eq!(reply.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(reply.version, hyper::Version::HTTP_11);
    run.stop().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_in_flight_reviews_finish() {
    let gate = TestGate::new(|_| {
        std::thread::sleep(Duration::from_millis(400));
        Decision::allow()
    });
    let run = Running::start(bind(self_signed_config(), gate).await.expect("bind"));
    let addr = run.addr;
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    let in_flight =
        tokio::spawn(async move { post_review(addr, &c, "", kcp_update_with_uid("late-1")).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    run.stop().await.expect("graceful shutdown");
    let reply = in_flight.await.expect("request task");
    assert_eq!(response(&reply)["uid"], "late-1");
    // The listener is closed now.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn readyz_reports_503_while_draining_before_the_listener_closes() {
    let mut cfg = self_signed_config();
    cfg.shutdown_delay = Duration::from_millis(1500);
    let mut run = Running::start(
        bind(cfg, TestGate::new(|_| Decision::allow()))
            .await
            .expect("bind"),
    );
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    assert_eq!(
        request(run.addr, &c, false, "GET", "/readyz", None, Vec::new())
            .await
            .status,
        200
    );
    run.trigger_stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Still serving, but no longer ready: Kubernetes takes the pod out of the Service first.
    assert_eq!(
        request(run.addr, &c, false, "GET", "/readyz", None, Vec::new())
            .await
            .status,
        503
    );
    let r = response(&post_review(run.addr, &c, "", kcp_update_with_uid("drain-1")).await);
    assert_eq!(r["uid"], "drain-1");
    run.stop().await.unwrap();
}

// ---- certificate reload from a directory laid out like a mounted Secret ----

fn write_secret_version(dir: &Path, version: &str, cert_pem: &str, key_pem: &str) {
    let v = dir.join(version);
    std::fs::create_dir(&v).unwrap();
    std::fs::write(v.join("tls.crt"), cert_pem).unwrap();
    std::fs::write(v.join("tls.key"), key_pem).unwrap();
}

/// Point `..data` at `version` atomically, the way kubelet's AtomicWriter does.
fn swap_data_link(dir: &Path, version: &str) {
    let tmp = dir.join("..data_tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(version, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
}

fn der(pem: &str) -> Vec<u8> {
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .as_ref()
        .to_vec()
}

#[tokio::test]
async fn certificate_is_reloaded_when_the_secret_volume_changes() {
    let names = vec!["localhost".to_string()];
    let a = generate_self_signed(&names, &[LOOPBACK], Duration::from_secs(3600)).unwrap();
    let b = generate_self_signed(&names, &[LOOPBACK], Duration::from_secs(3600)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_secret_version(d, "..2026_11_23_09_00_00.111", &a.cert_pem, &a.key_pem);
    swap_data_link(d, "..2026_11_23_09_00_00.111");
    std::os::unix::fs::symlink("..data/tls.crt", d.join("tls.crt")).unwrap();
    std::os::unix::fs::symlink("..data/tls.key", d.join("tls.key")).unwrap();

    let mut cfg = self_signed_config();
    cfg.tls = TlsSource::Files {
        cert: d.join("tls.crt"),
        key: d.join("tls.key"),
        poll_interval: Duration::from_millis(100),
    };
    let gate = TestGate::new(|_| Decision::allow());
    let run = Running::start(bind(cfg, gate).await.expect("bind"));
    assert!(run.ca_pem.is_none());
    let c = connector(&[&a.ca_pem, &b.ca_pem], &[b"http/1.1"]);
    let get = || request(run.addr, &c, false, "GET", "/healthz", None, Vec::new());
    assert_eq!(get().await.peer_leaf, der(&a.cert_pem));

    // A broken new version (B's cert with A's key) is rejected: A stays in service.
    write_secret_version(d, "..2026_11_23_09_05_00.222", &b.cert_pem, &a.key_pem);
    swap_data_link(d, "..2026_11_23_09_05_00.222");
    let m = run.metrics_addr.unwrap();
    let rejected = eventually(Duration::from_secs(5), || async {
        let (_, text) = plain_get(m, "/metrics").await;
        metric_value(&text, r#"etcdguard_tls_reloads_total{result="error"}"#).filter(|v| *v >= 1.0)
    })
    .await;
    assert!(rejected.is_some(), "the bad pair was never noticed");
    assert_eq!(get().await.peer_leaf, der(&a.cert_pem));

    // A valid new version is picked up without a restart.
    write_secret_version(d, "..2026_11_23_09_10_00.333", &b.cert_pem, &b.key_pem);
    swap_data_link(d, "..2026_11_23_09_10_00.333");
    let served_b = eventually(Duration::from_secs(5), || async {
        let leaf = get().await.peer_leaf;
        (leaf == der(&b.cert_pem)).then_some(())
    })
    .await;
    assert!(
        served_b.is_some(),
        "certificate B was not served within 5 s"
    );
    let (_, text) = plain_get(m, "/metrics").await;
    assert_eq!(
        metric_value(&text, r#"etcdguard_tls_reloads_total{result="ok"}"#),
        Some(1.0),
        "{text}"
    );
    run.stop().await.unwrap();
}

#[tokio::test]
async fn startup_fails_clearly_on_bad_cert_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tls.crt"), "not a cert").unwrap();
    std::fs::write(dir.path().join("tls.key"), "not a key").unwrap();
    let mut cfg = self_signed_config();
    cfg.tls = TlsSource::Files {
        cert: dir.path().join("tls.crt"),
        key: dir.path().join("tls.key"),
        poll_interval: Duration::from_secs(1),
    };
    let err = bind(cfg.clone(), TestGate::new(|_| Decision::allow()))
        .await
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("tls.crt"), "{err}");
    cfg.tls = TlsSource::Files {
        cert: dir.path().join("missing.crt"),
        key: dir.path().join("tls.key"),
        poll_interval: Duration::from_secs(1),
    };
    let err = bind(cfg, TestGate::new(|_| Decision::allow()))
        .await
        .err()
        .expect("must fail");
    assert!(err.to_string().contains("cannot read certificate"), "{err}");
}

// ---- issue #24: connections cannot starve the webhook ----

/// A TLS connection that completes its handshake and sends nothing is closed after the
/// first-request bound; a keep-alive connection idle past the idle bound is closed too.
#[tokio::test]
async fn silent_and_idle_connections_are_closed() {
    use tokio::io::AsyncReadExt;
    let mut cfg = self_signed_config();
    cfg.first_request_timeout = Duration::from_millis(500);
    cfg.idle_timeout = Duration::from_millis(800);
    let run = Running::start(
        bind(cfg, TestGate::new(|_| Decision::allow()))
            .await
            .expect("bind"),
    );
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    // Silent after the handshake: the server closes it (EOF on read) within a few seconds.
    let tcp = tokio::net::TcpStream::connect(run.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = c.connect(name, tcp).await.expect("handshake");
    let mut buf = [0u8; 16];
    let closed = tokio::time::timeout(Duration::from_secs(5), tls.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "silent connection still open: {closed:?}"
    );
    // Keep-alive: one review, then idle; the next review on it fails once it was closed.
    let mut sender = http1_sender(run.addr, &c).await;
    let r = response(&send_review(&mut sender, kcp_update_with_uid("idle-1")).await);
    assert_eq!(r["uid"], "idle-1");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(sender.is_closed(), "idle keep-alive connection still open");
    run.stop().await.unwrap();
}

/// At the connection cap a new connection evicts the one idle longest: with the cap full of
/// silent connections, `/healthz`, `/readyz` and reviews are still answered.
#[tokio::test]
async fn health_and_reviews_are_answered_at_the_connection_cap() {
    let mut cfg = self_signed_config();
    cfg.max_connections = 8;
    cfg.first_request_timeout = Duration::from_secs(60);
    let run = Running::start(
        bind(cfg, TestGate::new(|_| Decision::allow()))
            .await
            .expect("bind"),
    );
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    let mut silent = Vec::new();
    for _ in 0..20 {
        let tcp = tokio::net::TcpStream::connect(run.addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        silent.push(c.connect(name, tcp).await.expect("handshake"));
    }
    for path in ["/healthz", "/readyz"] {
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            request(run.addr, &c, false, "GET", path, None, Vec::new()),
        )
        .await
        .expect("answered at the cap");
        assert_eq!(reply.status, 200, "{path}");
    }
    let r = response(&post_review(run.addr, &c, "", kcp_update_with_uid("cap-1")).await);
    assert_eq!(r["uid"], "cap-1");
    drop(silent);
    run.stop().await.unwrap();
}

/// Once shutdown is requested, HTTP/1 answers carry `Connection: close`, so keep-alive clients
/// do not send their next review on a connection about to close.
#[tokio::test]
async fn draining_answers_tell_keep_alive_clients_to_close() {
    let mut cfg = self_signed_config();
    cfg.shutdown_delay = Duration::from_millis(1500);
    let mut run = Running::start(
        bind(cfg, TestGate::new(|_| Decision::allow()))
            .await
            .expect("bind"),
    );
    let c = connector(&[run.ca_pem.as_deref().unwrap()], &[b"http/1.1"]);
    let mut sender = http1_sender(run.addr, &c).await;
    let before = send_review(&mut sender, kcp_update_with_uid("keep-1")).await;
    assert_eq!(before.headers.get("connection"), None);
    run.trigger_stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let during = send_review(&mut sender, kcp_update_with_uid("keep-2")).await;
    assert_eq!(response(&during)["uid"], "keep-2");
    assert_eq!(
        during
            .headers
            .get("connection")
            .and_then(|v| v.to_str().ok()),
        Some("close")
    );
    run.stop().await.unwrap();
}

/// Over HTTP/2 a body over the limit gets the same 400 Status as over HTTP/1.1 (not a stream
/// reset), with or without a declared length.
#[tokio::test]
async fn http2_bodies_over_the_limit_get_400() {
    let mut cfg = self_signed_config();
    cfg.max_body_bytes = 64 * 1024;
    let run = Running::start(
        bind(cfg, TestGate::new(|_| Decision::allow()))
            .await
            .expect("bind"),
    );
    let c2 = connector(&[run.ca_pem.as_deref().unwrap()], &[b"h2"]);
    let big = vec![b' '; 1024 * 1024];
    let reply = request(
        run.addr,
        &c2,
        true,
        "POST",
        "/validate",
        Some("application/json"),
        big,
    )
    .await;
    assert_eq!(reply.version, hyper::Version::HTTP_2);
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(
        reply.text().contains("exceeds the limit"),
        "{}",
        reply.text()
    );
    run.stop().await.unwrap();
}
