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

mod builder;
mod coroutine;
mod join;
pub(crate) mod loom;
pub mod runtime;
mod scope;

pub use builder::{spawn, Builder};
pub use coroutine::generator::{Generator, GeneratorState, Yielder};
pub use coroutine::local::{CoroutineLocal, LocalKey};
pub use coroutine::{current, park, try_current, yield_now, Cancelled, Coroutine, CoroutineId};
pub use join::{JoinHandle, ScopedJoinHandle};
pub use runtime::Runtime;
pub use scope::{scope, Scope};
