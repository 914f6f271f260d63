//! Where a handle's callbacks go: the node's end of the handle's event link.
//!
//! The node writes callbacks while holding its state lock, so a write must
//! never block: packets go out with MSG_DONTWAIT, and what the socket cannot
//! take yet waits in a bounded backlog that a short-lived flusher thread
//! drains as the program reads. Order is kept: once a backlog exists, new
//! callbacks queue behind it. A program that stops reading for so long that
//! the backlog reaches [`MAX_BACKLOG`] loses its event link (a logged,
//! clear failure instead of unbounded memory).

use crate::proto::CALLBACK_LEN;
use crate::sys;
use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Callbacks that may wait in memory for one handle.
pub const MAX_BACKLOG: usize = 4 << 20;

pub type Packet = [u8; CALLBACK_LEN];

pub struct EventSink {
    fd: OwnedFd,
    state: Mutex<SinkState>,
    /// `SinkState::queued`, readable without the lock (u64::MAX once the
    /// link is broken or the sink dropped): an embedded handle that has
    /// read this many packets knows the link is empty without a system
    /// call (`EventSink::queued_counter`).
    queued_hint: Arc<AtomicU64>,
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
            queued_hint: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Queues packets for the handle, in order, without blocking.
    pub fn send(self: &Arc<Self>, packets: &[Packet]) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.broken {
            return;
        }
        st.queued += packets.len() as u64;
        // Counted before the packets reach the socket: a reader that sees
        // the old count cannot find them there yet.
        self.queued_hint.store(st.queued, Ordering::SeqCst);
        let mut rest = packets;
        if st.backlog.is_empty() {
            while let Some((p, tail)) = rest.split_first() {
                match sys::send(self.fd.as_raw_fd(), p, true) {
                    Ok(_) => rest = tail,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        self.break_link(&mut st);
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
            self.break_link(&mut st);
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
        if !st.broken {
            self.queued_hint.store(st.queued, Ordering::SeqCst);
        }
    }

    /// The count of packets ever queued for the handle, as it changes
    /// (u64::MAX once the link is broken or the node dropped it, so that
    /// a reader looks and finds the end). A handle in this process that
    /// has read as many may skip reading the link.
    pub fn queued_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.queued_hint)
    }

    fn break_link(&self, st: &mut SinkState) {
        st.broken = true;
        self.queued_hint.store(u64::MAX, Ordering::SeqCst);
    }

    /// Whether the handle has read everything ever queued for it: `seen`
    /// packets. A broken link is never quiet.
    pub fn read_all(&self, seen: u64) -> bool {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        !st.broken && st.queued == seen
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
                        self.break_link(&mut st);
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
        self.queued_hint.store(u64::MAX, Ordering::SeqCst);
    }
}
