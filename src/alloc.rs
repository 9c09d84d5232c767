//! The process's allocator: jemalloc, with the options Usher runs it with.
//!
//! jemalloc serves every allocation of the process: Rust's, and through the unprefixed
//! `malloc` it exports, SQLite's. Against glibc's malloc it took a quarter off the server's
//! CPU per hold, where both cores are busy (`BENCHMARKS.md`): the runtime threads free
//! what the writer thread allocated and the other way round, and glibc's arenas paid for
//! that in locks and consolidation.

/// jemalloc's options, read when it starts; `MALLOC_CONF` in the environment overrides
/// each option it names.
///
/// `tcache_gc_incr_bytes`: a thread's cache hands what it holds unused back to the arenas
/// every so many bytes the thread allocates. jemalloc's default, 64 KiB, is several times
/// a request here, and those collections were 2–3% of the server's instructions a hold.
/// At 1 MiB the server runs 2.3% fewer instructions a hold (`scripts/bench-ir.sh`; 4 MiB
/// saved only 0.3% more); a cache still holds at most its slots of each size.
pub const OPTIONS: &std::ffi::CStr = c"tcache_gc_incr_bytes:1048576";

/// `malloc_conf` as jemalloc declares it: a `const char *`.
#[doc(hidden)]
#[repr(transparent)]
pub struct Options(pub *const std::ffi::c_char);

// SAFETY: it points to a string literal, which lives as long as the process and is never
// written.
unsafe impl Sync for Options {}

/// Makes jemalloc the allocator of the binary that invokes it, started with [`OPTIONS`].
/// A macro, because `malloc_conf` has to be defined in the binary itself: jemalloc defines
/// a weak default of its own, so the linker would never pull a definition in from a
/// library.
#[macro_export]
macro_rules! jemalloc {
    () => {
        #[cfg(not(target_env = "msvc"))]
        #[global_allocator]
        static ALLOCATOR: ::tikv_jemallocator::Jemalloc = ::tikv_jemallocator::Jemalloc;

        #[cfg(not(target_env = "msvc"))]
        #[unsafe(export_name = "malloc_conf")]
        static MALLOC_CONF: $crate::alloc::Options = $crate::alloc::Options($crate::alloc::OPTIONS.as_ptr());
    };
}
