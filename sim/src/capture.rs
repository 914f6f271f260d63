//! The nodes log to stderr (`eprintln!`). A bulk run sends that to
//! /dev/null; a traced run puts each step's lines into the trace, by
//! pointing descriptor 2 at an in-memory file and reading it after each
//! step.

use std::sync::Mutex;

struct Cap {
    saved: libc::c_int,
    memfd: libc::c_int,
}

static CAP: Mutex<Option<Cap>> = Mutex::new(None);

/// Sends stderr to an in-memory file until [`stop`].
pub fn start() -> bool {
    let mut g = CAP.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_some() {
        return true;
    }
    // SAFETY: plain descriptor calls on descriptors we own.
    unsafe {
        let memfd = libc::memfd_create(c"sim-log".as_ptr(), libc::MFD_CLOEXEC);
        if memfd < 0 {
            return false;
        }
        let saved = libc::dup(2);
        if saved < 0 || libc::dup2(memfd, 2) < 0 {
            libc::close(memfd);
            return false;
        }
        *g = Some(Cap { saved, memfd });
    }
    true
}

/// What was logged since the last call.
pub fn take() -> String {
    let g = CAP.lock().unwrap_or_else(|e| e.into_inner());
    let Some(c) = g.as_ref() else {
        return String::new();
    };
    // SAFETY: the buffer is sized for the read; descriptors are ours.
    unsafe {
        let end = libc::lseek(c.memfd, 0, libc::SEEK_CUR);
        if end <= 0 {
            return String::new();
        }
        let mut buf = vec![0u8; end as usize];
        let n = libc::pread(c.memfd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0);
        libc::ftruncate(c.memfd, 0);
        libc::lseek(c.memfd, 0, libc::SEEK_SET);
        if n <= 0 {
            return String::new();
        }
        buf.truncate(n as usize);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

/// Gives stderr back.
pub fn stop() {
    let mut g = CAP.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = g.take() {
        // SAFETY: restoring the descriptor saved by `start`.
        unsafe {
            libc::dup2(c.saved, 2);
            libc::close(c.saved);
            libc::close(c.memfd);
        }
    }
}

/// Sends stderr to /dev/null for good (bulk runs: the nodes are chatty).
pub fn silence() {
    // SAFETY: plain descriptor calls.
    unsafe {
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd >= 0 {
            libc::dup2(fd, 2);
            libc::close(fd);
        }
    }
}
