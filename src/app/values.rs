//! Decoded probe output as Nushell values (for pipelines and tables) and as NDJSON (the fast
//! path that skips Nushell when a probe has no pipeline).

use std::io::Write;

use nu_protocol::{Record, Span, Value};
use nubpf_ebpf::ir::Ty;
use nubpf_ebpf::layout::RecordLayout;

use crate::probes::runtime::decode::{self, Value as Decoded};

/// One decoded value as a Nushell value. Integers above `i64::MAX` (kernel addresses) do not
/// fit Nushell's `int`: they become hexadecimal strings.
pub fn to_nu(v: &Decoded, span: Span) -> Value {
    match v {
        Decoded::Int(i) => Value::int(*i, span),
        Decoded::UInt(u) => match i64::try_from(*u) {
            Ok(i) => Value::int(i, span),
            Err(_) => Value::string(format!("{u:#x}"), span),
        },
        Decoded::Bool(b) => Value::bool(*b, span),
        Decoded::Str(s) => Value::string(s.clone(), span),
    }
}

/// A decoded record as a Nushell record with the layout's column names.
pub fn record(layout: &RecordLayout, values: &[Decoded], span: Span) -> Value {
    let mut record = Record::with_capacity(values.len());
    for (field, value) in layout.fields.iter().zip(values) {
        record.push(field.name.clone(), to_nu(value, span));
    }
    Value::record(record, span)
}

/// Writes a JSON string literal.
pub fn write_json_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    out.write_all(b"\"")?;
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.write_all(&s.as_bytes()[start..i])?;
        match escape {
            Some(e) => out.write_all(e)?,
            None => write!(out, "\\u{b:04x}")?,
        }
        start = i + 1;
    }
    out.write_all(&s.as_bytes()[start..])?;
    out.write_all(b"\"")
}

/// Writes one record as a line of JSON, columns in layout order.
pub fn write_json_record(
    out: &mut impl Write,
    layout: &RecordLayout,
    values: &[Decoded],
) -> std::io::Result<()> {
    let mut digits = itoa::Buffer::new();
    out.write_all(b"{")?;
    for (i, (field, value)) in layout.fields.iter().zip(values).enumerate() {
        write_json_key(out, i, &field.name)?;
        write_json_value(out, &mut digits, value)?;
    }
    out.write_all(b"}\n")
}

/// `"name":`, after a comma unless it is the record's first field.
fn write_json_key(out: &mut impl Write, index: usize, name: &str) -> std::io::Result<()> {
    if index > 0 {
        out.write_all(b",")?;
    }
    write_json_str(out, name)?;
    out.write_all(b":")
}

fn write_json_value(
    out: &mut impl Write,
    digits: &mut itoa::Buffer,
    value: &Decoded,
) -> std::io::Result<()> {
    match value {
        Decoded::Int(v) => out.write_all(digits.format(*v).as_bytes()),
        Decoded::UInt(v) => out.write_all(digits.format(*v).as_bytes()),
        Decoded::Bool(v) => out.write_all(if *v { b"true" } else { b"false" }),
        Decoded::Str(s) => write_json_str(out, s),
    }
}

/// Writes one record as a JSON line straight from its ring-buffer bytes: the same text as
/// [`write_json_record`] of its decoded values, without building them (the NDJSON fast path
/// of `run`, where a record costs no allocation).
pub fn write_json_raw(
    out: &mut impl Write,
    layout: &RecordLayout,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut digits = itoa::Buffer::new();
    out.write_all(b"{")?;
    for (i, field) in layout.fields.iter().enumerate() {
        let start = field.offset as usize;
        let Some(raw) = bytes.get(start..start + field.ty.size() as usize) else {
            break;
        };
        write_json_key(out, i, &field.name)?;
        match field.ty {
            // Borrowed, not allocated: the one value kind whose decoding allocates.
            Ty::Str { .. } => write_json_str(out, &decode::decode_str(raw))?,
            ty => write_json_value(out, &mut digits, &decode::decode_value(ty, raw))?,
        }
    }
    out.write_all(b"}\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use nubpf_ebpf::ir::{IntTy, Ty};

    #[test]
    fn json_lines_escape_strings_and_keep_order() {
        let layout = RecordLayout::new(
            8,
            [
                ("pid", Ty::Int(IntTy::U32)),
                ("file", Ty::Str { cap: 16 }),
                ("ok", Ty::Bool),
                ("d", Ty::Int(IntTy::I64)),
            ],
        );
        let values = [
            Decoded::UInt(7),
            Decoded::Str("a\"b\\c\n\u{1}é".into()),
            Decoded::Bool(true),
            Decoded::Int(-3),
        ];
        let mut out = Vec::new();
        write_json_record(&mut out, &layout, &values).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(
            line,
            "{\"pid\":7,\"file\":\"a\\\"b\\\\c\\n\\u0001é\",\"ok\":true,\"d\":-3}\n"
        );
    }

    #[test]
    fn json_straight_from_bytes_matches_json_from_decoded_values() {
        let layout = RecordLayout::new(
            8,
            [
                ("pid", Ty::Int(IntTy::U32)),
                ("file", Ty::Str { cap: 16 }),
                ("ok", Ty::Bool),
                ("d", Ty::Int(IntTy::I64)),
                ("u", Ty::Int(IntTy::U64)),
                ("s8", Ty::Int(IntTy::I8)),
            ],
        );
        let size = layout
            .fields
            .iter()
            .map(|f| f.offset as usize + f.ty.size() as usize)
            .max()
            .unwrap();
        let record = |file: &[u8], ok: u8, d: i64, u: u64, s8: i8| {
            let mut b = vec![0u8; size];
            let put = |b: &mut Vec<u8>, name: &str, v: &[u8]| {
                let f = layout.fields.iter().find(|f| f.name == name).unwrap();
                b[f.offset as usize..f.offset as usize + v.len()].copy_from_slice(v);
            };
            put(&mut b, "pid", &4242u32.to_le_bytes());
            put(&mut b, "file", file);
            put(&mut b, "ok", &[ok]);
            put(&mut b, "d", &d.to_le_bytes());
            put(&mut b, "u", &u.to_le_bytes());
            put(&mut b, "s8", &s8.to_le_bytes());
            b
        };
        let full = record(b"sixteen bytes!!!", 1, i64::MIN, u64::MAX, -128);
        let cases = [
            record(b"a\"b\\c\n\x01", 0, -3, 0, 5),
            // Invalid UTF-8 is replaced the same way on both paths.
            record(b"\xff\xfeok", 1, 7, 1 << 63, -1),
            full.clone(),
            // A record cut short: both stop at the first field it does not hold.
            full[..layout.fields[3].offset as usize + 3].to_vec(),
        ];
        for bytes in cases {
            let mut raw = Vec::new();
            write_json_raw(&mut raw, &layout, &bytes).unwrap();
            let mut decoded = Vec::new();
            let values = decode::decode_fields(&layout, &bytes);
            write_json_record(&mut decoded, &layout, &values).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&raw),
                String::from_utf8_lossy(&decoded)
            );
        }
    }

    #[test]
    fn huge_unsigned_values_become_hex_strings() {
        let v = to_nu(&Decoded::UInt(u64::MAX), Span::unknown());
        assert_eq!(v.as_str().unwrap(), "0xffffffffffffffff");
        assert_eq!(
            to_nu(&Decoded::UInt(5), Span::unknown()).as_int().unwrap(),
            5
        );
    }
}
