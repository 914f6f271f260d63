//! The cluster config file: which nodes may take part, where they listen, how
//! lockspaces are mastered, and the timers of the peer links.
//!
//! The syntax is dlm_controld's `dlm.conf(5)`, so an existing
//! `/etc/dlm/dlm.conf` is read as it is, extended with what udlm needs
//! because it has no corosync to learn the nodes from (`addr=` and `port=`
//! on `node` lines, a few global settings). `docs/CONFIG.md` is the user's
//! description of the format; this file is its only implementation.
//!
//! Decisions:
//! * Every problem of a file is reported, not only the first, each naming the
//!   file and the line, so one edit fixes them all.
//! * Settings that only dlm_controld knows (debugging, fencing, plocks, ...)
//!   are accepted with a warning: a working dlm.conf must not stop udlm, and
//!   the warning says that it has no effect.
//! * A file without `node` lines describes a one-node cluster (its node is
//!   `DLM_NODEID`, else 1); so does having no file at the default path.
//! * Directory placement hashes resource names with Jenkins' one-at-a-time
//!   hash ([`name_hash`]): udlm has its own wire protocol, so it needs a hash
//!   that every udlm node computes alike, not the kernel's `jhash`.
//!
//! Only [`Config::load`] reads a file; [`Config::local_node_id`] and
//! [`Config::peer_addrs`] resolve host names. Everything else is pure.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt;
use std::io::Read;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};

/// Where the config is looked for when `DLM_CONF` is not set.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/dlm/dlm.conf";
/// The kernel DLM's port, kept so that firewalls configured for it fit.
pub const DEFAULT_PORT: u16 = 21064;
pub const DEFAULT_CLUSTER_NAME: &str = "udlm";
pub const DEFAULT_HEARTBEAT_MS: u64 = 300;
pub const DEFAULT_PEER_TIMEOUT_MS: u64 = 1000;
pub const DEFAULT_RECONNECT_MS: u64 = 200;
/// How long a peer may stay unreachable before it is declared dead and its
/// locks are recovered (node/recovery.rs has the safety argument). More
/// than twice the peer timeout: the two ends of a cut may notice it up to
/// a peer timeout apart, and the end without a majority stops after half a
/// lease from its own notice. Detection of a dead node plus the lease stays
/// within 5 s.
pub const DEFAULT_LEASE_MS: u64 = 3000;
/// The longest lockspace name, as libdlm's `DLM_LOCKSPACE_LEN`.
pub const MAX_LOCKSPACE_NAME_LEN: usize = 64;
pub const MAX_CLUSTER_NAME_LEN: usize = 64;
/// A config file is a few hundred lines; a bound keeps a wrong path (a log,
/// a device) from being read into memory whole.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// The settings only dlm_controld acts on. udlm accepts a line starting with
/// one of these (whatever follows) and warns that it ignores it. `device`,
/// `connect`, `fence_all` and `unfence_all` start fencing-agent lines.
const DLM_CONTROLD_ONLY: &[&str] = &[
    "daemon_debug",
    "foreground",
    "log_debug",
    "protocol",
    "debug_logfile",
    "bind_all",
    "mark",
    "enable_fscontrol",
    "enable_plock",
    "plock_debug",
    "plock_rate_limit",
    "plock_ownership",
    "drop_resources_time",
    "drop_resources_count",
    "drop_resources_age",
    "post_join_delay",
    "enable_fencing",
    "enable_concurrent_fencing",
    "enable_startup_fencing",
    "enable_quorum_fencing",
    "enable_quorum_lockspace",
    "repeat_failed_fencing",
    "enable_helper",
    "enable_deadlk",
    "timewarn",
    "groupd_compat",
    "device",
    "connect",
    "fence_all",
    "unfence_all",
];

/// The parsed config of a cluster. Build one with [`Config::parse`],
/// [`Config::load`], [`Config::from_env`] or [`Config::single_node`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Peers of another cluster are refused, so that two clusters sharing a
    /// network cannot join by mistake.
    pub cluster_name: String,
    /// The key that authenticates peers; relative paths are taken from the
    /// config file's directory.
    pub key_file: Option<PathBuf>,
    /// What a node cut off from the majority does to the programs holding
    /// its locks (`self_fence=abort|log`; abort kills them).
    pub self_fence_abort: bool,
    /// Run as `fence_cmd NODEID` before the survivors take over a lost
    /// node's locks; recovery waits until it exits 0.
    pub fence_cmd: Option<PathBuf>,
    /// In a cluster of exactly two nodes, the survivor of the pair goes on
    /// alone (`two_node=1`, the default with two nodes; corosync's rule).
    pub two_node: bool,
    /// The port of nodes whose line has no `port=`.
    pub port: u16,
    /// In file order; ids are unique.
    pub nodes: Vec<NodeEntry>,
    pub lockspaces: Vec<LockspaceEntry>,
    pub masters: Vec<MasterEntry>,
    pub heartbeat_ms: u64,
    /// A peer silent this long is considered dead.
    pub peer_timeout_ms: u64,
    /// The wait before a lost peer connection is tried again.
    pub reconnect_ms: u64,
    /// A peer unreachable this long is dead; a node without a majority this
    /// long stops granting (`lease_ms`).
    pub lease_ms: u64,
    /// A request waiting this long makes udlm look for a deadlock cycle
    /// (`deadlock_detect_ms`; 0 turns detection off; unset: the default).
    pub deadlock_detect_ms: Option<u64>,
    /// The file this config was read from; `None` for the built-in one.
    pub source: Option<PathBuf>,
}

/// A `node id=N addr=A [port=P]` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeEntry {
    pub id: u32,
    /// As written: an IPv4 address, an IPv6 address (bracketed or bare) or a
    /// host name.
    pub addr: String,
    /// `None`: the global port.
    pub port: Option<u16>,
    /// 1-based line in the source file; 0 for built-in entries.
    pub line: usize,
}

/// A `lockspace LS [nodir=1]` or `lockspace name=LS [nodir=1]` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockspaceEntry {
    pub name: String,
    /// Static mastering: the hash-selected node masters each resource.
    pub nodir: bool,
    pub line: usize,
}

/// A `master LS node=N [weight=W]` or `master ls=LS node=N [weight=W]` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MasterEntry {
    pub ls: String,
    pub node: u32,
    pub weight: u32,
    pub line: usize,
}

/// One problem of a config file. `line` is 1-based; 0 means the file as a
/// whole (it cannot be read, say), and then `Display` leaves it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

impl NodeEntry {
    /// The address without the brackets of a bracketed IPv6 address.
    pub fn host(&self) -> &str {
        strip_brackets(&self.addr)
    }

    /// The address when it is an IP literal, `None` for a host name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host().parse().ok()
    }

    /// The socket addresses of this node at `port`: the literal, or what the
    /// host name resolves to (empty when it does not resolve).
    pub fn socket_addrs(&self, port: u16) -> Vec<SocketAddr> {
        if let Some(ip) = self.ip() {
            return vec![SocketAddr::new(ip, port)];
        }
        let mut addrs: Vec<SocketAddr> = match (self.host(), port).to_socket_addrs() {
            Ok(found) => found.collect(),
            Err(_) => Vec::new(),
        };
        // The resolver lists an address once per socket type; keep the first.
        let mut seen = Vec::with_capacity(addrs.len());
        addrs.retain(|a| {
            let new = !seen.contains(a);
            if new {
                seen.push(*a);
            }
            new
        });
        addrs
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::single_node()
    }
}

impl Config {
    /// The config of a host without a config file: a one-node cluster, node 1
    /// on 127.0.0.1, every setting at its default.
    pub fn single_node() -> Config {
        let mut config = Self::empty(None);
        config.nodes.push(NodeEntry {
            id: 1,
            addr: "127.0.0.1".to_string(),
            port: None,
            line: 0,
        });
        config
    }

    fn empty(source: Option<PathBuf>) -> Config {
        Config {
            cluster_name: DEFAULT_CLUSTER_NAME.to_string(),
            key_file: None,
            self_fence_abort: true,
            fence_cmd: None,
            two_node: true,
            port: DEFAULT_PORT,
            nodes: Vec::new(),
            lockspaces: Vec::new(),
            masters: Vec::new(),
            heartbeat_ms: DEFAULT_HEARTBEAT_MS,
            peer_timeout_ms: DEFAULT_PEER_TIMEOUT_MS,
            reconnect_ms: DEFAULT_RECONNECT_MS,
            lease_ms: DEFAULT_LEASE_MS,
            deadlock_detect_ms: None,
            source,
        }
    }

