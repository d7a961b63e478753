//! The API promises of the issue that the compiler can check: which types are `Send`, `Sync`,
//! `Clone`, `Copy`, `Debug`, and the exact signatures other code is written against.

use std::fmt::Debug;
use std::hash::Hash;

fn send<T: Send>() {}
fn sync<T: Sync>() {}
fn debug<T: Debug>() {}

#[test]
fn handles_are_send_and_sync_like_std() {
    send::<corun::Coroutine>();
    sync::<corun::Coroutine>();
    send::<corun::JoinHandle<String>>();
    sync::<corun::JoinHandle<String>>();
    send::<corun::Runtime>();
    sync::<corun::Runtime>();
    send::<corun::CoroutineId>();
    sync::<corun::CoroutineLocal<std::cell::Cell<u32>>>();
    send::<corun::Builder>();
    send::<corun::runtime::Builder>();
}

#[test]
fn every_public_type_is_debug() {
    debug::<corun::Coroutine>();
    debug::<corun::CoroutineId>();
    debug::<corun::JoinHandle<()>>();
    debug::<corun::ScopedJoinHandle<'static, ()>>();
    debug::<corun::Builder>();
    debug::<corun::runtime::Builder>();
    debug::<corun::Runtime>();
    debug::<corun::Scope<'static, 'static>>();
    debug::<corun::LocalKey<u8>>();
    debug::<corun::CoroutineLocal<u8>>();
    debug::<corun::Generator<(), u8, ()>>();
    debug::<corun::Yielder<(), u8>>();
    debug::<corun::GeneratorState<u8, ()>>();
    debug::<corun::Cancelled>();
    debug::<corun::runtime::Metrics>();
}

#[test]
fn coroutine_id_is_copy_eq_hash() {
    fn id<T: Copy + Eq + Hash + Debug>() {}
    id::<corun::CoroutineId>();
    fn clone<T: Clone>() {}
    clone::<corun::Coroutine>();
}

#[test]
fn signatures_match_the_issue() {
    let _: fn(fn() -> u8) -> corun::JoinHandle<u8> = corun::spawn::<fn() -> u8, u8>;
    let _: fn() = corun::yield_now;
    let _: fn() = corun::park;
    let _: fn() -> corun::Coroutine = corun::current;
    let _: fn() -> Option<corun::Coroutine> = corun::try_current;
    let _: fn(corun::Builder, String) -> corun::Builder = corun::Builder::name;
    let _: fn(corun::Builder, usize) -> corun::Builder = corun::Builder::stack_size;
    let _: fn(corun::JoinHandle<u8>) -> std::thread::Result<u8> = corun::JoinHandle::join;
    let _: fn(&corun::JoinHandle<u8>) -> bool = corun::JoinHandle::is_finished;
    let _: fn(&corun::Coroutine) -> corun::CoroutineId = corun::Coroutine::id;
    let _: fn(&corun::Coroutine) = corun::Coroutine::unpark;
    let _: fn() -> std::io::Result<corun::Runtime> = corun::Runtime::new;
    let _: fn(&corun::Runtime) -> usize = corun::Runtime::workers;
    let _: fn(corun::runtime::Builder, usize) -> corun::runtime::Builder =
        corun::runtime::Builder::workers;
    let _: fn(corun::runtime::Builder, usize) -> corun::runtime::Builder =
        corun::runtime::Builder::stack_size;
    let _: fn(corun::runtime::Builder) -> std::io::Result<corun::Runtime> =
        corun::runtime::Builder::build;
}

#[test]
fn name_is_borrowed_from_the_handle() {
    let h = corun::Builder::new()
        .name("shape".into())
        .spawn(|| corun::current().name().map(str::to_owned))
        .expect("spawn");
    assert_eq!(h.coroutine().name(), Some("shape"));
    assert_eq!(h.join().expect("join").as_deref(), Some("shape"));
}
