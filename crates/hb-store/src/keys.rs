//! The physical key layout (DESIGN.md "Storage layout", `docs/storage.md`).
//!
//! Every key starts with an ASCII prefix naming its record kind. IDs are
//! their raw 32 bytes and slots and indexes are big-endian `u64`, so every
//! component is fixed-width: byte order is numeric order, and a prefix such
//! as `sched/<pid>/` selects exactly one process's schedule. The `/`
//! separators carry no meaning beyond readability of dumps.
//!
//! | key | record |
//! |---|---|
//! | `msg/` ‖ uid | message content, without commitments |
//! | `cmt/` ‖ uid ‖ `/` ‖ commitment id | one commitment of that content |
//! | `link/` ‖ alias id | the content and commitments an alias names |
//! | `sched/` ‖ pid ‖ `/` ‖ slot | assignment |
//! | `dedup/` ‖ pid ‖ `/` ‖ message id | (slot, assignment id) |
//! | `proc/` ‖ pid ‖ `/slot/` ‖ slot | computed state |
//! | `proc/` ‖ pid ‖ `/id/` ‖ state id | slot of that state |
//! | `loc/` ‖ address | scheduler-location record |
//! | `push/` ‖ pid ‖ `/` ‖ slot ‖ `/` ‖ outbox index | push record |
//! | `lease/` ‖ pid | a process's lease: owner, epoch, until (SPEC §11.2) |
//! | `node/` ‖ node id | a cluster node's registration: URL, started, last seen (SPEC §11.3) |
//! | `meta/format` | format marker (sled backend) |

use hb_message::Id;

/// Prefix of message content records.
pub const MSG: &[u8] = b"msg/";
/// Prefix of commitment records.
pub const CMT: &[u8] = b"cmt/";
/// Prefix of ID links.
pub const LINK: &[u8] = b"link/";
/// Prefix of assignment records.
pub const SCHED: &[u8] = b"sched/";
/// Prefix of dedup entries.
pub const DEDUP: &[u8] = b"dedup/";
/// Prefix of process-cache entries.
pub const PROC: &[u8] = b"proc/";
/// Prefix of location records.
pub const LOC: &[u8] = b"loc/";
/// Prefix of push records.
pub const PUSH: &[u8] = b"push/";
/// Prefix of lease records.
pub const LEASE: &[u8] = b"lease/";
/// Prefix of cluster node registrations.
pub const NODE: &[u8] = b"node/";

const SLOT_TAG: &[u8] = b"/slot/";
const ID_TAG: &[u8] = b"/id/";

fn join(parts: &[&[u8]]) -> Vec<u8> {
    let mut k = Vec::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        k.extend_from_slice(p);
    }
    k
}

/// `msg/<uid>`.
pub fn msg(uid: &Id) -> Vec<u8> {
    join(&[MSG, uid.as_bytes()])
}

/// `cmt/<uid>/`: the prefix of one content's commitments.
pub fn cmt_prefix(uid: &Id) -> Vec<u8> {
    join(&[CMT, uid.as_bytes(), b"/"])
}

/// `cmt/<uid>/<commitment id>`.
pub fn cmt(uid: &Id, cid: &Id) -> Vec<u8> {
    join(&[CMT, uid.as_bytes(), b"/", cid.as_bytes()])
}

/// `link/<alias>`.
pub fn link(alias: &Id) -> Vec<u8> {
    join(&[LINK, alias.as_bytes()])
}

/// `sched/<pid>/`: the prefix of one process's schedule.
pub fn sched_prefix(pid: &Id) -> Vec<u8> {
    join(&[SCHED, pid.as_bytes(), b"/"])
}

/// `sched/<pid>/<slot BE>`.
pub fn sched(pid: &Id, slot: u64) -> Vec<u8> {
    join(&[SCHED, pid.as_bytes(), b"/", &slot.to_be_bytes()])
}

/// `dedup/<pid>/<message id>`.
pub fn dedup(pid: &Id, message_id: &Id) -> Vec<u8> {
    join(&[DEDUP, pid.as_bytes(), b"/", message_id.as_bytes()])
}

/// `proc/<pid>/slot/`: the prefix of one process's states by slot.
pub fn proc_slot_prefix(pid: &Id) -> Vec<u8> {
    join(&[PROC, pid.as_bytes(), SLOT_TAG])
}

