//! Where block height, hash and timestamp come from (SPEC §5.3).

use std::sync::Arc;

use hb_message::Id;
use parking_lot::Mutex;

/// The chain tip stamped on assignments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainTip {
    /// Block height.
    pub height: i64,
    /// Block timestamp (seconds).
    pub timestamp: i64,
    /// Block hash.
    pub hash: Id,
}

impl ChainTip {
    /// The local default: height 0, timestamp 0, the zero hash (43 × `A`).
    pub const LOCAL: ChainTip = ChainTip {
        height: 0,
        timestamp: 0,
        hash: Id([0; 32]),
    };
}

/// A source of chain tips. Implementations may do I/O; they are called off
/// the sequencing path and their failures never block scheduling.
pub trait ChainTipSource: Send + Sync + 'static {
    /// The current tip, or why it is unavailable.
    fn tip(&self) -> Result<ChainTip, String>;
}

/// The `local` source: always [`ChainTip::LOCAL`], like HyperBEAM's debug mode.
#[derive(Clone, Copy, Debug, Default)]
pub struct LocalChainTip;

impl ChainTipSource for LocalChainTip {
    fn tip(&self) -> Result<ChainTip, String> {
        Ok(ChainTip::LOCAL)
    }
}

/// Wraps a source and falls back to the last known tip (logging a warning)
/// when it fails.
pub struct CachedChainTip {
    source: Arc<dyn ChainTipSource>,
    last: Mutex<ChainTip>,
}

impl std::fmt::Debug for CachedChainTip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedChainTip")
            .field("last", &*self.last.lock())
            .finish_non_exhaustive()
    }
}

impl CachedChainTip {
    /// Wraps `source`; until it first answers, the fallback is the local tip.
    pub fn new(source: Arc<dyn ChainTipSource>) -> CachedChainTip {
        CachedChainTip {
            source,
            last: Mutex::new(ChainTip::LOCAL),
        }
    }

    /// The last known tip, without asking the source: what the sequencing
    /// path stamps, so a slow source never delays an assignment. Kept fresh
    /// by [`refresh`](Self::refresh) (the scheduler calls it on a timer,
    /// off the sequencing path) and by every [`current`](Self::current).
    pub fn cached(&self) -> ChainTip {
        *self.last.lock()
    }

    /// Asks the source once and caches the answer (on failure, keeps the
    /// last known tip and logs a warning).
    pub fn refresh(&self) -> ChainTip {
        self.current()
    }

    /// The current tip, or the last known one if the source fails.
    pub fn current(&self) -> ChainTip {
        match self.source.tip() {
            Ok(tip) => {
                *self.last.lock() = tip;
                tip
            }
            Err(reason) => {
                let last = *self.last.lock();
                tracing::warn!(%reason, height = last.height, "chain-tip source failed; using the last known tip");
                last
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct Flaky(AtomicBool);

    impl ChainTipSource for Flaky {
        fn tip(&self) -> Result<ChainTip, String> {
            if self.0.swap(false, Ordering::SeqCst) {
                Ok(ChainTip {
                    height: 7,
                    timestamp: 70,
                    hash: Id([1; 32]),
                })
            } else {
                Err("down".into())
            }
        }
    }

    struct Counting(std::sync::atomic::AtomicU64);

    impl ChainTipSource for Counting {
        fn tip(&self) -> Result<ChainTip, String> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) as i64 + 1;
            Ok(ChainTip {
                height: n,
                timestamp: n,
                hash: Id([1; 32]),
            })
        }
    }

    #[test]
    fn the_cached_tip_never_asks_the_source_and_a_refresh_updates_it() {
        let source = Arc::new(Counting(std::sync::atomic::AtomicU64::new(0)));
        let tip = CachedChainTip::new(Arc::clone(&source) as Arc<dyn ChainTipSource>);
        assert_eq!(tip.cached(), ChainTip::LOCAL);
        assert_eq!(tip.cached(), ChainTip::LOCAL);
        assert_eq!(
            source.0.load(Ordering::SeqCst),
            0,
            "cached() asked the source"
        );
        assert_eq!(tip.refresh().height, 1);
        assert_eq!(tip.cached().height, 1);
        assert_eq!(source.0.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn local_tip_is_zero() {
        let tip = LocalChainTip.tip().unwrap();
        assert_eq!(tip.hash.to_human(), "A".repeat(43));
        assert_eq!((tip.height, tip.timestamp), (0, 0));
    }

    #[test]
    fn a_failing_source_falls_back_to_the_last_tip() {
        let cached = CachedChainTip::new(Arc::new(Flaky(AtomicBool::new(true))));
        assert_eq!(cached.current().height, 7);
        assert_eq!(cached.current().height, 7);
    }
}
