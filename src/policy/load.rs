//! Loading policies from YAML text, files and folders, with every error located.

use super::model::{PolicyDocument, ResourceRule};
use super::{Policy, PolicySet};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in a policy file: where it is, which field, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PolicyError {
    /// File name (or `embedded:<name>` for built-in policies).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Dotted field path such as `spec.require.snapshotMaxAge` (`.` for the document itself).
    pub field: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(c) => write!(
                f,
                "{}:{}:{}: {}: {}",
                self.file, self.line, c, self.field, self.message
            ),
            None => write!(
                f,
                "{}:{}: {}: {}",
                self.file, self.line, self.field, self.message
            ),
        }
    }
}

/// Why a set of policies could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path could not be read at all (missing, unreadable, not UTF-8).
    #[error("cannot read policies from {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The files were read but contain errors; every error found is listed.
    #[error("{} policy error(s):\n{}", .0.len(), .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<PolicyError>),
}

/// A document's text and where it starts in its file.
struct DocText<'a> {
    text: &'a str,
    /// 0-based line index of the document's first line in the file.
    first_line: usize,
}

/// Split a YAML stream on `---` document markers, keeping each document's starting line.
fn split_documents(text: &str) -> Vec<DocText<'_>> {
    let mut docs = Vec::new();
    let mut start_byte = 0usize;
    let mut start_line = 0usize;
    let mut offset = 0usize;
    for (idx, line) in text.split_inclusive('\n').enumerate() {
        let t = line.trim_end();
        let is_marker = t == "---" || t.starts_with("--- ") || t.starts_with("---\t");
        if is_marker {
            docs.push(DocText {
                text: text.get(start_byte..offset).unwrap_or(""),
                first_line: start_line,
            });
            // The marker line itself may carry content (`--- {…}`); keep it in the next doc
            // after blanking the marker so line numbers stay exact.
            start_byte = offset;
            start_line = idx;
        }
        offset += line.len();
    }
    docs.push(DocText {
        text: text.get(start_byte..).unwrap_or(""),
        first_line: start_line,
    });
    docs
}

/// Whether a document holds nothing but comments, blank lines and markers.
fn is_blank_doc(text: &str) -> bool {
    text.lines().all(|l| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#') || t == "---" || t == "..."
    })
}

/// Parse policies from one YAML text. `file` names the source in errors.
/// Returns the policies or every error found (documents are checked independently).
pub fn parse_str(file: &str, text: &str) -> Result<Vec<Policy>, Vec<PolicyError>> {
    let (policies, errors) = parse_partial(file, text);
    if errors.is_empty() {
        Ok(policies)
    } else {
        Err(errors)
    }
}

/// The valid policies of a text and the errors of the invalid ones.
fn parse_partial(file: &str, text: &str) -> (Vec<Policy>, Vec<PolicyError>) {
    let mut policies = Vec::new();
    let mut errors = Vec::new();
    for doc in split_documents(text) {
        if is_blank_doc(doc.text) {
            continue;
        }
        // Pad with the lines of earlier documents, so every line number (serde_yaml_ng's own
        // locations, including those inside its messages, and ours) is relative to the file;
        // replace a leading `---` marker with spaces so columns stay exact.
        let pad = "\n".repeat(doc.first_line);
        let body: String = match doc.text.strip_prefix("---") {
            Some(rest) => format!("{pad}   {rest}"),
            None => format!("{pad}{}", doc.text),
        };
        match serde_yaml_ng::from_str::<PolicyDocument>(&body) {
            Ok(parsed) => {
                let before = errors.len();
                validate(file, &body, &parsed, &mut errors);
                if errors.len() == before {
                    policies.push(Policy {
                        file: file.to_string(),
                        line: first_content_line(&body) + 1,
                        name_line: locate(
                            &body,
                            &[PathPart::Key("metadata"), PathPart::Key("name")],
                        ) + 1,
                        doc: parsed,
                    });
                }
            }
            Err(e) => errors.push(from_yaml_error(file, &body, &e)),
        }
    }
    (policies, errors)
}

fn first_content_line(body: &str) -> usize {
    body.lines()
        .position(|l| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        })
        .unwrap_or(0)
}

/// Turn a serde_yaml_ng error into a located [`PolicyError`].
fn from_yaml_error(file: &str, body: &str, e: &serde_yaml_ng::Error) -> PolicyError {
    let mut message = e.to_string();
    let (line, column) = match e.location() {
        Some(loc) => {
            // Drop serde_yaml_ng's own " at line L column C" suffix; we print the location first.
            let suffix = format!(" at line {} column {}", loc.line(), loc.column());
            if let Some(stripped) = message.strip_suffix(&suffix) {
                message = stripped.to_string();
            }
            (loc.line(), Some(loc.column()))
        }
        None => (first_content_line(body) + 1, None),
    };
    let (field, message) = split_field(&message);
    PolicyError {
        file: file.to_string(),
        line,
        column,
        field,
        message,
    }
}

