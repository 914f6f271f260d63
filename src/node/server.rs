//! The node's local socket: how `udlmd` serves the handles of every process
//! on the host.
//!
//! One thread accepts connections on `<run dir>/udlmd.sock`; each connection
//! gets a thread that reads its first packet. An `Open` (with the handle's
//! event socket attached) makes it a handle: the thread serves one request
//! at a time until the peer goes away, then closes the handle (releasing or
//! orphaning its locks). A `Query` gets one answer, and so does a
//! `Control` (membership from outside, node/control.rs). A peer that sends
//! garbage, an unknown version, or vanishes mid-request only loses its own
//! connection.
//!
//! A lock call that does not ask for its completion in the reply is
//! answered before the messages it makes the node send to other nodes are
//! written (they are queued, in order, at once; `Net::hold_writes`): the
//! program goes on while this thread does the network's system calls. When
//! a program issues calls back to back without waiting for their
//! completions, the messages of up to [`BURST_HELD_CALLS`] calls go out in
//! one write ([`Burst`]); a program that waits for each completion never
//! has a message held.

use super::control::Control;
use super::inspect::{InspectStep, InspectTarget, ResourceView, INSPECT_WAIT_MS};
use super::sink::{EventSink, Packet};
use super::{LockArgs, Node};
use crate::proto::{self, Request, ADMIN_VERSION, MAX_PACKET, PROTOCOL_VERSION};
use crate::sys;
use crate::types::Errno;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The socket file name inside the runtime directory.
pub const SOCKET_NAME: &str = "udlmd.sock";

/// The runtime directory: `DLM_RUN_DIR`, else `/run/udlm` for root, else
/// `$XDG_RUNTIME_DIR/udlm` (falling back to `/tmp/udlm-<uid>`).
pub fn run_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DLM_RUN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let uid = sys::own_creds().uid;
    if uid == 0 {
        return PathBuf::from("/run/udlm");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(d) => Path::new(&d).join("udlm"),
        None => PathBuf::from(format!("/tmp/udlm-{uid}")),
    }
}

/// Serves the node on `listener` until the process exits; `control` takes
/// the membership requests (none: they are refused).
pub fn serve(
    node: Arc<Mutex<Node>>,
    listener: OwnedFd,
    control: Option<Arc<Control>>,
) -> io::Result<()> {
    loop {
        let conn = match sys::accept(&listener) {
            Ok(c) => c,
            Err(e)
                if e.raw_os_error() == Some(libc::EMFILE)
                    || e.raw_os_error() == Some(libc::ENFILE) =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(e),
        };
        let node = Arc::clone(&node);
        let control = control.clone();
        let _ = std::thread::Builder::new()
            .name("udlm-conn".into())
            .spawn(move || serve_connection(node, conn, control.as_deref()));
    }
}

fn lock_node(node: &Mutex<Node>) -> std::sync::MutexGuard<'_, Node> {
    node.lock().unwrap_or_else(|e| e.into_inner())
}

fn reply(conn: &OwnedFd, r: &proto::Reply) -> bool {
    sys::send(conn.as_raw_fd(), &proto::encode_reply(r), false).is_ok()
}

fn reply_with(conn: &OwnedFd, r: &proto::Reply, completion: Option<Packet>) -> bool {
    match completion {
        Some(c) => sys::send(conn.as_raw_fd(), &proto::encode_reply_with(r, &c), false).is_ok(),
        None => reply(conn, r),
    }
}

