//! Where backups live: a local directory or an S3 prefix. Read-only by construction: the S3
//! side only issues LIST, HEAD and GET, and a request interceptor refuses anything else and
//! records every request (method + path) in a [`RequestLog`].

use super::cache::ObjectId;
use super::layout::{Ignored, ObjectInfo};
use super::ranged::{self, ObjectReader, RangedReads};
use super::s3_error::{classify, S3Failure, Target};
use crate::snapshot::{verify_reader, SnapshotReport, VerifyOptions};
use aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_s3::config::{ConfigBag, Intercept, Region, RuntimeComponents};
use aws_sdk_s3::error::ProvideErrorMetadata;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A parsed `--store` location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum StoreUrl {
    /// A local directory (`file:///dir` or a bare path).
    Local { path: PathBuf },
    /// An S3 prefix (`s3://bucket/prefix`); `prefix` is empty or ends with `/`.
    S3 { bucket: String, prefix: String },
}

impl StoreUrl {
    /// Parse `s3://bucket[/prefix]`, `file:///dir` or a bare path.
    pub fn parse(s: &str) -> Result<StoreUrl, StoreError> {
        let bad = |reason: &str| StoreError::InvalidUrl {
            url: s.to_string(),
            reason: reason.to_string(),
        };
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad(
                    "expected s3://BUCKET[/PREFIX]: the bucket name is empty",
                ));
            }
            let prefix = prefix.trim_matches('/');
            let prefix = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            return Ok(StoreUrl::S3 {
                bucket: bucket.to_string(),
                prefix,
            });
        }
        if let Some(path) = s.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(bad("expected file:///ABSOLUTE/PATH"));
            }
            return Ok(StoreUrl::Local { path: path.into() });
        }
        if s.contains("://") {
            return Err(bad(
                "unsupported scheme: expected s3://BUCKET/PREFIX, file:///DIR or a path",
            ));
        }
        if s.is_empty() {
            return Err(bad("empty store location"));
        }
        Ok(StoreUrl::Local { path: s.into() })
    }
}

impl std::fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreUrl::Local { path } => write!(f, "{}", path.display()),
            StoreUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// Failures reading a store. Every message is one line that names the store (or key) and
/// what went wrong, without SDK debug text.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid store location {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("store directory {path} does not exist: check the --store path")]
    NoDirectory { path: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{target}: {op}: {failure}{}", access_hint(op, failure))]
    S3 {
        op: &'static str,
        target: String,
        failure: S3Failure,
    },
    #[error("{key} does not exist")]
    NotFound { key: String },
    #[error("cannot verify {key}: {reason}")]
    Verify { key: String, reason: String },
    #[error("{store} holds several backup series ({}): pass --series NAME to pick one", .series.join(", "))]
    SeveralSeries { store: String, series: Vec<String> },
    #[error("{store}: not read within the overall deadline of {} (--deadline)", humantime::format_duration(*.deadline))]
    Deadline { store: String, deadline: Duration },
    #[error("{store} holds no backup named {name:?}{}", .newest.as_ref().map(|n| format!(" (the newest is {n:?})")).unwrap_or_default())]
    NoSuchBackup {
        store: String,
        name: String,
        newest: Option<String>,
    },
    #[error("{store} holds no backup (`etcdguard status --store {store}` says what it holds)")]
    NoBackup { store: String },
}

impl StoreError {
    /// What went wrong, without the store or key it happened to (for a backup's reason,
    /// where the backup is named already): `access denied (403 AccessDenied)`.
    pub fn brief(&self) -> String {
        match self {
            StoreError::S3 { failure, .. } => failure.to_string(),
            other => other.to_string(),
        }
    }
}

/// What an access denial lacks, by operation.
fn access_hint(op: &str, failure: &S3Failure) -> &'static str {
    match (failure, op) {
        (S3Failure::AccessDenied, "LIST") => ": the credentials lack s3:ListBucket on the bucket",
        (S3Failure::AccessDenied, _) => ": the credentials lack s3:GetObject on the store",
        _ => "",
    }
}

/// One recorded S3 request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedRequest {
    /// HTTP method (`GET`, `HEAD`, …).
    pub method: String,
    /// Path and query of the request URI.
    pub path: String,
    /// `Range` header (ranged GETs of a large object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
    /// `If-Match` header (the ETag a ranged GET is pinned to).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_match: Option<String>,
}