    /// Parses the text of a config file; `path` names it in messages and
    /// anchors a relative `key_file`. On success, returns the config and the
    /// warnings (`"{path}:{line}: ..."`); otherwise every error found.
    pub fn parse(text: &str, path: &Path) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
        let mut parser = Parser::new(path);
        for (index, raw) in text.lines().enumerate() {
            parser.line(index + 1, raw);
        }
        parser.finish()
    }

    /// Reads and parses the file at `path`. A file that cannot be read
    /// (missing, unreadable, larger than [`MAX_CONFIG_BYTES`], not UTF-8) is
    /// an error naming it.
    pub fn load(path: impl AsRef<Path>) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
        let path = path.as_ref();
        let whole_file = |message: String| {
            vec![ConfigError {
                path: path.to_path_buf(),
                line: 0,
                message,
            }]
        };
        let mut bytes = Vec::new();
        let read = std::fs::File::open(path)
            .and_then(|file| file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes));
        if let Err(e) = read {
            return Err(whole_file(format!("cannot read the config file: {e}")));
        }
        if bytes.len() as u64 > MAX_CONFIG_BYTES {
            return Err(whole_file(format!(
                "the config file is larger than {MAX_CONFIG_BYTES} bytes"
            )));
        }
        match String::from_utf8(bytes) {
            Ok(text) => Self::parse(&text, path),
            Err(e) => {
                let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
                Err(vec![ConfigError {
                    path: path.to_path_buf(),
                    line,
                    message: "the line is not valid UTF-8".to_string(),
                }])
            }
        }
    }

    /// The config of this host: the file named by `DLM_CONF` (which must
    /// exist), else [`DEFAULT_CONFIG_PATH`] if it exists, else
    /// [`Config::single_node`]. An empty `DLM_CONF` counts as unset.
    pub fn from_env() -> Result<(Config, Vec<String>), Vec<ConfigError>> {
        Self::from_env_with(
            std::env::var_os("DLM_CONF").as_deref(),
            Path::new(DEFAULT_CONFIG_PATH),
        )
    }

    /// [`Config::from_env`] with the value of `DLM_CONF` and the default path
    /// given, for tests.
    pub fn from_env_with(
        dlm_conf: Option<&OsStr>,
        default_path: &Path,
    ) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
        if let Some(named) = dlm_conf.filter(|value| !value.is_empty()) {
            return Self::load(Path::new(named)).map_err(|mut errors| {
                for error in errors.iter_mut().filter(|e| e.line == 0) {
                    error.message.push_str(" (the file named by DLM_CONF)");
                }
                errors
            });
        }
        match std::fs::metadata(default_path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok((Self::single_node(), Vec::new()))
            }
            // Present, or present but unreadable: load says which.
            _ => Self::load(default_path),
        }
    }

    /// The node line with this id.
    pub fn node(&self, id: u32) -> Option<&NodeEntry> {
        self.nodes.iter().find(|node| node.id == id)
    }

    /// The port node `id` listens on: its own, else the global one.
    pub fn port_of(&self, id: u32) -> Option<u16> {
        self.node(id).map(|node| node.port.unwrap_or(self.port))
    }

    /// Where to reach node `id`: its address (host names resolved) with its
    /// port. Empty for an unknown id or a name that does not resolve.
    pub fn peer_addrs(&self, id: u32) -> Vec<SocketAddr> {
        match (self.node(id), self.port_of(id)) {
            (Some(node), Some(port)) => node.socket_addrs(port),
            _ => Vec::new(),
        }
    }

    /// Whether lockspace `ls` is statically mastered (`nodir=1`).
    pub fn nodir(&self, ls: &str) -> bool {
        self.lockspaces
            .iter()
            .any(|entry| entry.name == ls && entry.nodir)
    }

    /// The directory weight of `node` in lockspace `ls`: with `master` lines
    /// for `ls`, their weight for the nodes they name and 0 for the others;
    /// without, 1 (dlm_controld's rule).
    pub fn weight(&self, ls: &str, node: u32) -> u32 {
        let mut masters = self.masters.iter().filter(|m| m.ls == ls).peekable();
        if masters.peek().is_none() {
            return 1;
        }
        masters.find(|m| m.node == node).map_or(0, |m| m.weight)
    }

    /// `(node id, weight)` of every configured node in lockspace `ls`,
    /// sorted by id: the input [`directory_node`] expects.
    pub fn weights(&self, ls: &str) -> Vec<(u32, u32)> {
        let mut weights: Vec<(u32, u32)> = self
            .nodes
            .iter()
            .map(|n| (n.id, self.weight(ls, n.id)))
            .collect();
        weights.sort_unstable_by_key(|&(id, _)| id);
        weights
    }

    /// This host's node id: `DLM_NODEID` if set, else the one node whose
    /// address belongs to this machine.
    pub fn local_node_id(&self) -> Result<u32, String> {
        match std::env::var_os("DLM_NODEID") {
            None => self.local_node_id_with(None),
            Some(value) => match value.to_str() {
                Some(text) => self.local_node_id_with(Some(text)),
                None => Err(format!(
                    "DLM_NODEID={} is not a node id",
                    value.to_string_lossy()
                )),
            },
        }
    }

    /// [`Config::local_node_id`] with the value of `DLM_NODEID` given, for
    /// tests. An empty value counts as unset. With `None`, a node's address
    /// is this machine's if a UDP socket can be bound to it (the kernel
    /// refuses addresses it does not own); host names are resolved.
    pub fn local_node_id_with(&self, env_nodeid: Option<&str>) -> Result<u32, String> {
        let source = self.describe_source();
        if let Some(text) = env_nodeid.map(str::trim).filter(|text| !text.is_empty()) {
            let id = match text.parse::<u32>() {
                Ok(id) if id > 0 && text.bytes().all(|b| b.is_ascii_digit()) => id,
                _ => {
                    return Err(format!(
                        "DLM_NODEID={text} is not a node id (1 to {})",
                        u32::MAX
                    ))
                }
            };
            if !self.nodes.is_empty() && self.node(id).is_none() {
                return Err(format!(
                    "DLM_NODEID={id}, but {source} has no node {id} (its nodes: {})",
                    join_ids(self.nodes.iter().map(|n| n.id))
                ));
            }
            return Ok(id);
        }
        if self.nodes.is_empty() {
            return Ok(1);
        }
        let mut local = Vec::new();
        let mut unresolved = Vec::new();
        for node in &self.nodes {
            let addrs = node.socket_addrs(0);
            if addrs.is_empty() {
                unresolved.push(node.addr.as_str());
            } else if addrs.iter().any(|addr| is_local_address(addr.ip())) {
                local.push(node.id);
            }
        }
        match local.as_slice() {
            [id] => Ok(*id),
            [] => {
                let mut message = format!(
                    "none of the node addresses in {source} belongs to this machine; \
                     set DLM_NODEID to this host's node id"
                );
                if !unresolved.is_empty() {
                    message.push_str(&format!(" (could not resolve: {})", unresolved.join(", ")));
                }
                Err(message)
            }
            several => Err(format!(
                "nodes {} in {source} all have addresses of this machine; \
                 set DLM_NODEID to choose one",
                join_ids(several.iter().copied())
            )),
        }
    }

    fn describe_source(&self) -> String {
        match &self.source {
            Some(path) => path.display().to_string(),
            None => "the built-in one-node config".to_string(),
        }
    }
}

fn join_ids(ids: impl Iterator<Item = u32>) -> String {
    ids.map(|id| id.to_string()).collect::<Vec<_>>().join(", ")
}

/// Binding succeeds only for an address of this machine (or the wildcard,
/// which the parser refuses as a node address).
fn is_local_address(ip: IpAddr) -> bool {
    UdpSocket::bind(SocketAddr::new(ip, 0)).is_ok()
}

/// Jenkins' one-at-a-time hash (Bob Jenkins, "A hash function for hash table
/// lookup", 1997) of a resource name. Its every step is a byte-wise
/// add/shift/xor on a `u32`, so it gives the same value on every platform;
/// the final mixing spreads the input into the upper bits that
/// [`directory_node`] uses.
pub fn name_hash(name: &[u8]) -> u32 {
    let mut hash: u32 = 0;
    for &byte in name {
        hash = hash.wrapping_add(u32::from(byte));
        hash = hash.wrapping_add(hash << 10);
        hash ^= hash >> 6;
    }
    hash = hash.wrapping_add(hash << 3);
    hash ^= hash >> 11;
    hash.wrapping_add(hash << 15)
}

/// Names of child resources in hierarchical lockspaces (node/hierarchy.rs)
/// start with this byte and are [`CHILD_NAME_LEN`] bytes long; bytes 1..5
/// hold their root's [`name_hash`], so that a whole tree has its root's
/// directory node (and static master).
pub const CHILD_NAME_MARK: u8 = 0xff;
pub const CHILD_NAME_LEN: usize = 21;

/// The hash that places `name`: its own, or its root's for a child name.
pub fn placement_hash(name: &[u8]) -> u32 {
    if name.len() == CHILD_NAME_LEN && name[0] == CHILD_NAME_MARK {
        u32::from_le_bytes([name[1], name[2], name[3], name[4]])
    } else {
        name_hash(name)
    }
}

/// The directory node of a resource among `members` (`(node id, weight)`,
/// sorted by id, as [`Config::weights`] returns them), the kernel's scheme
/// (spec §8.1): the upper 16 bits of the name's hash, modulo the total
/// weight, index the member list in which each node appears `weight` times;
/// when every weight is 0, each node counts once. `None` without members.
pub fn directory_node(name: &[u8], members: &[(u32, u32)]) -> Option<u32> {
    debug_assert!(
        members.windows(2).all(|pair| pair[0].0 < pair[1].0),
        "directory_node: members must be sorted by id, without repeats"
    );
    if members.is_empty() {
        return None;
    }
    let slot = u64::from(placement_hash(name) >> 16);
    let total_weight: u64 = members.iter().map(|&(_, weight)| u64::from(weight)).sum();
    if total_weight == 0 {
        let index = slot % members.len() as u64;
        return members.get(usize::try_from(index).ok()?).map(|&(id, _)| id);
    }
    // Walking the cumulative weights finds the slot without building the
    // repeated array, so large weights cost nothing.
    let mut remaining = slot % total_weight;
    for &(id, weight) in members {
        if remaining < u64::from(weight) {
            return Some(id);
        }
        remaining -= u64::from(weight);
    }
    None
}

fn strip_brackets(addr: &str) -> &str {
    addr.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(addr)
}

/// The part of a line before its comment: a `#` at the start or after
/// whitespace. A `#` inside a word (`key_file=/etc/a#b`) is kept, since paths
/// and names may contain one.
fn strip_comment(line: &str) -> &str {
    let mut after_space = true;
    for (index, c) in line.char_indices() {
        if c == '#' && after_space {
            return &line[..index];
        }
        after_space = c.is_whitespace();
    }
    line
}

/// A global setting udlm acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Setting {
    ClusterName,
    KeyFile,
    Port,
    HeartbeatMs,
    PeerTimeoutMs,
    ReconnectMs,
    LeaseMs,
    DeadlockDetectMs,
    SelfFence,
    FenceCmd,
    TwoNode,
}

impl Setting {
    fn from_key(key: &str) -> Option<Setting> {
        Some(match key {
            "cluster_name" => Setting::ClusterName,
            "key_file" => Setting::KeyFile,
            "port" | "tcp_port" => Setting::Port,
            "heartbeat_ms" => Setting::HeartbeatMs,
            "peer_timeout_ms" => Setting::PeerTimeoutMs,
            "reconnect_ms" => Setting::ReconnectMs,
            "lease_ms" => Setting::LeaseMs,
            "deadlock_detect_ms" => Setting::DeadlockDetectMs,
            "self_fence" => Setting::SelfFence,
            "fence_cmd" => Setting::FenceCmd,
            "two_node" => Setting::TwoNode,
            _ => return None,
        })
    }
}

/// One word of a `node`, `lockspace` or `master` line.
#[derive(Debug)]
enum Item<'a> {
    Word(&'a str),
    Attr(&'a str, &'a str),
}

