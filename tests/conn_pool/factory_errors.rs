//! Factories that fail, and sizes `build` refuses.

use super::*;

#[test]
fn factory_error_is_io_and_the_slot_is_not_lost() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&calls);
    let pool = ConnectionPool::builder(move || {
        if c.fetch_add(1, SeqCst) < 5 {
            Err(io::Error::new(io::ErrorKind::ConnectionRefused, "down"))
        } else {
            Ok("up")
        }
    })
    .max_size(1)
    .build()
    .unwrap();
    for _ in 0..5 {
        match pool.acquire_blocking() {
            Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused),
            other => panic!("expected an Io error, got {other:?}"),
        }
    }
    assert_eq!(*pool.acquire_blocking().unwrap(), "up");
    let stats = pool.stats();
    assert_eq!((stats.size, stats.in_use), (1, 0)); // the guard above was dropped
}

#[test]
fn factory_error_in_build_is_returned_and_opened_ones_are_cleaned() {
    let counts = Arc::new(Counts::default());
    let (opening, cleaning) = (Arc::clone(&counts), Arc::clone(&counts));
    let built = ConnectionPool::builder(move || {
        if opening.opened() == 2 {
            return Err(io::Error::other("third one fails"));
        }
        Ok(opening.open())
    })
    .cleanup(move |_| cleaning.clean())
    .min_size(3)
    .build();
    assert_eq!(built.unwrap_err().to_string(), "third one fails");
    assert_eq!((counts.opened(), counts.cleaned()), (2, 2));
}

#[test]
fn bad_sizes_are_rejected_by_build() {
    let zero = ConnectionPool::builder(|| Ok(())).max_size(0).build();
    assert_eq!(zero.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    let inverted = ConnectionPool::builder(|| Ok(()))
        .max_size(2)
        .min_size(3)
        .build();
    assert_eq!(inverted.unwrap_err().kind(), io::ErrorKind::InvalidInput);
    let full = ConnectionPool::builder(|| Ok(()))
        .max_size(2)
        .min_size(2)
        .build();
    assert_eq!(full.unwrap().stats().size, 2);
}
