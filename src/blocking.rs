//! TEMPORARY stand-in until the blocking pool lands.
pub fn blocking<F: FnOnce() -> T + Send, T: Send>(f: F) -> T {
    f()
}
