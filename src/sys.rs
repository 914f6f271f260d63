//! The few raw system calls the node and the client need that std does not
//! offer: `SOCK_SEQPACKET` Unix sockets (message boundaries for free), peer
//! credentials, `poll`, and the caller's thread id.
//!
//! Each `unsafe` block here is a plain libc call on descriptors and buffers we
//! own; the wrappers turn `-1` into `io::Error`.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

fn sockaddr(path: &Path) -> io::Result<(libc::sockaddr_un, libc::socklen_t)> {
    // SAFETY: sockaddr_un is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() >= addr.sun_path.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "socket path too long",
        ));
    }
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
    Ok((addr, len as libc::socklen_t))
}

fn seqpacket_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) with constant arguments.
    let fd =
        cvt(unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: fd was just returned by socket(2) and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Connects a `SOCK_SEQPACKET` socket to `path`.
pub fn seqpacket_connect(path: &Path) -> io::Result<OwnedFd> {
    let fd = seqpacket_socket()?;
    let (addr, len) = sockaddr(path)?;
    // SAFETY: addr is a valid sockaddr_un of length len.
    cvt(unsafe {
        libc::connect(
            fd.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            len,
        )
    })?;
    Ok(fd)
}

/// Binds and listens on `path` (which must not exist).
pub fn seqpacket_listen(path: &Path) -> io::Result<OwnedFd> {
    let fd = seqpacket_socket()?;
    let (addr, len) = sockaddr(path)?;
    // SAFETY: addr is a valid sockaddr_un of length len.
    cvt(unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &addr as *const _ as *const libc::sockaddr,
            len,
        )
    })?;
    // SAFETY: listen(2) on our own socket.
    cvt(unsafe { libc::listen(fd.as_raw_fd(), 128) })?;
    Ok(fd)
}

pub fn accept(listener: &OwnedFd) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: accept4 with null address arguments is allowed.
        let r = unsafe {
            libc::accept4(
                listener.as_raw_fd(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                libc::SOCK_CLOEXEC,
            )
        };
        match cvt(r) {
            // SAFETY: a new descriptor owned by nobody else.
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A connected pair of `SOCK_SEQPACKET` sockets.
pub fn seqpacket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both descriptors are new and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sends one packet. `nonblocking` uses MSG_DONTWAIT. Never raises SIGPIPE.
pub fn send(fd: RawFd, buf: &[u8], nonblocking: bool) -> io::Result<usize> {
    let flags = libc::MSG_NOSIGNAL | if nonblocking { libc::MSG_DONTWAIT } else { 0 };
    loop {
        // SAFETY: buf is valid for buf.len() bytes.
        match cvt_size(unsafe {
            libc::send(fd, buf.as_ptr() as *const libc::c_void, buf.len(), flags)
        }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// The most packets one [`send_packets`] or [`recv_packets`] call moves.
pub const PACKETS_PER_CALL: usize = 64;

/// Sends up to [`PACKETS_PER_CALL`] packets, each of `N` bytes, in one
/// system call (sendmmsg), without blocking; how many went (0 only when
/// `packets` is empty: a full socket is `WouldBlock`). Never raises
/// SIGPIPE.
pub fn send_packets<const N: usize>(fd: RawFd, packets: &[[u8; N]]) -> io::Result<usize> {
    let packets = &packets[..packets.len().min(PACKETS_PER_CALL)];
    if packets.is_empty() {
        return Ok(0);
    }
    let mut iov: Vec<libc::iovec> = packets
        .iter()
        .map(|p| libc::iovec {
            iov_base: p.as_ptr() as *mut libc::c_void,
            iov_len: N,
        })
        .collect();
    // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; packets.len()];
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    loop {
        // SAFETY: every header points at one iovec over a live packet; the
        // kernel only reads them.
        let r = unsafe {
            libc::sendmmsg(
                fd,
                msgs.as_mut_ptr(),
                msgs.len() as libc::c_uint,
                libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            )
        };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r.map(|n| n as usize),
        }
    }
}

/// Receives up to `bufs.len()` (at most [`PACKETS_PER_CALL`]) packets in
/// one system call (recvmmsg), without blocking; the length of each is in
/// `lens`; one of length 0 is the end of the stream. A packet larger than
/// its buffer is an error (it was truncated).
pub fn recv_packets<const N: usize>(
    fd: RawFd,
    bufs: &mut [[u8; N]],
    lens: &mut [usize],
) -> io::Result<usize> {
    let n = bufs.len().min(lens.len()).min(PACKETS_PER_CALL);
    if n == 0 {
        return Ok(0);
    }
    let mut iov: Vec<libc::iovec> = bufs[..n]
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr() as *mut libc::c_void,
            iov_len: N,
        })
        .collect();
    // SAFETY: mmsghdr is plain data; all-zero is a valid empty header.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; n];
    for (m, v) in msgs.iter_mut().zip(iov.iter_mut()) {
        m.msg_hdr.msg_iov = v;
        m.msg_hdr.msg_iovlen = 1;
    }
    let got = loop {
        // SAFETY: every header points at one iovec over a buffer of N
        // writable bytes that outlives the call.
        let r = unsafe {
            libc::recvmmsg(
                fd,
                msgs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r? as usize,
        }
    };
    for (i, m) in msgs[..got].iter().enumerate() {
        if m.msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "oversized packet",
            ));
        }
        lens[i] = m.msg_len as usize;
    }
    Ok(got)
}

