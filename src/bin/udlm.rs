//! `udlm`, the administration tool: what this host's node knows (`status`,
//! `ls`, `lockdump`), whether a config file is right (`config check`), and
//! which nodes the node works with (`node list|add|remove|fenced`,
//! `reload`: the control protocol, udlm/control.rs).
//!
//! The node answers read-only queries over its local socket with JSON
//! documents ([`udlm::client::query`]); `--json` prints them as they come,
//! otherwise this file formats them for people. It depends on nothing but
//! std and the udlm crate, so the JSON reader below is a small hand-written
//! one (the documents are the node's own, but it is strict all the same).
//!
//! Exit status: 0 done; 1 the node or the config said no (not running,
//! no such lockspace, config errors, ...); 2 the command line is wrong.
//! Every failure is one sentence on stderr.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use udlm::cluster::config::{Config, ConfigError, DEFAULT_CONFIG_PATH};
use udlm::proto::Query;
use udlm::types::Errno;

const USAGE: &str = "\
usage: udlm [--json] COMMAND [ARGUMENTS]

Shows what the udlm node of this host knows, checks config files, and
changes the nodes the node works with.

commands:
  status               this node: its id and address, the cluster's nodes and
                       which are connected, quorum, the lockspaces and their
                       members
  ls                   the lockspaces of this node, with their numbers of open
                       handles, locks and resources
  lockdump LOCKSPACE   every resource of LOCKSPACE: its master, LVB, and the
                       granted, converting and waiting locks (id, modes, flags,
                       owner pid and node)
  lockdump LOCKSPACE RESOURCE
                       one resource as its master sees it, wherever that is
                       (the query call of udlm.h(3))
  leave LOCKSPACE      destroy LOCKSPACE on this node, with its orphan locks
                       (dlm_tool leave; after lvmlockd died, say)
  config check [FILE]  parse a config file and report every problem with its
                       line; without FILE, the config udlmd would read
                       (DLM_CONF, else /etc/dlm/dlm.conf, else none)
  node list            the nodes this node works with: address, port, whether
                       connected and a member; where membership comes from
  node add ID ADDRESS [PORT]
                       add node ID, listening at ADDRESS (IP or host name) and
                       PORT (default: the config's port); tell every node
  node remove ID       remove node ID, once it is stopped, dead past its lease,
                       or declared fenced; tell every node
  node fenced ID       node ID is dead and fenced: recover its locks now,
                       without waiting for its lease
  reload               read the config file again and apply the changes in its
                       node lines (as SIGHUP does)
  help                 this text

options:
  --json               print one JSON document for machines
  -h, --help           this text

node and reload are for root and the user udlmd runs as. The node is found
in DLM_RUN_DIR (default /run/udlm for root, else $XDG_RUNTIME_DIR/udlm).
Exit status: 0 done, 1 failed, 2 wrong usage. See udlm(8).
";

/// A failure: the sentence for stderr and the exit status.
struct Failure {
    message: String,
    status: i32,
}

impl Failure {
    fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            status: 1,
        }
    }
    fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: format!("{}\nTry 'udlm --help'.", message.into()),
            status: 2,
        }
    }
}

/// What a run prints: the text for stdout, lines for stderr, the status.
#[derive(Default)]
struct Output {
    out: String,
    err: String,
    status: i32,
}

enum Command {
    Help,
    Status,
    Ls,
    Lockdump(Vec<u8>),
    /// `lockdump LS RESOURCE`: one resource as its master sees it.
    Resource(Vec<u8>, Vec<u8>),
    Leave(Vec<u8>),
    ConfigCheck(Option<PathBuf>),
    Control(udlm::control::Op),
}

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let result = parse_args(&args).and_then(|(cmd, json)| run(cmd, json));
    let output = match result {
        Ok(o) => o,
        Err(f) => Output {
            out: String::new(),
            err: format!("udlm: {}\n", f.message),
            status: f.status,
        },
    };
    // A closed stdout (`udlm lockdump x | head`) is not an error to report.
    let _ = std::io::stdout().lock().write_all(output.out.as_bytes());
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().lock().write_all(output.err.as_bytes());
    std::process::exit(output.status);
}

fn parse_args(args: &[std::ffi::OsString]) -> Result<(Command, bool), Failure> {
    let mut json = false;
    let mut words: Vec<&std::ffi::OsStr> = Vec::new();
    let mut options_done = false;
    for a in args {
        let bytes = a.as_bytes();
        if !options_done && bytes.starts_with(b"-") && bytes.len() > 1 {
            match bytes {
                b"--json" => json = true,
                b"-h" | b"--help" => return Ok((Command::Help, json)),
                b"--" => options_done = true,
                _ => {
                    return Err(Failure::usage(format!(
                        "unknown option '{}'.",
                        a.to_string_lossy()
                    )))
                }
            }
        } else {
            words.push(a.as_os_str());
        }
    }
    let Some((first, rest)) = words.split_first() else {
        return Err(Failure::usage(
            "a command is missing: status, ls, lockdump, leave, config check, node, reload or help.",
        ));
    };
    let extra = |n: usize, what: &str| -> Result<(), Failure> {
        if rest.len() > n {
            Err(Failure::usage(format!(
                "'{}' takes {what}; '{}' is one argument too many.",
                first.to_string_lossy(),
                rest[n].to_string_lossy()
            )))
        } else {
            Ok(())
        }
    };
    let cmd = match first.as_bytes() {
        b"help" => Command::Help,
        b"status" => {
            extra(0, "no argument")?;
            Command::Status
        }
        b"ls" => {
            extra(0, "no argument")?;
            Command::Ls
        }
        b"lockdump" => {
            extra(2, "the lockspace and at most one resource name")?;
            let name = lockspace_arg("lockdump", rest.first().copied())?;
            match rest.get(1) {
                None => Command::Lockdump(name),
                Some(r) => {
                    let r = r.as_bytes().to_vec();
                    if r.is_empty() || r.len() > udlm::types::RESNAME_MAXLEN {
                        return Err(Failure::usage(format!(
                            "a resource name is 1 to {} bytes long.",
                            udlm::types::RESNAME_MAXLEN
                        )));
                    }
                    Command::Resource(name, r)
                }
            }
        }
        b"leave" => {
            extra(1, "one argument, the lockspace")?;
            let name = lockspace_arg("leave", rest.first().copied())?;
            Command::Leave(name)
        }
        b"config" => match rest.first().map(|w| w.as_bytes()) {
            Some(b"check") => {
                extra(2, "at most one argument, the file")?;
                Command::ConfigCheck(rest.get(1).map(PathBuf::from))
            }
            Some(other) => {
                return Err(Failure::usage(format!(
                    "unknown config command '{}'; the only one is 'config check [FILE]'.",
                    String::from_utf8_lossy(other)
                )))
            }
            None => {
                return Err(Failure::usage(
                    "'config' needs a command: 'config check [FILE]'.",
                ))
            }
        },
        b"reload" => {
            extra(0, "no argument")?;
            Command::Control(udlm::control::Op::Reload)
        }
        b"node" => Command::Control(node_command(rest)?),
        other => {
            return Err(Failure::usage(format!(
            "unknown command '{}'; the commands are status, ls, lockdump, leave, config check, node, reload and help.",
            String::from_utf8_lossy(other)
        )))
        }
    };
    Ok((cmd, json))
}

