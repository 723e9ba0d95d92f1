//! extlinux.conf as U-Boot's pxe_utils reads it, and back to text.
//!
//! The parser follows U-Boot's token-stream parser rather than a line-by-line reading, because
//! its quirks decide what boots: a keyword that is not a label keyword ends the current
//! `LABEL`, so everything after it in that label lands at the top level and is ignored with
//! "Ignoring unknown command"; a second `INITRD`/`FDT`/`FDTDIR`/`FDTOVERLAYS` in a label is
//! not read at all, so its path is taken for a keyword and ends the label the same way.
//! Values run to the end of the line and keep trailing blanks and a CR, as U-Boot keeps them.

use std::fmt;

/// A parsed extlinux.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// `MENU TITLE`, printed above the menu.
    pub title: Option<String>,
    /// The label U-Boot boots when nobody chooses, as U-Boot resolves it: the last `DEFAULT`
    /// or `ONTIMEOUT`, or else the first label with `MENU DEFAULT`.
    pub default: Option<String>,
    /// `TIMEOUT`, in tenths of a second (U-Boot rounds up to whole seconds).
    pub timeout: Option<i32>,
    /// Whether U-Boot shows the menu and waits for a choice: any top-level `MENU` line turns it
    /// on; `PROMPT n` sets it (U-Boot releases before 2024 ignore `PROMPT`).
    pub prompt: bool,
    /// The last `ONTIMEOUT` (U-Boot treats it as `DEFAULT`).
    pub ontimeout: Option<String>,
    /// `MENU BACKGROUND`, a bitmap shown on video consoles.
    pub background: Option<String>,
    /// The labels in file order, which is the menu's order.
    pub labels: Vec<Label>,
    /// `INCLUDE` and `MENU INCLUDE` lines as (line, path); not followed by this parser.
    pub includes: Vec<(usize, String)>,
    /// Lines U-Boot skips with "Ignoring unknown command: …", as (line, keyword as written).
    pub unknown: Vec<(usize, String)>,
    /// Lines U-Boot skips with "Ignoring malformed menu command: …", as (line, text).
    pub malformed_menu: Vec<(usize, String)>,
}

/// One `LABEL` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Label {
    /// The label's name (what `DEFAULT` and the harness's `menu = "…"` refer to).
    pub name: String,
    /// `MENU LABEL`, the text the menu shows instead of the name.
    pub menu_label: Option<String>,
    /// `KERNEL` or `LINUX` (the last one counts), as written; a `#config` suffix selects a FIT
    /// configuration.
    pub kernel: Option<String>,
    /// `INITRD` (the first one counts), or the `initrd=` word of an earlier `APPEND`.
    pub initrd: Option<String>,
    /// `APPEND`, the kernel command line (the last one counts).
    pub append: Option<String>,
    /// `FDT` or `DEVICETREE` (the first one counts).
    pub fdt: Option<String>,
    /// `FDTDIR` or `DEVICETREEDIR` (the first one counts).
    pub fdtdir: Option<String>,
    /// `FDTOVERLAYS`, space-separated overlay paths (the first line counts).
    pub fdtoverlays: Option<String>,
    /// `LOCALBOOT n`.
    pub localboot: Option<i32>,
    /// `IPAPPEND n`.
    pub ipappend: Option<i32>,
    /// `KASLRSEED`: U-Boot fills the device tree's kaslr-seed.
    pub kaslrseed: bool,
    /// The label carries `MENU DEFAULT`.
    pub menu_default: bool,
    /// 1-based line of the `LABEL` keyword.
    pub line: usize,
}

impl Label {
    /// What U-Boot's menu prints for the entry: the `MENU LABEL`, else the name.
    pub fn menu_text(&self) -> &str {
        self.menu_label.as_deref().unwrap_or(&self.name)
    }
}

/// A menu that waits for a key without limit ([`Config::menu_waits_forever`]): what `inspect`
/// fails and what a power-on run under QEMU fails with instead of typing past it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MenuWait {
    /// `TIMEOUT` as written, if any.
    pub timeout: Option<i32>,
    /// How many entries the menu shows.
    pub entries: usize,
}

