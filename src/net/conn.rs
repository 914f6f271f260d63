//! The transport's threads and the session state machine: the acceptor, one
//! dialer per peer, the handshake + reader of every connection, the writer
//! of every session, session install / teardown (with the tie-break that
//! keeps exactly one session per pair of nodes), and shutdown.
//!
//! Lock order: a peer's `rx` (delivery lock) before its `tx`; never hold a
//! `tx` while calling the handler (the handler may call `Net::send`, which
//! takes `tx`). No lock is held across a socket read or write, except
//! that `Net::send` may write a frame without blocking while its caller
//! holds the node's lock (see `write_now`).

use std::cell::Cell;
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, MutexGuard};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::frame::{
    self, read_frame, reason, Bye, FrameType, Header, Hello, HelloReply, ReadError, FLAG_AUTH,
    MAC_LEN,
};
use super::{auth, lock, Conn, Inner, Peer, Session, TxState};

thread_local! {
    /// Set in every transport thread, so `shutdown` called from one (e.g.
    /// from a handler) does not try to join itself or its siblings.
    pub(crate) static IN_NET_THREAD: Cell<bool> = const { Cell::new(false) };
    /// While a thread holds its writes (`hold_writes`: a reader while its
    /// handler runs, or a thread outside the transport): the transports
    /// and peers it queued messages for.
    static HELD: std::cell::RefCell<Option<HeldPeers>> = const { std::cell::RefCell::new(None) };
}

/// The transports and peers a thread holding its writes queued for.
type HeldPeers = Vec<(Arc<Inner>, u32)>;

/// Ack at the latest after this many delivered frames...
const ACK_EVERY: u64 = 32;
/// ...or this long after the first unacknowledged delivery.
const ACK_DELAY: Duration = Duration::from_millis(5);
/// Bounds on what one writer wake-up sends before looking at the queue again.
const WRITE_BATCH_FRAMES: usize = 64;
/// Most DATA frames handed to the handler in one call.
const DELIVER_BATCH: usize = 64;
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// How often a frozen thread (test hook) looks whether it was thawed.
const FREEZE_POLL: Duration = Duration::from_millis(10);
const IO_BUF: usize = 64 * 1024;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// A writer's sleep. The session's writer says it sleeps
/// (`TxState::writer_asleep`), so that a sender wakes it only then
/// (`TxState::wake_writer`).
fn wait_timeout<'a>(
    cv: &Condvar,
    mut g: MutexGuard<'a, TxState>,
    conn_id: u64,
    d: Duration,
) -> MutexGuard<'a, TxState> {
    if g.is_session(conn_id) {
        g.writer_asleep = conn_id;
    }
    let mut g = match cv.wait_timeout(g, d) {
        Ok((g, _)) => g,
        Err(e) => e.into_inner().0,
    };
    if g.writer_asleep == conn_id {
        g.writer_asleep = 0;
    }
    g
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// "peer 2 (10.0.0.2:21064)" or "peer ? (addr)" before the peer said who it is.
fn who(id: Option<u32>, addr: SocketAddr) -> String {
    match id {
        Some(id) => format!("peer {id} ({addr})"),
        None => format!("peer ? ({addr})"),
    }
}

pub(crate) fn bind_listener(addr: SocketAddr) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // A restarted node must get its port back while old connections linger in TIME_WAIT.
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(128)?;
    Ok(s)
}

fn tune(stream: &TcpStream, peer_timeout_ms: u64) -> io::Result<()> {
    stream.set_nodelay(true)?;
    // A read that waits this long means the peer sent nothing, not even a
    // heartbeat: that is the liveness rule. A write that waits this long
    // means the peer stopped reading.
    stream.set_read_timeout(Some(ms(peer_timeout_ms)))?;
    stream.set_write_timeout(Some(ms(peer_timeout_ms)))?;
    // Heartbeats do the real work; keepalive only reaps a connection whose
    // threads are gone for some other reason.
    SockRef::from(stream).set_keepalive(true)?;
    Ok(())
}

fn write_frame(mut w: impl Write, h: &Header, payload: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(frame::HEADER_LEN + payload.len());
    frame::encode_frame(h, payload, &mut buf);
    w.write_all(&buf)?;
    w.flush()
}

fn send_bye(inner: &Inner, conn: &Conn, code: u32, text: &str) {
    let h = Header::new(FrameType::Bye, inner.cfg.local_id);
    let _ = write_frame(
        &conn.stream,
        &h,
        &Bye {
            reason: code,
            text: text.to_string(),
        }
        .encode(),
    );
}

