//! Tests of the transport: the frame codec, handshake refusals, ordered
//! exactly-once delivery across connection faults and restarts, bounds and
//! timeouts. Everything runs on 127.0.0.1 with kernel-chosen ports, and every
//! wait has a deadline so that a failure is an assertion, never a hang.

use super::frame::*;
use super::*;
use std::collections::HashSet;
use std::io::{Cursor, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- helpers

#[derive(Default)]
struct State {
    /// Message indices received, per sender, in delivery order.
    msgs: HashMap<u32, Vec<u64>>,
    ups: Vec<(u32, u64)>,
    downs: Vec<u32>,
    /// Every callback in order ("up 2", "down 2"), to check that up and down alternate.
    events: Vec<(u32, bool)>,
    violations: Vec<String>,
}

impl State {
    /// How many messages arrived from `peer`.
    fn n(&self, peer: u32) -> u64 {
        self.msgs.get(&peer).map_or(0, |v| v.len() as u64)
    }
}

/// A handler that records everything and checks that callbacks for one
/// peer never overlap. With `echo`, it sends every message back.
#[derive(Default)]
struct Rec {
    st: Mutex<State>,
    cv: Condvar,
    busy: Mutex<HashSet<u32>>,
    echo: OnceLock<Weak<Net>>,
    /// While set, `on_message` waits (at most 10 s): the node stops reading.
    stall: AtomicBool,
    /// With `greet` wanted, `on_peer_up` sends the peer a message from
    /// inside the callback, as udlmd's node does (its membership hello).
    greet_wanted: AtomicBool,
    greet: OnceLock<Weak<Net>>,
    /// The most messages one `on_messages` call carried.
    largest_batch: AtomicUsize,
}

impl Rec {
    fn enter(&self, peer: u32) {
        if !lock(&self.busy).insert(peer) {
            lock(&self.st)
                .violations
                .push(format!("concurrent callbacks for peer {peer}"));
        }
    }
    fn leave(&self, peer: u32) {
        lock(&self.busy).remove(&peer);
        self.cv.notify_all();
    }

    /// Wait until `f` holds, at most `timeout`.
    fn wait(&self, timeout: Duration, f: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = lock(&self.st);
        loop {
            if f(&g) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = self.cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Exactly 0..n from `peer`, in order, and no concurrent callbacks.
    fn check_exact(&self, peer: u32, n: u64) {
        let st = lock(&self.st);
        assert!(st.violations.is_empty(), "{:?}", st.violations);
        let got = st.msgs.get(&peer).cloned().unwrap_or_default();
        assert_eq!(got.len() as u64, n, "message count from {peer}");
        for (i, v) in got.iter().enumerate() {
            assert_eq!(
                *v, i as u64,
                "message {i} from {peer} out of order or duplicated"
            );
        }
    }

    /// 0..n arrive from `peer`, and after a pause for any stray
    /// duplicate, exactly those (see `check_exact`).
    fn all_arrive(&self, peer: u32, n: u64) {
        assert!(
            self.wait(T, |s| s.n(peer) >= n),
            "not all {n} messages from {peer} arrived"
        );
        std::thread::sleep(Duration::from_millis(50));
        self.check_exact(peer, n);
    }

    fn check_alternating(&self) {
        let st = lock(&self.st);
        let mut up: HashMap<u32, bool> = HashMap::new();
        for (p, u) in &st.events {
            let was = up.insert(*p, *u).unwrap_or(false);
            assert_ne!(was, *u, "events for {p} do not alternate: {:?}", st.events);
        }
    }
}

impl NetHandler for Rec {
    fn on_messages(&self, from: u32, payloads: &[&[u8]]) {
        self.largest_batch
            .fetch_max(payloads.len(), Ordering::SeqCst);
        for p in payloads {
            self.on_message(from, p);
        }
    }
    fn on_message(&self, from: u32, payload: &[u8]) {
        self.enter(from);
        let idx = if payload.len() >= 8 {
            u64::from_le_bytes(payload[..8].try_into().unwrap())
        } else {
            u64::MAX
        };
        // Every byte after the index is the index's own fill (`msg`), so a
        // frame spliced from two others shows here.
        if payload.len() > 8 && payload[8..].iter().any(|b| u64::from(*b) != idx % 251) {
            lock(&self.st)
                .violations
                .push(format!("message {idx} from {from}: payload corrupted"));
        }
        lock(&self.st).msgs.entry(from).or_default().push(idx);
        let t0 = Instant::now();
        while self.stall.load(Ordering::SeqCst) && t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(1));
        }
        if let Some(net) = self.echo.get().and_then(|w| w.upgrade()) {
            // Sending from inside a callback must not deadlock.
            let _ = net.send(from, payload.to_vec());
        }
        self.leave(from);
    }
    fn on_peer_up(&self, node: u32, incarnation: u64) {
        if self.greet_wanted.load(Ordering::SeqCst) {
            let t0 = Instant::now();
            while self.greet.get().is_none() && t0.elapsed() < Duration::from_secs(2) {
                std::thread::sleep(Duration::from_millis(1));
            }
            if let Some(net) = self.greet.get().and_then(|w| w.upgrade()) {
                let _ = net.send(node, msg(0));
            }
        }
        self.enter(node);
        let mut st = lock(&self.st);
        st.ups.push((node, incarnation));
        st.events.push((node, true));
        drop(st);
        self.leave(node);
    }
    fn on_peer_down(&self, node: u32) {
        self.enter(node);
        let mut st = lock(&self.st);
        st.downs.push(node);
        st.events.push((node, false));
        drop(st);
        self.leave(node);
    }
}

fn base_cfg(id: u32, listen: SocketAddr) -> NetConfig {
    NetConfig {
        local_id: id,
        listen,
        cluster_name: "test".into(),
        key: None,
        peers: Vec::new(),
        heartbeat_ms: 50,
        peer_timeout_ms: 600,
        reconnect_ms: 50,
        max_queue: 4096,
        max_message: 64 * 1024,
    }
}

struct Node {
    net: Arc<Net>,
    rec: Arc<Rec>,
}

/// Free, bound listeners: every port is known before any node starts.
fn listeners(n: usize) -> Vec<TcpListener> {
    (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect()
}

/// A cluster of `n` nodes with ids 1..=n, all peers of each other;
/// `tweak` adjusts node i's config (0-based) before it starts.
fn cluster(n: usize, tweak: impl Fn(usize, &mut NetConfig)) -> Vec<Node> {
    let ls = listeners(n);
    let addrs: Vec<SocketAddr> = ls.iter().map(|l| l.local_addr().unwrap()).collect();
    ls.into_iter()
        .enumerate()
        .map(|(i, l)| {
            let mut cfg = base_cfg(i as u32 + 1, addrs[i]);
            cfg.peers = (0..n)
                .filter(|j| *j != i)
                .map(|j| (j as u32 + 1, vec![addrs[j]]))
                .collect();
            tweak(i, &mut cfg);
            let rec = Arc::new(Rec::default());
            let net = Net::start_with_listener(cfg, rec.clone(), l).unwrap();
            Node { net, rec }
        })
        .collect()
}

fn msg(i: u64) -> Vec<u8> {
    // Varying sizes so that frames straddle buffer boundaries.
    let mut v = i.to_le_bytes().to_vec();
    v.resize(8 + (i % 97) as usize, (i % 251) as u8);
    v
}

/// `msg(i)`, but large: a few of them fill a socket's buffers.
fn big_msg(i: u64) -> Vec<u8> {
    let mut v = msg(i);
    v.resize(60_000 + (i % 97) as usize, (i % 251) as u8);
    v
}

/// Send 0..n to `to`, retrying while the queue is full; bounded in time.
fn send_all(net: &Net, to: u32, range: std::ops::Range<u64>, deadline: Instant) {
    for i in range {
        loop {
            match net.send(to, msg(i)) {
                Ok(()) => break,
                Err(SendError::QueueFull) => {
                    assert!(Instant::now() < deadline, "queue stayed full");
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => panic!("send {i}: {e}"),
            }
        }
    }
}

fn log_has(net: &Net, needle: &str) -> bool {
    net.recent_log().iter().any(|l| l.contains(needle))
}

fn wait_log(net: &Net, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if log_has(net, needle) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

const T: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------- codec

fn sample_frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let hello = Hello {
        node_id: 3,
        target_id: 4,
        incarnation: 0x1122334455667788,
        nonce: [9; NONCE_LEN],
        cluster: b"alpha".to_vec(),
    };
    let reply = HelloReply {
        node_id: 3,
        incarnation: 7,
        mac: [5; MAC_LEN],
    };
    let bye = Bye {
        reason: reason::SHUTDOWN,
        text: "bye now".into(),
    };
    let mut h = Header::new(FrameType::Hello, 3);
    h.flags = FLAG_AUTH;
    let mut b = Vec::new();
    encode_frame(&h, &hello.encode(), &mut b);
    out.push(b);
    let mut b = Vec::new();
    encode_frame(
        &Header {
            ack: 12,
            ..Header::new(FrameType::HelloReply, 3)
        },
        &reply.encode(),
        &mut b,
    );
    out.push(b);
    let mut b = Vec::new();
    encode_frame(
        &Header {
            seq: 42,
            ack: 41,
            ..Header::new(FrameType::Data, 3)
        },
        b"payload bytes",
        &mut b,
    );
    out.push(b);
    for t in [FrameType::Ack, FrameType::Heartbeat] {
        let mut b = Vec::new();
        encode_frame(
            &Header {
                ack: u64::MAX,
                ..Header::new(t, 3)
            },
            &[],
            &mut b,
        );
        out.push(b);
    }
    let mut b = Vec::new();
    encode_frame(&Header::new(FrameType::Bye, 3), &bye.encode(), &mut b);
    out.push(b);
    out
}

#[test]
fn codec_round_trip() {
    let frames = sample_frames();
    let all: Vec<u8> = frames.concat();
    // Slice decoder, frame by frame.
    let mut rest = &all[..];
    let mut n = 0;
    while !rest.is_empty() {
        let (h, p, used) = decode_frame(rest, 1024).unwrap();
        assert_eq!(h.len as usize, p.len());
        assert_eq!(&h.encode()[..], &rest[..HEADER_LEN]);
        match h.ftype {
            FrameType::Hello => {
                let x = Hello::decode(p).unwrap();
                assert_eq!(
                    (x.node_id, x.target_id, x.incarnation, &x.cluster[..]),
                    (3, 4, 0x1122334455667788, &b"alpha"[..])
                );
                assert_eq!(h.flags, FLAG_AUTH);
            }
            FrameType::HelloReply => {
                assert_eq!(
                    HelloReply::decode(p).unwrap(),
                    HelloReply {
                        node_id: 3,
                        incarnation: 7,
                        mac: [5; MAC_LEN]
                    }
                );
                assert_eq!(h.ack, 12);
            }
            FrameType::Data => assert_eq!((h.seq, h.ack, p), (42, 41, &b"payload bytes"[..])),
            FrameType::Ack | FrameType::Heartbeat => assert_eq!(h.ack, u64::MAX),
            FrameType::Bye => assert_eq!(Bye::decode(p).unwrap().text, "bye now"),
        }
        rest = &rest[used..];
        n += 1;
    }
    assert_eq!(n, frames.len());
    // Stream reader, the same bytes in one stream.
    let mut cur = Cursor::new(&all);
    for f in &frames {
        let (h, p) = read_frame(&mut cur, 1024).unwrap();
        assert_eq!(h.len as usize + HEADER_LEN, f.len());
        assert_eq!(&p[..], &f[HEADER_LEN..]);
    }
    assert!(matches!(read_frame(&mut cur, 1024), Err(ReadError::Eof)));
    fuzz_decode(&all);
}

#[test]
fn codec_rejects_every_truncation() {
    for f in sample_frames() {
        for k in 0..f.len() {
            let cut = &f[..k];
            assert!(
                matches!(decode_frame(cut, 1024), Err(FrameError::Truncated { .. })),
                "slice decoder accepted {k} of {} bytes",
                f.len()
            );
            let r = read_frame(&mut Cursor::new(cut), 1024);
            if k == 0 {
                assert!(matches!(r, Err(ReadError::Eof)));
            } else {
                assert!(
                    matches!(r, Err(ReadError::Frame(FrameError::Truncated { .. }))),
                    "stream reader accepted {k} of {} bytes",
                    f.len()
                );
            }
        }
    }
}

#[test]
fn codec_rejects_bad_headers() {
    let good = Header {
        seq: 1,
        ..Header::new(FrameType::Data, 1)
    };
    let bytes = |h: &Header| h.encode().to_vec();
    // Bad magic.
    let mut b = bytes(&good);
    b[0] ^= 0xff;
    assert!(matches!(
        Header::decode(&b, 1024),
        Err(FrameError::BadMagic(_))
    ));
    // Bad version.
    for v in [0u8, VERSION + 1, 255] {
        let mut b = bytes(&good);
        b[4] = v;
        assert_eq!(Header::decode(&b, 1024), Err(FrameError::BadVersion(v)));
    }
    // Unknown type.
    for t in [0u8, 7, 200, 255] {
        let mut b = bytes(&good);
        b[5] = t;
        assert_eq!(Header::decode(&b, 1024), Err(FrameError::UnknownType(t)));
    }
    // Oversized DATA: rejected from the header alone, before any allocation
    // (a 4 GiB length with no payload behind it must not be allocated).
    for len in [1025u32, u32::MAX] {
        let h = Header { len, ..good };
        let r = read_frame(&mut Cursor::new(h.encode()), 1024);
        assert!(
            matches!(r, Err(ReadError::Frame(FrameError::BadLength { .. }))),
            "{len}: {r:?}"
        );
    }
    // The configured bound is never above the hard limit.
    let h = Header {
        len: (MAX_MESSAGE_LIMIT + 1) as u32,
        ..good
    };
    assert!(matches!(
        Header::decode(&h.encode(), usize::MAX),
        Err(FrameError::BadLength { .. })
    ));
    // Control frames have fixed bounds whatever max_message is.
    for (t, len) in [
        (FrameType::Ack, 1u32),
        (FrameType::Heartbeat, 8),
        (FrameType::HelloReply, HELLO_REPLY_LEN as u32 - 1),
        (FrameType::HelloReply, HELLO_REPLY_LEN as u32 + 1),
        (FrameType::Hello, HELLO_FIXED_LEN as u32 - 1),
        (
            FrameType::Hello,
            (HELLO_FIXED_LEN + MAX_CLUSTER_NAME + 1) as u32,
        ),
        (FrameType::Bye, 3),
        (FrameType::Bye, (BYE_FIXED_LEN + MAX_BYE_TEXT + 1) as u32),
    ] {
        let h = Header {
            len,
            ..Header::new(t, 1)
        };
        assert!(
            matches!(
                Header::decode(&h.encode(), 1 << 20),
                Err(FrameError::BadLength { .. })
            ),
            "{t:?} {len}"
        );
    }
    // Malformed HELLO payload: the name length disagrees with the frame.
    let mut p = Hello {
        node_id: 1,
        target_id: 0,
        incarnation: 1,
        nonce: [0; NONCE_LEN],
        cluster: b"abc".to_vec(),
    }
    .encode();
    p[HELLO_FIXED_LEN - 1] = 4;
    assert!(matches!(Hello::decode(&p), Err(FrameError::BadPayload(_))));
    assert!(matches!(
        HelloReply::decode(&[0; 10]),
        Err(FrameError::BadPayload(_))
    ));
    // A BYE with invalid UTF-8 decodes (lossily): it is only logged.
    assert!(Bye::decode(&[0, 0, 0, 0, 0xff, 0xfe]).is_ok());
    // Garbage never panics the fuzz entry point.
    let mut x = 0x12345678u32;
    for _ in 0..2000 {
        let buf: Vec<u8> = (0..(x % 200) as usize)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        fuzz_decode(&buf);
        let mut with_header = Header::new(FrameType::from_u8((x % 6 + 1) as u8).unwrap(), 1)
            .encode()
            .to_vec();
        with_header[8..12].copy_from_slice(&(buf.len() as u32).to_le_bytes());
        with_header.extend_from_slice(&buf);
        fuzz_decode(&with_header);
    }
}

// ---------------------------------------------------------------- config and send errors

#[test]
fn config_is_validated() {
    let l = "127.0.0.1:0".parse().unwrap();
    let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
    type Tweak = Box<dyn Fn(&mut NetConfig)>;
    let bad: Vec<Tweak> = vec![
        Box::new(|c| c.local_id = 0),
        Box::new(move |c| c.peers = vec![(1, vec![a])]),
        Box::new(move |c| c.peers = vec![(2, vec![a]), (2, vec![a])]),
        Box::new(|c| c.peers = vec![(2, vec![])]),
        Box::new(|c| c.heartbeat_ms = c.peer_timeout_ms),
        Box::new(|c| c.max_queue = 0),
        Box::new(|c| c.max_message = MAX_MESSAGE_LIMIT + 1),
        Box::new(|c| c.key = Some(Vec::new())),
        Box::new(|c| c.cluster_name = "x".repeat(256)),
    ];
    for (i, f) in bad.iter().enumerate() {
        let mut cfg = base_cfg(1, l);
        f(&mut cfg);
        let e = Net::start(cfg, Arc::new(Rec::default()))
            .err()
            .unwrap_or_else(|| panic!("config {i} accepted"));
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "config {i}");
    }
}

#[test]
fn send_errors_and_queue_bound() {
    // The peer's address is a port nobody listens on: it stays down.
    let dead = listeners(1).pop().unwrap().local_addr().unwrap();
    let mut cfg = base_cfg(1, "127.0.0.1:0".parse().unwrap());
    cfg.peers = vec![(2, vec![dead])];
    cfg.max_queue = 10;
    cfg.max_message = 100;
    let net = Net::start(cfg, Arc::new(Rec::default())).unwrap();
    assert_ne!(net.local_addr().port(), 0);
    for i in 0..10 {
        assert_eq!(net.send(2, msg(i)), Ok(()));
    }
    assert_eq!(net.send(2, msg(10)), Err(SendError::QueueFull));
    assert_eq!(net.queued(2), Some(10));
    assert_eq!(net.send(3, msg(0)), Err(SendError::UnknownPeer));
    assert_eq!(net.send(1, msg(0)), Err(SendError::UnknownPeer));
    assert_eq!(net.send(2, vec![0; 101]), Err(SendError::TooLarge));
    assert!(net.connected().is_empty());
    assert!(wait_log(&net, "cannot connect", T));
    net.shutdown();
    assert_eq!(net.send(2, msg(0)), Err(SendError::Shutdown));
    net.shutdown(); // idempotent
}

// ---------------------------------------------------------------- delivery

#[test]
fn two_nodes_10000_messages_each_way() {
    let nodes = cluster(2, |_, c| c.max_queue = 1000);
    let deadline = Instant::now() + Duration::from_secs(8);
    let n = 10_000;
    std::thread::scope(|s| {
        s.spawn(|| send_all(&nodes[0].net, 2, 0..n, deadline));
        s.spawn(|| send_all(&nodes[1].net, 1, 0..n, deadline));
    });
    assert!(nodes[1].rec.wait(T, |s| s.n(1) >= n));
    assert!(nodes[0].rec.wait(T, |s| s.n(2) >= n));
    // Let any stray duplicate arrive before checking there is none.
    std::thread::sleep(Duration::from_millis(50));
    nodes[1].rec.check_exact(1, n);
    nodes[0].rec.check_exact(2, n);
    // Everything is acknowledged in the end.
    let a = &nodes[0].net;
    let t0 = Instant::now();
    while a.queued(2) != Some(0) && t0.elapsed() < T {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(a.queued(2), Some(0));
    assert_eq!(a.connected(), vec![2]);
    assert_eq!(nodes[1].net.connected(), vec![1]);
    for nd in &nodes {
        nd.net.shutdown();
        nd.rec.check_alternating();
    }
}

/// `Net::send` writes a frame itself when the session is idle; when the
/// socket takes only part of it, the writer thread must finish that frame
/// before any other, or the stream is corrupt.
#[test]
fn a_frame_written_in_part_by_its_sender_is_finished_by_the_writer() {
    let nodes = cluster(2, |_, c| {
        c.peer_timeout_ms = 8000;
        c.heartbeat_ms = 200;
    });
    assert!(wait_until(|| nodes[0].net.connected() == vec![2]));
    // Node 2 stops reading at the first message; node 1 sends until one
    // of its own writes fell short (the socket buffers are full).
    nodes[1].rec.stall.store(true, Ordering::SeqCst);
    let a = &nodes[0].net;
    let mut n = 0;
    while a.inner.partial_writes.load(Ordering::SeqCst) == 0 {
        assert!(n < 2000, "2000 large messages and never a short write");
        a.send(2, big_msg(n)).unwrap();
        n += 1;
        // Let the writer thread (woken by a send that found it busy)
        // catch up, so that the next send is the sender's own write again.
        while a.inner.peers.read().unwrap()[0].tx.lock().unwrap().cursor <= n {
            std::thread::sleep(Duration::from_micros(200));
            if a.inner.partial_writes.load(Ordering::SeqCst) > 0 {
                break;
            }
        }
    }
    // Some more behind it, queued for the writer.
    for i in n..n + 20 {
        a.send(2, big_msg(i)).unwrap();
    }
    nodes[1].rec.stall.store(false, Ordering::SeqCst);
    assert!(nodes[1].rec.wait(T, |s| s.n(1) >= n + 20));
    std::thread::sleep(Duration::from_millis(50));
    nodes[1].rec.check_exact(1, n + 20);
    // One session throughout: no protocol error, no resend.
    assert_eq!(lock(&nodes[1].rec.st).ups.len(), 1);
    assert!(!log_has(a, "protocol error") && !log_has(&nodes[1].net, "protocol error"));
    for nd in &nodes {
        nd.net.shutdown();
    }
}

/// Requests and replies from several threads never wait for a heartbeat:
/// a sender wakes the session's writer whenever it sleeps. (A dialer
/// waiting under the same lock once counted as a sleeping writer, and a
/// message queued in a burst then waited for the writer's next timeout.)
#[test]
fn request_and_reply_traffic_never_waits_for_a_heartbeat() {
    let nodes = cluster(2, |_, c| {
        c.heartbeat_ms = 20_000;
        c.peer_timeout_ms = 60_000;
    });
    assert!(wait_until(|| nodes[0].net.connected() == vec![2]));
    // Node 2 answers every message with the same message.
    let _ = nodes[1].rec.echo.set(Arc::downgrade(&nodes[1].net));
    let worst = Mutex::new(Duration::ZERO);
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let (net, rec, worst) = (&nodes[0].net, &nodes[0].rec, &worst);
            s.spawn(move || {
                for k in 0..400u64 {
                    let i = t * 1000 + k;
                    let start = Instant::now();
                    net.send(2, msg(i)).unwrap();
                    let back = rec.wait(T, |st| st.msgs.get(&2).is_some_and(|v| v.contains(&i)));
                    assert!(back, "no answer to message {i}");
                    let took = start.elapsed();
                    let mut w = lock(worst);
                    *w = (*w).max(took);
                }
            });
        }
    });
    let worst = *lock(&worst);
    assert!(
        worst < Duration::from_millis(250),
        "a round trip took {worst:?} (heartbeats every 20 s, the dialer looks every 1 s)"
    );
    for nd in &nodes {
        nd.net.shutdown();
    }
}

