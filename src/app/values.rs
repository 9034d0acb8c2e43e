//! Decoded probe output as Nushell values (for pipelines and tables) and as NDJSON (the fast
//! path that skips Nushell when a probe has no pipeline).

use std::io::Write;

use nu_protocol::{Record, Span, Value};
use nubpf_ebpf::layout::RecordLayout;

use crate::probes::runtime::decode::Value as Decoded;

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
    out.write_all(b"{")?;
    for (i, (field, value)) in layout.fields.iter().zip(values).enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write_json_str(out, &field.name)?;
        out.write_all(b":")?;
        match value {
            Decoded::Int(v) => write!(out, "{v}")?,
            Decoded::UInt(v) => write!(out, "{v}")?,
            Decoded::Bool(v) => write!(out, "{v}")?,
            Decoded::Str(s) => write_json_str(out, s)?,
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
    fn huge_unsigned_values_become_hex_strings() {
        let v = to_nu(&Decoded::UInt(u64::MAX), Span::unknown());
        assert_eq!(v.as_str().unwrap(), "0xffffffffffffffff");
        assert_eq!(
            to_nu(&Decoded::UInt(5), Span::unknown()).as_int().unwrap(),
            5
        );
    }
}