impl MenuWait {
    /// How to make the menu choose by itself.
    pub const FIX: &'static str = "NixOS 25.05 and later write no menu for boot.loader.timeout = 0; \
         on an older release set boot.loader.timeout = 1 (the menu then boots its DEFAULT after a second)";
}

impl fmt::Display for MenuWait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let timeout = match self.timeout {
            Some(t) => format!("TIMEOUT {t}"),
            None => "no TIMEOUT".to_owned(),
        };
        write!(
            f,
            "the extlinux menu ({} entries, {timeout}) waits at `Enter choice:` for a key without limit: \
             on the board nobody types and it never boots",
            self.entries
        )
    }
}

/// An extlinux.conf U-Boot refuses as a whole ("Error parsing config file").
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line.
    pub line: usize,
    /// What is missing, e.g. "LABEL needs a name".
    pub message: String,
}

impl Config {
    /// Parses extlinux.conf text as U-Boot does. Unknown keywords are kept in
    /// [`Config::unknown`]; a keyword whose required value is missing fails the whole file, as
    /// in U-Boot.
    pub fn parse(text: &str) -> Result<Config, ParseError> {
        Parser {
            lexer: Lexer {
                text,
                pos: 0,
                line: 1,
            },
            config: Config::default(),
        }
        .top()
    }

    /// The first label with this name.
    pub fn label(&self, name: &str) -> Option<&Label> {
        self.labels.iter().find(|l| l.name == name)
    }

    /// The label [`Config::default`] names, if it exists. Without one, U-Boot tries the labels
    /// in order.
    pub fn default_label(&self) -> Option<&Label> {
        self.label(self.default.as_deref()?)
    }

    /// The number U-Boot's menu shows for a label: 1 for the first `LABEL`, and so on.
    pub fn menu_number(&self, label_name: &str) -> Option<usize> {
        self.labels
            .iter()
            .position(|l| l.name == label_name)
            .map(|i| i + 1)
    }

    /// How long the menu waits for a choice, in whole seconds as U-Boot rounds `TIMEOUT`;
    /// 0 means it waits for input without limit (when it prompts at all).
    pub fn menu_timeout_secs(&self) -> u32 {
        self.timeout
            .map_or(0, |t| u32::try_from(t).unwrap_or(0).div_ceil(10))
    }

    /// Whether U-Boot's menu would wait for a key without limit: a menu is shown (a top-level
    /// `MENU` line or `PROMPT 1`), it has more than one entry (U-Boot boots a lone entry
    /// without asking) and `TIMEOUT` is absent, zero or negative (U-Boot rounds it to whole
    /// seconds, and 0 means no limit). NixOS 24.11 wrote such a file for
    /// `boot.loader.timeout = 0`; on the board nobody types, and the board hangs at
    /// `Enter choice:`.
    pub fn menu_waits_forever(&self) -> Option<MenuWait> {
        let waits = self.prompt && self.labels.len() > 1 && self.timeout.is_none_or(|t| t <= 0);
        waits.then_some(MenuWait {
            timeout: self.timeout,
            entries: self.labels.len(),
        })
    }

