fn main() {
    let rt = corun::runtime::Builder::new().workers(2).build().unwrap();
    let t = std::time::Instant::now();
    let hs: Vec<_> = (0..200_000u64).map(|i| rt.spawn(move || { corun::yield_now(); i })).collect();
    let s: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    println!("sum {s} in {:?}", t.elapsed());
    println!("{:?}", rt.metrics());
    let v = vec![1, 2, 3];
    let r = rt.block_on(|| v.iter().sum::<i32>());
    println!("block_on {r}");
    // park/unpark ping-pong
    let t = std::time::Instant::now();
    let n = rt.block_on(|| {
        let main = corun::current();
        let flag = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let f2 = flag.clone();
        let h = corun::spawn(move || { for i in 0..50_000 { while f2.load(std::sync::atomic::Ordering::Acquire) != 2*i+1 { corun::park(); } f2.store(2*i+2, std::sync::atomic::Ordering::Release); main.unpark(); } });
        let other = h.coroutine().clone();
        for i in 0..50_000 { flag.store(2*i+1, std::sync::atomic::Ordering::Release); other.unpark(); while flag.load(std::sync::atomic::Ordering::Acquire) != 2*i+2 { corun::park(); } }
        h.join().unwrap();
        flag.load(std::sync::atomic::Ordering::Relaxed)
    });
    println!("pingpong {n} in {:?}", t.elapsed());
    let p = rt.spawn(|| panic!("boom")).join();
    println!("panic joined: {}", p.is_err());
    drop(rt);
    println!("dropped");
}
