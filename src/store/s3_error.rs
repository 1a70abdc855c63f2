//! Why an S3 request got no usable answer, in one line an operator can act on (issue #19).
//!
//! The SDK's own error text (`DisplayErrorContext`) appends the whole error as `Debug`: raw
//! responses, headers, nested structs, about 1,000 characters for a missing credential. Here
//! each failure becomes one [`S3Failure`] whose `Display` is a short sentence without any of
//! that: a missing bucket, access denied, credentials rejected or missing, a timeout, a DNS
//! failure and a refused connection each have their own.

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use std::error::Error as StdError;
use std::time::Duration;

/// Longest piece of text taken from an error chain or an S3 error message.
const MAX_DETAIL: usize = 120;

/// What went wrong with one S3 request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum S3Failure {
    /// `NoSuchBucket`.
    #[error("bucket {bucket:?} does not exist (NoSuchBucket)")]
    NoSuchBucket { bucket: String },
    /// HTTP 403 `AccessDenied`: the credentials are valid but not allowed.
    #[error("access denied (403 AccessDenied)")]
    AccessDenied,
    /// The credentials were rejected (`InvalidAccessKeyId`, `SignatureDoesNotMatch`,
    /// `ExpiredToken`, `InvalidToken`).
    #[error("credentials rejected ({code}): check the AWS credentials (AWS_PROFILE, AWS_ACCESS_KEY_ID, the pod's role)")]
    BadCredentials { code: String },
    /// The AWS credential chain found no credentials.
    #[error("no AWS credentials found (set AWS_PROFILE or AWS_ACCESS_KEY_ID, or use an IAM role)")]
    NoCredentials,
    /// No answer in time.
    #[error("no answer within {} (timed out; --s3-timeout)", humantime::format_duration(*.0))]
    Timeout(Duration),
    /// The endpoint's host name does not resolve.
    #[error(
        "DNS failure: cannot resolve the host of {} (check --s3-endpoint and the region)",
        at(endpoint)
    )]
    Dns { endpoint: Option<String> },
    /// Nothing listens at the endpoint.
    #[error("connection refused by {}", at(endpoint))]
    Refused { endpoint: Option<String> },
    /// `PreconditionFailed` to an `If-Match` GET: the object is no longer the version whose
    /// first part was read.
    #[error("the object was replaced while it was read (412 PreconditionFailed on If-Match); the next read sees the new one")]
    Replaced,
    /// Any other answer with an S3 error code.
    #[error("{code} (HTTP {status}): {message}")]
    Service {
        status: u16,
        code: String,
        message: String,
    },
    /// Anything else, as the first few causes of the error chain (no `Debug` text).
    #[error("{0}")]
    Other(String),
}

fn at(endpoint: &Option<String>) -> &str {
    endpoint.as_deref().unwrap_or("the S3 endpoint")
}

/// Where a request went and how long it could take, for the messages.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub bucket: &'a str,
    /// The endpoint URL, when known (`None`: AWS S3 itself, or not known).
    pub endpoint: Option<&'a str>,
    /// The operation timeout.
    pub timeout: Duration,
}

fn clip(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(MAX_DETAIL) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// The error's causes joined with `: `, each cause's own text only once (wrappers often repeat
/// their source's text), clipped to one short line.
fn chain_text(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    clip(&parts.join(": "))
}

fn causes<'a>(
    e: &'a (dyn StdError + 'static),
) -> impl Iterator<Item = &'a (dyn StdError + 'static)> {
    std::iter::successors(Some(e), |&e| e.source())
}

/// Classify an SDK error.
pub fn classify<E>(e: &SdkError<E, HttpResponse>, to: &Target<'_>) -> S3Failure
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let endpoint = || to.endpoint.map(str::to_string);
    match e {
        SdkError::ServiceError(se) => {
            let status = se.raw().status().as_u16();
            let err = se.err();
            match err.code() {
                Some("NoSuchBucket") => S3Failure::NoSuchBucket {
                    bucket: to.bucket.to_string(),
                },
                Some("AccessDenied") => S3Failure::AccessDenied,
                Some("PreconditionFailed") => S3Failure::Replaced,
                Some(
                    c @ ("InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "ExpiredToken"
                    | "InvalidToken"),
                ) => S3Failure::BadCredentials {
                    code: c.to_string(),
                },
                Some(code) => S3Failure::Service {
                    status,
                    code: code.to_string(),
                    message: clip(err.message().unwrap_or("no message")),
                },
                // A HEAD answer has no body, so no code: the status says what it can.
                None if status == 404 => S3Failure::NoSuchBucket {
                    bucket: to.bucket.to_string(),
                },
                None if status == 403 => S3Failure::AccessDenied,
                // Unparseable answers land here too (the cause says why).
                None => S3Failure::Other(format!("HTTP {status}: {}", chain_text(err))),
            }
        }
        SdkError::TimeoutError(_) => S3Failure::Timeout(to.timeout),
        SdkError::DispatchFailure(d) => {
            let Some(source) = StdError::source(e) else {
                return S3Failure::Other(chain_text(e));
            };
            if causes(source).any(|c| c.downcast_ref::<CredentialsError>().is_some()) {
                return S3Failure::NoCredentials;
            }
            if d.is_timeout() {
                return S3Failure::Timeout(to.timeout);
            }
            // hyper-util names a failed lookup "dns error" (its ConnectError's text).
            if causes(source).any(|c| c.to_string().starts_with("dns error")) {
                return S3Failure::Dns {
                    endpoint: endpoint(),
                };
            }
            let refused = causes(source).any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
            });
            if refused {
                return S3Failure::Refused {
                    endpoint: endpoint(),
                };
            }
            S3Failure::Other(chain_text(source))
        }
        _ => S3Failure::Other(chain_text(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_one_short_line() {
        assert_eq!(clip("a\n  b"), "a b");
        let long = "x".repeat(300);
        assert_eq!(clip(&long).chars().count(), MAX_DETAIL + 1);
    }

    #[derive(Debug)]
    struct Wrap(std::io::Error);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "io error: {}", self.0)
        }
    }
    impl StdError for Wrap {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn chain_text_says_each_cause_once() {
        let e = Wrap(std::io::Error::other("connection reset"));
        // The wrapper repeats its cause's text: said once.
        assert_eq!(chain_text(&e), "io error: connection reset");
    }
}
