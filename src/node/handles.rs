//! The daemon's event loop for opened handles: one thread serves the calls
//! of every handle on the host, as one server thread serves every client.
//!
//! Why one thread and not one per handle: with a thread per handle, every
//! call woke its own thread, and the threads took turns at the node's lock
//! with each other and with the transport's threads. With eight programs
//! calling at once, the daemon spent most of a CPU switching between them
//! (docs/PERFORMANCE.md, "Compared with Redis, etcd and ZooKeeper"). Here
//! the calls that are ready together are read together, applied under one
//! lock of the node, and answered; and the messages they make the node
//! send go out in one write per peer.
//!
//! A handle is opened on its connection's own thread (server.rs), because
//! opening may wait for the cluster; the open handle is then handed over
//! here ([`HandleLoop::adopt`]). From then on:
//! - the calls of one handle are applied one at a time, in the order they
//!   were sent (the library sends a handle's next call only after the
//!   reply to the previous one);
//! - a lock call that cannot run yet (a recovery in progress, an adoption
//!   waiting for its orphan's mode: `server::lock_when_ready`) waits here,
//!   and its handle is not read until the call has run; other handles go
//!   on. A query of a resource (`Inspect`) waiting for a remote master's
//!   answer waits the same way, at most `INSPECT_WAIT_MS`;
//! - replies are sent without blocking. A handle whose socket is full
//!   does not follow the protocol (it sent calls without reading their
//!   replies) and is closed; an answer of many packets may wait for room
//!   for up to [`ANSWER_SEND_WAIT_MS`];
//! - a lock call that does not ask for its completion in the reply is
//!   answered before its messages to other nodes are written; a burst of
//!   such calls from one program (`Burst`) holds its messages to send
//!   them together; what is held goes out when no handle's burst holds it
//!   any more, or when a call that is not answered first comes;
//! - before it sleeps, the loop polls for a while (`DLM_SPIN_US`), reading
//!   the handle it served last directly (`Served::look`).

use super::inspect::{InspectTarget, INSPECT_WAIT_MS};
use super::server::{handle_request, inspect_step, may_run, send_bytes, InspectLook};
use super::Node;
use crate::net::Net;
use crate::proto::{self, Request, MAX_PACKET};
use crate::sys::{self, Epoll, SpinBudget};
use crate::types::{Errno, Owner};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long an answer of many packets (an `Inspect`) may wait for room in
/// its handle's socket before the handle is closed.
pub const ANSWER_SEND_WAIT_MS: u64 = 1_000;

/// How often calls that wait (see the module doc) are looked at again.
const WAITING_POLL_MS: i32 = 2;

/// The most calls in a row read directly from the handle served last
/// before the others are looked at ([`Served::look`]).
const MAX_DIRECT_CALLS: u32 = 16;

/// What woke the loop: `n` ready tokens, or a call (or the end of a
/// handle) read directly from a handle's slot.
enum Woke {
    Ready(usize),
    Call(usize, io::Result<usize>),
}

/// The doorbell's token; a handle's is its slot + 1.
const DOORBELL: u64 = 0;

/// A request that comes this soon after the reply to the previous one,
/// with no callback for the handle in between, is part of a burst (a
/// program issuing many calls without waiting for their completions): the
/// node's messages for it wait, up to this long, for the next request's,
/// to go out together. (A program that waits for each completion is never
/// in a burst, however fast the network, so its calls never wait.)
const BURST_GAP: Duration = Duration::from_micros(20);

/// The most calls of a burst whose messages wait together.
const BURST_HELD_CALLS: u32 = 64;

/// One handle's calls as the loop sees them: whether they
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

/// The loop's side door: where opened handles come in.
pub struct HandleLoop {
    arriving: Mutex<Vec<(Owner, OwnedFd)>>,
    doorbell: OwnedFd,
}