fn serve_connection(node: Arc<Mutex<Node>>, conn: OwnedFd, control: Option<&Control>) {
    let Ok(creds) = sys::peer_creds(conn.as_raw_fd()) else {
        return;
    };
    let mut buf = [0u8; MAX_PACKET];
    let (n, events) = match sys::recv_with_fd(conn.as_raw_fd(), &mut buf) {
        Ok((n, fd)) if n > 0 => (n, fd),
        _ => return,
    };
    match Request::decode(&buf[..n]) {
        Ok(Request::Open {
            version,
            name,
            create,
            tid: _,
        }) => {
            if version != PROTOCOL_VERSION {
                reply(&conn, &Err(Errno::Proto));
                return;
            }
            let Some(events) = events else {
                reply(&conn, &Err(Errno::Proto));
                return;
            };
            let opened = {
                // Like the kernel's join, opening a lockspace waits until
                // this node is a member of its cluster (node/recovery.rs).
                let mut n = lock_node(&node);
                while n.operations_blocked() {
                    drop(n);
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    n = lock_node(&node);
                }
                n.open(&name, create, creds).and_then(|(owner, token)| {
                    n.attach(token, EventSink::new(events), creds).map_err(|e| {
                        n.close(owner);
                        e
                    })
                })
            };
            if opened.is_ok() && create.is_some() {
                announce_lockspace(&node);
            }
            match opened {
                Ok(owner) => {
                    if reply(&conn, &Ok(0)) {
                        serve_requests(&node, owner, &conn, &mut buf);
                    }
                    lock_node(&node).close(owner);
                }
                Err(e) => {
                    reply(&conn, &Err(e));
                }
            }
        }
        Ok(Request::Query { version, query }) => {
            if version != ADMIN_VERSION {
                reply(&conn, &Err(Errno::Proto));
                return;
            }
            let answer = lock_node(&node).query(&query, creds);
            send_answer(&conn, answer);
        }
        Ok(Request::Control { version, op }) => {
            if version != ADMIN_VERSION {
                reply(&conn, &Err(Errno::Proto));
                return;
            }
            let (status, text) = super::control::answer(control, &op, creds);
            let head = crate::control::encode_head(status, text.len() as u64);
            if sys::send(conn.as_raw_fd(), &head, false).is_err() {
                return;
            }
            for chunk in text.as_bytes().chunks(proto::QUERY_CHUNK) {
                if sys::send(conn.as_raw_fd(), chunk, false).is_err() {
                    return;
                }
            }
        }
        Ok(_) | Err(_) => {
            reply(&conn, &Err(Errno::Proto));
        }
    }
}

