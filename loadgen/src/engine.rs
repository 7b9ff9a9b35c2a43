//! Runs one load run: connections spread over glommio executors, each
//! connection a sender task and a reader task, all recording into the
//! executor's [`Recorder`]; the calling thread merges the seconds as they
//! close (for the live line and the timeline) and the totals at the end.
//!
//! Open loop: the sender issues every request at its intended time (or as
//! soon as possible after, when the socket was full or the timer late),
//! coalescing all requests due into one write, never waiting for replies.
//! Closed loop: the sender keeps `pipeline` requests outstanding, issuing
//! one per reply. Either way the reader parses replies in order and
//! resolves the oldest in-flight request with each.
//!
//! A run's timeline, in nanoseconds since its start (the epoch):
//! `[0, warm-up)` sent but not measured, `[warm-up, end)` the measured
//! window, then up to `drain_ns` for outstanding replies, after which
//! whatever is still unanswered counts as a timeout.

use std::cell::{Cell, RefCell, RefMut};
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use glommio::{LocalExecutorBuilder, Placement};

use crate::anatomy::{self, AnatomyWatch};
use crate::bundle::StageMean;
use crate::check::{self, CheckReport};
use crate::history::{self, History, UNRECORDED};
use crate::inflight::{InFlight, InFlightQueue, Mode, Popped};
use crate::nemesis::{self, FaultRecord, Nemesis};
use crate::recorder::{OpRecord, Recorder, SecondReport, Totals, Window, LATENCY_US_MAX_DEFAULT};
use crate::resp;
use crate::rng::SplitMix64;
use crate::schedule::{Arrivals, Schedule, SCHEDULE_STREAM};
use crate::target::Target;
use crate::workload::{OpKind, Workload, WorkloadSpec, WORKLOAD_STREAM};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
/// How often timeouts are swept and idle seconds closed.
const TICK: Duration = Duration::from_millis(10);
/// The schedule starts this long after the last connection is up.
const START_LEAD: Duration = Duration::from_millis(10);
/// One socket write carries at most about this many bytes of requests.
const WRITE_BYTES_MAX: usize = 256 * 1024;
/// The reader's buffer starts at this size ...
const READ_BYTES: usize = 64 * 1024;
/// ... and grows for one large reply up to this size.
const READ_BYTES_MAX: usize = resp::BULK_BYTES_MAX as usize + READ_BYTES;
/// At most this many notes (lost connections, ...) per executor and run.
const NOTES_MAX: usize = 100;
const NS_PER_S: f64 = 1e9;

/// Everything one run needs, shared read-only by all executors.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub target: Target,
    pub addresses: Vec<SocketAddr>,
    pub mode: Mode,
    pub arrivals: Arrivals,
    /// Open loop: the total offered rate.
    pub rate_ops_s: Option<f64>,
    pub connections: usize,
    /// Closed loop: requests outstanding per connection.
    pub pipeline: usize,
    /// Per connection; requests beyond it count as errors.
    pub max_outstanding: usize,
    pub workload: WorkloadSpec,
    pub warmup_ns: u64,
    pub duration_ns: u64,
    pub timeout_ns: u64,
    /// After the window, how long outstanding replies are awaited.
    pub drain_ns: u64,
    pub seed: u64,
    pub threads: usize,
    /// Leader changes from this protocol trace directory, not `INFO` polls.
    pub trace_dir: Option<std::path::PathBuf>,
    /// `--check linearizable`: record every operation, write unique values,
    /// and check the history after the run.
    pub check: bool,
    /// Faults during the measured window.
    pub nemesis: Option<Arc<Nemesis>>,
}

/// Operations a run records for `--check` at most (48 bytes each), over
/// all executors.
pub const HISTORY_OPS_MAX: usize = 20_000_000;

impl RunConfig {
    pub fn window(&self) -> Window {
        Window { start_ns: self.warmup_ns, end_ns: self.warmup_ns + self.duration_ns }
    }

    /// Histograms must hold the longest latency a run can record.
    pub fn latency_us_max(&self) -> u64 {
        LATENCY_US_MAX_DEFAULT.max((self.timeout_ns + self.drain_ns) / 1000 + 1)
    }
}

/// What a run produced, before it becomes a bundle `Run`.
#[derive(Debug)]
pub struct RunOutput {
    pub window: Window,
    pub totals: Totals,
    /// Every second of the run (warm-up and drain included), in order,
    /// merged over executors.
    pub seconds: Vec<SecondReport>,
    /// (nanoseconds since the start of the run, what happened).
    pub notes: Vec<(u64, String)>,
    /// The server's latency anatomy over the measured window, per node,
    /// shard and stage (empty when the servers do not report one).
    pub stages: Vec<StageMean>,
    /// The faults the nemesis injected.
    pub faults: Vec<FaultRecord>,
    /// `--check`'s verdict.
    pub check: Option<CheckReport>,
}

