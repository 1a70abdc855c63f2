//! `etcdguard::live` against real etcd processes: a healthy member, unreachable and silent
//! endpoints, killed members (single and 3-member clusters), a re-seeded cluster behind a
//! snapshot, and TLS with client-certificate authentication.

mod common;

use common::live::{EtcdCluster, TlsEtcd};
use etcdguard::live::{collect, revision_behind_snapshot, EtcdOptions, Fact, LiveFacts};
use std::time::{Duration, Instant};

fn opts(endpoints: &[&str]) -> EtcdOptions {
    EtcdOptions {
        endpoints: endpoints.iter().map(|s| s.to_string()).collect(),
        connect_timeout: Duration::from_millis(800),
        request_timeout: Duration::from_millis(1500),
        overall_timeout: Duration::from_secs(6),
        ..EtcdOptions::default()
    }
}

async fn facts(o: &EtcdOptions) -> LiveFacts {
    collect(o).await.unwrap_or_else(|e| panic!("collect: {e}"))
}

/// `etcdctl endpoint status -w json` of one endpoint (numbers are decimal there).
fn ctl_status(etcd: &common::Etcd) -> serde_json::Value {
    let out = etcd.ctl_ok(&["endpoint", "status", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("etcdctl json");
    v[0]["Status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_single_member_matches_etcdctl() {
    let etcd = common::Etcd::start_named("live-one");
    for i in 0..5 {
        etcd.put(&format!("/registry/k{i}"), "v");
    }
    let before = etcd.revision();
    let f = facts(&opts(&[&etcd.endpoint])).await;
    let after = etcd.revision();
    assert_eq!(before, after, "collect must not write to etcd");
    assert_eq!(f.revision, Fact::Known { value: before });

    let st = ctl_status(&etcd);
    let cluster_id = st["header"]["cluster_id"].as_u64().expect("cluster_id");
    let member_id = st["header"]["member_id"].as_u64().expect("member_id");
    assert_eq!(f.cluster_id.known(), Some(&format!("{cluster_id:x}")));

    let leader = f.leader.known().expect("leader known");
    assert_eq!(leader.id, format!("{member_id:x}"));
    assert_eq!(leader.name.as_deref(), Some("live-one"));

    let members = f.members.known().expect("members");
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].name, "live-one");
    assert_eq!(members[0].healthy, Some(true));
    assert!(members[0].is_leader);
    assert_eq!(members[0].client_urls, vec![etcd.endpoint.clone()]);

    let q = f.quorum.known().expect("quorum");
    assert_eq!(
        (q.cluster_size, q.healthy_members, q.quorum_size),
        (1, 1, 1)
    );
    assert!(q.has_quorum);
    assert_eq!(q.failure_tolerance, 0);

    let db = f.db.known().expect("db");
    assert_eq!(db.db_size_bytes, st["dbSize"].as_i64().expect("dbSize"));
    // etcd 3.4 does not report its quota: the 2 GiB default is assumed.
    assert_eq!(db.quota_source, "assumed");
    assert_eq!(db.quota_bytes, 2 * 1024 * 1024 * 1024);
    assert!(db.used_ratio > 0.0 && db.used_ratio < 0.01);

    assert_eq!(f.alarms, Fact::Known { value: vec![] });
    assert_eq!(f.endpoints.len(), 1);
    assert!(f.endpoints[0].healthy, "{:?}", f.endpoints[0]);
    let status = f.endpoints[0].status.known().expect("status");
    assert_eq!(status.version, st["version"].as_str().expect("version"));

    // The JSON form is camelCase with state tags.
    let v = serde_json::to_value(&f).unwrap();
    assert_eq!(v["revision"]["state"], "known");
    assert_eq!(v["quorum"]["value"]["hasQuorum"], true);
    assert_eq!(v["db"]["value"]["quotaSource"], "assumed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_endpoint_is_unknown_with_reason_quickly() {
    // Nothing listens on this port.
    let port = common::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let o = opts(&[&endpoint]);
    let start = Instant::now();
    let f = facts(&o).await;
    let took = start.elapsed();
    assert!(
        took < o.overall_timeout + Duration::from_secs(3),
        "collect took {took:?}, deadline {:?}",
        o.overall_timeout
    );
    for reason in [
        f.revision.reason(),
        f.cluster_id.reason(),
        f.leader.reason(),
        f.members.reason(),
        f.db.reason(),
        f.alarms.reason(),
    ] {
        let reason = reason.expect("unknown");
        assert!(reason.contains(&endpoint), "{reason}");
    }
    let reason = f.revision.reason().unwrap_or("");
    assert!(reason.contains("refused"), "{reason}");
    assert!(f.quorum.known().is_none());
    assert!(!f.endpoints[0].healthy);
    assert!(f.endpoints[0]
        .reason
        .as_deref()
        .unwrap_or("")
        .contains(&endpoint));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_endpoint_hits_the_deadline_not_a_hang() {
    // A listener that completes TCP handshakes (backlog) but never speaks HTTP/2.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let o = opts(&[&endpoint]);
    let start = Instant::now();
    let f = facts(&o).await;
    let took = start.elapsed();
    assert!(
        took < o.overall_timeout + Duration::from_secs(3),
        "collect took {took:?}"
    );
    let reason = f.revision.reason().expect("unknown revision");
    assert!(reason.contains(&endpoint), "{reason}");
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_single_member_becomes_unknown() {
    let mut etcd = common::Etcd::start();
    let o = opts(&[&etcd.endpoint]);
    assert!(facts(&o).await.revision.known().is_some());
    etcd.kill();
    let f = facts(&o).await;
    let reason = f.revision.reason().expect("unknown after kill");
    assert!(reason.contains(&etcd.endpoint), "{reason}");
    assert!(!f.endpoints[0].healthy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_one_killed_keeps_quorum_two_killed_loses_it() {
    let mut cluster = EtcdCluster::start(3);
    let eps: Vec<&str> = cluster.endpoints.iter().map(String::as_str).collect();
    let o = opts(&eps);

    let f = facts(&o).await;
    let q = f.quorum.known().expect("quorum");
    assert_eq!(
        (q.cluster_size, q.healthy_members, q.quorum_size),
        (3, 3, 2)
    );
    assert_eq!(q.failure_tolerance, 1);
    assert!(f.leader.known().is_some());

    // Kill a member that is not the leader, so the leader stays stable.
    let leader = f.leader.known().unwrap().name.clone().unwrap_or_default();
    let victim = (0..3).find(|i| cluster.names[*i] != leader).unwrap();
    cluster.kill(victim);
    let f = facts(&o).await;
    let q = f.quorum.known().expect("quorum with one member down");
    assert_eq!((q.cluster_size, q.healthy_members), (3, 2));
    assert!(q.has_quorum);
    assert_eq!(q.failure_tolerance, 0);
    let members = f.members.known().unwrap();
    let dead = members
        .iter()
        .find(|m| m.name == cluster.names[victim])
        .unwrap();
    assert_eq!(dead.healthy, Some(false));
    let dead_ep = &cluster.endpoints[victim];
    let ef = f.endpoints.iter().find(|e| &e.endpoint == dead_ep).unwrap();
    assert!(!ef.healthy);
    assert!(ef
        .reason
        .as_deref()
        .unwrap_or("")
        .contains(dead_ep.as_str()));

    // Kill a second member: the survivor answers Status but cannot serve a linearizable read.
    let second = (0..3)
        .find(|i| *i != victim && cluster.names[*i] != leader)
        .unwrap();
    cluster.kill(second);
    let f = facts(&o).await;
    let q = f
        .quorum
        .known()
        .expect("quorum known: 2 probed dead, 1 unhealthy");
    assert!(!q.has_quorum, "{q:?}");
    assert_eq!(q.healthy_members, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reseeded_cluster_is_behind_the_newest_snapshot() {
    let old = common::Etcd::start();
    for i in 0..20 {
        old.put(&format!("/registry/pods/default/p{i}"), "x");
    }
    let dir = tempfile::tempdir().unwrap();
    let snap = dir.path().join("snapshot.db");
    old.snapshot_save(&snap);
    let snap_rev = common::snapshot_status(&snap)["revision"]
        .as_i64()
        .expect("snapshot revision");

    let f = facts(&opts(&[&old.endpoint])).await;
    let live_old = *f.revision.known().expect("revision");
    assert!(!revision_behind_snapshot(live_old, snap_rev));

    // A freshly seeded, empty cluster (what etcd-manager creates without its marker).
    let fresh = common::Etcd::start();
    let f = facts(&opts(&[&fresh.endpoint])).await;
    let live_new = *f.revision.known().expect("revision");
    assert_eq!(live_new, fresh.revision());
    assert!(live_new < snap_rev);
    assert!(revision_behind_snapshot(live_new, snap_rev));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_client_certificate() {
    let etcd = TlsEtcd::start();
    let out = etcd.etcdctl(&["put", "/registry/a", "1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = etcd.etcdctl(&["get", "x", "-w", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("etcdctl json");
    let rev = v["header"]["revision"].as_i64().expect("revision");

    let mut o = opts(&[&etcd.endpoint]);
    o.ca_file = Some(etcd.pki.ca());
    o.cert_file = Some(etcd.pki.client_cert());
    o.key_file = Some(etcd.pki.client_key());
    let f = facts(&o).await;
    assert_eq!(f.revision, Fact::Known { value: rev }, "{f:#?}");
    assert!(f.endpoints[0].healthy, "{:?}", f.endpoints[0]);
    assert_eq!(
        f.leader.known().and_then(|l| l.name.clone()).as_deref(),
        Some("tls0")
    );

    // host:port without a scheme becomes https:// when TLS files are given.
    let mut bare = o.clone();
    bare.endpoints = vec![etcd.endpoint.trim_start_matches("https://").to_string()];
    assert!(facts(&bare).await.revision.known().is_some());

    // Without a client certificate the server refuses: unknown, naming the endpoint.
    let mut no_cert = o.clone();
    no_cert.cert_file = None;
    no_cert.key_file = None;
    let f = facts(&no_cert).await;
    let reason = f.revision.reason().expect("refused without client cert");
    assert!(reason.contains(&etcd.endpoint), "{reason}");

    // A CA that did not sign the server certificate: unknown as well.
    let other = tempfile::tempdir().unwrap();
    let other_pki = common::live::make_pki(other.path());
    let mut wrong_ca = o.clone();
    wrong_ca.ca_file = Some(other_pki.ca());
    let f = facts(&wrong_ca).await;
    assert!(f.revision.reason().is_some(), "{f:#?}");
}

#[tokio::test]
async fn configuration_errors_are_errors_not_unknowns() {
    let mut o = opts(&["https://127.0.0.1:1"]);
    o.ca_file = Some("/nonexistent/etcdguard-ca.pem".into());
    let err = collect(&o).await.expect_err("unreadable CA");
    assert!(
        err.to_string().contains("/nonexistent/etcdguard-ca.pem"),
        "{err}"
    );
    let err = collect(&opts(&[])).await.expect_err("no endpoints");
    assert!(err.to_string().contains("--etcd-endpoints"), "{err}");
}
