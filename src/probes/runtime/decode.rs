//! Decoding ring-buffer records and map keys through the layouts codegen produced.
//!
//! Values are plain Rust here; turning them into Nushell values is the caller's business.

use nubpf_ebpf::ir::Ty;
use nubpf_ebpf::layout::{EventLayout, RecordLayout};

/// A decoded field value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::UInt(v) => write!(f, "{v}"),
            Value::Bool(v) => write!(f, "{v}"),
            Value::Str(v) => f.write_str(v),
        }
    }
}

/// One decoded ring-buffer record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The event id (index into `Compiled::events`); `None` for a record no layout knows.
    pub id: Option<u32>,
    /// The emitting probe.
    pub probe: Option<usize>,
    /// Field values in layout order.
    pub values: Vec<Value>,
}

/// Decodes one record. A record shorter than its layout decodes the fields that fit.
pub fn decode(events: &[EventLayout], bytes: &[u8]) -> Event {
    let Some((id, layout)) = event_layout(events, bytes) else {
        return Event {
            id: None,
            probe: None,
            values: Vec::new(),
        };
    };
    Event {
        id: Some(id),
        probe: Some(layout.probe),
        values: decode_fields(&layout.record, bytes),
    }
}

/// The event type a record's header names, with its layout; `None` for bytes too short or
/// naming no event type of this module.
pub fn event_layout<'a>(events: &'a [EventLayout], bytes: &[u8]) -> Option<(u32, &'a EventLayout)> {
    let id = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
    Some((id, events.get(id as usize)?))
}

/// Decodes every field of `layout` that `bytes` holds.
pub fn decode_fields(layout: &RecordLayout, bytes: &[u8]) -> Vec<Value> {
    layout
        .fields
        .iter()
        .map_while(|f| {
            let start = f.offset as usize;
            let field = bytes.get(start..start + f.ty.size() as usize)?;
            Some(decode_value(f.ty, field))
        })
        .collect()
}

/// A fixed-size string field's text: up to its first NUL, invalid UTF-8 replaced.
pub fn decode_str(b: &[u8]) -> std::borrow::Cow<'_, str> {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end])
}

/// Decodes one value of type `ty` from exactly its bytes.
pub fn decode_value(ty: Ty, b: &[u8]) -> Value {
    match ty {
        Ty::Bool => Value::Bool(b.first().is_some_and(|&v| v != 0)),
        Ty::Str { .. } => Value::Str(decode_str(b).into_owned()),
        Ty::Int(int) => {
            let mut raw = [0u8; 8];
            let n = (int.bytes as usize).min(b.len()).min(8);
            raw[..n].copy_from_slice(&b[..n]);
            let unsigned = u64::from_le_bytes(raw);
            if int.signed {
                let shift = 64 - 8 * n as u32;
                Value::Int(((unsigned << shift) as i64) >> shift)
            } else {
                Value::UInt(unsigned)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubpf_ebpf::ir::IntTy;
    use nubpf_ebpf::layout::EVENT_HEADER;

    #[test]
    fn decodes_through_the_layout() {
        let record = RecordLayout::new(
            EVENT_HEADER,
            [
                ("pid", Ty::Int(IntTy::U32)),
                ("delta", Ty::Int(IntTy::I16)),
                ("comm", Ty::Str { cap: 16 }),
                ("ok", Ty::Bool),
            ],
        );
        let events = vec![EventLayout {
            id: 0,
            probe: 3,
            record: record.clone(),
        }];
        let mut bytes = vec![0u8; record.size as usize];
        bytes[8..12].copy_from_slice(&4242u32.to_le_bytes());
        bytes[12..14].copy_from_slice(&(-7i16).to_le_bytes());
        bytes[16..20].copy_from_slice(b"bash");
        bytes[20] = 0;
        bytes[21] = b'X'; // garbage after the NUL is ignored
        bytes[32] = 1;
        let e = decode(&events, &bytes);
        assert_eq!(e.probe, Some(3));
        assert_eq!(
            e.values,
            vec![
                Value::UInt(4242),
                Value::Int(-7),
                Value::Str("bash".into()),
                Value::Bool(true)
            ]
        );
    }

    #[test]
    fn unknown_event_ids_decode_to_nothing() {
        let e = decode(&[], &[9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(e.id, None);
        assert!(e.values.is_empty());
    }
}