impl HandleLoop {
    /// Starts the loop's thread for `node`.
    pub fn start(node: Arc<Mutex<Node>>) -> io::Result<Arc<HandleLoop>> {
        let epoll = Epoll::new()?;
        let doorbell = sys::doorbell()?;
        epoll.add(doorbell.as_raw_fd(), DOORBELL)?;
        let door = Arc::new(HandleLoop {
            arriving: Mutex::new(Vec::new()),
            doorbell,
        });
        let inside = Arc::clone(&door);
        std::thread::Builder::new()
            .name("udlm-handles".into())
            .spawn(move || {
                let served = Served::new(node, inside, epoll);
                // Each call and each close is guarded on its own; should
                // the loop itself fail, no program on the host would be
                // served again, so the node goes away (its programs see
                // their handles fail, the other nodes recover its locks)
                // rather than hang.
                if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| served.run())).is_err()
                {
                    eprintln!("udlmd: internal error in the handles' event loop; exiting");
                    std::process::exit(70);
                }
            })?;
        Ok(door)
    }

    /// Hands handle `owner`, opened on connection `conn`, to the loop,
    /// which serves its calls from now on and closes it when the
    /// connection ends.
    pub fn adopt(&self, owner: Owner, conn: OwnedFd) {
        lock(&self.arriving).push((owner, conn));
        sys::ring(self.doorbell.as_raw_fd());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A call that cannot run yet.
enum Waiting {
    Call {
        req: Request,
        since: Instant,
    },
    /// `token` once the node asked the resource's master.
    Inspect {
        target: InspectTarget,
        token: Option<u64>,
        since: Instant,
    },
}

struct Handle {
    owner: Owner,
    conn: OwnedFd,
    burst: Burst,
    waiting: Option<Waiting>,
    /// Whether its calls are read (not while one waits).
    armed: bool,
}

/// What a call leaves to do once the node is unlocked.
enum Answer {
    Reply(Vec<u8>),
    Bytes(Result<Vec<u8>, Errno>),
}

/// The loop's state, owned by its thread.
struct Served {
    node: Arc<Mutex<Node>>,
    door: Arc<HandleLoop>,
    epoll: Epoll,
    /// Slot i is token i + 1.
    handles: Vec<Option<Handle>>,
    free_slots: Vec<usize>,
    /// Slots with a waiting call, oldest first.
    waiting: Vec<usize>,
    spin_us: u64,
    spin: SpinBudget,
    /// Some handle's burst holds messages (the node's sends are held).
    holding: bool,
    /// The slot whose call came last, read directly while polling.
    recent: Option<usize>,
    /// Calls read directly in a row.
    direct_calls: u32,
}

/// What one round of the loop did, beside the answers.
#[derive(Default)]
struct Round {
    answers: Vec<(usize, Answer)>,
    /// Slots to close once their answers are sent.
    ending: Vec<usize>,
    /// What is held must go out before the answers (a call that is not
    /// answered first: its program waits for the node's messages).
    write_first: bool,
    /// What is held must go out after the answers.
    write_after: bool,
}

impl Served {
    fn new(node: Arc<Mutex<Node>>, door: Arc<HandleLoop>, epoll: Epoll) -> Served {
        Served {
            node,
            door,
            epoll,
            handles: Vec::new(),
            free_slots: Vec::new(),
            waiting: Vec::new(),
            spin_us: sys::spin_us(),
            spin: SpinBudget::new(),
            holding: false,
            recent: None,
            direct_calls: 0,
        }
    }

    fn run(mut self) {
        let mut ready = [0u64; 64];
        let mut buf = vec![0u8; MAX_PACKET];
        loop {
            let woke = match self.wait(&mut ready, &mut buf) {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("udlmd: the handles' event loop failed to wait: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
            };
            let mut calls = Vec::new();
            let mut gone = Vec::new();
            let n = match woke {
                Woke::Ready(n) => n,
                Woke::Call(slot, got) => {
                    self.take_call(slot, got, &buf, &mut calls, &mut gone);
                    0
                }
            };
            for &token in &ready[..n] {
                if token == DOORBELL {
                    self.take_arrivals();
                    continue;
                }
                let slot = (token - 1) as usize;
                let Some(h) = self.handles.get(slot).and_then(Option::as_ref) else {
                    continue;
                };
                let got = sys::recv(h.conn.as_raw_fd(), &mut buf, true);
                self.take_call(slot, got, &buf, &mut calls, &mut gone);
            }
            if calls.is_empty() && gone.is_empty() && self.waiting.is_empty() {
                continue;
            }
            if let Some(&(slot, _)) = calls.last() {
                self.recent = Some(slot);
            }
            Net::hold_writes();
            let round = self.apply(calls, gone);
            self.finish(round);
        }
    }

    /// What reading the handle in `slot` gave (`got`, the packet in
    /// `buf`): a call, nothing, or the end of the handle.
    fn take_call(
        &self,
        slot: usize,
        got: io::Result<usize>,
        buf: &[u8],
        calls: &mut Vec<(usize, Request)>,
        gone: &mut Vec<usize>,
    ) {
        let Some(h) = self.handles.get(slot).and_then(Option::as_ref) else {
            return;
        };
        if h.waiting.is_some() {
            // Reported while its call waits: the program went away (or
            // sent a call before its reply, against the protocol).
            if !matches!(&got, Err(e) if e.kind() == io::ErrorKind::WouldBlock) {
                gone.push(slot);
            }
            return;
        }
        match got {
            Ok(n) if n > 0 => match Request::decode(&buf[..n]) {
                Ok(req) => calls.push((slot, req)),
                Err(e) => {
                    eprintln!(
                        "udlmd: closing a handle that sent a malformed request: {}",
                        e.0
                    );
                    gone.push(slot);
                }
            },
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            _ => gone.push(slot),
        }
    }

    /// Waits for handles with calls (or the doorbell): their tokens go in
    /// `ready`, or a call read directly in `buf`. Polls first when the last
    /// waits found something soon, and, while a burst holds messages,
    /// writes them when no call came within [`BURST_GAP`].
    fn wait(&mut self, ready: &mut [u64], buf: &mut [u8]) -> io::Result<Woke> {
        if self.holding {
            let got = sys::look_within(BURST_GAP.as_micros() as u64, || self.look(ready, buf))?;
            if let Some(w) = got {
                return Ok(w);
            }
            self.write_held();
        }
        if !self.waiting.is_empty() {
            return self.epoll.wait(ready, WAITING_POLL_MS).map(Woke::Ready);
        }
        let mut spin = self.spin;
        let got = spin.poll(self.spin_us, || self.look(ready, buf));
        self.spin = spin;
        if let Some(w) = got? {
            return Ok(w);
        }
        self.epoll.wait(ready, -1).map(Woke::Ready)
    }

    /// One look without sleeping. The handle served last is read directly
    /// first: a program issuing calls back to back then costs one system
    /// call per call here instead of two; after [`MAX_DIRECT_CALLS`] such
    /// calls in a row the others get their look first.
    fn look(&mut self, ready: &mut [u64], buf: &mut [u8]) -> io::Result<Option<Woke>> {
        if self.direct_calls < MAX_DIRECT_CALLS {
            let recent = self.recent.and_then(|slot| {
                let h = self.handles.get(slot)?.as_ref()?;
                h.waiting.is_none().then(|| (slot, h.conn.as_raw_fd()))
            });
            if let Some((slot, fd)) = recent {
                match sys::recv(fd, buf, true) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    got => {
                        self.direct_calls += 1;
                        return Ok(Some(Woke::Call(slot, got)));
                    }
                }
            }
        }
        self.direct_calls = 0;
        let n = self.epoll.wait(ready, 0)?;
        Ok((n > 0).then_some(Woke::Ready(n)))
    }

    fn write_held(&mut self) {
        Net::write_held();
        for h in self.handles.iter_mut().flatten() {
            h.burst.written();
        }
        self.holding = false;
    }

    fn take_arrivals(&mut self) {
        sys::answer(self.door.doorbell.as_raw_fd());
        let arrived = std::mem::take(&mut *lock(&self.door.arriving));
        for (owner, conn) in arrived {
            let slot = self.free_slots.pop().unwrap_or_else(|| {
                self.handles.push(None);
                self.handles.len() - 1
            });
            if let Err(e) = self.epoll.add(conn.as_raw_fd(), slot as u64 + 1) {
                eprintln!("udlmd: cannot serve a handle: {e}");
                self.free_slots.push(slot);
                close_handle(&mut lock_node(&self.node), owner);
                continue;
            }
            self.handles[slot] = Some(Handle {
                owner,
                conn,
                burst: Burst::default(),
                waiting: None,
                armed: true,
            });
        }
    }

    /// Under one lock of the node: the calls that waited and can run now,
    /// then the new calls, then the handles whose programs went away.
    fn apply(&mut self, calls: Vec<(usize, Request)>, gone: Vec<usize>) -> Round {
        let node = Arc::clone(&self.node);
        let mut n = lock_node(&node);
        let mut round = Round::default();
        for slot in std::mem::take(&mut self.waiting) {
            let Some(h) = self.handles[slot].as_mut() else {
                continue;
            };
            match h.waiting.take() {
                Some(Waiting::Call { req, since }) => {
                    self.call(&mut n, slot, req, since, &mut round)
                }
                Some(Waiting::Inspect {
                    target,
                    token,
                    since,
                }) => self.inspect(&mut n, slot, target, token, since, &mut round),
                None => {}
            }
        }
        let came = Instant::now();
        for (slot, req) in calls {
            if self.handles[slot].is_none() {
                continue;
            }
            if let Request::Inspect { lkid, name } = req {
                let target = if lkid != 0 {
                    InspectTarget::Lock(lkid)
                } else {
                    InspectTarget::Name(name)
                };
                // A query holds no message of the handle's burst back.
                round.write_first = true;
                if let Some(h) = self.handles[slot].as_mut() {
                    h.burst.interrupted();
                }
                self.inspect(&mut n, slot, target, None, came, &mut round);
            } else {
                self.call(&mut n, slot, req, came, &mut round);
            }
        }
        for slot in gone {
            if let Some(h) = self.handles[slot].take() {
                self.forget(slot, &h);
                close_handle(&mut n, h.owner);
            }
        }
        round
    }

    /// Applies call `req` of the handle in `slot`, which came at `came`,
    /// or leaves it waiting.
    fn call(&mut self, n: &mut Node, slot: usize, req: Request, came: Instant, round: &mut Round) {
        let h = self.handles[slot].as_mut().expect("a served slot");
        let owner = h.owner;
        let waits = req.is_lock_call();
        if waits && !may_run(n, owner, &req, came) {
            // Messages of earlier calls of a burst go before this one waits.
            round.write_after = true;
            h.waiting = Some(Waiting::Call { req, since: came });
            self.wait_on(slot);
            return;
        }
        // A call that waits for no completion in its reply is answered
        // before the node's messages for it go out.
        let answer_first = waits && !req.asks_inline();
        if !answer_first {
            round.write_first = true;
            h.burst.interrupted();
        }
        let released = matches!(req, Request::Release { .. });
        // (Where nothing polls, as on one CPU, nothing waits for a next
        // call either.)
        let in_burst =
            answer_first && self.spin_us > 0 && h.burst.joins(came, n.callbacks_queued(owner));
        let mut done = false;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let r = handle_request(n, owner, req, &mut done);
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
            n.end_inline(0);
            (Err(Errno::Io), None)
        });
        h.burst.ended(n.callbacks_queued(owner));
        let reply = match r.1 {
            Some(c) => proto::encode_reply_with(&r.0, &c),
            None => proto::encode_reply(&r.0).to_vec(),
        };
        round.answers.push((slot, Answer::Reply(reply)));
        if answer_first && h.burst.answered(in_burst, Instant::now()) {
            round.write_after = true;
        }
        if done {
            round.ending.push(slot);
        }
    }

    /// Query `target` of the handle in `slot`, asked at `since`: answered,
    /// or left waiting for the end of a recovery or for the master's
    /// answer (`token`).
    fn inspect(
        &mut self,
        n: &mut Node,
        slot: usize,
        target: InspectTarget,
        token: Option<u64>,
        since: Instant,
        round: &mut Round,
    ) {
        let h = self.handles[slot].as_mut().expect("a served slot");
        let owner = h.owner;
        let waited_out = since.elapsed().as_millis() >= u128::from(INSPECT_WAIT_MS);
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            inspect_step(n, owner, &target, token, waited_out)
        }))
        .unwrap_or(InspectLook::Answer(Err(Errno::Io)));
        match step {
            InspectLook::Answer(r) => round
                .answers
                .push((slot, Answer::Bytes(r.map(|v| v.encode())))),
            InspectLook::Wait(token) => {
                h.waiting = Some(Waiting::Inspect {
                    target,
                    token,
                    since,
                });
                self.wait_on(slot);
            }
        }
    }

    /// The handle in `slot` has a waiting call: not read until it ran.
    fn wait_on(&mut self, slot: usize) {
        self.waiting.push(slot);
        let h = self.handles[slot].as_mut().expect("a served slot");
        if h.armed {
            h.armed = false;
            let _ = self.epoll.arm(h.conn.as_raw_fd(), slot as u64 + 1, false);
        }
    }

    /// Slot `slot`, whose handle `h` was taken out, is free again.
    fn forget(&mut self, slot: usize, h: &Handle) {
        let _ = self.epoll.remove(h.conn.as_raw_fd());
        self.waiting.retain(|&s| s != slot);
        self.free_slots.push(slot);
    }

    /// With the node unlocked: the answers, what is held, and the handles
    /// that ended.
    fn finish(&mut self, mut round: Round) {
        if round.write_first {
            self.write_held();
        }
        for (slot, answer) in std::mem::take(&mut round.answers) {
            let Some(h) = self.handles[slot].as_mut() else {
                continue;
            };
            let fd = h.conn.as_raw_fd();
            let sent = match answer {
                // The library reads every reply before its next call: no
                // room for one means a handle that broke the protocol.
                Answer::Reply(r) => sys::send(fd, &r, true).is_ok(),
                Answer::Bytes(b) => send_bytes(b, |p| send_within(fd, p)),
            };
            if sent {
                if h.waiting.is_none() && !h.armed {
                    // Its call waited and has now run: read the next one.
                    h.armed = true;
                    let _ = self.epoll.arm(fd, slot as u64 + 1, true);
                }
            } else {
                round.ending.push(slot);
            }
        }
        self.holding = self.handles.iter().flatten().any(|h| h.burst.holding());
        if round.write_after || !self.holding {
            self.write_held();
        }
        if !round.ending.is_empty() {
            let mut closing = Vec::new();
            for slot in round.ending {
                if let Some(h) = self.handles[slot].take() {
                    self.forget(slot, &h);
                    closing.push(h);
                }
            }
            let node = Arc::clone(&self.node);
            let mut n = lock_node(&node);
            for h in closing {
                close_handle(&mut n, h.owner);
            }
        }
    }
}

