//! Placeholder replaced by the scheduler benchmarks.
fn main() {}
