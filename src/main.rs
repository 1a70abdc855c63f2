fn main() -> std::process::ExitCode {
    etcdguard::cli::main()
}

// The allocator: mimalloc (its v2 line), with two options set before the first allocation.
//
// - Why not glibc malloc: `etcdguard serve` makes ~190 small allocations per admission review
//   on two worker threads. glibc keeps 7 freed chunks per size class in a thread cache; the rest
//   go through the arena (locks, consolidation), and under load that cost about 5 µs of the
//   ~50 µs of CPU per review (docs/benchmarks.md, "allocator").
// - Why these options: with its defaults mimalloc keeps freed memory committed for a while, and
//   `verify` of a 0.6 GiB snapshot (1 MiB read buffers, page summaries) peaked at 75-93 MiB,
//   over its 64 MiB goal. Purging freed memory at once (`purge_delay = 0`) and committing arena
//   memory on demand (`arena_eager_commit = 0`) bring it back to glibc's 56-62 MiB with the same
//   speed. Both must be set before mimalloc reserves its first arena, which happens at the first
//   allocation, before `main` runs: hence a constructor in `.init_array`, which the loader runs
//   before Rust's runtime starts (setting them at the top of `main` left verify at 65 MiB).
//   Environment variables (`MIMALLOC_PURGE_DELAY`, ...) do not override these two.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_arena_eager_commit` in mimalloc v2's `mi_option_t` (include/mimalloc.h).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
/// `mi_option_purge_delay` in mimalloc v2's `mi_option_t`.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
// libmimalloc-sys names neither; both sit at fixed places next to options it does name
// (`..., arena_eager_commit, purge_decommits, allow_large_os_pages, ...` and
// `..., eager_commit_delay, purge_delay, ...`), so a renumbered enum fails the build.
const _: () =
    assert!(MI_OPTION_ARENA_EAGER_COMMIT + 2 == libmimalloc_sys::mi_option_large_os_pages);
const _: () = assert!(MI_OPTION_PURGE_DELAY == libmimalloc_sys::mi_option_eager_commit_delay + 1);

extern "C" fn set_allocator_options() {
    // SAFETY: `mi_option_set` only stores a value in mimalloc's static option table; it
    // allocates nothing and may be called before mimalloc is initialised.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

// ELF's constructor list (Linux, the only target etcdguard ships for).
#[used]
#[unsafe(link_section = ".init_array")]
static SET_ALLOCATOR_OPTIONS: extern "C" fn() = set_allocator_options;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocator_options_are_set_before_main() {
        // The test harness has its own `main`; the constructor ran before it all the same.
        // SAFETY: reading an option has no precondition.
        let (eager, purge) = unsafe {
            (
                libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
            )
        };
        assert_eq!((eager, purge), (0, 0), "arena_eager_commit, purge_delay");
    }

    #[test]
    fn allocations_come_from_mimalloc() {
        let b = Box::new([7u8; 64]);
        // SAFETY: any pointer may be asked about.
        let ours = unsafe { libmimalloc_sys::mi_is_in_heap_region(b.as_ptr().cast()) };
        assert!(ours, "a Box was not allocated by mimalloc");
    }
}