/// `proc/<pid>/slot/<slot BE>`.
pub fn proc_slot(pid: &Id, slot: u64) -> Vec<u8> {
    join(&[PROC, pid.as_bytes(), SLOT_TAG, &slot.to_be_bytes()])
}

/// `proc/<pid>/id/<state id>`.
pub fn proc_id(pid: &Id, state_id: &Id) -> Vec<u8> {
    join(&[PROC, pid.as_bytes(), ID_TAG, state_id.as_bytes()])
}

/// `loc/<address>`.
pub fn loc(address: &Id) -> Vec<u8> {
    join(&[LOC, address.as_bytes()])
}

/// `lease/<pid>`: who may sequence `pid`, until when (SPEC §11.2).
pub fn lease(pid: &Id) -> Vec<u8> {
    join(&[LEASE, pid.as_bytes()])
}

/// `node/<node id>`: a cluster node's registration (SPEC §11.3). Node ids
/// are text (UTF-8), so the key is variable-length; it is the only record
/// under its prefix.
pub fn node(node_id: &str) -> Vec<u8> {
    join(&[NODE, node_id.as_bytes()])
}

/// `push/<pid>/<slot BE>/`: the prefix of one slot's push records.
pub fn push_prefix(pid: &Id, slot: u64) -> Vec<u8> {
    join(&[PUSH, pid.as_bytes(), b"/", &slot.to_be_bytes(), b"/"])
}