/// Receives one packet into `buf`; `Ok(0)` is end of stream. A packet larger
/// than `buf` is reported as an error (it was truncated).
pub fn recv(fd: RawFd, buf: &mut [u8], nonblocking: bool) -> io::Result<usize> {
    let flags = libc::MSG_TRUNC | if nonblocking { libc::MSG_DONTWAIT } else { 0 };
    loop {
        // SAFETY: buf is valid for writes of buf.len() bytes.
        let r = unsafe { libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), flags) };
        match cvt_size(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Ok(n) if n > buf.len() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "oversized packet",
                ))
            }
            r => return r,
        }
    }
}

/// Like a blocking [`recv`], but it first looks without blocking, again and
/// again, for up to `spin_us` microseconds. A request's reply, or a
/// handle's next request, usually comes within a few microseconds; going
/// to sleep and being woken on another CPU costs more than that (25 µs on
/// the VM of docs/PERFORMANCE.md), on both sides of every call.
///
/// The budget adapts per thread: a wait that polled in vain halves the
/// thread's next budget (an idle handle's daemon thread, or a program
/// whose calls wait for a remote node, soon stops polling), and one that
/// found its packet restores the whole budget. Down to nothing, the thread
/// still polls in full every [`SPIN_RETRY_EVERY`] waits, to notice when
/// polling pays again.
pub fn recv_spin(fd: RawFd, buf: &mut [u8], spin_us: u64) -> io::Result<usize> {
    thread_local! {
        static SPIN: std::cell::Cell<SpinBudget> = const { std::cell::Cell::new(SpinBudget::new()) };
    }
    let mut spin = SPIN.with(|c| c.get());
    let got = spin.poll(spin_us, || match recv(fd, buf, true) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        r => Ok(Some(r)),
    });
    SPIN.with(|c| c.set(spin));
    match got {
        Ok(Some(r)) => r,
        _ => recv(fd, buf, false),
    }
}

/// How long a waiter polls before it sleeps, adapted to what polling
/// found lately (see [`recv_spin`]): halved by a wait that polled in vain,
/// whole again when one found what it waited for, and tried in full every
/// [`SPIN_RETRY_EVERY`] waits when it has run down to nothing.
#[derive(Clone, Copy, Debug)]
pub struct SpinBudget {
    budget_us: u64,
    dry: u32,
}

impl SpinBudget {
    pub const fn new() -> SpinBudget {
        SpinBudget {
            budget_us: u64::MAX,
            dry: 0,
        }
    }