/// `node list | add ID ADDRESS [PORT] | remove ID | fenced ID`.
fn node_command(words: &[&std::ffi::OsStr]) -> Result<udlm::control::Op, Failure> {
    use udlm::control::Op;
    let verb = words.first().map(|w| w.to_string_lossy().into_owned());
    let args = words.get(1..).unwrap_or(&[]);
    let count = |n: std::ops::RangeInclusive<usize>, form: &str| -> Result<(), Failure> {
        if n.contains(&args.len()) {
            Ok(())
        } else {
            Err(Failure::usage(format!("the form is 'udlm node {form}'.")))
        }
    };
    let id = |w: &std::ffi::OsStr| -> Result<u32, Failure> {
        let t = w.to_string_lossy();
        match t.parse::<u32>() {
            Ok(v) if v > 0 && !t.starts_with('+') => Ok(v),
            _ => Err(Failure::usage(format!(
                "'{t}' is not a node id (a whole number from 1 to 4294967295)."
            ))),
        }
    };
    match verb.as_deref() {
        Some("list") => {
            count(0..=0, "list")?;
            Ok(Op::List)
        }
        Some("add") => {
            count(2..=3, "add ID ADDRESS [PORT]")?;
            let address = args[1].to_string_lossy().into_owned();
            let port = match args.get(2) {
                None => 0,
                Some(p) => {
                    let t = p.to_string_lossy();
                    match t.parse::<u16>() {
                        Ok(v) if v > 0 && !t.starts_with('+') => v,
                        _ => {
                            return Err(Failure::usage(format!(
                                "'{t}' is not a port (1 to 65535)."
                            )))
                        }
                    }
                }
            };
            if address.is_empty() || address.len() > udlm::control::MAX_ADDRESS_LEN {
                return Err(Failure::usage(format!(
                    "an address is 1 to {} characters long.",
                    udlm::control::MAX_ADDRESS_LEN
                )));
            }
            Ok(Op::Add {
                id: id(args[0])?,
                address,
                port,
            })
        }
        Some("remove") => {
            count(1..=1, "remove ID")?;
            Ok(Op::Remove { id: id(args[0])? })
        }
        Some("fenced") => {
            count(1..=1, "fenced ID")?;
            Ok(Op::Fenced { id: id(args[0])? })
        }
        Some(other) => Err(Failure::usage(format!(
            "unknown node command '{other}'; they are list, add, remove and fenced."
        ))),
        None => Err(Failure::usage(
            "'node' needs a command: list, add, remove or fenced.",
        )),
    }
}

/// The lockspace named after `verb`: present, and 1 to LOCKSPACE_LEN bytes.
fn lockspace_arg(verb: &str, word: Option<&std::ffi::OsStr>) -> Result<Vec<u8>, Failure> {
    let Some(word) = word else {
        return Err(Failure::usage(format!(
            "'{verb}' needs the name of a lockspace (udlm ls lists them)."
        )));
    };
    let name = word.as_bytes().to_vec();
    if name.is_empty() || name.len() > udlm::types::LOCKSPACE_LEN {
        return Err(Failure::usage(format!(
            "a lockspace name is 1 to {} bytes long; '{}' is {}.",
            udlm::types::LOCKSPACE_LEN,
            String::from_utf8_lossy(&name),
            name.len()
        )));
    }
    Ok(name)
}

fn run(cmd: Command, json: bool) -> Result<Output, Failure> {
    match cmd {
        Command::Help => Ok(Output {
            out: USAGE.to_string(),
            ..Output::default()
        }),
        Command::Status => node_query(&Query::Status, json, format_status),
        Command::Ls => node_query(&Query::Lockspaces, json, format_lockspaces),
        Command::Lockdump(name) => {
            let query = Query::Lockdump(name);
            node_query(&query, json, format_lockdump)
        }
        Command::ConfigCheck(file) => Ok(config_check(file.as_deref(), json)),
        Command::Leave(name) => leave(&name, json),
        Command::Control(op) => control(&op, json),
        Command::Resource(ls, name) => resource(&ls, &name, json),
    }
}

