//! Serde forms of the state's fields that JSON cannot hold as they are (the saved state,
//! [`crate::snapshot`]): bytes and reply payloads as hex, maps keyed by principals as pairs.
//! Used by the state's own types, so it depends on nothing but [`crate::reject`].

/// Serde helper: bytes as a hex string.
pub mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes bytes as hex.
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    /// Deserializes hex into bytes.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

/// Serde helper: a reply payload with the reply bytes as hex.
pub mod hex_payload {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::reject::RejectResponse;

    #[derive(Serialize, Deserialize)]
    enum P {
        Reply(String),
        Reject(RejectResponse),
    }

    /// Serializes a payload.
    pub fn serialize<S: Serializer>(
        p: &Result<Vec<u8>, RejectResponse>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match p {
            Ok(b) => P::Reply(hex::encode(b)),
            Err(r) => P::Reject(r.clone()),
        }
        .serialize(s)
    }

    /// Deserializes a payload.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Result<Vec<u8>, RejectResponse>, D::Error> {
        Ok(match P::deserialize(d)? {
            P::Reply(h) => Ok(hex::decode(h).map_err(serde::de::Error::custom)?),
            P::Reject(r) => Err(r),
        })
    }
}

/// Serde helper: a map keyed by principals, as a list of pairs.
pub mod principal_map {
    use std::collections::BTreeMap;

    use candid::Principal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serializes the map as pairs.
    pub fn serialize<S: Serializer, V: Serialize>(
        m: &BTreeMap<Principal, V>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(m.iter())
    }

    /// Deserializes pairs into the map.
    pub fn deserialize<'de, D: Deserializer<'de>, V: Deserialize<'de>>(
        d: D,
    ) -> Result<BTreeMap<Principal, V>, D::Error> {
        Ok(Vec::<(Principal, V)>::deserialize(d)?.into_iter().collect())
    }
}