/// `push/<pid>/<slot BE>/<index BE>`.
pub fn push(pid: &Id, slot: u64, index: u64) -> Vec<u8> {
    join(&[
        PUSH,
        pid.as_bytes(),
        b"/",
        &slot.to_be_bytes(),
        b"/",
        &index.to_be_bytes(),
    ])
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` when no such key exists (the prefix is empty or all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

fn id_at(bytes: &[u8]) -> Option<Id> {
    let arr: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    Some(Id(arr))
}

fn u64_at(bytes: &[u8]) -> Option<u64> {
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(arr))
}

/// Parses a scheduler key `sched/<pid>/<slot>`, given either raw (as
/// stored) or in its printable form (`sched/<human pid>/<decimal slot>`,
/// exactly as [`printable`] writes it and as errors such as
/// [`crate::StoreError::Corrupt`] name it: parse `key.as_bytes()`). The
/// forms cannot be confused: a raw key is 47 bytes, a printable one at
/// least 51.
pub fn parse_sched(key: &[u8]) -> Option<(Id, u64)> {
    parse_sched_raw(key).or_else(|| parse_sched_printable(key))
}

/// Parses a raw (stored) `sched/<pid>/<slot>` key only. Code walking the
/// stored keys uses this, so a stray stored key that happens to read like
/// a printable key is never taken for a slot.
pub(crate) fn parse_sched_raw(key: &[u8]) -> Option<(Id, u64)> {
    let rest = key.strip_prefix(SCHED)?;
    if rest.len() != 32 + 1 + 8 || rest[32] != b'/' {
        return None;
    }
    Some((id_at(rest)?, u64_at(&rest[33..])?))
}

/// Parses the printable form of a scheduler key, strictly: the 43-character
/// human ID and a decimal slot without sign or leading zeros.
fn parse_sched_printable(key: &[u8]) -> Option<(Id, u64)> {
    let text = std::str::from_utf8(key.strip_prefix(SCHED)?).ok()?;
    let (pid, slot) = text.split_once('/')?;
    let canonical_number = match slot.as_bytes() {
        [] => false,
        [b'0'] => true,
        [first, ..] => *first != b'0' && slot.bytes().all(|b| b.is_ascii_digit()),
    };
    if !canonical_number {
        return None;
    }
    let id = Id::parse(pid).ok()?;
    // `Id::parse` also takes other spellings (padded, standard base64).
    if id.to_human() != pid {
        return None;
    }
    Some((id, slot.parse().ok()?))
}

/// Parses `proc/<pid>/slot/<slot>`.
pub fn parse_proc_slot(key: &[u8]) -> Option<(Id, u64)> {
    let rest = key.strip_prefix(PROC)?;
    if rest.len() != 32 + SLOT_TAG.len() + 8 || &rest[32..32 + SLOT_TAG.len()] != SLOT_TAG {
        return None;
    }
    Some((id_at(rest)?, u64_at(&rest[32 + SLOT_TAG.len()..])?))
}

/// The printable form of a key, for errors and logs: known layouts with
/// human IDs and decimal numbers (`sched/<pid>/5`), anything else with
/// non-printable bytes escaped.
pub fn printable(key: &[u8]) -> String {
    if let Some((pid, slot)) = parse_sched_raw(key) {
        return format!("sched/{pid}/{slot}");
    }
    if let Some((pid, slot)) = parse_proc_slot(key) {
        return format!("proc/{pid}/slot/{slot}");
    }
    let id_keys: [(&[u8], &str); 4] =
        [(MSG, "msg"), (LINK, "link"), (LOC, "loc"), (LEASE, "lease")];
    for (prefix, name) in id_keys {
        if let Some(rest) = key.strip_prefix(prefix) {
            if rest.len() == 32 {
                if let Some(id) = id_at(rest) {
                    return format!("{name}/{id}");
                }
            }
        }
    }
    if let Some(rest) = key.strip_prefix(PROC) {
        if rest.len() == 32 + ID_TAG.len() + 32 && &rest[32..32 + ID_TAG.len()] == ID_TAG {
            if let (Some(pid), Some(sid)) = (id_at(rest), id_at(&rest[32 + ID_TAG.len()..])) {
                return format!("proc/{pid}/id/{sid}");
            }
        }
    }
    for (prefix, name) in [(DEDUP, "dedup"), (CMT, "cmt")] {
        if let Some(rest) = key.strip_prefix(prefix) {
            if rest.len() == 65 && rest[32] == b'/' {
                if let (Some(a), Some(b)) = (id_at(rest), id_at(&rest[33..])) {
                    return format!("{name}/{a}/{b}");
                }
            }
        }
    }
    if let Some(rest) = key.strip_prefix(PUSH) {
        if rest.len() == 32 + 1 + 8 + 1 + 8 && rest[32] == b'/' && rest[41] == b'/' {
            if let (Some(pid), Some(slot), Some(i)) =
                (id_at(rest), u64_at(&rest[33..]), u64_at(&rest[42..]))
            {
                return format!("push/{pid}/{slot}/{i}");
            }
        }
    }
    key.escape_ascii().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_sort_numerically() {
        let pid = Id([7; 32]);
        let mut keys: Vec<Vec<u8>> = [256u64, 1, 255, 0, u64::MAX, 65536]
            .iter()
            .map(|s| sched(&pid, *s))
            .collect();
        keys.sort();
        let slots: Vec<u64> = keys.iter().map(|k| parse_sched(k).unwrap().1).collect();
        assert_eq!(slots, vec![0, 1, 255, 256, 65536, u64::MAX]);
    }

    #[test]
    fn keys_parse_back_and_print() {
        let pid = Id([1; 32]);
        assert_eq!(parse_sched(&sched(&pid, 9)), Some((pid, 9)));
        assert_eq!(parse_proc_slot(&proc_slot(&pid, 3)), Some((pid, 3)));
        assert_eq!(printable(&sched(&pid, 9)), format!("sched/{pid}/9"));
        assert_eq!(printable(&proc_slot(&pid, 3)), format!("proc/{pid}/slot/3"));
        let other = Id([2; 32]);
        assert_eq!(printable(&msg(&pid)), format!("msg/{pid}"));
        assert_eq!(printable(&link(&pid)), format!("link/{pid}"));
        assert_eq!(printable(&loc(&pid)), format!("loc/{pid}"));
        assert_eq!(printable(&lease(&pid)), format!("lease/{pid}"));
        assert_eq!(
            printable(&proc_id(&pid, &other)),
            format!("proc/{pid}/id/{other}")
        );
        assert_eq!(
            printable(&dedup(&pid, &other)),
            format!("dedup/{pid}/{other}")
        );
        assert_eq!(printable(&cmt(&pid, &other)), format!("cmt/{pid}/{other}"));
        assert_eq!(printable(&push(&pid, 4, 2)), format!("push/{pid}/4/2"));
        assert_eq!(printable(b"odd\x00key"), "odd\\x00key");
        assert_eq!(parse_sched(b"sched/short"), None);
    }

    #[test]
    fn prefix_end_is_the_next_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn prefixes_do_not_overlap() {
        let pid = Id([0xff; 32]);
        let next = Id([0; 32]);
        // The last slot of the highest pid still sorts inside its prefix.
        let key = sched(&pid, u64::MAX);
        assert!(key.starts_with(&sched_prefix(&pid)));
        assert!(!sched(&next, 0).starts_with(&sched_prefix(&pid)));
        assert!(!proc_id(&pid, &next).starts_with(&proc_slot_prefix(&pid)));
    }
}
