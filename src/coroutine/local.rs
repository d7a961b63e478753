//! Coroutine-local storage: `coroutine_local!` statics and non-static [`CoroutineLocal`] slots.
//!
//! Each coroutine carries a small map from key to value (a vector searched linearly: coroutines
//! use few locals, and a scan of a handful of keys beats hashing). Keys are process-unique
//! numbers never reused, so a value can never be seen through a different key. Values are
//! created on first access in the coroutine, live on the heap (so handing out `&T` is stable
//! while the map grows), and are dropped on the coroutine's own stack when its body returns
//! (before its `join` returns). Outside any coroutine, the same keys fall back to one value per
//! OS thread, so library code works in both worlds.
//!
//! Thread-locals must not be used for per-coroutine state: a coroutine migrates between
//! threads at every switch (DESIGN.md, "Soundness"). These are the replacement.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

type Value = Box<dyn Any + Send>;

/// The locals of one coroutine (or, outside coroutines, of one thread).
#[derive(Default)]
pub(crate) struct LocalMap {
    entries: Vec<(u64, Value)>,
}

impl LocalMap {
    fn get(&self, key: u64) -> Option<*const (dyn Any + Send)> {
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| &**v as *const (dyn Any + Send))
    }
}

thread_local! {
    /// Locals of code running outside any coroutine.
    static THREAD_LOCALS: RefCell<LocalMap> = RefCell::new(LocalMap::default());
}

fn next_key() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `f` with the value of `key` in the current coroutine (or thread), creating it with
/// `init` on first use.
fn with_value<T: Send + 'static, R>(key: u64, init: &dyn Fn() -> T, f: impl FnOnce(&T) -> R) -> R {
    match crate::coroutine::current_task() {
        Some(task) => {
            // SAFETY: `locals` is only touched on the coroutine's own stack, which is where we
            // are; no reference into the vector is held across the user callbacks below.
            let existing = unsafe { (*task.locals.get()).get(key) };
            let ptr = match existing {
                Some(ptr) => ptr,
                None => {
                    // `init` may itself use coroutine-locals (or switch), so it runs with no
                    // borrow of the map held.
                    let value: Value = Box::new(init());
                    // SAFETY: as above; the borrow ends before the callback.
                    let map = unsafe { &mut *task.locals.get() };
                    map.entries.push((key, value));
                    map.get(key).expect("just inserted")
                }
            };
            // SAFETY: the value is boxed, so its address survives pushes to the vector; it is
            // only removed by `drop_all`, which runs after the coroutine body has returned, so
            // not while `f` runs. The coroutine may migrate during `f`, which is fine: `T: Send`.
            let value = unsafe { &*ptr };
            f(value
                .downcast_ref::<T>()
                .expect("coroutine-local keys are unique"))
        }
        None => {
            let existing = THREAD_LOCALS.with(|m| m.borrow().get(key));
            let ptr = match existing {
                Some(ptr) => ptr,
                None => {
                    let value: Value = Box::new(init());
                    THREAD_LOCALS.with(|m| {
                        let mut m = m.borrow_mut();
                        m.entries.push((key, value));
                        m.get(key).expect("just inserted")
                    })
                }
            };
            // SAFETY: boxed values of this thread's map are only dropped with the thread.
            let value = unsafe { &*ptr };
            f(value
                .downcast_ref::<T>()
                .expect("coroutine-local keys are unique"))
        }
    }
}

/// Drops every local of the current coroutine. Destructors that touch locals again recreate
/// them, so this repeats (a bounded number of times) until the map stays empty.
pub(crate) fn drop_all() {
    let Some(task) = crate::coroutine::current_task() else {
        return;
    };
    for _ in 0..8 {
        // SAFETY: on the coroutine's own stack, after its body returned; the map is taken out
        // before any destructor runs, so destructors may use the (fresh) map freely.
        let entries = std::mem::take(unsafe { &mut (*task.locals.get()).entries });
        if entries.is_empty() {
            return;
        }
        drop(entries);
    }
}

/// A key for a `coroutine_local!` static: one value per coroutine. Made by the macro.
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
    key: OnceLock<u64>,
}

impl<T: Send + 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey {
            init,
            key: OnceLock::new(),
        }
    }

    /// Runs `f` with a reference to this coroutine's value, initialising it on first use.
    /// Outside a coroutine the value is per OS thread.
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let key = *self.key.get_or_init(next_key);
        with_value(key, &self.init, f)
    }
}

impl<T: 'static> fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

/// Declares coroutine-local statics, like `thread_local!`: each coroutine sees its own value.
///
/// ```
/// use std::cell::Cell;
/// corun::coroutine_local! { static COUNT: Cell<u32> = Cell::new(0); }
/// let a = corun::spawn(|| { COUNT.with(|c| c.set(c.get() + 1)); COUNT.with(|c| c.get()) });
/// let b = corun::spawn(|| COUNT.with(|c| c.get()));
/// assert_eq!((a.join().unwrap(), b.join().unwrap()), (1, 0));
/// ```
#[macro_export]
macro_rules! coroutine_local {
    () => {};
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr; $($rest:tt)*) => {
        $(#[$attr])* $vis static $name: $crate::LocalKey<$t> = $crate::LocalKey::new(|| $init);
        $crate::coroutine_local!($($rest)*);
    };
    ($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr) => {
        $(#[$attr])* $vis static $name: $crate::LocalKey<$t> = $crate::LocalKey::new(|| $init);
    };
}

/// A per-coroutine slot that is not a static: create as many as you need, at run time (libco
/// offered only global keys). Each coroutine that touches it gets its own value, made by the
/// `init` closure; the values are dropped when their coroutines end, even if the
/// `CoroutineLocal` itself is dropped earlier.
///
/// ```
/// use std::sync::Arc;
/// let ids = Arc::new(corun::CoroutineLocal::new(|| String::from("unset")));
/// let ids2 = ids.clone();
/// corun::spawn(move || {
///     ids2.with(|v| assert_eq!(v, "unset"));
/// }).join().unwrap();
/// ```
pub struct CoroutineLocal<T> {
    key: u64,
    init: Box<dyn Fn() -> T + Send + Sync>,
    _marker: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> CoroutineLocal<T> {
    /// A new slot whose per-coroutine values start as `init()`.
    pub fn new(init: impl Fn() -> T + Send + Sync + 'static) -> CoroutineLocal<T> {
        CoroutineLocal {
            key: next_key(),
            init: Box::new(init),
            _marker: PhantomData,
        }
    }

    /// Runs `f` with a reference to this coroutine's value, initialising it on first use.
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        with_value(self.key, &*self.init, f)
    }
}

impl<T> fmt::Debug for CoroutineLocal<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CoroutineLocal")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
