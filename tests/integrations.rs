//! Issue #9 integrations end to end: the kops pre-update wrapper, the kubeadm pre-upgrade
//! wrapper, `check --kops-cluster-spec`, and the CI examples.
//!
//! The real parts are real: the built `etcdguard`, etcd-manager stores built from real etcd
//! snapshots, a real etcd for the kubeadm wrapper, the moto S3 server for the S3 derivation. Only
//! `kops` and `kubeadm` (which cannot run here) are stand-in shell scripts that print the kops
//! fixtures and record the arguments they received.

mod common;

use common::gate::{etcd_manager_store, real_snapshot, BOTH};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

const T1: &str = "2026-11-23T06:00:00Z";
const T2: &str = "2026-11-23T07:00:00Z";
const T3: &str = "2026-11-23T08:00:00Z";
const FRESH: &str = "2026-11-23T09:00:00Z";
const STALE: &str = "2026-11-23T13:00:00Z";
const SPEC_BASE: &str = "s3://acme-kops-state/prod.k8s.acme.example";
const CLUSTER: &str = "prod.k8s.acme.example";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/kops").join(name)
}

fn snapshot() -> &'static (PathBuf, i64) {
    static SNAP: OnceLock<(PathBuf, i64)> = OnceLock::new();
    SNAP.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        real_snapshot(&dir, 200)
    })
}

/// A kops state layout in a temp dir: `<dir>/backups/etcd/{main,events}` as fresh etcd-manager
/// stores, and the `cluster-spec.yaml` fixture rewritten so its stores point there.
struct KopsState {
    dir: tempfile::TempDir,
    spec: PathBuf,
}

fn kops_state() -> KopsState {
    let dir = tempfile::tempdir().unwrap();
    for name in ["main", "events"] {
        let store = dir.path().join("state/backups/etcd").join(name);
        std::fs::create_dir_all(&store).unwrap();
        etcd_manager_store(&store, &snapshot().0, &[T1, T2, T3], BOTH);
    }
    let text = std::fs::read_to_string(fixture("cluster-spec.yaml")).unwrap();
    let local = dir.path().join("state");
    let spec = dir.path().join("cluster.yaml");
    std::fs::write(&spec, text.replace(SPEC_BASE, local.to_str().unwrap())).unwrap();
    KopsState { dir, spec }
}

/// A stand-in `kops`: logs its arguments, prints the spec for `get cluster` and the dry-run
/// fixture for `update cluster` without `--yes`.
fn fake_kops(dir: &Path) -> PathBuf {
    let path = dir.join("kops");
    std::fs::write(
        &path,
        r#"#!/bin/sh
echo "$*" >> "$FAKE_KOPS_LOG"
case "$1 $2" in
  "get cluster") cat "$FAKE_KOPS_SPEC" ;;
  "update cluster")
    case " $* " in
      *" --yes "*) echo "kops: changes applied" ;;
      *) cat "$FAKE_KOPS_DRYRUN" ;;
    esac ;;
  *) echo "fake kops: unexpected arguments: $*" >&2; exit 3 ;;
esac
"#,
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

struct Run {
    out: Output,
    log: Vec<String>,
}

impl Run {
    fn code(&self) -> Option<i32> {
        self.out.status.code()
    }
    fn text(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}\nlog: {:?}",
            String::from_utf8_lossy(&self.out.stdout),
            String::from_utf8_lossy(&self.out.stderr),
            self.log
        )
    }
}

fn kops_update(
    state: &KopsState,
    spec: &Path,
    dry_run: &str,
    check_args: &str,
    extra: &[&str],
) -> Run {
    let kops = fake_kops(state.dir.path());
    let log = state.dir.path().join("kops.log");
    let _ = std::fs::remove_file(&log);
    let out = Command::new(root().join("deploy/kops/etcdguard-kops-update"))
        .arg(CLUSTER)
        .args(extra)
        .env("KOPS", &kops)
        .env("ETCDGUARD", common::etcdguard_bin())
        .env("ETCDGUARD_CHECK_ARGS", check_args)
        .env("ETCDGUARD_LOG", "warn")
        .env("FAKE_KOPS_LOG", &log)
        .env("FAKE_KOPS_SPEC", spec)
        .env("FAKE_KOPS_DRYRUN", fixture(dry_run))
        .output()
        .expect("run etcdguard-kops-update");
    let log = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    Run { out, log }
}