    /// The budget of the wait about to start, out of a whole of `spin_us`.
    fn take(&mut self, spin_us: u64) -> u64 {
        self.budget_us = self.budget_us.min(spin_us);
        if self.budget_us == 0 && spin_us > 0 {
            self.dry += 1;
            if self.dry >= SPIN_RETRY_EVERY {
                self.dry = 0;
                return spin_us;
            }
        }
        self.budget_us
    }

    /// Calls `look` (see [`look_within`]) for this wait's budget, out of a
    /// whole of `spin_us`, and adapts the budget to what it found.
    pub fn poll<T>(
        &mut self,
        spin_us: u64,
        look: impl FnMut() -> io::Result<Option<T>>,
    ) -> io::Result<Option<T>> {
        let budget_us = self.take(spin_us);
        if budget_us == 0 {
            return Ok(None);
        }
        let got = look_within(budget_us, look);
        self.polled(spin_us, !matches!(got, Ok(None)));
        got
    }

    /// The wait polled, and `found` what it waited for or not.
    fn polled(&mut self, spin_us: u64, found: bool) {
        if found {
            *self = SpinBudget {
                budget_us: spin_us,
                dry: 0,
            };
        } else {
            self.budget_us /= 2;
        }
    }
}

impl Default for SpinBudget {
    fn default() -> Self {
        SpinBudget::new()
    }
}

/// Looks for a packet, without blocking, again and again for up to
/// `wait_us` microseconds; Ok(None) when none came.
pub fn recv_within(fd: RawFd, buf: &mut [u8], wait_us: u64) -> io::Result<Option<usize>> {
    look_within(wait_us, || match recv(fd, buf, true) {
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        r => r.map(Some),
    })
}

/// Calls `look`, which must not block, again and again for up to `wait_us`
/// microseconds, until it finds something.
pub fn look_within<T>(
    wait_us: u64,
    mut look: impl FnMut() -> io::Result<Option<T>>,
) -> io::Result<Option<T>> {
    let start = std::time::Instant::now();
    let limit = std::time::Duration::from_micros(wait_us);
    loop {
        if let Some(found) = look()? {
            return Ok(Some(found));
        }
        if start.elapsed() >= limit {
            return Ok(None);
        }
        // A thread that waits for this CPU (the other end, or anyone
        // else) gets it: polling must not starve a busy machine.
        // SAFETY: sched_yield has no arguments and cannot fail.
        unsafe { libc::sched_yield() };
    }
}

/// A thread whose polling budget ran out polls in full again after this
/// many waits ([`recv_spin`]).
pub const SPIN_RETRY_EVERY: u32 = 16;

/// Bound on `DLM_SPIN_US`.
pub const MAX_SPIN_US: u64 = 1000;
/// `DLM_SPIN_US` when it is not set.
pub const DEFAULT_SPIN_US: u64 = 50;

/// How long a thread that waits for the other end of a local socket polls
/// before it sleeps ([`recv_spin`]): `DLM_SPIN_US` (0 turns it off, at most
/// [`MAX_SPIN_US`]), else [`DEFAULT_SPIN_US`]; always 0 when this process
/// may run on one CPU only, where spinning would only delay the other end.
pub fn spin_us() -> u64 {
    static SPIN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *SPIN.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus < 2 {
            return 0;
        }
        std::env::var("DLM_SPIN_US")
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(DEFAULT_SPIN_US)
            .min(MAX_SPIN_US)
    })
}

/// Waits until `fd` is readable (`out` false) or writable (`out` true), or
/// the timeout passes (`timeout_ms` < 0: forever). Returns whether it is ready.
pub fn poll_one(fd: RawFd, out: bool, timeout_ms: i32) -> io::Result<bool> {
    let mut p = libc::pollfd {
        fd,
        events: if out { libc::POLLOUT } else { libc::POLLIN },
        revents: 0,
    };
    loop {
        // SAFETY: p is one valid pollfd.
        match cvt(unsafe { libc::poll(&mut p, 1, timeout_ms) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(n) => return Ok(n > 0),
        }
    }
}

/// Credentials of the process at the other end of a Unix socket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerCreds {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
}