fn lock_node(node: &Mutex<Node>) -> MutexGuard<'_, Node> {
    lock(node)
}

/// Closes handle `owner` (releasing or orphaning its locks), whatever
/// happens inside.
fn close_handle(n: &mut Node, owner: Owner) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| n.close(owner))).is_err() {
        eprintln!("udlmd: internal error while closing a handle");
    }
}

/// Sends packet `p` on `fd`, waiting for room at most
/// [`ANSWER_SEND_WAIT_MS`].
fn send_within(fd: std::os::fd::RawFd, p: &[u8]) -> bool {
    let start = Instant::now();
    loop {
        match sys::send(fd, p, true) {
            Ok(_) => return true,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => return false,
        }
        let left = ANSWER_SEND_WAIT_MS.saturating_sub(start.elapsed().as_millis() as u64);
        if left == 0 || !sys::poll_one(fd, true, left as i32).unwrap_or(false) {
            return false;
        }
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

#[cfg(test)]
mod loop_tests {
    use super::*;
    use crate::node::sink::EventSink;
    use crate::node::{ClusterView, NodeLimits, PeerLink};
    use crate::proto::UserArgs;
    use crate::sys::PeerCreds;

    /// A network that loses everything: the node never sees a peer, so it
    /// never joins its three-node cluster and every lock call must wait.
    struct Nowhere;
    impl PeerLink for Nowhere {
        fn send(&self, _to: u32, _payload: Vec<u8>) -> bool {
            true
        }
    }

    const CREDS: PeerCreds = PeerCreds {
        pid: 1,
        uid: 0,
        gid: 0,
    };

    /// Opens a handle on `node` and hands it to the loop; the program's
    /// end of its request socket.
    fn open(node: &Arc<Mutex<Node>>, door: &HandleLoop) -> (Owner, OwnedFd, OwnedFd) {
        let (ours, theirs) = sys::seqpacket_pair().unwrap();
        let (events, node_events) = sys::seqpacket_pair().unwrap();
        let mut n = lock_node(node);
        let (owner, token) = n.open(b"ls", Some((0o600, 0)), CREDS).unwrap();
        n.attach(token, EventSink::new(node_events), CREDS).unwrap();
        drop(n);
        door.adopt(owner, theirs);
        (owner, ours, events)
    }

    fn eventually(what: &str, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(start.elapsed() < Duration::from_secs(5), "{what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// While a lock call waits (here: the node is not a member of its
    /// cluster yet), other handles are served, and a program that goes
    /// away meanwhile has its handle closed at once.
    #[test]
    fn a_waiting_call_holds_up_no_other_handle_and_dies_with_its_program() {
        let mut node = Node::new(1, NodeLimits::default());
        node.set_cluster(
            ClusterView {
                nodes: vec![1, 2, 3],
                ..ClusterView::default()
            },
            Arc::new(Nowhere),
        );
        assert!(node.operations_blocked());
        let node = Arc::new(Mutex::new(node));
        let door = HandleLoop::start(Arc::clone(&node)).unwrap();
        let (stuck, stuck_conn, _stuck_events) = open(&node, &door);
        let (other, other_conn, _other_events) = open(&node, &door);

        let lock = Request::Lock {
            mode: 5,
            flags: 0,
            lkid: 0,
            name: b"r".to_vec(),
            lvb: None,
            user: UserArgs {
                ast: 1,
                ..UserArgs::default()
            },
            tid: 1,
            parent: 0,
            timeout_cs: 0,
            inline: None,
        };
        sys::send(stuck_conn.as_raw_fd(), &lock.encode(), false).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            !sys::poll_one(stuck_conn.as_raw_fd(), false, 0).unwrap(),
            "a lock call was answered before the node joined its cluster"
        );

        // Another handle's call that need not wait is answered meanwhile.
        sys::send(other_conn.as_raw_fd(), &Request::Close.encode(), false).unwrap();
        assert!(
            sys::poll_one(other_conn.as_raw_fd(), false, 5000).unwrap(),
            "a handle waited for another handle's lock call"
        );
        let mut buf = [0u8; 64];
        let n = sys::recv(other_conn.as_raw_fd(), &mut buf, false).unwrap();
        assert_eq!(proto::decode_reply(&buf[..n]), Ok(Ok(0)));
        eventually("the closed handle stayed open", || {
            !lock_node(&node).handles.contains_key(&other)
        });

        // The program whose call waits goes away: its handle closes now,
        // not when the node joins.
        assert!(lock_node(&node).handles.contains_key(&stuck));
        drop(stuck_conn);
        eventually("the handle of a program that went away stayed open", || {
            !lock_node(&node).handles.contains_key(&stuck)
        });
        assert!(lock_node(&node).operations_blocked());
    }
}
