// The system allocator (glibc). mimalloc was tried for the webhook (about 15 % less CPU per
// review) but kept freed memory around, so `verify` of a 0.6 GiB snapshot went from 51 to 93 MiB
// peak RSS, over its 64 MiB goal (docs/benchmarks.md).
fn main() -> std::process::ExitCode {
    etcdguard::cli::main()
}