/// Splits the words after a line's keyword into `name=value` attributes and
/// bare words, allowing whitespace around `=` (`id = 1`).
fn split_items(rest: &str) -> Result<Vec<Item<'_>>, String> {
    let words: Vec<&str> = rest.split_whitespace().collect();
    let mut items = Vec::with_capacity(words.len());
    let mut index = 0;
    while let Some(&word) = words.get(index) {
        index += 1;
        let Some((name, value)) = word.split_once('=') else {
            items.push(Item::Word(word));
            continue;
        };
        let name = if name.is_empty() {
            // "id =1" or "id = 1": the name is the previous bare word.
            match items.pop() {
                Some(Item::Word(previous)) => previous,
                _ => return Err(format!("'{word}' has no attribute name before its '='")),
            }
        } else {
            name
        };
        let value = match words.get(index) {
            // "id= 1" or "id = 1": the value is the next word.
            Some(next) if value.is_empty() && !next.contains('=') => {
                index += 1;
                next
            }
            _ => value,
        };
        items.push(Item::Attr(name, value));
    }
    Ok(items)
}

/// The address as a key for finding two nodes at one address: IP literals
/// in canonical form, host names in lower case without the root dot.
fn address_key(addr: &str) -> String {
    let host = strip_brackets(addr);
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// Checks a node address: an IP literal peers can connect to, or a host name.
fn check_address(addr: &str) -> Result<(), String> {
    if addr.is_empty() {
        return Err("'addr' is empty".to_string());
    }
    let ip = if let Some(inner) = addr.strip_prefix('[') {
        match inner.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
            Some(Ok(ip)) => IpAddr::V6(ip),
            _ => {
                return Err(format!(
                    "addr '{addr}' is not a valid bracketed IPv6 address"
                ))
            }
        }
    } else if let Ok(ip) = addr.parse::<IpAddr>() {
        ip
    } else if addr.contains(':') {
        return Err(format!("addr '{addr}' is not a valid IPv6 address"));
    } else {
        return check_host_name(addr);
    };
    let unusable = match ip {
        IpAddr::V4(v4) => v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast(),
        IpAddr::V6(v6) => v6.is_unspecified() || v6.is_multicast(),
    };
    if unusable {
        return Err(format!(
            "addr '{addr}' is not a unicast address a peer can connect to"
        ));
    }
    Ok(())
}

/// RFC 1123 host names: dot-separated labels of 1 to 63 letters, digits and
/// hyphens, not starting or ending with a hyphen, 253 bytes at most. A name
/// whose last label is all digits is a mistyped IPv4 address (RFC 3696 §2).
fn check_host_name(name: &str) -> Result<(), String> {
    let bare = name.strip_suffix('.').unwrap_or(name);
    let bad = |why: &str| {
        Err(format!(
            "addr '{name}' is not a valid IPv4 or IPv6 address or host name ({why})"
        ))
    };
    if bare.is_empty() || bare.len() > 253 {
        return bad("a host name has 1 to 253 characters");
    }
    for label in bare.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("each dot-separated label has 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("only letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label cannot start or end with '-'");
        }
    }
    if bare
        .rsplit('.')
        .next()
        .is_some_and(|last| last.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!("addr '{name}' is not a valid IPv4 address"));
    }
    Ok(())
}

/// The state of one parse: the config so far, what went wrong, and where
/// each unique thing was first defined (for messages about repeats).
struct Parser<'a> {
    path: &'a Path,
    config: Config,
    errors: Vec<ConfigError>,
    warnings: Vec<(usize, String)>,
    setting_lines: HashMap<Setting, usize>,
    node_lines: HashMap<u32, usize>,
    lockspace_lines: HashMap<String, usize>,
    master_lines: HashMap<(String, u32), usize>,
    /// Every node line with a valid id, address and port, and every master
    /// line with a valid node, even when another part of the line is wrong:
    /// the cross-line checks report on them too, so that one run lists all.
    endpoints_to_check: Vec<NodeEntry>,
    master_refs: Vec<(usize, u32)>,
}

impl<'a> Parser<'a> {
    fn new(path: &'a Path) -> Self {
        Parser {
            path,
            config: Config::empty(Some(path.to_path_buf())),
            errors: Vec::new(),
            warnings: Vec::new(),
            setting_lines: HashMap::new(),
            node_lines: HashMap::new(),
            lockspace_lines: HashMap::new(),
            master_lines: HashMap::new(),
            endpoints_to_check: Vec::new(),
            master_refs: Vec::new(),
        }
    }

    fn error(&mut self, line: usize, message: String) {
        self.errors.push(ConfigError {
            path: self.path.to_path_buf(),
            line,
            message,
        });
    }

    fn warn(&mut self, line: usize, message: String) {
        self.warnings.push((line, message));
    }

    fn ignored_setting(&mut self, line: usize, key: &str) {
        self.warn(
            line,
            format!("'{key}' is a dlm_controld setting; udlm ignores it"),
        );
    }

    fn line(&mut self, line: usize, raw: &str) {
        let content = strip_comment(raw).trim();
        if content.is_empty() {
            return;
        }
        let first_end = content
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(content.len());
        let (first, rest) = content.split_at(first_end);
        let rest = rest.trim_start();
        let expected = "expected 'setting=value' or a node, lockspace or master line";
        if first.is_empty() {
            self.error(
                line,
                format!("cannot parse this line: '=' has no setting name before it; {expected}"),
            );
        } else if DLM_CONTROLD_ONLY.contains(&first) {
            self.ignored_setting(line, first);
        } else if let Some(value) = rest.strip_prefix('=') {
            self.setting(line, first, value.trim());
        } else {
            match first {
                "node" => self.node_line(line, rest),
                "lockspace" => self.lockspace_line(line, rest),
                "master" => self.master_line(line, rest),
                _ if Setting::from_key(first).is_some() => self.error(
                    line,
                    format!("missing '=' after '{first}' (write {first}=VALUE)"),
                ),
                _ if !content.contains('=') => self.error(line, format!("missing '=': {expected}")),
                _ => self.error(line, format!("cannot parse this line: {expected}")),
            }
        }
    }

    fn setting(&mut self, line: usize, key: &str, value: &str) {
        let Some(setting) = Setting::from_key(key) else {
            let message = if matches!(key, "node" | "lockspace" | "master") {
                format!("'{key}' starts a {key} line, not a setting: write '{key} name=value ...'")
            } else {
                format!("unknown setting '{key}'")
            };
            return self.error(line, message);
        };
        if value.is_empty() {
            return self.error(line, format!("'{key}' has no value"));
        }
        if value.contains(char::is_whitespace) {
            return self.error(
                line,
                format!("the value of '{key}' contains whitespace: '{value}'"),
            );
        }
        if let Some(first) = self.setting_lines.insert(setting, line) {
            self.warn(
                line,
                format!("'{key}' is set again (also on line {first}); the last value counts"),
            );
        }
        match setting {
            Setting::ClusterName => {
                if value.len() > MAX_CLUSTER_NAME_LEN {
                    self.error(
                        line,
                        format!(
                            "cluster_name is {} bytes long; at most {MAX_CLUSTER_NAME_LEN} are allowed",
                            value.len()
                        ),
                    );
                } else if !value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                {
                    self.error(
                        line,
                        format!("cluster_name '{value}' may only contain letters, digits, '_', '.' and '-'"),
                    );
                } else {
                    self.config.cluster_name = value.to_string();
                }
            }
            Setting::KeyFile => {
                let file = Path::new(value);
                let resolved = match self.path.parent() {
                    Some(dir) if file.is_relative() => dir.join(file),
                    _ => file.to_path_buf(),
                };
                self.config.key_file = Some(resolved);
            }
            Setting::SelfFence => match value {
                "abort" => self.config.self_fence_abort = true,
                "log" => self.config.self_fence_abort = false,
                _ => self.error(
                    line,
                    format!("'self_fence' must be 'abort' or 'log', not '{value}'"),
                ),
            },
            Setting::TwoNode => match value {
                "1" => self.config.two_node = true,
                "0" => self.config.two_node = false,
                _ => self.error(line, format!("'two_node' must be 0 or 1, not '{value}'")),
            },
            Setting::FenceCmd => {
                let file = Path::new(value);
                if file.is_relative() {
                    self.error(
                        line,
                        format!("'fence_cmd' must be an absolute path, not '{value}'"),
                    );
                } else {
                    self.config.fence_cmd = Some(file.to_path_buf());
                }
            }
            Setting::Port => {
                if let Some(port) = self.number(line, key, value, 1, u64::from(u16::MAX)) {
                    self.config.port = port as u16;
                }
            }
            Setting::DeadlockDetectMs => {
                if let Some(ms) = self.number(line, key, value, 0, u64::MAX / 4) {
                    self.config.deadlock_detect_ms = Some(ms);
                }
            }
            Setting::HeartbeatMs
            | Setting::PeerTimeoutMs
            | Setting::ReconnectMs
            | Setting::LeaseMs => {
                // 0 would make the peer links spin or give up at once.
                if let Some(ms) = self.number(line, key, value, 1, u64::MAX) {
                    match setting {
                        Setting::HeartbeatMs => self.config.heartbeat_ms = ms,
                        Setting::PeerTimeoutMs => self.config.peer_timeout_ms = ms,
                        Setting::LeaseMs => self.config.lease_ms = ms,
                        _ => self.config.reconnect_ms = ms,
                    }
                }
            }
        }
    }