fn applied(r: &Run) -> bool {
    r.log
        .iter()
        .any(|l| l.split_whitespace().any(|w| w == "--yes"))
}

#[test]
fn kops_wrapper_refuses_a_dry_run_that_seeds_a_new_cluster() {
    let s = kops_state();
    let r = kops_update(
        &s,
        &s.spec,
        "create-spec-current.txt",
        &format!("--now {FRESH}"),
        &[],
    );
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(!applied(&r), "kops received --yes: {}", r.text());
    assert_eq!(r.log.len(), 2, "get cluster + dry run only: {}", r.text());
    assert_eq!(r.log[0], format!("get cluster --full -o yaml {CLUSTER}"));
    assert_eq!(r.log[1], format!("update cluster {CLUSTER}"));
    let stdout = String::from_utf8_lossy(&r.out.stdout);
    assert!(stdout.contains("change.seeds-new-cluster"), "{}", r.text());
    assert!(
        String::from_utf8_lossy(&r.out.stderr).contains("REFUSED"),
        "{}",
        r.text()
    );
}

#[test]
fn kops_wrapper_applies_a_harmless_update_with_fresh_backups() {
    let s = kops_state();
    // A caller's --yes is dropped from the dry run and added back only after the gate.
    let r = kops_update(
        &s,
        &s.spec,
        "harmless-update.txt",
        &format!("--now {FRESH} --output json"),
        &["--yes"],
    );
    assert_eq!(r.code(), Some(0), "{}", r.text());
    assert_eq!(r.log.len(), 3, "{}", r.text());
    assert_eq!(
        r.log[1],
        format!("update cluster {CLUSTER}"),
        "dry run without --yes"
    );
    assert_eq!(r.log[2], format!("update cluster {CLUSTER} --yes"));
    assert!(String::from_utf8_lossy(&r.out.stdout).contains("kops: changes applied"));
    // The check's JSON (first part of stdout) looked at both stores derived from the spec.
    let stdout = String::from_utf8_lossy(&r.out.stdout);
    let json = stdout.split("kops: changes applied").next().unwrap_or("");
    let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    assert_eq!(v["verdict"], "proceed", "{}", r.text());
    let stores: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["check"] == "store.reachable")
        .map(|f| f["details"]["store"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(stores.len(), 2, "{stores:?}");
    assert!(stores[0].ends_with("state/backups/etcd/main"), "{stores:?}");
    assert!(
        stores[1].ends_with("state/backups/etcd/events"),
        "{stores:?}"
    );
}

#[test]
fn kops_wrapper_refuses_when_the_backups_are_stale() {
    let s = kops_state();
    let r = kops_update(
        &s,
        &s.spec,
        "modify-etcd-version.txt",
        &format!("--now {STALE}"),
        &[],
    );
    assert_eq!(r.code(), Some(1), "{}", r.text());
    assert!(!applied(&r), "{}", r.text());
    assert!(
        String::from_utf8_lossy(&r.out.stdout).contains("snapshot.recent"),
        "{}",
        r.text()
    );
}

#[test]
fn kops_wrapper_stops_on_an_unsupported_store_scheme() {
    let s = kops_state();
    let r = kops_update(
        &s,
        &fixture("cluster-spec-gs.yaml"),
        "harmless-update.txt",
        &format!("--now {FRESH}"),
        &[],
    );
    assert_eq!(r.code(), Some(2), "{}", r.text());
    assert!(!applied(&r), "{}", r.text());
    assert!(
        String::from_utf8_lossy(&r.out.stderr).contains("unsupported store scheme gs://"),
        "{}",
        r.text()
    );
}

#[test]
fn kops_wrapper_usage_error() {
    let out = Command::new(root().join("deploy/kops/etcdguard-kops-update"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage:"));
}

fn check_json(args: &[&str], env: &[(&str, &str)]) -> (Output, Value) {
    let out = Command::new(common::etcdguard_bin())
        .args(["check", "--output", "json"])
        .args(args)
        .envs(env.iter().copied())
        .env("ETCDGUARD_LOG", "warn")
        .output()
        .unwrap();
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

fn reachable_stores(v: &Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["check"] == "store.reachable")
                .map(|f| f["details"]["store"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kops_cluster_spec_adds_local_stores_and_dedups_store_flags() {
    let s = kops_state();
    let main = s.dir.path().join("state/backups/etcd/main");
    let (out, v) = check_json(
        &[
            "--kops-cluster-spec",
            s.spec.to_str().unwrap(),
            "--store",
            main.to_str().unwrap(),
            "--kops-dry-run",
            fixture("modify-etcd-version.txt").to_str().unwrap(),
            "--now",
            FRESH,
        ],
        &[],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{v:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stores = reachable_stores(&v);
    assert_eq!(stores.len(), 2, "{stores:?}");
    // Delete the events store: the derived store is really read (and missing backups refuse).
    std::fs::remove_dir_all(s.dir.path().join("state/backups/etcd/events")).unwrap();
    let (out, v) = check_json(
        &[
            "--kops-cluster-spec",
            s.spec.to_str().unwrap(),
            "--kops-dry-run",
            fixture("modify-etcd-version.txt").to_str().unwrap(),
            "--now",
            FRESH,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{v:#}");
}

#[test]
fn kops_cluster_spec_s3_stores_on_moto() {
    let moto = common::Moto::start();
    let dir = tempfile::tempdir().unwrap();
    for name in ["main", "events"] {
        let store = dir.path().join(name);
        std::fs::create_dir_all(&store).unwrap();
        etcd_manager_store(&store, &snapshot().0, &[T1, T2, T3], BOTH);
        common::gate::upload_dir(
            &moto.endpoint,
            "acme-kops-state",
            &format!("prod.k8s.acme.example/backups/etcd/{name}"),
            &store,
        );
    }
    let env = common::gate::moto_env();
    let (out, v) = check_json(
        &[
            "--kops-cluster-spec",
            fixture("cluster-spec.yaml").to_str().unwrap(),
            "--s3-endpoint",
            &moto.endpoint,
            "--kops-dry-run",
            fixture("modify-etcd-version.txt").to_str().unwrap(),
            "--now",
            FRESH,
        ],
        &env,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{v:#}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stores = reachable_stores(&v);
    assert_eq!(
        stores,
        [
            "s3://acme-kops-state/prod.k8s.acme.example/backups/etcd/main/",
            "s3://acme-kops-state/prod.k8s.acme.example/backups/etcd/events/"
        ],
        "{v:#}"
    );
    // The configBase-derived spelling names the same layout for another cluster: nothing there.
    let (out, v) = check_json(
        &[
            "--kops-cluster-spec",
            fixture("cluster-spec-configbase.yaml").to_str().unwrap(),
            "--s3-endpoint",
            &moto.endpoint,
            "--kops-dry-run",
            fixture("modify-etcd-version.txt").to_str().unwrap(),
            "--now",
            FRESH,
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(1), "{v:#}");
    let text = v.to_string();
    assert!(
        text.contains("s3://acme-kops-state/dev.k8s.acme.example/backups/etcd/events"),
        "{v:#}"
    );
}

#[test]
fn kops_cluster_spec_rejects_unsupported_schemes_and_bad_input() {
    for (file, want) in [
        ("cluster-spec-gs.yaml", "unsupported store scheme gs://"),
        (
            "cluster-spec-memfs.json",
            "unsupported store scheme memfs://",
        ),
        ("create-spec-current.txt", "cannot parse as YAML"),
    ] {
        let (out, _) = check_json(
            &["--kops-cluster-spec", fixture(file).to_str().unwrap()],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want) && err.contains(file), "{file}: {err}");
    }
}

// ---- kubeadm ----

fn fake_kubeadm(dir: &Path) -> PathBuf {
    let path = dir.join("kubeadm");
    std::fs::write(
        &path,
        "#!/bin/sh\necho \"$*\" >> \"$FAKE_KUBEADM_LOG\"\necho \"[upgrade/successful] SUCCESS!\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn kubeadm_upgrade(dir: &Path, endpoint: &str, args: &[&str]) -> (Output, Option<String>) {
    let kubeadm = fake_kubeadm(dir);
    let log = dir.join("kubeadm.log");
    let out = Command::new(root().join("deploy/kubeadm/etcdguard-kubeadm-upgrade"))
        .args(args)
        .env("KUBEADM", &kubeadm)
        .env("ETCDGUARD", common::etcdguard_bin())
        .env("ETCDGUARD_LOG", "warn")
        .env("ETCDGUARD_ETCD_ENDPOINTS", endpoint)
        .env("ETCDGUARD_ETCD_CACERT", "")
        .env("ETCDGUARD_ETCD_CERT", "")
        .env("ETCDGUARD_ETCD_KEY", "")
        .env("ETCDGUARD_BACKUP_DIR", dir.join("backups"))
        .env("ETCDGUARD_KUBEADM_TMP", dir.join("kubernetes-tmp"))
        .env("FAKE_KUBEADM_LOG", &log)
        .output()
        .expect("run etcdguard-kubeadm-upgrade");
    (out, std::fs::read_to_string(&log).ok())
}

#[test]
fn kubeadm_wrapper_upgrades_after_a_verified_snapshot_and_flags_kubeadm_copies() {
    let etcd = common::Etcd::start();
    for i in 0..50 {
        etcd.put(&format!("/registry/configmaps/default/c{i}"), "v");
    }
    let dir = tempfile::tempdir().unwrap();
    // kubeadm's own pre-upgrade copy from an earlier upgrade: a raw data-dir copy.
    let copy = dir
        .path()
        .join("kubernetes-tmp/kubeadm-backup-etcd-2026-11-20-09-12-44/etcd/member/snap");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(etcd.data_dir().join("member/snap/db"), copy.join("db")).unwrap();
    std::fs::create_dir_all(
        dir.path()
            .join("kubernetes-tmp/kubeadm-backup-etcd-2026-11-21-10-00-00"),
    )
    .unwrap();

    let (out, log) = kubeadm_upgrade(
        dir.path(),
        &etcd.endpoint,
        &["v1.31.2", "--yes", "--etcd-upgrade=true"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_eq!(
        log.as_deref(),
        Some("upgrade apply v1.31.2 --yes --etcd-upgrade=true\n"),
        "{err}"
    );
    assert!(
        err.contains("UNVERIFIABLE (sha256: missing)")
            && err.contains("kubeadm-backup-etcd-2026-11-20-09-12-44"),
        "{err}"
    );
    assert!(
        err.contains("kubeadm-backup-etcd-2026-11-21-10-00-00: empty"),
        "{err}"
    );
    // The snapshot it took is real and restorable, at the live revision.
    let snaps: Vec<PathBuf> = std::fs::read_dir(dir.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let status = common::snapshot_status(&snaps[0]);
    assert_eq!(status["revision"].as_i64(), Some(etcd.revision()));
    let v = common::etcdguard(&["verify", "--output", "json", snaps[0].to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0));
}

#[test]
fn kubeadm_wrapper_refuses_when_etcd_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{}", common::free_port());
    let (out, log) = kubeadm_upgrade(dir.path(), &endpoint, &["v1.31.2"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(log, None, "kubeadm must not run: {err}");
    assert!(
        err.contains("REFUSED") && err.contains("unreachable"),
        "{err}"
    );
}

/// A real snapshot that is damaged after `snapshot save` (a disk or copy fault): the real
/// `etcdctl` runs, then the wrapper's `ETCDCTL` cuts the file; `etcdguard verify` must refuse it.
#[test]
fn kubeadm_wrapper_refuses_a_damaged_snapshot() {
    let etcd = common::Etcd::start();
    etcd.put("/registry/namespaces/default", "v");
    let dir = tempfile::tempdir().unwrap();
    let damaging = dir.path().join("etcdctl-damaging");
    std::fs::write(
        &damaging,
        "#!/bin/sh\netcdctl \"$@\" || exit $?\nfor last; do :; done\ncase \" $* \" in *\" snapshot save \"*) truncate -s -100 \"$last\" ;; esac\n",
    )
    .unwrap();
    std::fs::set_permissions(&damaging, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kubeadm = fake_kubeadm(dir.path());
    let log = dir.path().join("kubeadm.log");
    let out = Command::new(root().join("deploy/kubeadm/etcdguard-kubeadm-upgrade"))
        .arg("v1.31.2")
        .env("KUBEADM", &kubeadm)
        .env("ETCDCTL", &damaging)
        .env("ETCDGUARD", common::etcdguard_bin())
        .env("ETCDGUARD_ETCD_ENDPOINTS", &etcd.endpoint)
        .env("ETCDGUARD_ETCD_CACERT", "")
        .env("ETCDGUARD_ETCD_CERT", "")
        .env("ETCDGUARD_ETCD_KEY", "")
        .env("ETCDGUARD_BACKUP_DIR", dir.path().join("backups"))
        .env("ETCDGUARD_KUBEADM_TMP", dir.path().join("none"))
        .env("FAKE_KUBEADM_LOG", &log)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!log.exists(), "kubeadm must not run: {err}");
    assert!(err.contains("NOT valid"), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("INVALID"),
        "{err}"
    );
}

#[test]
fn kubeadm_wrapper_usage_error() {
    let out = Command::new(root().join("deploy/kubeadm/etcdguard-kubeadm-upgrade"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

// ---- CI examples ----

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(root().join(path)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every shell line of the example that runs `etcdguard check`, joined across `\` continuations.
fn check_commands(scripts: &[String]) -> Vec<String> {
    scripts
        .iter()
        .map(|s| s.replace("\\\n", " "))
        .flat_map(|s| s.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| l.contains("etcdguard check"))
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

#[test]
fn github_actions_example_runs_check_with_github_and_junit_output() {
    let v = yaml("deploy/ci/github-actions.yml");
    let steps = v["jobs"]["etcd-gate"]["steps"]
        .as_array()
        .expect("jobs.etcd-gate.steps");
    let runs: Vec<String> = steps
        .iter()
        .filter_map(|s| s["run"].as_str().map(str::to_string))
        .collect();
    let cmds = check_commands(&runs);
    assert_eq!(cmds.len(), 2, "{cmds:?}");
    for c in &cmds {
        assert!(
            c.contains("--kops-dry-run dry-run.txt")
                && c.contains("--kops-cluster-spec cluster.yaml"),
            "{c}"
        );
    }
    assert!(cmds[0].contains("--output github"), "{cmds:?}");
    assert!(cmds[1].contains("--output junit"), "{cmds:?}");
    assert!(runs
        .iter()
        .any(|r| r.contains("kops get cluster --full -o yaml")));
    assert!(steps.iter().any(|s| s["uses"]
        .as_str()
        .is_some_and(|u| u.starts_with("actions/upload-artifact"))
        && s["with"]["path"] == "etcdguard-junit.xml"));
}

#[test]
fn gitlab_example_publishes_a_junit_report() {
    let v = yaml("deploy/ci/gitlab-ci.yml");
    let job = &v["etcd-gate"];
    let script: Vec<String> = job["script"]
        .as_array()
        .expect("etcd-gate.script")
        .iter()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    let cmds = check_commands(&script);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    assert!(
        cmds[0].contains("--output junit > etcdguard-junit.xml"),
        "{cmds:?}"
    );
    assert!(
        cmds[0].contains("--kops-cluster-spec cluster.yaml"),
        "{cmds:?}"
    );
    assert_eq!(job["artifacts"]["reports"]["junit"], "etcdguard-junit.xml");
    assert_eq!(job["artifacts"]["when"], "always");
    assert_eq!(v["kops-apply"]["needs"][0], "etcd-gate");
}

/// The flags the CI examples use are real `etcdguard check` flags (the CLI rejects unknown ones
/// with exit 2 before anything else).
#[test]
fn ci_example_flags_are_accepted_by_check() {
    let s = kops_state();
    for output in ["github", "junit"] {
        let out = Command::new(common::etcdguard_bin())
            .args(["check", "--kops-dry-run"])
            .arg(fixture("harmless-update.txt"))
            .arg("--kops-cluster-spec")
            .arg(&s.spec)
            .args(["--max-age", "3h", "--output", output, "--now", FRESH])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{output}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        if output == "junit" {
            assert!(text.contains("<testsuite"), "{text}");
        }
    }
}
