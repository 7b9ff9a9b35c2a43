//! The `etcd://` target (cargo feature `etcd`): the same schedules,
//! workload, in-flight accounting and recorder as the RESP engine, driven
//! through the official gRPC API (`etcd-client`) on a single-threaded tokio
//! runtime. GET is a linearizable Range, SET a Put.
//!
//! Each connection is one gRPC client (one HTTP/2 connection) to one member,
//! round-robin over the listed endpoints. gRPC replies may arrive out of
//! order, so every request is its own task: open loop spawns each at its
//! intended time and never waits; closed loop runs `pipeline` request loops
//! per connection.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

use etcd_client::{Client, KvClient};

use crate::engine::{RunConfig, RunOutput};
use crate::inflight::{InFlight, Mode};
use crate::recorder::{Recorder, SecondReport};
use crate::rng::SplitMix64;
use crate::schedule::{Schedule, SCHEDULE_STREAM};
use crate::workload::{OpKind, Workload, WORKLOAD_STREAM};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const START_LEAD: Duration = Duration::from_millis(10);
const TICK: Duration = Duration::from_millis(10);

struct Shared {
    config: RunConfig,
    epoch: Instant,
    recorder: RefCell<Recorder>,
    /// Requests sent and not yet resolved, per connection.
    outstanding: Vec<Cell<usize>>,
}

impl Shared {
    fn now_ns(&self) -> u64 {
        Instant::now().saturating_duration_since(self.epoch).as_nanos() as u64
    }

    async fn sleep_until(&self, t_ns: u64) {
        let now = self.now_ns();
        if t_ns > now {
            tokio::time::sleep(Duration::from_nanos(t_ns - now)).await;
        }
    }
}

pub fn run(
    config: &RunConfig,
    endpoints: &[String],
    on_second: &mut dyn FnMut(&SecondReport),
) -> Result<RunOutput, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the tokio runtime: {e}"))?;
    let seconds = Rc::new(RefCell::new(Vec::new()));
    let local = tokio::task::LocalSet::new();
    let mut nemesis = None;
    let totals = local.block_on(&runtime, drive(config.clone(), endpoints.to_vec(), seconds.clone(), &mut nemesis))?;
    let seconds = std::mem::take(&mut *seconds.borrow_mut());
    for second in &seconds {
        on_second(second);
    }
    let faults = match nemesis.take() {
        Some(thread) => thread.join().map_err(|_| "the nemesis thread panicked".to_string())?,
        None => Vec::new(),
    };
    let notes = crate::nemesis::notes(&faults, config.window());
    Ok(RunOutput { window: config.window(), totals, seconds, notes, stages: Vec::new(), faults, check: None })
}

async fn drive(
    config: RunConfig,
    endpoints: Vec<String>,
    seconds: Rc<RefCell<Vec<SecondReport>>>,
    nemesis: &mut Option<std::thread::JoinHandle<Vec<crate::nemesis::FaultRecord>>>,
) -> Result<crate::recorder::Totals, String> {
    let mut clients = Vec::new();
    for index in 0..config.connections {
        let endpoint = &endpoints[index % endpoints.len()];
        let options = etcd_client::ConnectOptions::new().with_connect_timeout(CONNECT_TIMEOUT);
        let client = Client::connect([endpoint.as_str()], Some(options))
            .await
            .map_err(|e| format!("cannot connect to etcd at {endpoint}: {e}"))?;
        clients.push(client.kv_client());
    }
    let epoch = Instant::now() + START_LEAD;
    let window = config.window();
    if let Some(faults) = config.nemesis.clone() {
        let epoch_unix_us = crate::engine::unix_now_us() + START_LEAD.as_micros() as u64;
        *nemesis = Some(std::thread::spawn(move || faults.run(epoch, epoch_unix_us, window, &[])));
    }
    let sink = seconds.clone();
    let recorder = Recorder::new(
        0,
        window,
        config.latency_us_max(),
        Box::new(move |report: SecondReport| sink.borrow_mut().push(report)),
    );
    let shared = Rc::new(Shared {
        outstanding: (0..config.connections).map(|_| Cell::new(0)).collect(),
        config,
        epoch,
        recorder: RefCell::new(recorder),
    });
    let ticker = tokio::task::spawn_local({
        let shared = shared.clone();
        async move {
            loop {
                tokio::time::sleep(TICK).await;
                let now = shared.now_ns();
                shared.recorder.borrow_mut().advance(now);
            }
        }
    });
    let mut drivers = Vec::new();
    for (index, kv) in clients.into_iter().enumerate() {
        let shared = shared.clone();
        drivers.push(tokio::task::spawn_local(async move {
            match shared.config.mode {
                Mode::Open => open_loop(shared, index, kv).await,
                Mode::Closed => closed_loop(shared, index, kv).await,
            }
        }));
    }
    for driver in drivers {
        let _ = driver.await;
    }
    // Let outstanding requests finish (each has its own timeout).
    let deadline_ns = window.end_ns + shared.config.drain_ns + shared.config.timeout_ns;
    while shared.outstanding.iter().any(|c| c.get() > 0) && shared.now_ns() < deadline_ns {
        tokio::time::sleep(TICK).await;
    }
    ticker.abort();
    let mut recorder = shared.recorder.borrow_mut();
    recorder.advance(shared.now_ns());
    let finished =
        std::mem::replace(&mut *recorder, Recorder::new(0, window, shared.config.latency_us_max(), Box::new(|_| {})));
    drop(recorder);
    Ok(finished.finish())
}

