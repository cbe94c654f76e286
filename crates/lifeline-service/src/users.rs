//! Who is asking: users, their tokens, and what each may see.
//!
//! Tokens are kept only as SHA-256 digests, in memory for every request and in the store for
//! restarts. A token is a user's (with an optional expiry) or an endpoint's. Revoking or expiring
//! one takes effect at once: the lookup refuses it, and long-lived connections (event streams,
//! endpoint sessions) watch [`Tokens::revocations`] and close.

use std::collections::HashMap;
use std::sync::RwLock;

use lifeline_model::{EndpointId, Timestamp};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::sync::watch;

/// A user's number in the store. User 1 is `admin`, created with the store.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

impl UserId {
    pub const ADMIN: UserId = UserId(1);
}

/// A signed-in user, as a request carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub id: UserId,
    pub name: String,
    pub admin: bool,
    /// The token the request came with (its id, not the token).
    pub token_id: String,
}

/// Who a token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Principal {
    User(Caller),
    Endpoint(EndpointId),
}

#[derive(Clone, Debug)]
struct Entry {
    /// The digest again, compared in constant time after the map finds it.
    digest: [u8; 32],
    principal: Principal,
    expires: Option<Timestamp>,
}

/// Every valid token, by digest. Read on every request, written when tokens and endpoints come
/// and go; a std lock because it is never held across an await.
#[derive(Debug)]
pub struct Tokens {
    by_digest: RwLock<HashMap<[u8; 32], Entry>>,
    /// Bumped whenever a token stops working, so that open connections look again.
    revoked: watch::Sender<u64>,
}

impl Default for Tokens {
    fn default() -> Self {
        Self {
            by_digest: RwLock::new(HashMap::new()),
            revoked: watch::channel(0).0,
        }
    }
}

impl Tokens {
    pub fn insert(&self, digest: [u8; 32], principal: Principal, expires: Option<Timestamp>) {
        let entry = Entry {
            digest,
            principal,
            expires,
        };
        self.by_digest
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(digest, entry);
    }

    /// Forgets every token `gone` matches, and tells open connections.
    pub fn remove(&self, gone: impl Fn(&Principal) -> bool) {
        self.by_digest
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, entry| !gone(&entry.principal));
        self.revoked.send_modify(|n| *n += 1);
    }

    pub fn remove_endpoint(&self, endpoint: EndpointId) {
        self.remove(|p| *p == Principal::Endpoint(endpoint));
    }

    /// Who `token` belongs to, if it is valid `now`.
    pub fn lookup(&self, token: &str, now: Timestamp) -> Option<Principal> {
        let wanted = digest(token);
        let map = self.by_digest.read().unwrap_or_else(|e| e.into_inner());
        let entry = map.get(&wanted)?;
        let same: bool = entry.digest.ct_eq(&wanted).into();
        let live = entry.expires.is_none_or(|at| at > now);
        (same && live).then(|| entry.principal.clone())
    }

    /// Whether the user token with this id still works `now`.
    pub fn user_token_valid(&self, token_id: &str, now: Timestamp) -> bool {
        self.by_digest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|e| {
                matches!(&e.principal, Principal::User(c) if c.token_id == token_id)
                    && e.expires.is_none_or(|at| at > now)
            })
    }

    /// Whether the endpoint still has a token (it was not deleted).
    pub fn endpoint_valid(&self, endpoint: EndpointId) -> bool {
        self.by_digest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|e| e.principal == Principal::Endpoint(endpoint))
    }

    /// Changes whenever a token stops working.
    pub fn revocations(&self) -> watch::Receiver<u64> {
        self.revoked.subscribe()
    }

    /// Tokens that expire by themselves: their connections are checked again at that moment.
    pub fn expiry(&self, token_id: &str) -> Option<Timestamp> {
        self.by_digest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|e| matches!(&e.principal, Principal::User(c) if c.token_id == token_id))
            .and_then(|e| e.expires)
    }
}

/// A new random secret: 32 bytes as hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

/// A new token id: 8 random bytes as hex (an identifier, not a secret).
pub fn new_token_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a stored hex digest.
pub fn digest_from_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(token_id: &str) -> Principal {
        Principal::User(Caller {
            id: UserId(2),
            name: "ada".into(),
            admin: false,
            token_id: token_id.into(),
        })
    }

    #[test]
    fn tokens_are_found_by_digest_until_they_expire_or_are_removed() {
        let tokens = Tokens::default();
        let now = Timestamp::from_micros(1_000_000);
        let later = Timestamp::from_micros(2_000_000);
        tokens.insert(digest("forever"), caller("a"), None);
        tokens.insert(digest("brief"), caller("b"), Some(later));
        assert_eq!(tokens.lookup("forever", now), Some(caller("a")));
        assert_eq!(tokens.lookup("brief", now), Some(caller("b")));
        assert_eq!(tokens.lookup("brief", later), None, "expired at its expiry");
        assert_eq!(tokens.lookup("other", now), None);
        let revocations = tokens.revocations();
        tokens.remove(|p| *p == caller("a"));
        assert!(revocations.has_changed().expect("open"));
        assert_eq!(tokens.lookup("forever", now), None);
        assert!(!tokens.user_token_valid("a", now));
        assert!(tokens.user_token_valid("b", now));
    }

    #[test]
    fn digests_read_back_from_hex() {
        let d = digest("x");
        assert_eq!(digest_from_hex(&hex(&d)), Some(d));
        assert_eq!(digest_from_hex("zz"), None);
    }
}
