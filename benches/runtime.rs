//! Benchmarks of one thread's engine. Prints one `name value unit` line per figure.
//!
//! Run with `cargo bench --bench runtime`. Figures that report peak memory run in a child
//! process of their own (this binary again, with `APLEX_BENCH_CASE` set), so that one figure's
//! allocations do not count in another's.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

mod common;
use common::*;

fn main() {
    if run_child_case(&[("sleeps", sleeps_100k), ("timer_storm", timer_storm)]) {
        return;
    }
    spawn_local_tasks();
    spawn_local_joined();
    cross_thread_wake();
    in_child("sleeps");
    in_child("timer_storm");
}

/// Gives freed heap memory back to the system, so that the resident size shows what is still
/// held rather than what the allocator keeps cached.
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn malloc_trim(pad: usize) -> i32;
        }
        // SAFETY: glibc's malloc_trim takes a plain size and only releases free memory.
        unsafe {
            malloc_trim(0);
        }
    }
}

/// 1,000,000 sleeps and timeouts registered then dropped on one executor: the resident memory
/// at the peak and after the storm (the timer store gives its memory back).
fn timer_storm() {
    const N: usize = 1_000_000;
    let rss_before = rss_mib();
    aplex::block_on(async {
        let mut pending: Vec<_> = (0..N)
            .map(|i| Box::pin(aplex::time::sleep(Duration::from_secs(3600 + i as u64))))
            .collect();
        for s in &mut pending {
            // Poll each once so that it registers its timer.
            let _ = aplex::time::timeout(Duration::ZERO, s.as_mut()).await;
        }
        println!(
            "runtime_timer_storm_pending {} timers",
            aplex::time::pending_timers()
        );
        println!("runtime_timer_storm_peak_rss {:.1} MiB", peak_rss_mib());
        drop(pending);
        trim_heap();
        println!("runtime_timer_storm_rss_before {rss_before:.1} MiB");
        println!("runtime_timer_storm_rss_after {:.1} MiB", rss_mib());
    });
}

/// 1,000,000 detached no-op tasks spawned and run to completion.
fn spawn_local_tasks() {
    const N: usize = 1_000_000;
    let rate = median_of(5, || {
        aplex::block_on(async {
            let done = Rc::new(Cell::new(0usize));
            let start = Instant::now();
            for _ in 0..N {
                let done = done.clone();
                aplex::spawn_local(async move { done.set(done.get() + 1) }).detach();
            }
            while done.get() < N {
                aplex::yield_now().await;
            }
            N as f64 / start.elapsed().as_secs_f64()
        })
    });
    println!("runtime_spawn_local_tasks_per_s {rate:.0} tasks/s");
}

/// 1,000,000 tasks spawned and each awaited through its `LocalTask`.
fn spawn_local_joined() {
    const N: usize = 1_000_000;
    let rate = median_of(5, || {
        aplex::block_on(async {
            let start = Instant::now();
            let tasks: Vec<_> = (0..N)
                .map(|i| aplex::spawn_local(async move { i }))
                .collect();
            let mut sum = 0usize;
            for t in tasks {
                sum += t.await;
            }
            assert_eq!(sum, N * (N - 1) / 2);
            N as f64 / start.elapsed().as_secs_f64()
        })
    });
    println!("runtime_spawn_local_joined_per_s {rate:.0} tasks/s");
}

/// A one-shot signal with a timestamp, so the bench measures the engine, not a channel.
#[derive(Default)]
struct Signal(Mutex<(Option<Instant>, Option<Waker>)>);

impl Signal {
    fn fire(&self) {
        let waker = {
            let mut s = self.0.lock().unwrap();
            s.0 = Some(Instant::now());
            s.1.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

struct WaitSignal(Arc<Vec<Signal>>, usize);

impl Future for WaitSignal {
    type Output = Instant;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Instant> {
        let mut s = self.0[self.1].0.lock().unwrap();
        match s.0 {
            Some(t) => Poll::Ready(t),
            None => {
                s.1 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Latency from a wake on another thread to the parked task running again.
fn cross_thread_wake() {
    const N: usize = 2_000;
    let signals: Arc<Vec<Signal>> = Arc::new((0..N).map(|_| Signal::default()).collect());
    let s = signals.clone();
    let firer = std::thread::spawn(move || {
        for signal in s.iter() {
            std::thread::sleep(Duration::from_micros(200)); // let the other side park
            signal.fire();
        }
    });
    let mut lat: Vec<f64> = aplex::block_on(async {
        let mut lat = Vec::with_capacity(N);
        for i in 0..N {
            let fired = aplex::spawn_local(WaitSignal(signals.clone(), i)).await;
            lat.push(fired.elapsed().as_secs_f64() * 1e6);
        }
        lat
    });
    firer.join().unwrap();
    lat.sort_by(f64::total_cmp);
    println!("runtime_cross_thread_wake_median {:.1} us", lat[N / 2]);
    println!("runtime_cross_thread_wake_p99 {:.1} us", lat[N * 99 / 100]);
}

/// 100,000 concurrent 10 ms sleeps in one `block_on`: wall time and peak memory.
fn sleeps_100k() {
    const N: usize = 100_000;
    let wall = aplex::block_on(async {
        let done = Rc::new(Cell::new(0usize));
        let start = Instant::now();
        for _ in 0..N {
            let done = done.clone();
            aplex::spawn_local(async move {
                aplex::time::sleep(Duration::from_millis(10)).await;
                done.set(done.get() + 1);
            })
            .detach();
        }
        while done.get() < N {
            aplex::time::sleep(Duration::from_millis(1)).await;
        }
        start.elapsed()
    });
    println!(
        "runtime_100k_sleeps_10ms_wall {:.1} ms",
        wall.as_secs_f64() * 1e3
    );
    println!("runtime_100k_sleeps_peak_rss {:.1} MiB", peak_rss_mib());
}