/// Executor to caller. The channel is unbounded but its traffic is not:
/// one `Connected`/`ConnectFailed` per executor, one `Second` per executor
/// and second of the run, at most `NOTES_MAX` notes per executor.
enum Event {
    Connected,
    ConnectFailed(String),
    Second(SecondReport),
    Note(u64, String),
}

/// Holds executors between connecting and starting, so that all share one
/// epoch.
struct Gate {
    state: Mutex<Option<Option<Instant>>>,
    opened: Condvar,
}

impl Gate {
    fn open(&self, epoch: Option<Instant>) {
        *self.state.lock().expect("gate lock") = Some(epoch);
        self.opened.notify_all();
    }

    /// The epoch, or `None` if the run was called off.
    fn wait(&self) -> Option<Instant> {
        let mut state = self.state.lock().expect("gate lock");
        loop {
            if let Some(epoch) = *state {
                return epoch;
            }
            state = self.opened.wait(state).expect("gate lock");
        }
    }
}

/// Runs `config`, calling `on_second` with each second of the run as it
/// closes on every executor. Fails if a connection cannot be established.
pub fn run(config: &RunConfig, on_second: &mut dyn FnMut(&SecondReport)) -> Result<RunOutput, String> {
    if let Target::Etcd { endpoints } = &config.target {
        #[cfg(feature = "etcd")]
        return crate::etcd::run(config, endpoints, on_second);
        #[cfg(not(feature = "etcd"))]
        return Err(format!(
            "etcd target {endpoints:?}: this loadgen was built without the `etcd` feature \
             (cargo build --release -p loadgen --features etcd; needs protoc, see benches/install-deps.sh)"
        ));
    }
    if config.check {
        let spec = &config.workload;
        check::seed_keys(&config.addresses, &spec.key_space, spec.keys, spec.value.len())?;
    }
    let config = Arc::new(config.clone());
    let threads = config.threads.clamp(1, config.connections);
    let (events_tx, events_rx) = mpsc::channel::<Event>();
    let gate = Arc::new(Gate { state: Mutex::new(None), opened: Condvar::new() });
    let mut handles = Vec::new();
    let mut failure = None;
    for executor in 0..threads {
        let plans: Vec<usize> = (executor..config.connections).step_by(threads).collect();
        let (config, events, gate) = (config.clone(), events_tx.clone(), gate.clone());
        let spawned = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("loadgen-{executor}"))
            .spawn(move || async move { executor_main(executor, config, plans, events, gate).await });
        match spawned {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                failure = Some(format!("cannot start executor {executor}: {e}"));
                break;
            }
        }
    }
    let watcher_events = events_tx.clone();
    drop(events_tx);

    let mut connected = 0;
    while failure.is_none() && connected < handles.len() {
        match events_rx.recv() {
            Ok(Event::Connected) => connected += 1,
            Ok(Event::ConnectFailed(reason)) => failure = Some(reason),
            Ok(_) => {}
            Err(_) => failure = Some("an executor stopped before connecting".into()),
        }
    }
    if let Some(reason) = failure {
        gate.open(None);
        for handle in handles {
            let _ = handle.join();
        }
        return Err(reason);
    }
    let epoch = Instant::now() + START_LEAD;
    let epoch_unix_us = unix_now_us() + START_LEAD.as_micros() as u64;
    gate.open(Some(epoch));
    let run_end = epoch + Duration::from_nanos(config.warmup_ns + config.duration_ns + config.drain_ns);
    let addresses = config.addresses.clone();
    if config.trace_dir.is_none() {
        std::thread::spawn(move || watch_leaders(&addresses, epoch, run_end, watcher_events));
    } else {
        drop(watcher_events); // the event loop ends once every sender is gone
    }
    let nemesis_thread = config.nemesis.clone().map(|nemesis| {
        let (addresses, window) = (config.addresses.clone(), config.window());
        std::thread::spawn(move || nemesis.run(epoch, epoch_unix_us, window, &addresses))
    });
    let window_start = epoch + Duration::from_nanos(config.warmup_ns);
    let anatomy =
        AnatomyWatch::start(&config.addresses, window_start, window_start + Duration::from_nanos(config.duration_ns));

    // Merge each second once every executor has closed it.
    let executors = handles.len();
    let mut pending: BTreeMap<i64, (usize, SecondReport)> = BTreeMap::new();
    let mut seconds = Vec::new();
    let mut notes = Vec::new();
    while let Ok(event) = events_rx.recv() {
        match event {
            Event::Second(report) => {
                let second = report.second;
                let entry = pending.entry(second).or_insert_with(|| (0, empty_like(&report)));
                merge_second(&mut entry.1, &report);
                entry.0 += 1;
                while let Some(entry) = pending.first_entry() {
                    if entry.get().0 < executors {
                        break;
                    }
                    let (_, merged) = entry.remove();
                    on_second(&merged);
                    seconds.push(merged);
                }
            }
            Event::Note(t_ns, what) => notes.push((t_ns, what)),
            _ => {}
        }
    }
    // Executors that finished early closed fewer seconds: the rest are partial.
    for (_, (_, merged)) in pending {
        on_second(&merged);
        seconds.push(merged);
    }

    let latency_us_max = config.latency_us_max();
    let mut totals =
        Totals { ops: [OpRecord::new(latency_us_max), OpRecord::new(latency_us_max)], completed_in_window: 0 };
    let mut entries = Vec::new();
    let mut over_cap = 0;
    for handle in handles {
        match handle.join() {
            Ok(Some((part, history))) => {
                for op in OpKind::ALL {
                    totals.ops[op as usize].merge(&part.ops[op as usize]);
                }
                totals.completed_in_window += part.completed_in_window;
                entries.extend(history.entries);
                over_cap += history.over_cap;
            }
            Ok(None) => return Err("an executor was called off".into()),
            Err(e) => return Err(format!("an executor failed: {e}")),
        }
    }
    if let Some(dir) = &config.trace_dir {
        let run_ns = config.warmup_ns + config.duration_ns + config.drain_ns;
        notes.extend(trace_notes(dir, epoch_unix_us, run_ns)?);
    }
    // Every fault is healed before the read-back starts.
    let faults = match nemesis_thread {
        Some(thread) => thread.join().map_err(|_| "the nemesis thread panicked".to_string())?,
        None => Vec::new(),
    };
    notes.extend(nemesis::notes(&faults, config.window()));
    notes.sort_by_key(|(t_ns, _)| *t_ns);
    // The drain is over, so the end readings (at the window's end) are in.
    let stages = anatomy.finish();
    let check = config.check.then(|| {
        let spec = &config.workload;
        let (read_backs, not_read) = check::read_back(&config.addresses, &spec.key_space, spec.keys, epoch);
        check::check(&entries, over_cap, &read_backs, not_read, &spec.key_space, config.warmup_ns)
    });
    Ok(RunOutput { window: config.window(), totals, seconds, notes, stages, faults, check })
}