/// The acceptor thread: hands every incoming connection to a thread of its own.
pub(crate) fn acceptor(inner: Arc<Inner>) {
    // A flood of connections that never finish their handshake must not
    // grow threads without bound; real peers need at most one or two each.
    let mut last_error_log: Option<Instant> = None;
    loop {
        let limit = 16 + 2 * inner.peer_list().len();
        let r = inner.listener.accept();
        if inner.is_shutdown() {
            return;
        }
        match r {
            Ok((sock, addr)) => {
                let stream: TcpStream = sock.into();
                let remote = match addr.as_socket() {
                    Some(a) => a,
                    None => continue,
                };
                if inner.pending_incoming.load(Ordering::SeqCst) >= limit {
                    inner.log(format!(
                        "{}: refused: too many connections in handshake ({limit})",
                        who(None, remote)
                    ));
                    continue;
                }
                inner.pending_incoming.fetch_add(1, Ordering::SeqCst);
                let i = inner.clone();
                let spawned = inner.spawn("udlm-net-in".into(), move || {
                    run_connection(i, stream, remote, None);
                });
                if let Err(e) = spawned {
                    inner.pending_incoming.fetch_sub(1, Ordering::SeqCst);
                    inner.log(format!(
                        "{}: cannot start a connection thread: {e}",
                        who(None, remote)
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // E.g. out of file descriptors: log once a second, back off.
                if last_error_log.map_or(true, |t| t.elapsed() >= Duration::from_secs(1)) {
                    inner.log(format!("accept on {} failed: {e}", inner.local_addr));
                    last_error_log = Some(Instant::now());
                }
                inner.sleep(Duration::from_millis(50));
            }
        }
    }
}

fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    s.set_nodelay(true)?;
    s.connect_timeout(&addr.into(), timeout)?;
    Ok(s.into())
}

/// The dialer of one peer: whenever there is no session, try its addresses
/// in order, every `reconnect_ms`. The connection it makes is run in this
/// same thread, so a peer never has two dialed connections from us at once.
pub(crate) fn dialer(inner: Arc<Inner>, peer: Arc<Peer>) {
    let local = inner.cfg.local_id;
    let reconnect = ms(inner.cfg.reconnect_ms);
    let connect_timeout = ms(inner.cfg.peer_timeout_ms.clamp(100, 2000));
    let lower = local < peer.id;
    // The higher id always waits a reconnect interval before dialing, so
    // that when both nodes dial at once the lower id's connection (the one
    // the tie-break keeps) usually wins without a duplicate being made.
    let mut delay = !lower;
    let mut failure_logged = false;
    loop {
        {
            let mut tx = lock(&peer.tx);
            while tx.session.is_some() && !inner.is_shutdown() && !peer.is_removed() {
                // A session ended: the lower id redials at once.
                delay = !lower;
                tx = wait_timeout(&peer.dial_cv, tx, 0, Duration::from_secs(1));
            }
        }
        if inner.is_shutdown() || peer.is_removed() {
            return;
        }
        if delay {
            inner.sleep(reconnect);
            if inner.is_shutdown() || peer.is_removed() {
                return;
            }
            if lock(&peer.tx).session.is_some() {
                continue;
            }
        }
        delay = true;
        if inner.is_frozen() {
            continue;
        }
        let mut last_err = None;
        let mut stream = None;
        let addrs = lock(&peer.addrs).clone();
        for addr in &addrs {
            match connect(*addr, connect_timeout) {
                Ok(s) => {
                    stream = Some((s, *addr));
                    break;
                }
                Err(e) => last_err = Some((*addr, e)),
            }
        }
        match stream {
            Some((s, addr)) => {
                failure_logged = false;
                if run_connection(inner.clone(), s, addr, Some(peer.clone())) && lower {
                    delay = false;
                }
            }
            None => {
                // Log the first failure of a series only: a peer that is
                // down would otherwise fill the log every reconnect_ms.
                if !failure_logged {
                    if let Some((addr, e)) = last_err {
                        inner.log(format!(
                            "{}: cannot connect: {e} (retrying every {} ms)",
                            who(Some(peer.id), addr),
                            inner.cfg.reconnect_ms
                        ));
                    }
                    failure_logged = true;
                }
            }
        }
    }
}

/// Cleans up a connection on every way out of `run_connection`, including
/// a panic in the handler: close the socket, forget it, and end the session
/// if it had become one.
struct ConnGuard<'a> {
    inner: &'a Inner,
    conn: &'a Arc<Conn>,
    pending_incoming: bool,
    peer: Option<Arc<Peer>>,
}

impl Drop for ConnGuard<'_> {
    fn drop(&mut self) {
        self.conn.close();
        lock(&self.inner.conns).remove(&self.conn.id);
        if self.pending_incoming {
            self.inner.pending_incoming.fetch_sub(1, Ordering::SeqCst);
        }
        if let Some(peer) = self.peer.take() {
            end_session(self.inner, &peer, self.conn);
        }
    }
}

/// Why a handshake or an install did not lead to a session.
struct Refusal {
    /// The peer id, once it said it.
    peer: Option<u32>,
    /// BYE reason to send, if the peer should be told.
    bye: Option<u32>,
    text: String,
}

impl Refusal {
    fn new(peer: Option<u32>, bye: Option<u32>, text: String) -> Refusal {
        Refusal { peer, bye, text }
    }
}

