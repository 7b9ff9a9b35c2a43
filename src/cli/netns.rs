//! `paxoskv cluster --netns`: every node in its own network namespace, all
//! on one bridge in the host's namespace, so that the links between nodes
//! can be cut (a partition) while clients on the host still reach every
//! node, the minority's included.
//!
//! Addresses come from the base port, so two clusters with different base
//! ports never share a subnet: node i is `10.H.L.i` and the host side of
//! the bridge `10.H.L.254`, where H.L are the two bytes of the base port.
//! A partition is a pair of blackhole routes per cut link, one in each
//! node's namespace: packets between the two addresses are dropped
//! silently, in both directions, as a real partition would (one TCP
//! connection carries both). Routes need only iproute2; no firewall.
//!
//! Everything is created with `ip` (iproute2) and removed by `Drop`: on a
//! normal exit, an error, Ctrl-C or SIGTERM (the caller returns), and a
//! panic (unwinding). A SIGKILLed cluster leaves them behind; the next
//! start with the same base port removes them first.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;

/// Namespaces, links and addresses of one `--netns` cluster.
pub struct Netns {
    base_port: u16,
    ids: Vec<u32>,
}

impl Netns {
    /// Creates a namespace per node id and the bridge that joins them.
    /// Needs root and iproute2; says so when either is missing.
    pub fn create(base_port: u16, ids: &[u32]) -> Result<Netns, String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err("--netns needs root (it creates network namespaces, a bridge and veth links); \
                 run as root or drop --netns"
                .into());
        }
        if Command::new("ip").arg("-V").output().is_err() {
            return Err("--netns needs `ip` (iproute2), which is not installed".into());
        }
        let netns = Netns { base_port, ids: ids.to_vec() };
        netns.remove(); // leftovers of a cluster on this base port that was SIGKILLed
        if let Err(e) = netns.build() {
            netns.remove();
            return Err(e);
        }
        Ok(netns)
    }

    fn build(&self) -> Result<(), String> {
        let bridge = self.bridge();
        ip(&["link", "add", &bridge, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{}/24", self.host_ip()), "dev", &bridge])?;
        ip(&["link", "set", &bridge, "up"])?;
        for &id in &self.ids {
            let ns = self.namespace(id);
            let veth = format!("pkv{}v{id}", self.base_port);
            ip(&["netns", "add", &ns])?;
            ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            ip(&["link", "set", &veth, "master", &bridge, "up"])?;
            ip(&["-n", &ns, "addr", "add", &format!("{}/24", self.node_ip(id)), "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Removes whatever of this cluster's namespaces and bridge exist
    /// (deleting a namespace deletes its end of the veth pair, and so the
    /// pair). Errors are ignored: each piece may never have been made.
    fn remove(&self) {
        for &id in &self.ids {
            let _ = ip_quiet(&["netns", "del", &self.namespace(id)]);
        }
        let _ = ip_quiet(&["link", "del", &self.bridge()]);
    }

    fn bridge(&self) -> String {
        format!("pkv{}br", self.base_port)
    }

    pub fn namespace(&self, id: u32) -> String {
        format!("paxoskv-{}-n{id}", self.base_port)
    }

    fn subnet(&self) -> String {
        format!("10.{}.{}", self.base_port >> 8, self.base_port & 0xff)
    }

    pub fn node_ip(&self, id: u32) -> String {
        format!("{}.{id}", self.subnet())
    }

    pub fn host_ip(&self) -> String {
        format!("{}.254", self.subnet())
    }

    /// An open handle on node `id`'s namespace, for `enter` in a child.
    pub fn handle(&self, id: u32) -> Result<File, String> {
        let path = format!("/run/netns/{}", self.namespace(id));
        File::open(&path).map_err(|e| format!("opening {path}: {e}"))
    }

    /// Moves the calling thread into the namespace behind `handle`; for a
    /// child between fork and exec (`CommandExt::pre_exec`).
    pub fn enter(handle: &File) -> std::io::Result<()> {
        // SAFETY: setns(2) on a namespace file descriptor we hold open.
        if unsafe { libc::setns(handle.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Cuts every link between nodes of different groups (both directions).
    /// Nodes in no group keep all their links.
    pub fn split(&self, groups: &[Vec<u32>]) -> Result<(), String> {
        for id in groups.iter().flatten() {
            if !self.ids.contains(id) {
                return Err(format!("no node {id}"));
            }
        }
        for (g, group) in groups.iter().enumerate() {
            for other in &groups[g + 1..] {
                for &a in group {
                    for &b in other {
                        self.blackhole(a, b)?;
                        self.blackhole(b, a)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Cuts node `id` off from every other node.
    pub fn isolate(&self, id: u32) -> Result<(), String> {
        let others: Vec<u32> = self.ids.iter().copied().filter(|&o| o != id).collect();
        self.split(&[vec![id], others])
    }

    fn blackhole(&self, from: u32, to: u32) -> Result<(), String> {
        let route = format!("{}/32", self.node_ip(to));
        // `replace`: cutting a link that is already cut is not an error.
        ip(&["-n", &self.namespace(from), "route", "replace", "blackhole", &route])
    }

    /// Restores every link.
    pub fn heal(&self) -> Result<(), String> {
        for &id in &self.ids {
            ip(&["-n", &self.namespace(id), "route", "flush", "type", "blackhole"])?;
        }
        Ok(())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.remove();
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    ip_quiet(args).map_err(|e| format!("`ip {}`: {e}", args.join(" ")))
}

fn ip_quiet(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip").args(args).output().map_err(|e| e.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
    }
}
