//! The editor component: a multi-line text editor built from reedline's engine (edit modes,
//! keybindings, undo/redo, history) and drawn by ratatui through our own rendering.
//!
//! It knows nothing about eBPF: highlighting and completion come from the outside through
//! [`Highlight`] and [`Complete`]. reedline never touches the terminal here: its `read_line`
//! is never called, and the `Reedline` engine is never dropped while the UI owns the
//! terminal (its `Drop` would disable raw mode).

use std::ops::Range;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use reedline::{
    EditCommand, EditMode, Emacs, FileBackedHistory, History, HistoryItem, Keybindings, Reedline,
    ReedlineEvent, ReedlineRawEvent, Vi, default_emacs_keybindings, default_vi_insert_keybindings,
    default_vi_normal_keybindings, default_vi_visual_keybindings,
};

/// Styles for ranges of the text, in byte offsets.
pub trait Highlight: Send {
    fn highlight(&self, text: &str) -> Vec<(Range<usize>, Style)>;
}

/// One completion candidate: the text replacing `replace` in the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    pub value: String,
    pub description: String,
    pub replace: Range<usize>,
}

/// Completion candidates at a cursor position.
pub trait Complete: Send {
    fn complete(&self, text: &str, cursor: usize) -> Vec<Suggestion>;
}

/// Which keybindings are active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keymap {
    Emacs,
    Vi,
}

/// What a key did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The text changed.
    Edited,
    /// Only the cursor or the view moved.
    Moved,
    /// The key is not the editor's (the caller may use it).
    Ignored,
}

/// The open completion menu.
#[derive(Clone, Debug, Default)]
pub struct Menu {
    pub items: Vec<Suggestion>,
    pub selected: usize,
}

pub struct Editor {
    line: Reedline,
    mode: Box<dyn EditMode>,
    keymap: Keymap,
    highlighter: Option<Box<dyn Highlight>>,
    completer: Option<Box<dyn Complete>>,
    menu: Option<Menu>,
    /// First visible line.
    scroll: usize,
    /// First visible column (characters).
    hscroll: usize,
    /// Underlined ranges (diagnostics), in byte offsets.
    marks: Vec<Range<usize>>,
    /// Which history entry the buffer shows, counting back from the newest.
    history_cursor: Option<usize>,
}

fn emacs() -> Box<dyn EditMode> {
    let mut kb: Keybindings = default_emacs_keybindings();
    // The workbench uses these itself.
    kb.remove_binding(KeyModifiers::NONE, KeyCode::Tab);
    Box::new(Emacs::new(kb))
}

fn vi() -> Box<dyn EditMode> {
    Box::new(Vi::new(
        default_vi_insert_keybindings(),
        default_vi_normal_keybindings(),
        default_vi_visual_keybindings(),
    ))
}

impl Editor {
    /// An editor with its history in `history_file` (in memory when `None`).
    pub fn new(keymap: Keymap, history_file: Option<std::path::PathBuf>) -> Editor {
        let history: Box<dyn History> =
            match history_file.and_then(|p| FileBackedHistory::with_file(1000, p).ok()) {
                Some(h) => Box::new(h),
                None => Box::new(FileBackedHistory::new(1000).unwrap_or_default()),
            };
        let line = Reedline::create().with_history(history);
        Editor {
            line,
            mode: if keymap == Keymap::Vi { vi() } else { emacs() },
            keymap,
            highlighter: None,
            completer: None,
            menu: None,
            scroll: 0,
            hscroll: 0,
            marks: Vec::new(),
            history_cursor: None,
        }
    }

    pub fn with_highlighter(mut self, h: Box<dyn Highlight>) -> Editor {
        self.highlighter = Some(h);
        self
    }

    pub fn with_completer(mut self, c: Box<dyn Complete>) -> Editor {
        self.completer = Some(c);
        self
    }

    pub fn text(&self) -> &str {
        self.line.current_buffer_contents()
    }

    /// The cursor as a byte offset.
    pub fn cursor(&self) -> usize {
        self.line.current_insertion_point()
    }

    pub fn keymap(&self) -> Keymap {
        self.keymap
    }