/// Shared, append-only log of every S3 request sent (each retry attempt counts). One log per
/// opened store, which lives for one inspection (`serve` opens its stores anew each refresh),
/// so it is bounded by one reading's requests; what a process keeps across readings are the
/// counters of [`super::ReadStats`].
#[derive(Debug, Clone, Default)]
pub struct RequestLog(Arc<Mutex<Vec<RecordedRequest>>>);

impl RequestLog {
    /// A copy of every request recorded so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.0.lock().map(|v| v.clone()).unwrap_or_default()
    }
    /// Number of requests recorded so far.
    pub fn len(&self) -> usize {
        self.0.lock().map(|v| v.len()).unwrap_or(0)
    }
    /// No request was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn push(&self, r: RecordedRequest) {
        if let Ok(mut v) = self.0.lock() {
            v.push(r);
        }
    }
}

/// aws-sdk interceptor: records every request and refuses any method other than GET/HEAD
/// (LIST is a GET), so the tool cannot write to a bucket even by mistake.
#[derive(Debug)]
struct ReadOnlyRecorder {
    log: RequestLog,
}

impl Intercept for ReadOnlyRecorder {
    fn name(&self) -> &'static str {
        "etcdguard-read-only-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), aws_sdk_s3::error::BoxError> {
        let req = context.request();
        let method = req.method().to_string();
        let uri = req.uri();
        let path = match uri.find("://") {
            Some(i) => {
                let after = &uri[i + 3..];
                after.find('/').map_or("/", |j| &after[j..]).to_string()
            }
            None => uri.to_string(),
        };
        let header = |name| req.headers().get(name).map(str::to_string);
        self.log.push(RecordedRequest {
            method: method.clone(),
            path,
            range: header("range"),
            if_match: header("if-match"),
        });
        if method != "GET" && method != "HEAD" {
            return Err(format!("etcdguard is read-only: refusing to send {method}").into());
        }
        Ok(())
    }
}

/// S3 client settings (from `--s3-*` flags).
#[derive(Debug, Clone)]
pub struct S3Options {
    /// Endpoint for S3-compatible servers (Ceph RGW, MinIO, moto). `AWS_ENDPOINT_URL` is
    /// honoured when this is `None`.
    pub endpoint: Option<String>,
    /// Path-style addressing (`http://host/bucket/key`).
    pub path_style: bool,
    /// Region; when neither this nor the AWS chain gives one, `us-east-1`.
    pub region: Option<String>,
    /// Timeout of one operation including retries.
    pub operation_timeout: Duration,
    /// Timeout of one attempt.
    pub attempt_timeout: Duration,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Attempts per operation (1 = no retry).
    pub max_attempts: u32,
    /// How large objects are read (parallel ranged GETs).
    pub reads: RangedReads,
}

impl Default for S3Options {
    fn default() -> Self {
        S3Options {
            endpoint: None,
            path_style: false,
            region: None,
            operation_timeout: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_attempts: 3,
            reads: RangedReads::default(),
        }
    }
}

/// A store opened for reading.
#[derive(Debug, Clone)]
pub enum Backend {
    /// Local directory.
    Local { root: PathBuf },
    /// S3 prefix.
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        prefix: String,
        log: RequestLog,
        ctx: S3Context,
    },
}

/// A listing: objects (keys relative to the store root) and, for delimiter listings, the
/// folder names (`name/`) directly under the root.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub objects: Vec<ObjectInfo>,
    pub folders: Vec<String>,
    /// Entries of a local store that are not regular files or folders (FIFOs, sockets,
    /// devices, dangling or looping symbolic links), with what they are: never objects.
    pub special: Vec<super::layout::Ignored>,
}

/// Connection details kept for error messages, and how objects are read.
#[derive(Debug, Clone)]
pub struct S3Context {
    /// Part size and parts in flight of large object reads.
    pub reads: RangedReads,
    /// `--s3-endpoint` / `AWS_ENDPOINT_URL`, `None` for AWS S3.
    pub endpoint: Option<String>,
    /// The operation timeout.
    pub timeout: Duration,
}

pub(crate) fn s3_err<E>(
    op: &'static str,
    target: String,
    bucket: &str,
    ctx: &S3Context,
    e: aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let to = Target {
        bucket,
        endpoint: ctx.endpoint.as_deref(),
        timeout: ctx.timeout,
    };
    StoreError::S3 {
        op,
        target,
        failure: classify(&e, &to),
    }
}