fn empty_like(report: &SecondReport) -> SecondReport {
    SecondReport {
        executor: 0,
        second: report.second,
        histogram: hdrhistogram::Histogram::new_from(&report.histogram),
        ok: 0,
        errors: 0,
        timeouts: 0,
        completed: 0,
    }
}

fn merge_second(into: &mut SecondReport, part: &SecondReport) {
    into.histogram.add(&part.histogram).expect("histograms with the same bounds add");
    into.ok += part.ok;
    into.errors += part.errors;
    into.timeouts += part.timeouts;
    into.completed += part.completed;
}

#[derive(Clone, Copy)]
struct Clock {
    epoch: Instant,
}

impl Clock {
    /// Nanoseconds since the start of the run.
    fn now_ns(&self) -> u64 {
        Instant::now().saturating_duration_since(self.epoch).as_nanos() as u64
    }

    async fn sleep_until(&self, t_ns: u64) {
        let now = self.now_ns();
        if t_ns > now {
            glommio::timer::sleep(Duration::from_nanos(t_ns - now)).await;
        }
    }
}

/// A one-waiter wake-up flag (the reader or the ticker wakes the sender).
#[derive(Default)]
struct Notify {
    notified: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    fn notify(&self) {
        self.notified.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    fn wait(&self) -> impl Future<Output = ()> + '_ {
        NotifyWait { notify: self }
    }
}

struct NotifyWait<'a> {
    notify: &'a Notify,
}

impl Future for NotifyWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.notified.replace(false) {
            return Poll::Ready(());
        }
        *self.notify.waker.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// One connection's state shared by its sender, its reader and the ticker.
struct Conn {
    index: usize,
    address: SocketAddr,
    queue: RefCell<InFlightQueue>,
    /// Closed loop: requests the sender may issue now (one per reply).
    credits: Cell<usize>,
    /// Replies arrived, requests timed out, or the connection broke.
    wake: Notify,
    /// Why the reader stopped, once it has.
    broken: RefCell<Option<String>>,
}

struct Executor {
    config: Arc<RunConfig>,
    clock: Clock,
    window: Window,
    /// Taken when the run ends.
    recorder: RefCell<Option<Recorder>>,
    /// `--check`: every operation of this executor's connections.
    history: RefCell<History>,
    conns: Vec<Rc<Conn>>,
    events: mpsc::Sender<Event>,
    notes_sent: Cell<usize>,
}

