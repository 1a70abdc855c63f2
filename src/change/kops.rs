//! The `kops update cluster` dry-run report (stdout of `kops update cluster` without `--yes`).
//!
//! Format (kops `upup/pkg/fi/dryrun_target.go`, `PrintReport`):
//! ```text
//! Will create resources:
//!   ManagedFile/etcd-cluster-spec-main
//!   \tBase                \ts3://bucket/cluster/backups/etcd/main
//!   \tLocation            \t/control/etcd-cluster-spec
//!
//! Will modify resources:
//!   ManagedFile/etcd-cluster-spec-main
//!   \tContents            
//!   \t                    \t  {
//!   \t                    \t-   "memberCount": 1,
//!   \t                    \t+   "memberCount": 3,
//!   ...
//! Must specify --yes to apply changes
//! ```
//! A resource line is two spaces and `Type/name`; a field line is two spaces, a tab, the field
//! name padded to 20, a tab and the value; a multi-line value (a `Contents` diff) follows a bare
//! field-name line, one line per diff line with an empty name column. Diff lines start with
//! `- ` (only in the existing file), `+ ` (only in kops' desired content), `  ` (context) or are
//! `...` (skipped lines). Older kops (< 1.18/1.19) printed no `Base` line, only a `Location`
//! relative to the config base. Copies whose tabs were turned into spaces are accepted too.

use super::spec::{self, EtcdClusterSpec};
use super::{Change, ChangeError, ChangeKind, ChangeSet};

const EXPECTED: &str = "a kops `update cluster` dry-run report";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    Create,
    Modify,
    DeletePrune,
    DeleteNow,
}

#[derive(Debug, Default)]
struct Field {
    name: String,
    /// Single-line value (empty for a multi-line field).
    value: String,
    /// Continuation lines of a multi-line field.
    lines: Vec<String>,
}

#[derive(Debug)]
struct Resource {
    section: Section,
    /// `Type/name`.
    id: String,
    fields: Vec<Field>,
}

impl Resource {
    fn ty(&self) -> &str {
        self.id.split_once('/').map(|(t, _)| t).unwrap_or(&self.id)
    }
    fn name(&self) -> &str {
        self.id.split_once('/').map(|(_, n)| n).unwrap_or("")
    }
    fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }
}

/// Classify a kops `update cluster` dry-run report. `input` names the report in errors.
///
/// Recognized: `ManagedFile/etcd-cluster-spec-<name>` created (⇒ [`ChangeKind::SeedsNewCluster`])
/// or modified (its `Contents` diff parsed as JSON: a memberCount change ⇒
/// [`ChangeKind::EtcdScale`], an etcdVersion change ⇒ [`ChangeKind::EtcdUpgrade`], whitespace or
/// key-style only ⇒ [`ChangeKind::Other`]); `kubernetesVersion` changes in
/// `ManagedFile/cluster-completed.spec` ⇒ [`ChangeKind::KubernetesUpgrade`]; etcd-manager
/// manifest changes (a `--backup-store` change ⇒ [`ChangeKind::BackupStoreMoved`]); modified
/// control-plane launch templates / autoscaling groups and deletions ⇒ [`ChangeKind::Other`].
///
/// Deletions (`Items will be deleted ...:`, older kops `Will delete items:`) of an
/// `etcd-cluster-spec` ⇒ [`ChangeKind::EtcdSpecRemoved`], others ⇒ [`ChangeKind::Other`].
///
/// Errors when the text contains none of the report's markers (`Will create resources:`,
/// `Will modify resources:`, `No changes need to be applied`, `Must specify --yes ...`).
pub fn from_kops_dry_run(text: &str, input: &str) -> Result<ChangeSet, ChangeError> {
    let (resources, deletions, saw_marker) = parse(text);
    if !saw_marker {
        return Err(ChangeError::NotRecognized {
            input: input.to_string(),
            expected: EXPECTED,
            detail: "found none of `Will create resources:`, `Will modify resources:`, \
                     `No changes need to be applied`, `Must specify --yes to apply changes` \
                     (pass kops' stdout, not stderr)"
                .to_string(),
        });
    }
    let mut set = ChangeSet {
        creates_cluster: resources
            .iter()
            .any(|r| r.section == Section::Create && r.id == "ManagedFile/cluster-completed.spec"),
        ..ChangeSet::default()
    };
    for r in &resources {
        classify(r, &mut set);
    }
    for d in deletions {
        let kind = match d.split_whitespace().find_map(|w| {
            let name = w.rsplit('/').next().unwrap_or(w);
            spec::cluster_of(name)
        }) {
            Some(cluster) => ChangeKind::EtcdSpecRemoved {
                cluster: cluster.to_string(),
            },
            None => ChangeKind::Other {
                detail: "resource will be deleted".to_string(),
            },
        };
        set.changes.push(Change {
            kind,
            resource: d.clone(),
            evidence: d,
            json_pointers: Vec::new(),
        });
    }
    Ok(set)
}