pub fn peer_creds(fd: RawFd) -> io::Result<PeerCreds> {
    let mut c = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: c and len describe a valid ucred buffer.
    cvt(unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            &mut c as *mut _ as *mut libc::c_void,
            &mut len,
        )
    })?;
    Ok(PeerCreds {
        pid: c.pid as u32,
        uid: c.uid,
        gid: c.gid,
    })
}

/// Our own credentials, as a peer would see them.
pub fn own_creds() -> PeerCreds {
    // SAFETY: these calls cannot fail.
    unsafe {
        PeerCreds {
            pid: libc::getpid() as u32,
            uid: libc::getuid(),
            gid: libc::getgid(),
        }
    }
}

/// Sets a socket's send buffer size (best effort).
pub fn set_sndbuf(fd: RawFd, bytes: i32) {
    // SAFETY: setsockopt with a valid int option.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &bytes as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        );
    }
}

/// The (device, inode) of what a descriptor refers to: the same for every
/// duplicate of it. None for a descriptor that is not open.
pub fn file_identity(fd: RawFd) -> Option<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes a whole `stat` into the buffer when it succeeds,
    // and it is read only then.
    unsafe {
        if libc::fstat(fd, st.as_mut_ptr()) != 0 {
            return None;
        }
        let st = st.assume_init();
        Some((st.st_dev as u64, st.st_ino as u64))
    }
}

/// Shuts down both directions of a socket, waking any thread blocked on it.
pub fn shutdown(fd: RawFd) {
    // SAFETY: shutdown(2) on a descriptor; errors are irrelevant here.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

/// The kernel id of the calling thread (what the reference records as a
/// lock's owner pid).
pub fn gettid() -> u32 {
    // SAFETY: gettid cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

thread_local! {
    static CACHED_TID: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// [`gettid`], asked of the kernel once per thread (the library passes it
/// with every lock call). The child of a `fork` forgets it: its one thread
/// has another id (a `pthread_atfork` handler).
pub fn cached_tid() -> u32 {
    static ATFORK: std::sync::Once = std::sync::Once::new();
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only touches a thread-local.
        unsafe { libc::pthread_atfork(None, None, Some(forget_tid)) };
    });
    CACHED_TID.with(|t| match t.get() {
        0 => {
            let tid = gettid();
            t.set(tid);
            tid
        }
        tid => tid,
    })
}

extern "C" fn forget_tid() {
    let _ = CACHED_TID.try_with(|t| t.set(0));
}

/// Ends process `pid` at once (SIGKILL): self-fencing of the programs
/// that hold locks a node can no longer vouch for.
pub fn kill_process(pid: u32) {
    if pid == 0 || pid == std::process::id() || pid > i32::MAX as u32 {
        return;
    }
    // SAFETY: kill has no memory effects; a stale pid only fails.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGKILL);
    }
}

/// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread (and the threads it
/// starts afterwards), so that [`wait_termination_signal`] can take them.
pub fn block_termination_signals() {
    // SAFETY: the set is initialised by sigemptyset before use.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}

/// Waits for SIGTERM, SIGINT or SIGHUP (the daemon's reload; blocked
/// beforehand) and returns its number.
pub fn wait_termination_signal() -> i32 {
    // SAFETY: the set is initialised before use; sig is a valid out pointer.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        let mut sig: libc::c_int = 0;
        loop {
            if libc::sigwait(&set, &mut sig) == 0 {
                return sig;
            }
        }
    }
}

/// 64 random bits from the kernel, for unguessable tokens.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: b is a valid 8-byte buffer.
    let n = unsafe { libc::getrandom(b.as_mut_ptr() as *mut libc::c_void, 8, 0) };
    if n != 8 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return t.as_nanos() as u64 ^ ((own_creds().pid as u64) << 32);
    }
    u64::from_le_bytes(b)
}