/// Like the kernel's join, a lockspace creation returns only once the
/// other nodes know this node has it, and the configfs-compatible view
/// shows it (node/configfs.rs): lvmlockd counts a lockspace's nodes there
/// before it removes a VG. A node that does not answer within
/// [`super::configfs::JOIN_ANNOUNCE_WAIT_MS`] (down, its lease running)
/// does not hold the creation up longer.
fn announce_lockspace(node: &Mutex<Node>) {
    let seq = {
        let mut n = lock_node(node);
        let seq = n.announce_spaces();
        n.sync_compat_view();
        seq
    };
    let start = std::time::Instant::now();
    while !lock_node(node).spaces_announced(seq)
        && start.elapsed().as_millis() < u128::from(super::configfs::JOIN_ANNOUNCE_WAIT_MS)
    {
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

/// Runs the query of handle `owner` (node/inspect.rs), waiting for a remote
/// master's answer with the node unlocked, at most
/// [`super::inspect::INSPECT_WAIT_MS`] (then EAGAIN); during a recovery it
/// waits like a lock call.
pub fn inspect_wait(
    node: &Mutex<Node>,
    owner: crate::types::Owner,
    target: InspectTarget,
) -> Result<ResourceView, Errno> {
    let start = std::time::Instant::now();
    let waited_out =
        |s: &std::time::Instant| s.elapsed().as_millis() >= u128::from(INSPECT_WAIT_MS);
    let mut n = lock_node(node);
    while n.operations_blocked() {
        drop(n);
        if waited_out(&start) {
            return Err(Errno::Again);
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
        n = lock_node(node);
    }
    let token = match n.inspect(owner, target) {
        InspectStep::Done(r) => return r,
        InspectStep::Pending(t) => t,
    };
    loop {
        if let Some(r) = n.inspect_answer(token) {
            return r;
        }
        if waited_out(&start) {
            n.inspect_abandon(token);
            return Err(Errno::Again);
        }
        drop(n);
        std::thread::sleep(std::time::Duration::from_millis(1));
        n = lock_node(node);
    }
}

/// A query's answer: a reply carrying its length, then the JSON text in
/// packets of at most [`proto::QUERY_CHUNK`] bytes.
fn send_answer(conn: &OwnedFd, answer: Result<String, Errno>) {
    send_bytes(conn, answer.map(String::into_bytes))
}

/// An answer of bytes: a reply carrying the length, then the bytes in
/// packets of at most [`proto::QUERY_CHUNK`] bytes.
fn send_bytes(conn: &OwnedFd, answer: Result<Vec<u8>, Errno>) {
    let text = match answer {
        Ok(t) if t.len() <= proto::MAX_QUERY_ANSWER => t,
        Ok(_) => {
            reply(conn, &Err(Errno::NoMem));
            return;
        }
        Err(e) => {
            reply(conn, &Err(e));
            return;
        }
    };
    if !reply(conn, &Ok(text.len() as u64)) {
        return;
    }
    for chunk in text.chunks(proto::QUERY_CHUNK) {
        if sys::send(conn.as_raw_fd(), chunk, false).is_err() {
            return;
        }
    }
}

/// A request that comes this soon after the reply to the previous one,
/// with no callback for the handle in between, is part of a burst (a
/// program issuing many calls without waiting for their completions): the
/// node's messages for it wait, up to this long, for the next request's,
/// to go out together. (A program that waits for each completion is never
/// in a burst, however fast the network, so its calls never wait.)
const BURST_GAP: Duration = Duration::from_micros(20);

/// The most calls of a burst whose messages wait together.
const BURST_HELD_CALLS: u32 = 64;

/// One handle's calls as the connection thread sees them: whether they
/// come in a burst, and how many calls' messages it holds back (see
/// [`BURST_GAP`]). Pure bookkeeping, fed with the times and the handle's
/// callback counts.
#[derive(Default)]
struct Burst {
    held_calls: u32,
    answered_at: Option<Instant>,
    /// Callbacks queued for the handle when its previous call ended.
    callbacks_then: u64,
}

impl Burst {
    /// Whether messages of earlier calls are held.
    fn holding(&self) -> bool {
        self.held_calls > 0
    }

    /// Whether a call that came at `now`, when `callbacks` had been queued
    /// for the handle, belongs to a burst. Calls whose messages are still
    /// held cannot have completed, so one that follows them was not
    /// waiting for them.
    fn joins(&self, now: Instant, callbacks: u64) -> bool {
        self.holding()
            || (self
                .answered_at
                .is_some_and(|t| now.saturating_duration_since(t) < BURST_GAP)
                && callbacks == self.callbacks_then)
    }

    /// The call ended with `callbacks` queued for the handle.
    fn ended(&mut self, callbacks: u64) {
        self.callbacks_then = callbacks;
    }

    /// A call whose messages were held was answered at `now`; `in_burst`
    /// is what [`Burst::joins`] said of it. Whether to write what is held
    /// now.
    fn answered(&mut self, in_burst: bool, now: Instant) -> bool {
        self.answered_at = Some(now);
        self.held_calls += 1;
        if in_burst && self.held_calls < BURST_HELD_CALLS {
            return false;
        }
        self.held_calls = 0;
        true
    }

    /// What was held went out for another reason (no next call came in
    /// time, or a call that is no lock call).
    fn written(&mut self) {
        self.held_calls = 0;
    }

    /// A call that holds nothing: the next one does not join a burst.
    fn interrupted(&mut self) {
        self.held_calls = 0;
        self.answered_at = None;
    }
}

fn serve_requests(
    node: &Mutex<Node>,
    owner: crate::types::Owner,
    conn: &OwnedFd,
    buf: &mut [u8; MAX_PACKET],
) {
    serve_requests_held(node, owner, conn, buf);
    // Whatever way serving ended, nothing stays held.
    crate::net::Net::write_held();
}

fn serve_requests_held(
    node: &Mutex<Node>,
    owner: crate::types::Owner,
    conn: &OwnedFd,
    buf: &mut [u8; MAX_PACKET],
) {
    let spin_us = sys::spin_us();
    let fd = conn.as_raw_fd();
    let mut burst = Burst::default();
    loop {
        let got = if burst.holding() {
            match sys::recv_within(fd, buf, BURST_GAP.as_micros() as u64) {
                Ok(Some(n)) => Ok(n),
                Ok(None) => {
                    crate::net::Net::write_held();
                    burst.written();
                    sys::recv_spin(fd, buf, spin_us)
                }
                Err(e) => Err(e),
            }
        } else {
            sys::recv_spin(fd, buf, spin_us)
        };
        let n = match got {
            Ok(n) if n > 0 => n,
            _ => return,
        };
        let came = Instant::now();
        let mut in_burst = false;
        let req = match Request::decode(&buf[..n]) {
            Ok(r) => r,
            Err(e) => {
                eprintln!(
                    "udlmd: closing a handle that sent a malformed request: {}",
                    e.0
                );
                return;
            }
        };
        let waits = req.is_lock_call();
        // A call that waits for no completion in its reply gets its reply
        // before the node's messages for it go out: the program goes on
        // while this thread writes them (their order is kept, since
        // they are queued in order now).
        let answer_first = waits && !req.asks_inline();
        if !answer_first {
            crate::net::Net::write_held();
            burst.interrupted();
        }
        if let Request::Inspect { lkid, name } = req {
            let target = if lkid != 0 {
                InspectTarget::Lock(lkid)
            } else {
                InspectTarget::Name(name)
            };
            let answer = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                inspect_wait(node, owner, target)
            }))
            .unwrap_or(Err(Errno::Io));
            send_bytes(conn, answer.map(|v| v.encode()));
            continue;
        }
        let mut done = false;
        if answer_first {
            crate::net::Net::hold_writes();
        }
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut n = if waits {
                lock_when_ready(node, owner, &req)
            } else {
                lock_node(node)
            };
            let released = matches!(req, Request::Release { .. });
            // (Where nothing polls, as on one CPU, nothing waits for a
            // next call either.)
            in_burst = spin_us > 0 && burst.joins(came, n.callbacks_queued(owner));
            let r = handle_request(&mut n, owner, req, &mut done);
            burst.ended(n.callbacks_queued(owner));
            if released {
                // A destroyed lockspace leaves the views before the release
                // returns (node/configfs.rs), not at the next tick.
                n.announce_spaces();
                n.sync_compat_view();
            }
            r
        }))
        .unwrap_or_else(|_| {
            eprintln!("udlmd: internal error while serving a request");
            // A completion held back for the failed call goes on the link.
            lock_node(node).end_inline(0);
            (Err(Errno::Io), None)
        });
        let replied = reply_with(conn, &r.0, r.1);
        if answer_first && burst.answered(in_burst, Instant::now()) {
            crate::net::Net::write_held();
        }
        if !replied || done {
            return;
        }
    }
}