/// Node 1 sends messages 0..n while node 2's handler stands at the first,
/// so that the rest pile up unread; then node 2 goes on.
fn pile_up(nodes: &[Node], n: u64) {
    nodes[1].rec.stall.store(true, Ordering::SeqCst);
    send_all(&nodes[0].net, 2, 0..n, Instant::now() + T);
    std::thread::sleep(Duration::from_millis(100));
    nodes[1].rec.stall.store(false, Ordering::SeqCst);
}

/// What a handler sends while it handles messages that arrived together
/// leaves with them in one write of the reader thread, not a write (or a
/// wake-up of the writer) per message.
#[test]
fn a_handlers_answers_leave_together() {
    let nodes = cluster(2, |_, _| {});
    assert!(wait_until(|| nodes[0].net.connected() == vec![2]));
    let _ = nodes[1].rec.echo.set(Arc::downgrade(&nodes[1].net));
    pile_up(&nodes, 300);
    nodes[0].rec.all_arrive(2, 300);
    let b = &nodes[1].net.inner;
    let (writes, frames) = (
        b.held_writes.load(Ordering::SeqCst),
        b.held_frames.load(Ordering::SeqCst),
    );
    assert!(frames > 0, "no answer was written by the reader");
    assert!(writes * 4 <= frames, "{frames} answers in {writes} writes");
    for nd in &nodes {
        nd.net.shutdown();
    }
}