/// Takes an exclusive, non-blocking `flock` on `path`, creating it. `Ok(None)`
/// when someone else holds it.
pub fn try_lock_file(path: &Path) -> io::Result<Option<OwnedFd>> {
    let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| io::ErrorKind::InvalidInput)?;
    // SAFETY: c is a valid C string.
    let fd = cvt(unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDWR | libc::O_CREAT | libc::O_CLOEXEC,
            0o600,
        )
    })?;
    // SAFETY: fd is new and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: flock on our descriptor.
    if unsafe { libc::flock(fd.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            return Ok(None);
        }
        return Err(e);
    }
    Ok(Some(fd))
}

/// Detaches into the background: forks; the parent waits until the child
/// calls [`Ready::signal`] (or dies) and exits with 0 (ready) or 1. Returns
/// in the child only, after `setsid`. Must be called before any thread is
/// started.
pub fn daemonize() -> io::Result<Ready> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for two descriptors.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: the process is single-threaded here (documented contract).
    let pid = cvt(unsafe { libc::fork() })?;
    if pid > 0 {
        // SAFETY: closing our copy of the write end; reading one byte.
        unsafe { libc::close(fds[1]) };
        let mut b = [0u8; 1];
        let n = unsafe { libc::read(fds[0], b.as_mut_ptr() as *mut libc::c_void, 1) };
        // SAFETY: plain process exit in the parent.
        unsafe { libc::_exit(if n == 1 && b[0] == b'1' { 0 } else { 1 }) };
    }
    // SAFETY: in the child: close the read end, start a new session.
    unsafe {
        libc::close(fds[0]);
        libc::setsid();
    }
    // SAFETY: fds[1] is ours.
    Ok(Ready(Some(unsafe { OwnedFd::from_raw_fd(fds[1]) })))
}

/// Tells a waiting parent that the daemon is ready.
pub struct Ready(Option<OwnedFd>);

impl Ready {
    pub fn none() -> Ready {
        Ready(None)
    }
    pub fn signal(&mut self) {
        if let Some(fd) = self.0.take() {
            let _ = send_pipe(fd.as_raw_fd(), b"1");
        }
    }
}

fn send_pipe(fd: RawFd, b: &[u8]) -> io::Result<usize> {
    // SAFETY: b is valid for b.len() bytes.
    cvt_size(unsafe { libc::write(fd, b.as_ptr() as *const libc::c_void, b.len()) })
}

/// Points stdin/stdout/stderr at `/dev/null`, stderr at `log` if given.
pub fn redirect_stdio(log: Option<&Path>) {
    let null = CString::new("/dev/null").unwrap();
    // SAFETY: open/dup2/close on descriptors we own.
    unsafe {
        let n = libc::open(null.as_ptr(), libc::O_RDWR);
        if n >= 0 {
            libc::dup2(n, 0);
            libc::dup2(n, 1);
            libc::dup2(n, 2);
            libc::close(n);
        }
        if let Some(p) = log.and_then(|p| CString::new(p.as_os_str().as_bytes()).ok()) {
            let l = libc::open(
                p.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND,
                0o600,
            );
            if l >= 0 {
                libc::dup2(l, 2);
                libc::close(l);
            }
        }
    }
}

