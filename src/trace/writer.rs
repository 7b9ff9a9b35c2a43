//! Writing traces: [`TraceWriter`] to any `Write`, and [`RotatingTraceFile`]
//! for live nodes, whose trace must not fill the disk.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::schema::{Event, Header, Record};

/// Writes the header line at creation, then one JSON line per record,
/// buffered. Call [`TraceWriter::flush`] before dropping it to see write
/// errors (dropping flushes too, but silently).
pub struct TraceWriter<W: Write> {
    out: BufWriter<W>,
    /// Bytes handed to `out` so far, header included.
    bytes: u64,
    /// One line's encoding, reused across records.
    line: Vec<u8>,
}

impl<W: Write> TraceWriter<W> {
    pub fn new(inner: W, header: &Header) -> io::Result<TraceWriter<W>> {
        let mut writer = TraceWriter { out: BufWriter::new(inner), bytes: 0, line: Vec::with_capacity(256) };
        writer.write_line(header)?;
        Ok(writer)
    }

    /// Write one event that happened at `t_us`.
    pub fn write(&mut self, t_us: u64, event: Event) -> io::Result<()> {
        self.write_record(&Record { t_us, event })
    }

    pub fn write_record(&mut self, record: &Record) -> io::Result<()> {
        self.write_line(record)
    }

    fn write_line<T: serde::Serialize>(&mut self, value: &T) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, value)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.bytes += self.line.len() as u64;
        Ok(())
    }

    /// Bytes written so far, header included (buffered ones count).
    pub fn bytes_written(&self) -> u64 {
        self.bytes
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    /// Flush and give back the inner writer.
    pub fn into_inner(self) -> io::Result<W> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

/// A trace file with a size cap: once the file holds `bytes_max` bytes it is
/// renamed to `PATH.1` (an older `PATH.1` to `PATH.2`, and so on, the one
/// past `PATH.{rotated_files_max}` deleted) and a new `PATH` starts with the
/// header again, so every file reads on its own and `paxoskv viz PATH*`
/// merges them. Disk use stays under about
/// `(rotated_files_max + 1) * bytes_max` plus one line.
pub struct RotatingTraceFile {
    path: PathBuf,
    header: Header,
    bytes_max: u64,
    rotated_files_max: u32,
    writer: TraceWriter<File>,
}

impl RotatingTraceFile {
    /// Create (truncate) `path`. `bytes_max` must be positive.
    pub fn create(
        path: &Path,
        header: Header,
        bytes_max: u64,
        rotated_files_max: u32,
    ) -> io::Result<RotatingTraceFile> {
        assert!(bytes_max > 0, "a trace file cap of 0 bytes cannot hold its header");
        let writer = TraceWriter::new(File::create(path)?, &header)?;
        Ok(RotatingTraceFile { path: path.to_path_buf(), header, bytes_max, rotated_files_max, writer })
    }

    pub fn write(&mut self, t_us: u64, event: Event) -> io::Result<()> {
        self.writer.write(t_us, event)?;
        if self.writer.bytes_written() >= self.bytes_max {
            self.rotate()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// `PATH.n` for n >= 1.
    pub fn rotated_path(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.writer.flush()?;
        if self.rotated_files_max == 0 {
            fs::remove_file(&self.path)?;
        } else {
            // Oldest first, so no rename overwrites a file still to move.
            let oldest = self.rotated_path(self.rotated_files_max);
            if oldest.exists() {
                fs::remove_file(&oldest)?;
            }
            for n in (1..self.rotated_files_max).rev() {
                let from = self.rotated_path(n);
                if from.exists() {
                    fs::rename(&from, self.rotated_path(n + 1))?;
                }
            }
            fs::rename(&self.path, self.rotated_path(1))?;
        }
        self.writer = TraceWriter::new(File::create(&self.path)?, &self.header)?;
        Ok(())
    }
}