/// serde_yaml_ng prefixes messages with the field path (`spec.mode: unknown variant …`).
fn split_field(message: &str) -> (String, String) {
    if let Some((head, tail)) = message.split_once(": ") {
        let looks_like_path = !head.is_empty()
            && head
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '[' | ']' | '_' | '-'));
        if looks_like_path {
            return (head.to_string(), tail.to_string());
        }
    }
    (".".to_string(), message.to_string())
}

/// Semantic checks that need more than one field; every failure is reported.
fn validate(file: &str, body: &str, doc: &PolicyDocument, errors: &mut Vec<PolicyError>) {
    let mut push = |path: &[PathPart<'_>], message: String| {
        let field = render_path(path);
        errors.push(PolicyError {
            file: file.to_string(),
            line: locate(body, path) + 1,
            column: None,
            field,
            message,
        });
    };
    let spec = &doc.spec;
    let m = &spec.match_;
    if m.resources.is_empty() && m.sources.is_empty() {
        push(
            &[PathPart::Key("spec"), PathPart::Key("match")],
            "matches nothing: list `resources` (Kubernetes objects) and/or `sources` (kops-dry-run, terraform-plan, lifecycle)".into(),
        );
    }
    for (i, rule) in m.resources.iter().enumerate() {
        check_rule(i, rule, &mut push);
    }
    let mut seen_sources = Vec::new();
    for (i, s) in m.sources.iter().enumerate() {
        if seen_sources.contains(s) {
            push(
                &[
                    PathPart::Key("spec"),
                    PathPart::Key("match"),
                    PathPart::Key("sources"),
                    PathPart::Index(i),
                ],
                format!("source `{s}` is listed twice"),
            );
        }
        seen_sources.push(*s);
    }
    let mut urls: BTreeMap<&str, &str> = BTreeMap::new();
    for (i, store) in spec.require.stores.iter().enumerate() {
        let at = |k| {
            [
                PathPart::Key("spec"),
                PathPart::Key("require"),
                PathPart::Key("stores"),
                PathPart::Index(i),
                PathPart::Key(k),
            ]
        };
        if store.cluster.trim().is_empty() {
            push(
                &at("cluster"),
                "is empty: name the cluster whose backups this store holds".into(),
            );
        }
        if let Some(other) = urls.insert(store.url.as_str(), store.cluster.as_str()) {
            push(
                &at("url"),
                format!("store `{}` is listed twice (clusters `{other}` and `{}`): one store belongs to one cluster", store.url.as_str(), store.cluster),
            );
        }
    }
    if let Some(ex) = &spec.exceptions {
        let at = |k| {
            [
                PathPart::Key("spec"),
                PathPart::Key("exceptions"),
                PathPart::Key(k),
            ]
        };
        if ex.users.is_empty() && ex.groups.is_empty() {
            push(
                &[PathPart::Key("spec"), PathPart::Key("exceptions")],
                "lists no `users` or `groups`: nobody could break glass; list who may, or remove `exceptions`".into(),
            );
        }
        if !valid_annotation_key(&ex.annotation) {
            push(
                &at("annotation"),
                format!(
                    "`{}` is not a valid annotation key: expected `prefix/name` like `etcdguard.dev/break-glass`",
                    ex.annotation
                ),
            );
        }
        for (list, name) in [(&ex.users, "users"), (&ex.groups, "groups")] {
            if list.iter().any(|u| u.trim().is_empty()) {
                push(
                    &at(name),
                    format!("contains an empty {}", name.trim_end_matches('s')),
                );
            }
        }
    }
}