/// `udlm lockdump LS RESOURCE`: the query call (node/inspect.rs) through a
/// handle of LS, so the resource's master answers wherever it is.
fn resource(ls: &[u8], name: &[u8], json: bool) -> Result<Output, Failure> {
    use udlm::node::inspect::{QUEUE_CONVERT, QUEUE_GRANTED};
    // Never start a node just to ask it something.
    udlm::client::query(&Query::Lockspaces).map_err(|e| query_failure(&Query::Lockspaces, e))?;
    let lsname = String::from_utf8_lossy(ls).into_owned();
    let conn = udlm::client::Connection::open(ls, None).map_err(|e| {
        Failure::new(match e {
            udlm::types::Errno::NoEnt => format!("there is no lockspace '{lsname}' on this node."),
            udlm::types::Errno::Acces | udlm::types::Errno::Perm => {
                format!("lockspace '{lsname}' does not let this user in.")
            }
            e => format!("cannot open lockspace '{lsname}': {}.", e.to_raw()),
        })
    })?;
    let shown = String::from_utf8_lossy(name).into_owned();
    let v = conn.inspect(0, name);
    conn.close();
    let v = v.map_err(|e| {
        Failure::new(match e {
            udlm::types::Errno::NoEnt => {
                format!("no node masters '{shown}' in '{lsname}': it has no locks.")
            }
            udlm::types::Errno::Again => {
                "the resource's master did not answer in time.".to_string()
            }
            e => format!("the query failed: errno {}.", e.to_raw()),
        })
    })?;
    let mode = |m: i8| match m {
        0 => "NL",
        1 => "CR",
        2 => "CW",
        3 => "PR",
        4 => "PW",
        5 => "EX",
        _ => "-",
    };
    let queue = |q: u8| match q {
        QUEUE_GRANTED => "granted",
        QUEUE_CONVERT => "converting",
        _ => "waiting",
    };
    let lvb_hex: Option<String> = v
        .lvb
        .map(|b| b.iter().map(|x| format!("{x:02x}")).collect());
    let mut out = String::new();
    if json {
        out.push_str(&format!(
            "{{\"lockspace\":{},\"resource\":{},\"master\":{},\"lvb\":{},\"lvb_valid\":{},\"locks_total\":{},\"locks\":[",
            json_string(&lsname),
            json_string(&shown),
            v.master,
            lvb_hex.as_deref().map_or("null".to_string(), json_string),
            v.lvb_valid,
            v.nlocks
        ));
        for (i, l) in v.locks.iter().enumerate() {
            out.push_str(&format!(
                "{}{{\"node\":{},\"id\":{},\"queue\":\"{}\",\"granted\":{},\"requested\":{},\"flags\":\"{:#x}\",\"pid\":{},\"orphan\":{}}}",
                if i == 0 { "" } else { "," },
                l.node,
                l.lkid,
                queue(l.queue),
                if l.granted < 0 { "null".into() } else { json_string(mode(l.granted)) },
                if l.requested < 0 { "null".into() } else { json_string(mode(l.requested)) },
                l.flags,
                l.pid,
                l.orphan
            ));
        }
        out.push_str("]}\n");
    } else {
        out.push_str(&format!(
            "resource '{shown}' of lockspace '{lsname}': master node {}, LVB {}{}, {} lock(s)\n",
            v.master,
            lvb_hex.as_deref().unwrap_or("none"),
            if v.lvb_valid { "" } else { " (not valid)" },
            v.nlocks
        ));
        for l in &v.locks {
            out.push_str(&format!(
                "  {:<10} node {} lock {:<6} granted {:<2} requested {:<2} flags {:#x} pid {}{}\n",
                queue(l.queue),
                l.node,
                l.lkid,
                mode(l.granted),
                mode(l.requested),
                l.flags,
                l.pid,
                if l.orphan { " orphan" } else { "" }
            ));
        }
    }
    Ok(Output {
        out,
        ..Output::default()
    })
}

/// A control request: the node's JSON as it comes with `--json`, else a
/// sentence. A refusal is the node's sentence on stderr (and its JSON on
/// stdout with `--json`), exit status 1.
fn control(op: &udlm::control::Op, json: bool) -> Result<Output, Failure> {
    use udlm::control::Op;
    let text = match udlm::control::call(op) {
        Ok(t) => t,
        Err(r) => {
            let sentence = Json::parse(&r.sentence)
                .ok()
                .and_then(|d| {
                    d.get("error")
                        .ok()
                        .and_then(|e| e.as_str().ok())
                        .map(str::to_string)
                })
                .unwrap_or_else(|| r.sentence.clone());
            let out = if json {
                format!("{}\n", udlm::control::error_json(&sentence))
            } else {
                String::new()
            };
            return Ok(Output {
                out,
                err: format!("udlm: {sentence}\n"),
                status: 1,
            });
        }
    };
    let format: fn(&Json) -> Result<String, String> = match op {
        Op::List => format_nodes,
        Op::Add { .. } => format_added,
        Op::Remove { .. } => format_removed,
        Op::Fenced { .. } => format_fenced,
        Op::Reload => format_reload,
    };
    present(&text, json, format)
}

fn format_added(doc: &Json) -> Result<String, String> {
    Ok(format!(
        "node {} added, at {}:{}; it joins once its udlmd runs and every node knows it\n",
        doc.get("added")?.as_u64()?,
        doc.get("address")?.as_str()?,
        doc.get("port")?.as_u64()?
    ))
}

fn format_removed(doc: &Json) -> Result<String, String> {
    let id = doc.get("removed")?.as_u64()?;
    Ok(format!(
        "node {id} removed; the others' recovery drops its locks\n"
    ))
}

fn format_fenced(doc: &Json) -> Result<String, String> {
    Ok(format!(
        "node {} is dead and fenced: recovery goes on without waiting for its lease (generation {}, {})\n",
        doc.get("fenced")?.as_u64()?,
        doc.get("generation")?.as_u64()?,
        doc.get("state")?.as_str()?
    ))
}

fn id_list(v: &Json) -> Result<String, String> {
    let ids: Result<Vec<String>, String> = v
        .as_array()?
        .iter()
        .map(|m| m.as_u64().map(|v| v.to_string()))
        .collect();
    let ids = ids?;
    Ok(if ids.is_empty() {
        "none".to_string()
    } else {
        ids.join(" ")
    })
}

fn format_reload(doc: &Json) -> Result<String, String> {
    let mut o = String::new();
    let _ = writeln!(o, "reloaded {}", doc.get("reloaded")?.as_str()?);
    let _ = writeln!(o, "  nodes added:   {}", id_list(doc.get("added")?)?);
    let _ = writeln!(o, "  nodes removed: {}", id_list(doc.get("removed")?)?);
    let _ = writeln!(o, "  nodes moved:   {}", id_list(doc.get("changed")?)?);
    for w in doc.get("not_applied")?.as_array()? {
        let _ = writeln!(o, "  not applied: {}", w.as_str()?);
    }
    for w in doc.get("warnings")?.as_array()? {
        let _ = writeln!(o, "  warning: {}", w.as_str()?);
    }
    Ok(o)
}

/// One line: where membership and quorum come from.
fn membership_line(m: &Json) -> Result<String, String> {
    let source = m.get("source")?.as_str()?;
    let from = match (source, m.get("file")?.as_opt_str()?) {
        ("config", Some(f)) => format!("config file {f}"),
        ("config", None) => "no config file (one-node cluster)".to_string(),
        (other, _) => other.to_string(),
    };
    Ok(format!(
        "membership: {from}, changed by {}; liveness: {}; quorum: {}",
        m.get("changes")?.as_str()?,
        m.get("liveness")?.as_str()?,
        m.get("quorum")?.as_str()?
    ))
}

fn format_nodes(doc: &Json) -> Result<String, String> {
    let mut o = String::new();
    let _ = writeln!(o, "{}", membership_line(doc.get("membership")?)?);
    let mut rows = vec![vec![
        "ID".to_string(),
        "ADDRESS".to_string(),
        "PORT".to_string(),
        "STATE".to_string(),
        "MEMBER".to_string(),
    ]];
    for n in doc.get("nodes")?.as_array()? {
        let state = node_state(n.get("local")?.as_bool()?, n)?;
        rows.push(vec![
            n.get("id")?.as_u64()?.to_string(),
            n.get("address")?.as_str()?.to_string(),
            n.get("port")?.as_u64()?.to_string(),
            state.to_string(),
            if n.get("member")?.as_bool()? {
                "yes"
            } else {
                "no"
            }
            .to_string(),
        ]);
    }
    table(&mut o, "", &rows, &[true, false, true, false, false]);
    Ok(o)
}