/// Frames that arrived together reach the handler in one call (the node
/// takes its lock once for them), at most `DELIVER_BATCH` at a time, in
/// order and exactly once.
#[test]
fn messages_that_arrived_together_are_delivered_together() {
    let nodes = cluster(2, |_, _| {});
    assert!(wait_until(|| nodes[0].net.connected() == vec![2]));
    pile_up(&nodes, 300);
    nodes[1].rec.all_arrive(1, 300);
    let largest = nodes[1].rec.largest_batch.load(Ordering::SeqCst);
    assert!(largest > 1, "300 waiting messages delivered one call each");
    assert!(largest <= 64, "{largest} messages in one call");
    for nd in &nodes {
        nd.net.shutdown();
    }
}

/// A message on its own is written by its sender, with no wake-up on its
/// way; a burst is left to the writer thread, which sends it in a few
/// system calls instead of one per message (net module doc, "Writing").
#[test]
fn a_burst_is_left_to_the_writer_and_a_lone_message_is_not() {
    let nodes = cluster(2, |_, _| {});
    assert!(wait_until(|| nodes[0].net.connected() == vec![2]));
    let a = &nodes[0].net;
    let inline = || a.inner.inline_writes.load(Ordering::SeqCst);
    // Lone messages, then groups of INLINE_BURST back to back (a grant
    // and a BAST, say): all written by their senders.
    let mut sent = 0;
    let mut all_inline = 0;
    for group in [1, 1, 1, 1, 1, 4, 4, 4, 4, 4] {
        std::thread::sleep(Duration::from_millis(3));
        let before = inline();
        for _ in 0..group {
            a.send(2, msg(sent)).unwrap();
            sent += 1;
        }
        if inline() - before == group {
            all_inline += 1;
        }
    }
    // (A heartbeat or an ack being written at that moment may take one.)
    assert!(
        all_inline >= 8,
        "only {all_inline} of 10 lone messages or small groups written by their senders"
    );
    std::thread::sleep(Duration::from_millis(3));
    let before = inline();
    for i in sent..sent + 200 {
        a.send(2, msg(i)).unwrap();
    }
    sent += 200;
    let burst_inline = inline() - before;
    // Each sender's own write needs INLINE_GAP of quiet before it; 200
    // sends in a row get a handful, unless the thread stalls often.
    assert!(
        burst_inline <= 100,
        "{burst_inline} of a burst of 200 written by their senders"
    );
    nodes[1].rec.all_arrive(1, sent);
    for nd in &nodes {
        nd.net.shutdown();
    }
}

