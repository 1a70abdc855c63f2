//! Issue #20: every backup read exactly as the upstream tool that wrote it. Each store is built
//! the way its writer builds it (names, folders, codecs, metadata) from real etcd snapshots, and
//! the gate's verdict is asserted through the binary (`check` / `status` / `verify`).

mod common;

use common::store::{em_backup, em_control, gzip, put, snaps};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::Command;

const NOW: &str = "2026-11-23T09:00:00Z";

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn run(args: &[&str]) -> (i32, Value, String) {
    let out = common::etcdguard(args);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (
        out.status.code().unwrap_or(-1),
        v,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(store: &Path, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "check",
        "--output",
        "json",
        "--store",
        p(store),
        "--now",
        NOW,
    ];
    args.extend_from_slice(extra);
    let (code, v, err) = run(&args);
    assert!(v.is_object(), "no JSON from check: {err}");
    (code, v)
}

fn status(store: &Path, extra: &[&str]) -> Value {
    let mut args = vec![
        "status",
        "--output",
        "json",
        "--store",
        p(store),
        "--now",
        NOW,
    ];
    args.extend_from_slice(extra);
    let (_, v, err) = run(&args);
    assert!(v.is_object(), "no JSON from status: {err}");
    v
}

fn findings<'a>(v: &'a Value, check: &str) -> Vec<&'a Value> {
    v["findings"]
        .as_array()
        .map(|a| a.iter().filter(|f| f["check"] == check).collect())
        .unwrap_or_default()
}

fn severity(v: &Value, check: &str) -> Vec<String> {
    findings(v, check)
        .iter()
        .map(|f| f["severity"].as_str().unwrap_or("").to_string())
        .collect()
}

fn set_mtime(path: &Path, when: &str) {
    let ok = Command::new("touch")
        .args(["-d", when, p(path)])
        .status()
        .expect("touch");
    assert!(ok.success());
}

// ---------------------------------------------------------------------------------------------
// OpenShift: cluster-backup.sh / `cluster-etcd-operator cluster-backup` write
// `snapshot_<%F_%H%M%S>[__POSSIBLY_DIRTY__].db` and `static_kuberesources_<same>.tar.gz`
// (`tar -cpzf … -C /etc/kubernetes static-pod-resources/<component>-pod-<N>`) into one folder;
// cluster-restore.sh extracts `static-pod-resources` from the tarball and aborts without it.

/// The static pod resources tarball, made with `tar -cpzf` as cluster-backup.sh makes it.
fn static_resources_tar(out: &Path) {
    let root = tempfile::tempdir().unwrap();
    for c in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
    ] {
        let d = root
            .path()
            .join(format!("static-pod-resources/{c}-pod-7/configmaps/config"));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("config.yaml"), format!("component: {c}\n")).unwrap();
    }
    let status = Command::new("tar")
        .arg("-cpzf")
        .arg(out)
        .arg("-C")
        .arg(root.path())
        .args([
            "static-pod-resources/kube-apiserver-pod-7",
            "static-pod-resources/kube-controller-manager-pod-7",
            "static-pod-resources/kube-scheduler-pod-7",
            "static-pod-resources/etcd-pod-7",
        ])
        .status()
        .expect("tar");
    assert!(status.success());
}

