//! Where a schedule request for a process another node sequences goes
//! (SPEC §11.3), as a plain decision on what the store says about the
//! owner: forwarded or redirected to a live owner, else answered 503 so
//! the client retries once the lease has run out and a node takes it over.

use hb_store::NodeRecord;

use crate::config::ClusterRouting;

/// What to do with a request answered `not-owner`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Forward it to this URL and relay the answer.
    Proxy(String),
    /// Answer 307 with this URL in `Location`.
    Redirect(String),
    /// Answer 503 `unavailable` (with `retry-after`), for this reason.
    Unavailable(String),
}

/// What the node knows when a request was answered `not-owner`.
#[derive(Clone, Copy, Debug)]
pub struct Situation<'a> {
    /// This node's id.
    pub me: &'a str,
    /// The lease holder's node id.
    pub owner: &'a str,
    /// The holder's registration, as read from the store.
    pub record: Option<&'a NodeRecord>,
    /// Now, on this node's clock.
    pub now_ms: i64,
    /// The lease time: a row not refreshed for that long is a gone node.
    pub lease_ttl_ms: u64,
    /// The request's path and query below the node's mount point.
    pub path_and_query: &'a str,
    /// Whether the request was already forwarded by another node.
    pub forwarded: bool,
}

/// Decides where a request answered `not-owner` goes.
pub fn route(s: Situation<'_>, mode: ClusterRouting) -> Route {
    if s.forwarded {
        return Route::Unavailable(format!(
            "node {} holds the lease, and this request was already forwarded once",
            s.owner
        ));
    }
    if s.owner == s.me {
        // Our lease, but our server let it go (lost, or being re-taken):
        // a retry takes it again.
        return Route::Unavailable("this node is re-taking the process's lease".into());
    }
    let Some(record) = s.record else {
        return Route::Unavailable(format!(
            "node {} holds the lease but is not registered; the lease runs out unless renewed",
            s.owner
        ));
    };
    if !record.is_live(s.now_ms, s.lease_ttl_ms) {
        return Route::Unavailable(format!(
            "node {} holds the lease but was last seen {} ms ago; another node takes over once the lease runs out",
            s.owner,
            s.now_ms.saturating_sub(record.last_seen_ms)
        ));
    }
    let url = target(&record.url, s.path_and_query);
    match mode {
        ClusterRouting::Proxy => Route::Proxy(url),
        ClusterRouting::Redirect => Route::Redirect(url),
    }
}

/// `base` (a node's URL) joined with a path and query starting with `/`.
pub fn target(base: &str, path_and_query: &str) -> String {
    let base = base.trim_end_matches('/');
    if path_and_query.starts_with('/') {
        format!("{base}{path_and_query}")
    } else {
        format!("{base}/{path_and_query}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seen: i64) -> NodeRecord {
        NodeRecord {
            url: "http://10.0.0.2:8734/".into(),
            started_ms: 0,
            last_seen_ms: seen,
        }
    }

    fn situation(record: Option<&NodeRecord>) -> Situation<'_> {
        Situation {
            me: "a",
            owner: "b",
            record,
            now_ms: 10_000,
            lease_ttl_ms: 5_000,
            path_and_query: "/~scheduler@1.0/schedule?x=1",
            forwarded: false,
        }
    }

    #[test]
    fn a_live_owner_gets_the_request_forwarded_or_redirected_by_mode() {
        let r = record(9_000);
        let url = "http://10.0.0.2:8734/~scheduler@1.0/schedule?x=1".to_string();
        assert_eq!(
            route(situation(Some(&r)), ClusterRouting::Proxy),
            Route::Proxy(url.clone())
        );
        assert_eq!(
            route(situation(Some(&r)), ClusterRouting::Redirect),
            Route::Redirect(url)
        );
    }

    #[test]
    fn a_gone_unregistered_or_self_owner_or_a_second_hop_is_unavailable() {
        let stale = record(5_000);
        for (s, why) in [
            (situation(Some(&stale)), "last seen 5000 ms ago"),
            (situation(None), "not registered"),
            (
                Situation {
                    owner: "a",
                    ..situation(Some(&record(9_999)))
                },
                "re-taking",
            ),
            (
                Situation {
                    forwarded: true,
                    ..situation(Some(&record(9_999)))
                },
                "already forwarded",
            ),
        ] {
            for mode in [ClusterRouting::Proxy, ClusterRouting::Redirect] {
                match route(s, mode) {
                    Route::Unavailable(reason) => assert!(reason.contains(why), "{reason}"),
                    other => panic!("{why}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn targets_join_without_doubled_or_missing_slashes() {
        assert_eq!(target("http://h:1/", "/a?b"), "http://h:1/a?b");
        assert_eq!(target("http://h:1", "/a"), "http://h:1/a");
        assert_eq!(target("http://h:1/mnt", "a"), "http://h:1/mnt/a");
    }
}
