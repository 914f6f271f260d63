//! The node-to-node transport: authenticated TCP sessions between the nodes
//! of a cluster, carrying opaque messages per peer in order and exactly once,
//! across reconnects (DESIGN.md "Cluster"; the equivalent of the kernel's
//! lowcomms + midcomms, spec §8.3).
//!
//! Shape: [`Net::start`] binds the listener and starts one acceptor thread and
//! one dialer thread per peer. Every connection (dialed or accepted) runs a
//! symmetric handshake (HELLO / HELLO_REPLY, HMAC challenge-response when a
//! key is configured) in its own thread, which then becomes the connection's
//! reader; a writer thread per established connection sends data, acks,
//! heartbeats and the final BYE. [`Net::send`] appends to the peer's queue
//! and, when the session is idle, writes the frame itself without
//! blocking; else it wakes the writer. It never blocks on the network.
//!
//! Writing: a lone message is written by its sender at once (no wake-up
//! on its way), and so are the first [`INLINE_BURST`] of messages that
//! follow each other within [`INLINE_GAP`]. The rest of such a burst is
//! left to the writer, which wakes once and sends what has queued meanwhile
//! in one system call, where a write per message made every sender pay the
//! whole loopback TCP path (both ends' processing) each time and capped
//! pipelined throughput (docs/PERFORMANCE.md, B2). What a handler sends
//! while it handles messages that arrived together is written by the
//! reader thread that called it, all at once, when the handler returns.
//!
//! The wire format, the handshake and the reliability rules are specified in
//! `docs/PROTOCOL.md`; `frame` is the codec, `auth` the challenge-response,
//! `conn` the threads.

pub mod frame;

mod auth;
mod conn;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How soon after a sender wrote its own frame to a peer the next message
/// to that peer counts as part of a burst (module doc, "Writing"). Longer
/// than a loopback round trip's local half, shorter than any request/reply
/// turn-around, so that one request and its reply never wait for a writer.
pub const INLINE_GAP: Duration = Duration::from_micros(20);

/// How many messages in a row, each within [`INLINE_GAP`] of the last,
/// their senders still write themselves before a burst is left to the
/// writer: a few messages close together (a grant and a BAST, a handful of
/// clients) go out without waiting for a wake-up of the writer.
pub const INLINE_BURST: u32 = 4;

/// The DLM's well-known port (the kernel's default, spec §8.3).
pub const DEFAULT_PORT: u16 = 21064;
pub const DEFAULT_HEARTBEAT_MS: u64 = 1000;
pub const DEFAULT_PEER_TIMEOUT_MS: u64 = 5000;
pub const DEFAULT_RECONNECT_MS: u64 = 500;
pub const DEFAULT_MAX_QUEUE: usize = 65536;
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

/// Configuration of a node's transport.
#[derive(Clone, Debug)]
pub struct NetConfig {
    pub local_id: u32,
    /// Bind address (the local node's addr:port).
    pub listen: SocketAddr,
    pub cluster_name: String,
    /// Shared secret; `None` = no authentication.
    pub key: Option<Vec<u8>>,
    /// Every other node: id and addresses to try, in order.
    pub peers: Vec<(u32, Vec<SocketAddr>)>,
    /// Send a heartbeat this often when idle.
    pub heartbeat_ms: u64,
    /// Silent this long => connection considered dead, reconnect.
    pub peer_timeout_ms: u64,
    /// Delay between connection attempts.
    pub reconnect_ms: u64,
    /// Bound on unacknowledged + unsent messages per peer.
    pub max_queue: usize,
    /// Bound on one payload.
    pub max_message: usize,
}

impl Default for NetConfig {
    fn default() -> NetConfig {
        NetConfig {
            local_id: 1,
            listen: SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT)),
            cluster_name: String::new(),
            key: None,
            peers: Vec::new(),
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            peer_timeout_ms: DEFAULT_PEER_TIMEOUT_MS,
            reconnect_ms: DEFAULT_RECONNECT_MS,
            max_queue: DEFAULT_MAX_QUEUE,
            max_message: DEFAULT_MAX_MESSAGE,
        }
    }
}

