//! S3 lifecycle rules: a pure model and an evaluator against a backup layout (issue #4).