/// `udlm leave LS`: what `dlm_tool leave` does on the kernel DLM — open the
/// lockspace and release it with force, which destroys it on this node
/// with its orphans (when this was its last creation reference). Never
/// starts a node.
fn leave(name: &[u8], json: bool) -> Result<Output, Failure> {
    let shown = String::from_utf8_lossy(name).into_owned();
    udlm::client::query(&Query::Lockspaces).map_err(|e| query_failure(&Query::Lockspaces, e))?;
    let conn = udlm::client::Connection::open(name, None).map_err(|e| match e {
        Errno::NoEnt => Failure::new(format!("there is no lockspace '{shown}' on this node.")),
        Errno::Acces => Failure::new(format!("not allowed to open lockspace '{shown}'.")),
        e => Failure::new(format!("cannot open lockspace '{shown}': {e:?}.")),
    })?;
    conn.release(1)
        .map_err(|e| Failure::new(format!("cannot release lockspace '{shown}': {e:?}.")))?;
    let out = if json {
        format!("{{\"left\":{}}}\n", json_string(&shown))
    } else {
        format!("left lockspace {shown}\n")
    };
    Ok(Output {
        out,
        ..Output::default()
    })
}

// ----- node queries ---------------------------------------------------------

fn node_query(
    query: &Query,
    json: bool,
    format: fn(&Json) -> Result<String, String>,
) -> Result<Output, Failure> {
    let text = udlm::client::query(query).map_err(|e| query_failure(query, e))?;
    present(&text, json, format)
}

/// A node's JSON answer: as it is with `--json`, else formatted for people.
fn present(
    text: &str,
    json: bool,
    format: fn(&Json) -> Result<String, String>,
) -> Result<Output, Failure> {
    if json {
        let mut out = text.trim_end().to_string();
        out.push('\n');
        return Ok(Output {
            out,
            ..Output::default()
        });
    }
    let doc = Json::parse(text)
        .map_err(|e| Failure::new(format!("the node's answer is not valid JSON ({e}).")))?;
    let out = format(&doc).map_err(|e| {
        Failure::new(format!(
            "the node's answer is not what this udlm expects ({e})."
        ))
    })?;
    Ok(Output {
        out,
        ..Output::default()
    })
}

fn socket_path() -> PathBuf {
    udlm::node::server::run_dir().join(udlm::node::server::SOCKET_NAME)
}

fn query_failure(query: &Query, e: Errno) -> Failure {
    let sock = socket_path();
    let name = match query {
        Query::Lockdump(n) => String::from_utf8_lossy(n).into_owned(),
        _ => String::new(),
    };
    let message = match e {
        Errno::NotConn => format!(
            "no udlm node is running here: nothing answers at {}. Start one with 'udlmd' (or run a program \
             that uses libdlm), or set DLM_RUN_DIR to the runtime directory of a running node.",
            sock.display()
        ),
        Errno::Acces | Errno::Perm => {
            // Either the socket refuses us, or the lockspace's mode does.
            let socket_refuses = !matches!(query, Query::Lockdump(_))
                || matches!(udlm::client::query(&Query::Status), Err(Errno::Acces) | Err(Errno::Perm));
            if socket_refuses {
                format!("permission denied: you may not connect to the node's socket {}.", sock.display())
            } else {
                format!(
                    "permission denied: lockspace \"{name}\" was created with a mode that does not let you \
                     read it (its owner, and root, may)."
                )
            }
        }
        Errno::NoEnt => format!("there is no lockspace named \"{name}\" on this node ('udlm ls' lists them)."),
        Errno::Proto => "the node's answer could not be read; is udlmd of the same version as this udlm?".to_string(),
        Errno::Inval => "the node refused the question as malformed; is udlmd of the same version as this udlm?".to_string(),
        other => format!("the node could not answer: {other}."),
    };
    Failure::new(message)
}

fn format_status(doc: &Json) -> Result<String, String> {
    let mut o = String::new();
    let id = doc.get("node_id")?.as_u64()?;
    let address = doc.get("address")?.as_opt_str()?;
    let cluster = doc.get("cluster_name")?.as_str()?;
    let _ = writeln!(
        o,
        "node:       {id}{}",
        address.map(|a| format!(" at {a}")).unwrap_or_default()
    );
    let _ = writeln!(o, "cluster:    {cluster}");
    // Absent from older nodes, null from a node that was not told.
    if let Some(m) = doc.find("membership").filter(|m| **m != Json::Null) {
        let _ = writeln!(o, "{}", membership_line(m)?);
    }
    let quorum = doc.get("quorum")?;
    let have = quorum.get("have")?.as_bool()?;
    let seen = quorum.get("members_seen")?.as_u64()?;
    let configured = quorum.get("configured")?.as_u64()?;
    let _ = writeln!(
        o,
        "quorum:     {} ({seen} of {configured} configured node{} seen)",
        if have { "yes" } else { "NO" },
        if configured == 1 { "" } else { "s" }
    );
    // Absent from nodes older than the recovery protocol.
    if let Ok(r) = doc.get("recovery") {
        let gen = r.get("generation")?.as_u64()?;
        let state = r.get("state")?.as_str()?;
        let coordinator = r.get("coordinator")?.as_u64()?;
        let members: Result<Vec<String>, String> = r
            .get("members")?
            .as_array()?
            .iter()
            .map(|m| m.as_u64().map(|v| v.to_string()))
            .collect();
        let fencing: Vec<String> = match r.get("fencing") {
            Ok(f) => f
                .as_array()?
                .iter()
                .map(|m| m.as_u64().map(|v| v.to_string()))
                .collect::<Result<_, String>>()?,
            Err(_) => Vec::new(),
        };
        let why = if !fencing.is_empty() {
            format!(
                "; recovery waits for fence_cmd to fence node {}",
                fencing.join(" ")
            )
        } else if state == "running" {
            String::new()
        } else if !r.get("quorate")?.as_bool()? {
            "; lock calls wait: no majority of the configured nodes is reachable".to_string()
        } else {
            format!("; lock calls wait for recovery generation {gen} to finish")
        };
        let _ = writeln!(
            o,
            "recovery:   generation {gen}, {state} (coordinator {coordinator}, members {}){why}",
            members?.join(" ")
        );
    }
    let nodes = doc.get("nodes")?.as_array()?;
    let _ = writeln!(o, "nodes:");
    let mut rows = vec![vec![
        "ID".to_string(),
        "ADDRESS".to_string(),
        "STATE".to_string(),
    ]];
    for n in nodes {
        let nid = n.get("id")?.as_u64()?;
        let state = node_state(nid == id, n)?;
        rows.push(vec![
            nid.to_string(),
            n.get("address")?.as_opt_str()?.unwrap_or("-").to_string(),
            state.to_string(),
        ]);
    }
    table(&mut o, "  ", &rows, &[true, false, false]);
    let lockspaces = doc.get("lockspaces")?.as_array()?;
    if lockspaces.is_empty() {
        let _ = writeln!(o, "lockspaces: none");
    } else {
        let _ = writeln!(o, "lockspaces:");
        let mut rows = vec![vec![
            "NAME".to_string(),
            "MEMBERS".to_string(),
            "MASTERING".to_string(),
        ]];
        for ls in lockspaces {
            let members: Result<Vec<String>, String> = ls
                .get("members")?
                .as_array()?
                .iter()
                .map(|m| m.as_u64().map(|v| v.to_string()))
                .collect();
            // Static (`nodir=1`) or by directory; older nodes do not say.
            let mastering = ls
                .get("mastering")
                .ok()
                .and_then(|m| m.as_str().ok())
                .unwrap_or("-");
            rows.push(vec![
                ls.get("name")?.as_str()?.to_string(),
                members?.join(" "),
                mastering.to_string(),
            ]);
        }
        table(&mut o, "  ", &rows, &[false, false, false]);
    }
    Ok(o)
}