/// One OpenShift backup folder as the automated backup (`backup-<name>-<date>/`) lays it out.
fn openshift_backup(root: &Path, stamp: &str, dirty: bool, tarball: Option<&[u8]>) {
    let suffix = if dirty { "__POSSIBLY_DIRTY__" } else { "" };
    let dir = root.join(format!("backup-etcd-{stamp}"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        &snaps().new.0,
        dir.join(format!("snapshot_{stamp}{suffix}.db")),
    )
    .unwrap();
    let tar = dir.join(format!("static_kuberesources_{stamp}{suffix}.tar.gz"));
    match tarball {
        None => static_resources_tar(&tar),
        Some(bytes) => std::fs::write(&tar, bytes).unwrap(),
    }
}

#[test]
fn openshift_backup_needs_its_static_resources_tarball() {
    let d = tempfile::tempdir().unwrap();
    openshift_backup(d.path(), "2026-11-23_060000", false, None);
    openshift_backup(d.path(), "2026-11-23_070000", true, None);
    openshift_backup(d.path(), "2026-11-23_080000", false, None);
    let (code, v) = check(d.path(), &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(status(d.path(), &[])["layout"], "openshift");

    // Newest folder without its tarball: not restorable (cluster-restore.sh aborts); the walk
    // back finds the dirty one, which stays flagged.
    let newest = d.path().join("backup-etcd-2026-11-23_080000");
    std::fs::remove_file(newest.join("static_kuberesources_2026-11-23_080000.tar.gz")).unwrap();
    let s = status(d.path(), &[]);
    let checked = s["checked"].as_array().unwrap();
    assert_eq!(checked[0]["validity"], "invalid", "{s:#}");
    assert!(
        checked[0]["reason"]
            .as_str()
            .unwrap()
            .contains("static_kuberesources_2026-11-23_080000.tar.gz is missing"),
        "{s:#}"
    );
    assert_eq!(checked[1]["validity"], "valid", "{s:#}");
    assert_eq!(checked[1]["possiblyDirty"], true);
    let (code, v) = check(d.path(), &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(severity(&v, "snapshot.valid"), ["warn"]);

    // An unreadable tarball (cut gzip) is no better than none.
    let mut cut = std::fs::read(
        d.path()
            .join("backup-etcd-2026-11-23_070000/static_kuberesources_2026-11-23_070000__POSSIBLY_DIRTY__.tar.gz"),
    )
    .unwrap();
    cut.truncate(cut.len() / 2);
    openshift_backup(d.path(), "2026-11-23_083000", false, Some(&cut));
    openshift_backup(d.path(), "2026-11-23_084500", false, Some(b"not a tarball"));
    let s = status(d.path(), &[]);
    let checked = s["checked"].as_array().unwrap();
    for c in &checked[..3] {
        assert_eq!(c["validity"], "invalid", "{s:#}");
    }
    assert!(checked[0]["reason"]
        .as_str()
        .unwrap()
        .contains("unreadable"));
    assert_eq!(checked[3]["validity"], "valid");
}

// ---------------------------------------------------------------------------------------------
// etcd-operator: periodic `<spec.s3.path>_v<rev>_<UTC 2006-01-02-15:04:05>`, and a one-shot
// EtcdBackup written to exactly `spec.s3.path` (`pkg/backup/backup_manager.go` `SaveSnap`).

#[test]
fn etcd_operator_one_shot_and_periodic_backups() {
    let d = tempfile::tempdir().unwrap();
    let (old, old_rev) = &snaps().old;
    let (new, new_rev) = &snaps().new;
    let one_shot = d.path().join("etcd.backup");
    std::fs::copy(new, &one_shot).unwrap();
    set_mtime(&one_shot, "2026-11-23T08:30:00Z");
    std::fs::copy(
        old,
        d.path()
            .join(format!("etcd.backup_v{old_rev}_2026-11-23-07:00:00")),
    )
    .unwrap();
    std::fs::copy(
        new,
        d.path()
            .join(format!("etcd.backup_v{new_rev}_2026-11-23-08:00:00")),
    )
    .unwrap();
    let s = status(d.path(), &[]);
    assert_eq!(s["layout"], "etcd-operator", "{s:#}");
    assert_eq!(s["backups"]["count"], 3);
    assert_eq!(s["newest"]["name"], "etcd.backup");
    assert_eq!(s["newest"]["timeSource"], "object-time");
    assert_eq!(s["newest"]["validity"], "valid");
    let (code, v) = check(d.path(), &[]);
    assert_eq!(code, 0, "{v:#}");

    // A one-shot store alone (the docs' `mybucket/etcd.backup`) is detected too.
    let only = tempfile::tempdir().unwrap();
    let f = only.path().join("mybucket/etcd.backup");
    put(
        only.path(),
        "mybucket/etcd.backup",
        &std::fs::read(new).unwrap(),
    );
    set_mtime(&f, "2026-11-23T08:30:00Z");
    let (code, v) = check(only.path(), &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(status(only.path(), &[])["layout"], "etcd-operator");
}

// ---------------------------------------------------------------------------------------------
// Talos: talos-backup writes `<cluster>-<time.RFC3339>.snap`, zstd → `.zst`
// (`pkg/compression`), then age to one X25519 recipient → `.age` (`pkg/encryption`), under
// `<S3_PREFIX or cluster>/`.

fn zstd_bytes(path: &Path) -> Vec<u8> {
    zstd::encode_all(&std::fs::read(path).unwrap()[..], 3).unwrap()
}

fn age_encrypt(plain: &[u8], to: &age::x25519::Recipient) -> Vec<u8> {
    let enc = age::Encryptor::with_recipients(std::iter::once(to as &dyn age::Recipient))
        .expect("recipients");
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    w.write_all(plain).unwrap();
    w.finish().unwrap();
    out
}

/// Write an identity file the way `age-keygen` does.
fn identity_file(dir: &Path, name: &str, id: &age::x25519::Identity) -> String {
    use age::secrecy::ExposeSecret;
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "# created: 2026-11-23T00:00:00Z\n# public key: {}\n{}\n",
            id.to_public(),
            id.to_string().expose_secret()
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn talos_backup_encrypted_compressed_and_plain() {
    let d = tempfile::tempdir().unwrap();
    let key = age::x25519::Identity::generate();
    let other = age::x25519::Identity::generate();
    let keys = tempfile::tempdir().unwrap();
    let good = identity_file(keys.path(), "key.txt", &key);
    let wrong = identity_file(keys.path(), "other.txt", &other);
    let zst = zstd_bytes(&snaps().new.0);
    let sealed = age_encrypt(&zst, &key.to_public());
    for t in [
        "2026-11-23T06:00:00Z",
        "2026-11-23T07:00:00Z",
        "2026-11-23T09:00:00+01:00",
    ] {
        put(d.path(), &format!("prod/prod-{t}.snap.zst.age"), &sealed);
    }
    // Without the key: encrypted, validity unknown (not "not a bbolt database"); the gate
    // cannot count it as restorable and refuses.
    let s = status(d.path(), &[]);
    assert_eq!(s["layout"], "talos-backup", "{s:#}");
    assert_eq!(
        s["newest"]["name"],
        "prod/prod-2026-11-23T09:00:00+01:00.snap.zst.age"
    );
    assert_eq!(s["newest"]["time"], "2026-11-23T08:00:00Z");
    assert_eq!(s["newest"]["validity"], "unknown", "{s:#}");
    assert_eq!(s["newest"]["report"]["encryption"], "age-locked");
    let reason = s["newest"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("age-encrypted") && reason.contains("--age-identity"),
        "{reason}"
    );
    assert!(!reason.contains("bbolt"), "{reason}");
    let (code, v) = check(d.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(severity(&v, "snapshot.valid"), ["deny"]);

    // With the identity: decrypted in the stream, decompressed and verified.
    let (code, v) = check(d.path(), &["--age-identity", &good]);
    assert_eq!(code, 0, "{v:#}");
    let s = status(d.path(), &["--age-identity", &good]);
    assert_eq!(s["newest"]["validity"], "valid", "{s:#}");
    assert_eq!(s["newest"]["report"]["encryption"], "age");
    assert_eq!(s["newest"]["report"]["container"], "zstd");
    assert_eq!(s["newest"]["report"]["revision"], snaps().new.1);

    // A key that is not the recipient: still unknown, never valid.
    let s = status(d.path(), &["--age-identity", &wrong]);
    assert_eq!(s["newest"]["validity"], "unknown", "{s:#}");

    // A tampered payload fails age's authentication: invalid.
    let mut bad = sealed.clone();
    let n = bad.len();
    bad[n - 100] ^= 0x55;
    put(
        d.path(),
        "prod/prod-2026-11-23T08:30:00Z.snap.zst.age",
        &bad,
    );
    let s = status(d.path(), &["--age-identity", &good]);
    assert_eq!(s["checked"][0]["validity"], "invalid", "{s:#}");
    assert!(s["checked"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("decryption error"));
    assert_eq!(
        s["newestValid"]["name"],
        "prod/prod-2026-11-23T09:00:00+01:00.snap.zst.age"
    );

    // `verify` takes the same flag; without it the result is unknown (exit 2).
    let f = d.path().join("prod/prod-2026-11-23T07:00:00Z.snap.zst.age");
    let (code, v, _) = run(&["verify", "--output", "json", p(&f), "--age-identity", &good]);
    assert_eq!(code, 0, "{v:#}");
    let (code, v, _) = run(&["verify", "--output", "json", p(&f)]);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["encryption"], "age-locked");
    // A bad identity file is a usage error naming the input.
    let (code, _, err) = run(&["status", "--store", p(d.path()), "--age-identity", p(&f)]);
    assert_eq!(code, 2);
    assert!(err.contains("age identity file"), "{err}");
}

#[test]
fn talos_backup_unencrypted_and_talosctl_snapshots() {
    let d = tempfile::tempdir().unwrap();
    let (old, _) = &snaps().old;
    let (new, new_rev) = &snaps().new;
    // DISABLE_ENCRYPTION=true, with and without ENABLE_COMPRESSION.
    put(
        d.path(),
        "c1/c1-2026-11-23T06:00:00Z.snap",
        &std::fs::read(old).unwrap(),
    );
    put(
        d.path(),
        "c1/c1-2026-11-23T07:00:00Z.snap.zst",
        &zstd_bytes(old),
    );
    put(
        d.path(),
        "c1/c1-2026-11-23T08:00:00Z.snap.zst",
        &zstd_bytes(new),
    );
    let s = status(d.path(), &[]);
    assert_eq!(s["layout"], "talos-backup");
    assert_eq!(s["backups"]["count"], 3);
    assert_eq!(s["newest"]["timeSource"], "name");
    assert_eq!(s["newest"]["report"]["revision"], *new_rev);
    let (code, v) = check(d.path(), &[]);
    assert_eq!(code, 0, "{v:#}");

    // `talosctl etcd snapshot db.snapshot`: any name, timed by the file: still `plain`.
    let t = tempfile::tempdir().unwrap();
    for (name, when) in [
        ("db.snapshot", "2026-11-23T08:00:00Z"),
        ("etcd-1.snap", "2026-11-23T07:00:00Z"),
        ("etcd-2.snap", "2026-11-23T06:00:00Z"),
    ] {
        let f = t.path().join(name);
        std::fs::copy(new, &f).unwrap();
        set_mtime(&f, when);
    }
    let s = status(t.path(), &[]);
    assert_eq!(s["layout"], "plain", "{s:#}");
    assert_eq!(s["newest"]["name"], "db.snapshot");
    assert_eq!(s["newest"]["validity"], "valid");
}

// ---------------------------------------------------------------------------------------------
// etcd-manager: control files and meta read as protojson reads them; queued commands.

fn em_three(root: &Path) {
    let data = gzip(&snaps().new.0);
    for f in [
        "2026-11-23T08:00:00Z-000001",
        "2026-11-23T08:15:00Z-000002",
        "2026-11-23T08:30:00Z-000003",
    ] {
        em_backup(root, f, Some(&data), true);
    }
    em_control(root, true, true);
}

/// `control/<RFC3339>-000000/_command.json` as `etcd-manager-ctl restore-backup` writes it
/// (`AddCommand`: protojson, indented, timestamp in Unix nanoseconds as a string).
fn restore_command(root: &Path, queued: &str, backup: &str) {
    let nanos = chrono::DateTime::parse_from_rfc3339(queued)
        .unwrap()
        .timestamp_nanos_opt()
        .unwrap();
    put(
        root,
        &format!("control/{queued}-000000/_command.json"),
        format!(
            "{{\n  \"timestamp\": \"{nanos}\",\n  \"restoreBackup\": {{\n    \"clusterSpec\": {{\n      \"memberCount\": 3,\n      \"etcdVersion\": \"3.4.23\"\n    }},\n    \"backup\": \"{backup}\"\n  }}\n}}"
        )
        .as_bytes(),
    );
}

#[test]
fn queued_restore_backup_command_refuses_naming_backup_age_and_loss() {
    let d = tempfile::tempdir().unwrap();
    em_three(d.path());
    let (code, v) = check(d.path(), &[]);
    assert_eq!(code, 0, "{v:#}");
    assert!(
        severity(&v, "control-files.pending-command")
            .iter()
            .all(|s| s == "info"),
        "{v:#}"
    );

    restore_command(
        d.path(),
        "2026-11-23T08:40:00Z",
        "2026-11-23T08:00:00Z-000001",
    );
    let (code, v) = check(d.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    let f = findings(&v, "control-files.pending-command");
    assert_eq!(f.len(), 1, "{v:#}");
    assert_eq!(f[0]["severity"], "deny");
    let msg = f[0]["message"].as_str().unwrap();
    for want in [
        "2026-11-23T08:00:00Z-000001",
        "1h 0m ago",
        "REPLACE",
        "every write since 2026-11-23T08:00:00Z",
        &format!("revision {}", snaps().new.1),
    ] {
        assert!(msg.contains(want), "{want:?} not in {msg}");
    }
    assert!(f[0]["nextStep"]
        .as_str()
        .unwrap()
        .contains("delete-command"));

    // A restore of a backup that is not there: the cluster is replaced by an empty one.
    restore_command(
        d.path(),
        "2026-11-23T08:41:00Z",
        "2026-11-22T00:00:00Z-000009",
    );
    let (_, v) = check(d.path(), &[]);
    let f = findings(&v, "control-files.pending-command");
    assert_eq!(f.len(), 2, "{v:#}");
    assert!(
        f[1]["message"].as_str().unwrap().contains("NOT restorable"),
        "{v:#}"
    );
}

#[test]
fn queued_command_found_when_no_backup_is_recent() {
    // Backups older than the listing windows: the store is listed by folder only, and the
    // commands under control/ are listed on their own.
    let d = tempfile::tempdir().unwrap();
    let data = gzip(&snaps().old.0);
    em_backup(d.path(), "2026-09-01T00:00:00Z-000001", Some(&data), true);
    em_backup(d.path(), "2026-09-01T00:15:00Z-000002", Some(&data), true);
    em_backup(d.path(), "2026-09-01T00:30:00Z-000003", Some(&data), true);
    em_control(d.path(), true, true);
    restore_command(
        d.path(),
        "2026-11-23T08:40:00Z",
        "2026-09-01T00:30:00Z-000003",
    );
    let (code, v) = check(d.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    let f = findings(&v, "control-files.pending-command");
    assert_eq!(f.len(), 1, "{v:#}");
    let msg = f[0]["message"].as_str().unwrap();
    assert!(
        msg.contains("2026-09-01T00:30:00Z-000003") && msg.contains("83d"),
        "{msg}"
    );
}

#[test]
fn other_and_unparseable_commands_are_reported() {
    let d = tempfile::tempdir().unwrap();
    em_three(d.path());
    put(
        d.path(),
        "control/2026-11-23T08:40:00Z-000000/_command.json",
        b"{\n  \"timestamp\": \"1795423200000000000\"\n}",
    );
    let (code, v) = check(d.path(), &[]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(severity(&v, "control-files.pending-command"), ["warn"]);
    // memberCount and member_count name one field: protojson rejects the file, so
    // etcd-manager's ListCommands (and its control loop) fails.
    put(
        d.path(),
        "control/2026-11-23T08:41:00Z-000000/_command.json",
        br#"{"timestamp":"1","restoreBackup":{"clusterSpec":{"memberCount":3,"member_count":3},"backup":"2026-11-23T08:00:00Z-000001"}}"#,
    );
    let (code, v) = check(d.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    let sev = severity(&v, "control-files.pending-command");
    assert!(sev.contains(&"deny".to_string()), "{v:#}");
    let f = findings(&v, "control-files.pending-command");
    assert!(
        f.iter()
            .any(|f| f["message"].as_str().unwrap().contains("duplicate field")),
        "{v:#}"
    );
}

#[test]
fn protojson_control_files_and_meta() {
    let d = tempfile::tempdir().unwrap();
    em_three(d.path());
    // kops' minimal case: json.MarshalIndent of {memberCount: 1} with omitempty.
    put(
        d.path(),
        "control/etcd-cluster-spec",
        b"{\n  \"memberCount\": 1\n}",
    );
    let s = status(d.path(), &[]);
    assert_eq!(s["control"]["outcome"], "normal", "{s:#}");
    assert_eq!(s["control"]["spec"]["value"]["memberCount"], 1);
    // 3.0 is an integer to protojson; null is skipped.
    put(
        d.path(),
        "control/etcd-cluster-spec",
        b"{\"memberCount\": 3.0, \"etcdVersion\": \"3.4.23\", \"member_count\": null}",
    );
    let s = status(d.path(), &[]);
    assert_eq!(s["control"]["spec"]["state"], "unparseable", "{s:#}");
    put(
        d.path(),
        "control/etcd-cluster-spec",
        b"{\"memberCount\": 3.0, \"etcdVersion\": null}",
    );
    let s = status(d.path(), &[]);
    assert_eq!(s["control"]["spec"]["value"]["memberCount"], 3, "{s:#}");
    // Out of int32 range: etcd-manager cannot read the spec.
    put(
        d.path(),
        "control/etcd-cluster-spec",
        b"{\"memberCount\": 2147483648}",
    );
    let (code, v) = check(d.path(), &[]);
    assert_eq!(code, 1, "{v:#}");
    em_control(d.path(), true, true);
    // An unknown field in the newest meta: LoadInfo fails, so that backup cannot be restored.
    put(
        d.path(),
        "2026-11-23T08:30:00Z-000003/_etcd_backup.meta",
        b"{\"etcdVersion\": \"3.4.23\", \"timestamp\": \"1795422600\", \"revision\": \"5\"}",
    );
    let s = status(d.path(), &[]);
    assert_eq!(s["checked"][0]["validity"], "invalid", "{s:#}");
    assert!(s["checked"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("unknown field"));
    assert_eq!(s["newestValid"]["name"], "2026-11-23T08:15:00Z-000002");
}

/// talos-backup uploads `<S3_PREFIX or cluster>/<file>` (`pkg/s3/s3.go` `PushSnapshot`); the age
/// layer decrypts the S3 body in the stream, as it does a local file.
#[test]
fn talos_backup_on_s3_decrypts_in_the_stream() {
    let moto = common::Moto::start();
    let d = tempfile::tempdir().unwrap();
    let key = age::x25519::Identity::generate();
    let keys = tempfile::tempdir().unwrap();
    let good = identity_file(keys.path(), "key.txt", &key);
    let sealed = age_encrypt(&zstd_bytes(&snaps().new.0), &key.to_public());
    for t in [
        "2026-11-23T06:00:00Z",
        "2026-11-23T07:00:00Z",
        "2026-11-23T08:00:00Z",
    ] {
        put(d.path(), &format!("prod-{t}.snap.zst.age"), &sealed);
    }
    common::gate::upload_dir(&moto.endpoint, "talos-backups", "prod", d.path());
    let url = "s3://talos-backups/prod";
    let run = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--output",
            "json",
            "--store",
            url,
            "--s3-endpoint",
            &moto.endpoint,
            "--s3-path-style",
            "--now",
            NOW,
        ];
        args.extend_from_slice(extra);
        let out = Command::new(common::etcdguard_bin())
            .args(&args)
            .envs(common::gate::moto_env())
            .output()
            .unwrap();
        let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (out.status.code(), v)
    };
    let (code, v) = run(&["--age-identity", &good]);
    assert_eq!(code, Some(0), "{v:#}");
    assert_eq!(v["snapshot"]["newestValid"]["revision"], snaps().new.1);
    let (code, v) = run(&[]);
    assert_eq!(code, Some(1), "{v:#}");
}
