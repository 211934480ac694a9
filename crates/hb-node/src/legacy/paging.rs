//! The legacy schedule page's query (SPEC §10.4): timestamps with an
//! exclusive `from` and an inclusive `to`, or nonces (slots); `limit`.
//! Pure: parsing, and choosing the edges of a page from assignments read
//! in slot order.

use hb_message::Message;

/// Default `limit`.
pub const DEFAULT_LIMIT: u64 = 100;

/// Which slots a page asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Range {
    /// Assignments stamped after `from` (exclusive) and up to `to`
    /// (inclusive); cursors are timestamps.
    Timestamps {
        /// Exclusive lower bound, ms.
        from: Option<i64>,
        /// Inclusive upper bound, ms.
        to: Option<i64>,
    },
    /// Slots `from..=to` (`from` −1 or 0 both start at the process);
    /// cursors are nonces.
    Nonces {
        /// First slot.
        from: u64,
        /// Last slot, if bounded.
        to: Option<u64>,
    },
}

/// A parsed page query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageQuery {
    /// The slots asked for.
    pub range: Range,
    /// At most this many edges (1..=`schedule_page_max`).
    pub limit: u64,
}

fn int(name: &str, v: &str) -> Result<i64, String> {
    v.trim()
        .parse::<i64>()
        .map_err(|_| format!("`{name}` must be an integer, not {v:?}"))
}

impl PageQuery {
    /// Parses `from`, `to`, `limit`, `from-nonce`, `to-nonce` (other
    /// parameters, such as `process-id`, are ignored). A `limit` above
    /// `max` is capped to it; below 1, or mixing timestamps with nonces, is
    /// an error.
    pub fn parse(pairs: &[(String, String)], max: u64) -> Result<PageQuery, String> {
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let limit = match get("limit") {
            None => DEFAULT_LIMIT.min(max),
            Some(v) => {
                let n = int("limit", v)?;
                if n < 1 {
                    return Err("`limit` must be at least 1".into());
                }
                (n as u64).min(max)
            }
        };
        let nonce = get("from-nonce").is_some() || get("to-nonce").is_some();
        if nonce && (get("from").is_some() || get("to").is_some()) {
            return Err("use either `from`/`to` (timestamps) or `from-nonce`/`to-nonce`".into());
        }
        let range = if nonce {
            let from = get("from-nonce")
                .map(|v| int("from-nonce", v))
                .transpose()?;
            let to = get("to-nonce").map(|v| int("to-nonce", v)).transpose()?;
            if from.is_some_and(|f| f < -1) || to.is_some_and(|t| t < 0) {
                return Err("nonces start at -1 (`from-nonce`) and 0 (`to-nonce`)".into());
            }
            Range::Nonces {
                from: from.unwrap_or(0).max(0) as u64,
                to: to.map(|t| t as u64),
            }
        } else {
            Range::Timestamps {
                from: get("from").map(|v| int("from", v)).transpose()?,
                to: get("to").map(|v| int("to", v)).transpose()?,
            }
        };
        Ok(PageQuery { range, limit })
    }
}

/// One edge: the stored assignment and its cursor.
pub struct Edge {
    /// The assignment (its body inside).
    pub assignment: Message,
    /// The cursor: the timestamp or the nonce, as text.
    pub cursor: String,
}

/// A chosen page.
pub struct Page {
    /// The edges, in slot order.
    pub edges: Vec<Edge>,
    /// Whether more assignments follow within the range.
    pub has_next_page: bool,
}

/// Chooses the page's edges from `candidates` (consecutive assignments in
/// slot order, starting at the first slot the range can include) given
/// whether more assignments exist after the last candidate.
pub fn choose(q: &PageQuery, candidates: Vec<(u64, Message)>, more_after: bool) -> Page {
    let mut edges = Vec::new();
    let mut stopped_by_range = false;
    for (slot, a) in candidates {
        let timestamp = a.get_int("timestamp").unwrap_or(i64::MIN);
        let (inside, cursor) = match &q.range {
            Range::Timestamps { from, to } => {
                if from.is_some_and(|f| timestamp <= f) {
                    continue;
                }
                (to.is_none_or(|t| timestamp <= t), timestamp.to_string())
            }
            Range::Nonces { from, to } => {
                if slot < *from {
                    continue;
                }
                (to.is_none_or(|t| slot <= t), slot.to_string())
            }
        };
        if !inside {
            stopped_by_range = true;
            break;
        }
        if edges.len() as u64 == q.limit {
            return Page {
                edges,
                has_next_page: true,
            };
        }
        edges.push(Edge {
            assignment: a,
            cursor,
        });
    }
    Page {
        edges,
        has_next_page: !stopped_by_range && more_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn schedule(n: u64) -> Vec<(u64, Message)> {
        (0..n)
            .map(|s| {
                (
                    s,
                    Message::new()
                        .with("timestamp", 1_000 + s as i64 * 10)
                        .unwrap(),
                )
            })
            .collect()
    }

    fn cursors(p: &Page) -> Vec<&str> {
        p.edges.iter().map(|e| e.cursor.as_str()).collect()
    }

    #[test]
    fn from_is_exclusive_and_to_inclusive() {
        let q = PageQuery::parse(&pairs(&[("from", "1010"), ("to", "1030")]), 1000).unwrap();
        let p = choose(&q, schedule(6), false);
        assert_eq!(cursors(&p), ["1020", "1030"]);
        assert!(!p.has_next_page, "the rest is past `to`");
    }

    #[test]
    fn the_limit_counts_the_process_and_says_more_follows() {
        let q = PageQuery::parse(&pairs(&[("limit", "2")]), 1000).unwrap();
        let p = choose(&q, schedule(5), false);
        assert_eq!(cursors(&p), ["1000", "1010"]);
        assert!(p.has_next_page);
        // The last page of a schedule says no more.
        let q = PageQuery::parse(&pairs(&[("from", "1020")]), 1000).unwrap();
        let p = choose(&q, schedule(5), false);
        assert_eq!(cursors(&p), ["1030", "1040"]);
        assert!(!p.has_next_page);
        // Unless the store holds more than was read.
        assert!(choose(&q, schedule(5), true).has_next_page);
    }

    #[test]
    fn nonce_mode_pages_by_slot_and_minus_one_starts_at_the_process() {
        let q = PageQuery::parse(&pairs(&[("from-nonce", "-1"), ("to-nonce", "2")]), 1000).unwrap();
        let p = choose(&q, schedule(5), false);
        assert_eq!(cursors(&p), ["0", "1", "2"]);
        assert!(!p.has_next_page);
    }

    #[test]
    fn bad_queries_are_errors_and_limits_are_capped() {
        assert!(PageQuery::parse(&pairs(&[("limit", "0")]), 10).is_err());
        assert!(PageQuery::parse(&pairs(&[("from", "x")]), 10).is_err());
        assert!(PageQuery::parse(&pairs(&[("from", "1"), ("to-nonce", "2")]), 10).is_err());
        assert!(PageQuery::parse(&pairs(&[("from-nonce", "-2")]), 10).is_err());
        assert_eq!(
            PageQuery::parse(&pairs(&[("limit", "500")]), 10)
                .unwrap()
                .limit,
            10
        );
        assert_eq!(PageQuery::parse(&[], 1000).unwrap().limit, DEFAULT_LIMIT);
    }
}
