//! What Raft's snapshots and VRR's checkpoints share: the encoded size of a key-value store
//! (for the bandwidth model), reading one back from inside a tagged message, and the rule for
//! which log entries a snapshot replaces.

use coracle_core::KvStore;
use serde::Deserialize;

/// Bytes of `kv` encoded as JSON, counted without building the text.
pub(crate) fn encoded_len(kv: &KvStore) -> usize {
    struct ByteCount(usize);
    impl std::io::Write for ByteCount {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = ByteCount(0);
    // Writing into a counter cannot fail, and KvStore's encoding has no fallible parts.
    let _ = serde_json::to_writer(&mut n, kv);
    n.0
}

/// Reads a store through a JSON value: inside an internally tagged enum (`RaftMsg`,
/// `VrrMsg`, their writes) serde buffers the content, and the store's integer map keys
/// (encoded as JSON strings) can then only be read back by `serde_json`'s value deserializer.
pub(crate) fn kv_via_value<'de, D: serde::Deserializer<'de>>(d: D) -> Result<KvStore, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    serde_json::from_value(v).map_err(serde::de::Error::custom)
}

/// Drops from `log` (the entries after index `base`) those a snapshot up to `upto` covers
/// (`upto > base`). The entries after it are kept if `log` holds entry `upto` and `is_last`
/// says it is the snapshot's last (same term or view: by log matching, `log` up to there is
/// what the snapshot covers); otherwise the whole log goes. Raft's snapshots and VRR's
/// checkpoints, for servers and disk images alike, make this one choice.
pub(crate) fn drop_covered<E>(
    log: &mut Vec<E>,
    base: u64,
    upto: u64,
    is_last: impl Fn(&E) -> bool,
) {
    debug_assert!(upto > base);
    let k = (upto - base) as usize;
    if k <= log.len() && is_last(&log[k - 1]) {
        log.drain(..k);
    } else {
        log.clear();
    }
}
