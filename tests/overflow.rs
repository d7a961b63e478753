//! Stack overflow in a coroutine is reported (name, stack size) and aborts the process, for
//! guarded stacks (a real guard page: a guard marker, or `mprotect` with `CORUN_GUARD_MARKERS=0`)
//! and soft-guarded ones (`CORUN_GUARD_PAGES=0`).
//!
//! An overflow kills the process, so each case runs in a child: this test binary re-executed
//! with `--exact overflow_child` and `CORUN_OVERFLOW_CHILD` naming the case.

use std::hint::black_box;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CASE_VAR: &str = "CORUN_OVERFLOW_CHILD";
const STACK_SIZE: usize = 64 * 1024;

/// Recurses without bound, with a frame the optimiser cannot drop or turn into a loop.
#[inline(never)]
fn recurse_forever(depth: u64) -> u64 {
    let mut frame = [0xA5u8; 256];
    black_box(&mut frame);
    if black_box(depth) == u64::MAX {
        return 0; // never: only here so the recursion is not unconditional
    }
    recurse_forever(depth + 1) + u64::from(frame[(depth % 256) as usize])
}

/// Recurses until a frame lies below `limit`, writing non-zero bytes all the way, then returns.
#[inline(never)]
fn recurse_below(limit: usize) -> u64 {
    let mut frame = [0xA5u8; 128];
    black_box(&mut frame);
    let here = frame.as_ptr() as usize;
    if here < limit {
        return u64::from(frame[1]);
    }
    recurse_below(limit) + u64::from(frame[7])
}

/// Whether reading the byte at `addr` faults, asked of the kernel (a `write(2)` from it to a
/// pipe fails with `EFAULT`): true for a guard marker and a `PROT_NONE` page alike, false for a
/// soft guard, on every kernel.
fn faults(addr: usize) -> bool {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the kernel checks `addr` itself; the descriptors are ours and closed after.
    let n = unsafe { libc::write(fds[1], addr as *const libc::c_void, 1) };
    // SAFETY: closing the pipe we opened.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    n != 1
}

/// Whether the kernel shows a guard page just below the stack whose top frames are at `top`: a
/// page that faults, and with `CORUN_GUARD_MARKERS=0` a one-page `PROT_NONE` mapping of its own
/// (`/proc/self/maps`), so that test knows it ran the `mprotect` way.
fn gap_is_a_guard(top: usize) -> Result<(), String> {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    // The usable stack ends at the first page boundary above `top`, as long as the frames above
    // ours (corun's entry) take less than a page: then the gap is exactly here. Were they to
    // take more, this page would be inside the usable stack, and the check below fails rather
    // than passes (it could not find an unrelated faulting page, such as the unmapped one below
    // a slab's first slot).
    let gap = top.next_multiple_of(page) - STACK_SIZE - page;
    if !faults(gap) || faults(gap + page) {
        return Err(format!(
            "the page below the stack ({gap:#x}, top {top:#x}) is not a guard, or the stack's \
             bottom faults"
        ));
    }
    if std::env::var("CORUN_GUARD_MARKERS").as_deref() != Ok("0") {
        return Ok(());
    }
    let maps = std::fs::read_to_string("/proc/self/maps").map_err(|e| e.to_string())?;
    let own_mapping = maps.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
            return false;
        };
        range.split_once('-').is_some_and(|(start, end)| {
            usize::from_str_radix(start, 16) == Ok(gap)
                && usize::from_str_radix(end, 16) == Ok(gap + page)
                && perms.starts_with("---")
        })
    });
    match own_mapping {
        true => Ok(()),
        false => Err(format!(
            "the guard page at {gap:#x} is not a PROT_NONE mapping"
        )),
    }
}

