//! The OHTTP key ring: one X25519 and one P-256 key per generation, generated in the enclave.
//! Each certificate rotation installs a new generation and keeps the previous one for decryption
//! (the overlap), so clients that fetched the keys just before a rotation still get through.

use std::sync::{PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use shroud_ohttp::{Kem, KeyConfig, OhttpError, ServerKey};

use crate::config::OhttpConfig;

/// A generation of keys, generated but not installed yet: its list goes into the certificate
/// first, then the keys are installed.
pub(crate) struct PendingKeys {
    keys: Vec<ServerKey>,
    /// The exact `application/ohttp-keys` bytes to serve and bind.
    pub(crate) list: Bytes,
}

impl PendingKeys {
    /// A generation of `keys` made elsewhere (derived from the cluster secret), served in this
    /// order.
    pub(crate) fn from_keys(keys: Vec<ServerKey>) -> PendingKeys {
        let configs: Vec<KeyConfig> = keys.iter().map(|k| k.config().clone()).collect();
        PendingKeys {
            list: Bytes::from(KeyConfig::encode_list(&configs)),
            keys,
        }
    }
}

struct Ring {
    /// The current generation, served; then the others still accepted (the previous
    /// generation; with `[cluster]`, the previous and the next epoch's).
    current: Vec<ServerKey>,
    previous: Vec<ServerKey>,
    served: Bytes,
    next_key_id: u8,
}

/// What every connection shares of OHTTP.
pub(crate) struct OhttpState {
    ring: RwLock<Ring>,
    /// `enc` values seen within the date window: a replayed request is refused.
    replay: moka::future::Cache<Vec<u8>, ()>,
    /// The `[ohttp]` configuration.
    pub(crate) config: OhttpConfig,
}

impl OhttpState {
    /// An empty ring (nothing served until the first [`install`](Self::install)).
    pub(crate) fn new(config: &OhttpConfig) -> OhttpState {
        let window = Duration::from_secs(config.replay_window_secs);
        OhttpState {
            ring: RwLock::new(Ring {
                current: Vec::new(),
                previous: Vec::new(),
                served: Bytes::new(),
                next_key_id: 1,
            }),
            // An `enc` is remembered for the whole span of dates accepted around it.
            replay: moka::future::Cache::builder()
                .max_capacity(config.replay_cache_capacity)
                .time_to_live(window.saturating_mul(2))
                .build(),
            config: config.clone(),
        }
    }

    /// Generates the next generation of keys (fresh key ids).
    pub(crate) fn generate(&self) -> Result<PendingKeys, OhttpError> {
        let first = self
            .ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .next_key_id;
        let keys = vec![
            ServerKey::generate(first, Kem::X25519Sha256)?,
            ServerKey::generate(first.wrapping_add(1), Kem::P256Sha256)?,
        ];
        let configs: Vec<KeyConfig> = keys.iter().map(|k| k.config().clone()).collect();
        Ok(PendingKeys {
            list: Bytes::from(KeyConfig::encode_list(&configs)),
            keys,
        })
    }

    /// Installs a generation just before the certificate that binds it is served; the current one
    /// becomes the previous one, and the one before is dropped.
    pub(crate) fn install(&self, pending: PendingKeys) {
        let mut ring = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        let last = pending.keys.last().map_or(0, |k| k.config().key_id);
        ring.previous = std::mem::replace(&mut ring.current, pending.keys);
        ring.served = pending.list;
        // Key ids cycle through 1..=254 (two per generation), never reusing the previous ones.
        ring.next_key_id = if last >= 253 { 1 } else { last + 1 };
    }

    /// Installs a generation derived for an epoch, just before the certificate that binds it is
    /// served, accepting `also_accepted` (the neighbouring epochs' keys) besides it; whatever
    /// was installed before is dropped.
    pub(crate) fn install_epoch(&self, pending: PendingKeys, also_accepted: Vec<ServerKey>) {
        let mut ring = self.ring.write().unwrap_or_else(PoisonError::into_inner);
        ring.current = pending.keys;
        ring.previous = also_accepted;
        ring.served = pending.list;
    }

    /// The served `application/ohttp-keys` bytes.
    pub(crate) fn served_keys(&self) -> Bytes {
        self.ring
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .served
            .clone()
    }

    /// The key with this id, current or previous.
    pub(crate) fn key(&self, key_id: u8) -> Option<ServerKey> {
        let ring = self.ring.read().unwrap_or_else(PoisonError::into_inner);
        ring.current
            .iter()
            .chain(ring.previous.iter())
            .find(|k| k.config().key_id == key_id)
            .cloned()
    }

    /// Records `enc`; false when it was already seen within the window (a replay).
    pub(crate) async fn first_use(&self, enc: &[u8]) -> bool {
        self.replay
            .entry(enc.to_vec())
            .or_insert(())
            .await
            .is_fresh()
    }
}
