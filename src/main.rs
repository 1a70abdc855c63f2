// mimalloc instead of glibc malloc: each admission review builds and drops a JSON tree of a few
// hundred small allocations, where glibc's malloc/free/consolidate took about a fifth of the
// webhook's CPU time (docs/benchmarks.md, webhook).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    etcdguard::cli::main()
}
