//! Backup stores (local directory, S3) and their layouts (issue #3).
pub mod s3_lifecycle;
