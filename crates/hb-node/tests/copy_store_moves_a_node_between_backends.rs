//! docs/operations.md, "Moving between sled and fjall", with the real
//! binary: a node's sled store, copied by `hb copy-store` into a new fjall
//! store, verifies offline, serves the same schedule and state under the
//! same key with `--store fjall`, and copies back to sled entry for entry.
//! A destination that exists, or a source with no store, is refused
//! without writing anything.

mod cli_support;

use cli_support::{counter_lua, hb, Serve};

#[test]
fn a_sled_store_copied_to_fjall_and_back_serves_the_same_schedule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path();
    let sled_dir = work.join("sled-data");
    let lua = counter_lua();
    let lua = lua.to_str().expect("a UTF-8 path");

    // A counter with three increments, on sled.
    let node = Serve::start(&sled_dir);
    let at = |url: &str, args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--node", url]);
        hb(work, &all)
    };
    hb(work, &["keygen"]).ok();
    let pid = at(&node.url, &["spawn", "--lua", lua]).ok().to_string();
    for _ in 0..3 {
        at(&node.url, &["send", &pid, "-t", "Action=Inc"]).ok();
    }
    let address = node.address.clone();
    assert_eq!(node.stop(), 0);

    // Copied to fjall.
    let fjall_dir = work.join("fjall-data");
    let (from, to) = (sled_dir.to_str().unwrap(), fjall_dir.to_str().unwrap());
    let copied = hb(
        work,
        &[
            "copy-store",
            "--from",
            from,
            "--to",
            to,
            "--store",
            "fjall",
            "--json",
        ],
    )
    .json();
    assert_eq!(copied["from_store"], "sled");
    assert_eq!(copied["to_store"], "fjall");
    let entries = copied["entries"].as_u64().expect("a count");
    assert!(entries > 4, "{copied}");
    assert!(fjall_dir.join("version").exists(), "a fjall store");
    // It verifies offline, read as the fjall store it is.
    hb(work, &["verify-chain", &pid, "--data-dir", to]).ok();

    // Served with the same key: the same address, schedule and state.
    let key = sled_dir.join("node.key");
    let node = Serve::start_with(
        &fjall_dir,
        &[
            "--store".as_ref(),
            "fjall".as_ref(),
            "--key-file".as_ref(),
            key.as_os_str(),
        ],
    );
    assert_eq!(node.address, address);
    assert_eq!(at(&node.url, &["slot", &pid]).ok(), "3");
    assert_eq!(at(&node.url, &["now", &pid, "state/count"]).ok(), "3");
    assert_eq!(at(&node.url, &["send", &pid, "-t", "Action=Inc"]).ok(), "4");
    hb(work, &["verify-chain", &pid, "--node", &node.url]).ok();
    assert_eq!(node.stop(), 0);

    // And back to sled: one entry more than the first copy at least (the
    // fourth assignment), and it verifies.
    let back = work.join("sled-again");
    let back_s = back.to_str().unwrap();
    let copied = hb(
        work,
        &[
            "copy-store",
            "--from",
            to,
            "--to",
            back_s,
            "--store",
            "sled",
            "--json",
        ],
    )
    .json();
    assert_eq!(copied["from_store"], "fjall");
    assert!(copied["entries"].as_u64().expect("a count") > entries);
    hb(work, &["verify-chain", &pid, "--data-dir", back_s]).ok();

    // Refusals change nothing: an existing destination, a source with no
    // store.
    let before = std::fs::read_dir(&back).unwrap().count();
    hb(
        work,
        &[
            "copy-store",
            "--from",
            to,
            "--to",
            back_s,
            "--store",
            "fjall",
        ],
    )
    .fails(1, "hb: conflict:");
    assert_eq!(std::fs::read_dir(&back).unwrap().count(), before);
    assert!(!back.join("version").exists());
    let empty = work.join("empty");
    std::fs::create_dir(&empty).unwrap();
    let fresh = work.join("never-made");
    hb(
        work,
        &[
            "copy-store",
            "--from",
            empty.to_str().unwrap(),
            "--to",
            fresh.to_str().unwrap(),
            "--store",
            "fjall",
        ],
    )
    .fails(2, "hb: no-store:");
    assert!(!fresh.exists());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}