impl NetConfig {
    /// Reject a configuration the transport cannot honour, naming the field.
    fn validate(&self) -> io::Result<()> {
        let bad = |why: String| {
            Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("udlm-net: {why}"),
            ))
        };
        // 0 is the wire's "unknown node" in a HELLO's target field.
        if self.local_id == 0 {
            return bad("local_id must not be 0".into());
        }
        if self.cluster_name.len() > frame::MAX_CLUSTER_NAME {
            return bad(format!(
                "cluster_name is longer than {} bytes",
                frame::MAX_CLUSTER_NAME
            ));
        }
        if let Some(k) = &self.key {
            if k.is_empty() {
                return bad("key is empty (use None for no authentication)".into());
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (id, addrs) in &self.peers {
            if *id == 0 || *id == self.local_id {
                return bad(format!("peer id {id} is 0 or the local id"));
            }
            if !seen.insert(*id) {
                return bad(format!("peer id {id} is listed twice"));
            }
            if addrs.is_empty() {
                return bad(format!("peer {id} has no address"));
            }
        }
        if self.heartbeat_ms == 0 || self.peer_timeout_ms <= self.heartbeat_ms {
            return bad(format!(
                "need 0 < heartbeat_ms ({}) < peer_timeout_ms ({})",
                self.heartbeat_ms, self.peer_timeout_ms
            ));
        }
        if self.reconnect_ms == 0 {
            return bad("reconnect_ms must not be 0".into());
        }
        if self.max_queue == 0 {
            return bad("max_queue must not be 0".into());
        }
        if self.max_message == 0 || self.max_message > frame::MAX_MESSAGE_LIMIT {
            return bad(format!(
                "max_message must be in 1..={}",
                frame::MAX_MESSAGE_LIMIT
            ));
        }
        Ok(())
    }
}

/// What the transport tells its user. Calls for one peer are serialised (one
/// at a time, in order); calls for different peers may run concurrently.
/// A handler may call [`Net::send`] and [`Net::connected`] from inside.
pub trait NetHandler: Send + Sync + 'static {
    /// A message from `from`: per peer, delivered in send order, exactly once, even across reconnects.
    fn on_message(&self, from: u32, payload: &[u8]);
    /// Messages from `from` that arrived together, in order: the same as
    /// `on_message` for each, which a handler may do more cheaply at once
    /// (one lock for all of them).
    fn on_messages(&self, from: u32, payloads: &[&[u8]]) {
        for p in payloads {
            self.on_message(from, p);
        }
    }
    /// A session with `node` is up (first time, or again after the peer restarted = new incarnation).
    fn on_peer_up(&self, node: u32, incarnation: u64);
    /// The connection to `node` is lost (it may come back; queued messages are kept and resent).
    fn on_peer_down(&self, node: u32);
}

/// Why [`Net::send`] did not take a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// `to` is not in the configured peers.
    UnknownPeer,
    /// `max_queue` messages to that peer are already unacknowledged or unsent.
    QueueFull,
    /// The payload is longer than `max_message`.
    TooLarge,
    /// [`Net::shutdown`] was called.
    Shutdown,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SendError::UnknownPeer => "unknown peer",
            SendError::QueueFull => "send queue full",
            SendError::TooLarge => "message too large",
            SendError::Shutdown => "transport shut down",
        })
    }
}

impl std::error::Error for SendError {}

/// Lock a mutex, ignoring poisoning: a panicking handler must not turn
/// every later transport call into a panic too.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One TCP connection, from its first byte to its close.
pub(crate) struct Conn {
    pub(crate) id: u64,
    pub(crate) stream: TcpStream,
    pub(crate) remote: SocketAddr,
    /// True while this connection is its peer's session. Changed only with
    /// the peer's `rx` and `tx` locks held, so a reader that checks it under
    /// `rx` knows whether it may still deliver.
    pub(crate) active: AtomicBool,
}