/// A node's state in the tables of `status` and `node list`.
fn node_state(local: bool, n: &Json) -> Result<&'static str, String> {
    Ok(if local {
        "this node"
    } else if n.get("connected")?.as_bool()? {
        "connected"
    } else {
        "not connected"
    })
}

fn format_lockspaces(doc: &Json) -> Result<String, String> {
    let lockspaces = doc.get("lockspaces")?.as_array()?;
    if lockspaces.is_empty() {
        return Ok("no lockspaces on this node\n".to_string());
    }
    let mut rows = vec![vec![
        "NAME".into(),
        "HANDLES".into(),
        "LOCKS".into(),
        "RESOURCES".into(),
    ]];
    for ls in lockspaces {
        rows.push(vec![
            ls.get("name")?.as_str()?.to_string(),
            ls.get("handles")?.as_u64()?.to_string(),
            ls.get("locks")?.as_u64()?.to_string(),
            ls.get("resources")?.as_u64()?.to_string(),
        ]);
    }
    let mut o = String::new();
    table(&mut o, "", &rows, &[false, true, true, true]);
    Ok(o)
}

fn format_lockdump(doc: &Json) -> Result<String, String> {
    let mut o = String::new();
    let name = doc.get("lockspace")?.as_str()?;
    let resources = doc.get("resources")?.as_array()?;
    let _ = writeln!(
        o,
        "lockspace \"{}\": {} resource{}",
        printable(name),
        resources.len(),
        if resources.len() == 1 { "" } else { "s" }
    );
    for r in resources {
        let rname = r.get("name")?.as_str()?;
        let hex = r.get("name_hex")?.as_str()?;
        let master = r.get("master")?.as_opt_u64()?;
        let _ = writeln!(o);
        let _ = write!(
            o,
            "resource \"{}\" (hex {})",
            printable(rname),
            if hex.is_empty() { "empty" } else { hex }
        );
        match master {
            Some(m) => {
                let _ = writeln!(o, ", master node {m}");
            }
            None => {
                let _ = writeln!(o, ", master not known yet");
            }
        }
        let valid = r.get("lvb_valid")?.as_bool()?;
        match r.get("lvb")?.as_opt_str()? {
            Some(lvb) => {
                let _ = writeln!(o, "  lvb: {lvb}{}", if valid { "" } else { " (not valid)" });
            }
            None => {
                let _ = writeln!(o, "  lvb: none{}", if valid { "" } else { " (not valid)" });
            }
        }
        let mut rows = vec![[
            "QUEUE",
            "ID",
            "GRANTED",
            "REQUESTED",
            "FLAGS",
            "PID",
            "NODE",
            "",
        ]
        .map(String::from)
        .to_vec()];
        for queue in ["granted", "converting", "waiting"] {
            for l in r.get(queue)?.as_array()? {
                let orphan = match l.find("orphan") {
                    Some(v) => v.as_bool()?,
                    None => false,
                };
                rows.push(vec![
                    queue.to_string(),
                    l.get("id")?.as_u64()?.to_string(),
                    l.get("granted")?.as_opt_str()?.unwrap_or("-").to_string(),
                    l.get("requested")?.as_opt_str()?.unwrap_or("-").to_string(),
                    l.get("flags")?.as_str()?.to_string(),
                    l.get("pid")?.as_u64()?.to_string(),
                    l.get("node")?.as_u64()?.to_string(),
                    if orphan {
                        "orphan".to_string()
                    } else {
                        String::new()
                    },
                ]);
            }
        }
        if rows.len() == 1 {
            let _ = writeln!(o, "  no locks");
        } else {
            table(
                &mut o,
                "  ",
                &rows,
                &[false, true, false, false, false, true, true, false],
            );
        }
    }
    Ok(o)
}

/// Writes `rows` as aligned columns (`right`: right-aligned columns).
fn table(o: &mut String, indent: &str, rows: &[Vec<String>], right: &[bool]) {
    let columns = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in rows {
        let mut line = String::from(indent);
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            let pad = widths[c] - cell.chars().count();
            if right.get(c).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        o.push_str(line.trim_end());
        o.push('\n');
    }
}

/// A name for a terminal: control characters as `\xNN` (`\u{NNNN}` above
/// 0xff), so that a binary resource name cannot move the cursor.
fn printable(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c as u32 {
            _ if !c.is_control() => o.push(c),
            n if n <= 0xff => {
                let _ = write!(o, "\\x{n:02x}");
            }
            n => {
                let _ = write!(o, "\\u{{{n:04x}}}");
            }
        }
    }
    o
}

// ----- config check -----------------------------------------------------------

/// What the config reader returns: the config and its warnings, or errors.
type Loaded = Result<(Config, Vec<String>), Vec<ConfigError>>;

