//! `corun::Builder` and `corun::spawn`: the `std::thread` shape for coroutines.

use crate::join::JoinHandle;
use crate::runtime::{self, Runtime};
use std::io;

/// Configures a coroutine before spawning it, like `std::thread::Builder` (by value).
///
/// ```
/// let handle = corun::Builder::new()
///     .name("worker".into())
///     .stack_size(128 * 1024)
///     .spawn(|| corun::current().name().map(str::to_owned))
///     .unwrap();
/// assert_eq!(handle.join().unwrap().as_deref(), Some("worker"));
/// ```
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with no name and the runtime's default stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the coroutine (shown in overflow reports and by [`Coroutine::name`](crate::Coroutine::name)).
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Usable stack size in bytes, rounded up to whole pages and to at least 16 KiB. Sizes above
    /// 1 GiB are refused by `spawn` with `InvalidInput`.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// Spawns the coroutine on the current coroutine's runtime, or on the default runtime when
    /// called from a plain thread. Fails with `InvalidInput` for an impossible stack size,
    /// `OutOfMemory` when the OS refuses the stack, or an error if the runtime is shut down.
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let shared = runtime::current_shared();
        // SAFETY: `F` and `T` are `'static`, so nothing they hold can dangle.
        unsafe { runtime::spawn_unchecked(&shared, self.name, self.stack_size, None, f) }
    }

    /// Spawns the coroutine on `runtime`.
    pub fn spawn_on<F, T>(self, runtime: &Runtime, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // SAFETY: `F` and `T` are `'static`.
        unsafe { runtime::spawn_unchecked(runtime.shared(), self.name, self.stack_size, None, f) }
    }
}

/// Spawns a coroutine and returns its [`JoinHandle`], like `std::thread::spawn`.
///
/// Inside a coroutine it spawns on that coroutine's runtime; on a plain thread, on the default
/// runtime (started on first use, with `CORUN_WORKERS` workers or one per CPU).
///
/// # Panics
/// If the coroutine cannot be created (no memory for its stack, or the runtime is shutting
/// down); [`Builder::spawn`] returns the error instead.
///
/// ```
/// let h = corun::spawn(|| 6 * 7);
/// assert_eq!(h.join().unwrap(), 42);
/// ```
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .spawn(f)
        .expect("failed to spawn a coroutine")
}