impl Conn {
    /// Close the socket in both directions; the reader and the writer wake up with an error or EOF.
    pub(crate) fn close(&self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// The established session with a peer.
pub(crate) struct Session {
    pub(crate) conn: Arc<Conn>,
    pub(crate) incarnation: u64,
    /// Node id of the side that dialed this connection (the tie-break input).
    pub(crate) dialer: u32,
}

/// Receive side of a peer. Its mutex is also the delivery lock: it is held
/// while the handler runs for this peer, which is what serialises
/// on_message / on_peer_up / on_peer_down per peer even when two
/// connections to it briefly coexist.
pub(crate) struct RxState {
    /// Highest sequence number delivered from the peer's current incarnation.
    pub(crate) delivered: u64,
    /// Whether the last event reported to the handler was "up".
    pub(crate) up: bool,
}

/// Send side of a peer (and the session slot), under one mutex paired with `Peer::cv`.
pub(crate) struct TxState {
    /// The peer incarnation the queue is addressed to; `None` until the first session.
    pub(crate) incarnation: Option<u64>,
    /// Sequence number of the next message `send` enqueues.
    pub(crate) next_seq: u64,
    /// Highest sequence number the peer acknowledged.
    pub(crate) acked: u64,
    /// Unacknowledged and unsent messages, in sequence order (seqs are contiguous).
    pub(crate) queue: VecDeque<(u64, Arc<Vec<u8>>)>,
    /// Next sequence number to transmit on the current session.
    pub(crate) cursor: u64,
    /// Mirror of `RxState::delivered`: the value our frames acknowledge.
    pub(crate) ack_out: u64,
    /// The ack value last written on the current session.
    pub(crate) ack_sent: u64,
    /// When `ack_out` first got ahead of `ack_sent` (the ack delay runs from here).
    pub(crate) ack_since: Option<Instant>,
    pub(crate) session: Option<Session>,
    /// The connection whose send side a thread is writing to right now (0:
    /// none): the writer, or a `Net::send` caller writing its frame itself.
    /// Frames are written by one thread at a time, so they never interleave.
    pub(crate) writing: u64,
    /// The unwritten tail of a frame that a `Net::send` caller could only
    /// partly write without blocking, with its connection's id: the writer
    /// sends it before anything else.
    pub(crate) partial: Option<(u64, Vec<u8>)>,
    /// When a `Net::send` caller last wrote its own frame: a message that
    /// follows within [`INLINE_GAP`] goes to the writer thread instead, which
    /// writes a burst in one system call (section "Writing" above).
    pub(crate) last_inline: Option<Instant>,
    /// Senders' own writes in a row, each within [`INLINE_GAP`] of the last.
    pub(crate) inline_run: u32,
    /// The connection whose writer sleeps and has not been woken since (0:
    /// none): a burst of sends costs one wake-up, not a system call per
    /// message. Only the session's writer sends the queue, so only it
    /// counts; a writer of a replaced connection that sleeps too must not
    /// take a wake-up meant for the session's.
    pub(crate) writer_asleep: u64,
}

impl TxState {
    /// Whether a sender that queued a message must wake the writer: the
    /// session's writer sleeps, and nobody woke it since.
    pub(crate) fn wake_writer(&mut self) -> bool {
        if self.writer_asleep != 0 {
            self.writer_asleep = 0;
            return true;
        }
        false
    }

    /// Whether a message sent at `now` follows a sender's own write
    /// closely enough to belong to its burst.
    fn within_gap(&self, now: Instant) -> bool {
        self.last_inline
            .is_some_and(|t| now.saturating_duration_since(t) < INLINE_GAP)
    }

    /// A sender writes its own frame now.
    pub(crate) fn note_inline(&mut self, now: Instant) {
        self.inline_run = if self.within_gap(now) {
            self.inline_run + 1
        } else {
            1
        };
        self.last_inline = Some(now);
    }

    /// Appends to `out` the queued messages not yet sent on this session,
    /// from the cursor, at most `max_frames` of them and about `max_bytes`,
    /// and moves the cursor past them.
    pub(crate) fn take_unsent(
        &mut self,
        out: &mut Vec<(u64, Arc<Vec<u8>>)>,
        max_frames: usize,
        max_bytes: usize,
    ) {
        let Some(&(front, _)) = self.queue.front() else {
            return;
        };
        let mut bytes = 0;
        for (seq, payload) in self
            .queue
            .iter()
            .skip(self.cursor.saturating_sub(front) as usize)
            .take(max_frames)
        {
            if bytes >= max_bytes {
                break;
            }
            bytes += payload.len() + frame::HEADER_LEN;
            out.push((*seq, payload.clone()));
            self.cursor = seq + 1;
        }
    }

    /// The thread that calls this writes to connection `conn_id` now; its
    /// frames carry the ack returned, which counts as sent.
    pub(crate) fn begin_write(&mut self, conn_id: u64) -> u64 {
        self.writing = conn_id;
        self.ack_sent = self.ack_out;
        self.ack_since = None;
        self.ack_out
    }

    pub(crate) fn is_session(&self, conn_id: u64) -> bool {
        self.session.as_ref().is_some_and(|s| s.conn.id == conn_id)
    }

    /// Apply a cumulative ack: drop what the peer has, never move the cursor back.
    pub(crate) fn trim(&mut self, ack: u64) {
        while self.queue.front().is_some_and(|(s, _)| *s <= ack) {
            self.queue.pop_front();
        }
        if ack > self.acked {
            self.acked = ack;
        }
        if self.cursor <= self.acked {
            self.cursor = self.acked + 1;
        }
    }
}

pub(crate) struct Peer {
    pub(crate) id: u32,
    /// Where the dialer tries to reach the peer; [`Net::set_peer_addrs`]
    /// changes it while the node runs (the next dial uses the new list).
    pub(crate) addrs: Mutex<Vec<SocketAddr>>,
    /// [`Net::remove_peer`] took it out: its dialer ends, its session closes.
    pub(crate) removed: AtomicBool,
    pub(crate) rx: Mutex<RxState>,
    pub(crate) tx: Mutex<TxState>,
    /// Wakes the writer (new data, ack due, session change, shutdown).
    pub(crate) cv: Condvar,
    /// Wakes the dialer (session gone, shutdown). Separate from `cv` so that
    /// every message sent does not also wake the idle dialer.
    pub(crate) dial_cv: Condvar,
}

impl Peer {
    pub(crate) fn is_removed(&self) -> bool {
        self.removed.load(Ordering::SeqCst)
    }
}

pub(crate) struct Inner {
    pub(crate) cfg: NetConfig,
    pub(crate) handler: Arc<dyn NetHandler>,
    pub(crate) incarnation: u64,
    /// Sorted by id. Peers are added and removed while the node runs
    /// (membership from outside, node/control.rs); a thread that found a
    /// peer keeps its `Arc`, and a removed one tells it by `removed`.
    pub(crate) peers: RwLock<Vec<Arc<Peer>>>,
    pub(crate) local_addr: SocketAddr,
    pub(crate) listener: socket2::Socket,
    pub(crate) shutdown: AtomicBool,
    /// Test hook: pretend the process hangs (no reads, no writes, no dials).
    pub(crate) frozen: AtomicBool,
    /// Every open connection, handshaking or established, so shutdown and the test hook can close them.
    pub(crate) conns: Mutex<HashMap<u64, Arc<Conn>>>,
    pub(crate) next_conn_id: AtomicU64,
    /// Accepted connections still in their handshake (bounded against floods).
    pub(crate) pending_incoming: AtomicUsize,
    /// Writer threads running (shutdown waits for them to send their BYE).
    pub(crate) writers: AtomicUsize,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    /// For interruptible sleeps: notified on shutdown and unfreeze.
    pub(crate) sleep_lock: Mutex<()>,
    pub(crate) sleep_cv: Condvar,
    /// Frames `Net::send` could write only in part (left to the writer).
    pub(crate) partial_writes: AtomicU64,
    /// Frames `Net::send` callers wrote themselves (module doc, "Writing").
    pub(crate) inline_writes: AtomicU64,
    /// Writes of what threads held (`Net::hold_writes`: readers while
    /// their handlers run, udlmd's loop serving the local handles), and the frames in
    /// them (module doc, "Writing").
    pub(crate) held_writes: AtomicU64,
    pub(crate) held_frames: AtomicU64,
    /// The last log lines (what `recent_log` returns).
    pub(crate) log_ring: Mutex<VecDeque<String>>,
    /// When each rate-limited log line was last written.
    pub(crate) log_limits: Mutex<HashMap<String, Instant>>,
}

const LOG_RING_LEN: usize = 256;
const LOG_REPEAT_INTERVAL: Duration = Duration::from_secs(10);

impl Inner {
    pub(crate) fn peer(&self, id: u32) -> Option<Arc<Peer>> {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers
            .binary_search_by_key(&id, |p| p.id)
            .ok()
            .map(|i| peers[i].clone())
    }

    /// Every peer now, in id order.
    pub(crate) fn peer_list(&self) -> Vec<Arc<Peer>> {
        self.peers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    pub(crate) fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }

    /// One log line, `udlm-net: node <local>: <msg>`, on stderr and in the ring.
    pub(crate) fn log(&self, msg: String) {
        let line = format!("udlm-net: node {}: {}", self.cfg.local_id, msg);
        eprintln!("{line}");
        let mut ring = lock(&self.log_ring);
        if ring.len() >= LOG_RING_LEN {
            ring.pop_front();
        }
        ring.push_back(line);
    }

    /// Like `log`, but a line with the same `key` is repeated at most every
    /// [`LOG_REPEAT_INTERVAL`]: a misconfigured peer retries every
    /// `reconnect_ms` and must not flood the log.
    pub(crate) fn log_limited(&self, key: String, msg: String) {
        let now = Instant::now();
        {
            let mut seen = lock(&self.log_limits);
            if seen
                .get(&key)
                .is_some_and(|t| now.duration_since(*t) < LOG_REPEAT_INTERVAL)
            {
                return;
            }
            if seen.len() >= LOG_RING_LEN {
                seen.retain(|_, t| now.duration_since(*t) < LOG_REPEAT_INTERVAL);
            }
            seen.insert(key, now);
        }
        self.log(msg);
    }

    /// Sleep up to `d`, returning early on shutdown.
    pub(crate) fn sleep(&self, d: Duration) {
        let deadline = Instant::now() + d;
        let mut g = lock(&self.sleep_lock);
        while !self.is_shutdown() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            g = match self.sleep_cv.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Start a transport thread and keep its handle for `shutdown` to join.
    pub(crate) fn spawn(
        self: &Arc<Self>,
        name: String,
        f: impl FnOnce() + Send + 'static,
    ) -> io::Result<()> {
        let h = std::thread::Builder::new().name(name).spawn(move || {
            conn::IN_NET_THREAD.with(|c| c.set(true));
            f()
        })?;
        let mut threads = lock(&self.threads);
        threads.retain(|t| !t.is_finished());
        threads.push(h);
        Ok(())
    }
}

/// A node's transport. Create with [`Net::start`]; dropping the last handle shuts it down.
pub struct Net {
    inner: Arc<Inner>,
}

impl Net {
    /// Bind `cfg.listen` (SO_REUSEADDR) and start the acceptor and the dialers.
    pub fn start(cfg: NetConfig, handler: Arc<dyn NetHandler>) -> io::Result<Arc<Net>> {
        cfg.validate()?;
        let listener = conn::bind_listener(cfg.listen)?;
        Self::start_inner(cfg, handler, listener)
    }

    /// Like [`Net::start`] but with a listener the caller already bound
    /// (socket activation, or tests that must know every port before any
    /// node starts); `cfg.listen` is ignored.
    pub fn start_with_listener(
        cfg: NetConfig,
        handler: Arc<dyn NetHandler>,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<Net>> {
        cfg.validate()?;
        Self::start_inner(cfg, handler, socket2::Socket::from(listener))
    }

    fn start_inner(
        cfg: NetConfig,
        handler: Arc<dyn NetHandler>,
        listener: socket2::Socket,
    ) -> io::Result<Arc<Net>> {
        listener.set_nonblocking(false)?;
        let local_addr = listener.local_addr()?.as_socket().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "udlm-net: listener is not an IP socket",
            )
        })?;
        let mut peers: Vec<Arc<Peer>> = cfg
            .peers
            .iter()
            .map(|(id, addrs)| new_peer(*id, addrs.clone()))
            .collect();
        peers.sort_by_key(|p| p.id);
        let inner = Arc::new(Inner {
            cfg,
            handler,
            incarnation: auth::new_incarnation(),
            peers: RwLock::new(peers),
            local_addr,
            listener,
            shutdown: AtomicBool::new(false),
            frozen: AtomicBool::new(false),
            conns: Mutex::new(HashMap::new()),
            next_conn_id: AtomicU64::new(1),
            pending_incoming: AtomicUsize::new(0),
            writers: AtomicUsize::new(0),
            threads: Mutex::new(Vec::new()),
            sleep_lock: Mutex::new(()),
            sleep_cv: Condvar::new(),
            partial_writes: AtomicU64::new(0),
            inline_writes: AtomicU64::new(0),
            held_writes: AtomicU64::new(0),
            held_frames: AtomicU64::new(0),
            log_ring: Mutex::new(VecDeque::new()),
            log_limits: Mutex::new(HashMap::new()),
        });
        let net = Arc::new(Net {
            inner: inner.clone(),
        });
        let started = (|| {
            let i = inner.clone();
            inner.spawn("udlm-net-accept".into(), move || conn::acceptor(i))?;
            for p in inner.peer_list() {
                start_dialer(&inner, p)?;
            }
            Ok::<(), io::Error>(())
        })();
        if let Err(e) = started {
            net.shutdown();
            return Err(e);
        }
        Ok(net)
    }

    /// Never blocks on the network (the caller may hold the node's lock):
    /// enqueue for `to`, or say why not.
    ///
    /// When the session is idle (no thread writing, nothing else unsent)
    /// the caller also writes the frame itself, without blocking: handing
    /// every message to the writer thread cost two thread wake-ups per
    /// message, the largest part of a remote lock's time
    /// (docs/PERFORMANCE.md, "Where the time goes between nodes"). What
    /// the socket does not take at once is left to the writer.
    pub fn send(&self, to: u32, payload: Vec<u8>) -> Result<(), SendError> {
        let inner = &self.inner;
        if inner.is_shutdown() {
            return Err(SendError::Shutdown);
        }
        if payload.len() > inner.cfg.max_message {
            return Err(SendError::TooLarge);
        }
        let peer = inner.peer(to).ok_or(SendError::UnknownPeer)?;
        let mut tx = lock(&peer.tx);
        if tx.queue.len() >= inner.cfg.max_queue {
            return Err(SendError::QueueFull);
        }
        let seq = tx.next_seq;
        tx.next_seq += 1;
        let payload = Arc::new(payload);
        tx.queue.push_back((seq, payload.clone()));
        let Some(session) = &tx.session else {
            return Ok(());
        };
        if conn::held(inner, to) {
            // This thread writes it later (`Net::write_held`; a reader
            // thread when its handler returns).
            return Ok(());
        }
        let idle = tx.writing == 0 && tx.partial.is_none() && tx.cursor == seq;
        let now = Instant::now();
        let in_burst = tx.inline_run >= INLINE_BURST && tx.within_gap(now);
        if !idle || in_burst || inner.is_frozen() {
            if tx.wake_writer() {
                peer.cv.notify_all();
            }
            return Ok(());
        }
        let conn = session.conn.clone();
        tx.cursor = seq + 1;
        tx.note_inline(now);
        inner.inline_writes.fetch_add(1, Ordering::Relaxed);
        let mut h = frame::Header::new(frame::FrameType::Data, inner.cfg.local_id);
        h.seq = seq;
        h.ack = tx.begin_write(conn.id);
        drop(tx);
        let mut buf = Vec::with_capacity(frame::HEADER_LEN + payload.len());
        frame::encode_frame(&h, &payload, &mut buf);
        conn::write_now(inner, &peer, &conn, buf);
        Ok(())
    }

    /// Until [`Net::write_held`], what this thread sends (to any
    /// transport) is queued in order but not written: a thread that
    /// answers someone first and talks to the network after calls this
    /// before the work that sends, so the answer does not wait for the
    /// network's system calls. A thread must not block between the two.
    pub fn hold_writes() {
        conn::hold_writes();
    }

    /// Writes what this thread sent since [`Net::hold_writes`] (each peer's
    /// frames in one system call) and ends the hold.
    pub fn write_held() {
        conn::write_held();
    }

    /// Peers with a live, authenticated session, in id order.
    pub fn connected(&self) -> Vec<u32> {
        self.inner
            .peer_list()
            .iter()
            .filter(|p| lock(&p.tx).session.is_some())
            .map(|p| p.id)
            .collect()
    }

    /// Close everything (a BYE on every session first) and stop the threads.
    /// No handler call starts after this returns. Idempotent. Called from a
    /// handler or another transport thread it only signals the stop and does
    /// not wait for the threads.
    pub fn shutdown(&self) {
        conn::shutdown(&self.inner);
    }

    /// The address the listener is bound to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    pub fn local_id(&self) -> u32 {
        self.inner.cfg.local_id
    }

