//! Value encoding of plugin records, format 1:
//! `[1][active: u32 BE, 0 = none][previous: u32 BE, 0 = none][count: varint]`
//! then per version, oldest first:
//! `[version: u32 BE][sha256: varint len + utf8][size: u64 BE]`
//! `[config: varint len + utf8][uploaded_ms: u64 BE]`.
//! Version numbers start at 1, so 0 is free to mean "none".

use super::codec::{Reader, put_bytes, put_varint};
use crate::{PluginRecord, PluginVersionMeta, StoreError};

const RECORD_V1: u8 = 1;

pub(crate) fn encode_record(record: &PluginRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + record.versions.len() * 128);
    out.push(RECORD_V1);
    out.extend_from_slice(&record.active.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&record.previous.unwrap_or(0).to_be_bytes());
    put_varint(&mut out, record.versions.len() as u64);
    for v in &record.versions {
        out.extend_from_slice(&v.version.to_be_bytes());
        put_bytes(&mut out, v.sha256.as_bytes());
        out.extend_from_slice(&v.size_bytes.to_be_bytes());
        put_bytes(&mut out, v.config.as_bytes());
        out.extend_from_slice(&v.uploaded_ms.to_be_bytes());
    }
    out
}

pub(crate) fn decode_record(
    tenant: &str,
    name: &str,
    value: &[u8],
) -> Result<PluginRecord, StoreError> {
    let mut r = Reader::new(value, "plugin record");
    let format = r.u8()?;
    if format != RECORD_V1 {
        return Err(r.corrupt(&format!("unknown format version {format}")));
    }
    let some = |v: u32| (v != 0).then_some(v);
    let active = some(u32::from_be_bytes(r.array()?));
    let previous = some(u32::from_be_bytes(r.array()?));
    let count = r.varint()?;
    let mut versions = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(64));
    for _ in 0..count {
        versions.push(PluginVersionMeta {
            version: u32::from_be_bytes(r.array()?),
            sha256: r.string()?,
            size_bytes: u64::from_be_bytes(r.array()?),
            config: r.string()?,
            uploaded_ms: u64::from_be_bytes(r.array()?),
        });
    }
    Ok(PluginRecord {
        tenant: tenant.into(),
        name: name.into(),
        versions,
        active,
        previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trips_and_truncation_is_corrupt() {
        let record = PluginRecord {
            tenant: "t".into(),
            name: "p".into(),
            versions: vec![PluginVersionMeta {
                version: 3,
                sha256: "ab".repeat(32),
                size_bytes: 10,
                config: "{}".into(),
                uploaded_ms: 5,
            }],
            active: Some(3),
            previous: None,
        };
        let raw = encode_record(&record);
        assert_eq!(decode_record("t", "p", &raw).unwrap(), record);
        for cut in 0..raw.len() {
            assert!(decode_record("t", "p", &raw[..cut]).is_err(), "cut {cut}");
        }
    }
}
