//! Where a handle's callbacks go: the node's end of the handle's event link.
//!
//! The node writes callbacks while holding its state lock, so a write must
//! never block: packets go out with MSG_DONTWAIT, and what the socket cannot
//! take yet waits in a bounded backlog that a short-lived flusher thread
//! drains as the program reads. Order is kept: once a backlog exists, new
//! callbacks queue behind it. A program that stops reading for so long that
//! the backlog reaches [`MAX_BACKLOG`] loses its event link (a logged,
//! clear failure instead of unbounded memory).
//!
//! An embedded handle (`DLM_EMBEDDED=1`) lives in the node's own process,
//! so its callbacks need not cross a socket: they wait in a [`LocalLink`],
//! and the socket only carries a one-byte doorbell, there exactly while the
//! queue holds packets, so that the program's descriptor is pollable and
//! readable exactly while callbacks are pending, as in daemon mode. A send
//! and a receive per callback were half of an embedded lock's time.

use crate::proto::CALLBACK_LEN;
use crate::sys;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// Callbacks that may wait in memory for one handle.
pub const MAX_BACKLOG: usize = 4 << 20;

pub type Packet = [u8; CALLBACK_LEN];

pub struct EventSink {
    fd: OwnedFd,
    state: Mutex<SinkState>,
    local: Option<Arc<LocalLink>>,
}

#[derive(Default)]
struct SinkState {
    backlog: VecDeque<Packet>,
    flusher: bool,
    broken: bool,
    /// Packets ever queued for the handle and not discarded: compared with
    /// the count the handle has read (`proto::InlineAsk`).
    queued: u64,
}

impl EventSink {
    pub fn new(fd: OwnedFd) -> Arc<EventSink> {
        sys::set_sndbuf(fd.as_raw_fd(), 4 << 20);
        Arc::new(EventSink {
            fd,
            state: Mutex::new(SinkState::default()),
            local: None,
        })
    }

    /// A sink for a handle in this process: callbacks go to the returned
    /// [`LocalLink`], and `fd` (the node's end of the handle's socket pair)
    /// only carries the doorbell.
    pub fn new_local(fd: OwnedFd) -> (Arc<EventSink>, Arc<LocalLink>) {
        let local = Arc::new(LocalLink {
            state: Mutex::new(LocalState::default()),
        });
        let sink = Arc::new(EventSink {
            fd,
            state: Mutex::new(SinkState::default()),
            local: Some(Arc::clone(&local)),
        });
        (sink, local)
    }

    /// Queues packets for the handle, in order, without blocking.
    pub fn send(self: &Arc<Self>, packets: &[Packet]) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.broken {
            return;
        }
        st.queued += packets.len() as u64;
        if let Some(local) = &self.local {
            if !local.push(self.fd.as_raw_fd(), packets) {
                st.broken = true;
            }
            return;
        }
        let mut rest = packets;
        if st.backlog.is_empty() {
            // Several packets in one system call: the program wakes once
            // for what one batch of the node's work produced.
            while !rest.is_empty() {
                match sys::send_packets(self.fd.as_raw_fd(), rest) {
                    Ok(0) => break,
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        st.broken = true;
                        return;
                    }
                }
            }
        }
        if rest.is_empty() {
            return;
        }
        if st.backlog.len() + rest.len() > MAX_BACKLOG {
            eprintln!("udlm: a handle stopped reading its callbacks; dropping its event link");
            st.broken = true;
            st.backlog.clear();
            sys::shutdown(self.fd.as_raw_fd());
            return;
        }
        st.backlog.extend(rest.iter().copied());
        if !st.flusher {
            st.flusher = true;
            let me = Arc::clone(self);
            let spawned = std::thread::Builder::new()
                .name("udlm-flush".into())
                .spawn(move || me.flush());
            if spawned.is_err() {
                st.flusher = false;
            }
        }
    }

    /// Forgets callbacks not yet handed to the socket (purge, spec §2.11).
    pub fn discard_backlog(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.queued -= st.backlog.len() as u64;
        st.backlog.clear();
    }

    /// Whether the handle has read everything ever queued for it: `seen`
    /// packets. A broken link is never quiet.
    pub fn read_all(&self, seen: u64) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        !st.broken && st.queued == seen
    }

    /// How many packets were ever queued for the handle (and not
    /// discarded).
    pub fn queued(&self) -> u64 {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).queued
    }

    fn flush(&self) {
        loop {
            let _ = sys::poll_one(self.fd.as_raw_fd(), true, 1000);
            let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
            while let Some(p) = st.backlog.front() {
                match sys::send(self.fd.as_raw_fd(), p, true) {
                    Ok(_) => {
                        st.backlog.pop_front();
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        st.broken = true;
                        st.backlog.clear();
                    }
                }
            }
            if st.backlog.is_empty() || st.broken {
                st.flusher = false;
                return;
            }
        }
    }
}

impl Drop for EventSink {
    fn drop(&mut self) {
        // The node is done with the handle: once the program has taken
        // what is queued, it finds the end of the link.
        if let Some(local) = &self.local {
            local.lock().closed = true;
        }
    }
}