/// The instance metadata service (IMDS) is the last resort of the AWS region and credential
/// chains; off EC2 nothing answers there. One attempt of at most a second per phase instead of
/// the SDK's four (a machine without IMDS then learns "no AWS credentials found" at once,
/// never after a hang). `AWS_EC2_METADATA_DISABLED=true` still skips it entirely.
fn imds_client() -> aws_config::imds::Client {
    aws_config::imds::Client::builder()
        .max_attempts(1)
        .connect_timeout(Duration::from_secs(1))
        .read_timeout(Duration::from_secs(1))
        .build()
}

/// The SDK's default region chain (environment, profile, IMDS) with the quick IMDS client.
fn region_chain() -> aws_config::meta::region::RegionProviderChain {
    aws_config::meta::region::RegionProviderChain::first_try(
        aws_config::environment::region::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(aws_config::profile::region::ProfileFileRegionProvider::builder().build())
    .or_else(
        aws_config::imds::region::ImdsRegionProvider::builder()
            .imds_client(imds_client())
            .build(),
    )
}

/// The AWS configuration for `opts` (region, credentials chain, timeouts, retries), loaded once
/// per process and kept: every store opened with the same options shares it, and with it one
/// credentials cache, so web identity (IRSA), SSO or instance-role credentials are fetched once
/// per lifetime, not once per store and refresh.
async fn sdk_config(opts: &S3Options) -> aws_config::SdkConfig {
    static LOADED: Mutex<Vec<(String, aws_config::SdkConfig)>> = Mutex::new(Vec::new());
    let key = format!("{opts:?}");
    let known = |loaded: &[(String, aws_config::SdkConfig)]| {
        loaded
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, c)| c.clone())
    };
    let lock = || LOADED.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = known(&lock()) {
        return c;
    }
    use aws_sdk_s3::config::retry::RetryConfig;
    use aws_sdk_s3::config::timeout::TimeoutConfig;
    use aws_sdk_s3::config::BehaviorVersion;
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(opts.connect_timeout)
        .operation_attempt_timeout(opts.attempt_timeout)
        .operation_timeout(opts.operation_timeout)
        .build();
    let region = match &opts.region {
        Some(r) => Region::new(r.clone()),
        None => region_chain()
            .region()
            .await
            .unwrap_or(Region::new("us-east-1")),
    };
    let credentials = aws_config::default_provider::credentials::Builder::default()
        .region(region.clone())
        .imds_client(imds_client())
        .build()
        .await;
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(region)
        .credentials_provider(credentials)
        .timeout_config(timeouts)
        .retry_config(RetryConfig::standard().with_max_attempts(opts.max_attempts.max(1)));
    if let Some(ep) = &opts.endpoint {
        loader = loader.endpoint_url(ep);
    }
    let shared = loader.load().await;
    let mut loaded = lock();
    match known(&loaded) {
        Some(c) => c,
        None => {
            loaded.push((key, shared.clone()));
            shared
        }
    }
}

impl Backend {
    /// Open a store. For S3 this builds the client from the standard AWS chain (credentials,
    /// region, `AWS_ENDPOINT_URL`) plus `opts`; no request to S3 is sent yet (the region may
    /// be asked of IMDS).
    pub async fn open(url: &StoreUrl, opts: &S3Options) -> Result<Backend, StoreError> {
        match url {
            StoreUrl::Local { path } => {
                let meta = std::fs::metadata(path).map_err(|source| {
                    if source.kind() == std::io::ErrorKind::NotFound {
                        StoreError::NoDirectory {
                            path: path.display().to_string(),
                        }
                    } else {
                        StoreError::Io {
                            path: path.display().to_string(),
                            source,
                        }
                    }
                })?;
                if !meta.is_dir() {
                    return Err(StoreError::Io {
                        path: path.display().to_string(),
                        source: std::io::Error::other("expected a directory"),
                    });
                }
                Ok(Backend::Local { root: path.clone() })
            }
            StoreUrl::S3 { bucket, prefix } => {
                use aws_sdk_s3::config::ResponseChecksumValidation;
                let shared = sdk_config(opts).await;
                let log = RequestLog::default();
                let b = aws_sdk_s3::config::Builder::from(&shared)
                    .force_path_style(opts.path_style)
                    .response_checksum_validation(ResponseChecksumValidation::WhenRequired)
                    .interceptor(ReadOnlyRecorder { log: log.clone() });
                Ok(Backend::S3 {
                    client: aws_sdk_s3::Client::from_conf(b.build()),
                    bucket: bucket.clone(),
                    prefix: prefix.clone(),
                    log,
                    ctx: S3Context {
                        reads: opts.reads,
                        endpoint: shared.endpoint_url().map(str::to_string),
                        timeout: opts.operation_timeout,
                    },
                })
            }
        }
    }