/// Run one connection from handshake to close, in the calling thread.
/// `expected` is the peer we dialed (None: accepted). Returns whether the
/// connection became the peer's session.
fn run_connection(
    inner: Arc<Inner>,
    stream: TcpStream,
    remote: SocketAddr,
    expected: Option<Arc<Peer>>,
) -> bool {
    let id = inner.next_conn_id.fetch_add(1, Ordering::SeqCst);
    let conn = Arc::new(Conn {
        id,
        stream,
        remote,
        active: Default::default(),
    });
    lock(&inner.conns).insert(id, conn.clone());
    let mut guard = ConnGuard {
        inner: &inner,
        conn: &conn,
        pending_incoming: expected.is_none(),
        peer: None,
    };
    // Checked after registering, so a shutdown that already swept the
    // registry cannot miss this connection.
    if inner.is_shutdown() {
        return false;
    }
    if let Err(e) = tune(&conn.stream, inner.cfg.peer_timeout_ms) {
        inner.log(format!(
            "{}: cannot set socket options: {e}",
            who(expected.as_ref().map(|p| p.id), remote)
        ));
        return false;
    }
    let mut reader = match conn.stream.try_clone() {
        Ok(s) => BufReader::with_capacity(IO_BUF, s),
        Err(e) => {
            inner.log(format!(
                "{}: cannot clone the socket: {e}",
                who(None, remote)
            ));
            return false;
        }
    };
    let peer = match handshake(&inner, &conn, &mut reader, expected.as_ref()) {
        Ok(p) => p,
        Err(r) => {
            if !inner.is_shutdown() {
                // Our own refusals tell the peer (bye); the rest are the
                // peer's refusals and I/O failures, whose text says so.
                let verb = if r.bye.is_some() { "refused: " } else { "" };
                inner.log_limited(
                    format!("{:?} {}", r.peer, r.text),
                    format!("{}: {verb}{}", who(r.peer, remote), r.text),
                );
            }
            if let Some(code) = r.bye {
                send_bye(&inner, &conn, code, &r.text);
            }
            return false;
        }
    };
    if guard.pending_incoming {
        guard.pending_incoming = false;
        inner.pending_incoming.fetch_sub(1, Ordering::SeqCst);
    }
    guard.peer = Some(peer.clone());

    // `install` counted the writer already (so that a shutdown racing with
    // this spawn still waits for its BYE); every way out uncounts it.
    let wstream = match conn.stream.try_clone() {
        Ok(s) => s,
        Err(e) => {
            inner.writers.fetch_sub(1, Ordering::SeqCst);
            inner.log(format!(
                "{}: cannot clone the socket: {e}",
                who(Some(peer.id), remote)
            ));
            return true;
        }
    };
    let (i, p, c) = (inner.clone(), peer.clone(), conn.clone());
    if let Err(e) = inner.spawn(format!("udlm-net-wr-{}", peer.id), move || {
        writer(&i, &p, &c, wstream);
        i.writers.fetch_sub(1, Ordering::SeqCst);
    }) {
        inner.writers.fetch_sub(1, Ordering::SeqCst);
        inner.log(format!(
            "{}: cannot start the writer thread: {e}",
            who(Some(peer.id), remote)
        ));
        return true;
    }
    read_loop(&inner, &peer, &conn, &mut reader);
    true
}

/// Block while the node is frozen (test hook); false if shut down meanwhile.
fn thaw(inner: &Inner) -> bool {
    while inner.is_frozen() && !inner.is_shutdown() {
        std::thread::sleep(FREEZE_POLL);
    }
    !inner.is_shutdown()
}

/// Read one handshake frame. A BYE from the peer (it refused us) and every
/// error become a Refusal.
fn read_handshake_frame(
    inner: &Inner,
    reader: &mut BufReader<TcpStream>,
    peer: Option<u32>,
    want: FrameType,
) -> Result<(Header, Vec<u8>), Refusal> {
    if !thaw(inner) {
        return Err(Refusal::new(peer, None, "shutting down".into()));
    }
    let (h, payload) = match read_frame(reader, inner.cfg.max_message) {
        Ok(f) => f,
        Err(ReadError::Eof) => {
            return Err(Refusal::new(
                peer,
                None,
                "connection closed during the handshake".into(),
            ))
        }
        Err(ReadError::Io(e)) if is_timeout(&e) => {
            return Err(Refusal::new(
                peer,
                None,
                format!("handshake timed out after {} ms", inner.cfg.peer_timeout_ms),
            ))
        }
        Err(ReadError::Io(e)) => {
            return Err(Refusal::new(peer, None, format!("handshake failed: {e}")))
        }
        Err(ReadError::Frame(e)) => {
            return Err(Refusal::new(
                peer,
                Some(reason::PROTOCOL),
                format!("protocol error: {e}"),
            ))
        }
    };
    if h.ftype == FrameType::Bye {
        let text = match Bye::decode(&payload) {
            Ok(b) => format!(
                "refused by the peer: {} ({})",
                reason::name(b.reason),
                b.text
            ),
            Err(e) => format!("refused by the peer ({e})"),
        };
        return Err(Refusal::new(peer, None, text));
    }
    if h.ftype != want {
        return Err(Refusal::new(
            peer,
            Some(reason::PROTOCOL),
            format!(
                "protocol error: expected {}, got {}",
                want.name(),
                h.ftype.name()
            ),
        ));
    }
    Ok((h, payload))
}