/// How long an adoption waits for a remote master to settle the mode of an
/// orphan whose handle just closed ([`Node::adoption_unsettled`]) before it
/// goes by the mode last heard: one round trip normally.
pub const ADOPT_SETTLE_WAIT_MS: u64 = 5_000;

/// Locks the node for lock call `req` of handle `owner` once the call can
/// run: during a recovery lock calls wait, as the kernel blocks them
/// (node/recovery.rs), and an adoption waits for its orphan's mode to be
/// settled. Both are rare and short, so the thread simply looks again a
/// little later.
pub fn lock_when_ready<'a>(
    node: &'a Mutex<Node>,
    owner: crate::types::Owner,
    req: &Request,
) -> std::sync::MutexGuard<'a, Node> {
    let start = std::time::Instant::now();
    let adopting = match req {
        Request::Lock { flags, name, .. } if flags & crate::types::lkf::ORPHAN != 0 => {
            Some(name.as_slice())
        }
        _ => None,
    };
    let mut n = lock_node(node);
    loop {
        let unsettled = adopting.is_some_and(|name| {
            n.adoption_unsettled(owner, name)
                && start.elapsed().as_millis() < u128::from(ADOPT_SETTLE_WAIT_MS)
        });
        if !n.operations_blocked() && !unsettled {
            return n;
        }
        // Messages of earlier calls of a burst go before this one waits.
        crate::net::Net::write_held();
        drop(n);
        std::thread::sleep(std::time::Duration::from_millis(2));
        n = lock_node(node);
    }
}

/// Applies one request of an opened handle. `done` is set when the handle
/// ends with it (release). With the reply comes the operation's completion
/// when the call asked for it inline and could have it ([`InlineAsk`]).
pub fn handle_request(
    node: &mut Node,
    owner: crate::types::Owner,
    req: Request,
    done: &mut bool,
) -> (proto::Reply, Option<Packet>) {
    let inline = match &req {
        Request::Lock { inline, .. } | Request::Unlock { inline, .. } => *inline,
        _ => None,
    };
    let target = match &req {
        Request::Unlock { lkid, .. } => Some(*lkid),
        _ => None,
    };
    if let Some(ask) = inline {
        node.begin_inline(owner, ask);
    }
    let reply = apply_request(node, owner, req, done);
    let completion = inline.and_then(|_| {
        let lkid = target.or(reply.ok().map(|v| v as u32)).unwrap_or(0);
        node.end_inline(lkid)
    });
    (reply, completion)
}