    /// The same store rooted at `folder` (a name without `/`): one backup series below it.
    /// Shares the S3 client and request log; no request is sent.
    pub fn sub(&self, folder: &str) -> Backend {
        match self {
            Backend::Local { root } => Backend::Local {
                root: root.join(folder),
            },
            Backend::S3 {
                client,
                bucket,
                prefix,
                log,
                ctx,
            } => Backend::S3 {
                client: client.clone(),
                bucket: bucket.clone(),
                prefix: format!("{prefix}{folder}/"),
                log: log.clone(),
                ctx: ctx.clone(),
            },
        }
    }

    /// The identity of a listed object (issue #21): where it is, its size, and its ETag (S3)
    /// or mtime (local). `None` when the listing gave no ETag or mtime.
    pub fn object_id(&self, o: &ObjectInfo) -> Option<ObjectId> {
        let (location, version) = match self {
            Backend::Local { root } => (
                root.join(&o.key).display().to_string(),
                o.last_modified?.timestamp_nanos_opt()?.to_string(),
            ),
            Backend::S3 {
                bucket,
                prefix,
                ctx,
                ..
            } => (
                format!(
                    "{} s3://{bucket}/{prefix}{}",
                    ctx.endpoint.as_deref().unwrap_or("aws"),
                    o.key
                ),
                o.etag.clone()?,
            ),
        };
        Some(ObjectId {
            location,
            size: o.size,
            version,
        })
    }

    /// The request log (S3 only; `None` for a local directory).
    pub fn request_log(&self) -> Option<&RequestLog> {
        match self {
            Backend::S3 { log, .. } => Some(log),
            Backend::Local { .. } => None,
        }
    }

    /// List objects after `start_after` (relative key, exclusive). With `delimiter`, only the
    /// top level: direct objects plus folder names.
    pub async fn list(
        &self,
        start_after: Option<&str>,
        delimiter: bool,
    ) -> Result<Listing, StoreError> {
        match self {
            Backend::Local { root } => {
                let root = root.clone();
                let start = start_after.map(str::to_string);
                tokio::task::spawn_blocking(move || list_local(&root, start.as_deref(), delimiter))
                    .await
                    .map_err(|e| StoreError::Io {
                        path: "local listing".into(),
                        source: std::io::Error::other(e.to_string()),
                    })?
            }
            Backend::S3 {
                client,
                bucket,
                prefix,
                ctx,
                ..
            } => {
                let mut out = Listing::default();
                let mut token: Option<String> = None;
                loop {
                    let mut req = client
                        .list_objects_v2()
                        .bucket(bucket)
                        .prefix(prefix.clone());
                    if delimiter {
                        req = req.delimiter("/");
                    }
                    if let Some(t) = &token {
                        req = req.continuation_token(t);
                    } else if let Some(s) = start_after {
                        req = req.start_after(format!("{prefix}{s}"));
                    }
                    let page = req.send().await.map_err(|e| {
                        s3_err("LIST", format!("s3://{bucket}/{prefix}"), bucket, ctx, e)
                    })?;
                    for o in page.contents() {
                        let Some(key) = o.key().and_then(|k| k.strip_prefix(prefix.as_str()))
                        else {
                            continue;
                        };
                        let last_modified = o.last_modified().and_then(|t| {
                            DateTime::<Utc>::from_timestamp(t.secs(), t.subsec_nanos())
                        });
                        out.objects.push(ObjectInfo {
                            key: key.to_string(),
                            size: o.size().and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
                            last_modified,
                            etag: o.e_tag().map(str::to_string),
                        });
                    }
                    for p in page.common_prefixes() {
                        if let Some(f) = p.prefix().and_then(|k| k.strip_prefix(prefix.as_str())) {
                            out.folders.push(f.to_string());
                        }
                    }
                    match (page.is_truncated(), page.next_continuation_token()) {
                        (Some(true), Some(t)) => token = Some(t.to_string()),
                        _ => break,
                    }
                }
                Ok(out)
            }
        }
    }

