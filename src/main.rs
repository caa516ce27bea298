fn main() -> std::process::ExitCode {
    flotilla::kube::watch_cache::set_return_freed_memory(return_freed_memory);
    flotilla::cli::main()
}

/// glibc's malloc_trim: the free memory of every arena goes back to the system (see
/// `set_return_freed_memory`).
fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only hands free pages of the allocator's own arenas back to the
    // system; it takes the arenas' locks itself and touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}
