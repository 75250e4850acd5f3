//! Which of several engine instances (Redis shards) a channel lives on.
//!
//! A node with `redis_url` listing several Redis instances spreads channels over them by a
//! stable hash of the channel name, so that one Redis is not the ceiling. Every node, and
//! every publisher that writes to the engine directly, must pick the same shard for a
//! channel, in every language: the rule lives here, once. It is FNV-1a (64 bits) of the
//! channel's UTF-8 bytes, fed to Lamping and Veach's jump consistent hash, which moves
//! only about 1/n of the channels when a shard is added to n.

/// The shard (`0..shards`) that `channel` lives on. One shard (or none): always 0.
pub fn index(channel: &str, shards: usize) -> usize {
    if shards <= 1 {
        return 0;
    }
    jump(fnv1a(channel.as_bytes()), shards as i64) as usize
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// "A Fast, Minimal Memory, Consistent Hash Algorithm" (Lamping, Veach, 2014).
fn jump(mut key: u64, buckets: i64) -> i64 {
    let (mut b, mut j) = (-1i64, 0i64);
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_documented_one() {
        // FNV-1a's published vectors: other languages check against the same.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn channels_spread_and_stay_put() {
        assert_eq!(index("room:1", 1), 0);
        assert_eq!(index("room:1", 0), 0);
        let mut counts = [0usize; 4];
        for i in 0..4000 {
            counts[index(&format!("room:{i}"), 4)] += 1;
        }
        assert!(counts.iter().all(|&c| c > 800), "{counts:?}");
        // Growing from 4 shards to 5 moves only the channels the new shard takes.
        let moved = (0..4000)
            .filter(|i| {
                let c = format!("room:{i}");
                let (before, after) = (index(&c, 4), index(&c, 5));
                before != after && after != 4
            })
            .count();
        assert_eq!(moved, 0);
    }
}
