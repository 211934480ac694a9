//! Parsing is bounded: it allocates at most twice the input's size plus a
//! constant for the (at most 128) tag headers, whatever the input claims.
//! One test in this binary, so the global allocation counter sees only it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use hb_ans104::DataItem;

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting the bytes asked.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Bytes allocated while parsing `bytes`.
fn allocated_by_parse(bytes: &[u8]) -> usize {
    let before = ALLOCATED.load(Ordering::Relaxed);
    let r = DataItem::parse(bytes);
    let after = ALLOCATED.load(Ordering::Relaxed);
    drop(r);
    after - before
}

const TAG_HEADERS: usize = 32 * 1024;

fn header(tag_count: u64, tag_len: u64) -> Vec<u8> {
    let mut b = vec![2, 0];
    b.extend_from_slice(&[1; 64]); // signature
    b.extend_from_slice(&[7; 32]); // owner
    b.extend_from_slice(&[0, 0]); // no target, no anchor
    b.extend_from_slice(&tag_count.to_le_bytes());
    b.extend_from_slice(&tag_len.to_le_bytes());
    b
}

#[test]
fn parsing_allocates_a_bounded_multiple_of_the_input() {
    // Claims of huge sizes allocate nothing big.
    let lying = header(u64::MAX, u64::MAX);
    assert!(allocated_by_parse(&lying) <= 2 * lying.len() + TAG_HEADERS);
    let lying = header(128, 1 << 40);
    assert!(allocated_by_parse(&lying) <= 2 * lying.len() + TAG_HEADERS);

    // The most tag headers per input byte: 128 one-byte names, no values.
    let mut tags = vec![0x80, 0x02]; // zigzag(128)
    for _ in 0..128 {
        tags.extend_from_slice(&[2, b'n', 0]);
    }
    tags.push(0);
    let mut many = header(128, tags.len() as u64);
    many.extend_from_slice(&tags);
    assert!(DataItem::parse(&many).is_ok());
    let n = allocated_by_parse(&many);
    assert!(
        n <= 2 * many.len() + TAG_HEADERS,
        "{n} bytes for {}",
        many.len()
    );

    // A large data section is copied once.
    let mut big = header(0, 0);
    big.extend(std::iter::repeat_n(0xaa, 1 << 20));
    let n = allocated_by_parse(&big);
    assert!(
        n <= 2 * big.len() + TAG_HEADERS,
        "{n} bytes for {}",
        big.len()
    );
}