#[test]
fn a_thread_that_holds_its_writes_sends_them_later_in_one_write() {
    let nodes = cluster(2, |_, _| {});
    assert!(wait_until(|| nodes[0].net.connected() == vec![2]));
    let a = &nodes[0].net;
    let inline = || a.inner.inline_writes.load(Ordering::SeqCst);
    let held_writes = || a.inner.held_writes.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(3));
    let (inline_before, writes_before) = (inline(), held_writes());
    Net::hold_writes();
    for i in 0..10 {
        a.send(2, msg(i)).unwrap();
    }
    // Held: not one written by this thread (a lone first send would be).
    assert_eq!(inline(), inline_before);
    Net::write_held();
    assert!(held_writes() - writes_before <= 1);
    assert!(nodes[1].rec.wait(T, |s| s.n(1) >= 10));
    // The hold ended: a lone message is written at once again (one of a
    // few: a heartbeat being written at that moment may take one).
    let mut sent = 10;
    while sent < 15 && inline() == inline_before {
        std::thread::sleep(Duration::from_millis(3));
        a.send(2, msg(sent)).unwrap();
        sent += 1;
    }
    assert!(inline() > inline_before);
    nodes[1].rec.all_arrive(1, sent);
    for nd in &nodes {
        nd.net.shutdown();
    }
}