impl Executor {
    fn recorder(&self) -> RefMut<'_, Recorder> {
        RefMut::map(self.recorder.borrow_mut(), |r| r.as_mut().expect("the recorder lives until the run ends"))
    }

    fn note(&self, what: String) {
        if self.notes_sent.get() < NOTES_MAX {
            self.notes_sent.set(self.notes_sent.get() + 1);
            let _ = self.events.send(Event::Note(self.clock.now_ns(), what));
        }
    }
}

/// Runs this executor's connections (indexes `conn_indexes`); `None` if the
/// run was called off before it started.
async fn executor_main(
    index: usize,
    config: Arc<RunConfig>,
    conn_indexes: Vec<usize>,
    events: mpsc::Sender<Event>,
    gate: Arc<Gate>,
) -> Option<(Totals, History)> {
    let mut streams = Vec::new();
    let mut conns = Vec::new();
    for &conn_index in &conn_indexes {
        let address = config.addresses[conn_index % config.addresses.len()];
        match TcpStream::connect_timeout(address, CONNECT_TIMEOUT).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                streams.push(stream);
            }
            Err(e) => {
                let _ = events.send(Event::ConnectFailed(format!("cannot connect to {address}: {e}")));
                return None;
            }
        }
        conns.push(Rc::new(Conn {
            index: conn_index,
            address,
            queue: RefCell::new(InFlightQueue::new(config.max_outstanding)),
            credits: Cell::new(0),
            wake: Notify::default(),
            broken: RefCell::new(None),
        }));
    }
    let _ = events.send(Event::Connected);
    // Blocking is fine here: nothing else runs on this executor yet.
    let epoch = gate.wait()?;

    let window = config.window();
    let seconds = events.clone();
    let sink = Box::new(move |report: SecondReport| {
        let _ = seconds.send(Event::Second(report));
    });
    let recorder = Recorder::new(index, window, config.latency_us_max(), sink);
    let clock = Clock { epoch };
    let history_cap = if config.check { HISTORY_OPS_MAX / config.threads.max(1) } else { 0 };
    let executor = Rc::new(Executor {
        config,
        clock,
        window,
        recorder: RefCell::new(Some(recorder)),
        history: RefCell::new(History::new(history_cap)),
        conns,
        events,
        notes_sent: Cell::new(0),
    });

    let ticker = glommio::spawn_local(tick(executor.clone()));
    let drivers: Vec<_> = executor
        .conns
        .iter()
        .zip(streams)
        .map(|(conn, stream)| glommio::spawn_local(drive_connection(executor.clone(), conn.clone(), stream)))
        .collect();
    for driver in drivers {
        driver.await;
    }
    drop(ticker);
    let mut recorder = executor.recorder.borrow_mut().take().expect("the recorder is taken once");
    recorder.advance(executor.clock.now_ns());
    let history = executor.history.replace(History::new(0));
    Some((recorder.finish(), history))
}

/// Sweeps timeouts and closes idle seconds until the run ends.
async fn tick(executor: Rc<Executor>) {
    let timeout_ns = executor.config.timeout_ns;
    loop {
        glommio::timer::sleep(TICK).await;
        let now = executor.clock.now_ns();
        let mut recorder = executor.recorder();
        for conn in &executor.conns {
            let mut expired = false;
            conn.queue.borrow_mut().expire(now, timeout_ns, |item| {
                recorder.timeout(item, now);
                expired = true;
            });
            if expired {
                conn.wake.notify();
            }
        }
        recorder.advance(now);
    }
}

/// The requests of one connection: its schedule (open loop), its workload
/// and a scratch buffer for keys.
struct RequestSource {
    schedule: Option<Schedule>,
    encoder: Encoder,
}

/// Draws requests and encodes them (apart from the schedule, so that both
/// can be borrowed at once).
struct Encoder {
    workload: Workload,
    key: Vec<u8>,
    /// `--check`: this connection's writes so far (each writes its own value).
    writes: Option<u64>,
    value: Vec<u8>,
}

impl Encoder {
    /// Draws the next request, appends it to `out` and queues it; a request
    /// the queue refuses is taken back out and counted as an error; with
    /// `--check`, a queued one is recorded in the history.
    #[allow(clippy::too_many_arguments)]
    fn enqueue(
        &mut self,
        executor: &Executor,
        conn: usize,
        queue: &mut InFlightQueue,
        out: &mut Vec<u8>,
        origin_ns: u64,
        measured: bool,
        now: u64,
    ) {
        let start = out.len();
        let request = encode_request(&mut self.workload, &mut self.key, &mut self.writes, &mut self.value, conn, out);
        let item = InFlight { origin_ns, op: request.op, measured, history: UNRECORDED };
        if queue.push(item).is_err() {
            out.truncate(start);
            executor.recorder().local_error(request.op, measured, now);
        } else if self.writes.is_some() {
            let history = executor.history.borrow_mut().invoke(conn, request.key, request.op, request.value, now);
            queue.set_last_history(history);
        }
    }
}