fn workload_for(config: &RunConfig, index: usize) -> Workload {
    let seed = SplitMix64::derive(config.seed, WORKLOAD_STREAM, index as u64).next_u64();
    Workload::new(config.workload.clone(), seed)
}

/// One request, resolved into the recorder: a reply, an error, or a timeout.
async fn request(shared: Rc<Shared>, index: usize, mut kv: KvClient, op: OpKind, key: Vec<u8>, origin_ns: u64) {
    let item = InFlight {
        origin_ns,
        op,
        measured: shared.config.window().contains(origin_ns),
        history: crate::history::UNRECORDED,
    };
    let budget_ns = (origin_ns + shared.config.timeout_ns).saturating_sub(shared.now_ns());
    let call = async {
        match op {
            OpKind::Get => kv.get(key, None).await.map(|_| ()),
            OpKind::Set => kv.put(key, shared.config.workload.value.clone(), None).await.map(|_| ()),
        }
    };
    let result = tokio::time::timeout(Duration::from_nanos(budget_ns.max(1)), call).await;
    let now = shared.now_ns();
    let mut recorder = shared.recorder.borrow_mut();
    match result {
        Ok(Ok(())) => recorder.reply(&item, now, false),
        Ok(Err(_)) => recorder.reply(&item, now, true),
        Err(_) => recorder.timeout(&item, now),
    }
    let outstanding = &shared.outstanding[index];
    outstanding.set(outstanding.get() - 1);
}

async fn open_loop(shared: Rc<Shared>, index: usize, kv: KvClient) {
    let config = &shared.config;
    let Some(rate) = config.rate_ops_s else { return };
    let seed = SplitMix64::derive(config.seed, SCHEDULE_STREAM, index as u64).next_u64();
    let mut schedule = Schedule::new(config.arrivals, rate / config.connections as f64, seed);
    let mut workload = workload_for(config, index);
    let end_ns = config.window().end_ns;
    loop {
        let intended = schedule.peek_ns();
        if intended >= end_ns {
            return;
        }
        shared.sleep_until(intended).await;
        schedule.advance();
        let (op, key_index) = workload.next_request();
        let outstanding = &shared.outstanding[index];
        if outstanding.get() >= config.max_outstanding {
            let now = shared.now_ns();
            shared.recorder.borrow_mut().local_error(op, config.window().contains(intended), now);
            continue;
        }
        outstanding.set(outstanding.get() + 1);
        let mut key = Vec::new();
        config.workload.key_space.write_key(key_index, &mut key);
        tokio::task::spawn_local(request(shared.clone(), index, kv.clone(), op, key, intended));
    }
}

async fn closed_loop(shared: Rc<Shared>, index: usize, kv: KvClient) {
    let config = &shared.config;
    let end_ns = config.window().end_ns;
    let mut loops = Vec::new();
    for lane in 0..config.pipeline.max(1) {
        let shared = shared.clone();
        let kv = kv.clone();
        let mut workload = workload_for(config, index * 1024 + lane);
        loops.push(tokio::task::spawn_local(async move {
            while shared.now_ns() < end_ns {
                let (op, key_index) = workload.next_request();
                let mut key = Vec::new();
                shared.config.workload.key_space.write_key(key_index, &mut key);
                let outstanding = &shared.outstanding[index];
                outstanding.set(outstanding.get() + 1);
                let sent = shared.now_ns();
                request(shared.clone(), index, kv.clone(), op, key, sent).await;
            }
        }));
    }
    for task in loops {
        let _ = task.await;
    }
}