#[test]
fn three_nodes_all_to_all() {
    let nodes = cluster(3, |_, _| {});
    let deadline = Instant::now() + Duration::from_secs(8);
    let n = 1000;
    std::thread::scope(|s| {
        for (i, nd) in nodes.iter().enumerate() {
            for to in 1..=3u32 {
                if to != i as u32 + 1 {
                    let net = nd.net.clone();
                    s.spawn(move || send_all(&net, to, 0..n, deadline));
                }
            }
        }
    });
    for (i, nd) in nodes.iter().enumerate() {
        let me = i as u32 + 1;
        for from in (1..=3u32).filter(|f| *f != me) {
            assert!(nd.rec.wait(T, |s| s.n(from) >= n), "{me} from {from}");
            nd.rec.check_exact(from, n);
        }
        let mut want: Vec<u32> = (1..=3).filter(|x| *x != me).collect();
        want.sort();
        assert_eq!(nd.net.connected(), want);
    }
    for nd in &nodes {
        nd.net.shutdown();
    }
}

#[test]
fn handler_may_send_from_a_callback() {
    let nodes = cluster(2, |_, _| {});
    // Node 2 echoes everything back to node 1.
    nodes[1]
        .rec
        .echo
        .set(Arc::downgrade(&nodes[1].net))
        .ok()
        .unwrap();
    let deadline = Instant::now() + T;
    send_all(&nodes[0].net, 2, 0..500, deadline);
    assert!(nodes[0].rec.wait(T, |s| s.n(2) >= 500));
    nodes[0].rec.check_exact(2, 500);
    for nd in &nodes {
        nd.net.shutdown();
    }
}

