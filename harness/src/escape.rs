//! Escaping for one-line report fields: a scenario name, a step description, a console line or
//! a file's key shown in a message must not start a new line (a forged `FAIL` line), move the
//! cursor, recolour the terminal or reorder the text around it.

use std::borrow::Cow;

/// Whether `c` is shown escaped: C0 and C1 control characters and DEL (`\n`, `\r`, `ESC`, …),
/// the Unicode line and paragraph separators, and the bidirectional formatting characters that
/// reorder what a terminal shows (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F, U+061C).
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
                | '\u{200e}' | '\u{200f}' | '\u{061c}'
        )
}

/// Appends `c` to `out` as it is shown in a one-line field: `\n`, `\r`, `\t` and `\0` as those
/// two characters, every other character [`needs_escape`] picks as `\u{…}` (hex, as Rust
/// writes it), and the rest as itself.
pub fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\0' => out.push_str("\\0"),
        c if needs_escape(c) => {
            use std::fmt::Write;
            // Writing to a String cannot fail.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
        c => out.push(c),
    }
}

/// `text` with every character [`needs_escape`] picks written as an escape (see
/// [`push_escaped`]), so the field stays on one line and shows as written. Borrowed when
/// nothing needed escaping. Backslashes are left alone: the result is for people to read, and
/// an escape written literally in the input cannot start a line or move the cursor.
pub fn escape_control(text: &str) -> Cow<'_, str> {
    escape_where(text, needs_escape)
}

/// `text` with the characters `escaped` picks (a subset of [`needs_escape`]'s) written as
/// [`push_escaped`] writes them; borrowed when there are none.
fn escape_where(text: &str, escaped: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = text.find(&escaped) else {
        return Cow::Borrowed(text);
    };
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str(&text[..first]);
    for c in text[first..].chars() {
        if escaped(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of console text as a report shows it: as [`escape_control`] escapes a field, but
/// with tabs kept. Console text is full of them (U-Boot's menu, `ls`, `systemctl status`), and
/// a tab only moves the cursor along its line, so shown as `\t` it would make every such line
/// harder to read for no safety gained. Borrowed when nothing needed escaping.
pub fn escape_console_line(text: &str) -> Cow<'_, str> {
    escape_where(text, |c| c != '\t' && needs_escape(c))
}

/// The lines of `text` (split at `\n` only), each escaped as [`escape_console_line`] escapes
/// console text: for text that may span lines, such as a failure reason quoting a command's
/// output, which a report shows with line breaks of its own between the lines (an indent, a
/// `| `).
pub fn escape_lines(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.split('\n').map(escape_console_line)
}

/// `text` with every character [`needs_escape`] picks but `\n` and `\t` written as an escape:
/// the text keeps its lines, and nothing in a line can move the cursor off it, recolour or
/// reorder it. For a page that draws line breaks as breaks (the HTML report) and messages on
/// stderr. Borrowed when nothing needed escaping.
pub fn escape_keeping_lines(text: &str) -> Cow<'_, str> {
    if !text.contains(|c| c != '\n' && c != '\t' && needs_escape(c)) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(escape_lines(text).collect::<Vec<_>>().join("\n"))
}

/// One test per class of character a report must show escaped (C0 controls, the C1 control
/// sequence introducer, DEL, bidi overrides and isolates, the line separator), in the module
/// it is invoked in: `$assert(raw, escaped)` asserts that console text holding `raw` is shown
/// with `escaped` in its place.
#[cfg(test)]
macro_rules! shows_each_control_class_escaped {
    ($assert:ident) => {
        #[test]
        fn backspace_and_bel_are_shown_escaped() {
            $assert("\u{8}\u{7}", "\\u{8}\\u{7}");
        }

        #[test]
        fn the_c1_control_sequence_introducer_is_shown_escaped() {
            $assert("\u{9b}2J", "\\u{9b}2J");
        }

        #[test]
        fn del_is_shown_escaped() {
            $assert("\u{7f}", "\\u{7f}");
        }

        #[test]
        fn bidi_overrides_and_isolates_are_shown_escaped() {
            $assert("\u{202e}evil\u{2066}", "\\u{202e}evil\\u{2066}");
        }

        #[test]
        fn the_unicode_line_separator_is_shown_escaped() {
            $assert("\u{2028}", "\\u{2028}");
        }
    };
}
#[cfg(test)]
pub(crate) use shows_each_control_class_escaped;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_keep_their_tabs_and_fields_do_not() {
        assert_eq!(escape_console_line("1:\tNixOS\u{7}"), "1:\tNixOS\\u{7}");
        assert_eq!(escape_keeping_lines("a\tb\nc\u{202e}"), "a\tb\nc\\u{202e}");
        assert_eq!(escape_control("1:\tNixOS"), "1:\\tNixOS");
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        let text = "boot-to-login: expect \"ivy login:\" — grün";
        assert!(matches!(escape_control(text), Cow::Borrowed(t) if t == text));
    }

    #[test]
    fn newline_cannot_forge_a_report_line() {
        assert_eq!(escape_control("a\nFAIL  b"), "a\\nFAIL  b");
    }

    #[test]
    fn carriage_return_tab_and_nul_have_short_escapes() {
        assert_eq!(escape_control("a\r\tb\0"), "a\\r\\tb\\0");
    }

    #[test]
    fn escape_sequences_cannot_reach_the_terminal() {
        assert_eq!(escape_control("\u{1b}[2J\u{7}x"), "\\u{1b}[2J\\u{7}x");
    }

    #[test]
    fn del_and_c1_controls_are_escaped() {
        assert_eq!(escape_control("\u{7f}\u{9b}"), "\\u{7f}\\u{9b}");
    }

    #[test]
    fn unicode_line_separators_and_bidi_overrides_are_escaped() {
        assert_eq!(
            escape_control("a\u{2028}b\u{202e}c\u{2066}"),
            "a\\u{2028}b\\u{202e}c\\u{2066}"
        );
    }

    #[test]
    fn backslashes_are_left_alone() {
        assert_eq!(escape_control(r"C:\path\n"), r"C:\path\n");
    }

    #[test]
    fn each_line_is_escaped_on_its_own() {
        let lines: Vec<_> = escape_lines("a\u{8}\nb\u{202e}c\n").collect();
        assert_eq!(lines, ["a\\u{8}", "b\\u{202e}c", ""]);
    }

    #[test]
    fn escape_keeping_lines_keeps_newlines_and_escapes_the_rest() {
        assert_eq!(
            escape_keeping_lines("out:\nx\u{9b}2J\r\u{2028}y"),
            "out:\nx\\u{9b}2J\\r\\u{2028}y"
        );
        assert!(matches!(escape_keeping_lines("a\nb"), Cow::Borrowed("a\nb")));
    }
}
