//! udlm: a distributed lock manager that is a binary drop-in for libdlm.
//!
//! Layers (see DESIGN.md): `engine` is the pure lock manager; `node` runs
//! lockspaces and owners on one host; `client` links a lockspace handle to
//! its node (local socket or in-process); `capi` is the C ABI that the
//! `compat/` libraries export.

pub mod capi;
pub mod client;
pub mod cluster;
pub mod control;
pub mod engine;
pub mod fasthash;
pub mod net;
pub mod node;
pub mod proto;
pub mod sys;
pub mod types;
