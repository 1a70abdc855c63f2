//! etcdguard-webhook: the Kubernetes validating-admission protocol adapter.
//!
//! This crate knows AdmissionReview, HTTPS and health/metrics endpoints; it knows nothing about
//! etcd, backups or policies. The root crate implements [`Gate`] and `etcdguard serve` wires the
//! two together. (Skeleton: the server lands with issue #7.)