    /// This process's incarnation, as peers see it in `on_peer_up`.
    pub fn incarnation(&self) -> u64 {
        self.inner.incarnation
    }

    /// Messages to `to` not yet acknowledged (sent or not); `None` for an unknown peer.
    pub fn queued(&self, to: u32) -> Option<usize> {
        self.inner.peer(to).map(|p| lock(&p.tx).queue.len())
    }

    /// Adds peer `id`, reachable at `addrs`, while the transport runs: it
    /// is dialed, and accepted when it dials. Refused (InvalidInput, with
    /// the reason) for id 0, the local id, a known id, no address, or more
    /// than [`MAX_PEERS`] peers.
    pub fn add_peer(&self, id: u32, addrs: Vec<SocketAddr>) -> io::Result<()> {
        let inner = &self.inner;
        let bad = |why: String| Err(io::Error::new(io::ErrorKind::InvalidInput, why));
        if id == 0 || id == inner.cfg.local_id {
            return bad(format!("peer id {id} is 0 or the local id"));
        }
        if addrs.is_empty() {
            return bad(format!("peer {id} has no address"));
        }
        if inner.is_shutdown() {
            return bad("the transport is shut down".into());
        }
        let peer = {
            let mut peers = inner.peers.write().unwrap_or_else(|e| e.into_inner());
            let at = match peers.binary_search_by_key(&id, |p| p.id) {
                Ok(_) => return bad(format!("peer {id} is already known")),
                Err(at) => at,
            };
            if peers.len() >= MAX_PEERS {
                return bad(format!("there are already {MAX_PEERS} peers"));
            }
            let peer = new_peer(id, addrs);
            peers.insert(at, peer.clone());
            peer
        };
        inner.log(format!("peer {id} added"));
        start_dialer(inner, peer)
    }