impl RequestSource {
    fn new(config: &RunConfig, conn_index: usize) -> RequestSource {
        let schedule = config.rate_ops_s.filter(|_| config.mode == Mode::Open).map(|rate| {
            let seed = SplitMix64::derive(config.seed, SCHEDULE_STREAM, conn_index as u64).next_u64();
            Schedule::new(config.arrivals, rate / config.connections as f64, seed)
        });
        let seed = SplitMix64::derive(config.seed, WORKLOAD_STREAM, conn_index as u64).next_u64();
        let encoder = Encoder {
            workload: Workload::new(config.workload.clone(), seed),
            key: Vec::new(),
            writes: config.check.then_some(0),
            value: Vec::new(),
        };
        RequestSource { schedule, encoder }
    }

    /// Open loop, while disconnected: every request due by `now_ns` fails.
    fn fail_due(&mut self, executor: &Executor, now_ns: u64) {
        let Some(schedule) = self.schedule.as_mut() else {
            return;
        };
        let mut recorder = executor.recorder();
        while schedule.peek_ns() <= now_ns && schedule.peek_ns() < executor.window.end_ns {
            let intended = schedule.peek_ns();
            schedule.advance();
            let (op, _) = self.encoder.workload.next_request();
            recorder.local_error(op, executor.window.contains(intended), now_ns);
        }
    }
}

enum SendOutcome {
    /// The measured window is over (or the drain deadline passed while a
    /// write was blocked).
    WindowOver,
    Broken,
}

async fn drive_connection(executor: Rc<Executor>, conn: Rc<Conn>, first: TcpStream) {
    let config = executor.config.clone();
    let mut source = RequestSource::new(&config, conn.index);
    let deadline_ns = executor.window.end_ns + config.drain_ns;
    let mut stream = Some(first);
    loop {
        let stream = match stream.take() {
            Some(stream) => stream,
            None => match reconnect(&executor, &conn, &mut source).await {
                Some(stream) => stream,
                None => return,
            },
        };
        *conn.broken.borrow_mut() = None;
        conn.credits.set(config.pipeline);
        let (reader, writer) = futures_lite::io::split(stream);
        let reader_task = glommio::spawn_local(read_replies(executor.clone(), conn.clone(), reader));
        // Another protocol (see target.rs) would get its own sender here.
        let outcome = match (&config.target, config.mode) {
            (Target::Resp { .. }, Mode::Open) => send_open(&executor, &conn, &mut source, writer, deadline_ns).await,
            (Target::Resp { .. }, Mode::Closed) => {
                send_closed(&executor, &conn, &mut source, writer, deadline_ns).await
            }
            (Target::Etcd { .. }, _) => unreachable!("etcd targets are driven by etcd.rs"),
        };
        let write_failed = match outcome {
            SendOutcome::WindowOver => {
                drain(&executor, &conn, deadline_ns).await;
                false
            }
            SendOutcome::Broken => true,
        };
        drop(reader_task);
        let now = executor.clock.now_ns();
        let broken = conn.broken.borrow_mut().take().or_else(|| write_failed.then(|| "write failed".to_string()));
        settle_connection(&executor, &conn, broken, now);
        if now >= executor.window.end_ns {
            return;
        }
        glommio::timer::sleep(RECONNECT_BACKOFF).await;
    }
}

/// Resolves what a finished connection still has in flight: timeouts if it
/// is whole (the run ended), errors if it broke (and says so).
fn settle_connection(executor: &Executor, conn: &Conn, broken: Option<String>, now_ns: u64) {
    let mut recorder = executor.recorder();
    let mut queue = conn.queue.borrow_mut();
    match broken {
        None => queue.expire_all(|item| recorder.timeout(item, now_ns)),
        Some(reason) => {
            queue.lose_all(|item| recorder.local_error(item.op, item.measured, now_ns));
            if now_ns < executor.window.end_ns {
                executor.note(format!("connection {} to {} lost: {reason}", conn.index, conn.address));
            }
        }
    }
}

/// Reconnects until the window ends; open-loop requests due meanwhile fail.
async fn reconnect(executor: &Executor, conn: &Conn, source: &mut RequestSource) -> Option<TcpStream> {
    loop {
        let now = executor.clock.now_ns();
        source.fail_due(executor, now);
        if now >= executor.window.end_ns {
            return None;
        }
        match TcpStream::connect_timeout(conn.address, CONNECT_TIMEOUT).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                executor.note(format!("connection {} to {} re-established", conn.index, conn.address));
                return Some(stream);
            }
            Err(_) => glommio::timer::sleep(RECONNECT_BACKOFF).await,
        }
    }
}