fn check_rule(i: usize, rule: &ResourceRule, push: &mut impl FnMut(&[PathPart<'_>], String)) {
    let at = |k| {
        [
            PathPart::Key("spec"),
            PathPart::Key("match"),
            PathPart::Key("resources"),
            PathPart::Index(i),
            PathPart::Key(k),
        ]
    };
    if rule.api_groups.is_empty() {
        push(
            &at("apiGroups"),
            "is empty: list API groups (`\"\"` for the core group, `\"*\"` for any)".into(),
        );
    }
    for g in &rule.api_groups {
        let ok = g.is_empty()
            || g == "*"
            || g.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
        if !ok {
            push(&at("apiGroups"), format!("`{g}` is not an API group: expected a lowercase DNS name like `cluster.x-k8s.io`"));
        }
        if g.contains('/') {
            push(&at("apiGroups"), format!("`{g}` contains a version: list the group only (e.g. `cluster.x-k8s.io`, not `cluster.x-k8s.io/v1beta1`)"));
        }
    }
    if rule.kinds.is_empty() {
        push(
            &at("kinds"),
            "is empty: list kinds such as `KubeadmControlPlane`, or `*`".into(),
        );
    }
    if rule.operations.is_empty() {
        push(
            &at("operations"),
            "is empty: list CREATE, UPDATE, DELETE, CONNECT or `*`".into(),
        );
    }
}

/// An annotation key must be a qualified name `prefix/name` or `name` (Kubernetes rules, simplified).
fn valid_annotation_key(key: &str) -> bool {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .last()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    });
    name_ok && prefix_ok
}

/// A step in a field path used to render and locate errors.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PathPart<'a> {
    Key(&'a str),
    Index(usize),
}

fn render_path(path: &[PathPart<'_>]) -> String {
    let mut s = String::new();
    for p in path {
        match p {
            PathPart::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathPart::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        ".".into()
    } else {
        s
    }
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Content of a line after indentation and any `- ` sequence markers, with the column it starts at.
fn content(line: &str) -> (usize, &str) {
    let mut col = indent_of(line);
    let mut rest = line.get(col..).unwrap_or("");
    while let Some(r) = rest.strip_prefix("- ") {
        let trimmed = r.trim_start_matches(' ');
        col += rest.len() - trimmed.len();
        rest = trimmed;
    }
    (col, rest)
}

fn is_key_line(rest: &str, key: &str) -> bool {
    for quoted in [key.to_string(), format!("\"{key}\""), format!("'{key}'")] {
        if let Some(after) = rest.strip_prefix(quoted.as_str()) {
            let after = after.trim_start_matches(' ');
            if after.starts_with(':') {
                return true;
            }
        }
    }
    false
}

/// Best-effort 0-based line of a field path in block-style YAML: each key is searched below
/// its parent at a deeper indentation; list indices count `- ` items. Falls back to the
/// deepest part found (or the first content line).
fn locate(body: &str, path: &[PathPart<'_>]) -> usize {
    let lines: Vec<&str> = body.lines().collect();
    let mut found = first_content_line(body);
    // Position to search from, and the column of the parent's content (children are deeper).
    let mut from = 0usize;
    let mut parent_col: Option<usize> = None;
    let mut include_current = false;
    for part in path {
        match part {
            PathPart::Key(key) => {
                let mut hit = None;
                let start = if include_current {
                    from
                } else {
                    from + usize::from(parent_col.is_some())
                };
                for (idx, line) in lines.iter().enumerate().skip(start) {
                    let (col, rest) = content(line);
                    if rest.is_empty() || rest.starts_with('#') {
                        continue;
                    }
                    if let Some(pc) = parent_col {
                        // Left the parent's block.
                        if col <= pc && !(include_current && idx == from) {
                            break;
                        }
                    }
                    if is_key_line(rest, key) {
                        hit = Some((idx, col));
                        break;
                    }
                }
                match hit {
                    Some((idx, col)) => {
                        found = idx;
                        from = idx;
                        parent_col = Some(col);
                        include_current = false;
                    }
                    None => return found,
                }
            }
            PathPart::Index(want) => {
                let mut count = 0usize;
                let mut item_col = None;
                let mut hit = None;
                for (idx, line) in lines.iter().enumerate().skip(from + 1) {
                    let col = indent_of(line);
                    let rest = line.trim_start_matches(' ');
                    if rest.is_empty() || rest.starts_with('#') {
                        continue;
                    }
                    if parent_col.is_some_and(|pc| col < pc)
                        || (parent_col.is_some_and(|pc| col == pc) && !rest.starts_with('-'))
                    {
                        break;
                    }
                    if rest.starts_with("- ") || rest == "-" {
                        let ic = *item_col.get_or_insert(col);
                        if col == ic {
                            if count == *want {
                                hit = Some((idx, col));
                                break;
                            }
                            count += 1;
                        }
                    }
                }
                match hit {
                    Some((idx, col)) => {
                        found = idx;
                        from = idx;
                        parent_col = Some(col);
                        include_current = true;
                    }
                    None => return found,
                }
            }
        }
    }
    found
}

/// Read policies from a file, or from every `*.yaml` / `*.yml` file directly inside a folder
/// (sorted by name). Duplicate policy names across files are errors.
pub fn load_path(path: &Path) -> Result<PolicySet, LoadError> {
    let io = |source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    let mut files = Vec::new();
    if meta.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)? {
            let entry = entry.map_err(io)?;
            let p = entry.path();
            let is_yaml = p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e == "yaml" || e == "yml");
            if is_yaml && p.is_file() {
                files.push(p);
            }
        }
        files.sort();
    } else {
        files.push(path.to_path_buf());
    }
    let mut sources = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| LoadError::Io {
            path: f.clone(),
            source,
        })?;
        sources.push((f.display().to_string(), text));
    }
    from_sources(sources.iter().map(|(n, t)| (n.as_str(), t.as_str())))
}

