//! A crash (SIGKILL) at any moment of `SledStore::open` (or
//! `FjallStore::open`) on a fresh directory leaves a directory that opens: creation is recognisably
//! unfinished (`CREATING_FILE`) and opening it finishes the creation.
//!
//! The parent re-spawns this test binary as a child (selected by an
//! environment variable) that creates fresh stores one after another,
//! each in a new directory, and kills it with SIGKILL 0–30 ms after the
//! child reported that it started. After every kill, every directory the
//! child touched must open, hold nothing but the format marker, and no
//! longer be marked as being created.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hb_store::{Direction, FjallStore, SledStore, Store, StoreError, CREATING_FILE, FORMAT_KEY};
use rand::Rng;

const CHILD_ENV: &str = "HB_STORE_CREATE_CHILD_DIR";
const CHILD_TEST: &str = "create_child_until_killed";
/// The backend the child creates: `sled` (the default) or `fjall`.
const BACKEND_ENV: &str = "HB_STORE_CREATE_BACKEND";

/// The embedded backend under test.
#[derive(Clone, Copy)]
enum Backend {
    Sled,
    Fjall,
}

impl Backend {
    fn from_env() -> Backend {
        match std::env::var(BACKEND_ENV).as_deref() {
            Ok("fjall") => Backend::Fjall,
            _ => Backend::Sled,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Backend::Sled => "sled",
            Backend::Fjall => "fjall",
        }
    }

    fn open(self, dir: &Path) -> Result<Box<dyn Store>, StoreError> {
        Ok(match self {
            Backend::Sled => Box::new(SledStore::open(dir)?),
            Backend::Fjall => Box::new(FjallStore::open(dir)?),
        })
    }

    /// The engine's own first file (its log, or its version file): there
    /// once the engine started writing.
    fn engine_file(self) -> &'static str {
        match self {
            Backend::Sled => "db",
            Backend::Fjall => "version",
        }
    }
}
/// Kill rounds wanted; fewer run if the time budget below runs out.
const ROUNDS: usize = 50;
/// The rounds that must run for the test to mean anything.
const MIN_ROUNDS: usize = 10;
/// The time budget of the rounds (a loaded 2-core machine is slow).
const BUDGET: Duration = Duration::from_secs(12);

/// The child role: only runs when the parent sets `CHILD_ENV`; creates
/// stores until it is killed.
#[test]
#[ignore = "child role of a_store_killed_while_being_created_opens"]
fn create_child_until_killed() {
    let Some(root) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let root = Path::new(&root);
    let mut out = std::io::stdout().lock();
    writeln!(out, "STARTED").unwrap();
    out.flush().unwrap();
    drop(out);
    let backend = Backend::from_env();
    for i in 0u32.. {
        let store = backend.open(&root.join(format!("s{i:05}"))).unwrap();
        drop(store);
    }
}

/// Runs one child on `root` and kills it `after` its start.
fn run_and_kill(root: &Path, backend: Backend, after: Duration) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            CHILD_TEST,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, root)
        .env(BACKEND_ENV, backend.name())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // libtest may print "test <name> ... " before the child's own output.
    let started = lines.any(|l| l.map(|l| l.ends_with("STARTED")).unwrap_or(false));
    assert!(started, "the child never started");
    std::thread::sleep(after);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// What one directory looked like after a kill.
#[derive(Default)]
struct Seen {
    /// Directories with files in them.
    dirs: usize,
    /// Of those, marked as being created.
    unfinished: usize,
    /// Of those, with the engine's files already there (for sled, before
    /// the fix these never opened again: "no format marker").
    unfinished_with_log: usize,
}

/// Opens every store directory under `root`; each must open (or be
/// empty), and hold nothing but the format marker.
fn check_all(root: &Path, backend: Backend, round: usize, seen: &mut Seen) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return; // killed before the first directory was made
    };
    let mut dirs: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
    dirs.sort();
    for dir in dirs {
        let files = std::fs::read_dir(&dir).unwrap().count();
        if files == 0 {
            continue;
        }
        seen.dirs += 1;
        if dir.join(CREATING_FILE).exists() {
            seen.unfinished += 1;
            seen.unfinished_with_log += usize::from(dir.join(backend.engine_file()).exists());
        }
        let store = match backend.open(&dir) {
            Ok(store) => store,
            Err(e) => panic!("round {round}: {} does not open: {e}", dir.display()),
        };
        let keys: Vec<Vec<u8>> = store
            .range(b"", None, Direction::Forward, 10)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, vec![FORMAT_KEY.to_vec()], "round {round}: {dir:?}");
        assert!(!dir.join(CREATING_FILE).exists(), "round {round}: {dir:?}");
        drop(store);
        // And again: the finished creation stays finished.
        reopen(&dir, backend);
    }
}