/// Returns (create/modify resources, deletion lines, whether any report marker was seen).
fn parse(text: &str) -> (Vec<Resource>, Vec<String>, bool) {
    let mut resources: Vec<Resource> = Vec::new();
    let mut deletions = Vec::new();
    let mut section: Option<Section> = None;
    let mut saw_marker = false;
    for raw in text.lines() {
        let line = raw.trim_end();
        let trimmed = line.trim_start();
        if trimmed.is_empty() {
            continue;
        }
        match trimmed {
            "Will create resources:" => {
                section = Some(Section::Create);
                saw_marker = true;
                continue;
            }
            "Will modify resources:" => {
                section = Some(Section::Modify);
                saw_marker = true;
                continue;
            }
            "No changes need to be applied" | "Must specify --yes to apply changes" => {
                section = None;
                saw_marker = true;
                continue;
            }
            _ => {}
        }
        if trimmed.starts_with("Items will be deleted only when the --prune flag") {
            section = Some(Section::DeletePrune);
            saw_marker = true;
            continue;
        }
        if trimmed.starts_with("Items will be deleted during update")
            || trimmed == "Will delete items:"
        {
            section = Some(Section::DeleteNow);
            saw_marker = true;
            continue;
        }
        let indent = line.len() - trimmed.len();
        if indent == 0 {
            // Anything unindented (klog lines, banners) ends the current section.
            section = None;
            continue;
        }
        let Some(sec) = section else { continue };
        if matches!(sec, Section::DeletePrune | Section::DeleteNow) {
            let item = super::OneLine(trimmed).to_string();
            if sec == Section::DeleteNow {
                deletions.push(item);
            } else {
                deletions.push(format!("{item} (only with --prune)"));
            }
            continue;
        }
        // Resource line: exactly two spaces then `Type/name`.
        if line.starts_with("  ")
            && !line.starts_with("   ")
            && !line.starts_with("  \t")
            && is_resource_id(trimmed)
        {
            resources.push(Resource {
                section: sec,
                id: trimmed.to_string(),
                fields: Vec::new(),
            });
            continue;
        }
        let Some(res) = resources.last_mut() else {
            continue;
        };
        match field_line(line, indent) {
            FieldLine::Field(name, value) => res.fields.push(Field {
                name,
                value,
                lines: Vec::new(),
            }),
            FieldLine::Continuation(value) => {
                if let Some(f) = res.fields.last_mut() {
                    f.lines.push(value);
                }
            }
        }
    }
    (resources, deletions, saw_marker)
}

fn is_resource_id(s: &str) -> bool {
    match s.split_once('/') {
        Some((ty, name)) => {
            !ty.is_empty()
                && !name.is_empty()
                && ty.chars().all(|c| c.is_ascii_alphanumeric())
                && ty.starts_with(|c: char| c.is_ascii_uppercase())
                && !s.contains(char::is_whitespace)
        }
        None => false,
    }
}

enum FieldLine {
    Field(String, String),
    Continuation(String),
}

fn field_line(line: &str, indent: usize) -> FieldLine {
    if let Some(rest) = line.strip_prefix("  \t") {
        // Tab format: `<name padded>\t<value>`; an all-blank name column is a continuation.
        return match rest.split_once('\t') {
            Some((name, value)) if name.trim().is_empty() => {
                FieldLine::Continuation(value.to_string())
            }
            Some((name, value)) => FieldLine::Field(name.trim().to_string(), value.to_string()),
            None => FieldLine::Field(rest.trim().to_string(), String::new()),
        };
    }
    // Tabs turned into spaces (copied from a web page or a CI log): a deep indent is a
    // continuation (the 20-character name column), otherwise `name value`.
    let trimmed = &line[indent..];
    if indent >= 20 {
        return FieldLine::Continuation(trimmed.to_string());
    }
    match trimmed.split_once(char::is_whitespace) {
        Some((name, value)) => FieldLine::Field(name.to_string(), value.trim().to_string()),
        None => FieldLine::Field(trimmed.to_string(), String::new()),
    }
}

