//! [`Threads`]: a small persistent worker pool, std only.
//!
//! Why not spawn per call or use a general-purpose pool: a batch-1 forward pass of a small MLP
//! takes ~10–50 µs, so the fork/join must cost well under a microsecond when the workers are
//! warm. Workers therefore spin briefly after each job (then park on a condvar), the caller takes
//! part in the work, and the caller never waits for a worker that has not started on the job: it
//! closes the job when it runs out of tasks and waits only for workers already inside it. A
//! descheduled worker thus costs nothing but its missing help.
//!
//! Tasks are split into one contiguous range per participant (caller = 0, worker `i` = `i`), so a
//! repeated call gives each thread the same part of the weights (hot in its own L2 cache); a
//! participant that finishes its range steals from the others', which keeps noisy machines
//! balanced.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long an idle worker spins (checking for a new job) before it parks. Long enough to bridge
/// the gap between the layers of one forward pass and between back-to-back calls; short enough
/// not to burn a core for long after the last call.
const SPIN: Duration = Duration::from_micros(200);

/// How long the caller spins waiting for the workers inside a job before it parks.
const CLOSE_SPIN: Duration = Duration::from_micros(50);

/// Spinning with the pause instruction only for this long, then yielding to the OS between
/// checks: on an oversubscribed machine a pure spin burns the time slice that another of our
/// threads (queued on the same core) needs; a yield hands it over, for ~1 µs more latency.
const HOT_SPIN: Duration = Duration::from_micros(5);

/// One round of waiting, `since` the wait began: a pause burst while hot, a yield after.
fn wait_a_bit(since: Instant) {
    if since.elapsed() < HOT_SPIN {
        for _ in 0..32 {
            std::hint::spin_loop();
        }
    } else {
        std::thread::yield_now();
    }
}

// `state` packs the workers inside the current job (low bits), whether the job still admits
// workers, a shutdown flag and the job's epoch (high bits). One word, so a worker can enter a job
// with one compare-exchange that fails if the caller has closed it meanwhile.
const ACTIVE_MASK: usize = (1 << 14) - 1;
const OPEN: usize = 1 << 14;
const SHUTDOWN: usize = 1 << 15;
const EPOCH_SHIFT: usize = 16;

/// The most threads a pool runs (the caller plus `MAX_THREADS - 1` workers).
pub const MAX_THREADS: usize = ACTIVE_MASK;

/// A pool of persistent worker threads for the CPU kernels.
///
/// `Threads::new(n)` runs jobs on `n` threads: the calling thread plus `n - 1` workers started
/// once and kept until the pool is dropped. [`Threads::default`] sizes it to
/// [`std::thread::available_parallelism`]. On targets without threads (`wasm32-unknown-unknown`)
/// or when the OS refuses to start a thread, the pool has fewer workers and
/// [`count`](Self::count) says how many threads it really runs.
///
/// A pool runs one job at a time; a job submitted while another is running (from another thread,
/// or from inside a task) runs on the submitting thread alone, so nested use never deadlocks.
pub struct Threads {
    count: usize,
    shared: Option<Arc<Shared>>,
    handles: Vec<JoinHandle<()>>,
}

/// One participant's share of the tasks: it takes `next` up to `end`, and so may a thief.
#[repr(align(128))] // Its own cache lines (and their adjacent-line prefetch pair): no false sharing.
struct Range {
    next: AtomicUsize,
    end: AtomicUsize,
}

/// What the workers read of the current job (it lives on the submitting thread's stack).
struct Job<'a> {
    f: &'a (dyn Fn(usize) + Sync),
    /// The first panic payload of a worker, re-raised by the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

struct Shared {
    state: AtomicUsize,
    /// The current job; valid while a worker is counted in `state` (see `run`).
    job: AtomicPtr<Job<'static>>,
    ranges: Box<[Range]>,
    /// Workers parked (or about to park) on `wake`.
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    /// Held by the thread submitting a job: one job at a time.
    dispatch: Mutex<()>,
    /// The submitting thread while it is parked waiting for the workers to leave a job.
    caller: Mutex<Option<std::thread::Thread>>,
    caller_parked: AtomicBool,
}

impl Threads {
    /// A pool running jobs on `threads` threads in all (the caller included), at least 1 and at
    /// most [`MAX_THREADS`].
    pub fn new(threads: usize) -> Self {
        let want = threads.clamp(1, MAX_THREADS);
        if want == 1 {
            return Self::single();
        }
        let shared = Arc::new(Shared {
            state: AtomicUsize::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            ranges: (0..want)
                .map(|_| Range {
                    next: AtomicUsize::new(0),
                    end: AtomicUsize::new(0),
                })
                .collect(),
            sleepers: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            dispatch: Mutex::new(()),
            caller: Mutex::new(None),
            caller_parked: AtomicBool::new(false),
        });
        let mut handles = Vec::with_capacity(want - 1);
        for id in 1..want {
            let s = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name(format!("wgpu-mlp-cpu-{id}"))
                .spawn(move || worker(&s, id));
            match spawned {
                Ok(h) => handles.push(h),
                // No threads on this target (or none left): run with those we have.
                Err(_) => break,
            }
        }
        if handles.is_empty() {
            return Self::single();
        }
        Threads {
            count: handles.len() + 1,
            shared: Some(shared),
            handles,
        }
    }