/// The child's side: runs only when re-executed by a parent test, and never returns normally.
#[test]
fn overflow_child() {
    let Ok(case) = std::env::var(CASE_VAR) else {
        return; // a normal test run: nothing to do
    };
    match case.as_str() {
        "guarded" => {
            let handle = corun::Builder::new()
                .name("deep".into())
                .stack_size(STACK_SIZE)
                .spawn(|| {
                    // First, that the kernel agrees the gap is a guard (a soft guard would also
                    // get the overflow reported, from the stack pointer, so the report alone
                    // does not tell).
                    let mut marker = 0u8;
                    let top = black_box(&mut marker) as *mut u8 as usize;
                    if let Err(why) = gap_is_a_guard(top) {
                        eprintln!("overflow_child: {why}");
                        std::process::exit(4);
                    }
                    recurse_forever(0)
                })
                .unwrap();
            let _ = handle.join();
        }
        "guarded-generator" => {
            // On this plain thread: nothing but the generator itself tells the handler whose
            // guard page it is.
            let mut deep = corun::Generator::<(), u64, ()>::with_stack_size(STACK_SIZE, |y, ()| {
                y.suspend(recurse_forever(0));
            })
            .unwrap();
            let _ = deep.resume(());
        }
        "guarded-generator-in-coroutine" => {
            // Inside a coroutine, whose own guard page is elsewhere.
            let handle = corun::Builder::new()
                .name("holds-a-generator".into())
                .spawn(|| {
                    let mut deep =
                        corun::Generator::<(), u64, ()>::with_stack_size(STACK_SIZE, |y, ()| {
                            y.suspend(recurse_forever(0));
                        })
                        .unwrap();
                    let _ = deep.resume(());
                })
                .unwrap();
            let _ = handle.join();
        }
        "guarded-generator-that-yields" => {
            // The generator's body switches the coroutine out until it resumes on another worker,
            // then overflows: what the handler needs must have moved with the coroutine.
            let busy: Vec<_> = (0..8)
                .map(|_| {
                    corun::spawn(|| {
                        for _ in 0..200_000 {
                            corun::yield_now();
                        }
                    })
                })
                .collect();
            let handle = corun::Builder::new()
                .name("holds-a-generator".into())
                .spawn(|| {
                    let mut deep =
                        corun::Generator::<(), u64, ()>::with_stack_size(STACK_SIZE, |y, ()| {
                            let started_on = std::thread::current().id();
                            for _ in 0..200_000 {
                                corun::yield_now();
                                if std::thread::current().id() != started_on {
                                    break;
                                }
                            }
                            if std::thread::current().id() == started_on {
                                eprintln!("overflow_child: the coroutine never moved");
                            }
                            y.suspend(recurse_forever(0));
                        })
                        .unwrap();
                    let _ = deep.resume(());
                })
                .unwrap();
            let _ = handle.join();
            busy.into_iter().for_each(|b| drop(b.join()));
        }
        "soft" => {
            // Every stack is soft-guarded (`CORUN_GUARD_PAGES=0` in our environment). The check
            // runs after the coroutine switches out, so overflow a little way into the gap page
            // below the stack, come back, and switch out. Stacks of one size are carved in order
            // from one slab: a generator takes the slot below first, so that whatever runs past
            // the gap lands in memory nobody uses rather than in an unmapped page.
            let _below =
                corun::Generator::<(), (), ()>::with_stack_size(STACK_SIZE, |_, ()| ()).unwrap();
            let handle = corun::Builder::new()
                .name("deep-soft".into())
                .stack_size(STACK_SIZE)
                .spawn(|| {
                    // `top` is a little below the top of the usable stack, which is STACK_SIZE
                    // long: a frame 512 bytes below `top - STACK_SIZE` is in the gap page (or, if
                    // the frames above us took over 3.5 KiB, past it in the generator's slot).
                    let mut marker = 0u8; // a local, so its address is on this stack
                    let top = black_box(&mut marker) as *mut u8 as usize;
                    let sum = recurse_below(top - STACK_SIZE - 512);
                    corun::yield_now();
                    sum
                })
                .unwrap();
            let _ = handle.join();
        }
        "soft-generator" => {
            // A generator's stack past the guard budget is checked like a coroutine's: after
            // each resume. Overflow a little into the gap (a generator takes the slot below
            // first, as above), come back, and suspend.
            let _below =
                corun::Generator::<(), (), ()>::with_stack_size(STACK_SIZE, |_, ()| ()).unwrap();
            let mut deep = corun::Generator::<(), u64, ()>::with_stack_size(STACK_SIZE, |y, ()| {
                let mut marker = 0u8;
                let top = black_box(&mut marker) as *mut u8 as usize;
                y.suspend(recurse_below(top - STACK_SIZE - 512));
            })
            .unwrap();
            let _ = deep.resume(());
        }
        "soft-unbounded" => {
            // Unbounded recursion on a soft-guarded stack: nothing stops it at the gap, so it
            // runs on through the memory below until something faults; the handler sees the
            // stack pointer below the coroutine's stack and reports the overflow.
            let handle = corun::Builder::new()
                .name("deep-soft-unbounded".into())
                .stack_size(STACK_SIZE)
                .spawn(|| recurse_forever(0))
                .unwrap();
            let _ = handle.join();
        }
        other => panic!("unknown overflow case {other:?}"),
    }
    // Reaching here means the overflow went unnoticed: say so, and fail the child.
    eprintln!("overflow_child: the coroutine returned; no overflow was reported");
    std::process::exit(3);
}