/// The handshake (docs/PROTOCOL.md "Handshake"). Both sides send HELLO at
/// once. The dialer answers the acceptor's challenge first; the acceptor
/// answers only after the dialer's answer verified and the session was
/// installed, so a stranger who connects to us cannot use us as an oracle
/// for answers to another node's challenge, and a connection the acceptor
/// refuses as a duplicate never comes up on the dialer's side.
fn handshake(
    inner: &Inner,
    conn: &Arc<Conn>,
    reader: &mut BufReader<TcpStream>,
    expected: Option<&Arc<Peer>>,
) -> Result<Arc<Peer>, Refusal> {
    let cfg = &inner.cfg;
    let local = cfg.local_id;
    let cluster = cfg.cluster_name.as_bytes();
    let key = cfg.key.as_deref();
    let dialing = expected.is_some();
    let io_err =
        |p: Option<u32>, e: io::Error| Refusal::new(p, None, format!("handshake failed: {e}"));

    if !thaw(inner) {
        return Err(Refusal::new(None, None, "shutting down".into()));
    }
    let nonce = auth::random_nonce();
    let ours = Hello {
        node_id: local,
        target_id: expected.map_or(0, |p| p.id),
        incarnation: inner.incarnation,
        nonce,
        cluster: cluster.to_vec(),
    };
    let mut h = Header::new(FrameType::Hello, local);
    if key.is_some() {
        h.flags |= FLAG_AUTH;
    }
    let exp_id = expected.map(|p| p.id);
    write_frame(&conn.stream, &h, &ours.encode()).map_err(|e| io_err(exp_id, e))?;

    let (ph, payload) = read_handshake_frame(inner, reader, exp_id, FrameType::Hello)?;
    let theirs = Hello::decode(&payload).map_err(|e| {
        Refusal::new(
            exp_id,
            Some(reason::PROTOCOL),
            format!("protocol error: {e}"),
        )
    })?;
    let claimed = Some(theirs.node_id);
    if ph.sender != theirs.node_id {
        return Err(Refusal::new(
            claimed,
            Some(reason::PROTOCOL),
            "protocol error: HELLO sender mismatch".into(),
        ));
    }
    if theirs.cluster != cluster {
        return Err(Refusal::new(
            claimed,
            Some(reason::WRONG_CLUSTER),
            format!(
                "wrong cluster name {:?} (this node is in {:?})",
                String::from_utf8_lossy(&theirs.cluster),
                cfg.cluster_name
            ),
        ));
    }
    if let Some(exp) = expected {
        if exp.id != theirs.node_id {
            return Err(Refusal::new(
                claimed,
                Some(reason::WRONG_TARGET),
                format!("dialed node {} but reached node {}", exp.id, theirs.node_id),
            ));
        }
    }
    if theirs.node_id == local {
        return Err(Refusal::new(
            claimed,
            Some(reason::UNKNOWN_NODE),
            format!("peer claims this node's own id {local}"),
        ));
    }
    let peer = match inner.peer(theirs.node_id) {
        Some(p) => p,
        None => {
            return Err(Refusal::new(
                claimed,
                Some(reason::UNKNOWN_NODE),
                format!(
                    "unknown node id {} (not in the configured peers)",
                    theirs.node_id
                ),
            ))
        }
    };
    if theirs.target_id != 0 && theirs.target_id != local {
        return Err(Refusal::new(
            claimed,
            Some(reason::WRONG_TARGET),
            format!(
                "peer meant to reach node {}, this is node {local}",
                theirs.target_id
            ),
        ));
    }
    match (key.is_some(), ph.flags & FLAG_AUTH != 0) {
        (true, false) => {
            return Err(Refusal::new(
                claimed,
                Some(reason::AUTH_MISMATCH),
                "authentication failed: peer has no cluster key".into(),
            ))
        }
        (false, true) => {
            return Err(Refusal::new(
                claimed,
                Some(reason::AUTH_MISMATCH),
                "authentication failed: peer uses a cluster key, none is configured here".into(),
            ))
        }
        _ => {}
    }

    let reply_for = |ack: u64| -> (Header, Vec<u8>) {
        let mac = match key {
            Some(k) => auth::mac(k, &theirs.nonce, local, cluster, inner.incarnation),
            None => [0u8; MAC_LEN],
        };
        let mut rh = Header::new(FrameType::HelloReply, local);
        rh.ack = ack;
        (
            rh,
            HelloReply {
                node_id: local,
                incarnation: inner.incarnation,
                mac,
            }
            .encode(),
        )
    };

    if dialing {
        // What we already delivered from this incarnation of the peer, so it
        // can drop those from its queue instead of resending them.
        let ack = {
            let tx = lock(&peer.tx);
            if tx.incarnation == Some(theirs.incarnation) {
                tx.ack_out
            } else {
                0
            }
        };
        let (rh, rp) = reply_for(ack);
        write_frame(&conn.stream, &rh, &rp).map_err(|e| io_err(claimed, e))?;
    }

    let (rh2, payload) = read_handshake_frame(inner, reader, claimed, FrameType::HelloReply)?;
    let reply = HelloReply::decode(&payload).map_err(|e| {
        Refusal::new(
            claimed,
            Some(reason::PROTOCOL),
            format!("protocol error: {e}"),
        )
    })?;
    if rh2.sender != theirs.node_id
        || reply.node_id != theirs.node_id
        || reply.incarnation != theirs.incarnation
    {
        return Err(Refusal::new(
            claimed,
            Some(reason::PROTOCOL),
            "protocol error: HELLO_REPLY does not match the HELLO".into(),
        ));
    }
    if let Some(k) = key {
        if !auth::verify(
            k,
            &nonce,
            theirs.node_id,
            cluster,
            theirs.incarnation,
            &reply.mac,
        ) {
            return Err(Refusal::new(
                claimed,
                Some(reason::AUTH_FAILED),
                "authentication failed: challenge response does not verify (different cluster key?)".into(),
            ));
        }
    }

    let dialer = if dialing { local } else { theirs.node_id };
    let delivered = install(inner, &peer, conn, theirs.incarnation, dialer, rh2.ack)?;
    if !dialing {
        let (rh, rp) = reply_for(delivered);
        let written = write_frame(&conn.stream, &rh, &rp);
        {
            let mut tx = lock(&peer.tx);
            if tx.writing == conn.id {
                tx.writing = 0;
            }
        }
        // The writer may go on with what was queued meanwhile.
        peer.cv.notify_all();
        // On failure the session is installed already; the caller's guard ends it.
        if let Err(e) = written {
            inner.log(format!(
                "{}: handshake failed: {e}",
                who(claimed, conn.remote)
            ));
            conn.close();
        }
    }
    Ok(peer)
}

