//! Prefix/session affinity for self-hosted pools: bounded-load consistent hashing.
//!
//! Requests with the same key (a session id, a hash of the prompt's prefix) go to the same
//! replica, so vLLM's prefix cache hits. The hashing is rendezvous (highest random weight):
//! each replica scores `hash(key, replica)` and the best score wins, so adding or removing a
//! replica moves only the keys it wins or won. Load is bounded as in "consistent hashing with
//! bounded loads" (Mirrokni et al.): a replica whose in-flight count would exceed
//! `load_factor × (total in flight + 1) / replicas` is saturated, and the key spills to its
//! next-best replica. Deterministic on every target (no random seed), so the edge and the
//! core agree.

use super::Candidate;

/// 64-bit FNV-1a over `parts` (with a separator), then a SplitMix64 finalizer.
pub fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for b in *p {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// Replica order for `key`: unsaturated replicas by rendezvous score, then saturated ones
/// (also by score). `loads[i]` is replica `i`'s requests in flight.
pub fn order(key: &str, names: &[&str], loads: &[u64], load_factor: f64) -> Vec<usize> {
    let n = names.len();
    let total: u64 = loads.iter().sum();
    let cap = (load_factor * (total as f64 + 1.0) / n.max(1) as f64).ceil() as u64;
    let mut scored: Vec<(bool, u64, usize)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let saturated = loads.get(i).copied().unwrap_or(0) + 1 > cap.max(1);
            (saturated, hash(&[key.as_bytes(), name.as_bytes()]), i)
        })
        .collect();
    scored.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    scored.into_iter().map(|(_, _, i)| i).collect()
}

/// Reorders the entries of `order` that belong to its first tier by affinity to `key`.
pub(super) fn reorder_first_tier(
    key: &str,
    load_factor: f64,
    candidates: &[Candidate<'_>],
    order: &mut [(usize, Option<f64>)],
) {
    let Some(first) = order.first().map(|(i, _)| candidates[*i].tier) else {
        return;
    };
    let len = order
        .iter()
        .take_while(|(i, _)| candidates[*i].tier == first)
        .count();
    if len < 2 {
        return;
    }
    let tier = &mut order[..len];
    let names: Vec<&str> = tier
        .iter()
        .map(|(i, _)| candidates[*i].deployment.name.as_str())
        .collect();
    let loads: Vec<u64> = tier
        .iter()
        .map(|(i, _)| candidates[*i].stats.in_flight)
        .collect();
    let new: Vec<(usize, Option<f64>)> = order_by(key, &names, &loads, load_factor)
        .into_iter()
        .map(|j| tier[j])
        .collect();
    tier.copy_from_slice(&new);
}

fn order_by(key: &str, names: &[&str], loads: &[u64], load_factor: f64) -> Vec<usize> {
    order(key, names, loads, load_factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_replica_and_spreads_keys() {
        let names = ["r0", "r1", "r2", "r3"];
        let idle = [0, 0, 0, 0];
        let mut counts = [0usize; 4];
        for k in 0..4000 {
            let key = format!("session-{k}");
            let first = order(&key, &names, &idle, 1.25)[0];
            assert_eq!(first, order(&key, &names, &idle, 1.25)[0]);
            counts[first] += 1;
        }
        for c in counts {
            assert!((800..1200).contains(&c), "uneven spread {counts:?}");
        }
    }

    #[test]
    fn saturated_replica_spills_to_the_next_best() {
        let names = ["r0", "r1", "r2"];
        let key = "prefix-abc";
        let idle = order(key, &names, &[0, 0, 0], 1.25);
        let best = idle[0];
        let mut loads = [0u64; 3];
        loads[best] = 10;
        let busy = order(key, &names, &loads, 1.25);
        assert_eq!(busy[0], idle[1], "spills to the second choice");
        assert_eq!(*busy.last().unwrap_or(&99), best);
    }

    #[test]
    fn removing_a_replica_moves_only_its_keys() {
        let all = ["r0", "r1", "r2", "r3"];
        let fewer = ["r0", "r1", "r3"];
        for k in 0..500 {
            let key = format!("k{k}");
            let a = all[order(&key, &all, &[0; 4], 1.25)[0]];
            let b = fewer[order(&key, &fewer, &[0; 3], 1.25)[0]];
            if a != "r2" {
                assert_eq!(a, b);
            }
        }
    }
}