/// Runs the child case `case` (with extra environment `env`) and returns its exit status and
/// stderr. Kills it after a generous bound.
fn run_child(case: &str, env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let exe = std::env::current_exe().expect("current test binary");
    let mut command = Command::new(exe);
    command
        .args([
            "--exact",
            "overflow_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CASE_VAR, case)
        .env_remove("CORUN_GUARD_PAGES") // each case sets what it needs
        .env_remove("CORUN_GUARD_MARKERS")
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("start the child");
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the {case} overflow child did not exit within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    (status, reader.join().unwrap())
}

fn assert_reported_overflow(case: &str, env: &[(&str, &str)], name: &str) {
    let (status, stderr) = run_child(case, env);
    assert!(!status.success(), "the child survived; stderr:\n{stderr}");
    assert_eq!(
        status.signal(),
        Some(libc::SIGABRT),
        "the child should abort; status {status:?}, stderr:\n{stderr}"
    );
    assert!(stderr.contains("stack overflow"), "stderr:\n{stderr}");
    assert!(stderr.contains(&format!("'{name}'")), "stderr:\n{stderr}");
    assert!(
        stderr.contains(&STACK_SIZE.to_string()),
        "stderr lacks the stack size:\n{stderr}"
    );
}

#[test]
fn stack_overflow_on_a_guarded_stack_is_reported_and_aborts() {
    assert_reported_overflow("guarded", &[], "deep");
}

/// The guard page made with `mprotect`, as on kernels before 6.13 (which lack guard markers).
#[test]
fn stack_overflow_on_an_mprotect_guarded_stack_is_reported_and_aborts() {
    assert_reported_overflow("guarded", &[("CORUN_GUARD_MARKERS", "0")], "deep");
}

#[test]
fn stack_overflow_in_a_guarded_generator_is_reported_and_aborts() {
    assert_reported_overflow("guarded-generator", &[], "Generator");
}

#[test]
fn stack_overflow_in_a_guarded_generator_inside_a_coroutine_is_reported_and_aborts() {
    assert_reported_overflow("guarded-generator-in-coroutine", &[], "Generator");
}

#[test]
fn stack_overflow_in_a_guarded_generator_whose_body_yields_is_reported_and_aborts() {
    assert_reported_overflow("guarded-generator-that-yields", &[], "Generator");
}

#[test]
fn stack_overflow_on_a_soft_guarded_stack_is_reported_and_aborts() {
    assert_reported_overflow("soft", &[("CORUN_GUARD_PAGES", "0")], "deep-soft");
}

#[test]
fn unbounded_recursion_on_a_soft_guarded_stack_is_reported_and_aborts() {
    assert_reported_overflow(
        "soft-unbounded",
        &[("CORUN_GUARD_PAGES", "0")],
        "deep-soft-unbounded",
    );
}

#[test]
fn stack_overflow_in_a_soft_guarded_generator_is_reported_and_aborts() {
    assert_reported_overflow("soft-generator", &[("CORUN_GUARD_PAGES", "0")], "Generator");
}