    /// Switches between emacs and vi keybindings.
    pub fn toggle_keymap(&mut self) {
        self.keymap = match self.keymap {
            Keymap::Emacs => Keymap::Vi,
            Keymap::Vi => Keymap::Emacs,
        };
        self.mode = if self.keymap == Keymap::Vi {
            vi()
        } else {
            emacs()
        };
    }

    /// A short name of the mode for the status line (`emacs`, `vi normal`, `vi insert`).
    pub fn mode_name(&self) -> &'static str {
        match (self.keymap, self.mode.edit_mode()) {
            (Keymap::Emacs, _) => "emacs",
            (Keymap::Vi, reedline::PromptEditMode::Vi(reedline::PromptViMode::Insert)) => {
                "vi insert"
            }
            (Keymap::Vi, _) => "vi normal",
        }
    }

    /// Replaces the whole text (an undoable edit), cursor at the start.
    pub fn set_text(&mut self, text: &str) {
        self.line.run_edit_commands(&[
            EditCommand::Clear,
            EditCommand::InsertString(text.to_string()),
            EditCommand::MoveToStart { select: false },
        ]);
        self.menu = None;
    }

    pub fn set_marks(&mut self, marks: Vec<Range<usize>>) {
        self.marks = marks;
    }

    pub fn menu(&self) -> Option<&Menu> {
        self.menu.as_ref()
    }

    /// Stores the current text in the history (persisted with a file-backed history).
    pub fn remember(&mut self) {
        let text = self.text().trim().to_string();
        if text.is_empty() {
            return;
        }
        let history = self.line.history_mut();
        let _ = history.save(HistoryItem::from_command_line(text));
        let _ = history.sync();
        self.history_cursor = None;
    }

    fn history_entries(&self) -> Vec<String> {
        self.line
            .history()
            .search(reedline::SearchQuery::everything(
                reedline::SearchDirection::Backward,
                None,
            ))
            .map(|items| items.into_iter().map(|i| i.command_line).collect())
            .unwrap_or_default()
    }

    /// Steps through the history: `back` goes to older entries.
    fn history_step(&mut self, back: bool) -> Outcome {
        let entries = self.history_entries();
        if entries.is_empty() {
            return Outcome::Moved;
        }
        let next = match (self.history_cursor, back) {
            (None, true) => Some(0),
            (None, false) => return Outcome::Moved,
            (Some(i), true) => Some((i + 1).min(entries.len() - 1)),
            (Some(0), false) => None,
            (Some(i), false) => Some(i - 1),
        };
        self.history_cursor = next;
        let text = next.map(|i| entries[i].clone()).unwrap_or_default();
        self.line
            .run_edit_commands(&[EditCommand::Clear, EditCommand::InsertString(text)]);
        Outcome::Edited
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text()[..offset.min(self.text().len())]
            .matches('\n')
            .count()
    }

    fn apply(&mut self, event: ReedlineEvent) -> Outcome {
        match event {
            ReedlineEvent::Edit(commands) => {
                let before = self.text().to_string();
                self.line.run_edit_commands(&commands);
                if self.text() != before {
                    self.menu = None;
                    Outcome::Edited
                } else {
                    Outcome::Moved
                }
            }
            ReedlineEvent::Enter | ReedlineEvent::Submit | ReedlineEvent::SubmitOrNewline => {
                if let Some(outcome) = self.accept_menu() {
                    return outcome;
                }
                self.line.run_edit_commands(&[EditCommand::InsertNewline]);
                Outcome::Edited
            }
            ReedlineEvent::Up | ReedlineEvent::PreviousHistory => {
                if self.menu.is_some() {
                    return self.menu_step(-1);
                }
                if self.line_of(self.cursor()) == 0 {
                    return self.history_step(true);
                }
                self.line
                    .run_edit_commands(&[EditCommand::MoveLineUp { select: false }]);
                Outcome::Moved
            }
            ReedlineEvent::Down | ReedlineEvent::NextHistory => {
                if self.menu.is_some() {
                    return self.menu_step(1);
                }
                let last = self.text().matches('\n').count();
                if self.line_of(self.cursor()) == last && self.history_cursor.is_some() {
                    return self.history_step(false);
                }
                self.line
                    .run_edit_commands(&[EditCommand::MoveLineDown { select: false }]);
                Outcome::Moved
            }
            ReedlineEvent::Left => {
                self.line
                    .run_edit_commands(&[EditCommand::MoveLeft { select: false }]);
                Outcome::Moved
            }
            ReedlineEvent::Right => {
                self.line
                    .run_edit_commands(&[EditCommand::MoveRight { select: false }]);
                Outcome::Moved
            }
            ReedlineEvent::ToStart => {
                self.line
                    .run_edit_commands(&[EditCommand::MoveToStart { select: false }]);
                Outcome::Moved
            }
            ReedlineEvent::ToEnd => {
                self.line
                    .run_edit_commands(&[EditCommand::MoveToEnd { select: false }]);
                Outcome::Moved
            }
            ReedlineEvent::Esc => {
                if self.menu.take().is_some() {
                    Outcome::Moved
                } else {
                    Outcome::Ignored
                }
            }
            ReedlineEvent::Multiple(events) | ReedlineEvent::UntilFound(events) => {
                let mut result = Outcome::Ignored;
                for e in events {
                    match self.apply(e) {
                        Outcome::Ignored => continue,
                        o => {
                            result = o;
                            break;
                        }
                    }
                }
                result
            }
            ReedlineEvent::MenuUp | ReedlineEvent::MenuPrevious if self.menu.is_some() => {
                self.menu_step(-1)
            }
            ReedlineEvent::MenuDown | ReedlineEvent::MenuNext if self.menu.is_some() => {
                self.menu_step(1)
            }
            _ => Outcome::Ignored,
        }
    }

    fn menu_step(&mut self, delta: isize) -> Outcome {
        if let Some(menu) = &mut self.menu
            && !menu.items.is_empty()
        {
            let n = menu.items.len() as isize;
            menu.selected = ((menu.selected as isize + delta).rem_euclid(n)) as usize;
        }
        Outcome::Moved
    }

    fn accept_menu(&mut self) -> Option<Outcome> {
        let menu = self.menu.take()?;
        let item = menu.items.get(menu.selected)?.clone();
        self.replace(item.replace, &item.value);
        Some(Outcome::Edited)
    }

    fn replace(&mut self, range: Range<usize>, value: &str) {
        let text = self.text().to_string();
        let start = range.start.min(text.len());
        let end = range.end.clamp(start, text.len());
        let mut new = String::with_capacity(text.len() + value.len());
        new.push_str(&text[..start]);
        new.push_str(value);
        new.push_str(&text[end..]);
        let cursor = start + value.len();
        self.line.run_edit_commands(&[
            EditCommand::Clear,
            EditCommand::InsertString(new),
            EditCommand::MoveToPosition {
                position: cursor,
                select: false,
            },
        ]);
    }

    /// Opens completion at the cursor: one candidate is applied at once, several open the
    /// menu.
    pub fn complete(&mut self) -> Outcome {
        let Some(completer) = &self.completer else {
            return Outcome::Ignored;
        };
        let items = completer.complete(self.text(), self.cursor());
        match items.len() {
            0 => Outcome::Moved,
            1 => {
                let item = items[0].clone();
                self.replace(item.replace, &item.value);
                Outcome::Edited
            }
            _ => {
                self.menu = Some(Menu { items, selected: 0 });
                Outcome::Moved
            }
        }
    }

    /// Handles one key.
    pub fn handle_key(&mut self, key: KeyEvent) -> Outcome {
        if key.code == KeyCode::Tab && key.modifiers.is_empty() {
            if self.menu.is_some() {
                return self.accept_menu().unwrap_or(Outcome::Moved);
            }
            return self.complete();
        }
        if self.menu.is_some() && key.code == KeyCode::Esc {
            self.menu = None;
            return Outcome::Moved;
        }
        let Ok(raw) = ReedlineRawEvent::try_from(crossterm::event::Event::Key(key)) else {
            return Outcome::Ignored;
        };
        let event = self.mode.parse_event(raw);
        let outcome = self.apply(event);
        // Typing with the menu open refreshes it.
        if outcome == Outcome::Edited && self.menu.is_some() {
            self.complete();
        }
        outcome
    }

    /// Scrolls so the cursor line is visible in `height` lines; returns the first line.
    fn visible_from(&mut self, height: usize) -> usize {
        let line = self.line_of(self.cursor());
        if line < self.scroll {
            self.scroll = line;
        } else if height > 0 && line >= self.scroll + height {
            self.scroll = line + 1 - height;
        }
        self.scroll
    }

    /// Draws the text into `area` of `buf` and returns the cursor's screen position.
    pub fn render(&mut self, area: Rect, buf: &mut Buffer, focused: bool) -> Option<(u16, u16)> {
        let gutter = 4u16;
        let height = area.height as usize;
        let first = self.visible_from(height);
        let text = self.text().to_string();
        // Keep the cursor's column in view.
        let width = area.width.saturating_sub(gutter).max(1) as usize;
        let cursor_col = {
            let c = self.cursor().min(text.len());
            text[..c]
                .rsplit('\n')
                .next()
                .map_or(0, |l| l.chars().count())
        };
        if cursor_col < self.hscroll {
            self.hscroll = cursor_col;
        } else if cursor_col >= self.hscroll + width {
            self.hscroll = cursor_col + 1 - width;
        }
        let hscroll = self.hscroll;
        let styles = self
            .highlighter
            .as_ref()
            .map(|h| h.highlight(&text))
            .unwrap_or_default();
        let cursor = self.cursor();
        let mut cursor_pos = None;
        let mut offset = 0usize;
        for (n, line) in text.split('\n').enumerate() {
            let line_start = offset;
            offset += line.len() + 1;
            if n < first {
                continue;
            }
            let row = (n - first) as u16;
            if row >= area.height {
                break;
            }
            let y = area.y + row;
            buf.set_string(
                area.x,
                y,
                format!("{:>3} ", n + 1),
                Style::default().fg(Color::DarkGray),
            );
            let mut x = area.x + gutter;
            for (i, ch) in line.char_indices().skip(hscroll) {
                let at = line_start + i;
                if at == cursor {
                    cursor_pos = Some((x, y));
                }
                if x >= area.right() {
                    break;
                }
                let mut style = styles
                    .iter()
                    .rev()
                    .find(|(r, _)| r.contains(&at))
                    .map(|(_, s)| *s)
                    .unwrap_or_default();
                if self.marks.iter().any(|m| m.contains(&at)) {
                    style = style
                        .add_modifier(Modifier::UNDERLINED)
                        .underline_color(Color::Red)
                        .fg(Color::LightRed);
                }
                let w = unicode_width(ch);
                buf.set_string(x, y, ch.to_string(), style);
                x += w;
            }
            if cursor == line_start + line.len() && cursor_pos.is_none() {
                cursor_pos = Some((x.min(area.right().saturating_sub(1)), y));
            }
            // A mark at the end of a line (e.g. a missing brace) shows as a red cell.
            if self
                .marks
                .iter()
                .any(|m| m.start == line_start + line.len() && m.is_empty())
                && x < area.right()
            {
                buf.set_string(x, y, " ", Style::default().bg(Color::Red));
            }
        }
        if focused { cursor_pos } else { None }
    }
}

