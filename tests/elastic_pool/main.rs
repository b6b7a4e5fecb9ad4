//! ElasticPool: priorities, a bounded queue, scaling, resize, drain, shutdown and its report,
//! and the names of its submit forms. One module per subject.
#![cfg(feature = "elastic")]

#[path = "../expected_panics/mod.rs"]
mod expected_panics;
mod support;

mod building;
mod measure;
mod names;
mod priorities;
mod queue_room;
mod scaling;
mod shutdown;
mod shutdown_async;
mod works;