/// Opens `dir` again after this process dropped its store. sled's
/// flusher thread lets go of the directory's lock shortly after the drop,
/// not at it, so `Locked` is waited out (on a loaded machine the thread
/// may not have run yet); any other error fails the test.
fn reopen(dir: &Path, backend: Backend) {
    if let Err(e) = open_waiting(dir, backend) {
        panic!("{} does not open again: {e}", dir.display());
    }
}

/// `SledStore::open`, with `Locked` (the lock of a store this process just
/// dropped, not yet let go) waited out for up to 10 s.
fn open_waiting(dir: &Path, backend: Backend) -> Result<Box<dyn Store>, StoreError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match backend.open(dir) {
            Err(StoreError::Locked { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

#[test]
fn a_store_killed_while_being_created_opens() {
    killed_while_being_created(Backend::Sled);
}

#[test]
fn a_fjall_store_killed_while_being_created_opens() {
    killed_while_being_created(Backend::Fjall);
}

fn killed_while_being_created(backend: Backend) {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    let started = Instant::now();
    let mut seen = Seen::default();
    let mut rounds = 0;
    while rounds < ROUNDS && (rounds < MIN_ROUNDS || started.elapsed() < BUDGET) {
        let root = tmp.path().join(format!("round-{rounds}"));
        let after = Duration::from_millis(rng.gen_range(0..=30));
        run_and_kill(&root, backend, after);
        check_all(&root, backend, rounds, &mut seen);
        rounds += 1;
    }
    eprintln!(
        "{}: {rounds} kills in {:?}: {} store directories reopened, {} of them \
         killed mid-creation ({} with the engine's files already written)",
        backend.name(),
        started.elapsed(),
        seen.dirs,
        seen.unfinished,
        seen.unfinished_with_log
    );
}

/// The resumption never completes a directory that holds data: a store
/// with data, without its format marker and with a planted creation file
/// is refused as corrupt, and its data is left alone.
#[test]
fn an_unfinished_creation_that_holds_data_is_refused_not_wiped() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    {
        let store = SledStore::open(&dir).unwrap();
        store.put(b"user/data", b"precious").unwrap();
        store.delete(FORMAT_KEY).unwrap();
        store.flush().unwrap();
    }
    std::fs::write(dir.join(CREATING_FILE), b"").unwrap();
    for _ in 0..2 {
        match open_waiting(&dir, Backend::Sled) {
            Err(StoreError::CorruptStore { path, detail }) => {
                assert_eq!(path, dir);
                assert!(detail.contains("holds data"), "{detail}");
            }
            other => panic!(
                "expected CorruptStore, got {:?}",
                other.map(|_| "an open store")
            ),
        }
    }
    // The data is still there (read past the check with a bare marker).
    std::fs::remove_file(dir.join(CREATING_FILE)).unwrap();
    let reopened = open_waiting(&dir, Backend::Sled);
    assert!(
        matches!(reopened, Err(StoreError::CorruptStore { .. })),
        "expected CorruptStore, got {:?}",
        reopened.map(|_| "an open store")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let raw = loop {
        match sled::open(&dir) {
            Ok(db) => break db,
            // The refused opens' lock is let go asynchronously too.
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("sled does not open the store: {e}"),
        }
    };
    assert_eq!(
        raw.get(b"user/data").unwrap().as_deref(),
        Some(&b"precious"[..])
    );
}

/// sled writes its config file in two writes before it takes its lock: a
/// creation killed between them leaves a config sled refuses, which the
/// resumption rewrites.
#[test]
fn an_unfinished_creation_with_a_torn_config_file_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    drop(SledStore::open(&dir).unwrap());
    let conf = std::fs::read(dir.join("conf")).unwrap();
    for f in std::fs::read_dir(&dir).unwrap() {
        let f = f.unwrap().path();
        if f.is_dir() {
            std::fs::remove_dir_all(f).unwrap();
        } else {
            std::fs::remove_file(f).unwrap();
        }
    }
    // The state after the first of sled's two writes: no checksum yet.
    std::fs::write(dir.join(CREATING_FILE), b"").unwrap();
    std::fs::write(dir.join("conf"), &conf[..conf.len() - 4]).unwrap();
    let store = SledStore::open(&dir).unwrap();
    assert!(store.get(FORMAT_KEY).unwrap().is_some());
    assert!(!dir.join(CREATING_FILE).exists());
}

/// Without the creation file the same torn config file is corrupt: only
/// an unfinished creation is repaired.
#[test]
fn a_torn_config_file_of_a_finished_store_is_corrupt() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    drop(SledStore::open(&dir).unwrap());
    let conf = std::fs::read(dir.join("conf")).unwrap();
    std::fs::write(dir.join("conf"), &conf[..conf.len() - 4]).unwrap();
    assert!(matches!(
        SledStore::open(&dir),
        Err(StoreError::CorruptStore { .. })
    ));
}