/// Writes `bytes` unless the connection breaks or `deadline_ns` passes first.
async fn write_before(
    executor: &Executor,
    writer: &mut WriteHalf<TcpStream>,
    bytes: &[u8],
    deadline_ns: u64,
) -> Option<SendOutcome> {
    let write = async {
        match writer.write_all(bytes).await {
            Ok(()) => None,
            Err(_) => Some(SendOutcome::Broken),
        }
    };
    let deadline = async {
        executor.clock.sleep_until(deadline_ns).await;
        Some(SendOutcome::WindowOver)
    };
    futures_lite::future::or(write, deadline).await
}

async fn send_open(
    executor: &Executor,
    conn: &Conn,
    source: &mut RequestSource,
    mut writer: WriteHalf<TcpStream>,
    deadline_ns: u64,
) -> SendOutcome {
    let window = executor.window;
    let mut out = Vec::with_capacity(WRITE_BYTES_MAX * 2);
    loop {
        if conn.broken.borrow().is_some() {
            return SendOutcome::Broken;
        }
        let now = executor.clock.now_ns();
        {
            let schedule = source.schedule.as_mut().expect("open loop has a schedule");
            let mut queue = conn.queue.borrow_mut();
            while out.len() < WRITE_BYTES_MAX {
                let intended = schedule.peek_ns();
                if intended > now || intended >= window.end_ns {
                    break;
                }
                schedule.advance();
                let origin_ns = executor.config.mode.latency_origin_ns(intended, now);
                let measured = window.contains(intended);
                source.encoder.enqueue(executor, conn.index, &mut queue, &mut out, origin_ns, measured, now);
            }
        }
        if !out.is_empty() {
            if let Some(outcome) = write_before(executor, &mut writer, &out, deadline_ns).await {
                return outcome;
            }
            out.clear();
            continue;
        }
        let next = source.schedule.as_ref().expect("open loop has a schedule").peek_ns();
        if next >= window.end_ns {
            return SendOutcome::WindowOver;
        }
        executor.clock.sleep_until(next).await;
    }
}

/// One request drawn and encoded.
struct Drawn {
    op: OpKind,
    key: u64,
    /// `--check`'s write id of a SET (0 otherwise).
    value: i64,
}

/// Draws the next request and appends its encoding to `out`; with
/// `writes` (`--check`), a SET writes a value of its own (`history.rs`).
/// On the fields of a [`RequestSource`], so its schedule can stay borrowed.
fn encode_request(
    workload: &mut Workload,
    key: &mut Vec<u8>,
    writes: &mut Option<u64>,
    value: &mut Vec<u8>,
    conn: usize,
    out: &mut Vec<u8>,
) -> Drawn {
    let (op, key_index) = workload.next_request();
    key.clear();
    let spec = workload.spec();
    spec.key_space.write_key(key_index, key);
    let mut id = 0;
    match (op, writes.as_mut()) {
        (OpKind::Get, _) => resp::encode_get(out, key),
        (OpKind::Set, None) => resp::encode_set(out, key, &spec.value),
        (OpKind::Set, Some(count)) => {
            *count += 1;
            id = history::write_id(conn, *count);
            value.clear();
            history::write_value(id, spec.value.len(), value);
            resp::encode_set(out, key, value);
        }
    }
    Drawn { op, key: key_index, value: id }
}

async fn send_closed(
    executor: &Executor,
    conn: &Conn,
    source: &mut RequestSource,
    mut writer: WriteHalf<TcpStream>,
    deadline_ns: u64,
) -> SendOutcome {
    let window = executor.window;
    let mut out = Vec::with_capacity(WRITE_BYTES_MAX * 2);
    loop {
        if conn.broken.borrow().is_some() {
            return SendOutcome::Broken;
        }
        let now = executor.clock.now_ns();
        if now >= window.end_ns {
            return SendOutcome::WindowOver;
        }
        let credits = conn.credits.replace(0);
        if credits == 0 {
            let woken = async {
                conn.wake.wait().await;
            };
            futures_lite::future::or(woken, executor.clock.sleep_until(window.end_ns)).await;
            continue;
        }
        {
            let mut queue = conn.queue.borrow_mut();
            for _ in 0..credits {
                source.encoder.enqueue(executor, conn.index, &mut queue, &mut out, now, window.contains(now), now);
            }
        }
        if let Some(outcome) = write_before(executor, &mut writer, &out, deadline_ns).await {
            return outcome;
        }
        out.clear();
    }
}

