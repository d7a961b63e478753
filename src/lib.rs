//! # corun: stackful coroutines, scheduled Go-style across every core
//!
//! Write plain blocking-style code, get the concurrency of an event loop. Each coroutine runs on
//! its own small stack; the runtime multiplexes them over one worker thread per core (M:N),
//! with per-core run queues and work stealing, in the manner of Go's scheduler.
//!
//! ```
//! let handles: Vec<_> = (0..1000u64)
//!     .map(|i| corun::spawn(move || {
//!         corun::yield_now();          // let the others run; may resume on another thread
//!         i * i
//!     }))
//!     .collect();
//! let sum: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
//! assert_eq!(sum, (0..1000u64).map(|i| i * i).sum());
//! ```
//!
//! The API mirrors `std::thread`: [`spawn`], [`Builder`], [`JoinHandle::join`], [`yield_now`],
//! [`park`] / [`Coroutine::unpark`], [`current`], [`scope`]. Per-coroutine state lives in
//! [`coroutine_local!`] statics or [`CoroutineLocal`] slots, never in thread-locals (coroutines
//! migrate between threads). [`Runtime`] runs an explicit runtime; without one, `spawn` uses a
//! default runtime started on first use. [`Generator`] is a Lua-style coroutine driven by its
//! caller on the caller's thread.
//!
//! The design, its invariants and the soundness argument are in `DESIGN.md`.

#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub(crate) mod loom;

// Compiled with `--cfg loom`, the crate is only its concurrency protocols, written against the
// `loom` facade, for `loom-tests/` to model. Everything else needs real threads and stacks.
#[cfg(loom)]
#[path = ""]
mod protocols {
    #[path = "hook/gate.rs"]
    pub mod gate;
    #[path = "runtime/idle.rs"]
    pub mod idle;
    #[path = "io/pollers.rs"]
    pub mod pollers;
    #[path = "io/readiness.rs"]
    pub mod readiness;
    #[path = "runtime/runnext.rs"]
    pub mod runnext;
    #[path = "coroutine/state.rs"]
    pub mod state;
}

/// The protocols modelled by `loom-tests/`; not part of the API.
#[cfg(loom)]
#[doc(hidden)]
pub mod __loom {
    pub use crate::protocols::gate;
    pub use crate::protocols::idle::Idle;
    pub use crate::protocols::pollers::Pollers;
    pub use crate::protocols::readiness::{Direction, ScheduledIo};
    pub use crate::protocols::runnext::RunNext;
    pub use crate::protocols::state::{Commit, ParkState, Unparked};
}

#[cfg(not(loom))]
mod blocking;
#[cfg(not(loom))]
mod builder;
#[cfg(not(loom))]
mod coroutine;
#[cfg(all(feature = "hook", not(loom)))]
mod hook;
#[cfg(not(loom))]
pub mod io;
#[cfg(not(loom))]
mod join;
#[cfg(not(loom))]
pub mod net;
#[cfg(not(loom))]
pub mod runtime;
#[cfg(not(loom))]
mod scope;
pub mod sync;
#[cfg(not(loom))]
mod time;

#[cfg(not(loom))]
pub use blocking::blocking;
#[cfg(not(loom))]
pub use builder::{spawn, Builder};
#[cfg(not(loom))]
pub use coroutine::generator::{Generator, GeneratorState, Yielder};
#[cfg(not(loom))]
pub use coroutine::local::{CoroutineLocal, LocalKey};
#[cfg(not(loom))]
pub use coroutine::{current, park, try_current, yield_now, Cancelled, Coroutine, CoroutineId};
#[cfg(not(loom))]
pub use join::{JoinHandle, ScopedJoinHandle};
#[cfg(not(loom))]
pub use runtime::Runtime;
#[cfg(not(loom))]
pub use scope::{scope, Scope};
#[cfg(not(loom))]
pub use time::{park_timeout, sleep};

/// The README's example, compiled and run as a doctest so it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExample;
