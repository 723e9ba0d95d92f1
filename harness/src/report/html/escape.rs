//! Escaping for the two places console text lands in the page: JSON inside a
//! `<script type="application/json">` element, and the few bits of HTML text the page skeleton
//! writes itself (the title). Everything else is put into the page by its script with
//! `textContent`, which cannot make markup.

use std::io::{self, Write};

use crate::escape::push_escaped;

/// A writer for JSON that goes inside a `<script>` element: `<`, `>` and `&` become `\u003c`,
/// `\u003e` and `\u0026`, so no console text can close the element (`</script>`) or open a
/// comment (`<!--`); U+2028 and U+2029 become `\u2028` and `\u2029`, which old script parsers
/// took for line ends. In JSON these characters only ever appear inside strings, where the
/// escapes mean the same characters.
pub struct ScriptJson<W: Write> {
    inner: W,
    /// The first bytes of a UTF-8 sequence that may be U+2028/U+2029, held until the rest
    /// arrives in the next write.
    held: Vec<u8>,
}

impl<W: Write> ScriptJson<W> {
    /// Escapes into `inner`.
    pub fn new(inner: W) -> ScriptJson<W> {
        ScriptJson {
            inner,
            held: Vec::new(),
        }
    }

    /// Writes out anything held back and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        let held = std::mem::take(&mut self.held);
        self.inner.write_all(&held)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ScriptJson<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut bytes = std::mem::take(&mut self.held);
        bytes.extend_from_slice(buf);
        let mut start = 0;
        let mut i = 0;
        while i < bytes.len() {
            let escape: Option<&[u8]> = match bytes[i] {
                b'<' => Some(b"\\u003c"),
                b'>' => Some(b"\\u003e"),
                b'&' => Some(b"\\u0026"),
                0xE2 => match bytes.get(i + 1..i + 3) {
                    Some([0x80, 0xA8]) => Some(b"\\u2028"),
                    Some([0x80, 0xA9]) => Some(b"\\u2029"),
                    // The sequence continues in the next write: hold it back.
                    None if bytes[i + 1..].iter().all(|&b| b == 0x80) => {
                        self.inner.write_all(&bytes[start..i])?;
                        self.held = bytes[i..].to_vec();
                        return Ok(buf.len());
                    }
                    _ => None,
                },
                _ => None,
            };
            if let Some(escape) = escape {
                self.inner.write_all(&bytes[start..i])?;
                self.inner.write_all(escape)?;
                i += if bytes[i] == 0xE2 { 3 } else { 1 };
                start = i;
            } else {
                i += 1;
            }
        }
        self.inner.write_all(&bytes[start..])?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `value` as JSON that can sit inside a `<script>` element.
pub fn script_json<T: serde::Serialize>(value: &T) -> String {
    let mut writer = ScriptJson::new(Vec::new());
    serde_json::to_writer(&mut writer, value).expect("serializing into memory cannot fail");
    let bytes = writer.finish().expect("writing into memory cannot fail");
    String::from_utf8(bytes).expect("serde_json writes UTF-8 and the escapes are ASCII")
}

/// Text for an HTML text node or a double-quoted attribute: markup escaped, and control
/// characters, bidi overrides and line separators written as the text report writes them.
pub fn html_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => push_escaped(&mut out, c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_text_cannot_close_the_script_element_and_reads_back_as_itself() {
        let hostile = "</script><script>alert(1)</script> <!-- & \u{2028}\u{2029} é";
        let json = script_json(&hostile);
        assert!(!json.contains('<') && !json.contains('>') && !json.contains('&'));
        assert!(!json.contains('\u{2028}') && !json.contains('\u{2029}'));
        assert_eq!(serde_json::from_str::<String>(&json).unwrap(), hostile);
    }

    #[test]
    fn a_line_separator_split_across_writes_is_still_escaped() {
        let text = "a\u{2028}b\u{2029}c\u{20ac}".as_bytes();
        for cut in 0..text.len() {
            let mut writer = ScriptJson::new(Vec::new());
            writer.write_all(&text[..cut]).unwrap();
            writer.write_all(&text[cut..]).unwrap();
            let out = writer.finish().unwrap();
            assert_eq!(out, "a\\u2028b\\u2029c\u{20ac}".as_bytes(), "cut at {cut}");
        }
    }

    #[test]
    fn html_text_escapes_markup_and_writes_control_characters_as_escapes() {
        assert_eq!(
            html_text("a<b>&\"\u{1b}[0m\u{9b}\u{202e}\u{2028}"),
            "a&lt;b&gt;&amp;&quot;\\u{1b}[0m\\u{9b}\\u{202e}\\u{2028}"
        );
    }
}