fn config_check(file: Option<&Path>, json: bool) -> Output {
    // Which file, and why.
    let (result, source): (Loaded, String) = match file {
        Some(path) => (Config::load(path), path.display().to_string()),
        None => {
            let source = match std::env::var_os("DLM_CONF").filter(|v| !v.is_empty()) {
                Some(p) => PathBuf::from(p).display().to_string(),
                None if Path::new(DEFAULT_CONFIG_PATH).exists() => DEFAULT_CONFIG_PATH.to_string(),
                None => String::new(),
            };
            (Config::from_env(), source)
        }
    };
    let mut errors: Vec<Diagnostic> = Vec::new();
    let mut warnings: Vec<Diagnostic> = Vec::new();
    let mut summary = None;
    let mut local_id = None;
    match result {
        Err(list) => {
            for e in list {
                errors.push(Diagnostic {
                    file: e.path.display().to_string(),
                    line: e.line,
                    message: e.message,
                });
            }
        }
        Ok((config, list)) => {
            for w in list {
                warnings.push(Diagnostic::from_text(&w));
            }
            extra_checks(&config, &mut warnings);
            // Which node udlmd would be here (DLM_NODEID, else the node
            // line with a local address): a warning when it cannot tell,
            // since the file may be meant for another host.
            match config.local_node_id() {
                Ok(id) => local_id = Some(id),
                Err(message) => warnings.push(Diagnostic {
                    file: String::new(),
                    line: 0,
                    message,
                }),
            }
            summary = Some(config);
        }
    }
    let ok = errors.is_empty();
    let mut o = Output {
        status: if ok { 0 } else { 1 },
        ..Output::default()
    };
    if json {
        let mut j = String::from("{");
        let _ = write!(
            j,
            "\"file\":{},",
            if source.is_empty() {
                "null".to_string()
            } else {
                json_string(&source)
            }
        );
        let _ = write!(
            j,
            "\"ok\":{ok},\"errors\":{},\"warnings\":{}",
            diagnostics_json(&errors),
            diagnostics_json(&warnings)
        );
        if let Some(c) = &summary {
            let nodes: Vec<String> = c
                .nodes
                .iter()
                .map(|n| {
                    format!(
                        "{{\"id\":{},\"addr\":{},\"port\":{}}}",
                        n.id,
                        json_string(&n.addr),
                        n.port.unwrap_or(c.port)
                    )
                })
                .collect();
            let _ = write!(
                j,
                ",\"cluster_name\":{},\"port\":{},\"nodes\":[{}],\"lockspace_lines\":{},\"master_lines\":{},\"local_node_id\":{}",
                json_string(&c.cluster_name),
                c.port,
                nodes.join(","),
                c.lockspaces.len(),
                c.masters.len(),
                local_id.map_or("null".to_string(), |id| id.to_string())
            );
        }
        j.push_str("}\n");
        o.out = j;
        return o;
    }
    for e in &errors {
        let _ = writeln!(o.err, "{}", e.text("error"));
    }
    for w in &warnings {
        let _ = writeln!(o.err, "{}", w.text("warning"));
    }
    let name = if source.is_empty() {
        "no config file (a one-node cluster)".to_string()
    } else {
        source
    };
    match &summary {
        None => {
            let _ = writeln!(
                o.err,
                "udlm: {name}: {} error{}; udlmd would not start with it.",
                errors.len(),
                if errors.len() == 1 { "" } else { "s" }
            );
        }
        Some(c) => {
            let _ = writeln!(
                o.out,
                "{name}: OK{}: cluster \"{}\", {} node{}, {} lockspace line{}, {} master line{}{}",
                if warnings.is_empty() {
                    String::new()
                } else {
                    format!(
                        " with {} warning{}",
                        warnings.len(),
                        if warnings.len() == 1 { "" } else { "s" }
                    )
                },
                c.cluster_name,
                c.nodes.len(),
                if c.nodes.len() == 1 { "" } else { "s" },
                c.lockspaces.len(),
                if c.lockspaces.len() == 1 { "" } else { "s" },
                c.masters.len(),
                if c.masters.len() == 1 { "" } else { "s" },
                local_id
                    .map(|id| format!("; this host is node {id}"))
                    .unwrap_or_default(),
            );
        }
    }
    o
}

/// What the parser cannot see but udlmd will trip over: a key file it
/// cannot read, a host name that does not resolve. Warnings, since the file
/// may be checked on another host than the one it is for.
fn extra_checks(config: &Config, warnings: &mut Vec<Diagnostic>) {
    let file = config
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if let Some(key) = &config.key_file {
        if let Err(e) = std::fs::metadata(key).and_then(|m| {
            if m.is_file() {
                std::fs::File::open(key).map(|_| ())
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "not a regular file",
                ))
            }
        }) {
            warnings.push(Diagnostic {
                file: file.clone(),
                line: 0,
                message: format!(
                    "the key file {} cannot be read here ({e}); udlmd needs it to start",
                    key.display()
                ),
            });
        }
    }
    for n in &config.nodes {
        if n.ip().is_none() && config.peer_addrs(n.id).is_empty() {
            warnings.push(Diagnostic {
                file: file.clone(),
                line: n.line,
                message: format!(
                    "the address of node {}, '{}', does not resolve here",
                    n.id, n.addr
                ),
            });
        }
    }
}

struct Diagnostic {
    file: String,
    line: usize,
    message: String,
}

impl Diagnostic {
    /// Splits the parser's `"FILE:LINE: message"` warning text.
    fn from_text(text: &str) -> Diagnostic {
        // The file name may itself contain ':'; the line is the last
        // all-digit field before ": ".
        let mut search = 0;
        while let Some(i) = text[search..].find(": ") {
            let head = &text[..search + i];
            if let Some(colon) = head.rfind(':') {
                let digits = &head[colon + 1..];
                if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
                    if let Ok(line) = digits.parse() {
                        return Diagnostic {
                            file: head[..colon].to_string(),
                            line,
                            message: text[search + i + 2..].to_string(),
                        };
                    }
                }
            }
            search += i + 2;
        }
        Diagnostic {
            file: String::new(),
            line: 0,
            message: text.to_string(),
        }
    }

    fn text(&self, kind: &str) -> String {
        match (self.file.is_empty(), self.line) {
            (true, _) => format!("{kind}: {}", self.message),
            (false, 0) => format!("{}: {kind}: {}", self.file, self.message),
            (false, line) => format!("{}:{line}: {kind}: {}", self.file, self.message),
        }
    }
}