    /// Forgets peer `id`: its session (if any) closes, its dialer ends, what
    /// was queued for it is dropped, and a connection from it is refused as
    /// from an unknown node. Returns whether it was known.
    pub fn remove_peer(&self, id: u32) -> bool {
        let inner = &self.inner;
        let peer = {
            let mut peers = inner.peers.write().unwrap_or_else(|e| e.into_inner());
            match peers.binary_search_by_key(&id, |p| p.id) {
                Ok(at) => peers.remove(at),
                Err(_) => return false,
            }
        };
        // Under the delivery lock, as `install` checks it: no session can
        // start for the peer after this. (So the caller must not hold a
        // lock a handler takes: a handler runs under this one.)
        let rx = lock(&peer.rx);
        peer.removed.store(true, Ordering::SeqCst);
        drop(rx);
        let conn = {
            let tx = lock(&peer.tx);
            peer.cv.notify_all();
            peer.dial_cv.notify_all();
            tx.session.as_ref().map(|s| s.conn.clone())
        };
        if let Some(c) = conn {
            c.close();
        }
        inner.log(format!("peer {id} removed"));
        true
    }

    /// Where peer `id` is dialed from now on (an established session is
    /// kept: it is the same node). Returns whether the peer is known.
    pub fn set_peer_addrs(&self, id: u32, addrs: Vec<SocketAddr>) -> bool {
        if addrs.is_empty() {
            return false;
        }
        match self.inner.peer(id) {
            Some(p) => {
                *lock(&p.addrs) = addrs;
                true
            }
            None => false,
        }
    }

