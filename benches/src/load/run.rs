//! Driving the load: closed loop (`-c` workers, each sending its next request as soon as the
//! previous one ends) or open loop (requests scheduled at `--rate`, each timed from its
//! scheduled send, so queueing in the target, or in the generator once `-c` requests are in
//! flight, shows in the latency). Warm-up requests run the same way but are not recorded.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::time::Instant;

use super::client::{CONNECT_BACKOFF, Connection};
use super::options::Plan;
use super::process::{self, Reading};
use super::recorder::{ErrorKind, Recorder, Sample};
use super::report::Report;

/// State shared by the workers of one run.
struct Run {
    plan: Plan,
    recorder: Mutex<Recorder>,
    /// Closed loop: measured requests started. Open loop: tickets handed out.
    issued: AtomicU64,
    /// Open loop: tickets that fall in the warm-up.
    warm_tickets: u64,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    /// Latest completion of a measured request, as µs after `measure_from`.
    last_done_us: AtomicU64,
}

/// What a worker should do next.
enum Next {
    Send { origin: Instant, measured: bool },
    Stop,
}

// === impl Run ===

impl Run {
    async fn next(&self) -> Next {
        let now = Instant::now();
        match self.plan.rate {
            None => {
                if now >= self.end {
                    return Next::Stop;
                }
                let measured = now >= self.measure_from;
                if measured && self.issued.fetch_add(1, Ordering::Relaxed) >= self.plan.requests {
                    return Next::Stop;
                }
                Next::Send {
                    origin: now,
                    measured,
                }
            }
            Some(rate) => {
                let ticket = self.issued.fetch_add(1, Ordering::Relaxed);
                let at = self.start + Duration::from_secs_f64(ticket as f64 / rate);
                if at >= self.end || ticket >= self.warm_tickets + self.plan.requests {
                    return Next::Stop;
                }
                tokio::time::sleep_until(at).await;
                Next::Send {
                    origin: at,
                    measured: ticket >= self.warm_tickets,
                }
            }
        }
    }

    fn done(&self, measured: bool, result: Result<u64, ErrorKind>, sample: &Sample) {
        if !measured {
            return;
        }
        let mut recorder = self.recorder.lock();
        match result {
            Ok(bytes) => recorder.ok(sample, bytes),
            Err(kind) => recorder.error(kind),
        }
        drop(recorder);
        let us = self.measure_from.elapsed().as_micros() as u64;
        self.last_done_us.fetch_max(us, Ordering::Relaxed);
    }

    async fn worker(self: Arc<Self>, mut conn: Option<Connection>) {
        let mut sample = Sample::default();
        loop {
            let Next::Send { origin, measured } = self.next().await else {
                return;
            };
            let mut c = match conn.take() {
                Some(c) if !c.is_closed() => c,
                _ => match Connection::open(&self.plan).await {
                    Ok(c) => c,
                    Err(kind) => {
                        self.done(measured, Err(kind), &sample);
                        tokio::time::sleep(CONNECT_BACKOFF).await;
                        continue;
                    }
                },
            };
            sample.first_chunk = None;
            sample.gaps.clear();
            let result = c.exchange(&self.plan, origin, &mut sample).await;
            // After a timeout or a broken exchange the connection state is unknown: reconnect.
            if matches!(result, Ok(_) | Err(ErrorKind::Status(_))) {
                conn = Some(c);
            }
            self.done(measured, result, &sample);
        }
    }
}

/// Runs the plan to completion and reports.
pub async fn run(plan: Plan) -> anyhow::Result<Report> {
    // HTTP/2 workers share a few connections opened up front; HTTP/1.1 workers open their own.
    let mut shared = Vec::new();
    if plan.h2 {
        for _ in 0..plan.connections {
            let conn = Connection::open(&plan)
                .await
                .map_err(|kind| anyhow::anyhow!("cannot open an HTTP/2 connection: {kind}"))?;
            shared.push(conn);
        }
    }
    let start = Instant::now();
    let measure_from = start + plan.warmup;
    let run = Arc::new(Run {
        warm_tickets: plan
            .rate
            .map_or(0, |r| (plan.warmup.as_secs_f64() * r).ceil() as u64),
        recorder: Mutex::new(Recorder::new()?),
        issued: AtomicU64::new(0),
        start,
        measure_from,
        end: measure_from + plan.duration,
        last_done_us: AtomicU64::new(0),
        plan,
    });

    let readings = Arc::new(Mutex::new(Vec::<Reading>::new()));
    let sampler = (!run.plan.pids.is_empty()).then(|| {
        let pids = run.plan.pids.clone();
        let readings = Arc::clone(&readings);
        let from = run.measure_from;
        tokio::spawn(async move {
            // The first reading lands on the start of the measured window.
            let mut tick = tokio::time::interval_at(from, process::PERIOD);
            loop {
                tick.tick().await;
                if let Some(r) = process::read(&pids) {
                    readings.lock().push(r);
                }
            }
        })
    });

    let workers: Vec<_> = (0..run.plan.concurrency)
        .map(|i| {
            let conn = shared
                .get(i % shared.len().max(1))
                .and_then(Connection::share);
            tokio::spawn(Arc::clone(&run).worker(conn))
        })
        .collect();
    for w in workers {
        w.await?;
    }
    if let Some(task) = sampler {
        if let Some(r) = process::read(&run.plan.pids) {
            readings.lock().push(r);
        }
        task.abort();
    }

    let elapsed = Duration::from_micros(run.last_done_us.load(Ordering::Relaxed));
    let recorder = run.recorder.lock();
    let process = process::summarise(
        &run.plan.pids,
        &readings.lock(),
        run.measure_from,
        recorder.ok_count() + recorder.error_count(),
    );
    Ok(Report::new(&run.plan, &recorder, elapsed, process))
}
