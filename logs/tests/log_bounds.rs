//! The access log's bounds, on real log files: the writer's queue holds a bounded number of
//! bytes (past it, appends are refused at once with `LogError::Busy`), and an export is
//! streamed, never held in memory whole. (The process's heap is measured by a counting global
//! allocator, so this binary holds only these tests.)

use ed25519_dalek::SigningKey;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use vigie_logs::access_log::{
    verify_export, verify_log, Access, AccessLog, ExportFilter, LogError, LogKind,
};

/// The system allocator, counting the bytes in use and their peak.
struct Counting;

static IN_USE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = IN_USE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        unsafe { System.dealloc(p, layout) };
        IN_USE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn access(n: usize, posts: usize) -> Access {
    Access {
        time: "2026-11-27T08:00:00Z".parse().unwrap(),
        user: Some("ana".into()),
        role: Some("analyst".into()),
        purpose: Some(format!("case {n}")),
        method: "GET".into(),
        endpoint: "/v1/search".into(),
        params: Default::default(),
        status: 200,
        count: posts as u64,
        posts: (0..posts).map(|p| format!("post-{n}-{p:04}")).collect(),
    }
}

fn mkfifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a plain libc call with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Reads one line from the FIFO at `path` (blocking until a writer opens it), then closes it.
fn read_one_line(path: std::path::PathBuf) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(std::fs::File::open(path).unwrap())
            .read_line(&mut line)
            .unwrap();
        line
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_requests_while_the_writer_is_stalled_is_refused_not_queued_without_bound() {
    let dir = tempfile::tempdir().unwrap();
    // The heads file is a FIFO: publishing a head blocks the writer until someone reads it, a
    // real stall of the writer thread (as a hung disk or NFS mount would cause).
    let heads = dir.path().join("heads.fifo");
    mkfifo(&heads);
    let creation = read_one_line(heads.clone());
    const LIMIT: usize = 20_000;
    let log = AccessLog::builder(
        LogKind::Access,
        &dir.path().join("access-log"),
        SigningKey::from_bytes(&[3; 32]),
    )
    .heartbeat(Some(Duration::from_millis(50)))
    .heads_file(Some(heads.clone()))
    .queue_bytes(LIMIT)
    .open()
    .unwrap();
    assert!(creation.join().unwrap().contains("\"seq\":0"));
    // The next heartbeat publishes a head: nobody reads the FIFO now, so the writer blocks.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut tasks = Vec::new();
    for n in 0..400 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move { log.append(access(n, 5)).await }));
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let queued = log.queued_bytes();
    assert!(
        queued <= LIMIT,
        "{queued} bytes queued, the bound is {LIMIT}"
    );
    assert!(
        queued > LIMIT / 2,
        "the queue filled up to its bound: {queued}"
    );

    // Let the writer go on: from now on, every head published is read (the thread is left
    // waiting for the next one when the test ends).
    std::thread::spawn({
        let heads = heads.clone();
        move || loop {
            use std::io::Read;
            let mut rest = Vec::new();
            let _ = std::fs::File::open(&heads).and_then(|mut f| f.read_to_end(&mut rest));
        }
    });
    let (mut written, mut busy) = (Vec::new(), 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(seq) => written.push(seq),
            Err(LogError::Busy { limit, .. }) => {
                assert_eq!(limit, LIMIT);
                busy += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(busy > 300, "only {busy} of 400 refused");
    written.sort();
    assert_eq!(written, (1..=written.len() as u64).collect::<Vec<_>>());
    assert!(
        log.append(access(999, 5)).await.is_ok(),
        "the queue drained"
    );
    log.close().await.unwrap();
    let report = verify_log(&std::fs::read(log.path()).unwrap(), &log.verifying_key()).unwrap();
    assert_eq!(report.last, written.len() as u64 + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_of_a_long_log_is_streamed_not_held_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let log = AccessLog::builder(
        LogKind::Access,
        &dir.path().join("access-log"),
        SigningKey::from_bytes(&[3; 32]),
    )
    .heartbeat(None)
    .queue_bytes(usize::MAX)
    .open()
    .unwrap();
    // About 20 MB of entries, a few group commits.
    let tasks: Vec<_> = (0..1500)
        .map(|n| {
            let log = log.clone();
            tokio::spawn(async move { log.append(access(n, 600)).await.unwrap() })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let size = std::fs::metadata(log.path()).unwrap().len() as usize;
    assert!(size > 15_000_000, "{size}");

    /// Counts what it is given, keeping none of it.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let filter = ExportFilter::default();
    let log2 = log.clone();
    let (written, peak) = tokio::task::spawn_blocking(move || {
        let before = IN_USE.load(Ordering::Relaxed);
        PEAK.store(before, Ordering::Relaxed);
        let mut out = Count(0);
        let selected = log2.export_to(&filter, &mut out).unwrap();
        assert_eq!(selected, 1500);
        (out.0, PEAK.load(Ordering::Relaxed) - before)
    })
    .await
    .unwrap();
    assert!(written >= size, "{written} < {size}");
    assert!(
        peak < 1_000_000,
        "exporting a {size}-byte log took {peak} bytes of heap at its peak"
    );
    // And what is streamed verifies.
    let export = log.export(&ExportFilter::default()).unwrap();
    verify_export(&export.bytes, &log.verifying_key()).unwrap();
    log.close().await.unwrap();
}
