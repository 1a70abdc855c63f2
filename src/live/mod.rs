//! Facts from a live etcd cluster (issue #5).