    /// Read a small object completely (control files, meta), refusing more than `limit`
    /// bytes. `Ok(None)` when it does not exist.
    pub async fn read_small(&self, key: &str, limit: u64) -> Result<Option<Vec<u8>>, StoreError> {
        match self {
            Backend::Local { root } => {
                let path = root.join(key);
                match std::fs::metadata(&path) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(source) => {
                        return Err(StoreError::Io {
                            path: path.display().to_string(),
                            source,
                        })
                    }
                    Ok(m) if !m.is_file() => {
                        regular_file(&path)?;
                    }
                    Ok(m) if m.len() > limit => {
                        return Err(StoreError::Io {
                            path: path.display().to_string(),
                            source: std::io::Error::other(format!(
                                "{} bytes, expected at most {limit}",
                                m.len()
                            )),
                        })
                    }
                    Ok(_) => {}
                }
                std::fs::read(&path)
                    .map(Some)
                    .map_err(|source| StoreError::Io {
                        path: path.display().to_string(),
                        source,
                    })
            }
            Backend::S3 {
                client,
                bucket,
                prefix,
                ctx,
                ..
            } => {
                let full = format!("{prefix}{key}");
                let target = format!("s3://{bucket}/{full}");
                let out = match client.get_object().bucket(bucket).key(&full).send().await {
                    Ok(o) => o,
                    Err(e) => {
                        if e.as_service_error().is_some_and(|se| se.is_no_such_key()) {
                            return Ok(None);
                        }
                        return Err(s3_err("GET", target, bucket, ctx, e));
                    }
                };
                let len = out
                    .content_length()
                    .and_then(|l| u64::try_from(l).ok())
                    .unwrap_or(0);
                if len > limit {
                    return Err(StoreError::S3 {
                        op: "GET",
                        target,
                        failure: S3Failure::Other(format!("{len} bytes, expected at most {limit}")),
                    });
                }
                let bytes = out.body.collect().await.map_err(|e| StoreError::S3 {
                    op: "GET",
                    target,
                    failure: S3Failure::Other(e.to_string()),
                })?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
        }
    }

    /// Open one object for reading (a local file, or an S3 object read by parallel ranged
    /// GETs pinned to its ETag, see [`ranged`]). `Err(NotFound)` when it does not exist. Read
    /// it on a blocking thread.
    pub async fn open_object(&self, key: &str) -> Result<ObjectReader, StoreError> {
        match self {
            Backend::Local { root } => {
                let path = root.join(key);
                if matches!(std::fs::symlink_metadata(&path), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
                {
                    return Err(StoreError::NotFound {
                        key: key.to_string(),
                    });
                }
                regular_file(&path)?;
                let file = std::fs::File::open(&path).map_err(|source| StoreError::Io {
                    path: path.display().to_string(),
                    source,
                })?;
                let size = file.metadata().map(|m| m.len()).unwrap_or(0);
                Ok(ObjectReader::new(
                    Box::new(std::io::BufReader::new(file)),
                    size,
                ))
            }
            Backend::S3 {
                client,
                bucket,
                prefix,
                ctx,
                ..
            } => ranged::open(client, bucket, &format!("{prefix}{key}"), ctx)
                .await
                .map_err(|e| match e {
                    StoreError::S3 {
                        failure: S3Failure::Service { ref code, .. },
                        ..
                    } if code == "NoSuchKey" => StoreError::NotFound {
                        key: key.to_string(),
                    },
                    e => e,
                }),
        }
    }

    /// Stream one object through the snapshot verifier (never saved to disk). Returns the
    /// report and the object size.
    pub async fn verify(
        &self,
        key: &str,
        opts: &VerifyOptions,
    ) -> Result<(SnapshotReport, u64), StoreError> {
        let mut object = self.open_object(key).await?;
        let size = object.size();
        let (opts, name) = (opts.clone(), key.to_string());
        let verified = tokio::task::spawn_blocking(move || {
            let r = verify_reader(&mut object, &name, &opts);
            (r, object.failure())
        })
        .await;
        let reason = match verified {
            Ok((Ok(report), _)) => return Ok((report, size)),
            // The store's own error (a part not fetched, the object replaced) says it best.
            Ok((Err(_), Some(failure))) => return Err(failure),
            Ok((Err(e), None)) => e.to_string(),
            Err(e) => format!("verifier task failed: {e}"),
        };
        Err(StoreError::Verify {
            key: key.to_string(),
            reason,
        })
    }
}

fn list_local(
    root: &Path,
    start_after: Option<&str>,
    delimiter: bool,
) -> Result<Listing, StoreError> {
    use std::os::unix::fs::MetadataExt;
    let io = |path: &Path, source| StoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let mut out = Listing::default();
    // Folders entered, by device and inode: a symbolic link back up the tree is not followed
    // twice (loop protection).
    let mut entered = std::collections::HashSet::new();
    if let Ok(m) = std::fs::metadata(root) {
        entered.insert((m.dev(), m.ino()));
    }
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io(&dir, e))?;
            let Ok(name) = entry.file_name().into_string() else {
                continue; // non-UTF-8 names cannot be layout names
            };
            let key = format!("{rel}{name}");
            let path = entry.path();
            // Symbolic links are followed: a mounted Secret or a copied store may use them.
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    let what = if e.raw_os_error() == Some(40) {
                        "a symbolic link loop".to_string()
                    } else if e.kind() == std::io::ErrorKind::NotFound {
                        "a dangling symbolic link".to_string()
                    } else {
                        format!("unreadable ({e})")
                    };
                    out.special.push(Ignored {
                        key,
                        reason: format!("{what}, not a file"),
                    });
                    continue;
                }
            };
            let ft = meta.file_type();
            if ft.is_dir() {
                if delimiter {
                    out.folders.push(format!("{key}/"));
                } else if entered.insert((meta.dev(), meta.ino())) {
                    stack.push((path, format!("{key}/")));
                } else {
                    out.special.push(Ignored {
                        key: format!("{key}/"),
                        reason: "a symbolic link to a folder already listed (a loop), not followed"
                            .to_string(),
                    });
                }
            } else if ft.is_file() {
                out.objects.push(ObjectInfo {
                    key,
                    size: meta.len(),
                    last_modified: meta.modified().ok().map(DateTime::<Utc>::from),
                    etag: None,
                });
            } else {
                out.special.push(Ignored {
                    key,
                    reason: format!("{}, not a regular file", special_kind(&ft)),
                });
            }
        }
    }
    out.objects.sort_by(|a, b| a.key.cmp(&b.key));
    out.folders.sort();
    out.special.sort_by(|a, b| a.key.cmp(&b.key));
    if let Some(s) = start_after {
        out.objects.retain(|o| o.key.as_str() > s);
        out.folders.retain(|f| f.as_str() > s);
        out.special.retain(|i| i.key.as_str() > s);
    }
    Ok(out)
}

