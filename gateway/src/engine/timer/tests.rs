use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::task::{Wake, Waker};
use std::thread::{self, Thread};
use std::time::Instant;

use super::clock::{self, GRAIN, TEST_SHARD};
use super::wheel::{Refresh, SLOTS, Wheel};
use super::*;

/// A waker that counts its wakes and unparks the thread that made it.
struct Flag {
    wakes: AtomicUsize,
    woke: AtomicBool,
    thread: Thread,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.woke.store(true, Ordering::SeqCst);
        self.thread.unpark();
    }
}

fn flag() -> (Arc<Flag>, Waker) {
    let f = Arc::new(Flag {
        wakes: AtomicUsize::new(0),
        woke: AtomicBool::new(false),
        thread: thread::current(),
    });
    (f.clone(), Waker::from(f))
}

/// Waits (parked) until `f` was woken, at most `limit`.
fn wait_woken(f: &Flag, limit: Duration) -> bool {
    let start = Instant::now();
    while !f.woke.load(Ordering::SeqCst) {
        let left = limit.saturating_sub(start.elapsed());
        if left.is_zero() {
            return false;
        }
        thread::park_timeout(left);
    }
    true
}

/// Tests that inspect [`TEST_SHARD`] take turns.
static TEST_SHARD_LOCK: StdMutex<()> = StdMutex::new(());

// === the wheel, on ticks given by hand ===

#[test]
fn wheel_fires_at_the_deadline_tick_and_not_before() {
    let mut w = Wheel::new();
    let (f, waker) = flag();
    let i = w.arm(waker, 5);
    let mut woken = Vec::new();
    w.advance(4, &mut woken);
    assert!(woken.is_empty());
    assert!(matches!(
        w.refresh(i, &Waker::noop().clone()),
        Refresh::NewWaker
    ));
    w.advance(5, &mut woken);
    assert_eq!(woken.len(), 1);
    woken.drain(..).for_each(Waker::wake);
    assert_eq!(f.wakes.load(Ordering::SeqCst), 1);
    assert_eq!(w.armed(), 0);
    assert!(!w.is_free(i), "a fired entry stays its owner's");
    assert!(matches!(w.refresh(i, Waker::noop()), Refresh::Fired));
    assert!(w.is_free(i));
}

#[test]
fn wheel_passes_over_a_far_deadline_until_its_turn() {
    let mut w = Wheel::new();
    let far = 3 * SLOTS as u64 + 7;
    let _ = w.arm(Waker::noop().clone(), far);
    let mut woken = Vec::new();
    for t in 1..far {
        w.advance(t, &mut woken);
        assert!(woken.is_empty(), "fired at tick {t}, due at {far}");
    }
    w.advance(far, &mut woken);
    assert_eq!(woken.len(), 1);
}

#[test]
fn wheel_catches_up_after_the_clock_jumps() {
    let mut w = Wheel::new();
    let _ = w.arm(Waker::noop().clone(), 10);
    let _ = w.arm(Waker::noop().clone(), 2000);
    let late = w.arm(Waker::noop().clone(), 5000);
    let mut woken = Vec::new();
    w.advance(3000, &mut woken);
    assert_eq!(woken.len(), 2);
    woken.clear();
    for t in 3001..5000 {
        w.advance(t, &mut woken);
    }
    assert!(woken.is_empty());
    w.advance(5000, &mut woken);
    assert_eq!(woken.len(), 1);
    assert!(matches!(w.refresh(late, Waker::noop()), Refresh::Fired));
}

#[test]
fn wheel_fires_a_deadline_already_past_on_the_next_tick() {
    let mut w = Wheel::new();
    let mut woken = Vec::new();
    w.advance(100, &mut woken);
    let _ = w.arm(Waker::noop().clone(), 50);
    w.advance(101, &mut woken);
    assert_eq!(woken.len(), 1);
}

#[test]
fn wheel_cancel_frees_entries_for_the_next_timers() {
    let mut w = Wheel::new();
    for round in 0..3u64 {
        let ids: Vec<u32> = (0..10_000u64)
            .map(|k| w.arm(Waker::noop().clone(), 1 + round * 7000 + k % 6000))
            .collect();
        assert_eq!(w.armed(), 10_000);
        for i in ids {
            assert!(w.release(i).is_some());
        }
        assert_eq!(w.armed(), 0);
        // Memory is the peak of live timers, not the number ever armed.
        assert_eq!(w.capacity_used(), 10_000);
    }
    let mut woken = Vec::new();
    w.advance(30_000, &mut woken);
    assert!(woken.is_empty(), "a cancelled timer fired");
}