/// A message sent from `on_peer_up` on the accepting side goes after the
/// HELLO_REPLY: written before it, the dialer refused the connection
/// ("expected HELLO_REPLY, got DATA") and every udlmd start saw its first
/// session fail.
#[test]
fn a_message_sent_at_peer_up_follows_the_handshake() {
    let ls = listeners(2);
    let addrs: Vec<SocketAddr> = ls.iter().map(|l| l.local_addr().unwrap()).collect();
    let nodes: Vec<Node> = ls
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let mut cfg = base_cfg(i as u32 + 1, addrs[i]);
            cfg.peers = vec![(2 - i as u32, vec![addrs[1 - i]])];
            let rec = Arc::new(Rec::default());
            rec.greet_wanted.store(true, Ordering::SeqCst);
            let net = Net::start_with_listener(cfg, rec.clone(), l).unwrap();
            rec.greet.set(Arc::downgrade(&net)).ok().unwrap();
            Node { net, rec }
        })
        .collect();
    for (i, nd) in nodes.iter().enumerate() {
        let other = 2 - i as u32;
        assert!(
            nd.rec.wait(T, |s| s.n(other) >= 1),
            "node {} got no greeting",
            i + 1
        );
    }
    std::thread::sleep(Duration::from_millis(300));
    for nd in &nodes {
        assert!(
            !log_has(&nd.net, "expected HELLO_REPLY"),
            "a greeting overtook the HELLO_REPLY"
        );
        let st = lock(&nd.rec.st);
        assert!(
            st.downs.is_empty(),
            "a session went down: {:?} {:?}",
            st.events,
            nd.net.recent_log()
        );
    }
    for nd in &nodes {
        nd.net.shutdown();
    }
}

#[test]
fn exactly_one_session_per_pair() {
    // Both sides dial at once; the connection dialed by node 1 is kept.
    let nodes = cluster(2, |_, c| c.reconnect_ms = 20);
    assert!(nodes[0].rec.wait(T, |s| !s.ups.is_empty()));
    assert!(nodes[1].rec.wait(T, |s| !s.ups.is_empty()));
    std::thread::sleep(Duration::from_millis(300));
    let (a_local, a_remote) = nodes[0].net.session_addrs(2).unwrap();
    let (b_local, b_remote) = nodes[1].net.session_addrs(1).unwrap();
    assert_eq!(
        (a_local, a_remote),
        (b_remote, b_local),
        "both ends use the same connection"
    );
    assert_eq!(
        a_remote,
        nodes[1].net.local_addr(),
        "the session is the one node 1 dialed"
    );
    assert_eq!(lock(&nodes[0].net.inner.conns).len(), 1);
    assert_eq!(lock(&nodes[1].net.inner.conns).len(), 1);
    for nd in &nodes {
        nd.net.shutdown();
        nd.rec.check_alternating();
    }
}

// ---------------------------------------------------------------- refusals

/// Two nodes that must not form a session: no on_peer_up, no delivery, and
/// both sides log `needle_a` / `needle_b`.
fn assert_refused(nodes: &[Node], needle_a: &str, needle_b: &str) {
    let _ = nodes[0].net.send(2, msg(0));
    assert!(
        wait_log(&nodes[0].net, needle_a, T),
        "node 1 log: {:#?}",
        nodes[0].net.recent_log()
    );
    assert!(
        wait_log(&nodes[1].net, needle_b, T),
        "node 2 log: {:#?}",
        nodes[1].net.recent_log()
    );
    // Several attempts pass in this time; none may succeed.
    std::thread::sleep(Duration::from_millis(300));
    for nd in nodes {
        let st = lock(&nd.rec.st);
        assert!(st.ups.is_empty(), "a refused peer came up");
        assert!(st.msgs.is_empty(), "a refused peer delivered");
        drop(st);
        assert!(nd.net.connected().is_empty());
    }
    for nd in nodes {
        nd.net.shutdown();
    }
}

#[test]
fn wrong_key_refused() {
    let nodes = cluster(2, |i, c| {
        c.key = Some(if i == 0 {
            b"key one".to_vec()
        } else {
            b"key two".to_vec()
        })
    });
    // The acceptor checks first; whoever dialed, the log names the failure.
    let needle = "authentication failed";
    let deadline = Instant::now() + T;
    while !(log_has(&nodes[0].net, needle) || log_has(&nodes[1].net, needle))
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_refused(&nodes, needle, needle);
}

#[test]
fn key_on_one_side_only_refused() {
    let nodes = cluster(2, |i, c| {
        if i == 0 {
            c.key = Some(b"secret".to_vec())
        }
    });
    assert_refused(&nodes, "peer has no cluster key", "none is configured here");
}

#[test]
fn same_key_authenticates() {
    let nodes = cluster(2, |_, c| c.key = Some(b"shared secret".to_vec()));
    send_all(&nodes[0].net, 2, 0..100, Instant::now() + T);
    assert!(nodes[1].rec.wait(T, |s| s.n(1) >= 100));
    nodes[1].rec.check_exact(1, 100);
    for nd in &nodes {
        nd.net.shutdown();
    }
}

