//! What a proposed change does: kops dry-run, Terraform plans, Kubernetes object diffs (issue #5).