/// Make `conn` the session of `peer`, or refuse it. Applies the tie-break,
/// detects a peer restart, resets the sequence state accordingly, and tells
/// the handler. Returns what we have delivered from the peer (the ack to
/// send in our HELLO_REPLY).
fn install(
    inner: &Inner,
    peer: &Arc<Peer>,
    conn: &Arc<Conn>,
    incarnation: u64,
    dialer: u32,
    peer_ack: u64,
) -> Result<u64, Refusal> {
    let local = inner.cfg.local_id;
    let mut rx = lock(&peer.rx);
    if inner.is_shutdown() {
        return Err(Refusal::new(
            Some(peer.id),
            Some(reason::SHUTDOWN),
            "shutting down".into(),
        ));
    }
    if peer.is_removed() {
        return Err(Refusal::new(
            Some(peer.id),
            Some(reason::UNKNOWN_NODE),
            format!("node {} was removed from the cluster", peer.id),
        ));
    }
    let mut tx = lock(&peer.tx);
    if let Some(cur) = &tx.session {
        // Both nodes may dial at once: keep the connection dialed by the
        // lower id. Any other newcomer of the same incarnation wins, since
        // its dialer only dials after losing its previous session; a new
        // incarnation always wins, since the old process is gone.
        let lower = local.min(peer.id);
        if cur.incarnation == incarnation && cur.dialer == lower && dialer != lower {
            return Err(Refusal::new(
                Some(peer.id),
                Some(reason::DUPLICATE),
                format!("duplicate connection: the one dialed by node {lower} is kept"),
            ));
        }
    }
    let changed = matches!(tx.incarnation, Some(old) if old != incarnation);
    let next_seq = if changed { 1 } else { tx.next_seq };
    if peer_ack >= next_seq {
        return Err(Refusal::new(
            Some(peer.id),
            Some(reason::PROTOCOL),
            format!(
                "protocol error: peer acknowledges seq {peer_ack}, only {} sent",
                next_seq - 1
            ),
        ));
    }
    let old = tx.session.take();
    if let Some(o) = &old {
        o.conn.active.store(false, Ordering::SeqCst);
    }
    if changed {
        let dropped = tx.queue.len();
        tx.queue.clear();
        tx.next_seq = 1;
        tx.acked = 0;
        inner.log(format!(
            "{}: peer restarted (incarnation {:016x} -> {incarnation:016x}); {dropped} queued message(s) discarded",
            who(Some(peer.id), conn.remote),
            tx.incarnation.unwrap_or(0)
        ));
    }
    if changed || tx.incarnation.is_none() {
        rx.delivered = 0;
    }
    tx.incarnation = Some(incarnation);
    tx.trim(peer_ack);
    // Resend everything not acknowledged: the receiver drops duplicates.
    tx.cursor = tx.acked + 1;
    tx.ack_out = rx.delivered;
    tx.ack_sent = 0;
    tx.ack_since = if rx.delivered > 0 {
        Some(Instant::now())
    } else {
        None
    };
    // What a thread may still be writing, or have left unwritten, belongs
    // to the old connection; this one starts with the resend. On the
    // accepting side our HELLO_REPLY is still to be written, and must come
    // first: until then this thread counts as the one writing, so that a
    // `Net::send` (from `on_peer_up` below, say) queues instead.
    tx.writing = if dialer == local { 0 } else { conn.id };
    tx.partial = None;
    tx.session = Some(Session {
        conn: conn.clone(),
        incarnation,
        dialer,
    });
    conn.active.store(true, Ordering::SeqCst);
    // The session's writer, about to be started by the caller.
    inner.writers.fetch_add(1, Ordering::SeqCst);
    let resend = tx.queue.len();
    peer.cv.notify_all();
    drop(tx);
    if let Some(o) = old {
        o.conn.close();
        inner.log(format!(
            "{}: replaced connection with {} by this one",
            who(Some(peer.id), conn.remote),
            o.conn.remote
        ));
    }
    if changed && rx.up {
        rx.up = false;
        inner.handler.on_peer_down(peer.id);
    }
    if !rx.up {
        inner.log(format!(
            "{}: session up (incarnation {incarnation:016x}, dialed by node {dialer}, {resend} message(s) to (re)send)",
            who(Some(peer.id), conn.remote)
        ));
        rx.up = true;
        inner.handler.on_peer_up(peer.id, incarnation);
    }
    Ok(rx.delivered)
}

/// Tear down the session on `conn`, if it still is the peer's session.
fn end_session(inner: &Inner, peer: &Arc<Peer>, conn: &Arc<Conn>) {
    conn.close();
    let mut rx = lock(&peer.rx);
    let was = {
        let mut tx = lock(&peer.tx);
        if tx.is_session(conn.id) {
            tx.session = None;
            conn.active.store(false, Ordering::SeqCst);
            peer.cv.notify_all();
            peer.dial_cv.notify_all();
            true
        } else {
            false
        }
    };
    if was && rx.up {
        rx.up = false;
        if !inner.is_shutdown() {
            inner.log(format!("{}: session down", who(Some(peer.id), conn.remote)));
            inner.handler.on_peer_down(peer.id);
        }
    }
}