#[test]
fn wrong_cluster_refused() {
    let nodes = cluster(2, |i, c| {
        c.cluster_name = if i == 0 {
            "alpha".into()
        } else {
            "beta".into()
        }
    });
    assert_refused(&nodes, "wrong cluster", "wrong cluster");
}

#[test]
fn unknown_node_refused() {
    // Node 1 knows only node 2 (never started); node 9 knows node 1 and dials it.
    let ls = listeners(3);
    let addrs: Vec<SocketAddr> = ls.iter().map(|l| l.local_addr().unwrap()).collect();
    let mut it = ls.into_iter();
    let (l1, l9) = (it.next().unwrap(), it.next().unwrap());
    drop(it); // addrs[2]: node 2's port, nobody listens
    let mut c1 = base_cfg(1, addrs[0]);
    c1.peers = vec![(2, vec![addrs[2]])];
    let mut c9 = base_cfg(9, addrs[1]);
    c9.peers = vec![(1, vec![addrs[0]])];
    let r1 = Arc::new(Rec::default());
    let r9 = Arc::new(Rec::default());
    let n1 = Net::start_with_listener(c1, r1.clone(), l1).unwrap();
    let n9 = Net::start_with_listener(c9, r9.clone(), l9).unwrap();
    assert!(
        wait_log(&n1, "unknown node id 9", T),
        "{:#?}",
        n1.recent_log()
    );
    assert!(
        wait_log(&n9, "refused by the peer: unknown node", T),
        "{:#?}",
        n9.recent_log()
    );
    assert!(lock(&r1.st).ups.is_empty() && lock(&r9.st).ups.is_empty());
    n9.shutdown();

    // A stranger claiming node 1's own id (it dials node 1 believing it is node 3).
    let l = listeners(1).pop().unwrap();
    let mut cx = base_cfg(1, l.local_addr().unwrap());
    cx.peers = vec![(3, vec![addrs[0]])];
    let nx = Net::start_with_listener(cx, Arc::new(Rec::default()), l).unwrap();
    assert!(
        wait_log(&n1, "claims this node's own id", T),
        "{:#?}",
        n1.recent_log()
    );
    assert!(
        wait_log(&nx, "dialed node 3 but reached node 1", T),
        "{:#?}",
        nx.recent_log()
    );
    assert!(lock(&r1.st).ups.is_empty());
    nx.shutdown();
    n1.shutdown();
}

/// Raw bytes from a stranger: the node closes the connection and logs why.
fn raw_probe(net: &Net, bytes: &[u8], needle: &str) {
    let mut s = TcpStream::connect(net.local_addr()).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    s.write_all(bytes).unwrap();
    // Read the node's HELLO and whatever follows until it closes on us.
    let mut buf = Vec::new();
    let r = s.read_to_end(&mut buf);
    assert!(
        r.is_ok() || matches!(r, Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{r:?}"
    );
    assert!(
        wait_log(net, needle, T),
        "no {needle:?} in {:#?}",
        net.recent_log()
    );
}

#[test]
fn malformed_frames_close_the_connection() {
    let l = listeners(1).pop().unwrap();
    let mut cfg = base_cfg(1, l.local_addr().unwrap());
    cfg.peers = vec![(2, vec!["127.0.0.1:9".parse().unwrap()])];
    let net = Net::start_with_listener(cfg, Arc::new(Rec::default()), l).unwrap();
    let hello = Header::new(FrameType::Hello, 2).encode();
    let mut b = hello;
    b[0] = b'X';
    raw_probe(&net, &b, "bad magic");
    let mut b = hello;
    b[4] = 9;
    raw_probe(&net, &b, "unsupported protocol version 9");
    let mut b = hello;
    b[5] = 77;
    raw_probe(&net, &b, "unknown frame type 77");
    let b = Header {
        len: u32::MAX,
        ..Header::new(FrameType::Data, 2)
    }
    .encode();
    raw_probe(&net, &b, "bad length 4294967295");
    raw_probe(&net, &b[..10], "handshake timed out");
    // A DATA frame before the handshake is a protocol error too.
    let b = Header::new(FrameType::Data, 2).encode();
    raw_probe(&net, &b, "expected HELLO, got DATA");
    assert!(lock(&net.inner.conns).is_empty() || wait_until(|| lock(&net.inner.conns).is_empty()));
    net.shutdown();
}

fn wait_until(f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

// ---------------------------------------------------------------- faults

#[test]
fn reconnect_after_breaks_loses_and_duplicates_nothing() {
    let nodes = cluster(2, |_, c| c.max_queue = 2000);
    assert!(nodes[0].rec.wait(T, |s| !s.ups.is_empty()));
    let n = 20_000;
    let deadline = Instant::now() + Duration::from_secs(8);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| send_all(&nodes[0].net, 2, 0..n, deadline));
        s.spawn(|| send_all(&nodes[1].net, 1, 0..n, deadline));
        s.spawn(|| {
            // Break the connection repeatedly while messages flow, from either side.
            for k in 0..8 {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(40));
                nodes[k % 2].net.break_connections();
            }
        });
        s.spawn(|| {
            nodes[1].rec.wait(Duration::from_secs(9), |s| s.n(1) >= n);
            nodes[0].rec.wait(Duration::from_secs(9), |s| s.n(2) >= n);
            done.store(true, Ordering::SeqCst);
        });
    });
    std::thread::sleep(Duration::from_millis(50));
    nodes[1].rec.check_exact(1, n);
    nodes[0].rec.check_exact(2, n);
    // A side may see a reconnect only as its connection being replaced (the
    // peer redialed before it noticed the drop), but not both sides.
    let downs: usize = nodes.iter().map(|nd| lock(&nd.rec.st).downs.len()).sum();
    assert!(downs > 0, "no side saw the connection drop");
    for nd in &nodes {
        let st = lock(&nd.rec.st);
        // The peer never restarted: every up reports the same incarnation.
        let incs: HashSet<u64> = st.ups.iter().map(|u| u.1).collect();
        assert_eq!(incs.len(), 1, "{:?}", st.ups);
        drop(st);
        nd.rec.check_alternating();
    }
    for nd in &nodes {
        nd.net.shutdown();
    }
}