fn diagnostics_json(list: &[Diagnostic]) -> String {
    let items: Vec<String> = list
        .iter()
        .map(|d| {
            format!(
                "{{\"file\":{},\"line\":{},\"message\":{}}}",
                if d.file.is_empty() {
                    "null".to_string()
                } else {
                    json_string(&d.file)
                },
                if d.line == 0 {
                    "null".to_string()
                } else {
                    d.line.to_string()
                },
                json_string(&d.message)
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn json_string(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

// ----- a small JSON reader ----------------------------------------------------

/// A JSON value. Numbers keep their text; the node only sends integers.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    Str(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut p = JsonParser {
            s: text.as_bytes(),
            i: 0,
            depth: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("unexpected text at byte {}", p.i));
        }
        Ok(v)
    }

    fn find(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn get(&self, key: &str) -> Result<&Json, String> {
        match self {
            Json::Object(_) => self
                .find(key)
                .ok_or_else(|| format!("field \"{key}\" is missing")),
            _ => Err(format!("an object with \"{key}\" was expected")),
        }
    }

    fn as_u64(&self) -> Result<u64, String> {
        match self {
            Json::Number(n) => n.parse().map_err(|_| format!("{n} is not a whole number")),
            _ => Err("a number was expected".into()),
        }
    }

    fn as_opt_u64(&self) -> Result<Option<u64>, String> {
        match self {
            Json::Null => Ok(None),
            v => v.as_u64().map(Some),
        }
    }

    fn as_bool(&self) -> Result<bool, String> {
        match self {
            Json::Bool(b) => Ok(*b),
            _ => Err("true or false was expected".into()),
        }
    }

    fn as_str(&self) -> Result<&str, String> {
        match self {
            Json::Str(s) => Ok(s),
            _ => Err("a string was expected".into()),
        }
    }

    fn as_opt_str(&self) -> Result<Option<&str>, String> {
        match self {
            Json::Null => Ok(None),
            v => v.as_str().map(Some),
        }
    }

    fn as_array(&self) -> Result<&[Json], String> {
        match self {
            Json::Array(a) => Ok(a),
            _ => Err("an array was expected".into()),
        }
    }
}

struct JsonParser<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

/// Deeper nesting than this is refused rather than recursed into.
const JSON_MAX_DEPTH: usize = 64;

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("'{}' expected at byte {}", b as char, self.i))
        }
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(format!("unexpected text at byte {}", self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.peek() {
            None => Err("the document ends too early".into()),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'"') => self.string().map(Json::Str),
            Some(b'[') => {
                self.nest()?;
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(format!("',' or ']' expected at byte {}", self.i)),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Json::Array(items))
            }
            Some(b'{') => {
                self.nest()?;
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let key = self.string()?;
                        self.ws();
                        self.expect(b':')?;
                        let v = self.value()?;
                        fields.push((key, v));
                        self.ws();
                        match self.peek() {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err(format!("',' or '}}' expected at byte {}", self.i)),
                        }
                    }
                }
                self.depth -= 1;
                Ok(Json::Object(fields))
            }
            Some(b'-' | b'0'..=b'9') => {
                let start = self.i;
                if self.peek() == Some(b'-') {
                    self.i += 1;
                }
                let digits = self.i;
                while matches!(
                    self.peek(),
                    Some(b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                ) {
                    self.i += 1;
                }
                if self.i == digits {
                    return Err(format!("a number expected at byte {start}"));
                }
                Ok(Json::Number(
                    String::from_utf8_lossy(&self.s[start..self.i]).into_owned(),
                ))
            }
            Some(_) => Err(format!("unexpected text at byte {}", self.i)),
        }
    }

    fn nest(&mut self) -> Result<(), String> {
        self.depth += 1;
        if self.depth > JSON_MAX_DEPTH {
            Err("the document is nested too deeply".into())
        } else {
            Ok(())
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .ok_or("a \\u escape ends too early")?;
        let h = std::str::from_utf8(h).map_err(|_| "bad \\u escape")?;
        let v =
            u32::from_str_radix(h, 16).map_err(|_| format!("bad \\u escape at byte {}", self.i))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let Some(b) = self.peek() else {
                return Err("a string is not closed".into());
            };
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let Some(e) = self.peek() else {
                        return Err("a string is not closed".into());
                    };
                    self.i += 1;
                    let c = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&hi)
                                && self.s[self.i..].starts_with(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                if (0xdc00..0xe000).contains(&lo) {
                                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                                } else {
                                    0xfffd
                                }
                            } else {
                                hi
                            };
                            char::from_u32(code).unwrap_or('\u{fffd}')
                        }
                        _ => return Err(format!("bad escape at byte {}", self.i - 1)),
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| "a string is not UTF-8".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<Command, String> {
        let args: Vec<std::ffi::OsString> = words.iter().map(|w| w.into()).collect();
        parse_args(&args).map(|(c, _)| c).map_err(|f| f.message)
    }

    #[test]
    fn node_commands_parse_and_bad_ones_say_why() {
        use udlm::control::Op;
        let op = |w: &[&str]| match parse(w) {
            Ok(Command::Control(op)) => Ok(op),
            Ok(_) => Err("not a control command".to_string()),
            Err(e) => Err(e),
        };
        assert_eq!(op(&["node", "list"]), Ok(Op::List));
        assert_eq!(op(&["reload"]), Ok(Op::Reload));
        assert_eq!(
            op(&["node", "add", "4", "10.0.0.4"]),
            Ok(Op::Add {
                id: 4,
                address: "10.0.0.4".into(),
                port: 0
            })
        );
        assert_eq!(
            op(&["--json", "node", "add", "4", "h4", "21065"]),
            Ok(Op::Add {
                id: 4,
                address: "h4".into(),
                port: 21065
            })
        );
        assert_eq!(op(&["node", "remove", "3"]), Ok(Op::Remove { id: 3 }));
        assert_eq!(op(&["node", "fenced", "2"]), Ok(Op::Fenced { id: 2 }));
        for (words, why) in [
            (&["node"][..], "'node' needs a command"),
            (&["node", "drop", "3"][..], "unknown node command 'drop'"),
            (&["node", "remove"][..], "'udlm node remove ID'"),
            (&["node", "remove", "0"][..], "'0' is not a node id"),
            (&["node", "fenced", "+3"][..], "'+3' is not a node id"),
            (
                &["node", "add", "4"][..],
                "'udlm node add ID ADDRESS [PORT]'",
            ),
            (&["node", "add", "4", "h", "0"][..], "'0' is not a port"),
            (
                &["node", "add", "4", "h", "70000"][..],
                "'70000' is not a port",
            ),
            (&["reload", "now"][..], "one argument too many"),
        ] {
            let e = op(words).unwrap_err();
            assert!(e.contains(why), "{words:?}: {e}");
        }
    }

    #[test]
    fn node_list_and_status_say_where_membership_comes_from() {
        let membership = r#"{"source":"config","file":"/etc/dlm/dlm.conf","changes":"udlm node add/remove","liveness":"udlm heartbeats and leases","quorum":"udlm: a majority of the configured nodes"}"#;
        let doc = Json::parse(&format!(
            r#"{{"local":1,"membership":{membership},"nodes":[{{"id":1,"address":"10.0.0.1","port":21064,"local":true,"connected":true,"member":true}},{{"id":2,"address":"10.0.0.2","port":21065,"local":false,"connected":false,"member":false}}]}}"#
        ))
        .unwrap();
        let text = format_nodes(&doc).unwrap();
        assert!(
            text.starts_with(
                "membership: config file /etc/dlm/dlm.conf, changed by udlm node add/remove;"
            ),
            "{text}"
        );
        assert!(
            text.contains(" 2  10.0.0.2  21065  not connected  no"),
            "{text}"
        );
        let status = Json::parse(&format!(
            r#"{{"node_id":1,"address":null,"cluster_name":"c","nodes":[],"quorum":{{"have":true,"members_seen":1,"configured":1}},"lockspaces":[],"membership":{membership}}}"#
        ))
        .unwrap();
        let text = format_status(&status).unwrap();
        assert!(
            text.contains("\nmembership: config file /etc/dlm/dlm.conf"),
            "{text}"
        );
    }

    #[test]
    fn json_reads_the_status_shape() {
        let doc = Json::parse(
            r#"{"node_id":1,"address":"127.0.0.1:21064","cluster_name":"c","nodes":[{"id":1,"address":null,"connected":true}],
               "quorum":{"have":true,"members_seen":1,"configured":1},"lockspaces":[{"name":"a\"b\u00e9\ud83d\ude00","members":[1,2],"mastering":"static","extensions":[]}]}"#,
        )
        .unwrap();
        assert_eq!(doc.get("node_id").unwrap().as_u64().unwrap(), 1);
        let ls = &doc.get("lockspaces").unwrap().as_array().unwrap()[0];
        assert_eq!(
            ls.get("name").unwrap().as_str().unwrap(),
            "a\"b\u{e9}\u{1f600}"
        );
        let text = format_status(&doc).unwrap();
        assert!(
            text.contains("quorum:     yes (1 of 1 configured node seen)"),
            "{text}"
        );
        assert!(text.contains("1 2      static"), "{text}");
    }

    #[test]
    fn status_says_why_lock_calls_wait() {
        let doc = |recovery: &str| {
            Json::parse(&format!(
                r#"{{"node_id":2,"address":null,"cluster_name":"c","nodes":[],
                   "quorum":{{"have":false,"members_seen":1,"configured":3}},"lockspaces":[],
                   "recovery":{}}}"#,
                recovery
            ))
            .unwrap()
        };
        let t = format_status(&doc(
            r#"{"generation":0,"coordinator":2,"members":[2],"state":"waiting to join","quorate":false,"live":[2]}"#,
        ))
        .unwrap();
        assert!(t.contains("recovery:   generation 0, waiting to join (coordinator 2, members 2); lock calls wait: no majority"), "{t}");
        let t = format_status(&doc(
            r#"{"generation":7,"coordinator":1,"members":[1,2],"state":"rebuilding locks","quorate":true,"live":[1,2]}"#,
        ))
        .unwrap();
        assert!(t.contains("generation 7, rebuilding locks (coordinator 1, members 1 2); lock calls wait for recovery generation 7"), "{t}");
        let t = format_status(&doc(
            r#"{"generation":7,"coordinator":1,"members":[1,2],"state":"running","quorate":true,"live":[1,2]}"#,
        ))
        .unwrap();
        assert!(
            t.contains("generation 7, running (coordinator 1, members 1 2)\n"),
            "{t}"
        );
    }

    #[test]
    fn leave_takes_one_lockspace() {
        let args = |a: &[&str]| -> Vec<std::ffi::OsString> { a.iter().map(|w| w.into()).collect() };
        match parse_args(&args(&["leave", "lvm_vg1"])) {
            Ok((Command::Leave(n), false)) => assert_eq!(n, b"lvm_vg1"),
            _ => panic!("leave lvm_vg1 not understood"),
        }
        for bad in [
            &["leave"][..],
            &["leave", "a", "b"],
            &["leave", &"x".repeat(65)],
        ] {
            match parse_args(&args(bad)) {
                Err(f) => assert_eq!(f.status, 2, "{bad:?}: {}", f.message),
                Ok(_) => panic!("{bad:?} accepted"),
            }
        }
    }

    #[test]
    fn names_are_printable() {
        assert_eq!(printable("a\u{1}b\u{9f}\u{e9}"), "a\\x01b\\x9f\u{e9}");
    }

    #[test]
    fn json_refuses_garbage() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\" 1}",
            "\"abc",
            "[1] x",
            "nul",
            &"[".repeat(100),
        ] {
            assert!(Json::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn warning_text_is_split_at_the_line() {
        let d = Diagnostic::from_text(
            "/etc/a:b.conf:12: 'mark' is a dlm_controld setting; udlm ignores it",
        );
        assert_eq!((d.file.as_str(), d.line), ("/etc/a:b.conf", 12));
        assert_eq!(
            d.message,
            "'mark' is a dlm_controld setting; udlm ignores it"
        );
    }

    #[test]
    fn lockdump_lists_every_queue() {
        let doc = Json::parse(
            r#"{"lockspace":"x","resources":[{"name":"r","name_hex":"72","master":1,"lvb":"00ff","lvb_valid":false,
               "granted":[{"id":1,"granted":"EX","requested":null,"flags":"0x8","pid":12,"node":1}],
               "converting":[{"id":2,"granted":"NL","requested":"PR","flags":"0x4","pid":13,"node":2,"orphan":true}],
               "waiting":[{"id":3,"granted":null,"requested":"EX","flags":"0x0","pid":14,"node":1}]}]}"#,
        )
        .unwrap();
        let text = format_lockdump(&doc).unwrap();
        assert!(text.contains("lvb: 00ff (not valid)"), "{text}");
        assert!(
            text.contains("converting   2  NL       PR         0x4     13     2  orphan"),
            "{text}"
        );
        assert!(text.contains("waiting      3  -        EX"), "{text}");
    }
}