/// The queue of an embedded handle's callbacks (see the module's doc).
/// The doorbell is sent and received only under this mutex, which keeps
/// it in step with the queue.
pub struct LocalLink {
    state: Mutex<LocalState>,
}

#[derive(Default)]
struct LocalState {
    queue: VecDeque<Packet>,
    /// The node dropped the handle's sink, or the queue overflowed.
    closed: bool,
}

/// What [`LocalLink::take`] found.
pub struct Taken {
    pub packets: usize,
    /// False when the link has ended: nothing is queued and nothing will be.
    pub alive: bool,
}

impl LocalLink {
    fn lock(&self) -> std::sync::MutexGuard<'_, LocalState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The node's side: false when the link is closed or overflows.
    fn push(&self, doorbell_fd: i32, packets: &[Packet]) -> bool {
        let mut st = self.lock();
        if st.closed {
            return false;
        }
        if st.queue.len() + packets.len() > MAX_BACKLOG {
            eprintln!("udlm: a handle stopped reading its callbacks; dropping its event link");
            st.closed = true;
            st.queue.clear();
            sys::shutdown(doorbell_fd);
            return false;
        }
        let ring = st.queue.is_empty() && !packets.is_empty();
        st.queue.extend(packets.iter().copied());
        if ring && sys::send(doorbell_fd, &[1], true).is_err() {
            // The program's end is gone (or shut down): nobody will read.
            st.closed = true;
            st.queue.clear();
            return false;
        }
        true
    }

    /// The handle's side: passes up to `max` queued packets to `each`, in
    /// order, and takes the doorbell off `fd` when that empties the queue.
    /// With `check_end` and nothing queued, it also reads `fd` once, so
    /// that a shutdown of the handle's own end is seen as the end.
    pub fn take(
        &self,
        fd: i32,
        max: usize,
        check_end: bool,
        mut each: impl FnMut(&Packet),
    ) -> Taken {
        let mut st = self.lock();
        let mut n = 0;
        while n < max {
            let Some(p) = st.queue.pop_front() else { break };
            each(&p);
            n += 1;
        }
        let mut bell = [0u8; 2];
        if n > 0 && st.queue.is_empty() {
            let _ = sys::recv(fd, &mut bell, true);
        }
        let mut alive = !(st.closed && st.queue.is_empty());
        if n == 0 && alive && check_end {
            // No doorbell can be there (the queue is empty): only the end.
            alive = match sys::recv(fd, &mut bell, true) {
                Ok(0) => false,
                Ok(_) => true,
                Err(e) => e.kind() == io::ErrorKind::WouldBlock,
            };
        }
        Taken { packets: n, alive }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readable(fd: i32) -> bool {
        sys::poll_one(fd, false, 0).unwrap_or(false)
    }

    fn packet(tag: u8) -> Packet {
        [tag; CALLBACK_LEN]
    }

    /// The doorbell is on the handle's descriptor exactly while packets wait,
    /// packets come out in order, and the end shows only after the last one.
    #[test]
    fn local_link_doorbell_follows_the_queue() {
        let (ours, node_end) = sys::seqpacket_pair().unwrap();
        let fd = ours.as_raw_fd();
        let (sink, local) = EventSink::new_local(node_end);
        assert!(!readable(fd));
        sink.send(&[packet(1), packet(2)]);
        sink.send(&[packet(3)]);
        assert!(readable(fd));
        let mut got = Vec::new();
        let t = local.take(fd, 1, false, |p| got.push(p[0]));
        assert_eq!((t.packets, t.alive), (1, true));
        assert!(readable(fd), "two packets still wait");
        let t = local.take(fd, usize::MAX, false, |p| got.push(p[0]));
        assert_eq!((t.packets, t.alive), (2, true));
        assert_eq!(got, vec![1, 2, 3]);
        assert!(
            !readable(fd),
            "nothing waits, yet the descriptor is readable"
        );
        assert!(sink.read_all(3));
        let t = local.take(fd, usize::MAX, true, |_| panic!("nothing was queued"));
        assert_eq!((t.packets, t.alive), (0, true));
        // The node drops the handle with a packet still queued.
        sink.send(&[packet(4)]);
        drop(sink);
        let t = local.take(fd, usize::MAX, false, |p| got.push(p[0]));
        assert_eq!(t.packets, 1);
        assert!(!t.alive, "the link ended after its last packet");
        assert_eq!(got, vec![1, 2, 3, 4]);
    }

    /// A handle that shuts its own end down (the AST thread's stop) sees
    /// the end when it looks with `check_end`.
    #[test]
    fn local_link_sees_its_own_shutdown() {
        let (ours, node_end) = sys::seqpacket_pair().unwrap();
        let (_sink, local) = EventSink::new_local(node_end);
        sys::shutdown(ours.as_raw_fd());
        let t = local.take(ours.as_raw_fd(), usize::MAX, true, |_| {});
        assert!(!t.alive);
    }
}
