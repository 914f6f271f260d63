//! A lockspace handle's link to its node: the node daemon over the local
//! socket (started on demand), or the node inside this process (embedded
//! mode, `DLM_EMBEDDED=1`). Both speak the same [`proto`] vocabulary and
//! both give the handle a pollable event descriptor, so the C layer above
//! cannot tell them apart.

use crate::cluster::config::Config;
use crate::node::inspect::{InspectTarget, ResourceView};
use crate::node::link::{fence_loop, join_cluster};
use crate::node::server::{handle_request, inspect_wait, lock_when_ready, run_dir, SOCKET_NAME};
use crate::node::sink::{EventSink, LocalLink};
use crate::node::{Node, NodeLimits};
use crate::proto::{self, Callback, Reply, Request, CALLBACK_LEN, PROTOCOL_VERSION};
use crate::sys;
use crate::types::{Errno, Owner};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How often the embedded node's clock advances (udlmd ticks as often).
const EMBEDDED_TICK: Duration = Duration::from_millis(100);

/// How long a library call waits for a node it had to start.
const DAEMON_START_TIMEOUT: Duration = Duration::from_secs(10);

enum Link {
    Daemon(Mutex<OwnedFd>),
    Embedded(Owner),
}

/// One open lockspace handle's connection to its node.
pub struct Connection {
    link: Link,
    events: OwnedFd,
    /// Embedded only: where the node queues the callbacks; `events` then
    /// carries only the doorbell (node/sink.rs).
    local_events: Option<Arc<LocalLink>>,
}

/// This process's node in embedded mode, started by the first handle it
/// opens. With a config that lists other nodes it joins their cluster as
/// udlmd would (listening on this node's address); with none it is a
/// one-node cluster of its own. A node that cannot start (a config error,
/// this node's address taken, by udlmd for one) fails every open with
/// `ENOTCONN` and says why on stderr, once.
fn embedded_node() -> Result<&'static Arc<Mutex<Node>>, Errno> {
    static NODE: OnceLock<Result<Arc<Mutex<Node>>, Errno>> = OnceLock::new();
    NODE.get_or_init(start_embedded_node)
        .as_ref()
        .map_err(|e| *e)
}

fn start_embedded_node() -> Result<Arc<Mutex<Node>>, Errno> {
    let refuse = |why: String| {
        eprintln!("libdlm: the embedded udlm node cannot start: {why}");
        Errno::NotConn
    };
    let (cfg, warnings) = Config::from_env().map_err(|errors| {
        let all: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        refuse(all.join("; "))
    })?;
    let cluster = cfg.nodes.len() > 1;
    let node = if cluster {
        for w in warnings {
            eprintln!("libdlm: {w}");
        }
        let local_id = cfg.local_node_id().map_err(refuse)?;
        let node = Arc::new(Mutex::new(Node::new(local_id, NodeLimits::default())));
        // The transport lives as long as the node: the node holds it.
        let net = join_cluster(&node, &cfg, local_id)
            .map_err(|e| refuse(format!("cannot join the cluster: {e}")))?;
        if let Some(net) = net {
            await_cluster(&node, &net, &cfg);
            if FAREWELL.set((Arc::clone(&node), net)).is_ok() {
                sys::at_exit(say_farewell);
            }
        }
        if let Some(cmd) = cfg.fence_cmd.clone() {
            let fencer = Arc::downgrade(&node);
            let _ = std::thread::Builder::new()
                .name("udlm-fence".into())
                .spawn(move || fence_loop(&fencer, &cmd));
        }
        node
    } else {
        Arc::new(Mutex::new(Node::new(
            local_node_id(),
            NodeLimits::default(),
        )))
    };
    // The node's clock, as udlmd's tick thread: lock timeouts, the deadlock
    // detector and, in a cluster, peers' leases and lockspace news.
    let ticker = Arc::downgrade(&node);
    let _ = std::thread::Builder::new()
        .name("udlm-tick".into())
        .spawn(move || loop {
            std::thread::sleep(EMBEDDED_TICK);
            let Some(node) = ticker.upgrade() else {
                return;
            };
            let mut n = lock_node(&node);
            n.tick(sys::monotonic_ms());
            if cluster {
                n.announce_spaces();
            }
        });
    Ok(node)
}

