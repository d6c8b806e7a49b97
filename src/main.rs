//! The `sluice` binary: a thin CLI over the library.
//!
//! Exit codes: 0 ok, 1 runtime failure, 2 bad usage or bad config.

use std::process::ExitCode;

/// mimalloc: per-message records are allocated on a reader thread and freed
/// on a sink thread; glibc's malloc and free were 14% of the CPU profile of
/// the end-to-end benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's index of its `purge_delay` option (`mi_option_e` in
/// mimalloc.h, v3). A test checks it against that option's default, so an
/// upgrade that renumbers the options fails there.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Return freed memory to the OS after 100 ms instead of mimalloc's
/// 1000 ms. In the end-to-end benchmark at full speed, 1000 ms gave peak
/// RSS 67-73 MiB and 200 ms 52-59; once faster (LTO), 200 ms reached
/// 54-63.5 MiB and 100 ms 51-56 (three runs each), with CPU per message
/// the same within the VM's noise. 0 ms costs about 30% of the throughput
/// in page faults. The `MIMALLOC_PURGE_DELAY` environment variable, when
/// set, still decides.
fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mi_option_set stores an integer option; any value is valid.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 100) }
    }
}

fn main() -> ExitCode {
    tune_allocator();
    sluice::cli::main()
}

#[cfg(test)]
mod tests {
    /// The option index set at start-up is mimalloc's purge delay: its
    /// default is the documented 1000 ms (read before anything sets it).
    #[test]
    fn purge_delay_index_names_mimallocs_purge_delay() {
        // SAFETY: reads an integer option.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000);
    }
}