    /// Writes an extlinux.conf that U-Boot reads into the same configuration (lines, unknown
    /// keywords and malformed menu lines aside). Values are written as they are: a value
    /// holding a newline cannot be represented.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut line = |text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        if let Some(title) = &self.title {
            line(format!("MENU TITLE {title}"));
        }
        if let Some(background) = &self.background {
            line(format!("MENU BACKGROUND {background}"));
        }
        let menu_lines_prompt = self.title.is_some() || self.background.is_some();
        if self.prompt != menu_lines_prompt {
            line(format!("PROMPT {}", u8::from(self.prompt)));
        }
        if let Some(timeout) = self.timeout {
            line(format!("TIMEOUT {timeout}"));
        }
        // Written before the labels so that no label's MENU DEFAULT can change it.
        if let Some(ontimeout) = &self.ontimeout {
            line(format!("ONTIMEOUT {ontimeout}"));
        }
        if let Some(default) = &self.default {
            if self.ontimeout.as_ref() != Some(default) {
                line(format!("DEFAULT {default}"));
            }
        }
        for (_, path) in &self.includes {
            line(format!("INCLUDE {path}"));
        }
        for label in &self.labels {
            line(String::new());
            line(format!("LABEL {}", label.name));
            let fields = [
                ("MENU LABEL", &label.menu_label),
                ("LINUX", &label.kernel),
                ("INITRD", &label.initrd),
                ("FDT", &label.fdt),
                ("FDTDIR", &label.fdtdir),
                ("FDTOVERLAYS", &label.fdtoverlays),
                ("APPEND", &label.append),
            ];
            if label.menu_default {
                line("  MENU DEFAULT".to_owned());
            }
            for (keyword, value) in fields {
                if let Some(value) = value {
                    line(format!("  {keyword} {value}"));
                }
            }
            if let Some(n) = label.localboot {
                line(format!("  LOCALBOOT {n}"));
            }
            if let Some(n) = label.ipappend {
                line(format!("  IPAPPEND {n}"));
            }
            if label.kaslrseed {
                line("  KASLRSEED".to_owned());
            }
        }
        out
    }
}

impl fmt::Display for Config {
    /// The same text as [`Config::render`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keyword {
    Menu,
    Title,
    Timeout,
    Default,
    Prompt,
    Label,
    Kernel,
    Linux,
    Localboot,
    Append,
    Initrd,
    Include,
    Fdt,
    Fdtdir,
    Fdtoverlays,
    Ontimeout,
    Ipappend,
    Background,
    Kaslrseed,
}

impl Keyword {
    fn lookup(word: &str) -> Option<Keyword> {
        Some(match word.to_ascii_lowercase().as_str() {
            "menu" => Keyword::Menu,
            "title" => Keyword::Title,
            "timeout" => Keyword::Timeout,
            "default" => Keyword::Default,
            "prompt" => Keyword::Prompt,
            "label" => Keyword::Label,
            "kernel" => Keyword::Kernel,
            "linux" => Keyword::Linux,
            "localboot" => Keyword::Localboot,
            "append" => Keyword::Append,
            "initrd" => Keyword::Initrd,
            "include" => Keyword::Include,
            "devicetree" | "fdt" => Keyword::Fdt,
            "devicetreedir" | "fdtdir" => Keyword::Fdtdir,
            "fdtoverlays" | "devicetree-overlay" => Keyword::Fdtoverlays,
            "ontimeout" => Keyword::Ontimeout,
            "ipappend" => Keyword::Ipappend,
            "background" => Keyword::Background,
            "kaslrseed" => Keyword::Kaslrseed,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token<'a> {
    Eol,
    Eof,
    /// A keyword, with the word as written.
    Keyword(Keyword, &'a str),
    /// A word that is no keyword.
    Word(&'a str),
}

/// U-Boot's get_token: blanks are skipped, `#` starts a comment only where a token starts, and
/// a newline is a token of its own (the only place the line count moves).
struct Lexer<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// Skips blanks and a comment; `Some(Eol)`/`Some(Eof)` if the line or text ends there.
    fn start_token(&mut self) -> Option<Token<'a>> {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches([' ', '\t']).len();
        if self.rest().starts_with('#') {
            self.pos += self.rest().find('\n').unwrap_or(self.rest().len());
        }
        if self.rest().starts_with('\n') {
            self.pos += 1;
            self.line += 1;
            Some(Token::Eol)
        } else if self.rest().is_empty() {
            Some(Token::Eof)
        } else {
            None
        }
    }

    fn keyword(&mut self) -> Token<'a> {
        if let Some(end) = self.start_token() {
            return end;
        }
        let rest = self.rest();
        let len = rest
            .find(|c: char| c.is_ascii_whitespace() || c == '\x0b')
            .unwrap_or(rest.len());
        let word = &rest[..len];
        self.pos += len;
        match Keyword::lookup(word) {
            Some(keyword) => Token::Keyword(keyword, word),
            None => Token::Word(word),
        }
    }

    /// The rest of the line, or `None` (having consumed the newline, as U-Boot does) if the
    /// line ends first.
    fn literal(&mut self) -> Option<&'a str> {
        if self.start_token().is_some() {
            return None;
        }
        let rest = self.rest();
        let len = rest.find('\n').unwrap_or(rest.len());
        self.pos += len;
        Some(&rest[..len])
    }

    /// U-Boot's eol_or_eof: moves to the next newline without consuming it.
    fn skip_line(&mut self) {
        self.pos += self.rest().find('\n').unwrap_or(self.rest().len());
    }
}

/// U-Boot's simple_strtol in base 10: an optional minus, then the leading digits; 0 if none.
fn strtol(text: &str) -> i32 {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .fold(0i64, |acc, d| {
            (acc * 10 + i64::from(d - b'0')).min(i64::from(i32::MAX))
        });
    let value = value as i32;
    if negative {
        -value
    } else {
        value
    }
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    config: Config,
}

impl<'a> Parser<'a> {
    fn missing(&self, line: usize, what: &str) -> ParseError {
        ParseError {
            line,
            message: format!("{what}; U-Boot rejects the whole file (\"Error parsing config file\")"),
        }
    }