/// What a file that is neither a regular file nor a folder is.
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_block_device() || ft.is_char_device() {
        "a device"
    } else {
        "a special file"
    }
}

/// A local file about to be read must be a regular file (reading a FIFO would block).
pub(crate) fn regular_file(path: &Path) -> Result<std::fs::Metadata, StoreError> {
    let meta = std::fs::metadata(path).map_err(|source| StoreError::Io {
        path: path.display().to_string(),
        source,
    })?;
    if meta.is_file() {
        Ok(meta)
    } else {
        Err(StoreError::Io {
            path: path.display().to_string(),
            source: std::io::Error::other(format!(
                "{}, not a regular file",
                special_kind(&meta.file_type())
            )),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_store_urls() {
        assert_eq!(
            StoreUrl::parse("s3://b/c.example.com/backups/etcd/main/").unwrap(),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: "c.example.com/backups/etcd/main/".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("s3://b").unwrap(),
            StoreUrl::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            StoreUrl::parse("file:///tmp/x").unwrap(),
            StoreUrl::Local {
                path: "/tmp/x".into()
            }
        );
        assert_eq!(
            StoreUrl::parse("rel/dir").unwrap(),
            StoreUrl::Local {
                path: "rel/dir".into()
            }
        );
        for bad in ["s3://", "s3:///x", "gs://b/x", "file://rel", ""] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_listing_is_sorted_and_honours_start_after() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::write(d.path().join("a/b/c"), b"1").unwrap();
        std::fs::write(d.path().join("z"), b"22").unwrap();
        std::fs::write(d.path().join("a/x"), b"").unwrap();
        let l = list_local(d.path(), None, false).unwrap();
        let keys: Vec<_> = l.objects.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["a/b/c", "a/x", "z"]);
        let l = list_local(d.path(), Some("a/b/c"), false).unwrap();
        assert_eq!(l.objects.len(), 2);
        let l = list_local(d.path(), None, true).unwrap();
        assert_eq!(l.folders, ["a/"]);
        assert_eq!(l.objects.len(), 1);
    }
}