/// The reader of an established session: acks, delivery, BYE. Returns when
/// the connection must close (the caller's guard ends the session).
fn read_loop(inner: &Inner, peer: &Arc<Peer>, conn: &Arc<Conn>, reader: &mut BufReader<TcpStream>) {
    let w = || who(Some(peer.id), conn.remote);
    let mut ack_seen = 0u64;
    // DATA frames read but not yet handed over: those that arrived
    // together go to the handler at once, before the thread can block in
    // a read, so a lone message waits for nothing.
    let mut batch: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut spin = crate::sys::SpinBudget::new();
    loop {
        // On shutdown keep reading (without delivering) until the peer
        // closes: closing here could beat our writer's BYE to the socket.
        thaw(inner);
        if !batch.is_empty()
            && (batch.len() >= DELIVER_BATCH
                || !frame::whole_frame_in(reader.buffer(), inner.cfg.max_message))
        {
            let delivered = deliver(inner, peer, conn, &mut batch);
            write_held();
            if !delivered {
                return;
            }
        }
        if reader.buffer().is_empty() {
            wait_spinning(reader.get_ref(), &mut spin);
        }
        let (h, payload) = match read_frame(reader, inner.cfg.max_message) {
            Ok(f) => f,
            Err(e) => {
                if inner.is_shutdown() || !conn.active.load(Ordering::SeqCst) {
                    return;
                }
                let why = match e {
                    ReadError::Eof => "connection closed by the peer".to_string(),
                    ReadError::Io(e) if is_timeout(&e) => {
                        format!(
                            "silent for {} ms: connection considered dead",
                            inner.cfg.peer_timeout_ms
                        )
                    }
                    ReadError::Io(e) => format!("connection lost: {e}"),
                    // No BYE here: after the handshake the writer owns the
                    // sending side, and a frame from this thread could
                    // interleave with one of its frames.
                    ReadError::Frame(e) => format!("protocol error: {e}; closing"),
                };
                inner.log(format!("{}: {why}", w()));
                return;
            }
        };
        if h.sender != peer.id {
            inner.log(format!(
                "{}: protocol error: frame claims sender {}; closing",
                w(),
                h.sender
            ));
            return;
        }
        if h.ack > ack_seen {
            let mut tx = lock(&peer.tx);
            if !tx.is_session(conn.id) {
                return;
            }
            if h.ack >= tx.next_seq {
                drop(tx);
                inner.log(format!(
                    "{}: protocol error: ack {} for a message never sent; closing",
                    w(),
                    h.ack
                ));
                return;
            }
            tx.trim(h.ack);
            ack_seen = h.ack;
        }
        match h.ftype {
            FrameType::Data => batch.push((h.seq, payload)),
            FrameType::Ack | FrameType::Heartbeat => {}
            FrameType::Bye => {
                // What the peer sent before its BYE is still its word.
                if !batch.is_empty() {
                    let delivered = deliver(inner, peer, conn, &mut batch);
                    write_held();
                    if !delivered {
                        return;
                    }
                }
                let text = match Bye::decode(&payload) {
                    Ok(b) => format!("{}: {}", reason::name(b.reason), b.text),
                    Err(e) => e.to_string(),
                };
                if !inner.is_shutdown() {
                    inner.log(format!("{}: peer closed the session ({text})", w()));
                }
                return;
            }
            FrameType::Hello | FrameType::HelloReply => {
                inner.log(format!(
                    "{}: protocol error: {} after the handshake; closing",
                    w(),
                    h.ftype.name()
                ));
                return;
            }
        }
    }
}

/// Before the reader sleeps in a read, it looks for data without sleeping
/// for a while (`DLM_SPIN_US`, adapted like a local link's wait:
/// `sys::recv_spin`): the answer to what this node just sent usually comes
/// sooner than a wake-up on another CPU takes.
fn wait_spinning(stream: &TcpStream, spin: &mut crate::sys::SpinBudget) {
    let fd = stream.as_raw_fd();
    let _ = spin.poll(crate::sys::spin_us(), || {
        crate::sys::poll_one(fd, false, 0).map(|ready| ready.then_some(()))
    });
}

/// Deliver the DATA frames of `batch` (emptied) that are next in sequence,
/// dropping duplicates (resends after a reconnect). False: close the
/// connection (a gap; the frames before it are resent on the next session,
/// since they are not acknowledged).
fn deliver(
    inner: &Inner,
    peer: &Arc<Peer>,
    conn: &Arc<Conn>,
    batch: &mut Vec<(u64, Vec<u8>)>,
) -> bool {
    let mut rx = lock(&peer.rx);
    // A replaced connection must not deliver: its successor owns the stream now.
    if !conn.active.load(Ordering::SeqCst) {
        batch.clear();
        return false;
    }
    // No handler call once shutdown started; the reader drains until the peer closes.
    if inner.is_shutdown() {
        batch.clear();
        return true;
    }
    let mut next = rx.delivered + 1;
    let mut fresh: Vec<&[u8]> = Vec::with_capacity(batch.len());
    for (seq, payload) in batch.iter() {
        if *seq > next {
            inner.log(format!(
                "{}: protocol error: DATA seq {seq} after {} (gap); closing",
                who(Some(peer.id), conn.remote),
                next - 1
            ));
            batch.clear();
            return false;
        }
        if *seq == next {
            fresh.push(payload);
            next += 1;
        }
    }
    if !fresh.is_empty() {
        // What the handler sends goes out when it returns, in one write
        // per peer, by this thread (`write_held` in the read loop).
        hold_writes();
        inner.handler.on_messages(peer.id, &fresh);
        rx.delivered = next - 1;
    }
    drop(fresh);
    batch.clear();
    let delivered = rx.delivered;
    let mut tx = lock(&peer.tx);
    if tx.is_session(conn.id) && delivered > tx.ack_sent {
        tx.ack_out = delivered;
        // An ack rides on the next frame the writer sends anyway (most
        // messages get an answer); the writer is woken only when a batch's
        // worth is pending, else it sends the ack at its next wake-up (data,
        // or the heartbeat at the latest). Waking it for every message cost a
        // context switch per message for nothing.
        if tx.ack_since.is_none() {
            tx.ack_since = Some(Instant::now());
        }
        if delivered - tx.ack_sent >= ACK_EVERY {
            peer.cv.notify_all();
        }
    }
    true
}

