//! Lifecycle rule parsing (AWS JSON, S3 XML, Terraform plan, CloudFormation, Kubernetes
//! objects) on arbitrary bytes: errors are fine, panics are not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = etcdguard::lifecycle::parse(data, "fuzz", Some("kops-state"));
    let _ = etcdguard::lifecycle::parse(data, "fuzz", None);
});
