//! Benchmark hygiene for `compare`: before each measurement the machine
//! settles (the previous system's files are gone, everything is synced and
//! the data disk has gone quiet), then a cheap noise probe records what the
//! machine offers right now: a raw write + fdatasync on the data disk, a
//! loopback TCP round trip, and CPU steal. A repeat whose probe is far
//! worse than the others is flagged in the table instead of silently
//! moving the median.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Fsyncs and round trips per probe.
const FSYNCS: usize = 200;
const ROUND_TRIPS: usize = 2000;
/// CPU steal is read over this long.
const STEAL_WINDOW: Duration = Duration::from_millis(300);
/// The disk counts as idle after this long without writes ...
const QUIET: Duration = Duration::from_millis(500);
/// ... and settling gives up after this long.
const SETTLE_MAX: Duration = Duration::from_secs(30);
/// A probe figure this many times the median of the comparison's probes
/// flags its repeat as noisy ...
const NOISY_RATIO: f64 = 3.0;
/// ... as does more CPU steal than this.
const NOISY_STEAL_PCT: f64 = 5.0;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NoiseProbe {
    /// A 4 KiB overwrite + fdatasync on the data disk.
    pub fsync_p50_us: u64,
    pub fsync_p99_us: u64,
    /// A one-byte TCP ping-pong over loopback.
    pub rtt_p50_us: u64,
    pub rtt_p99_us: u64,
    /// Percent of CPU time stolen by the hypervisor.
    pub steal_pct: f64,
    /// How long settling took before the probe (disk idle, synced).
    pub settle_ms: u64,
}

/// Syncs, then waits until the disk holding `dir` has neither requests in
/// flight nor written anything for `QUIET` (a discard of the previous
/// system's deleted files shows here), at most `SETTLE_MAX`. Returns how
/// long it took.
pub fn settle(dir: &Path) -> Duration {
    let started = Instant::now();
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    let Some(stat) = disk_stat_path(dir) else { return started.elapsed() };
    let mut last = read_disk(&stat);
    let mut quiet_since = Instant::now();
    while started.elapsed() < SETTLE_MAX {
        std::thread::sleep(Duration::from_millis(100));
        let now = read_disk(&stat);
        if now.is_none() || now != last || now.is_some_and(|(_, in_flight)| in_flight > 0) {
            quiet_since = Instant::now();
        }
        last = now;
        if quiet_since.elapsed() >= QUIET {
            break;
        }
    }
    started.elapsed()
}

/// `/sys/dev/block/MAJ:MIN/stat` of the device holding `dir` (or of its
/// nearest existing parent); none for a filesystem without a block device.
fn disk_stat_path(dir: &Path) -> Option<std::path::PathBuf> {
    let existing = dir.ancestors().find(|p| p.exists())?;
    let dev = std::fs::metadata(existing).ok()?.dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let path = std::path::PathBuf::from(format!("/sys/dev/block/{major}:{minor}/stat"));
    path.exists().then_some(path)
}

/// (sectors written, requests in flight).
fn read_disk(stat: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(stat).ok()?;
    let fields: Vec<u64> = text.split_whitespace().filter_map(|f| f.parse().ok()).collect();
    Some((*fields.get(6)?, *fields.get(8)?))
}

/// Probes the machine; `dir` must be on the data disk (a file is written
/// there and removed).
pub fn probe(dir: &Path, settle_ms: u64) -> Result<NoiseProbe, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let (fsync_p50_us, fsync_p99_us) = fsync_probe(&dir.join(".noise-probe"))?;
    let (rtt_p50_us, rtt_p99_us) = loopback_probe()?;
    let steal_pct = steal_probe();
    Ok(NoiseProbe { fsync_p50_us, fsync_p99_us, rtt_p50_us, rtt_p99_us, steal_pct, settle_ms })
}

fn percentiles(mut us: Vec<u64>) -> (u64, u64) {
    us.sort_unstable();
    let at = |q: f64| us[((us.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

fn fsync_probe(path: &Path) -> Result<(u64, u64), String> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("noise probe {}: {e}", path.display()))?;
    let block = vec![0x5au8; 4096];
    let mut samples = Vec::with_capacity(FSYNCS);
    let result = (|| -> std::io::Result<()> {
        file.write_all_at(&block, 0)?;
        file.sync_all()?;
        for _ in 0..FSYNCS {
            let t = Instant::now();
            file.write_all_at(&block, 0)?;
            file.sync_data()?;
            samples.push(t.elapsed().as_micros() as u64);
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(path);
    result.map_err(|e| format!("noise probe {}: {e}", path.display()))?;
    Ok(percentiles(samples))
}

fn loopback_probe() -> Result<(u64, u64), String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("noise probe: {e}"))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut peer, _) = listener.accept()?;
        peer.set_nodelay(true)?;
        let mut byte = [0u8; 1];
        while peer.read(&mut byte)? == 1 {
            peer.write_all(&byte)?;
        }
        Ok(())
    });
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    let result = (|| -> std::io::Result<()> {
        let mut stream = TcpStream::connect(address)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        let mut byte = [1u8; 1];
        for _ in 0..ROUND_TRIPS {
            let t = Instant::now();
            stream.write_all(&byte)?;
            stream.read_exact(&mut byte)?;
            samples.push(t.elapsed().as_micros() as u64);
        }
        Ok(())
    })();
    let _ = echo.join();
    result.map_err(|e| format!("noise probe (loopback): {e}"))?;
    Ok(percentiles(samples))
}