    /// The peers the transport knows, in id order.
    pub fn peer_ids(&self) -> Vec<u32> {
        self.inner.peer_list().iter().map(|p| p.id).collect()
    }

    /// Test hook: shut down every TCP connection at once, as a network fault would.
    #[doc(hidden)]
    pub fn break_connections(&self) {
        let conns: Vec<Arc<Conn>> = lock(&self.inner.conns).values().cloned().collect();
        self.inner
            .log(format!("test hook: breaking {} connection(s)", conns.len()));
        for c in conns {
            c.close();
        }
    }

    /// Test hook: freeze (or thaw) this node as if the process hung: no
    /// reads, writes, heartbeats or dials, so peers see it fall silent.
    #[doc(hidden)]
    pub fn set_frozen(&self, frozen: bool) {
        self.inner.frozen.store(frozen, Ordering::SeqCst);
        if !frozen {
            let _g = lock(&self.inner.sleep_lock);
            self.inner.sleep_cv.notify_all();
            drop(_g);
            for p in self.inner.peer_list() {
                let _t = lock(&p.tx);
                p.cv.notify_all();
            }
        }
    }

    /// Test hook: the last log lines of this node.
    #[doc(hidden)]
    pub fn recent_log(&self) -> Vec<String> {
        lock(&self.inner.log_ring).iter().cloned().collect()
    }

