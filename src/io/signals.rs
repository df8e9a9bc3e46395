//! Removing temporary files when a signal ends the process: every signal whose default action
//! ends it (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGALRM, SIGUSR1/2, SIGPROF, SIGVTALRM, SIGPWR, SIGIO,
//! the real-time signals, the resource limits' SIGXCPU and SIGXFSZ, and the faults: SIGABRT from a
//! refused allocation, SIGILL, SIGFPE, SIGSYS, SIGTRAP), except the two that cannot be caught
//! (SIGKILL, SIGSTOP), SIGPIPE (ignored by the Rust runtime, so a closed pipe is an error, not a
//! death) and those someone else handles (the Rust runtime's stack-overflow handler keeps SIGSEGV
//! and SIGBUS).
//!
//! A signal handler may only call async-signal-safe functions, so it does one thing: it writes the
//! signal's number into a pipe. A watcher thread blocked on the other end of the pipe then takes
//! the registry of live temporary files (the lock [`super::atomic`] holds while it creates one, so
//! no file can be half-registered), removes every file in it, and ends the process with the same
//! signal, restored to its default action: the parent sees a process killed by SIGINT (a shell
//! reports status 130) or SIGTERM (143), as it would without the handler. The lock is never
//! released, so no new temporary file can appear in the meantime. A fault's handler does not
//! return (the faulting code cannot go on): it waits for the watcher to end the process; so does
//! SIGXFSZ's, so the write that passed the size limit never returns an error that could end the
//! process with status 1 first. If the
//! fault struck while the registry was locked, the watcher gives up on the files after a second
//! rather than hang.
//!
//! SIGKILL cannot be caught: a process killed by it leaves its temporary files behind (see
//! `docs/GUARANTEES.md` for their names).

#[cfg(unix)]
use crate::error::Error;
use crate::error::Result;

/// Installs the handlers (once per process; later calls do nothing). Only signals whose action is
/// still the default are taken: ignored ones (`nohup` ignores SIGHUP; background jobs of a
/// non-interactive shell ignore SIGINT and SIGQUIT) stay ignored, and a handler someone else
/// installed stays theirs. Does nothing on platforms other than Unix.
pub fn remove_temp_files_on_signals() -> Result<()> {
    #[cfg(unix)]
    {
        static INSTALLED: std::sync::OnceLock<std::result::Result<(), String>> =
            std::sync::OnceLock::new();
        INSTALLED
            .get_or_init(|| imp::install().map_err(|e| e.to_string()))
            .clone()
            .map_err(|e| Error::invalid(format!("cannot install the signal handlers: {e}")))
    }
    #[cfg(not(unix))]
    {
        Ok(())
    }
}

#[cfg(unix)]
mod imp {
    use std::io;
    use std::sync::atomic::{AtomicI32, Ordering};
    use std::time::Duration;

    use libc::c_int;

    /// Signals whose default action does not end the process, that cannot be caught, or that the
    /// Rust runtime ignores (SIGPIPE).
    const LEFT_ALONE: [c_int; 10] = [
        libc::SIGKILL,
        libc::SIGSTOP,
        libc::SIGCHLD,
        libc::SIGCONT,
        libc::SIGTSTP,
        libc::SIGTTIN,
        libc::SIGTTOU,
        libc::SIGURG,
        libc::SIGWINCH,
        libc::SIGPIPE,
    ];

    /// Signals raised by the running code's own call, whose handler must not return to it:
    /// faults (the code cannot go on), and SIGXFSZ, sent to the thread whose write passed the
    /// file-size limit: if its handler returned, that write would fail with EFBIG and the error
    /// path could exit with status 1 before the watcher ends the process with the signal (seen
    /// under load).
    const FAULTS: [c_int; 8] = [
        libc::SIGXFSZ,
        libc::SIGABRT,
        libc::SIGILL,
        libc::SIGFPE,
        libc::SIGSYS,
        libc::SIGTRAP,
        libc::SIGBUS,
        libc::SIGSEGV,
    ];

    /// The highest signal number: the real-time signals end the process by default too.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn last_signal() -> c_int {
        libc::SIGRTMAX()
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn last_signal() -> c_int {
        31
    }

