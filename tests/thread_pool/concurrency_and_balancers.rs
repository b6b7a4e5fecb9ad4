//! Works run concurrently; each balancer places them as it says, and a broken one cannot break the pool.

use super::*;

#[test]
fn ten_async_sleeps_on_two_workers_run_concurrently() {
    let pool = ThreadPool::new(2);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let all_in = Gate::default();
    let start = Instant::now();
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let (in_flight, all_in) = (in_flight.clone(), all_in.clone());
            pool.spawn(move || async move {
                if in_flight.fetch_add(1, Ordering::SeqCst) + 1 == 10 {
                    all_in.open();
                }
                // Run one after another on two workers, the first two would wait here for
                // the other eight forever: only works that are all in flight at once pass.
                all_in.passed().await;
                sleep(Duration::from_millis(100)).await;
                i
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
    assert_eq!(results, (0..10).collect::<Vec<_>>());
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[test]
fn async_works_may_hold_non_send_state() {
    let pool = ThreadPool::new(1);
    let h = pool.spawn(|| async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let log = log.clone();
                aplex::spawn_local(async move { log.borrow_mut().push(i) })
            })
            .collect();
        for t in tasks {
            t.await;
        }
        let v = log.borrow().clone();
        v
    });
    assert_eq!(h.wait(), Ok(vec![0, 1, 2]));
}

#[test]
fn round_robin_distributes_exactly() {
    let pool = ThreadPool::builder()
        .workers(3)
        .balancer(RoundRobin::new())
        .build()
        .unwrap();
    let on: Vec<usize> = (0..9)
        .map(|_| pool.submit(thread_index))
        .map(|h| h.wait().unwrap())
        .collect();
    assert_eq!(on, vec![0, 1, 2, 0, 1, 2, 0, 1, 2]);
}

#[test]
fn key_affinity_is_sticky() {
    let pool = ThreadPool::builder()
        .workers(4)
        .balancer(KeyAffinity::new())
        .build()
        .unwrap();
    for key in 0..20u64 {
        let handles: Vec<_> = (0..10)
            .map(|_| pool.submit_with(key, thread_index))
            .collect();
        let workers: HashSet<usize> = handles.into_iter().map(|h| h.wait().unwrap()).collect();
        assert_eq!(workers.len(), 1, "key {key} ran on {workers:?}");
    }
    // Works with one key run in submission order.
    let order = Arc::new(Mutex::new(Vec::new()));
    let handles: Vec<_> = (0..100)
        .map(|i| {
            let order = order.clone();
            pool.submit_with(7, move || order.lock().unwrap().push(i))
        })
        .collect();
    handles.into_iter().for_each(|h| h.wait().unwrap());
    assert_eq!(*order.lock().unwrap(), (0..100).collect::<Vec<_>>());
}

#[test]
fn least_loaded_avoids_a_worker_busy_with_a_long_closure() {
    let pool = ThreadPool::builder()
        .workers(2)
        .balancer(LeastLoaded::new())
        .build()
        .unwrap();
    let release = Gate::default();
    let r = release.clone();
    let busy = pool.submit(move || {
        r.wait();
        thread_index()
    });
    eventually("the long closure runs", || {
        pool.detailed_loads().iter().any(|l| l.running == 1)
    });
    let busy_worker = pool
        .detailed_loads()
        .iter()
        .position(|l| l.running == 1)
        .unwrap();
    let others: Vec<usize> = (0..20)
        .map(|_| pool.submit(thread_index).wait().unwrap())
        .collect();
    assert!(
        others.iter().all(|&w| w != busy_worker),
        "work went to the busy worker: {others:?}"
    );
    release.open();
    assert_eq!(busy.wait(), Ok(busy_worker));
}

/// Each pick's hint and worker count.
type Picks = Arc<Mutex<Vec<(Option<u64>, usize)>>>;

struct Recording(Picks);

impl Balancer for Recording {
    fn pick(&mut self, loads: &[Load], hint: Option<u64>) -> usize {
        self.0.lock().unwrap().push((hint, loads.len()));
        // Out of range on purpose: the pool takes it modulo the worker count.
        hint.unwrap_or(0) as usize + loads.len()
    }
}

#[test]
fn a_custom_balancer_gets_the_hint_once_per_submission() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let pool = ThreadPool::builder()
        .workers(2)
        .balancer(Recording(seen.clone()))
        .build()
        .unwrap();
    assert_eq!(pool.submit_with(1, thread_index).wait(), Ok(1));
    assert_eq!(
        pool.spawn_with(0, || async { thread_index() }).wait(),
        Ok(0)
    );
    assert_eq!(pool.submit(thread_index).wait(), Ok(0));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![(Some(1), 2), (Some(0), 2), (None, 2)]
    );
}

struct Panicky;

impl Balancer for Panicky {
    fn pick(&mut self, _: &[Load], _: Option<u64>) -> usize {
        panic!("balancer bug")
    }
}

#[test]
fn a_panicking_balancer_does_not_break_the_pool() {
    expect_panics(&["balancer bug"]);
    let pool = ThreadPool::builder()
        .workers(2)
        .balancer(Panicky)
        .build()
        .unwrap();
    let results: Vec<_> = (0..10)
        .map(|i| pool.submit(move || i))
        .map(|h| h.wait().unwrap())
        .collect();
    assert_eq!(results, (0..10).collect::<Vec<_>>());
}