/// Steal over `STEAL_WINDOW`, from /proc/stat's `cpu` line (0 if unknown).
fn steal_probe() -> f64 {
    let read = || -> Option<(u64, u64)> {
        let text = std::fs::read_to_string("/proc/stat").ok()?;
        let line = text.lines().find(|l| l.starts_with("cpu "))?;
        let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
        Some((fields.iter().take(8).sum(), *fields.get(7)?))
    };
    let Some((total_a, steal_a)) = read() else { return 0.0 };
    std::thread::sleep(STEAL_WINDOW);
    let Some((total_b, steal_b)) = read() else { return 0.0 };
    let total = total_b.saturating_sub(total_a);
    if total == 0 {
        return 0.0;
    }
    100.0 * steal_b.saturating_sub(steal_a) as f64 / total as f64
}

/// A probe figure's name and how to read it.
type Figure = (&'static str, fn(&NoiseProbe) -> u64);

/// Why a probe is noisy next to `all` (the comparison's probes), if it is:
/// a figure over `NOISY_RATIO` times the lower median of the same figure
/// (the lower one, so that with few repeats half of them noisy still
/// stand out), or CPU steal.
pub fn noisy(probe: &NoiseProbe, all: &[&NoiseProbe]) -> Option<String> {
    let median = |pick: fn(&NoiseProbe) -> u64| {
        let mut values: Vec<u64> = all.iter().map(|p| pick(p)).collect();
        values.sort_unstable();
        values.get(values.len().saturating_sub(1) / 2).copied().unwrap_or(0)
    };
    let mut why = Vec::new();
    if probe.steal_pct > NOISY_STEAL_PCT {
        why.push(format!("CPU steal {:.1}%", probe.steal_pct));
    }
    let checks: [Figure; 4] = [
        ("fsync p50", |p| p.fsync_p50_us),
        ("fsync p99", |p| p.fsync_p99_us),
        ("loopback p50", |p| p.rtt_p50_us),
        ("loopback p99", |p| p.rtt_p99_us),
    ];
    for (name, pick) in checks {
        let m = median(pick);
        if m > 0 && pick(probe) as f64 > NOISY_RATIO * m as f64 {
            why.push(format!("{name} {} µs ({:.1}x the median)", pick(probe), pick(probe) as f64 / m as f64));
        }
    }
    (!why.is_empty()).then(|| why.join(", "))
}

/// One line for a repeat's probe.
pub fn text(probe: &NoiseProbe) -> String {
    format!(
        "fsync p50/p99 {}/{} µs, loopback p50/p99 {}/{} µs, steal {:.1}%, settled in {} ms",
        probe.fsync_p50_us, probe.fsync_p99_us, probe.rtt_p50_us, probe.rtt_p99_us, probe.steal_pct, probe.settle_ms
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_probe_measures_and_a_far_worse_one_is_flagged() {
        let dir = std::env::temp_dir().join(format!("loadgen-noise-{}", std::process::id()));
        let settled = settle(&dir);
        let probe = probe(&dir, settled.as_millis() as u64).unwrap();
        assert!(probe.fsync_p50_us > 0 && probe.fsync_p99_us >= probe.fsync_p50_us, "{probe:?}");
        assert!(probe.rtt_p50_us <= probe.rtt_p99_us, "{probe:?}");
        assert!(!dir.join(".noise-probe").exists());
        let _ = std::fs::remove_dir_all(&dir);

        let quiet =
            NoiseProbe { fsync_p50_us: 80, fsync_p99_us: 200, rtt_p50_us: 20, rtt_p99_us: 60, ..Default::default() };
        let loud = NoiseProbe { fsync_p99_us: 5000, steal_pct: 9.0, ..quiet.clone() };
        let all = [&quiet, &quiet, &loud];
        assert_eq!(noisy(&quiet, &all), None);
        let why = noisy(&loud, &all).unwrap();
        assert!(why.contains("CPU steal 9.0%") && why.contains("fsync p99 5000 µs (25.0x"), "{why}");
    }
}