fn unicode_width(c: char) -> u16 {
    if c == '\t' {
        4
    } else if (c as u32) < 0x1100 {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEventKind;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent {
            code,
            modifiers,
            kind: KeyEventKind::Press,
            state: crossterm::event::KeyEventState::NONE,
        }
    }

    fn typed(e: &mut Editor, s: &str) {
        for c in s.chars() {
            let k = if c == '\n' {
                key(KeyCode::Enter, KeyModifiers::NONE)
            } else {
                key(KeyCode::Char(c), KeyModifiers::NONE)
            };
            e.handle_key(k);
        }
    }

    #[test]
    fn keys_edit_the_buffer() {
        let mut e = Editor::new(Keymap::Emacs, None);
        typed(&mut e, "count\nemit");
        assert_eq!(e.text(), "count\nemit");
        e.handle_key(key(KeyCode::Backspace, KeyModifiers::NONE));
        assert_eq!(e.text(), "count\nemi");
        e.handle_key(key(KeyCode::Char('a'), KeyModifiers::CONTROL));
        assert_eq!(e.cursor(), 6, "ctrl-a goes to the line start");
        e.handle_key(key(KeyCode::Up, KeyModifiers::NONE));
        assert!(e.cursor() <= 5, "up moves to the first line");
    }

    #[test]
    fn undo_and_redo() {
        let mut e = Editor::new(Keymap::Emacs, None);
        typed(&mut e, "abc");
        e.handle_key(key(KeyCode::Char('z'), KeyModifiers::CONTROL));
        assert_ne!(e.text(), "abc", "ctrl-z undoes");
        // reedline's emacs mode redoes with Ctrl-G (Ctrl-Y yanks, as in emacs).
        e.handle_key(key(KeyCode::Char('g'), KeyModifiers::CONTROL));
        assert_eq!(e.text(), "abc", "ctrl-g redoes what ctrl-z undid");
        typed(&mut e, " d");
        e.handle_key(key(KeyCode::Char('z'), KeyModifiers::CONTROL));
        assert!(
            e.text().starts_with("abc") && e.text().len() < "abc d".len(),
            "undo after redo takes back only the newer edit: {:?}",
            e.text()
        );
    }

    #[test]
    fn vi_mode_switches_between_insert_and_normal() {
        let mut e = Editor::new(Keymap::Vi, None);
        // reedline's vi mode starts inserting.
        assert_eq!(e.mode_name(), "vi insert");
        typed(&mut e, "ab");
        assert_eq!(e.text(), "ab");
        e.handle_key(key(KeyCode::Esc, KeyModifiers::NONE));
        assert_eq!(e.mode_name(), "vi normal");
        typed(&mut e, "x");
        assert_eq!(e.text(), "a", "x in normal mode deletes");
        typed(&mut e, "ic");
        assert_eq!(e.mode_name(), "vi insert");
        assert_eq!(e.text(), "ac");
    }

    struct Fixed;
    impl Complete for Fixed {
        fn complete(&self, text: &str, cursor: usize) -> Vec<Suggestion> {
            let start = text[..cursor].rfind(' ').map_or(0, |i| i + 1);
            ["count", "comm"]
                .iter()
                .filter(|c| c.starts_with(&text[start..cursor]))
                .map(|c| Suggestion {
                    value: c.to_string(),
                    description: String::new(),
                    replace: start..cursor,
                })
                .collect()
        }
    }

    #[test]
    fn tab_completes_and_the_menu_selects() {
        let mut e = Editor::new(Keymap::Emacs, None).with_completer(Box::new(Fixed));
        typed(&mut e, "x cou");
        e.handle_key(key(KeyCode::Tab, KeyModifiers::NONE));
        assert_eq!(e.text(), "x count");
        typed(&mut e, " co");
        e.handle_key(key(KeyCode::Tab, KeyModifiers::NONE));
        assert_eq!(e.menu().map(|m| m.items.len()), Some(2));
        e.handle_key(key(KeyCode::Down, KeyModifiers::NONE));
        e.handle_key(key(KeyCode::Enter, KeyModifiers::NONE));
        assert_eq!(e.text(), "x count comm");
    }

    #[test]
    fn history_recalls_remembered_scripts() {
        let mut e = Editor::new(Keymap::Emacs, None);
        typed(&mut e, "first");
        e.remember();
        e.set_text("");
        e.handle_key(key(KeyCode::Up, KeyModifiers::NONE));
        assert_eq!(e.text(), "first");
    }

    #[test]
    fn history_persists_in_its_file_across_editors() {
        let file = std::env::temp_dir().join(format!("nubpf-history-{}.txt", std::process::id()));
        let _ = std::fs::remove_file(&file);
        {
            let mut e = Editor::new(Keymap::Emacs, Some(file.clone()));
            typed(&mut e, "bpf_tracepoint \"a:b\" {|e| count }");
            e.remember();
        }
        let mut e = Editor::new(Keymap::Emacs, Some(file.clone()));
        e.handle_key(key(KeyCode::Up, KeyModifiers::NONE));
        let recalled = e.text().to_string();
        let _ = std::fs::remove_file(&file);
        assert_eq!(recalled, "bpf_tracepoint \"a:b\" {|e| count }");
    }
}
