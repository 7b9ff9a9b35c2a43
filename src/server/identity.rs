//! The shard directory's identity marker, written once the shard's first
//! state is durable (after its first fsync, before anything that fsync
//! covered is acknowledged or sent):
//!
//! ```text
//! paxoskv shard identity v1
//! cluster_id=prod
//! node=2
//! shard=0
//! ```
//!
//! Two jobs. It tells a replica that lost its log (the marker is there,
//! the log is empty or gone) from one that never made anything durable
//! and so never voted (`node::Boot::decide`): only the latter may vote at
//! once. A replica that crashes before its first fsync is still new. And it refuses a directory that
//! belongs to another cluster, node or shard (a wrong `--data-dir`, a
//! copied directory), which would make one acceptor speak for another.
//!
//! Directories are created durably: every directory this start creates is
//! fsynced into its parent, so a power loss cannot forget the directory
//! that holds acknowledged records.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::config::ClusterFile;
use crate::paxos::NodeId;

const MARKER: &str = "IDENTITY";
const HEADER: &str = "paxoskv shard identity v1";

fn contents(file: &ClusterFile, node: NodeId, shard: usize) -> String {
    format!("{HEADER}\ncluster_id={}\nnode={node}\nshard={shard}\n", file.cluster_id)
}

/// Create the shard directory (durably) and check its marker. Returns
/// whether the marker was there: this replica had been initialized before.
pub fn prepare(file: &ClusterFile, node: NodeId, shard: usize) -> Result<bool, String> {
    let dir = file.shard_dir(node, shard);
    create_dir_durably(&dir)?;
    let path = dir.join(MARKER);
    let found = match fs::read_to_string(&path) {
        Ok(found) => found,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    let expected = contents(file, node, shard);
    if found != expected {
        return Err(format!(
            "{} says this directory belongs to {:?}, not to cluster {:?} node {node} shard {shard}: \
             check --data-dir and the cluster file",
            path.display(),
            found.trim().replace('\n', ", "),
            file.cluster_id
        ));
    }
    Ok(true)
}

/// Write the marker if it is not there yet (temp file, fsync, rename, fsync directory).
pub fn write(file: &ClusterFile, node: NodeId, shard: usize) -> Result<(), String> {
    let dir = file.shard_dir(node, shard);
    let path = dir.join(MARKER);
    if path.exists() {
        return Ok(());
    }
    let tmp = dir.join(format!("{MARKER}.tmp"));
    let io = |what: &str, p: &Path, e: std::io::Error| format!("{what} {}: {e}", p.display());
    let mut out = fs::File::create(&tmp).map_err(|e| io("creating", &tmp, e))?;
    out.write_all(contents(file, node, shard).as_bytes()).map_err(|e| io("writing", &tmp, e))?;
    out.sync_all().map_err(|e| io("syncing", &tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| io("renaming", &tmp, e))?;
    sync_dir(&dir)
}

/// `create_dir_all`, then fsync the parent of every directory it created.
fn create_dir_durably(dir: &Path) -> Result<(), String> {
    let mut missing: Vec<PathBuf> = Vec::new();
    let mut at = Some(dir);
    while let Some(path) = at.filter(|p| !p.as_os_str().is_empty() && !p.exists()) {
        missing.push(path.to_path_buf());
        at = path.parent();
    }
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for created in missing.iter().rev() {
        let parent = created.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        sync_dir(parent)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| format!("syncing directory {}: {e}", dir.display()))
}