    fn required(&mut self, line: usize, what: &str) -> Result<String, ParseError> {
        match self.lexer.literal() {
            Some(value) => Ok(value.to_owned()),
            None => Err(self.missing(line, what)),
        }
    }

    fn integer(&mut self, line: usize, what: &str) -> Result<i32, ParseError> {
        self.required(line, what).map(|v| strtol(&v))
    }

    fn top(mut self) -> Result<Config, ParseError> {
        loop {
            let line = self.lexer.line;
            match self.lexer.keyword() {
                Token::Eof => return Ok(self.config),
                Token::Eol => {}
                Token::Keyword(Keyword::Menu, _) => {
                    self.config.prompt = true;
                    self.menu(line)?;
                }
                Token::Keyword(Keyword::Timeout, _) => {
                    self.config.timeout = Some(self.integer(line, "TIMEOUT needs a number")?);
                }
                Token::Keyword(Keyword::Label, _) => self.label(line)?,
                Token::Keyword(Keyword::Default, _) => {
                    self.config.default = Some(self.required(line, "DEFAULT needs a label name")?);
                }
                Token::Keyword(Keyword::Ontimeout, _) => {
                    let name = self.required(line, "ONTIMEOUT needs a label name")?;
                    self.config.ontimeout = Some(name.clone());
                    self.config.default = Some(name);
                }
                Token::Keyword(Keyword::Include, _) => {
                    let path = self.required(line, "INCLUDE needs a path")?;
                    self.config.includes.push((line, path));
                }
                Token::Keyword(Keyword::Prompt, _) => {
                    // U-Boot tolerates a bare PROMPT.
                    if let Some(value) = self.lexer.literal() {
                        self.config.prompt = strtol(value) != 0;
                    }
                }
                Token::Keyword(_, word) | Token::Word(word) => {
                    self.config.unknown.push((line, word.to_owned()));
                    self.lexer.skip_line();
                }
            }
        }
    }

    fn menu(&mut self, line: usize) -> Result<(), ParseError> {
        match self.lexer.keyword() {
            Token::Keyword(Keyword::Title, _) => {
                self.config.title = Some(self.required(line, "MENU TITLE needs a title")?);
            }
            Token::Keyword(Keyword::Include, _) => {
                let path = self.required(line, "MENU INCLUDE needs a path")?;
                self.config.includes.push((line, path));
            }
            Token::Keyword(Keyword::Background, _) => {
                self.config.background = Some(self.required(line, "MENU BACKGROUND needs a path")?);
            }
            other => self.malformed_menu(line, other),
        }
        // Like U-Boot, even after a bare `MENU` whose newline was already consumed, so the
        // following line is skipped too.
        self.lexer.skip_line();
        Ok(())
    }