/// The writer of an established session: DATA from the queue (a resend
/// starts at the first unacknowledged message), acks, heartbeats when idle,
/// and a BYE on shutdown.
fn writer(inner: &Inner, peer: &Arc<Peer>, conn: &Arc<Conn>, stream: TcpStream) {
    let local = inner.cfg.local_id;
    let heartbeat = ms(inner.cfg.heartbeat_ms);
    let mut w = BufWriter::with_capacity(IO_BUF, stream);
    let mut last_write = Instant::now();
    let mut batch: Vec<(u64, Arc<Vec<u8>>)> = Vec::new();
    // The rest of a frame a `Net::send` caller began (TxState::partial).
    let mut head: Vec<u8> = Vec::new();
    loop {
        batch.clear();
        head.clear();
        let mut bye = false;
        let mut heartbeat_due = false;
        let ack;
        {
            let mut tx = lock(&peer.tx);
            loop {
                if !tx.is_session(conn.id) {
                    return;
                }
                if tx.writing != 0 {
                    // A `Net::send` caller is writing (for microseconds); it
                    // wakes us if it leaves anything to do.
                    tx = wait_timeout(&peer.cv, tx, conn.id, ACK_DELAY);
                    continue;
                }
                if inner.is_frozen() && !inner.is_shutdown() {
                    tx = wait_timeout(&peer.cv, tx, conn.id, FREEZE_POLL);
                    continue;
                }
                if let Some((id, rest)) = tx.partial.take() {
                    if id == conn.id {
                        head = rest;
                    }
                }
                if inner.is_shutdown() {
                    bye = true;
                    break;
                }
                let now = Instant::now();
                tx.take_unsent(&mut batch, WRITE_BATCH_FRAMES, WRITE_BATCH_BYTES);
                let ack_pending = tx.ack_out > tx.ack_sent;
                let ack_deadline = tx.ack_since.map(|t| t + ACK_DELAY);
                let ack_due = ack_pending
                    && (tx.ack_out - tx.ack_sent >= ACK_EVERY
                        || ack_deadline.map_or(true, |d| now >= d));
                heartbeat_due = now >= last_write + heartbeat;
                if !head.is_empty() || !batch.is_empty() || ack_due || heartbeat_due {
                    break;
                }
                let mut wait = (last_write + heartbeat).saturating_duration_since(now);
                if let (true, Some(d)) = (ack_pending, ack_deadline) {
                    wait = wait.min(d.saturating_duration_since(now));
                }
                tx = wait_timeout(&peer.cv, tx, conn.id, wait.max(Duration::from_millis(1)));
            }
            ack = tx.begin_write(conn.id);
        }
        let r = (|| -> io::Result<()> {
            w.write_all(&head)?;
            for (seq, p) in &batch {
                let mut h = Header::new(FrameType::Data, local);
                h.seq = *seq;
                h.ack = ack;
                h.len = p.len() as u32;
                w.write_all(&h.encode())?;
                w.write_all(p)?;
            }
            if bye {
                let mut h = Header::new(FrameType::Bye, local);
                h.ack = ack;
                let b = Bye {
                    reason: reason::SHUTDOWN,
                    text: format!("node {local} is shutting down"),
                }
                .encode();
                h.len = b.len() as u32;
                w.write_all(&h.encode())?;
                w.write_all(&b)?;
            } else if batch.is_empty() && head.is_empty() {
                let t = if heartbeat_due {
                    FrameType::Heartbeat
                } else {
                    FrameType::Ack
                };
                let mut h = Header::new(t, local);
                h.ack = ack;
                w.write_all(&h.encode())?;
            }
            w.flush()
        })();
        {
            let mut tx = lock(&peer.tx);
            if tx.writing == conn.id {
                tx.writing = 0;
            }
        }
        match r {
            Ok(()) => {
                last_write = Instant::now();
                if bye {
                    // FIN after the BYE; the reader sees the peer's close.
                    let _ = w.get_ref().shutdown(Shutdown::Write);
                    return;
                }
            }
            Err(e) => {
                if !inner.is_shutdown() && lock(&peer.tx).is_session(conn.id) {
                    let why = if is_timeout(&e) {
                        format!(
                            "peer has not read for {} ms: connection considered dead",
                            inner.cfg.peer_timeout_ms
                        )
                    } else {
                        format!("connection lost while writing: {e}")
                    };
                    inner.log(format!("{}: {why}", who(Some(peer.id), conn.remote)));
                }
                conn.close();
                return;
            }
        }
    }
}