/// Rebuild the existing (A) and desired (E) texts from a kops `FormatDiff` rendering.
/// Returns (old, new, partial) where `partial` says lines were skipped (`...`).
fn split_diff(lines: &[String]) -> (String, String, bool) {
    let mut old = String::new();
    let mut new = String::new();
    let mut partial = false;
    for l in lines {
        if l.trim() == "..." {
            partial = true;
        } else if let Some(rest) = l.strip_prefix("- ").or_else(|| strip_marker(l, '-')) {
            old.push_str(rest);
            old.push('\n');
        } else if let Some(rest) = l.strip_prefix("+ ").or_else(|| strip_marker(l, '+')) {
            new.push_str(rest);
            new.push('\n');
        } else {
            let rest = l.strip_prefix("  ").unwrap_or(l);
            old.push_str(rest);
            old.push('\n');
            new.push_str(rest);
            new.push('\n');
        }
    }
    (old, new, partial)
}

/// A bare `-`/`+` line (an empty diff line whose trailing space was trimmed).
fn strip_marker(l: &str, marker: char) -> Option<&str> {
    (l.len() == 1 && l.starts_with(marker)).then_some("")
}

/// `key: value` or `"key": value,` pairs on the changed lines of a diff (fallback when the
/// reconstructed JSON is partial).
fn changed_pairs(lines: &[String], marker: &str) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(marker))
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            let k = k.trim().trim_matches('"').to_string();
            let v = v
                .trim()
                .trim_end_matches(',')
                .trim()
                .trim_matches('"')
                .to_string();
            Some((k, v))
        })
        .collect()
}

fn evidence_of(r: &Resource, field: Option<&Field>) -> String {
    let mut ev = format!("{}: {}", section_title(r.section), r.id);
    match field {
        Some(f) => {
            ev.push_str(&format!("\n  {}", f.name));
            if !f.value.is_empty() {
                ev.push_str(&format!(" {}", f.value.trim()));
            }
            for l in &f.lines {
                ev.push_str(&format!("\n    {l}"));
            }
        }
        None => {
            for f in &r.fields {
                ev.push_str(&format!("\n  {} {}", f.name, f.value.trim()));
            }
        }
    }
    ev
}

fn section_title(s: Section) -> &'static str {
    match s {
        Section::Create => "Will create resources",
        Section::Modify => "Will modify resources",
        Section::DeletePrune | Section::DeleteNow => "Items will be deleted",
    }
}

fn classify(r: &Resource, set: &mut ChangeSet) {
    let push = |set: &mut ChangeSet, kind: ChangeKind, evidence: String| {
        set.changes.push(Change {
            kind,
            resource: r.id.clone(),
            evidence,
            json_pointers: Vec::new(),
        })
    };
    match (r.ty(), r.section) {
        ("ManagedFile", Section::Create) => {
            if let Some(cluster) = spec::cluster_of(r.name()) {
                let base = r.field("Base").map(|f| f.value.trim().to_string());
                let loc = r.field("Location").map(|f| f.value.trim().to_string());
                let location = match (base, loc) {
                    (Some(b), Some(l)) => Some(join(&b, &l)),
                    (None, Some(l)) => Some(l),
                    (Some(b), None) => Some(b),
                    (None, None) => None,
                };
                push(
                    set,
                    ChangeKind::SeedsNewCluster {
                        cluster: cluster.to_string(),
                        location,
                    },
                    evidence_of(r, None),
                );
            }
        }
        ("ManagedFile", Section::Modify) => classify_managed_file_modify(r, set),
        (
            "LaunchTemplate" | "AutoscalingGroup" | "InstanceTemplate" | "InstanceGroupManager",
            Section::Modify,
        ) if is_control_plane_name(r.name()) => {
            let fields: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
            push(
                set,
                ChangeKind::Other {
                    detail: format!(
                        "control-plane {} changes ({}); applied by `kops rolling-update cluster`",
                        r.ty(),
                        fields.join(", ")
                    ),
                },
                evidence_of(r, None),
            );
        }
        _ => {}
    }
}