fn apply_request(
    node: &mut Node,
    owner: crate::types::Owner,
    req: Request,
    done: &mut bool,
) -> proto::Reply {
    match req {
        Request::Lock {
            mode,
            flags,
            lkid,
            name,
            lvb,
            user,
            tid,
            parent,
            timeout_cs,
            inline: _,
        } => {
            if flags & crate::types::lkf::TIMEOUT != 0 {
                // A timeout counts from this moment, not from the last tick.
                node.advance_clock(crate::sys::monotonic_ms());
            }
            node.lock(
                owner,
                LockArgs {
                    mode,
                    flags,
                    lkid,
                    name: &name,
                    lvb,
                    user,
                    tid,
                    parent,
                    timeout_cs,
                },
            )
            .map(u64::from)
        }
        Request::Unlock {
            lkid,
            flags,
            lvb,
            astarg,
            lksb,
            inline: _,
        } => node.unlock(owner, lkid, flags, lvb, astarg, lksb),
        Request::DeadlockCancel { lkid, flags } => {
            node.deadlock_cancel(owner, lkid, flags).map(|_| 0)
        }
        Request::Purge { nodeid, pid, tid } => node.purge(owner, nodeid, pid, tid).map(|_| 0),
        Request::Release { force } => {
            *done = true;
            node.release(owner, force).map(|_| 0)
        }
        Request::Close => {
            *done = true;
            node.close(owner);
            Ok(0)
        }
        // A query needs the node unlocked while it waits (inspect_wait).
        Request::Open { .. }
        | Request::Query { .. }
        | Request::Inspect { .. }
        | Request::Control { .. } => Err(Errno::Proto),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A program that waits for each completion: its next call comes
    /// after a callback, however soon, so its messages are never held.
    #[test]
    fn calls_that_follow_a_callback_are_never_held() {
        let mut b = Burst::default();
        let t = Instant::now();
        for i in 0..100u64 {
            let now = t + Duration::from_micros(i * 3);
            // The previous call's completion was queued before this call.
            assert!(!b.joins(now, i), "call {i} joined a burst");
            b.ended(i);
            assert!(b.answered(false, now));
            assert!(!b.holding());
        }
    }

    /// Calls one right after another with no callback in between form a
    /// burst: from the second on their messages are held, up to
    /// BURST_HELD_CALLS calls, then written together.
    #[test]
    fn back_to_back_calls_are_held_together() {
        let mut b = Burst::default();
        let t = Instant::now();
        assert!(!b.joins(t, 0), "the first call has nothing before it");
        b.ended(0);
        assert!(b.answered(false, t));
        let mut writes = 0;
        let mut now = t;
        for _ in 0..2 * BURST_HELD_CALLS {
            now += Duration::from_micros(2);
            let joins = b.joins(now, 0);
            assert!(joins);
            b.ended(0);
            if b.answered(joins, now) {
                writes += 1;
                assert!(!b.holding());
            }
        }
        assert_eq!(writes, 2, "one write per BURST_HELD_CALLS calls");
        // While calls are held a callback does not end the burst: the held
        // calls cannot have completed, so nobody waited for them.
        now += Duration::from_micros(2);
        b.ended(0);
        assert!(!b.answered(true, now));
        assert!(b.holding());
        assert!(b.joins(now + Duration::from_micros(2), 5));
    }

    /// A call that comes later than BURST_GAP after the reply, or after a
    /// call that holds nothing, starts afresh.
    #[test]
    fn a_pause_or_another_call_ends_a_burst() {
        let mut b = Burst::default();
        let t = Instant::now();
        b.ended(0);
        b.answered(false, t);
        assert!(!b.joins(t + BURST_GAP + Duration::from_micros(1), 0));
        assert!(b.joins(t + BURST_GAP / 2, 0));
        b.interrupted();
        assert!(!b.joins(t + Duration::from_micros(1), 0));
        b.ended(0);
        assert!(b.answered(false, t));
        assert!(!b.answered(true, t + Duration::from_micros(1)));
        assert!(b.holding());
        b.written();
        assert!(!b.holding());
    }
}