/// Writes one DATA frame from the thread that sends it, without blocking
/// (`Net::send`, which took `TxState::writing` for `conn`). What the socket
/// does not take goes to the writer as `TxState::partial`; an error closes
/// the connection, and the frame, still queued, is sent again on the next.
pub(crate) fn write_now(inner: &Inner, peer: &Peer, conn: &Conn, mut buf: Vec<u8>) {
    let rest = match crate::sys::send(conn.stream.as_raw_fd(), &buf, true) {
        Ok(n) if n >= buf.len() => None,
        Ok(n) => Some(buf.split_off(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Some(buf),
        Err(e) => {
            if !inner.is_shutdown() && lock(&peer.tx).is_session(conn.id) {
                inner.log(format!(
                    "{}: connection lost while writing: {e}",
                    who(Some(peer.id), conn.remote)
                ));
            }
            conn.close();
            None
        }
    };
    let mut tx = lock(&peer.tx);
    if tx.writing == conn.id {
        tx.writing = 0;
    }
    if !tx.is_session(conn.id) {
        return;
    }
    if let Some(rest) = rest {
        inner.partial_writes.fetch_add(1, Ordering::SeqCst);
        tx.partial = Some((conn.id, rest));
    }
    if tx.partial.is_some() || tx.cursor < tx.next_seq {
        peer.cv.notify_all();
    }
}

/// Whether this thread holds its writes (`hold_writes`); notes `to` of
/// transport `inner` if so.
pub(crate) fn held(inner: &Arc<Inner>, to: u32) -> bool {
    HELD.try_with(|h| match &mut *h.borrow_mut() {
        Some(held) => {
            if !held.iter().any(|(i, p)| Arc::ptr_eq(i, inner) && *p == to) {
                held.push((inner.clone(), to));
            }
            true
        }
        None => false,
    })
    .unwrap_or(false)
}

/// From now on this thread's sends are queued but not written, until
/// `write_held` (see `Net::hold_writes`).
pub(crate) fn hold_writes() {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if h.is_none() {
            *h = Some(Vec::new());
        }
    });
}

/// Writes what this thread queued since `hold_writes`, and ends the hold.
pub(crate) fn write_held() {
    let Some(held) = HELD.with(|h| h.borrow_mut().take()) else {
        return;
    };
    for (inner, id) in held {
        flush_peer(&inner, id);
    }
}

/// Writes the unsent frames of peer `id` in one system call, or, when
/// another thread is writing to that peer, leaves them to the writer.
fn flush_peer(inner: &Inner, id: u32) {
    let Some(peer) = inner.peer(id) else {
        return;
    };
    let mut tx = lock(&peer.tx);
    let Some(session) = &tx.session else {
        return;
    };
    if tx.cursor >= tx.next_seq {
        return;
    }
    if tx.writing != 0 || tx.partial.is_some() || inner.is_frozen() {
        if tx.wake_writer() {
            peer.cv.notify_all();
        }
        return;
    }
    let conn = session.conn.clone();
    let mut frames = Vec::new();
    tx.take_unsent(&mut frames, WRITE_BATCH_FRAMES, WRITE_BATCH_BYTES);
    let ack = tx.begin_write(conn.id);
    drop(tx);
    let mut buf = Vec::new();
    for (seq, payload) in &frames {
        let mut h = Header::new(FrameType::Data, inner.cfg.local_id);
        h.seq = *seq;
        h.ack = ack;
        frame::encode_frame(&h, payload, &mut buf);
    }
    let frames = frames.len();
    inner.held_writes.fetch_add(1, Ordering::Relaxed);
    inner
        .held_frames
        .fetch_add(frames as u64, Ordering::Relaxed);
    // (What is left, if anything, write_now hands to the writer.)
    write_now(inner, &peer, &conn, buf);
}

/// Stop everything (see `Net::shutdown`).
pub(crate) fn shutdown(inner: &Arc<Inner>) {
    let first = !inner.shutdown.swap(true, Ordering::SeqCst);
    if first {
        {
            let _g = lock(&inner.sleep_lock);
            inner.sleep_cv.notify_all();
        }
        for p in inner.peer_list() {
            let _t = lock(&p.tx);
            p.cv.notify_all();
            p.dial_cv.notify_all();
        }
        // Wake the acceptor: on Linux shutdown() makes a blocked accept()
        // fail; a connection to ourselves is the portable fallback.
        let _ = inner.listener.shutdown(Shutdown::Both);
        let mut wake = inner.local_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_millis(100));
    }
    let in_net_thread = IN_NET_THREAD.with(|c| c.get());
    if !in_net_thread {
        // Give the writers a moment to put their BYE on the wire.
        let deadline = Instant::now() + ms(inner.cfg.peer_timeout_ms.min(500));
        while inner.writers.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let conns: Vec<Arc<Conn>> = lock(&inner.conns).values().cloned().collect();
    for c in conns {
        c.close();
    }
    if in_net_thread {
        // Joining from here could wait on ourselves; the threads end on their own.
        return;
    }
    loop {
        let handles: Vec<_> = std::mem::take(&mut *lock(&inner.threads));
        if handles.is_empty() {
            break;
        }
        for h in handles {
            let _ = h.join();
        }
    }
}