    /// A decimal number in `min..=max`; reports the error and returns `None`
    /// otherwise.
    fn number(&mut self, line: usize, name: &str, value: &str, min: u64, max: u64) -> Option<u64> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            self.error(line, format!("'{name}' must be a number, not '{value}'"));
            return None;
        }
        match value.parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                self.error(
                    line,
                    format!("'{name}' is {value}; it must be from {min} to {max}"),
                );
                None
            }
        }
    }

    /// A node id (of a node or master line): 1 to `u32::MAX`.
    fn node_id(&mut self, line: usize, name: &str, value: &str) -> Option<u32> {
        if !value.is_empty() && value.bytes().all(|b| b == b'0') {
            self.error(
                line,
                format!("node id 0 is not allowed in '{name}': node ids start at 1"),
            );
            return None;
        }
        self.number(line, name, value, 1, u64::from(u32::MAX))
            .map(|id| id as u32)
    }

    /// The attributes of a directive line, or `None` after reporting why
    /// they cannot be split.
    fn items<'t>(&mut self, line: usize, rest: &'t str) -> Option<Vec<Item<'t>>> {
        match split_items(rest) {
            Ok(items) => Some(items),
            Err(message) => {
                self.error(line, message);
                None
            }
        }
    }

    fn stray_word(&mut self, line: usize, kind: &str, word: &str) {
        self.error(
            line,
            format!(
                "unexpected '{word}' on a {kind} line: attributes are written name=value, \
                 and a value cannot contain whitespace"
            ),
        );
    }

    fn repeated_attribute(&mut self, line: usize, seen: &mut Vec<String>, name: &str) -> bool {
        if seen.iter().any(|s| s == name) {
            self.error(line, format!("attribute '{name}' is given twice"));
            return true;
        }
        seen.push(name.to_string());
        false
    }

    fn node_line(&mut self, line: usize, rest: &str) {
        let Some(items) = self.items(line, rest) else {
            return;
        };
        let mut complete = true;
        let mut seen = Vec::new();
        let (mut id, mut id_given) = (None, false);
        let mut addr = None;
        let (mut port, mut port_ok) = (None, true);
        for item in items {
            let (name, value) = match item {
                Item::Word(word) => {
                    self.stray_word(line, "node", word);
                    complete = false;
                    continue;
                }
                Item::Attr(name, value) => (name, value),
            };
            if self.repeated_attribute(line, &mut seen, name) {
                complete = false;
                continue;
            }
            match name {
                "id" => {
                    id_given = true;
                    id = self.node_id(line, "id", value);
                }
                "addr" => match check_address(value) {
                    Ok(()) => addr = Some(value),
                    Err(message) => {
                        self.error(line, message);
                        complete = false;
                    }
                },
                "port" => match self.number(line, "port", value, 1, u64::from(u16::MAX)) {
                    Some(p) => port = Some(p as u16),
                    None => (complete, port_ok) = (false, false),
                },
                "mark" => self.ignored_setting(line, "mark"),
                _ => {
                    self.error(
                        line,
                        format!("unknown attribute '{name}' on a node line (known: id, addr, port, mark)"),
                    );
                    complete = false;
                }
            }
        }
        if !id_given {
            self.error(
                line,
                "node line has no id (write node id=N addr=ADDRESS)".to_string(),
            );
        }
        if addr.is_none() && !seen.iter().any(|s| s == "addr") {
            let which = id.map_or_else(|| "node line".to_string(), |id| format!("node {id}"));
            self.error(
                line,
                format!("{which} has no addr (udlm needs each node's address: addr=ADDRESS)"),
            );
        }
        let Some(id) = id else { return };
        if let Some(&first) = self.node_lines.get(&id) {
            return self.error(
                line,
                format!("duplicate node id {id} (first defined on line {first})"),
            );
        }
        // Recorded even when the line has another error, so that master
        // lines naming this node do not add a second, misleading error.
        self.node_lines.insert(id, line);
        let Some(addr) = addr else { return };
        let entry = NodeEntry {
            id,
            addr: addr.to_string(),
            port,
            line,
        };
        if port_ok {
            self.endpoints_to_check.push(entry.clone());
        }
        if complete {
            self.config.nodes.push(entry);
        }
    }

    /// Checks a lockspace name of a lockspace or master line.
    fn lockspace_name(&mut self, line: usize, name: &str) -> bool {
        if name.is_empty() {
            self.error(line, "the lockspace name is empty".to_string());
            false
        } else if name.len() > MAX_LOCKSPACE_NAME_LEN {
            let message = format!(
                "lockspace name '{name}' is {} bytes long; at most {MAX_LOCKSPACE_NAME_LEN} are allowed",
                name.len()
            );
            self.error(line, message);
            false
        } else {
            true
        }
    }

    fn lockspace_line(&mut self, line: usize, rest: &str) {
        let Some(items) = self.items(line, rest) else {
            return;
        };
        let mut complete = true;
        let mut seen = Vec::new();
        let mut name = None;
        let mut nodir = false;
        for (position, item) in items.into_iter().enumerate() {
            let (attr, value) = match item {
                // dlm.conf's form: "lockspace NAME nodir=1".
                Item::Word(word) if position == 0 => ("name", word),
                Item::Word(word) => {
                    self.stray_word(line, "lockspace", word);
                    complete = false;
                    continue;
                }
                Item::Attr(attr, value) => (attr, value),
            };
            if self.repeated_attribute(line, &mut seen, attr) {
                complete = false;
                continue;
            }
            match (attr, value) {
                ("name", value) => name = Some(value),
                ("nodir", "0") => nodir = false,
                ("nodir", "1") => nodir = true,
                ("nodir", other) => {
                    self.error(line, format!("'nodir' must be 0 or 1, not '{other}'"));
                    complete = false;
                }
                (other, _) => {
                    self.error(
                        line,
                        format!(
                            "unknown attribute '{other}' on a lockspace line (known: name, nodir)"
                        ),
                    );
                    complete = false;
                }
            }
        }
        let Some(name) = name else {
            return self.error(
                line,
                "lockspace line has no name (write lockspace NAME [nodir=1])".to_string(),
            );
        };
        if !self.lockspace_name(line, name) {
            return;
        }
        if let Some(&first) = self.lockspace_lines.get(name) {
            return self.error(
                line,
                format!("duplicate lockspace '{name}' (first on line {first})"),
            );
        }
        self.lockspace_lines.insert(name.to_string(), line);
        if complete {
            self.config.lockspaces.push(LockspaceEntry {
                name: name.to_string(),
                nodir,
                line,
            });
        }
    }

    fn master_line(&mut self, line: usize, rest: &str) {
        let Some(items) = self.items(line, rest) else {
            return;
        };
        let mut complete = true;
        let mut seen = Vec::new();
        let mut ls = None;
        let (mut node, mut node_given) = (None, false);
        let mut weight = Some(1);
        for (position, item) in items.into_iter().enumerate() {
            let (attr, value) = match item {
                // dlm.conf's form: "master LS node=N".
                Item::Word(word) if position == 0 => ("ls", word),
                Item::Word(word) => {
                    self.stray_word(line, "master", word);
                    complete = false;
                    continue;
                }
                Item::Attr(attr, value) => (attr, value),
            };
            if self.repeated_attribute(line, &mut seen, attr) {
                complete = false;
                continue;
            }
            match attr {
                "ls" => ls = Some(value),
                "node" => {
                    node_given = true;
                    node = self.node_id(line, "node", value);
                }
                "weight" => {
                    weight = self
                        .number(line, "weight", value, 0, u64::from(u32::MAX))
                        .map(|w| w as u32)
                }
                other => {
                    self.error(line, format!("unknown attribute '{other}' on a master line (known: ls, node, weight)"));
                    complete = false;
                }
            }
        }
        if ls.is_none() {
            self.error(
                line,
                "master line names no lockspace (write master LS node=N [weight=W])".to_string(),
            );
        }
        if !node_given {
            self.error(
                line,
                "master line has no node (write master LS node=N [weight=W])".to_string(),
            );
        }
        let ls_ok = ls.is_some_and(|name| self.lockspace_name(line, name));
        if let Some(node) = node {
            self.master_refs.push((line, node));
        }
        let (Some(ls), Some(node), Some(weight)) = (ls, node, weight) else {
            return;
        };
        if !ls_ok || !complete {
            return;
        }
        if let Some(&first) = self.master_lines.get(&(ls.to_string(), node)) {
            return self.error(
                line,
                format!("duplicate master line for node {node} in lockspace '{ls}' (first on line {first})"),
            );
        }
        self.master_lines.insert((ls.to_string(), node), line);
        self.config.masters.push(MasterEntry {
            ls: ls.to_string(),
            node,
            weight,
            line,
        });
    }

    /// The checks that need the whole file: references between lines and
    /// settings that may come after the lines that use them.
    fn cross_checks(&mut self) {
        for (line, node) in std::mem::take(&mut self.master_refs) {
            if !self.node_lines.contains_key(&node) {
                self.error(
                    line,
                    format!("master line names node {node}, which has no node line"),
                );
            }
        }

        let mut endpoints: HashMap<(String, u16), (u32, usize)> = HashMap::new();
        for node in std::mem::take(&mut self.endpoints_to_check) {
            let port = node.port.unwrap_or(self.config.port);
            let key = (address_key(&node.addr), port);
            if let Some(&(other, other_line)) = endpoints.get(&key) {
                let message = format!(
                    "node {} has the same address and port as node {other} (line {other_line}): {} port {port}",
                    node.id, node.addr
                );
                self.error(node.line, message);
            } else {
                endpoints.insert(key, (node.id, node.line));
            }
        }

        let (heartbeat, timeout) = (self.config.heartbeat_ms, self.config.peer_timeout_ms);
        if timeout <= heartbeat {
            let line = self
                .setting_lines
                .get(&Setting::PeerTimeoutMs)
                .or_else(|| self.setting_lines.get(&Setting::HeartbeatMs))
                .copied()
                .unwrap_or(0);
            self.error(
                line,
                format!(
                    "peer_timeout_ms ({timeout}) must be greater than heartbeat_ms ({heartbeat}), \
                     or every peer would be declared dead between two heartbeats"
                ),
            );
        }

        let lease = self.config.lease_ms;
        if lease <= 2 * timeout {
            let line = self
                .setting_lines
                .get(&Setting::LeaseMs)
                .or_else(|| self.setting_lines.get(&Setting::PeerTimeoutMs))
                .copied()
                .unwrap_or(0);
            self.warn(
                line,
                format!(
                    "lease_ms ({lease}) is not more than twice peer_timeout_ms ({timeout}): a node \
                     cut off may notice the cut up to peer_timeout_ms after the others and stop \
                     only lease_ms/2 after that, when they may already have taken its locks over"
                ),
            );
        }

        if self.node_lines.is_empty() {
            self.warn(
                0,
                "no node lines: this host is a one-node cluster".to_string(),
            );
        }
    }

    fn finish(mut self) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
        self.cross_checks();
        if !self.errors.is_empty() {
            // Cross-line checks run last; report in file order all the same.
            self.errors.sort_by_key(|e| e.line);
            return Err(self.errors);
        }
        self.warnings.sort_by_key(|&(line, _)| line);
        let path = self.path.display();
        let warnings = self
            .warnings
            .into_iter()
            .map(|(line, message)| {
                if line == 0 {
                    format!("{path}: {message}")
                } else {
                    format!("{path}:{line}: {message}")
                }
            })
            .collect();
        Ok((self.config, warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PATH: &str = "/etc/dlm/dlm.conf";

    fn parse(text: &str) -> Result<(Config, Vec<String>), Vec<ConfigError>> {
        Config::parse(text, Path::new(PATH))
    }

    fn parse_ok(text: &str) -> (Config, Vec<String>) {
        match parse(text) {
            Ok(parsed) => parsed,
            Err(errors) => panic!("unexpected errors: {errors:#?}"),
        }
    }

    fn parse_errors(text: &str) -> Vec<ConfigError> {
        match parse(text) {
            Ok((config, _)) => panic!("expected errors, parsed {config:#?}"),
            Err(errors) => errors,
        }
    }

    /// Asserts that `text` has exactly one error, on `line`, whose message
    /// contains `needle`.
    fn assert_one_error(text: &str, line: usize, needle: &str) {
        let errors = parse_errors(text);
        assert_eq!(errors.len(), 1, "errors: {errors:#?}");
        assert_eq!(errors[0].line, line, "error: {}", errors[0]);
        assert!(
            errors[0].message.contains(needle),
            "'{}' does not contain '{needle}'",
            errors[0].message
        );
        assert_eq!(errors[0].path, Path::new(PATH));
    }

    const TWO_NODES: &str = "node id=1 addr=10.0.0.1\nnode id=2 addr=10.0.0.2\n";

    fn with_nodes(extra: &str) -> String {
        format!("{TWO_NODES}{extra}")
    }

    // ---- accepted forms ----

    #[test]
    fn empty_file_is_a_one_node_cluster_with_defaults() {
        let (config, warnings) = parse_ok("");
        assert_eq!(config.cluster_name, "udlm");
        assert_eq!(config.key_file, None);
        assert_eq!(config.port, 21064);
        assert_eq!(config.heartbeat_ms, 300);
        assert_eq!(config.peer_timeout_ms, 1000);
        assert_eq!(config.reconnect_ms, 200);
        assert_eq!(config.lease_ms, 3000);
        assert!(
            config.nodes.is_empty() && config.lockspaces.is_empty() && config.masters.is_empty()
        );
        assert_eq!(config.source.as_deref(), Some(Path::new(PATH)));
        assert_eq!(
            warnings,
            vec![format!(
                "{PATH}: no node lines: this host is a one-node cluster"
            )]
        );
    }

    #[test]
    fn single_node_default() {
        let config = Config::single_node();
        assert_eq!(
            config.nodes,
            vec![NodeEntry {
                id: 1,
                addr: "127.0.0.1".into(),
                port: None,
                line: 0
            }]
        );
        assert_eq!(config.port, DEFAULT_PORT);
        assert_eq!(config.source, None);
        assert_eq!(Config::default(), config);
        assert_eq!(config.weights("any"), vec![(1, 1)]);
    }

    #[test]
    fn comments_and_blank_lines() {
        let text =
            "# whole-line comment\n\n   # indented comment\n\t\nport=1234   # trailing comment\n\
                    key_file=/etc/dlm/a#b\nnode id=1 addr=10.0.0.1 # node one\n";
        let (config, warnings) = parse_ok(text);
        assert_eq!(config.port, 1234);
        assert_eq!(config.key_file.as_deref(), Some(Path::new("/etc/dlm/a#b")));
        assert_eq!(config.nodes.len(), 1);
        assert_eq!(config.nodes[0].line, 7);
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn crlf_line_endings() {
        let (config, _) = parse_ok("port=1000\r\nnode id=1 addr=10.0.0.1\r\n");
        assert_eq!(config.port, 1000);
        assert_eq!(config.nodes[0].addr, "10.0.0.1");
    }

    #[test]
    fn every_udlm_setting() {
        let text = with_nodes(
            "cluster_name=prod-1.a_b\nkey_file=/etc/udlm/key\nport=4000\n\
             heartbeat_ms=250\npeer_timeout_ms=3000\nreconnect_ms=50\nlease_ms=7000\n\
             deadlock_detect_ms=250\n",
        );
        let (config, warnings) = parse_ok(&text);
        assert_eq!(config.deadlock_detect_ms, Some(250));
        let (off, _) = parse_ok(&with_nodes("deadlock_detect_ms=0\n"));
        assert_eq!(off.deadlock_detect_ms, Some(0));
        let (unset, _) = parse_ok(&with_nodes(""));
        assert_eq!(unset.deadlock_detect_ms, None);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.cluster_name, "prod-1.a_b");
        assert_eq!(config.key_file.as_deref(), Some(Path::new("/etc/udlm/key")));
        assert_eq!(config.port, 4000);
        assert_eq!(config.heartbeat_ms, 250);
        assert_eq!(config.peer_timeout_ms, 3000);
        assert_eq!(config.reconnect_ms, 50);
        assert_eq!(config.lease_ms, 7000);
        assert!(config.self_fence_abort);
        assert_eq!(config.fence_cmd, None);
        let (config, _) = parse_ok(&with_nodes(
            "self_fence=log\nfence_cmd=/usr/sbin/fence_x\ntwo_node=0\n",
        ));
        assert!(!config.self_fence_abort);
        assert!(!config.two_node);
        assert_eq!(
            config.fence_cmd.as_deref(),
            Some(Path::new("/usr/sbin/fence_x"))
        );
    }

    #[test]
    fn fencing_settings_are_checked() {
        assert_one_error(
            &with_nodes("self_fence=reboot\n"),
            3,
            "'self_fence' must be 'abort' or 'log', not 'reboot'",
        );
        assert_one_error(
            &with_nodes("two_node=yes\n"),
            3,
            "'two_node' must be 0 or 1",
        );
        assert_one_error(
            &with_nodes("fence_cmd=fence.sh\n"),
            3,
            "'fence_cmd' must be an absolute path",
        );
    }

    #[test]
    fn whitespace_around_equals_in_settings() {
        let (config, _) = parse_ok(&with_nodes(
            "port = 5000\ncluster_name\t=\tc1\nreconnect_ms =7\n",
        ));
        assert_eq!(config.port, 5000);
        assert_eq!(config.cluster_name, "c1");
        assert_eq!(config.reconnect_ms, 7);
    }

    #[test]
    fn tcp_port_is_an_alias_of_port() {
        let (config, _) = parse_ok(&with_nodes("tcp_port=21065\n"));
        assert_eq!(config.port, 21065);
    }

    #[test]
    fn relative_key_file_is_taken_from_the_config_directory() {
        let (config, _) = parse_ok(&with_nodes("key_file=cluster.key\n"));
        assert_eq!(
            config.key_file.as_deref(),
            Some(Path::new("/etc/dlm/cluster.key"))
        );
    }

    #[test]
    fn repeated_setting_warns_and_last_wins() {
        let (config, warnings) = parse_ok(&with_nodes("port=1\nport=2\n"));
        assert_eq!(config.port, 2);
        assert_eq!(
            warnings,
            vec![format!(
                "{PATH}:4: 'port' is set again (also on line 3); the last value counts"
            )]
        );
    }

    #[test]
    fn node_lines_ipv4_ipv6_and_host_names() {
        let text = "node id=1 addr=10.0.0.1\nnode id=2 addr=fd00::2 port=21070\nnode id=3 addr=[fd00::3]\n\
                    node id=4 addr=node-4.example.com\nnode id=5 addr=node5.example.com.\nnode id=6 addr=localhost\n";
        let (config, warnings) = parse_ok(text);
        assert!(warnings.is_empty(), "{warnings:?}");
        let summary: Vec<(u32, &str, Option<u16>, usize)> = config
            .nodes
            .iter()
            .map(|n| (n.id, n.addr.as_str(), n.port, n.line))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1, "10.0.0.1", None, 1),
                (2, "fd00::2", Some(21070), 2),
                (3, "[fd00::3]", None, 3),
                (4, "node-4.example.com", None, 4),
                (5, "node5.example.com.", None, 5),
                (6, "localhost", None, 6),
            ]
        );
        assert_eq!(config.nodes[2].host(), "fd00::3");
        assert_eq!(config.nodes[2].ip(), Some("fd00::3".parse().unwrap()));
        assert_eq!(config.nodes[3].ip(), None);
    }

    #[test]
    fn node_attributes_in_any_order_and_with_spaced_equals() {
        let (config, _) =
            parse_ok("node addr=10.0.0.9 port=7 id=9\nnode id = 8 addr= 10.0.0.8 port =6\n");
        assert_eq!(
            config.nodes[0],
            NodeEntry {
                id: 9,
                addr: "10.0.0.9".into(),
                port: Some(7),
                line: 1
            }
        );
        assert_eq!(
            config.nodes[1],
            NodeEntry {
                id: 8,
                addr: "10.0.0.8".into(),
                port: Some(6),
                line: 2
            }
        );
    }

    #[test]
    fn node_mark_is_accepted_with_a_warning() {
        let (config, warnings) = parse_ok("node id=1 addr=10.0.0.1 mark=42\n");
        assert_eq!(config.nodes.len(), 1);
        assert_eq!(
            warnings,
            vec![format!(
                "{PATH}:1: 'mark' is a dlm_controld setting; udlm ignores it"
            )]
        );
    }

    #[test]
    fn lockspace_both_forms() {
        let (config, _) = parse_ok(&with_nodes(
            "lockspace name=alpha nodir=1\nlockspace beta nodir=1\nlockspace gamma\nlockspace name=delta nodir=0\n",
        ));
        let summary: Vec<(&str, bool, usize)> = config
            .lockspaces
            .iter()
            .map(|l| (l.name.as_str(), l.nodir, l.line))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("alpha", true, 3),
                ("beta", true, 4),
                ("gamma", false, 5),
                ("delta", false, 6)
            ]
        );
        assert!(config.nodir("alpha") && config.nodir("beta"));
        assert!(!config.nodir("gamma") && !config.nodir("delta") && !config.nodir("unlisted"));
    }

    #[test]
    fn lockspace_name_of_64_bytes_is_accepted() {
        let name = "x".repeat(64);
        let (config, _) = parse_ok(&with_nodes(&format!("lockspace {name}\n")));
        assert_eq!(config.lockspaces[0].name, name);
    }

    #[test]
    fn master_both_forms_and_default_weight() {
        let (config, _) = parse_ok(&with_nodes(
            "master ls=alpha node=1 weight=3\nmaster alpha node=2\nmaster beta node=2 weight=0\n",
        ));
        let summary: Vec<(&str, u32, u32, usize)> = config
            .masters
            .iter()
            .map(|m| (m.ls.as_str(), m.node, m.weight, m.line))
            .collect();
        assert_eq!(
            summary,
            vec![("alpha", 1, 3, 3), ("alpha", 2, 1, 4), ("beta", 2, 0, 5)]
        );
    }

    #[test]
    fn master_line_may_precede_its_node_line() {
        let (config, _) = parse_ok("master ls=a node=2\nnode id=2 addr=10.0.0.2\n");
        assert_eq!(config.masters[0].node, 2);
    }

    #[test]
    fn dlm_controld_settings_are_ignored_with_a_warning() {
        for (index, key) in DLM_CONTROLD_ONLY.iter().enumerate() {
            let text = format!("{TWO_NODES}{key}=1\n");
            let (config, warnings) = parse_ok(&text);
            assert_eq!(config.port, DEFAULT_PORT, "{key}");
            assert_eq!(
                warnings,
                vec![format!(
                    "{PATH}:3: '{key}' is a dlm_controld setting; udlm ignores it"
                )],
                "#{index}"
            );
        }
    }

    #[test]
    fn fencing_lines_are_ignored_with_a_warning() {
        let text = with_nodes(
            "device foo fence_foo ipaddr=1.1.1.1 login=x password=y\nconnect foo node=1 port=1\n\
             fence_all /usr/sbin/dlm_stonith\nunfence_all\nprotocol=tcp\nlog_debug = 1\n",
        );
        let (_, warnings) = parse_ok(&text);
        let expected: Vec<String> = [
            (3, "device"),
            (4, "connect"),
            (5, "fence_all"),
            (6, "unfence_all"),
            (7, "protocol"),
            (8, "log_debug"),
        ]
        .iter()
        .map(|(line, key)| {
            format!("{PATH}:{line}: '{key}' is a dlm_controld setting; udlm ignores it")
        })
        .collect();
        assert_eq!(warnings, expected);
    }

    #[test]
    fn a_full_dlm_conf_with_udlm_node_lines() {
        let text = "\
# dlm_controld settings
log_debug=1
post_join_delay=10
protocol=tcp
enable_fencing=0

# udlm settings
cluster_name=lab
port=21064
node id=1 addr=127.0.0.1 mark=1
node id=2 addr=127.0.0.2
node id=3 addr=127.0.0.3 port=21070

lockspace foo nodir=1
master foo node=1 weight=2
master foo node=2 weight=1
";
        let (config, warnings) = parse_ok(text);
        assert_eq!(warnings.len(), 5);
        assert_eq!(config.nodes.len(), 3);
        assert!(config.nodir("foo"));
        assert_eq!(config.weights("foo"), vec![(1, 2), (2, 1), (3, 0)]);
        assert_eq!(config.weights("bar"), vec![(1, 1), (2, 1), (3, 1)]);
        assert_eq!(config.port_of(3), Some(21070));
        assert_eq!(config.port_of(2), Some(21064));
        assert_eq!(config.port_of(4), None);
    }

    #[test]
    fn the_example_of_docs_config_md_parses() {
        let doc = include_str!("../../docs/CONFIG.md");
        let start = doc
            .find("# /etc/udlm/lab.conf")
            .expect("the example is in docs/CONFIG.md");
        let example =
            &doc[start..start + doc[start..].find("```").expect("the example block ends")];
        let (config, warnings) = parse_ok(example);
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.cluster_name, "lab");
        assert_eq!(
            config.nodes.iter().map(|n| n.id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(config.nodir("locks"));
        assert_eq!(config.weights("locks"), vec![(1, 2), (2, 1), (3, 0)]);
        // All three addresses are local, so the id must come from DLM_NODEID.
        assert!(config.local_node_id_with(None).is_err());
        assert_eq!(config.local_node_id_with(Some("3")), Ok(3));
    }

    // ---- errors ----

    #[test]
    fn error_display_names_file_and_line() {
        let errors = parse_errors("node id=1 addr=10.0.0.1\nbogus=1\n");
        assert_eq!(
            errors[0].to_string(),
            format!("{PATH}:2: unknown setting 'bogus'")
        );
        let whole = ConfigError {
            path: PATH.into(),
            line: 0,
            message: "gone".into(),
        };
        assert_eq!(whole.to_string(), format!("{PATH}: gone"));
    }

    #[test]
    fn error_unparsable_line() {
        assert_one_error(&with_nodes("=5\n"), 3, "cannot parse this line");
        assert_one_error(&with_nodes("foo bar=1\n"), 3, "cannot parse this line");
    }

    #[test]
    fn error_missing_equals() {
        assert_one_error(&with_nodes("port 21064\n"), 3, "missing '=' after 'port'");
        assert_one_error(
            &with_nodes("heartbeat_ms\n"),
            3,
            "missing '=' after 'heartbeat_ms'",
        );
        assert_one_error(&with_nodes("gibberish\n"), 3, "missing '='");
    }

    #[test]
    fn error_unknown_setting() {
        assert_one_error(
            &with_nodes("no_such_key=1\n"),
            3,
            "unknown setting 'no_such_key'",
        );
        assert_one_error(&with_nodes("node=1\n"), 3, "'node' starts a node line");
    }

    #[test]
    fn error_setting_without_value() {
        assert_one_error(
            &with_nodes("cluster_name=\n"),
            3,
            "'cluster_name' has no value",
        );
    }

    #[test]
    fn error_bad_number() {
        assert_one_error(
            &with_nodes("heartbeat_ms=fast\n"),
            3,
            "'heartbeat_ms' must be a number, not 'fast'",
        );
        assert_one_error(
            &with_nodes("reconnect_ms=-5\n"),
            3,
            "'reconnect_ms' must be a number, not '-5'",
        );
        assert_one_error(&with_nodes("reconnect_ms=+5\n"), 3, "must be a number");
        assert_one_error(
            &with_nodes("reconnect_ms=99999999999999999999999\n"),
            3,
            "it must be from 1 to",
        );
        assert_one_error(
            &with_nodes("reconnect_ms=0\n"),
            3,
            "'reconnect_ms' is 0; it must be from 1 to",
        );
    }

    #[test]
    fn warning_lease_not_above_twice_peer_timeout() {
        let (_, warnings) = parse_ok(&with_nodes("peer_timeout_ms=1000\nlease_ms=2000\n"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0]
                .contains(":4: lease_ms (2000) is not more than twice peer_timeout_ms (1000)"),
            "{warnings:?}"
        );
        let (_, warnings) = parse_ok(&with_nodes("peer_timeout_ms=1000\nlease_ms=2001\n"));
        assert!(warnings.is_empty(), "{warnings:?}");
    }

    #[test]
    fn error_peer_timeout_not_above_heartbeat() {
        assert_one_error(
            &with_nodes("heartbeat_ms=2000\npeer_timeout_ms=2000\n"),
            4,
            "must be greater than heartbeat_ms",
        );
        assert_one_error(
            &with_nodes("heartbeat_ms=6000\n"),
            3,
            "peer_timeout_ms (1000) must be greater than heartbeat_ms (6000)",
        );
    }

    #[test]
    fn error_node_id_zero() {
        assert_one_error("node id=0 addr=10.0.0.1\n", 1, "node id 0 is not allowed");
        assert_one_error("node id=000 addr=10.0.0.1\n", 1, "node id 0 is not allowed");
    }

    #[test]
    fn error_node_id_missing() {
        assert_one_error(
            "node id=1 addr=10.0.0.1\nnode addr=10.0.0.2\n",
            2,
            "node line has no id",
        );
    }

    #[test]
    fn error_node_id_not_a_number() {
        assert_one_error(
            "node id=one addr=10.0.0.1\n",
            1,
            "'id' must be a number, not 'one'",
        );
        assert_one_error(
            "node id=4294967296 addr=10.0.0.1\n",
            1,
            "'id' is 4294967296; it must be from 1 to 4294967295",
        );
    }

    #[test]
    fn error_duplicate_node_id() {
        assert_one_error(
            "node id=1 addr=10.0.0.1\n\nnode id=1 addr=10.0.0.2\n",
            3,
            "duplicate node id 1 (first defined on line 1)",
        );
    }

    #[test]
    fn error_duplicate_node_address_and_port() {
        assert_one_error(
            "node id=1 addr=10.0.0.1\nnode id=2 addr=10.0.0.1\n",
            2,
            "node 2 has the same address and port as node 1 (line 1): 10.0.0.1 port 21064",
        );
        // The global port counts even when it is set after the node lines.
        assert_one_error(
            "node id=1 addr=10.0.0.1 port=9\nnode id=2 addr=10.0.0.1\nport=9\n",
            2,
            "port 9",
        );
        assert_one_error(
            "node id=1 addr=[fd00::1]\nnode id=2 addr=fd00:0::1\n",
            2,
            "same address and port as node 1",
        );
        assert_one_error(
            "node id=1 addr=Node1.example\nnode id=2 addr=node1.example.\n",
            2,
            "same address and port",
        );
        // Same address, different ports: several nodes on one machine.
        parse_ok("node id=1 addr=127.0.0.1 port=21064\nnode id=2 addr=127.0.0.1 port=21065\n");
    }

    #[test]
    fn error_missing_addr() {
        assert_one_error(
            "node id=1 addr=10.0.0.1\nnode id=2\n",
            2,
            "node 2 has no addr",
        );
        assert_one_error("node id=1 mark=3\n", 1, "node 1 has no addr");
    }

    #[test]
    fn error_bad_port() {
        assert_one_error(
            &with_nodes("port=0\n"),
            3,
            "'port' is 0; it must be from 1 to 65535",
        );
        assert_one_error(
            &with_nodes("port=65536\n"),
            3,
            "'port' is 65536; it must be from 1 to 65535",
        );
        assert_one_error(
            &with_nodes("tcp_port=http\n"),
            3,
            "'tcp_port' must be a number, not 'http'",
        );
        assert_one_error(
            "node id=1 addr=10.0.0.1 port=0\n",
            1,
            "'port' is 0; it must be from 1 to 65535",
        );
        assert_one_error("node id=1 addr=10.0.0.1 port=70000\n", 1, "'port' is 70000");
        parse_ok("node id=1 addr=10.0.0.1 port=65535\nport=1\n");
    }

    #[test]
    fn error_bad_addr() {
        let cases = [
            ("10.0.0.256", "not a valid IPv4 address"),
            ("10.0.0", "not a valid IPv4 address"),
            ("010.0.0.1", "not a valid IPv4 address"),
            ("bad_host", "only letters, digits"),
            ("-lead.example", "cannot start or end with '-'"),
            ("trail-.example", "cannot start or end with '-'"),
            ("a..b", "1 to 63 characters"),
            ("[fd00::1", "not a valid bracketed IPv6 address"),
            ("[10.0.0.1]", "not a valid bracketed IPv6 address"),
            ("1::2::3", "not a valid IPv6 address"),
            ("0.0.0.0", "not a unicast address"),
            ("::", "not a unicast address"),
            ("224.0.0.1", "not a unicast address"),
            ("255.255.255.255", "not a unicast address"),
            ("héllo", "only letters, digits"),
        ];
        for (addr, needle) in cases {
            assert_one_error(&format!("node id=1 addr={addr}\n"), 1, needle);
        }
        let long_label = format!("{}.example", "a".repeat(64));
        assert_one_error(
            &format!("node id=1 addr={long_label}\n"),
            1,
            "1 to 63 characters",
        );
        let long_name = ["abcdefghij"; 26].join(".");
        assert_one_error(
            &format!("node id=1 addr={long_name}\n"),
            1,
            "1 to 253 characters",
        );
        assert_one_error("node id=1 addr=\n", 1, "'addr' is empty");
    }

    #[test]
    fn error_master_names_an_unknown_node() {
        assert_one_error(
            &with_nodes("master ls=a node=3\n"),
            3,
            "names node 3, which has no node line",
        );
        assert_one_error(
            &with_nodes("master a node=0\n"),
            3,
            "node id 0 is not allowed",
        );
    }

    #[test]
    fn error_lockspace_name_empty() {
        assert_one_error(
            &with_nodes("lockspace name= nodir=1\n"),
            3,
            "the lockspace name is empty",
        );
        assert_one_error(
            &with_nodes("lockspace nodir=1\n"),
            3,
            "lockspace line has no name",
        );
        assert_one_error(
            &with_nodes("master ls= node=1\n"),
            3,
            "the lockspace name is empty",
        );
    }

    #[test]
    fn error_lockspace_name_too_long() {
        let name = "x".repeat(65);
        assert_one_error(
            &with_nodes(&format!("lockspace {name}\n")),
            3,
            "is 65 bytes long; at most 64",
        );
        assert_one_error(
            &with_nodes(&format!("master {name} node=1\n")),
            3,
            "is 65 bytes long; at most 64",
        );
    }

    #[test]
    fn error_duplicate_lockspace() {
        assert_one_error(
            &with_nodes("lockspace a\nlockspace name=a nodir=1\n"),
            4,
            "duplicate lockspace 'a' (first on line 3)",
        );
    }

    #[test]
    fn error_duplicate_master_line() {
        assert_one_error(
            &with_nodes("master a node=1\nmaster ls=a node=1 weight=2\n"),
            4,
            "duplicate master line for node 1",
        );
    }

    #[test]
    fn error_weight_not_a_number() {
        assert_one_error(
            &with_nodes("master a node=1 weight=heavy\n"),
            3,
            "'weight' must be a number, not 'heavy'",
        );
        assert_one_error(
            &with_nodes("master a node=1 weight=-1\n"),
            3,
            "'weight' must be a number",
        );
        assert_one_error(
            &with_nodes("master a node=1 weight=4294967296\n"),
            3,
            "'weight' is 4294967296",
        );
    }

    #[test]
    fn error_master_line_incomplete() {
        assert_one_error(
            &with_nodes("master node=1\n"),
            3,
            "master line names no lockspace",
        );
        assert_one_error(&with_nodes("master a\n"), 3, "master line has no node");
        assert_one_error(
            &with_nodes("master a ls=b node=1\n"),
            3,
            "attribute 'ls' is given twice",
        );
    }

    #[test]
    fn error_unknown_attribute() {
        assert_one_error(
            "node id=1 addr=10.0.0.1 colour=red\n",
            1,
            "unknown attribute 'colour' on a node line",
        );
        assert_one_error(
            &with_nodes("lockspace a dir=0\n"),
            3,
            "unknown attribute 'dir' on a lockspace line",
        );
        assert_one_error(
            &with_nodes("master a node=1 wieght=2\n"),
            3,
            "unknown attribute 'wieght' on a master line",
        );
    }

    #[test]
    fn error_bad_nodir() {
        assert_one_error(
            &with_nodes("lockspace a nodir=yes\n"),
            3,
            "'nodir' must be 0 or 1, not 'yes'",
        );
    }

    #[test]
    fn error_attribute_given_twice() {
        assert_one_error(
            "node id=1 id=2 addr=10.0.0.1\n",
            1,
            "attribute 'id' is given twice",
        );
    }

    #[test]
    fn error_equals_without_attribute_name() {
        assert_one_error(
            "node id=1 =2 addr=10.0.0.1\n",
            1,
            "'=2' has no attribute name before its '='",
        );
        assert_one_error(
            "master a node=1 =2\n",
            1,
            "'=2' has no attribute name before its '='",
        );
    }

    #[test]
    fn error_value_with_embedded_whitespace() {
        assert_one_error(
            &with_nodes("key_file=/etc/my key\n"),
            3,
            "the value of 'key_file' contains whitespace",
        );
        assert_one_error(
            &with_nodes("cluster_name = my cluster\n"),
            3,
            "the value of 'cluster_name' contains whitespace",
        );
        assert_one_error(
            "node id=1 addr=my host\n",
            1,
            "unexpected 'host' on a node line",
        );
        assert_one_error(
            &with_nodes("lockspace a b\n"),
            3,
            "unexpected 'b' on a lockspace line",
        );
        assert_one_error(
            &with_nodes("master a b node=1\n"),
            3,
            "unexpected 'b' on a master line",
        );
    }

    #[test]
    fn error_cluster_name_too_long() {
        parse_ok(&with_nodes(&format!("cluster_name={}\n", "c".repeat(64))));
        assert_one_error(
            &with_nodes(&format!("cluster_name={}\n", "c".repeat(65))),
            3,
            "cluster_name is 65 bytes long; at most 64",
        );
    }

    #[test]
    fn error_cluster_name_bad_characters() {
        for name in ["a/b", "a:b", "ünï", "a$b"] {
            assert_one_error(
                &with_nodes(&format!("cluster_name={name}\n")),
                3,
                "may only contain letters, digits",
            );
        }
    }

    #[test]
    fn all_errors_are_collected_in_file_order() {
        let text = "master a node=9\nnode id=1 addr=10.0.0.1\nbogus=1\nport=0\nnode id=1 addr=10.0.0.2\nlockspace\n";
        let errors = parse_errors(text);
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 3, 4, 5, 6], "{errors:#?}");
        assert!(errors[0].message.contains("names node 9"));
        assert!(errors[1].message.contains("unknown setting 'bogus'"));
        assert!(errors[2].message.contains("'port' is 0"));
        assert!(errors[3].message.contains("duplicate node id 1"));
        assert!(errors[4].message.contains("lockspace line has no name"));
    }

    #[test]
    fn a_bad_node_line_is_reported_once_and_not_as_missing_later() {
        // The id is valid, so the node counts as defined: no "unknown node"
        // error for the master line on top of the address error.
        assert_one_error(
            "node id=1 addr=bad_host\nmaster a node=1\n",
            1,
            "only letters",
        );
    }

    #[test]
    fn a_line_error_does_not_hide_cross_line_errors() {
        let text = "node id=1 addr=10.0.0.1\nnode id=2 addr=10.0.0.1 colour=red\nmaster a node=7 weight=x\n";
        let errors = parse_errors(text);
        let found: Vec<(usize, &str)> = errors
            .iter()
            .map(|e| (e.line, e.message.as_str()))
            .collect();
        assert_eq!(found.len(), 4, "{errors:#?}");
        assert!(
            found[0].0 == 2 && found[0].1.contains("unknown attribute 'colour'"),
            "{found:?}"
        );
        assert!(
            found[1].0 == 2 && found[1].1.contains("same address and port as node 1"),
            "{found:?}"
        );
        assert!(
            found[2].0 == 3 && found[2].1.contains("'weight' must be a number"),
            "{found:?}"
        );
        assert!(
            found[3].0 == 3 && found[3].1.contains("names node 7, which has no node line"),
            "{found:?}"
        );
    }

    // ---- files and the environment ----

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("udlm-config-test-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn load_reads_and_names_the_file() {
        let dir = scratch_dir("load");
        let path = dir.join("dlm.conf");
        std::fs::write(&path, "node id=1 addr=10.0.0.1\nkey_file=k\nbogus\n").unwrap();
        let errors = Config::load(&path).unwrap_err();
        assert_eq!(
            errors[0].to_string(),
            format!(
                "{}:3: missing '=': expected 'setting=value' or a node, lockspace or master line",
                path.display()
            )
        );
        std::fs::write(&path, "node id=1 addr=10.0.0.1\nkey_file=k\n").unwrap();
        let (config, _) = Config::load(&path).unwrap();
        assert_eq!(config.source.as_deref(), Some(path.as_path()));
        assert_eq!(config.key_file, Some(dir.join("k")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn load_missing_file_is_an_error_naming_it() {
        let path = scratch_dir("missing").join("absent.conf");
        let errors = Config::load(&path).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].line, 0);
        assert!(errors[0]
            .to_string()
            .starts_with(&format!("{}: cannot read the config file", path.display())));
    }

    #[test]
    fn load_rejects_invalid_utf8_and_huge_files() {
        let dir = scratch_dir("bytes");
        let path = dir.join("dlm.conf");
        std::fs::write(&path, b"port=1\nnode id=1 addr=\xff\n").unwrap();
        let errors = Config::load(&path).unwrap_err();
        assert_eq!(
            (errors[0].line, errors[0].message.as_str()),
            (2, "the line is not valid UTF-8")
        );
        std::fs::write(&path, vec![b'#'; MAX_CONFIG_BYTES as usize + 1]).unwrap();
        let errors = Config::load(&path).unwrap_err();
        assert!(errors[0].message.contains("larger than"), "{errors:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn from_env_with_prefers_dlm_conf_then_default_then_single_node() {
        let dir = scratch_dir("env");
        let named = dir.join("named.conf");
        let default = dir.join("default.conf");
        std::fs::write(&named, "node id=7 addr=10.0.0.7\n").unwrap();
        std::fs::write(&default, "node id=8 addr=10.0.0.8\n").unwrap();

        let (config, _) = Config::from_env_with(Some(named.as_os_str()), &default).unwrap();
        assert_eq!(config.nodes[0].id, 7);
        let (config, _) = Config::from_env_with(None, &default).unwrap();
        assert_eq!(config.nodes[0].id, 8);
        let (config, _) = Config::from_env_with(Some(OsStr::new("")), &default).unwrap();
        assert_eq!(config.nodes[0].id, 8);

        let absent = dir.join("absent.conf");
        let (config, warnings) = Config::from_env_with(None, &absent).unwrap();
        assert_eq!(config, Config::single_node());
        assert!(warnings.is_empty());

        let errors = Config::from_env_with(Some(absent.as_os_str()), &default).unwrap_err();
        assert!(
            errors[0].message.contains("named by DLM_CONF"),
            "{errors:?}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // ---- look-ups ----

    #[test]
    fn node_and_peer_addrs() {
        let text = "port=3000\nnode id=1 addr=127.0.0.1 port=4000\nnode id=2 addr=127.0.0.2\n\
                    node id=3 addr=[::1] port=5000\nnode id=4 addr=localhost\n";
        let (config, _) = parse_ok(text);
        assert_eq!(config.node(2).map(|n| n.line), Some(3));
        assert!(config.node(9).is_none());
        assert_eq!(
            config.peer_addrs(1),
            vec!["127.0.0.1:4000".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            config.peer_addrs(2),
            vec!["127.0.0.2:3000".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            config.peer_addrs(3),
            vec!["[::1]:5000".parse::<SocketAddr>().unwrap()]
        );
        let localhost = config.peer_addrs(4);
        assert!(
            !localhost.is_empty()
                && localhost
                    .iter()
                    .all(|a| a.ip().is_loopback() && a.port() == 3000),
            "{localhost:?}"
        );
        assert!(config.peer_addrs(9).is_empty());
    }

    #[test]
    fn weights_with_and_without_master_lines() {
        let text = "node id=3 addr=10.0.0.3\nnode id=1 addr=10.0.0.1\nnode id=2 addr=10.0.0.2\n\
                    master big node=3 weight=5\nmaster big node=1\n";
        let (config, _) = parse_ok(text);
        assert_eq!(config.weights("big"), vec![(1, 1), (2, 0), (3, 5)]);
        assert_eq!(config.weights("plain"), vec![(1, 1), (2, 1), (3, 1)]);
        assert_eq!(
            (
                config.weight("big", 2),
                config.weight("big", 3),
                config.weight("plain", 2)
            ),
            (0, 5, 1)
        );
        assert_eq!(config.weight("big", 99), 0);
    }

    // ---- directory hashing ----

    #[test]
    fn name_hash_matches_the_published_one_at_a_time_values() {
        assert_eq!(name_hash(b""), 0);
        assert_eq!(name_hash(b"a"), 0xca2e_9442);
        assert_eq!(
            name_hash(b"The quick brown fox jumps over the lazy dog"),
            0x519e_91f5
        );
    }

    #[test]
    fn directory_node_without_members_is_none() {
        assert_eq!(directory_node(b"res", &[]), None);
    }

    #[test]
    fn directory_node_single_member_is_everything() {
        for i in 0..100 {
            assert_eq!(
                directory_node(format!("r{i}").as_bytes(), &[(7, 1)]),
                Some(7)
            );
            assert_eq!(
                directory_node(format!("r{i}").as_bytes(), &[(7, 0)]),
                Some(7)
            );
        }
    }

    fn tally(members: &[(u32, u32)], names: usize) -> HashMap<u32, usize> {
        let mut counts = HashMap::new();
        for i in 0..names {
            let node = directory_node(format!("resource-{i}").as_bytes(), members).unwrap();
            *counts.entry(node).or_insert(0) += 1;
        }
        counts
    }

    #[test]
    fn directory_node_spreads_names_evenly() {
        let counts = tally(&[(1, 1), (2, 1), (3, 1)], 3000);
        for id in 1..=3 {
            let n = counts.get(&id).copied().unwrap_or(0);
            assert!(
                (850..=1150).contains(&n),
                "node {id} got {n} of 3000: {counts:?}"
            );
        }
        // All weights 0: each node counts once, as with weight 1.
        assert_eq!(tally(&[(1, 0), (2, 0), (3, 0)], 3000), counts);
    }

    #[test]
    fn directory_node_respects_weights() {
        let counts = tally(&[(1, 0), (2, 3), (3, 1)], 4000);
        assert_eq!(counts.get(&1), None, "{counts:?}");
        let (two, three) = (
            counts.get(&2).copied().unwrap_or(0),
            counts.get(&3).copied().unwrap_or(0),
        );
        assert!(
            (2750..=3250).contains(&two) && (750..=1250).contains(&three),
            "{counts:?}"
        );
        // Huge weights neither overflow nor allocate.
        let counts = tally(&[(1, u32::MAX), (2, u32::MAX)], 200);
        assert_eq!(counts.values().sum::<usize>(), 200);
    }

    #[test]
    fn directory_node_known_values() {
        // Fixed so that a change of hash or of the slot rule is noticed: all
        // nodes of a cluster must agree, across versions too.
        let members = [(1, 1), (2, 1), (3, 1)];
        let names: [&[u8]; 6] = [
            b"a",
            b"res",
            b"lvm_global",
            b"The quick brown fox jumps over the lazy dog",
            b"",
            b"\x00\xff",
        ];
        let got: Vec<(u32, Option<u32>)> = names
            .iter()
            .map(|n| (name_hash(n), directory_node(n, &members)))
            .collect();
        assert_eq!(got, KNOWN_VALUES.to_vec());
    }

    const KNOWN_VALUES: [(u32, Option<u32>); 6] = [
        (0xca2e_9442, Some(3)),
        (0x1768_b047, Some(2)),
        (0xb654_7b51, Some(3)),
        (0x519e_91f5, Some(3)),
        (0, Some(1)),
        (0xc7b2_0f1d, Some(3)),
    ];

    // ---- local node id ----

    fn config_of(text: &str) -> Config {
        parse_ok(text).0
    }

    #[test]
    fn local_node_id_from_the_environment() {
        let config = config_of(TWO_NODES);
        assert_eq!(config.local_node_id_with(Some("2")), Ok(2));
        assert_eq!(config.local_node_id_with(Some(" 1 ")), Ok(1));
        let unknown = config.local_node_id_with(Some("3")).unwrap_err();
        assert_eq!(
            unknown,
            format!("DLM_NODEID=3, but {PATH} has no node 3 (its nodes: 1, 2)")
        );
        for bad in ["0", "x", "-1", "+1", "4294967296"] {
            let message = config.local_node_id_with(Some(bad)).unwrap_err();
            assert!(message.contains("is not a node id"), "{bad}: {message}");
        }
        // Without node lines any id is this host's.
        assert_eq!(config_of("").local_node_id_with(Some("42")), Ok(42));
        assert_eq!(config_of("").local_node_id_with(None), Ok(1));
    }

    /// Two addresses this machine does not have, from the documentation
    /// ranges (RFC 5737). Test machines may use those ranges themselves (one
    /// has 192.0.2.2), so they are checked, not assumed; binding sends nothing.
    fn foreign_addrs() -> [String; 2] {
        let mut found = ["192.0.2", "198.51.100", "203.0.113"]
            .iter()
            .flat_map(|net| [201, 202, 1, 3].map(|host| format!("{net}.{host}")))
            .filter(|addr| addr.parse().is_ok_and(|ip| !is_local_address(ip)));
        match (found.next(), found.next()) {
            (Some(a), Some(b)) => [a, b],
            _ => panic!("this machine owns every documentation address tried"),
        }
    }

    #[test]
    fn local_node_id_by_local_address() {
        assert!(is_local_address("127.0.0.1".parse().unwrap()));
        let [a, b] = foreign_addrs();
        assert!(!is_local_address(a.parse().unwrap()));
        let config = config_of(&format!(
            "node id=1 addr={a}\nnode id=2 addr=127.0.0.1\nnode id=3 addr={b}\n"
        ));
        assert_eq!(config.local_node_id_with(None), Ok(2));
        assert_eq!(config.local_node_id_with(Some("")), Ok(2));
        assert_eq!(
            config_of(&format!("node id=5 addr=localhost\nnode id=6 addr={a}\n"))
                .local_node_id_with(None),
            Ok(5)
        );
        assert_eq!(Config::single_node().local_node_id_with(None), Ok(1));
    }

    #[test]
    fn local_node_id_needs_exactly_one_local_node() {
        let [a, b] = foreign_addrs();
        let none = config_of(&format!("node id=1 addr={a}\nnode id=2 addr={b}\n"))
            .local_node_id_with(None)
            .unwrap_err();
        assert!(
            none.contains("none of the node addresses") && none.contains("set DLM_NODEID"),
            "{none}"
        );
        let config = config_of(&format!(
            "node id=1 addr=127.0.0.1\nnode id=2 addr=127.0.0.1 port=2\nnode id=3 addr={a}\n"
        ));
        let several = config.local_node_id_with(None).unwrap_err();
        assert!(
            several.starts_with("nodes 1, 2 in") && several.contains("set DLM_NODEID"),
            "{several}"
        );
    }

    // ---- robustness ----

    /// SplitMix64: a fixed-seed generator, so a failure replays exactly.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    const VALID: &str = "\
cluster_name=lab
key_file=key
port=21064
heartbeat_ms=500
node id=1 addr=127.0.0.1 mark=3
node id=2 addr=[::1] port=21070
node id=3 addr=node3.example
lockspace foo nodir=1
lockspace name=bar
master foo node=1 weight=2
master ls=foo node=2
log_debug=1
";

    #[test]
    fn random_mutations_never_panic() {
        let pieces = [
            "=",
            "#",
            " ",
            "\t",
            "\n",
            "[",
            "]",
            ":",
            "0",
            "9",
            "65536",
            "node",
            "id=",
            "addr=",
            "é",
            "\u{fffd}",
            "master",
            "lockspace",
            "x",
        ];
        let mut rng = Rng(0x5eed);
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..2000 {
            let mut text: Vec<char> = VALID.chars().collect();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(text.len() + 1);
                match rng.below(4) {
                    0 if !text.is_empty() => {
                        let end = (at + 1 + rng.below(8)).min(text.len());
                        text.drain(at.min(end)..end);
                    }
                    1 => {
                        let piece = pieces[rng.below(pieces.len())];
                        text.splice(at..at, piece.chars());
                    }
                    2 if at < text.len() => {
                        text[at] = char::from_u32(rng.next() as u32 % 0x250).unwrap_or('?')
                    }
                    _ => {
                        let start = rng.below(text.len());
                        let copy: Vec<char> =
                            text[start..(start + rng.below(30)).min(text.len())].to_vec();
                        text.splice(at..at, copy);
                    }
                }
            }
            let text: String = text.into_iter().collect();
            match Config::parse(&text, Path::new(PATH)) {
                Ok((config, _)) => {
                    accepted += 1;
                    for node in &config.nodes {
                        let _ = directory_node(node.addr.as_bytes(), &config.weights("foo"));
                    }
                }
                Err(errors) => {
                    rejected += 1;
                    assert!(errors.iter().all(|e| !e.message.is_empty()));
                }
            }
        }
        // Both outcomes must occur, or the mutations test nothing.
        assert!(
            accepted > 0 && rejected > 0,
            "accepted {accepted}, rejected {rejected}"
        );
    }
}
