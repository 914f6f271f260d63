//! The cluster layer: the config file, membership and directory hashing.
//!
//! Like `engine/`, this layer is pure: it decides, it does not do. It never
//! blocks, spawns, reads the clock or talks to the network; the node layer
//! feeds it inputs and carries its outputs out. The only I/O is reading the
//! config file in [`config::Config::load`] (and the address look-ups that the
//! node asks for once at start-up: `Config::local_node_id`, `Config::peer_addrs`).

pub mod config;