/// Random arms, cancels, re-polls and clock steps (small and large) against a model: each
/// timer fires at the first step whose tick reaches its deadline, exactly once, never
/// after being cancelled.
#[test]
fn wheel_matches_a_model_under_random_operations() {
    let mut rng = fastrand::Rng::with_seed(7);
    for _ in 0..20 {
        let mut w = Wheel::new();
        let mut model: BTreeMap<u32, (u64, Arc<Flag>)> = BTreeMap::new();
        let mut fired: Vec<(u32, Arc<Flag>)> = Vec::new();
        let mut now = 0u64;
        let mut woken = Vec::new();
        for _ in 0..3000 {
            match rng.u8(0..10) {
                0..=4 => {
                    let deadline = now.saturating_sub(3) + rng.u64(0..3 * SLOTS as u64);
                    let (f, waker) = flag();
                    let i = w.arm(waker, deadline);
                    assert!(model.insert(i, (deadline, f)).is_none(), "index reused");
                }
                5 | 6 => {
                    if let Some(&i) = model.keys().nth(rng.usize(0..model.len().max(1))) {
                        assert!(w.release(i).is_some());
                        model.remove(&i);
                    }
                }
                7 => {
                    if !fired.is_empty() {
                        let (i, f) = fired.swap_remove(rng.usize(0..fired.len()));
                        assert!(matches!(w.refresh(i, Waker::noop()), Refresh::Fired));
                        assert_eq!(f.wakes.load(Ordering::SeqCst), 1);
                    }
                }
                _ => {
                    now += if rng.u8(0..20) == 0 {
                        rng.u64(SLOTS as u64..4 * SLOTS as u64)
                    } else {
                        rng.u64(1..20)
                    };
                    w.advance(now, &mut woken);
                    woken.drain(..).for_each(Waker::wake);
                    let due: Vec<u32> = model
                        .iter()
                        .filter(|(_, (d, _))| *d <= now)
                        .map(|(i, _)| *i)
                        .collect();
                    for (i, (_, f)) in model.iter() {
                        let expect = usize::from(due.contains(i));
                        assert_eq!(f.wakes.load(Ordering::SeqCst), expect, "entry {i}");
                    }
                    for i in due {
                        if let Some((_, f)) = model.remove(&i) {
                            fired.push((i, f));
                        }
                    }
                    assert_eq!(w.armed(), model.len());
                }
            }
        }
    }
}

// === Within, on the real clock ===

fn pending_forever() -> std::future::Pending<()> {
    std::future::pending()
}

#[tokio::test]
async fn ready_values_pass_and_a_zero_wait_times_out_only_when_pending() {
    assert_eq!(within(Duration::from_secs(3600), async { 7 }).await, Ok(7));
    assert_eq!(within(Duration::ZERO, async { 8 }).await, Ok(8));
    assert_eq!(
        within(Duration::ZERO, pending_forever()).await,
        Err(TimedOut)
    );
    assert_eq!(
        within(Duration::from_millis(20), pending_forever()).await,
        Err(TimedOut)
    );
}