    fn malformed_menu(&mut self, line: usize, token: Token<'_>) {
        let text = match token {
            Token::Keyword(_, word) | Token::Word(word) => format!("MENU {word}"),
            Token::Eol | Token::Eof => "MENU".to_owned(),
        };
        self.config.malformed_menu.push((line, text));
    }

    fn label(&mut self, line: usize) -> Result<(), ParseError> {
        let name = self.required(line, "LABEL needs a name")?;
        let mut label = Label {
            name,
            line,
            ..Label::default()
        };
        let result = self.label_body(&mut label);
        self.config.labels.push(label);
        result
    }

    fn label_body(&mut self, label: &mut Label) -> Result<(), ParseError> {
        loop {
            let (pos, line) = (self.lexer.pos, self.lexer.line);
            match self.lexer.keyword() {
                Token::Eol => {}
                Token::Keyword(Keyword::Menu, _) => {
                    match self.lexer.keyword() {
                        Token::Keyword(Keyword::Default, _) => {
                            label.menu_default = true;
                            if self.config.default.is_none() {
                                self.config.default = Some(label.name.clone());
                            }
                        }
                        // U-Boot ignores a bare MENU LABEL rather than failing.
                        Token::Keyword(Keyword::Label, _) => {
                            if let Some(text) = self.lexer.literal() {
                                label.menu_label = Some(text.to_owned());
                            }
                        }
                        other => self.malformed_menu(line, other),
                    }
                    self.lexer.skip_line();
                }
                Token::Keyword(Keyword::Kernel | Keyword::Linux, word) => {
                    label.kernel = Some(self.required(line, &format!("{word} needs a path"))?);
                }
                Token::Keyword(Keyword::Append, _) => {
                    let append = self.required(line, "APPEND needs a command line")?;
                    if label.initrd.is_none() {
                        if let Some(at) = append.find("initrd=") {
                            let value = &append[at + "initrd=".len()..];
                            let word = value
                                .split(|c: char| c.is_ascii_whitespace())
                                .next()
                                .unwrap_or("");
                            // Only what an INITRD line could also say: an empty word or one that
                            // starts a comment names no file, and the config renders as INITRD.
                            if !word.is_empty() && !word.starts_with('#') {
                                label.initrd = Some(word.to_owned());
                            }
                        }
                    }
                    label.append = Some(append);
                }
                Token::Keyword(Keyword::Initrd, word) => {
                    if label.initrd.is_none() {
                        label.initrd = Some(self.required(line, &format!("{word} needs a path"))?);
                    }
                }
                Token::Keyword(Keyword::Fdt, word) => {
                    if label.fdt.is_none() {
                        label.fdt = Some(self.required(line, &format!("{word} needs a path"))?);
                    }
                }
                Token::Keyword(Keyword::Fdtdir, word) => {
                    if label.fdtdir.is_none() {
                        label.fdtdir = Some(self.required(line, &format!("{word} needs a path"))?);
                    }
                }
                Token::Keyword(Keyword::Fdtoverlays, word) => {
                    if label.fdtoverlays.is_none() {
                        label.fdtoverlays = Some(self.required(line, &format!("{word} needs paths"))?);
                    }
                }
                Token::Keyword(Keyword::Localboot, _) => {
                    label.localboot = Some(self.integer(line, "LOCALBOOT needs a number")?);
                }
                Token::Keyword(Keyword::Ipappend, _) => {
                    label.ipappend = Some(self.integer(line, "IPAPPEND needs a number")?);
                }
                Token::Keyword(Keyword::Kaslrseed, _) => label.kaslrseed = true,
                _ => {
                    // Not a label keyword: the label ends and the top level reads this token.
                    self.lexer.pos = pos;
                    self.lexer.line = line;
                    return Ok(());
                }
            }
        }
    }
}