/// Sends one packet with a descriptor attached (SCM_RIGHTS).
pub fn send_with_fd(fd: RawFd, buf: &[u8], pass: RawFd) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation on a constant size.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    // SAFETY: msg points at our control buffer of `space` bytes, which holds
    // exactly one header with one descriptor.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut RawFd, pass);
    }
    loop {
        // SAFETY: msg and everything it points to are valid for the call.
        match cvt_size(unsafe { libc::sendmsg(fd, &msg, libc::MSG_NOSIGNAL) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Receives one packet and, if one came with it, a descriptor (SCM_RIGHTS).
/// Descriptors beyond the first, if any, are closed.
pub fn recv_with_fd(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<OwnedFd>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr() as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: CMSG_SPACE is a pure computation on a constant size.
    let space = unsafe { libc::CMSG_SPACE((4 * std::mem::size_of::<RawFd>()) as u32) } as usize;
    let mut cbuf = vec![0u8; space];
    // SAFETY: msghdr is plain old data; all-zero is a valid value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
    msg.msg_controllen = space as _;
    let n = loop {
        // SAFETY: msg describes our buffers; MSG_CMSG_CLOEXEC marks received
        // descriptors close-on-exec.
        match cvt_size(unsafe { libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC) }) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => break r?,
        }
    };
    let mut received: Vec<OwnedFd> = Vec::new();
    // SAFETY: walking the control messages the kernel wrote into cbuf.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const RawFd;
                let count = ((*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize)
                    / std::mem::size_of::<RawFd>();
                for i in 0..count {
                    received.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if msg.msg_flags & (libc::MSG_TRUNC | libc::MSG_CTRUNC) != 0 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "oversized packet",
        ));
    }
    Ok((n, received.into_iter().next()))
}

/// Milliseconds on the monotonic clock: the node's one time base, read by
/// its ticks and by the transport's peer events alike.
pub fn monotonic_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

/// Runs `f` when the process calls exit() (or returns from main), after
/// the other exit handlers registered later. Not on a signal or `_exit`.
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: `f` is a function of this library, takes no arguments and
    // returns nothing, as atexit requires; registering cannot fail in a way
    // that matters here (the handler then simply does not run).
    unsafe { libc::atexit(f) };
}

/// An epoll instance: readiness of many descriptors, each known by a
/// token, level-triggered, for input only.
pub struct Epoll(OwnedFd);

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointers; the result is a new fd.
        let fd = cvt(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        // SAFETY: fd was just created and nothing else owns it.
        Ok(Epoll(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    fn control(&self, op: libc::c_int, fd: RawFd, token: u64, events: u32) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: ev is a valid epoll_event for the duration of the call.
        cvt(unsafe { libc::epoll_ctl(self.0.as_raw_fd(), op, fd, &mut ev) }).map(|_| ())
    }

    /// Watches `fd` for input, reported with `token`.
    pub fn add(&self, fd: RawFd, token: u64) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, fd, token, libc::EPOLLIN as u32)
    }

    /// Stops (`armed` false) or restarts reporting input on `fd`, which
    /// stays registered.
    pub fn arm(&self, fd: RawFd, token: u64, armed: bool) -> io::Result<()> {
        let events = if armed { libc::EPOLLIN as u32 } else { 0 };
        self.control(libc::EPOLL_CTL_MOD, fd, token, events)
    }

    pub fn remove(&self, fd: RawFd) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_DEL, fd, 0, 0)
    }

    /// Waits up to `timeout_ms` (< 0: forever, 0: not at all) and puts the
    /// tokens of the ready descriptors in `tokens`; returns how many. An
    /// interrupted wait reports none.
    pub fn wait(&self, tokens: &mut [u64], timeout_ms: i32) -> io::Result<usize> {
        const MAX_EVENTS: usize = 64;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
        let max = tokens.len().min(MAX_EVENTS);
        // SAFETY: events has room for max entries.
        let r = unsafe {
            libc::epoll_wait(
                self.0.as_raw_fd(),
                events.as_mut_ptr(),
                max as libc::c_int,
                timeout_ms,
            )
        };
        match cvt(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
            Ok(n) => {
                for (t, ev) in tokens.iter_mut().zip(&events[..n as usize]) {
                    *t = ev.u64;
                }
                Ok(n as usize)
            }
        }
    }
}

/// A new eventfd: a doorbell another thread rings ([`ring`]) to wake a
/// waiter that watches it for input.
pub fn doorbell() -> io::Result<OwnedFd> {
    // SAFETY: eventfd takes no pointers; the result is a new fd.
    let fd = cvt(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) })?;
    // SAFETY: fd was just created and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Rings doorbell `fd` (see [`doorbell`]).