/// Waits until every request of `conn` is answered or timed out, the
/// connection breaks, or the deadline passes.
async fn drain(executor: &Executor, conn: &Conn, deadline_ns: u64) {
    loop {
        if conn.queue.borrow().unresolved() == 0 || conn.broken.borrow().is_some() {
            return;
        }
        if executor.clock.now_ns() >= deadline_ns {
            return;
        }
        futures_lite::future::or(conn.wake.wait(), executor.clock.sleep_until(deadline_ns)).await;
    }
}

async fn read_replies(executor: Rc<Executor>, conn: Rc<Conn>, mut reader: ReadHalf<TcpStream>) {
    let reason = read_until_broken(&executor, &conn, &mut reader).await;
    *conn.broken.borrow_mut() = Some(reason);
    conn.wake.notify();
}

/// Reads and resolves replies until the connection fails; returns why.
async fn read_until_broken(executor: &Executor, conn: &Conn, reader: &mut ReadHalf<TcpStream>) -> String {
    let mut buf = vec![0u8; READ_BYTES];
    // Unparsed bytes are buf[start..end].
    let (mut start, mut end) = (0usize, 0usize);
    loop {
        if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            } else if buf.len() < READ_BYTES_MAX {
                buf.resize((buf.len() * 2).min(READ_BYTES_MAX), 0);
            } else {
                return format!("a reply longer than {READ_BYTES_MAX} bytes");
            }
        }
        let n = match reader.read(&mut buf[end..]).await {
            Ok(0) => return "closed by the server".into(),
            Ok(n) => n,
            Err(e) => return format!("read failed: {e}"),
        };
        end += n;
        let now = executor.clock.now_ns();
        let mut replies = 0;
        let mut failure = None;
        {
            let mut queue = conn.queue.borrow_mut();
            let mut recorder = executor.recorder();
            let mut history = executor.history.borrow_mut();
            loop {
                match resp::parse_reply(&buf[start..end]) {
                    Ok(Some((reply, used))) => {
                        start += used;
                        replies += 1;
                        match queue.pop_reply() {
                            Some(Popped::Live(item)) => {
                                recorder.reply(&item, now, reply.is_error());
                                if item.history != UNRECORDED {
                                    history.complete(item.history, now, &reply);
                                }
                            }
                            Some(Popped::AlreadyTimedOut(item)) => {
                                if item.history != UNRECORDED {
                                    history.complete(item.history, now, &reply);
                                }
                            }
                            None => {
                                failure = Some("a reply to no request".to_string());
                                break;
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        failure = Some(format!("protocol error: {e}"));
                        break;
                    }
                }
            }
        }
        if start == end {
            start = 0;
            end = 0;
        }
        conn.credits.set(conn.credits.get() + replies);
        conn.wake.notify();
        if let Some(reason) = failure {
            return reason;
        }
    }
}

/// Seconds to nanoseconds, for configuration.
pub fn seconds_to_ns(seconds: f64) -> u64 {
    (seconds * NS_PER_S).round() as u64
}

/// While a run lasts, poll `INFO replication` (paxoskv's per-shard
/// `shardN_leader` lines) and note every leader change, so charts can mark
/// failovers. Servers without those lines (Redis) yield no notes.
fn watch_leaders(addresses: &[SocketAddr], epoch: Instant, end: Instant, events: mpsc::Sender<Event>) {
    const POLL: Duration = Duration::from_millis(100);
    let mut known: Option<Vec<u32>> = None;
    while Instant::now() < end {
        let leaders = addresses.iter().find_map(|address| info_leaders(*address));
        if let Some(leaders) = leaders {
            if let Some(previous) = &known {
                for (shard, (&was, &now)) in previous.iter().zip(&leaders).enumerate() {
                    if was != now {
                        let t_ns = Instant::now().saturating_duration_since(epoch).as_nanos() as u64;
                        let what = match now {
                            0 => format!("shard {shard}: leader node {was} lost"),
                            _ => format!("shard {shard}: leader node {now}"),
                        };
                        let _ = events.send(Event::Note(t_ns, what));
                    }
                }
            }
            known = Some(leaders);
        }
        std::thread::sleep(POLL);
    }
}