fn classify_managed_file_modify(r: &Resource, set: &mut ChangeSet) {
    let Some(contents) = r.field("Contents") else {
        return;
    };
    let evidence = evidence_of(r, Some(contents));
    let name = r.name();
    if let Some(cluster) = spec::cluster_of(name) {
        let (old, new, partial) = split_diff(&contents.lines);
        let (o, n) = match (EtcdClusterSpec::parse(&old), EtcdClusterSpec::parse(&new)) {
            (Some(o), Some(n)) => (o, n),
            _ => {
                // Partial or odd diff: read the changed key/value lines instead.
                if partial {
                    set.notes.push(format!(
                        "{}: Contents diff is partial; compared changed lines only",
                        r.id
                    ));
                }
                (
                    spec_from_pairs(&changed_pairs(&contents.lines, "- ")),
                    spec_from_pairs(&changed_pairs(&contents.lines, "+ ")),
                )
            }
        };
        let changes = spec::compare(cluster, &o, &n, &r.id, &evidence, &[]);
        if changes.is_empty() {
            set.changes.push(Change {
                kind: ChangeKind::Other {
                    detail: "etcd-cluster-spec contents differ only in formatting or key style; \
                             values are unchanged"
                        .to_string(),
                },
                resource: r.id.clone(),
                evidence,
                json_pointers: Vec::new(),
            });
        } else {
            set.changes.extend(changes);
        }
        return;
    }
    if name == "cluster-completed.spec" {
        let old = changed_pairs(&contents.lines, "- ");
        let new = changed_pairs(&contents.lines, "+ ");
        let find = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .find(|(k, _)| k == "kubernetesVersion")
                .map(|(_, v)| v.clone())
        };
        let (from, to) = (find(&old), find(&new));
        if from != to && (from.is_some() || to.is_some()) {
            set.changes.push(Change {
                kind: ChangeKind::KubernetesUpgrade { from, to },
                resource: r.id.clone(),
                evidence,
                json_pointers: Vec::new(),
            });
        }
        return;
    }
    if let Some(rest) = name.strip_prefix("manifests-etcdmanager-") {
        let cluster = rest.split('-').next().unwrap_or(rest).to_string();
        let store = |marker: &str| {
            contents
                .lines
                .iter()
                .filter_map(|l| l.strip_prefix(marker))
                .find_map(|l| {
                    let i = l.find("--backup-store=")?;
                    let v = &l[i + "--backup-store=".len()..];
                    Some(
                        v.split_whitespace()
                            .next()
                            .unwrap_or("")
                            .trim_matches(|c| c == '"' || c == '\'' || c == ',')
                            .to_string(),
                    )
                })
        };
        let (from, to) = (store("- "), store("+ "));
        let kind = if from != to && (from.is_some() || to.is_some()) {
            ChangeKind::BackupStoreMoved { cluster, from, to }
        } else {
            ChangeKind::EtcdConfigChange {
                detail: format!(
                    "etcd-manager manifest for etcd cluster `{cluster}` changes (image, flags or \
                     env); takes effect when the control plane restarts"
                ),
            }
        };
        set.changes.push(Change {
            kind,
            resource: r.id.clone(),
            evidence,
            json_pointers: Vec::new(),
        });
    }
}

fn spec_from_pairs(pairs: &[(String, String)]) -> EtcdClusterSpec {
    let mut s = EtcdClusterSpec::default();
    for (k, v) in pairs {
        match k.as_str() {
            "memberCount" | "member_count" => s.member_count = v.parse().ok(),
            "etcdVersion" | "etcd_version" => s.etcd_version = Some(v.clone()),
            _ => {}
        }
    }
    s
}

fn is_control_plane_name(name: &str) -> bool {
    name.contains("master") || name.contains("control-plane")
}

/// Join a kops VFS base and a location the way kops does (one `/` between).
fn join(base: &str, loc: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        loc.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_lines_tab_and_space_formats() {
        match field_line("  \tBase                \ts3://b/c", 2) {
            FieldLine::Field(n, v) => assert_eq!((n.as_str(), v.as_str()), ("Base", "s3://b/c")),
            FieldLine::Continuation(_) => panic!("expected a field"),
        }
        match field_line("  \t                    \t+   \"memberCount\": 3", 2) {
            FieldLine::Continuation(v) => assert_eq!(v, "+   \"memberCount\": 3"),
            FieldLine::Field(..) => panic!("expected a continuation"),
        }
        match field_line(
            "                                -   \"memberCount\": 3,",
            32,
        ) {
            FieldLine::Continuation(v) => assert_eq!(v, "-   \"memberCount\": 3,"),
            FieldLine::Field(..) => panic!("expected a continuation"),
        }
    }

    #[test]
    fn split_diff_rebuilds_both_sides() {
        let lines: Vec<String> = [
            "  {",
            "-   \"memberCount\": 1,",
            "+   \"memberCount\": 3,",
            "    \"etcdVersion\": \"3.5.31\"",
            "  }",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (old, new, partial) = split_diff(&lines);
        assert!(!partial);
        assert_eq!(EtcdClusterSpec::parse(&old).unwrap().member_count, Some(1));
        assert_eq!(EtcdClusterSpec::parse(&new).unwrap().member_count, Some(3));
    }

    #[test]
    fn resource_ids() {
        assert!(is_resource_id("ManagedFile/etcd-cluster-spec-main"));
        assert!(!is_resource_id("I1123 10:00:00.1 apply_cluster.go:1"));
        assert!(!is_resource_id("Base s3://x/y"));
    }
}
