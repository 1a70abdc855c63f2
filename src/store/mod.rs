//! Backup stores (local directory, S3) and their layouts (issue #3).