#[tokio::test]
async fn until_a_deadline_fires_never_before_it_and_a_past_one_fires_soon() {
    assert_eq!(until(Instant::now(), async { 9 }).await, Ok(9));
    for ms in [15, 40] {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(ms);
        assert_eq!(until(deadline, pending_forever()).await, Err(TimedOut));
        let now = Instant::now();
        assert!(now >= deadline, "fired {:?} early", deadline - now);
    }
    let start = Instant::now();
    let past = start.checked_sub(Duration::from_secs(1)).unwrap_or(start);
    assert_eq!(until(past, pending_forever()).await, Err(TimedOut));
    // One tick of the clock, with room for a busy machine.
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_future_ready_at_once_arms_no_timer_and_a_pending_one_does() {
    let _turn = TEST_SHARD_LOCK.lock();
    clock::set_home(TEST_SHARD);
    let armed = || clock::shard(TEST_SHARD).lock().armed();
    let mut cx = Context::from_waker(Waker::noop());

    let before = armed();
    let mut ready = std::pin::pin!(within(Duration::from_secs(5), async { 1 }));
    assert_eq!(ready.as_mut().poll(&mut cx), Poll::Ready(Ok(1)));
    assert_eq!(armed(), before);

    let mut pending = Box::pin(within(Duration::from_secs(5), pending_forever()));
    assert_eq!(pending.as_mut().poll(&mut cx), Poll::Pending);
    assert_eq!(armed(), before + 1);
    assert_eq!(pending.timer.armed_at().map(|(s, _)| s), Some(TEST_SHARD));
}

#[test]
fn dropping_a_pending_within_frees_its_entry() {
    let _turn = TEST_SHARD_LOCK.lock();
    clock::set_home(TEST_SHARD);
    let shard = clock::shard(TEST_SHARD);
    let mut cx = Context::from_waker(Waker::noop());
    let before = shard.lock().armed();
    let used = shard.lock().capacity_used();
    for _ in 0..1000 {
        let mut f = Box::pin(within(Duration::from_secs(60), pending_forever()));
        assert_eq!(f.as_mut().poll(&mut cx), Poll::Pending);
        let (_, index) = f.timer.armed_at().unwrap();
        assert!(!shard.lock().is_free(index));
        drop(f);
        assert!(shard.lock().is_free(index));
    }
    assert_eq!(shard.lock().armed(), before);
    assert!(shard.lock().capacity_used() <= used + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_timers_fire_never_early_and_about_on_time() {
    let mut rng = fastrand::Rng::with_seed(3);
    let tasks: Vec<_> = (0..300)
        .map(|k| {
            let wait = Duration::from_millis(rng.u64(1..150));
            tokio::spawn(async move {
                let start = Instant::now();
                // Yields now and then, so the task may move between the workers.
                let inner = async {
                    loop {
                        tokio::task::yield_now().await;
                        tokio::time::sleep(Duration::from_millis(2 + k % 9)).await;
                    }
                };
                let r: Result<(), TimedOut> = within(wait, inner).await;
                (r, wait, start.elapsed())
            })
        })
        .collect();
    let mut late = Vec::new();
    for t in tasks {
        let (r, wait, took) = t.await.unwrap();
        assert_eq!(r, Err(TimedOut));
        assert!(took >= wait, "fired early: {took:?} < {wait:?}");
        late.push(took - wait);
    }
    late.sort();
    // A shared machine can hold the clock thread up now and then; the median cannot.
    let median = late[late.len() / 2];
    assert!(median <= 3 * GRAIN, "median lateness {median:?}");
}

#[test]
fn timers_fire_on_no_steal_runtimes_one_per_thread() {
    let threads: Vec<_> = (0..4)
        .map(|_| {
            thread::spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                let local = tokio::task::LocalSet::new();
                let handles: Vec<_> = (0..100u64)
                    .map(|k| {
                        local.spawn_local(async move {
                            let wait = Duration::from_millis(5 + k % 40);
                            let start = Instant::now();
                            let r = within(wait, pending_forever()).await;
                            r == Err(TimedOut) && start.elapsed() >= wait
                        })
                    })
                    .collect();
                rt.block_on(local.run_until(async {
                    let mut ok = true;
                    for h in handles {
                        ok &= h.await.unwrap();
                    }
                    ok
                }))
            })
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap());
    }
}

#[test]
fn a_timer_armed_on_one_thread_wakes_the_waker_of_its_last_poll_on_another() {
    let (first, first_waker) = flag();
    let mut f = Box::pin(within(Duration::from_millis(30), pending_forever()));
    assert_eq!(
        f.as_mut().poll(&mut Context::from_waker(&first_waker)),
        Poll::Pending
    );
    let moved = thread::spawn(move || {
        let (second, second_waker) = flag();
        let mut cx = Context::from_waker(&second_waker);
        // The task moved: its waker is a new one, swapped in on this poll.
        assert_eq!(f.as_mut().poll(&mut cx), Poll::Pending);
        let woke = wait_woken(&second, Duration::from_secs(5));
        (woke, f.as_mut().poll(&mut cx))
    })
    .join()
    .unwrap();
    let (woke, polled) = moved;
    assert!(woke, "the second waker was never woken");
    assert_eq!(polled, Poll::Ready(Err(TimedOut)));
    assert_eq!(first.wakes.load(Ordering::SeqCst), 0);
}

#[test]
fn a_timer_armed_on_one_thread_is_cancelled_on_another() {
    let _turn = TEST_SHARD_LOCK.lock();
    clock::set_home(TEST_SHARD);
    let (woken, waker) = flag();
    let mut f = Box::pin(within(Duration::from_millis(20), pending_forever()));
    assert_eq!(
        f.as_mut().poll(&mut Context::from_waker(&waker)),
        Poll::Pending
    );
    let (_, index) = f.timer.armed_at().unwrap();
    let _ = thread::spawn(move || drop(f)).join();
    assert!(clock::shard(TEST_SHARD).lock().is_free(index));
    thread::sleep(Duration::from_millis(100));
    assert_eq!(
        woken.wakes.load(Ordering::SeqCst),
        0,
        "a cancelled timer woke"
    );
}

#[test]
fn a_timer_fires_after_the_clock_has_parked() {
    // Other tests may keep timers armed, and so the clock awake; then this checks plain
    // firing only. Run alone, it covers the unpark path.
    assert_eq!(
        futures_block_on(within(Duration::from_millis(10), pending_forever())),
        Err(TimedOut)
    );
    let start = Instant::now();
    while !clock::is_asleep() && start.elapsed() < Duration::from_secs(3) {
        thread::sleep(Duration::from_millis(50));
    }
    let (f, waker) = flag();
    let mut t = Box::pin(within(Duration::from_millis(20), pending_forever()));
    let mut cx = Context::from_waker(&waker);
    assert_eq!(t.as_mut().poll(&mut cx), Poll::Pending);
    assert!(wait_woken(&f, Duration::from_secs(5)), "never fired");
    assert_eq!(t.as_mut().poll(&mut cx), Poll::Ready(Err(TimedOut)));
}

fn futures_block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}