    /// Test hook: (local, remote) socket addresses of the session with `peer`.
    #[doc(hidden)]
    pub fn session_addrs(&self, peer: u32) -> Option<(SocketAddr, SocketAddr)> {
        let p = self.inner.peer(peer)?;
        let tx = lock(&p.tx);
        let s = tx.session.as_ref()?;
        Some((s.conn.stream.local_addr().ok()?, s.conn.remote))
    }
}

/// Bound on the peers of one transport (the node's bound on members,
/// node/peer.rs `MAX_MEMBERS`, is lower).
pub const MAX_PEERS: usize = 1024;

fn new_peer(id: u32, addrs: Vec<SocketAddr>) -> Arc<Peer> {
    Arc::new(Peer {
        id,
        addrs: Mutex::new(addrs),
        removed: AtomicBool::new(false),
        rx: Mutex::new(RxState {
            delivered: 0,
            up: false,
        }),
        tx: Mutex::new(TxState {
            incarnation: None,
            next_seq: 1,
            acked: 0,
            queue: VecDeque::new(),
            cursor: 1,
            ack_out: 0,
            ack_sent: 0,
            ack_since: None,
            session: None,
            writing: 0,
            partial: None,
            last_inline: None,
            inline_run: 0,
            writer_asleep: 0,
        }),
        cv: Condvar::new(),
        dial_cv: Condvar::new(),
    })
}

fn start_dialer(inner: &Arc<Inner>, p: Arc<Peer>) -> io::Result<()> {
    let (i, id) = (inner.clone(), p.id);
    inner.spawn(format!("udlm-net-dial-{id}"), move || conn::dialer(i, p))
}

impl Drop for Net {
    fn drop(&mut self) {
        conn::shutdown(&self.inner);
    }
}

impl fmt::Debug for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Net")
            .field("local_id", &self.inner.cfg.local_id)
            .field("local_addr", &self.inner.local_addr)
            .field("incarnation", &self.inner.incarnation)
            .finish()
    }
}
