//! `udlmd`, the udlm node daemon: owns all lock state of this host and
//! serves every process's lockspace handles over `<run dir>/udlmd.sock`.
//!
//! The library starts it on demand (`udlmd --daemonize`, which returns once
//! the node listens); under systemd it runs in the foreground (`udlmd -f`).
//! One node per runtime directory: a second daemon on the same directory
//! sees the lock file held and exits quietly.

use std::sync::{Arc, Mutex};
use udlm::cluster::config::Config;
use udlm::node::control::{reload_on_signal, Control};
use udlm::node::link::{fence_loop, join_cluster};
use udlm::node::server::{run_dir, serve, SOCKET_NAME};
use udlm::node::{Node, NodeLimits};
use udlm::sys;

/// How often the node's clock advances; lease expiry is seen this late at
/// most.
const TICK_MS: u64 = 100;

fn usage() -> ! {
    eprintln!(
        "usage: udlmd [-f|--foreground] [--daemonize]\n\
               Runs the udlm node of this host. The runtime directory is DLM_RUN_DIR,\n\
               else /run/udlm for root, else $XDG_RUNTIME_DIR/udlm."
    );
    std::process::exit(2);
}

fn main() {
    let mut daemonize = false;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "-f" | "--foreground" => daemonize = false,
            "--daemonize" => daemonize = true,
            "-h" | "--help" => usage(),
            other => {
                eprintln!("udlmd: unknown argument {other:?}");
                usage();
            }
        }
    }
    let dir = run_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("udlmd: cannot create {}: {e}", dir.display());
        std::process::exit(1);
    }
    let mut ready = if daemonize {
        match sys::daemonize() {
            Ok(r) => {
                sys::redirect_stdio(Some(&dir.join("udlmd.log")));
                r
            }
            Err(e) => {
                eprintln!("udlmd: cannot detach: {e}");
                std::process::exit(1);
            }
        }
    } else {
        sys::Ready::none()
    };
    let _lock = match sys::try_lock_file(&dir.join("udlmd.lock")) {
        Ok(Some(l)) => l,
        Ok(None) => {
            // Another node serves this directory: nothing to do.
            ready.signal();
            return;
        }
        Err(e) => {
            eprintln!(
                "udlmd: cannot lock {}: {e}",
                dir.join("udlmd.lock").display()
            );
            std::process::exit(1);
        }
    };
    let sock = dir.join(SOCKET_NAME);
    let _ = std::fs::remove_file(&sock);
    let listener = match sys::seqpacket_listen(&sock) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("udlmd: cannot listen on {}: {e}", sock.display());
            std::process::exit(1);
        }
    };
    // Anyone may reach the node, as anyone may open the kernel's control
    // device; each lockspace's creation mode decides who may use it.
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o666));
    }
    let _ = std::fs::write(dir.join("udlmd.pid"), format!("{}\n", std::process::id()));
    // (mut: corosync's node list may replace the file's.)
    #[cfg_attr(not(feature = "corosync"), allow(unused_mut))]
    let (mut cfg, warnings) = match Config::from_env() {
        Ok(c) => c,
        Err(errors) => {
            for e in errors {
                eprintln!("udlmd: {e}");
            }
            std::process::exit(1);
        }
    };
    for w in warnings {
        eprintln!("udlmd: {w}");
    }
    // corosync, when built in and running, says who the nodes are.
    #[cfg(feature = "corosync")]
    let corosync = udlm::node::corosync::read_nodelist();
    #[cfg(feature = "corosync")]
    if let Some(cs) = &corosync {
        cfg.nodes = cs.nodes.clone();
        eprintln!(
            "udlmd: corosync runs: its node list ({} nodes) replaces the config's node lines; this is node {}",
            cs.nodes.len(),
            cs.local_id
        );
    }
    let local_id = match cfg.local_node_id() {
        Ok(id) => id,
        Err(e) => {
            eprintln!("udlmd: {e}");
            std::process::exit(1);
        }
    };
    #[cfg(feature = "corosync")]
    if let Some(cs) = &corosync {
        if local_id != cs.local_id {
            eprintln!(
                "udlmd: this is node {} for corosync but node {local_id} for udlm (DLM_NODEID or the addresses); they must agree",
                cs.local_id
            );
            std::process::exit(1);
        }
    }
    // SIGTERM and SIGINT are taken by one thread (below), so that the node
    // can tell its peers it leaves, and SIGHUP (reload); every thread
    // started from here on inherits the blocked mask.
    sys::block_termination_signals();
    let node = Arc::new(Mutex::new(Node::new(local_id, NodeLimits::default())));
    // The configfs-compatible view (node/configfs.rs), for programs written
    // for the kernel DLM; bind-mounted over /sys/kernel/config (udlmd(8)).
    node.lock()
        .unwrap_or_else(|e| e.into_inner())
        .set_compat_view(dir.join("configfs"));
    let net = match join_cluster(&node, &cfg, local_id) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("udlmd: cannot join the cluster: {e}");
            std::process::exit(1);
        }
    };
    // The view exists (cluster_name: "a DLM is running") before the node
    // counts as started.
    node.lock()
        .unwrap_or_else(|e| e.into_inner())
        .sync_compat_view();
    // Membership from outside: `udlm node ...`, `udlm reload`, SIGHUP.
    let control = Control::new(Arc::clone(&node), net, cfg.clone(), local_id);
    #[cfg(feature = "corosync")]
    let control = if corosync.is_some() {
        udlm::node::corosync::follow(Arc::clone(&node));
        control.with_external(udlm::node::control::External {
            source: udlm::node::corosync::membership_source(),
            nodes: || udlm::node::corosync::read_nodelist().map(|c| c.nodes),
        })
    } else {
        control
    };
    let control = Arc::new(control);
    // The node's only clock: leases of lost peers, forgetting idle masters.
    let ticker = Arc::clone(&node);
    let _ = std::thread::Builder::new()
        .name("udlm-tick".into())
        .spawn(move || loop {
            std::thread::sleep(std::time::Duration::from_millis(TICK_MS));
            let now_ms = udlm::sys::monotonic_ms();
            let mut n = ticker.lock().unwrap_or_else(|e| e.into_inner());
            n.tick(now_ms);
            // Lockspaces gone (released, or the last creator's lockspace
            // destroyed) and peers' changes: tell others, update the view.
            n.announce_spaces();
            n.sync_compat_view();
            drop(n);
        });
    let leaver = Arc::clone(&node);
    let reloader = Arc::clone(&control);
    let _ = std::thread::Builder::new()
        .name("udlm-signal".into())
        .spawn(move || {
            let mut sig = sys::wait_termination_signal();
            while sig == libc::SIGHUP {
                reload_on_signal(&reloader);
                sig = sys::wait_termination_signal();
            }
            let farewell = {
                let mut n = leaver.lock().unwrap_or_else(|e| e.into_inner());
                // No node, no DLM: the configfs-compatible view empties.
                n.clear_compat_view();
                n.leave()
            };
            if farewell {
                eprintln!("udlmd: signal {sig}: leaving the cluster");
                // Time for the transport to send the farewell.
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            std::process::exit(0);
        });
    if let Some(cmd) = cfg.fence_cmd.clone() {
        let fencer = Arc::clone(&node);
        let _ = std::thread::Builder::new()
            .name("udlm-fence".into())
            .spawn(move || fence_loop(&Arc::downgrade(&fencer), &cmd));
    }
    eprintln!(
        "udlmd: node {local_id} of {} serving {}",
        cfg.nodes.len().max(1),
        sock.display()
    );
    ready.signal();
    if let Err(e) = serve(node, listener, Some(control)) {
        eprintln!("udlmd: accept failed: {e}");
        std::process::exit(1);
    }
}
