//! tokio's own tests of `tokio::sync` (`tests/sync_oneshot.rs`, `tests/sync_mpsc.rs`,
//! `tests/sync_semaphore.rs`), ported to `aplex::sync`: one module per tokio file. Each test
//! names the tokio test it mirrors; tokio's `tokio_test::task::spawn` becomes
//! [`peer_common::spawn`], its `#[tokio::test]` becomes `aplex::block_on`, and its
//! `tokio::spawn` a plain thread or `aplex::spawn_local`.
//!
//! Not ported, because aplex has no such item or documents another behaviour (each listed in
//! its module's header).

mod peer_common;

#[path = "peer_tokio_sync/mpsc.rs"]
mod mpsc;
#[path = "peer_tokio_sync/oneshot.rs"]
mod oneshot;
#[path = "peer_tokio_sync/semaphore.rs"]
mod semaphore;
