//! The node's local socket: how `udlmd` serves the processes of the host.
//!
//! One thread accepts connections on `<run dir>/udlmd.sock`; each connection
//! gets a thread that reads its first packet. An `Open` (with the handle's
//! event socket attached) makes it a handle: once opened, it is handed to
//! the handles' event loop (node/handles.rs), which serves its calls until
//! the program goes away and then closes it (releasing or orphaning its
//! locks). A `Query` gets one answer, and so does a `Control` (membership
//! from outside, node/control.rs). A peer that sends garbage, an unknown
//! version, or vanishes mid-request only loses its own connection.
//!
//! The embedded node (client.rs) serves its handles with the same
//! functions: [`handle_request`], and the waits of [`lock_when_ready`]
//! and [`inspect_wait`].

use super::control::Control;
use super::handles::HandleLoop;
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
    let handles = HandleLoop::start(Arc::clone(&node))?;
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
        let handles = Arc::clone(&handles);
        let _ = std::thread::Builder::new()
            .name("udlm-conn".into())
            .spawn(move || serve_connection(node, conn, control.as_deref(), &handles));
    }
}

fn lock_node(node: &Mutex<Node>) -> std::sync::MutexGuard<'_, Node> {
    node.lock().unwrap_or_else(|e| e.into_inner())
}

fn reply(conn: &OwnedFd, r: &proto::Reply) -> bool {
    sys::send(conn.as_raw_fd(), &proto::encode_reply(r), false).is_ok()
}

fn serve_connection(
    node: Arc<Mutex<Node>>,
    conn: OwnedFd,
    control: Option<&Control>,
    handles: &HandleLoop,
) {
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
                        handles.adopt(owner, conn);
                    } else {
                        lock_node(&node).close(owner);
                    }
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
    let mut token = None;
    loop {
        let waited_out = start.elapsed().as_millis() >= u128::from(INSPECT_WAIT_MS);
        match inspect_step(&mut lock_node(node), owner, &target, token, waited_out) {
            InspectLook::Answer(r) => return r,
            InspectLook::Wait(t) => token = t,
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// One look at a query, by [`inspect_wait`] or the handles' loop.
pub(super) enum InspectLook {
    Answer(Result<ResourceView, Errno>),
    /// Look again later; `Some` once the resource's master was asked.
    Wait(Option<u64>),
}

/// One look at query `target` of `owner`: during a recovery it waits like
/// a lock call; then the node asks the master (`token` from then on), and
/// it waits for the answer; once `waited_out`, EAGAIN.
pub(super) fn inspect_step(
    n: &mut Node,
    owner: crate::types::Owner,
    target: &InspectTarget,
    token: Option<u64>,
    waited_out: bool,
) -> InspectLook {
    let token = match token {
        Some(t) => t,
        None if n.operations_blocked() => {
            return if waited_out {
                InspectLook::Answer(Err(Errno::Again))
            } else {
                InspectLook::Wait(None)
            };
        }
        None => match n.inspect(owner, target.clone()) {
            InspectStep::Done(r) => return InspectLook::Answer(r),
            InspectStep::Pending(t) => t,
        },
    };
    if let Some(r) = n.inspect_answer(token) {
        return InspectLook::Answer(r);
    }
    if waited_out {
        n.inspect_abandon(token);
        return InspectLook::Answer(Err(Errno::Again));
    }
    InspectLook::Wait(Some(token))
}

/// A query's answer: a reply carrying its length, then the JSON text in
/// packets of at most [`proto::QUERY_CHUNK`] bytes.
fn send_answer(conn: &OwnedFd, answer: Result<String, Errno>) {
    let fd = conn.as_raw_fd();
    send_bytes(answer.map(String::into_bytes), |p| {
        sys::send(fd, p, false).is_ok()
    });
}

/// Sends an answer of bytes with `send` (one packet a call, false when it
/// failed): a reply carrying the length, then the bytes in packets of at
/// most [`proto::QUERY_CHUNK`] bytes. Whether all went out.
pub(super) fn send_bytes(
    answer: Result<Vec<u8>, Errno>,
    mut send: impl FnMut(&[u8]) -> bool,
) -> bool {
    let text = match answer {
        Ok(t) if t.len() <= proto::MAX_QUERY_ANSWER => t,
        Ok(_) => return send(&proto::encode_reply(&Err(Errno::NoMem))),
        Err(e) => return send(&proto::encode_reply(&Err(e))),
    };
    if !send(&proto::encode_reply(&Ok(text.len() as u64))) {
        return false;
    }
    text.chunks(proto::QUERY_CHUNK).all(&mut send)
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
    let came = std::time::Instant::now();
    let mut n = lock_node(node);
    while !may_run(&mut n, owner, req, came) {
        // Messages of earlier calls of a burst go before this one waits.
        crate::net::Net::write_held();
        drop(n);
        std::thread::sleep(std::time::Duration::from_millis(2));
        n = lock_node(node);
    }
    n
}

/// Whether lock call `req` of `owner`, which came at `came`, may run now:
/// not during a recovery, and an adoption not while its orphan's mode is
/// unsettled (at most [`ADOPT_SETTLE_WAIT_MS`]).
pub(super) fn may_run(
    n: &mut Node,
    owner: crate::types::Owner,
    req: &Request,
    came: std::time::Instant,
) -> bool {
    if n.operations_blocked() {
        return false;
    }
    match req {
        Request::Lock { flags, name, .. } if flags & crate::types::lkf::ORPHAN != 0 => {
            !n.adoption_unsettled(owner, name)
                || came.elapsed().as_millis() >= u128::from(ADOPT_SETTLE_WAIT_MS)
        }
        _ => true,
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