    /// A pool that runs every job on the calling thread.
    pub fn single() -> Self {
        Threads {
            count: 1,
            shared: None,
            handles: Vec::new(),
        }
    }

    /// Threads a job runs on, the caller included.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Calls `f(i)` once for every `i` in `0..tasks`, spread over the pool's threads, and returns
    /// when all calls have returned. Tasks are handed out as one contiguous range per thread
    /// (the caller gets the first), with idle threads stealing from the others' ranges.
    ///
    /// A panic in a task is re-raised here once every started task has finished.
    pub fn run(&self, tasks: usize, f: &(dyn Fn(usize) + Sync)) {
        let inline = || (0..tasks).for_each(f);
        let Some(shared) = &self.shared else {
            return inline();
        };
        if tasks <= 1 {
            return inline();
        }
        // Busy (another thread's job, or a task submitting a job): run here, never wait.
        let Ok(_busy) = shared.dispatch.try_lock() else {
            return inline();
        };
        // One range per participant the pool was built for; those of workers that failed to
        // start are simply stolen.
        let t = shared.ranges.len();
        for (r, range) in shared.ranges.iter().enumerate() {
            range.next.store(r * tasks / t, Ordering::Relaxed);
            range.end.store((r + 1) * tasks / t, Ordering::Relaxed);
        }
        let job = Job {
            f,
            panic: Mutex::new(None),
        };
        // The lifetime is erased here; `Close` below makes the workers' use of it end before
        // `job` (and `f`) go out of scope, even if `f` panics on this thread.
        let job_ptr = (&job as *const Job<'_>).cast::<Job<'static>>().cast_mut();
        shared.job.store(job_ptr, Ordering::Relaxed);
        let s = shared.state.load(Ordering::Relaxed);
        debug_assert_eq!(s & (ACTIVE_MASK | OPEN), 0);
        let epoch = (s >> EPOCH_SHIFT).wrapping_add(1);
        // SeqCst pairs with the SeqCst `sleepers` increment in `worker`: either we see the
        // sleeper, or it sees the new epoch before it waits.
        shared
            .state
            .store((epoch << EPOCH_SHIFT) | OPEN, Ordering::SeqCst);
        if shared.sleepers.load(Ordering::SeqCst) > 0 {
            let _g = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.wake.notify_all();
        }
        let close = Close(shared);
        take_tasks(shared, &job, 0);
        drop(close);
        let panic = job.panic.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(p) = panic {
            resume_unwind(p);
        }
    }
}

/// Closes the current job and waits until no worker is inside it (on drop, so also on unwind).
///
/// It waits actively first (a worker finishing its last task is usually microseconds away), then
/// parks: a worker still inside is likely preempted on a busy machine, and a parked caller leaves
/// its core idle, so the scheduler can move that worker there instead of waiting for its own.
struct Close<'a>(&'a Shared);

impl Drop for Close<'_> {
    fn drop(&mut self) {
        let shared = self.0;
        let state = &shared.state;
        state.fetch_and(!OPEN, Ordering::Relaxed);
        let since = Instant::now();
        // Acquire pairs with the workers' exit: their writes are visible after this.
        while state.load(Ordering::Acquire) & ACTIVE_MASK != 0 {
            if since.elapsed() < CLOSE_SPIN {
                wait_a_bit(since);
                continue;
            }
            *shared.caller.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current());
            // SeqCst pairs with the workers' SeqCst exit: either the last one out sees this
            // flag and unparks us, or we see the count at zero here.
            shared.caller_parked.store(true, Ordering::SeqCst);
            while state.load(Ordering::SeqCst) & ACTIVE_MASK != 0 {
                std::thread::park();
            }
            shared.caller_parked.store(false, Ordering::Relaxed);
            break;
        }
    }
}

/// A worker leaves the job: the last one out wakes a parked caller.
fn leave(shared: &Shared) {
    let before = shared.state.fetch_sub(1, Ordering::SeqCst);
    if before & ACTIVE_MASK == 1
        && shared.caller_parked.load(Ordering::SeqCst)
        && let Some(t) = &*shared.caller.lock().unwrap_or_else(|e| e.into_inner())
    {
        t.unpark();
    }
}

/// Runs tasks of `job`: participant `me`'s own range first, then whatever is left in the others'.
fn take_tasks(shared: &Shared, job: &Job<'_>, me: usize) {
    let n = shared.ranges.len();
    for off in 0..n {
        let range = &shared.ranges[(me + off) % n];
        let end = range.end.load(Ordering::Relaxed);
        loop {
            let i = range.next.fetch_add(1, Ordering::Relaxed);
            if i >= end {
                break;
            }
            (job.f)(i);
        }
    }
}