/// The embedded cluster node and its transport, for its farewell at exit.
static FAREWELL: OnceLock<(Arc<Mutex<Node>>, Arc<crate::net::Net>)> = OnceLock::new();

/// How long a process that ends gives its node's farewell to reach the
/// peers (udlmd waits as long on SIGTERM).
const FAREWELL_WAIT: Duration = Duration::from_millis(200);

/// At exit: the embedded node tells its peers it leaves, as udlmd does when
/// it stops, so that they go on at once instead of waiting out its lease
/// (a process ended by a signal or `_exit` gets no farewell: its peers see
/// a node fail). The node's lock is only tried: exit may come from a thread
/// that holds it.
extern "C" fn say_farewell() {
    let _ = std::panic::catch_unwind(|| {
        let Some((node, net)) = FAREWELL.get() else {
            return;
        };
        let deadline = Instant::now() + FAREWELL_WAIT;
        let told = loop {
            match node.try_lock() {
                Ok(mut n) => break n.leave(),
                Err(std::sync::TryLockError::Poisoned(e)) => break e.into_inner().leave(),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(std::sync::TryLockError::WouldBlock) => return,
            }
        };
        // Until every peer has acknowledged everything, the farewell too.
        while told
            && Instant::now() < deadline
            && net
                .connected()
                .iter()
                .any(|&p| net.queued(p).unwrap_or(0) > 0)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// Waits until the node has joined the peers that answer, so that the
/// first open returns in a settled cluster as it would with a udlmd that
/// runs already (and as the kernel's lockspace creation waits for its
/// join). Peers get `peer_timeout_ms` to come up; a recovery that then
/// still runs gets `lease_ms` more; after that the calls wait for it
/// themselves (`lock_when_ready`).
fn await_cluster(node: &Mutex<Node>, net: &crate::net::Net, cfg: &Config) {
    let start = Instant::now();
    let peers_due = start + Duration::from_millis(cfg.peer_timeout_ms);
    let give_up = peers_due + Duration::from_millis(cfg.lease_ms);
    loop {
        let up = net.connected();
        let now = Instant::now();
        let all_up = up.len() + 1 >= cfg.nodes.len();
        if lock_node(node).settled_with(&up) && (all_up || now >= peers_due) || now >= give_up {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// This node's id: `DLM_NODEID`, else 1 (a one-node cluster).
pub fn local_node_id() -> u32 {
    std::env::var("DLM_NODEID")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1)
}

/// Whether handles of this process use an in-process node.
pub fn embedded_mode() -> bool {
    std::env::var("DLM_EMBEDDED")
        .map(|v| v == "1" || v.eq_ignore_ascii_case("yes"))
        .unwrap_or(false)
}

fn lock_node(n: &Mutex<Node>) -> std::sync::MutexGuard<'_, Node> {
    n.lock().unwrap_or_else(|e| e.into_inner())
}

fn io_errno(e: &io::Error) -> Errno {
    match e.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EPERM) => Errno::Acces,
        _ => Errno::NotConn,
    }
}

impl Connection {
    /// Opens (`create` = None) or creates (`create` = (mode, flags)) a
    /// lockspace and returns the handle's connection.
    pub fn open(name: &[u8], create: Option<(u32, u32)>) -> Result<Connection, Errno> {
        if embedded_mode() {
            return Self::open_embedded(name, create);
        }
        let dir = run_dir();
        let sock = dir.join(SOCKET_NAME);
        let req = connect_or_start(&dir, &sock).map_err(|e| io_errno(&e))?;
        let (events, node_end) = sys::seqpacket_pair().map_err(|e| io_errno(&e))?;
        let hello = Request::Open {
            version: PROTOCOL_VERSION,
            name: name.to_vec(),
            create,
            tid: sys::cached_tid(),
        };
        sys::send_with_fd(req.as_raw_fd(), &hello.encode(), node_end.as_raw_fd())
            .map_err(|_| Errno::NotConn)?;
        drop(node_end);
        receive_reply(&req)??;
        Ok(Connection {
            link: Link::Daemon(Mutex::new(req)),
            events,
            local_events: None,
        })
    }

    fn open_embedded(name: &[u8], create: Option<(u32, u32)>) -> Result<Connection, Errno> {
        let node = embedded_node()?;
        let (ours, node_end) = sys::seqpacket_pair().map_err(|e| io_errno(&e))?;
        let mut n = lock_node(node);
        let creds = sys::own_creds();
        let (owner, token) = n.open(name, create, creds)?;
        let (sink, local) = EventSink::new_local(node_end);
        n.attach(token, sink, creds)?;
        Ok(Connection {
            link: Link::Embedded(owner),
            events: ours,
            local_events: Some(local),
        })
    }

    /// Sends one request (one that asks for no inline completion) and
    /// waits for its reply.
    pub fn call(&self, req: &Request) -> Reply {
        self.call_with(req).0
    }

    /// Sends one request and waits for its reply, which may carry the
    /// operation's completion (`proto::InlineAsk`).
    pub fn call_with(&self, req: &Request) -> (Reply, Option<Callback>) {
        match &self.link {
            Link::Daemon(fd) => {
                let fd = fd.lock().unwrap_or_else(|e| e.into_inner());
                round_trip(&fd, req).unwrap_or((Err(Errno::NotConn), None))
            }
            Link::Embedded(owner) => {
                let Ok(node) = embedded_node() else {
                    return (Err(Errno::NotConn), None);
                };
                let mut done = false;
                let mut n = if req.is_lock_call() {
                    lock_when_ready(node, *owner, req)
                } else {
                    lock_node(node)
                };
                let (reply, completion) = handle_request(&mut n, *owner, req.clone(), &mut done);
                (reply, completion.and_then(|p| Callback::decode(&p).ok()))
            }
        }
    }

    /// The query call (node/inspect.rs): the resource `name`, or with
    /// `lkid` non-zero the resource of that lock of this handle.
    pub fn inspect(&self, lkid: u32, name: &[u8]) -> Result<ResourceView, Errno> {
        match &self.link {
            Link::Daemon(fd) => {
                let fd = fd.lock().unwrap_or_else(|e| e.into_inner());
                let req = Request::Inspect {
                    lkid,
                    name: name.to_vec(),
                };
                let bytes = read_answer(&fd, &req)?;
                ResourceView::decode(&bytes).map_err(|_| Errno::Proto)
            }
            Link::Embedded(owner) => {
                let target = if lkid != 0 {
                    InspectTarget::Lock(lkid)
                } else {
                    InspectTarget::Name(name.to_vec())
                };
                inspect_wait(embedded_node()?, *owner, target)
            }
        }
    }

    /// Embedded mode: the queue the callbacks are in (the event descriptor
    /// carries only a doorbell).
    pub fn local_events(&self) -> Option<Arc<LocalLink>> {
        self.local_events.clone()
    }

    /// The descriptor a program polls for callbacks.
    pub fn event_fd(&self) -> RawFd {
        self.events.as_raw_fd()
    }

    /// Closes the handle synchronously: when this returns, the node has
    /// released or orphaned the handle's locks.
    pub fn close(self) {
        let _ = self.call(&Request::Close);
    }

    /// `dlm_release_lockspace` through this handle; the outcome of the
    /// removal itself is not reported (spec §2.10).
    pub fn release(self, force: u32) -> Result<(), Errno> {
        self.call(&Request::Release { force }).map(|_| ())
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // (The node is looked up only for an embedded link: for a daemon
        // link the look-up would start an embedded node at close.)
        if let Link::Embedded(owner) = &self.link {
            if let Ok(node) = embedded_node() {
                lock_node(node).close(*owner);
            }
        }
    }
}

/// Asks this host's node a read-only question (for `udlm`); the answer is a
/// JSON document. Never starts a node: with none running, `ENOTCONN`.
pub fn query(what: &proto::Query) -> Result<String, Errno> {
    let sock = run_dir().join(SOCKET_NAME);
    let fd = sys::seqpacket_connect(&sock).map_err(|e| io_errno(&e))?;
    let req = Request::Query {
        version: proto::ADMIN_VERSION,
        query: what.clone(),
    };
    String::from_utf8(read_answer(&fd, &req)?).map_err(|_| Errno::Proto)
}

/// Sends `req` and reads its answer: a reply with the length, then the
/// bytes in packets.
fn read_answer(fd: &OwnedFd, req: &Request) -> Result<Vec<u8>, Errno> {
    let len = round_trip(fd, req)?.0? as usize;
    if len > proto::MAX_QUERY_ANSWER {
        return Err(Errno::Proto);
    }
    let mut text = Vec::with_capacity(len);
    let mut buf = vec![0u8; proto::QUERY_CHUNK];
    while text.len() < len {
        match sys::recv(fd.as_raw_fd(), &mut buf, false) {
            Ok(n) if n > 0 && text.len() + n <= len => text.extend_from_slice(&buf[..n]),
            Ok(n) if n > 0 => return Err(Errno::Proto),
            _ => return Err(Errno::NotConn),
        }
    }
    Ok(text)
}

fn round_trip(fd: &OwnedFd, req: &Request) -> Result<(Reply, Option<Callback>), Errno> {
    sys::send(fd.as_raw_fd(), &req.encode(), false).map_err(|_| Errno::NotConn)?;
    let mut buf = [0u8; 12 + CALLBACK_LEN + 1];
    match sys::recv_spin(fd.as_raw_fd(), &mut buf, sys::spin_us()) {
        Ok(n) if n > 0 => proto::decode_reply_with(&buf[..n]).map_err(|_| Errno::Proto),
        _ => Err(Errno::NotConn),
    }
}

fn receive_reply(fd: &OwnedFd) -> Result<Reply, Errno> {
    let mut buf = [0u8; 16];
    match sys::recv(fd.as_raw_fd(), &mut buf, false) {
        Ok(n) if n > 0 => proto::decode_reply(&buf[..n]).map_err(|_| Errno::Proto),
        _ => Err(Errno::NotConn),
    }
}

/// Where the daemon binary is: `DLM_DAEMON`, else the installed path.
fn daemon_path() -> PathBuf {
    if let Some(p) = std::env::var_os("DLM_DAEMON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    PathBuf::from(option_env!("UDLM_DAEMON_PATH").unwrap_or("/usr/local/sbin/udlmd"))
}

fn connect_or_start(dir: &Path, sock: &Path) -> io::Result<OwnedFd> {
    match sys::seqpacket_connect(sock) {
        Ok(fd) => return Ok(fd),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOENT) | Some(libc::ECONNREFUSED)
            ) => {}
        Err(e) => return Err(e),
    }
    // No node answers: start one. `udlmd --daemonize` returns once it
    // listens; two callers racing here are sorted out by the daemon's lock
    // file, so we simply retry connecting.
    std::fs::create_dir_all(dir)?;
    let status = std::process::Command::new(daemon_path())
        .arg("--daemonize")
        .env("DLM_RUN_DIR", dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if let Err(e) = &status {
        if e.kind() == io::ErrorKind::NotFound {
            return Err(io::Error::new(io::ErrorKind::NotFound, "udlmd not found"));
        }
    }
    let deadline = Instant::now() + DAEMON_START_TIMEOUT;
    loop {
        match sys::seqpacket_connect(sock) {
            Ok(fd) => return Ok(fd),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}