/// Build a set from named YAML texts; reports every error, including duplicate names and an
/// empty set (a gate with no policies would silently gate nothing).
pub fn from_sources<'a>(
    sources: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<PolicySet, LoadError> {
    let mut policies: Vec<Policy> = Vec::new();
    let mut errors = Vec::new();
    let mut names = Vec::new();
    for (file, text) in sources {
        names.push(file.to_string());
        let (ps, mut es) = parse_partial(file, text);
        errors.append(&mut es);
        for p in ps {
            if let Some(first) = policies.iter().find(|q| q.name() == p.name()) {
                errors.push(PolicyError {
                    file: p.file.clone(),
                    line: p.name_line,
                    column: None,
                    field: "metadata.name".into(),
                    message: format!(
                        "policy `{}` is already defined at {}:{}: names must be unique",
                        p.name(),
                        first.file,
                        first.name_line
                    ),
                });
            } else {
                policies.push(p);
            }
        }
    }
    if errors.is_empty() && policies.is_empty() {
        errors.push(PolicyError {
            file: if names.is_empty() {
                "(no files)".into()
            } else {
                names.join(", ")
            },
            line: 1,
            column: None,
            field: ".".into(),
            message: "no GatePolicy documents found: a gate without policies would gate nothing"
                .into(),
        });
    }
    if errors.is_empty() {
        Ok(PolicySet { policies })
    } else {
        Err(LoadError::Invalid(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "apiVersion: etcdguard.dev/v1alpha1
kind: GatePolicy
metadata:
  name: p1
spec:
  mode: enforce
  match:
    resources:
    - apiGroups: [a.example.com]
      kinds: [Thing]
      paths: [/spec/version]
    - apiGroups: [b.example.com]
      kinds: [Other]
  require:
    snapshotMaxAge: 3h
";

    #[test]
    fn splits_documents_and_keeps_lines() {
        let text = format!(
            "# header\n---\n{GOOD}---\n{}",
            GOOD.replace("name: p1", "name: p2")
        );
        let ps = parse_str("f.yaml", &text).unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].line, 3);
        assert_eq!(ps[1].line, 3 + GOOD.lines().count() + 1);
    }

    #[test]
    fn locate_finds_indexed_fields() {
        let path = [
            PathPart::Key("spec"),
            PathPart::Key("match"),
            PathPart::Key("resources"),
            PathPart::Index(1),
            PathPart::Key("kinds"),
        ];
        // Line 13 (0-based 12) holds the second rule's kinds.
        assert_eq!(locate(GOOD, &path), 12);
        let path = [
            PathPart::Key("spec"),
            PathPart::Key("require"),
            PathPart::Key("snapshotMaxAge"),
        ];
        assert_eq!(locate(GOOD, &path), 14);
    }

    #[test]
    fn yaml_error_lines_are_file_relative() {
        let bad = GOOD
            .replace("mode: enforce", "mode: enforc")
            .replace("name: p1", "name: p2");
        let text = format!("{GOOD}---\n{bad}");
        let errs = parse_str("f.yaml", &text).unwrap_err();
        assert_eq!(errs.len(), 1);
        let e = &errs[0];
        assert_eq!(e.field, "spec.mode");
        assert_eq!(e.line, GOOD.lines().count() + 1 + 6, "{e}");
        assert!(e.message.contains("enforc"), "{e}");
    }

    #[test]
    fn syntax_errors_in_later_documents_name_file_lines_in_the_message_too() {
        let text = format!("{GOOD}---\napiVersion: etcdguard.dev/v1alpha1\nmetadata: {{name: b\n");
        let errs = parse_str("f.yaml", &text).unwrap_err();
        assert_eq!(errs.len(), 1);
        let n = GOOD.lines().count();
        assert_eq!(errs[0].line, n + 4, "{}", errs[0]);
        assert!(
            errs[0]
                .message
                .contains(&format!("at line {} column 11", n + 3)),
            "{}",
            errs[0]
        );
    }
}