fn worker(shared: &Shared, me: usize) {
    let mut seen = 0usize; // the last epoch this worker entered or saw closed
    let mut idle_since: Option<Instant> = None;
    loop {
        let s = shared.state.load(Ordering::Acquire);
        if s & SHUTDOWN != 0 {
            return;
        }
        let epoch = s >> EPOCH_SHIFT;
        if epoch != seen {
            if s & OPEN == 0 {
                seen = epoch; // missed it: the caller did the work
                continue;
            }
            if shared
                .state
                .compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                continue; // another worker entered, or the job closed: look again
            }
            seen = epoch;
            // SAFETY: this worker is counted in `state` until the `fetch_sub` below, and `run`
            // does not return (nor unwind past `job`) before that count drops to zero, so the
            // pointer stored before the job was opened (which the Acquire above makes visible)
            // is valid here.
            let job = unsafe { &*shared.job.load(Ordering::Relaxed) };
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| take_tasks(shared, job, me))) {
                let mut slot = job.panic.lock().unwrap_or_else(|e| e.into_inner());
                slot.get_or_insert(p);
                // Stop the others early: nothing of this job is worth finishing.
                for r in shared.ranges.iter() {
                    r.next.store(usize::MAX / 2, Ordering::Relaxed);
                }
            }
            leave(shared);
            idle_since = None;
            continue;
        }
        let since = *idle_since.get_or_insert_with(Instant::now);
        if since.elapsed() < SPIN {
            wait_a_bit(since);
            continue;
        }
        park(shared, seen);
        idle_since = None;
    }
}

/// Sleeps until a job newer than `seen` is published or the pool shuts down.
fn park(shared: &Shared, seen: usize) {
    let mut guard = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
    shared.sleepers.fetch_add(1, Ordering::SeqCst);
    loop {
        let s = shared.state.load(Ordering::SeqCst);
        if s & SHUTDOWN != 0 || s >> EPOCH_SHIFT != seen {
            break;
        }
        guard = shared.wake.wait(guard).unwrap_or_else(|e| e.into_inner());
    }
    shared.sleepers.fetch_sub(1, Ordering::SeqCst);
}

impl Drop for Threads {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.state.fetch_or(SHUTDOWN, Ordering::SeqCst);
            let _g = shared.lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.wake.notify_all();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

impl Default for Threads {
    /// One thread per core the OS lets this process use (1 where that is unknown).
    fn default() -> Self {
        Threads::new(std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Threads")
            .field("count", &self.count)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::Threads;

    fn counts(pool: &Threads, tasks: usize) -> Vec<usize> {
        let hits: Vec<AtomicUsize> = (0..tasks).map(|_| AtomicUsize::new(0)).collect();
        pool.run(tasks, &|i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
        });
        hits.into_iter().map(AtomicUsize::into_inner).collect()
    }

    #[test]
    fn every_task_once() {
        for n in 1..=4 {
            let pool = Threads::new(n);
            assert_eq!(pool.count(), n);
            for tasks in [0, 1, 2, 3, 7, 64, 1000] {
                for _ in 0..20 {
                    assert!(
                        counts(&pool, tasks).iter().all(|&c| c == 1),
                        "{n} threads, {tasks} tasks"
                    );
                }
            }
        }
    }

    #[test]
    fn nested_and_concurrent_jobs() {
        let pool = Threads::new(3);
        // A task submitting a job runs it inline instead of deadlocking.
        let total = AtomicUsize::new(0);
        pool.run(8, &|_| {
            pool.run(5, &|_| {
                total.fetch_add(1, Ordering::Relaxed);
            })
        });
        assert_eq!(total.into_inner(), 40);
        // Two threads sharing a pool: one job at a time, the other runs inline; all correct.
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..200 {
                        assert!(counts(&pool, 37).iter().all(|&c| c == 1));
                    }
                });
            }
        });
    }

    #[test]
    fn parked_workers_wake_up() {
        let pool = Threads::new(2);
        assert!(counts(&pool, 10).iter().all(|&c| c == 1));
        std::thread::sleep(super::SPIN * 5); // the worker parks
        let on = AtomicUsize::new(0);
        // Long enough tasks that the woken worker gets some of them (not asserted: timing).
        pool.run(4, &|_| {
            std::thread::sleep(std::time::Duration::from_millis(5));
            on.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(on.into_inner(), 4);
    }

    #[test]
    fn a_panicking_task_panics_the_caller_and_the_pool_survives() {
        let pool = Threads::new(3);
        for _ in 0..10 {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                pool.run(64, &|i| {
                    if i % 7 == 3 {
                        panic!("task {i}");
                    }
                })
            }));
            assert!(r.is_err());
        }
        assert!(counts(&pool, 100).iter().all(|&c| c == 1));
    }

    #[test]
    fn default_and_single() {
        assert!(Threads::default().count() >= 1);
        assert_eq!(Threads::single().count(), 1);
        assert_eq!(Threads::new(0).count(), 1);
        assert_eq!(counts(&Threads::single(), 5), vec![1; 5]);
    }
}
