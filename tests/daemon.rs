//! The node daemon against bad clients: garbage, oversized packets, unknown
//! versions, opens without an event socket and clients vanishing cost the
//! daemon nothing, and a vanished client's locks are released.

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use udlm::proto::{self, Request, UserArgs, PROTOCOL_VERSION};
use udlm::sys;
use udlm::types::Errno;

struct Daemon {
    child: Child,
    dir: PathBuf,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A daemon of its own for test `tag` (tests run in parallel).
fn start_daemon(tag: &str) -> Daemon {
    let dir = std::env::temp_dir().join(format!("udlm-daemon-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_udlmd"))
        .arg("-f")
        .env("DLM_RUN_DIR", &dir)
        .env_remove("DLM_CONF")
        .env_remove("DLM_NODEID")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start udlmd");
    let sock = dir.join("udlmd.sock");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sys::seqpacket_connect(&sock).is_err() {
        assert!(Instant::now() < deadline, "udlmd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Daemon { child, dir }
}

fn connect(d: &Daemon) -> std::os::fd::OwnedFd {
    sys::seqpacket_connect(&d.dir.join("udlmd.sock")).expect("connect")
}

fn call(fd: &std::os::fd::OwnedFd, req: &Request) -> Option<proto::Reply> {
    sys::send(fd.as_raw_fd(), &req.encode(), false).ok()?;
    let mut buf = [0u8; 64];
    let n = sys::recv(fd.as_raw_fd(), &mut buf, false).ok()?;
    if n == 0 {
        return None;
    }
    proto::decode_reply(&buf[..n]).ok()
}

fn open(d: &Daemon, ls: &[u8]) -> (std::os::fd::OwnedFd, std::os::fd::OwnedFd) {
    let req = connect(d);
    let (ev, node_end) = sys::seqpacket_pair().unwrap();
    let hello = Request::Open {
        version: PROTOCOL_VERSION,
        name: ls.to_vec(),
        create: Some((0o600, 0)),
        tid: 1,
    };
    sys::send_with_fd(req.as_raw_fd(), &hello.encode(), node_end.as_raw_fd()).unwrap();
    drop(node_end);
    let mut buf = [0u8; 64];
    let n = sys::recv(req.as_raw_fd(), &mut buf, false).unwrap();
    proto::decode_reply(&buf[..n]).unwrap().expect("open");
    (req, ev)
}

fn lock_ex_noqueue(req: &std::os::fd::OwnedFd, name: &[u8]) -> u64 {
    call(req, &noqueue_request(name, 5))
        .expect("reply")
        .expect("lock accepted")
}

/// A lock call asking for its completion inline: the reply and the
/// completion it carried, if any.
fn lock_inline(
    req: &std::os::fd::OwnedFd,
    name: &[u8],
    mode: u8,
    seen: u64,
) -> (proto::Reply, Option<proto::Callback>) {
    let r = Request::Lock {
        mode,
        flags: 0,
        lkid: 0,
        name: name.to_vec(),
        lvb: None,
        user: UserArgs {
            ast: 77,
            bast: 78,
            ..UserArgs::default()
        },
        tid: 1,
        parent: 0,
        timeout_cs: 0,
        inline: Some(proto::InlineAsk { seen, func: 77 }),
    };
    sys::send(req.as_raw_fd(), &r.encode(), false).unwrap();
    let mut buf = [0u8; 256];
    let n = sys::recv(req.as_raw_fd(), &mut buf, false).unwrap();
    proto::decode_reply_with(&buf[..n]).unwrap()
}

fn link_is_empty(ev: &std::os::fd::OwnedFd) -> bool {
    !sys::poll_one(ev.as_raw_fd(), false, 100).unwrap()
}

/// The completion of a `_wait` call comes back in its reply only while the
/// handle has read every callback queued for it, and only when it is the
/// call's sole callback for the handle; otherwise the event link carries it
/// in order, exactly as without the request to inline.
#[test]
fn a_completion_comes_inline_only_when_nothing_else_is_pending() {
    let d = start_daemon("inline");
    let (req1, ev1) = open(&d, b"inline");
    let (req2, ev2) = open(&d, b"inline");
    // Nothing queued yet: granted at once, in the reply.
    let (r, cb) = lock_inline(&req1, b"a", 5, 0);
    let id = r.expect("lock accepted") as u32;
    let cb = cb.expect("completion inline");
    assert_eq!((cb.lkid, cb.status, cb.func), (id, 0, 77));
    assert!(
        link_is_empty(&ev1),
        "the completion is not also on the link"
    );
    // Handle 2 waits behind it; handle 1 gets a BAST on its link.
    let (r, cb) = lock_inline(&req2, b"a", 5, 0);
    r.expect("queued");
    assert!(cb.is_none(), "not granted: nothing inline");
    assert!(!link_is_empty(&ev1), "the BAST");
    // Handle 1 has not read the BAST (seen 0 of 1): its next grant goes on
    // the link, after the BAST.
    let (r, cb) = lock_inline(&req1, b"b", 5, 0);
    r.expect("lock accepted");
    assert!(cb.is_none(), "a callback is pending: no inline completion");
    let mut buf = [0u8; 128];
    let n = sys::recv(ev1.as_raw_fd(), &mut buf, false).unwrap();
    assert!(proto::Callback::decode(&buf[..n]).unwrap().blocking);
    let n = sys::recv(ev1.as_raw_fd(), &mut buf, false).unwrap();
    assert!(!proto::Callback::decode(&buf[..n]).unwrap().blocking);
    // Read both now (seen 2): inline again.
    let (r, cb) = lock_inline(&req1, b"c", 5, 2);
    r.expect("lock accepted");
    assert!(cb.is_some());
    // A completion for another routine than the one named stays on the link.
    let r = Request::Lock {
        mode: 5,
        flags: 0,
        lkid: 0,
        name: b"d".to_vec(),
        lvb: None,
        user: UserArgs {
            ast: 5,
            ..UserArgs::default()
        },
        tid: 1,
        parent: 0,
        timeout_cs: 0,
        inline: Some(proto::InlineAsk { seen: 2, func: 77 }),
    };
    sys::send(req1.as_raw_fd(), &r.encode(), false).unwrap();
    let n = sys::recv(req1.as_raw_fd(), &mut buf, false).unwrap();
    assert!(proto::decode_reply_with(&buf[..n]).unwrap().1.is_none());
    assert_eq!(first_status(&ev1), 0);
    drop(ev2);
}

/// The status of the first callback on an event link.
fn first_status(ev: &std::os::fd::OwnedFd) -> i32 {
    assert!(
        sys::poll_one(ev.as_raw_fd(), false, 5000).unwrap(),
        "no callback"
    );
    let mut buf = [0u8; 128];
    let n = sys::recv(ev.as_raw_fd(), &mut buf, false).unwrap();
    proto::Callback::decode(&buf[..n]).unwrap().status
}

#[test]
fn bad_clients_cost_the_daemon_nothing() {
    let d = start_daemon("bad-clients");

    // Garbage as a first packet: refused, the connection closes.
    let c = connect(&d);
    sys::send(c.as_raw_fd(), b"\xff\x00garbage", false).unwrap();
    let mut buf = [0u8; 64];
    let n = sys::recv(c.as_raw_fd(), &mut buf, false).unwrap();
    assert_eq!(proto::decode_reply(&buf[..n]).unwrap(), Err(Errno::Proto));

    // An oversized packet.
    let c = connect(&d);
    let _ = sys::send(c.as_raw_fd(), &vec![3u8; 4096], false);
    drop(c);

    // Another protocol version.
    let c = connect(&d);
    let r = call(
        &c,
        &Request::Open {
            version: PROTOCOL_VERSION + 1,
            name: b"x".to_vec(),
            create: None,
            tid: 0,
        },
    );
    assert_eq!(r, Some(Err(Errno::Proto)));

    // An open without the handle's event socket.
    let c = connect(&d);
    let r = call(
        &c,
        &Request::Open {
            version: PROTOCOL_VERSION,
            name: b"x".to_vec(),
            create: Some((0, 0)),
            tid: 0,
        },
    );
    assert_eq!(r, Some(Err(Errno::Proto)));

    // Opened, then gone at once.
    let (c, e) = open(&d, b"gone");
    drop(c);
    drop(e);

    // A valid handle that then sends garbage loses only its own connection.
    let (req, _ev) = open(&d, b"robust");
    sys::send(req.as_raw_fd(), &[4, 1, 2], false).unwrap();
    let n = sys::recv(req.as_raw_fd(), &mut buf, false).unwrap_or(0);
    assert_eq!(
        n, 0,
        "the daemon should close a connection that sent a malformed request"
    );

    // A client holding EX vanishes: its lock goes, a new client gets EX.
    let (req1, ev1) = open(&d, b"robust");
    lock_ex_noqueue(&req1, b"res");
    assert_eq!(first_status(&ev1), 0);
    let (req2, ev2) = open(&d, b"robust");
    lock_ex_noqueue(&req2, b"res");
    assert_eq!(first_status(&ev2), libc::EAGAIN);
    drop(req1);
    drop(ev1);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        lock_ex_noqueue(&req2, b"res");
        if first_status(&ev2) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the vanished client's lock was never released"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // Still serving.
    let (_r, _e) = open(&d, b"after");
}

/// Sends `req` and waits at most 5 s for its reply: a daemon that stopped
/// serving this handle fails the test instead of hanging it.
fn call_within(fd: &std::os::fd::OwnedFd, req: &Request) -> proto::Reply {
    sys::send(fd.as_raw_fd(), &req.encode(), false).expect("send a call");
    assert!(
        sys::poll_one(fd.as_raw_fd(), false, 5000).unwrap(),
        "no reply within 5 s"
    );
    let mut buf = [0u8; 64];
    let n = sys::recv(fd.as_raw_fd(), &mut buf, false).expect("a reply");
    proto::decode_reply(&buf[..n]).expect("a well-formed reply")
}

fn noqueue_request(name: &[u8], mode: u8) -> Request {
    Request::Lock {
        mode,
        flags: udlm::types::lkf::NOQUEUE,
        lkid: 0,
        name: name.to_vec(),
        lvb: None,
        user: UserArgs {
            ast: 1,
            ..UserArgs::default()
        },
        tid: 1,
        parent: 0,
        timeout_cs: 0,
        inline: None,
    }
}

/// One thread serves every handle (node/handles.rs), so it never waits
/// for one handle: a handle that sends calls without reading their
/// replies is closed, with its locks, when its socket is full, and the
/// other handles are answered all along.
#[test]
fn a_handle_that_reads_no_replies_is_closed_and_holds_up_no_one() {
    let d = start_daemon("no-reader");
    let (rude, _rude_ev) = open(&d, b"busy");
    let (polite, polite_ev) = open(&d, b"busy");
    lock_ex_noqueue(&rude, b"held");
    call_within(&polite, &noqueue_request(b"held", 5)).expect("a queued call");
    assert_eq!(
        first_status(&polite_ev),
        libc::EAGAIN,
        "the rude handle holds EX"
    );

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sent = 0u32;
    loop {
        assert!(
            Instant::now() < deadline,
            "the daemon kept serving a handle that read none of {sent} replies"
        );
        let name = format!("n{sent}");
        match sys::send(
            rude.as_raw_fd(),
            &noqueue_request(name.as_bytes(), 0).encode(),
            true,
        ) {
            Ok(_) => sent += 1,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            // The daemon closed the connection.
            Err(_) => break,
        }
        if sent % 8 == 0 {
            let name = format!("p{sent}");
            call_within(&polite, &noqueue_request(name.as_bytes(), 0)).expect("served");
        }
    }
    assert!(
        sent > 8,
        "closed after {sent} calls: too soon to be the full socket"
    );

    // The closed handle's locks went with it.
    loop {
        while sys::poll_one(polite_ev.as_raw_fd(), false, 0).unwrap() {
            let mut buf = [0u8; 128];
            sys::recv(polite_ev.as_raw_fd(), &mut buf, false).unwrap();
        }
        call_within(&polite, &noqueue_request(b"held", 5)).expect("a queued call");
        if first_status(&polite_ev) == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed handle's EX lock was never released"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
