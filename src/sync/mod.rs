//! Placeholder until the sync primitives land.
pub(crate) mod blocking;
