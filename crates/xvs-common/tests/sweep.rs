//! The choice of sweep queue: a record is never due after its entry's expiry (unless the
//! entry expires within the shortest wait, where it is due at the expiry itself), it waits
//! as long as it can, and so a connection is looked at only a few times in its life.

use proptest::prelude::*;
use xvs_common::{SWEEP_CHECK_NS, sweep, sweep_fallback, sweep_queue};

const SECOND: u64 = 1_000_000_000;

proptest! {
    #[test]
    fn a_record_waits_the_longest_wait_within_the_expiry(remaining in 0u64..2_000 * SECOND) {
        let (which, due) = sweep_queue(remaining);
        prop_assert!(due <= remaining);
        if remaining < SWEEP_CHECK_NS {
            prop_assert_eq!((which, due), (sweep::SOON, remaining));
        } else {
            prop_assert_eq!(due, sweep::WAITS_NS[which as usize]);
            // No longer wait would still be within the expiry.
            prop_assert!(sweep::WAITS_NS.iter().all(|&w| w <= due || w > remaining));
        }
    }

    /// A full queue's record waits less in the next, but the 10 s queue's, which goes to
    /// the 300 s queue (sized like the table: late rather than lost); the three tries a
    /// record gets meet three different queues, never the short one after the first.
    #[test]
    fn a_fallback_waits_less_until_the_largest_queue(which in 0u32..sweep::COUNT) {
        let to = sweep_fallback(which);
        prop_assert_ne!(to, sweep::SOON);
        if which == sweep::WAIT_10S {
            prop_assert_eq!(to, sweep::WAIT_300S);
        } else {
            prop_assert!(sweep::WAITS_NS[to as usize] <= sweep::WAITS_NS[which as usize].max(SWEEP_CHECK_NS));
        }
        let then = sweep_fallback(to);
        prop_assert!(which != to && to != then && then != which, "{which} {to} {then}");
    }
}

/// How many times an untouched entry is looked at before it goes: each look queues it
/// again for what is left.
fn looks(mut remaining: u64) -> u32 {
    let mut n = 0;
    loop {
        n += 1;
        let (_, due) = sweep_queue(remaining);
        remaining -= due;
        if remaining == 0 {
            return n;
        }
    }
}

#[test]
fn connections_are_looked_at_a_few_times_in_their_life() {
    // ESTABLISHED (900 s), TIME_WAIT (120 s), SYN_RECV (60 s), UDP (300 s), CLOSE (10 s).
    assert_eq!(looks(900 * SECOND), 3);
    assert_eq!(looks(120 * SECOND), 2);
    assert_eq!(looks(60 * SECOND), 1);
    assert_eq!(looks(300 * SECOND), 1);
    assert_eq!(looks(10 * SECOND), 1);
    // Beyond the longest wait's share, at most four 60 s waits, five 10 s ones and the
    // short queue.
    for s in 0..2_000 {
        let remaining = s * SECOND + 1;
        assert!(
            looks(remaining) as u64 <= remaining / (300 * SECOND) + 10,
            "{s} s"
        );
    }
}