    /// The write end of the pipe (-1 until installed).
    static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);

    /// The handler: one `write(2)` of the signal number, which is async-signal-safe. errno is
    /// saved and restored so the interrupted code does not see it change.
    extern "C" fn on_signal(sig: c_int) {
        let saved = errno::get();
        let fd = PIPE_WRITE.load(Ordering::Relaxed);
        if fd >= 0 {
            let byte = sig as u8;
            // SAFETY: writes one byte from a live stack variable to a file descriptor this module
            // owns; the result is irrelevant (a full pipe already holds a signal to act on).
            unsafe {
                libc::write(fd, (&raw const byte).cast(), 1);
            }
        }
        if FAULTS.contains(&sig) {
            // The faulting code cannot go on (nor may a write past the size limit return):
            // wait for the watcher to end the process.
            loop {
                // SAFETY: pause(2) is async-signal-safe.
                unsafe {
                    libc::pause();
                }
            }
        }
        errno::set(saved);
    }

    pub(super) fn install() -> io::Result<()> {
        let mut fds = [0 as c_int; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let [read_end, write_end] = fds;
        for (fd, flags) in [
            (read_end, 0),
            // A handler must never block: if the pipe is full, a signal is already waiting.
            (write_end, libc::O_NONBLOCK),
        ] {
            // SAFETY: fcntl on descriptors just returned by pipe(2).
            let ok = unsafe {
                libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) == 0
                    && libc::fcntl(fd, libc::F_SETFL, flags) == 0
            };
            if !ok {
                return Err(io::Error::last_os_error());
            }
        }
        std::thread::Builder::new()
            .name("wgpu-mlp signals".into())
            .spawn(move || watch(read_end))?;
        PIPE_WRITE.store(write_end, Ordering::SeqCst);

        for sig in (1..=last_signal()).filter(|s| !LEFT_ALONE.contains(s)) {
            // SAFETY: plain sigaction(2) calls with zero-initialised structs filled in as the
            // manual says; `on_signal` is async-signal-safe.
            unsafe {
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                    // Numbers the C library keeps for itself (glibc's 32 and 33) are refused.
                    continue;
                }
                if old.sa_sigaction != libc::SIG_DFL {
                    continue;
                }
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = on_signal as extern "C" fn(c_int) as libc::sighandler_t;
                libc::sigemptyset(&mut sa.sa_mask);
                sa.sa_flags = libc::SA_RESTART;
                if libc::sigaction(sig, &sa, std::ptr::null_mut()) != 0 {
                    return Err(io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }

    /// The watcher thread: waits for a signal number, then cleans up and ends the process.
    fn watch(read_end: c_int) {
        loop {
            let mut byte = 0u8;
            // SAFETY: reads one byte into a live stack variable from the pipe this module owns.
            let n = unsafe { libc::read(read_end, (&raw mut byte).cast(), 1) };
            if n == 1 {
                remove_and_die(c_int::from(byte));
            }
            if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return;
        }
    }

    fn remove_and_die(sig: c_int) -> ! {
        // Held until the process ends: no temporary file can be created or renamed meanwhile.
        // A fault can strike while the registry is locked: then the files stay, and the process
        // still ends.
        if let Some(live) = super::super::atomic::live_temps_within(Duration::from_secs(1)) {
            for path in live.iter() {
                let _ = std::fs::remove_file(path);
            }
        }
        // SAFETY: restores the default action and raises the signal again, so the process ends
        // as the signal intended (and the parent sees which signal it was).
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            libc::raise(sig);
        }
        // Only reached if the signal was blocked in this thread; end the process as a shell would
        // report it.
        std::process::exit(128 + sig);
    }

    /// errno, where the platform lets us reach it.
    mod errno {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        fn location() -> *mut libc::c_int {
            // SAFETY: returns the calling thread's errno slot.
            unsafe { libc::__errno_location() }
        }
        #[cfg(any(target_os = "macos", target_os = "ios", target_os = "freebsd"))]
        fn location() -> *mut libc::c_int {
            // SAFETY: returns the calling thread's errno slot.
            unsafe { libc::__error() }
        }
        #[cfg(not(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd"
        )))]
        fn location() -> *mut libc::c_int {
            std::ptr::null_mut()
        }

        pub(super) fn get() -> libc::c_int {
            let p = location();
            if p.is_null() {
                0
            } else {
                // SAFETY: `p` is this thread's errno slot.
                unsafe { *p }
            }
        }

        pub(super) fn set(v: libc::c_int) {
            let p = location();
            if !p.is_null() {
                // SAFETY: as above.
                unsafe { *p = v }
            }
        }
    }
}