pub fn ring(fd: RawFd) {
    let one: u64 = 1;
    // SAFETY: writes 8 bytes from a valid u64. A full counter (2^64 - 2
    // rings unanswered) cannot happen; it would only mean it stays readable.
    unsafe { libc::write(fd, &one as *const u64 as *const libc::c_void, 8) };
}

/// Silences doorbell `fd` until it is rung again.
pub fn answer(fd: RawFd) {
    let mut count: u64 = 0;
    // SAFETY: reads at most 8 bytes into a valid u64; a silent doorbell
    // (EAGAIN) leaves it untouched.
    unsafe { libc::read(fd, &mut count as *mut u64 as *mut libc::c_void, 8) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;
    use std::time::Duration;

    /// A packet is received whether it comes while `recv_spin` polls or
    /// after it went to sleep, and the end of the stream is the end.
    #[test]
    fn recv_spin_gets_packets_early_and_late() {
        let (a, b) = seqpacket_pair().unwrap();
        let mut buf = [0u8; 8];
        send(b.as_raw_fd(), b"now", false).unwrap();
        assert_eq!(recv_spin(a.as_raw_fd(), &mut buf, 1000).unwrap(), 3);
        let late = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(30));
            send(b.as_raw_fd(), b"later", false).unwrap();
            b
        });
        // Polls for 100 µs, then sleeps until the packet comes.
        assert_eq!(recv_spin(a.as_raw_fd(), &mut buf, 100).unwrap(), 5);
        assert_eq!(&buf[..5], b"later");
        drop(late.join().unwrap());
        assert_eq!(recv_spin(a.as_raw_fd(), &mut buf, 100).unwrap(), 0);
    }

    /// Packets sent together arrive whole and in order, many per call;
    /// a full socket is WouldBlock, a packet too large is an error, and
    /// the end of the stream is a packet of length 0 (or no packet).
    #[test]
    fn packets_go_and_come_many_per_call() {
        let (a, b) = seqpacket_pair().unwrap();
        let sent: Vec<[u8; 4]> = (0..100u32).map(|i| i.to_le_bytes()).collect();
        let mut went = 0;
        while went < sent.len() {
            let n = send_packets(b.as_raw_fd(), &sent[went..]).unwrap();
            assert!((1..=PACKETS_PER_CALL).contains(&n));
            went += n;
        }
        let mut bufs = [[0u8; 4]; PACKETS_PER_CALL];
        let mut lens = [0usize; PACKETS_PER_CALL];
        let mut got = Vec::new();
        while got.len() < sent.len() {
            let n = recv_packets(a.as_raw_fd(), &mut bufs, &mut lens).unwrap();
            assert!(n >= 1);
            for i in 0..n {
                assert_eq!(lens[i], 4);
                got.push(bufs[i]);
            }
        }
        assert_eq!(got, sent);
        let e = recv_packets(a.as_raw_fd(), &mut bufs, &mut lens).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
        send(b.as_raw_fd(), b"too long", false).unwrap();
        let e = recv_packets(a.as_raw_fd(), &mut bufs, &mut lens).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        // Fill the socket: sends stop with WouldBlock, never block.
        let big = vec![[7u8; 4]; PACKETS_PER_CALL];
        let full = loop {
            match send_packets(b.as_raw_fd(), &big) {
                Ok(n) => assert!(n >= 1),
                Err(e) => break e,
            }
        };
        assert_eq!(full.kind(), io::ErrorKind::WouldBlock);
        drop(b);
        let mut ended = false;
        for _ in 0..100_000 {
            match recv_packets(a.as_raw_fd(), &mut bufs, &mut lens) {
                Ok(0) => ended = true,
                Ok(n) if lens[..n].contains(&0) => ended = true,
                Ok(_) => continue,
                Err(e) => panic!("{e}"),
            }
            break;
        }
        assert!(ended);
    }
}
