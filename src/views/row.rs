//! `Row`: one table row of display strings in a single allocation.
//!
//! The workbench buffers up to a million rows per probe. As `Vec<String>` a row costs one
//! allocation for the vector and one per cell; here the cells are packed into one boxed
//! byte slice, each cell as its length (LEB128) followed by its UTF-8 bytes.

/// A row of cells, packed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Row(Box<[u8]>);

impl Row {
    /// Packs `cells` in order.
    pub fn new<S: AsRef<str>>(cells: impl IntoIterator<Item = S>) -> Row {
        let mut bytes = Vec::new();
        for cell in cells {
            let cell = cell.as_ref().as_bytes();
            let mut len = cell.len();
            loop {
                let low = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    bytes.push(low);
                    break;
                }
                bytes.push(low | 0x80);
            }
            bytes.extend_from_slice(cell);
        }
        Row(bytes.into_boxed_slice())
    }

    /// The cells in order.
    pub fn cells(&self) -> Cells<'_> {
        Cells { rest: &self.0 }
    }

    /// Cell `i`, if the row has that many.
    pub fn get(&self, i: usize) -> Option<&str> {
        self.cells().nth(i)
    }
}

/// Iterator over a [`Row`]'s cells.
pub struct Cells<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Cells<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let mut len = 0usize;
        let mut shift = 0;
        let mut at = 0;
        loop {
            let byte = *self.rest.get(at)?;
            at += 1;
            len |= ((byte & 0x7f) as usize) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let cell = self.rest.get(at..at + len)?;
        self.rest = &self.rest[at + len..];
        // Every cell was a `&str` when packed, so this never falls back.
        Some(std::str::from_utf8(cell).unwrap_or(""))
    }
}

#[cfg(test)]
mod tests {
    use super::Row;

    #[test]
    fn cells_come_back_as_packed() {
        let long = "é".repeat(200);
        let cells = ["", "1234", "snap\u{1f}shot", long.as_str(), "\n,\""];
        let row = Row::new(cells);
        assert_eq!(row.cells().collect::<Vec<_>>(), cells);
        assert_eq!(row.get(3), Some(long.as_str()));
        assert_eq!(row.get(5), None);
        assert_eq!(Row::new(Vec::<String>::new()).cells().count(), 0);
    }

    #[test]
    fn a_row_is_one_allocation_of_its_text_plus_lengths() {
        let row = Row::new(["4242", "bash", "/etc/passwd"]);
        assert_eq!(std::mem::size_of::<Row>(), 16);
        assert_eq!(row.0.len(), 3 + 4 + 4 + 11);
    }
}
