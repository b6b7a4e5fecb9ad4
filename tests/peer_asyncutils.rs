//! asyncutils' pools (jonathandung/asyncutils): its `tests/test_pools.py` holds no test yet
//! (it only imports `asyncutils.pools`), so this ports the behaviour the module's API
//! promises (`pools.pyi`: `AdvancedPool`, `ConnectionPool`) to aplex's `ElasticPool` and
//! `ConnectionPool`, one module each, each gated on its feature. Each test names the
//! asyncutils method it mirrors.
//!
//! Not ported: `AdvancedPool.set_adjuster`, `dead`, `revive`, `restart_worker`,
//! `health_check`, `doublestarmap`/`starmap_withkwds` (keyword arguments), `gather`;
//! `ConnectionPool.start(akgen, executor)`/`stop` (aplex's pool starts no thread: `maintain`
//! tops it up), `create_connection(*args)` (aplex's factory takes no arguments);
//! `CallbackAccumulator` and asyncutils' plain `Pool` (aplex's `collect`/`Group::with_limit`
//! are tested by the aioextensions and aioutils ports).

#![cfg(any(feature = "elastic", feature = "conn-pool"))]

mod peer_common;

#[cfg(feature = "conn-pool")]
#[path = "peer_asyncutils/connection_pool.rs"]
mod connection_pool;
#[cfg(feature = "elastic")]
#[path = "peer_asyncutils/elastic_pool.rs"]
mod elastic_pool;