#[test]
fn peer_restart_reports_new_incarnation() {
    let ls = listeners(2);
    let addrs: Vec<SocketAddr> = ls.iter().map(|l| l.local_addr().unwrap()).collect();
    let mut it = ls.into_iter();
    let (l1, l2) = (it.next().unwrap(), it.next().unwrap());
    let cfg = |id: u32| {
        let mut c = base_cfg(id, addrs[id as usize - 1]);
        c.peers = vec![(3 - id, vec![addrs[2 - id as usize]])];
        c
    };
    let r1 = Arc::new(Rec::default());
    let n1 = Net::start_with_listener(cfg(1), r1.clone(), l1).unwrap();
    let r2 = Arc::new(Rec::default());
    let n2 = Net::start_with_listener(cfg(2), r2.clone(), l2).unwrap();
    let inc2 = n2.incarnation();
    assert!(r1.wait(T, |s| s.ups == vec![(2, inc2)]));
    send_all(&n1, 2, 0..10, Instant::now() + T);
    send_all(&n2, 1, 0..10, Instant::now() + T);
    assert!(r2.wait(T, |s| s.n(1) >= 10));
    assert!(r1.wait(T, |s| s.n(2) >= 10));

    // Node 2 goes away; what node 1 sends meanwhile is for the old incarnation.
    n2.shutdown();
    drop(n2);
    assert!(r1.wait(T, |s| s.downs == vec![2]));
    n1.send(2, msg(999)).unwrap();

    // Node 2 comes back on the same address (SO_REUSEADDR), as a new process.
    let r2b = Arc::new(Rec::default());
    let deadline = Instant::now() + T;
    let n2b = loop {
        match Net::start(cfg(2), r2b.clone()) {
            Ok(n) => break n,
            Err(e) if Instant::now() < deadline => {
                eprintln!("rebinding: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot restart node 2: {e}"),
        }
    };
    let inc2b = n2b.incarnation();
    assert_ne!(inc2, inc2b);
    assert!(
        r1.wait(T, |s| s.ups == vec![(2, inc2), (2, inc2b)]),
        "{:?}",
        lock(&r1.st).ups
    );
    assert!(r2b.wait(T, |s| s.ups == vec![(1, n1.incarnation())]));
    assert!(log_has(&n1, "peer restarted"));
    // Sequence numbers restarted on both sides: fresh streams 0..20 each way,
    // and the message queued for the old incarnation was discarded.
    send_all(&n1, 2, 0..20, Instant::now() + T);
    send_all(&n2b, 1, 10..20, Instant::now() + T);
    assert!(r2b.wait(T, |s| s.n(1) >= 20));
    assert!(r1.wait(T, |s| s.n(2) >= 20));
    std::thread::sleep(Duration::from_millis(50));
    r2b.check_exact(1, 20);
    r1.check_exact(2, 20);
    r1.check_alternating();
    n1.shutdown();
    n2b.shutdown();
}

#[test]
fn silent_peer_times_out_then_recovers() {
    let nodes = cluster(2, |_, c| {
        c.heartbeat_ms = 50;
        c.peer_timeout_ms = 400;
    });
    assert!(nodes[0].rec.wait(T, |s| !s.ups.is_empty()));
    // Heartbeats keep an idle session up well past the timeout.
    std::thread::sleep(Duration::from_millis(900));
    assert!(
        lock(&nodes[0].rec.st).downs.is_empty(),
        "an idle session timed out"
    );

    // Node 2 hangs: node 1 notices only through the missing heartbeats.
    let t0 = Instant::now();
    nodes[1].net.set_frozen(true);
    assert!(nodes[0].rec.wait(T, |s| s.downs == vec![2]));
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(300),
        "down after {took:?}: not a timeout"
    );
    assert!(log_has(&nodes[0].net, "silent for 400 ms"));

    // Messages sent while it hangs arrive once it thaws, exactly once.
    send_all(&nodes[0].net, 2, 0..200, Instant::now() + T);
    std::thread::sleep(Duration::from_millis(100));
    nodes[1].net.set_frozen(false);
    assert!(nodes[1].rec.wait(T, |s| s.n(1) >= 200));
    assert!(nodes[0].rec.wait(T, |s| s.ups.len() == 2));
    std::thread::sleep(Duration::from_millis(50));
    nodes[1].rec.check_exact(1, 200);
    for nd in &nodes {
        nd.net.shutdown();
        nd.rec.check_alternating();
    }
}

#[test]
fn shutdown_says_bye() {
    let nodes = cluster(2, |_, c| c.peer_timeout_ms = 5000);
    assert!(nodes[0].rec.wait(T, |s| !s.ups.is_empty()));
    assert!(nodes[1].rec.wait(T, |s| !s.ups.is_empty()));
    let t0 = Instant::now();
    nodes[1].net.shutdown();
    let shutdown_took = t0.elapsed();
    // Far sooner than the 5 s timeout: the BYE said so.
    assert!(nodes[0]
        .rec
        .wait(Duration::from_secs(2), |s| s.downs == vec![2]));
    assert!(
        wait_log(&nodes[0].net, "node 2 is shutting down", T),
        "{:#?}",
        nodes[0].net.recent_log()
    );
    assert!(
        shutdown_took < Duration::from_secs(2),
        "shutdown took {shutdown_took:?}"
    );
    // No callback on the stopped node after shutdown returned.
    let events = lock(&nodes[1].rec.st).events.len();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(lock(&nodes[1].rec.st).events.len(), events);
    nodes[0].net.shutdown();
}