pub fn unix_now_us() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// Elections, leader changes, step-downs and restarts from the paxoskv
/// protocol trace files in `dir` (`*.jsonl` and rotated `*.jsonl.N`, wall
/// clock), as notes in ns since the run's epoch (at Unix µs `epoch_unix_us`),
/// those within `0..=run_ns` only.
pub fn trace_notes(dir: &std::path::Path, epoch_unix_us: u64, run_ns: u64) -> Result<Vec<(u64, String)>, String> {
    let entries = std::fs::read_dir(dir).map_err(|e| format!("reading trace directory {}: {e}", dir.display()))?;
    let mut notes = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        // Node files only: the nemesis's own (`nemesis-run*.jsonl`) are
        // already notes.
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !name.contains(".jsonl") || name.starts_with("nemesis") {
            continue;
        }
        let text = std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
        let mut lines = text.lines();
        let header: serde_json::Value = lines.next().and_then(|l| serde_json::from_str(l).ok()).unwrap_or_default();
        if header["schema"] != "paxoskv-trace" || header["clock"] != "wall" {
            return Err(format!("{}: not a paxoskv-trace file with a wall clock", path.display()));
        }
        let shard = header["shard"].as_u64().unwrap_or(0);
        for line in lines {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else { continue }; // a torn last line
            let (Some(t_us), Some(node)) = (event["t_us"].as_u64(), event["node"].as_u64()) else { continue };
            let ballot = event["ballot"].as_str().unwrap_or("?");
            let what = match event["event"].as_str() {
                Some("role") if event["role"] == "leader" => format!("shard {shard}: leader node {node} ({ballot})"),
                Some("election") => format!("shard {shard}: node {node} stands for election ({ballot})"),
                Some("step_down") => format!("shard {shard}: node {node} steps down ({ballot})"),
                Some("restart") => format!("shard {shard}: node {node} restarted"),
                _ => continue,
            };
            let t_ns = t_us.checked_sub(epoch_unix_us).map(|d| d * 1_000);
            if let Some(t_ns) = t_ns.filter(|t| *t <= run_ns) {
                notes.push((t_ns, what));
            }
        }
    }
    Ok(notes)
}

/// The leader of each shard per a node's `INFO replication` (0: none known).
fn info_leaders(address: SocketAddr) -> Option<Vec<u32>> {
    let text = anatomy::info_text(address, "replication")?;
    let leaders: Vec<u32> = (0..)
        .map_while(|shard| {
            let key = format!("shard{shard}_leader:");
            text.lines().find_map(|line| line.strip_prefix(key.as_str())).and_then(|v| v.trim().parse().ok())
        })
        .collect();
    (!leaders.is_empty()).then_some(leaders)
}

#[cfg(test)]
pub mod tests_support {
    use crate::bundle::Params;

    /// Default parameters, as `loadgen run` would set them.
    pub fn params() -> Params {
        Params {
            mode: "open".into(),
            arrivals: "poisson".into(),
            connections: 16,
            pipeline: 100_000,
            read_ratio: 0.9,
            keys: 100_000,
            distribution: "uniform".into(),
            zipf_theta: 0.99,
            key_bytes: 16,
            value_bytes: 100,
            hash_tag_group: 0,
            warmup_s: 2.0,
            duration_s: 10.0,
            timeout_ms: 10_000,
            seed: 1,
        }
    }
}

#[cfg(test)]
mod trace_notes_tests {
    use super::trace_notes;

    /// Leader changes come from the trace files at their own times, inside
    /// the run only; other events, torn lines and rotated files are handled.
    #[test]
    fn leader_changes_are_read_from_trace_files_at_their_times() {
        let dir = std::env::temp_dir().join(format!("loadgen-trace-notes-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let header = r#"{"schema":"paxoskv-trace","version":1,"source":"node","clock":"wall","nodes":[1,2,3],"node":2,"shard":0}"#;
        let lines = [
            header,
            r#"{"t_us":999000,"event":"role","node":2,"role":"leader","ballot":"1.2"}"#,
            r#"{"t_us":1500000,"event":"commit","node":2,"index":9}"#,
            r#"{"t_us":1600000,"event":"election","node":2,"ballot":"2.2"}"#,
            r#"{"t_us":1600500,"event":"role","node":2,"role":"leader","ballot":"2.2"}"#,
            r#"{"t_us":9000000,"event":"role","node":2,"role":"leader","ballot":"3.2"}"#,
            r#"{"t_us":1700000,"event":"ro"#,
        ];
        std::fs::write(dir.join("node-2-shard-0.jsonl.1"), lines.join("\n")).unwrap();
        std::fs::write(dir.join("notes.txt"), "not a trace").unwrap();
        let notes = trace_notes(&dir, 1_000_000, 5_000_000_000).unwrap();
        assert_eq!(
            notes,
            vec![
                (600_000_000, "shard 0: node 2 stands for election (2.2)".to_string()),
                (600_500_000, "shard 0: leader node 2 (2.2)".to_string()),
            ]
        );
        std::fs::write(dir.join("node-3-shard-0.jsonl"), r#"{"schema":"paxoskv-trace","clock":"sim"}"#).unwrap();
        assert!(trace_notes(&dir, 0, 1).is_err(), "a simulator trace has no wall clock");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
