//! A push parser for cpio archives in the `newc` format (magic `070701`, or `070702` with
//! checksums), as the kernel unpacks an initramfs: archives one after another, zero bytes
//! between them, each ending in a `TRAILER!!!` entry. It keeps only what [`super::Index`]
//! needs: the names of module files, the text of `modules.builtin` and of the root files. Every size a header
//! claims is checked before anything is kept, and file data is skipped, not stored.

use super::layout::{Entries, Wanted};
use super::{Index, InitrdError, Limits};

/// `070701` and `070702` share their first five bytes.
const MAGIC_PREFIX: &[u8; 5] = b"07070";
/// Magic and thirteen 8-digit hexadecimal fields.
const HEADER_LEN: usize = 110;
/// The kernel's `PATH_MAX`: it refuses longer names too.
const NAME_MAX: usize = 4096;
const TRAILER: &[u8] = b"TRAILER!!!";
const REGULAR: u32 = 0o100000;
const SYMLINK: u32 = 0o120000;
const TYPE_MASK: u32 = 0o170000;

/// Where the parser is in the byte stream.
#[derive(Debug)]
enum State {
    /// Between archives (or before the first): zero bytes are skipped.
    Between,
    /// Reading a header; `have` bytes of it are in `header`.
    Header { have: usize },
    /// Reading a name of `len` bytes (with its NUL) into `name`.
    Name { len: usize },
    /// Skipping padding, then going to `next`.
    Pad { left: usize, then: Box<State> },
    /// Skipping (or, for modules.builtin, keeping) `left` bytes of file data, then `pad`.
    Data { left: u64, keep: bool, pad: usize },
}

/// What the parser stopped at when fed bytes from outside any archive.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Fed {
    /// Every byte was taken.
    All,
    /// Between archives, the byte at this offset of the input is not the start of one (nor
    /// zero padding): something else (a compressed archive) starts there.
    StoppedAt(usize),
}

/// The newc parser. Feed it bytes with [`Parser::feed`]; it fills an [`Index`].
#[derive(Debug)]
pub(super) struct Parser {
    limits: Limits,
    state: State,
    header: [u8; HEADER_LEN],
    name: Vec<u8>,
    mode: u32,
    kept: Vec<u8>,
    /// Bytes taken so far, all streams together: the unpacked size the limit applies to.
    taken: u64,
    entries: usize,
    /// The offset in the current stream, for errors.
    offset: u64,
    /// Where the current entry's header starts in the stream.
    header_at: u64,
    pub(super) index: Index,
    pub(super) found: Entries,
}

impl Parser {
    pub(super) fn new(limits: Limits) -> Parser {
        Parser {
            limits,
            state: State::Between,
            header: [0; HEADER_LEN],
            name: Vec::new(),
            mode: 0,
            kept: Vec::new(),
            taken: 0,
            entries: 0,
            offset: 0,
            header_at: 0,
            index: Index::default(),
            found: Entries::default(),
        }
    }

    /// Starts a new stream at offset `at`: stored archives at their offset in the initrd
    /// file, a decompressed stream at 0. Offsets in errors count from there.
    pub(super) fn start_stream(&mut self, at: u64) {
        self.offset = at;
    }

    /// Whether the parser is between archives: the stream may end here.
    pub(super) fn between_archives(&self) -> bool {
        matches!(self.state, State::Between)
    }

    /// The offset in the current stream.
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// Takes `bytes`. Between archives, a byte that is neither zero padding nor the start of
    /// an archive stops it ([`Fed::StoppedAt`]).
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Result<Fed, InitrdError> {
        let mut at = 0;
        while at < bytes.len() {
            let used = self.step(&bytes[at..])?;
            if used == 0 {
                return Ok(Fed::StoppedAt(at));
            }
            at += used;
            self.offset += used as u64;
            self.taken += used as u64;
            if self.taken > self.limits.unpacked {
                return Err(InitrdError::TooLarge {
                    limit: self.limits.unpacked,
                });
            }
        }
        Ok(Fed::All)
    }

    /// Takes some bytes of `input` (never none, unless it stops between archives).
    fn step(&mut self, input: &[u8]) -> Result<usize, InitrdError> {
        match &mut self.state {
            State::Between => {
                let zeros = input.iter().take_while(|&&b| b == 0).count();
                if zeros > 0 {
                    return Ok(zeros);
                }
                if input[0] != MAGIC_PREFIX[0] {
                    return Ok(0);
                }
                self.state = State::Header { have: 0 };
                self.step(input)
            }
            State::Header { have } => {
                if *have == 0 {
                    self.header_at = self.offset;
                }
                let n = (HEADER_LEN - *have).min(input.len());
                self.header[*have..*have + n].copy_from_slice(&input[..n]);
                *have += n;
                if *have == HEADER_LEN {
                    self.header_done()?;
                }
                Ok(n)
            }
            State::Name { len } => {
                let n = (*len - self.name.len()).min(input.len());
                self.name.extend_from_slice(&input[..n]);
                if self.name.len() == *len {
                    self.name_done()?;
                }
                Ok(n)
            }
            State::Pad { left, .. } => {
                let n = (*left).min(input.len());
                *left -= n;
                if *left == 0 {
                    let State::Pad { then, .. } = std::mem::replace(&mut self.state, State::Between) else {
                        unreachable!("in the Pad state")
                    };
                    self.state = *then;
                    if let State::Data { left: 0, .. } = self.state {
                        self.data_done()?;
                    }
                }
                Ok(n)
            }
            State::Data { left, keep, .. } => {
                let n = usize::try_from(*left).unwrap_or(usize::MAX).min(input.len());
                if *keep {
                    self.kept.extend_from_slice(&input[..n]);
                }
                *left -= n as u64;
                if *left == 0 {
                    self.data_done()?;
                }
                Ok(n)
            }
        }
    }

    fn field(&self, index: usize) -> Result<u32, InitrdError> {
        let at = 6 + index * 8;
        let text = &self.header[at..at + 8];
        std::str::from_utf8(text)
            .ok()
            .and_then(|t| u32::from_str_radix(t, 16).ok())
            .ok_or_else(|| InitrdError::BadHeader {
                offset: self.header_offset(),
                within: String::new(),
                detail: format!(
                    "field {index} is {:?}, not 8 hexadecimal digits",
                    String::from_utf8_lossy(text)
                ),
            })
    }

    /// Where the header just read started in the stream.
    fn header_offset(&self) -> u64 {
        self.header_at
    }

    fn header_done(&mut self) -> Result<(), InitrdError> {
        if &self.header[..5] != MAGIC_PREFIX || !matches!(self.header[5], b'1' | b'2') {
            return Err(InitrdError::BadHeader {
                offset: self.header_offset(),
                within: String::new(),
                detail: format!(
                    "magic {:?}, not the newc format's 070701 or 070702",
                    String::from_utf8_lossy(&self.header[..6])
                ),
            });
        }
        self.entries += 1;
        if self.entries > self.limits.entries {
            return Err(InitrdError::TooManyEntries {
                limit: self.limits.entries,
            });
        }
        self.mode = self.field(1)?;
        let name_len = self.field(11)? as usize;
        if name_len == 0 || name_len > NAME_MAX {
            return Err(InitrdError::BadHeader {
                offset: self.header_offset(),
                within: String::new(),
                detail: format!("name size {name_len}, not 1 to {NAME_MAX}"),
            });
        }
        // The file size is read now so that a bad one is reported at its header.
        self.field(6)?;
        self.name.clear();
        self.state = State::Name { len: name_len };
        Ok(())
    }

    fn name_done(&mut self) -> Result<(), InitrdError> {
        let file_size = u64::from(self.field(6)?);
        let name_len = self.name.len();
        // The name is NUL-terminated; what follows the first NUL is ignored, as the kernel does.
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(name_len);
        self.name.truncate(end);
        let name_pad = (4 - (HEADER_LEN + name_len) % 4) % 4;
        let data_pad = ((4 - file_size % 4) % 4) as usize;
        let trailer = self.name == TRAILER;
        let kind = self.mode & TYPE_MASK;
        let symlink = !trailer && kind == SYMLINK;
        if symlink && file_size > NAME_MAX as u64 {
            return Err(InitrdError::BadHeader {
                offset: self.header_offset(),
                within: String::new(),
                detail: format!("a symlink's target of {file_size} bytes, more than {NAME_MAX}"),
            });
        }
        let wanted = if !trailer && kind == REGULAR {
            Entries::wants_data(&self.name)
        } else {
            Wanted::Nothing
        };
        let builtin_list = wanted == Wanted::BuiltinList;
        // A root file too large to be one is skipped, not an error: the initrd is still read.
        let root_file = wanted == Wanted::RootFile && file_size <= self.limits.root_file;
        // An alias list past the limit is passed over (the entry then records nothing).
        let alias_list = wanted == Wanted::AliasList && file_size <= self.limits.alias_lists;
        let keep = symlink || builtin_list || root_file || alias_list;
        if builtin_list && file_size > self.limits.builtin_list {
            return Err(InitrdError::BuiltinListTooLarge {
                path: String::from_utf8_lossy(&self.name).into_owned(),
                size: file_size,
                limit: self.limits.builtin_list,
            });
        }
        self.kept.clear();
        let data = if trailer {
            // The archive ends here; zero padding or another archive follows.
            State::Between
        } else {
            State::Data {
                left: file_size,
                keep,
                pad: data_pad,
            }
        };
        self.state = if name_pad > 0 {
            State::Pad {
                left: name_pad,
                then: Box::new(data),
            }
        } else {
            data
        };
        if let State::Data { left: 0, .. } = self.state {
            self.data_done()?;
        }
        Ok(())
    }

    /// An entry's data is complete: record what it says.
    fn data_done(&mut self) -> Result<(), InitrdError> {
        let name = String::from_utf8_lossy(&self.name);
        match self.mode & TYPE_MASK {
            // A root file that was too large to keep has no data here: it is not recorded.
            REGULAR if Entries::wants_data(&self.name) == Wanted::RootFile && self.kept.is_empty() => {}
            REGULAR => self.found.file(&name, &self.kept, self.limits)?,
            SYMLINK => self.found.symlink(&name, &self.kept, self.limits)?,
            _ => {}
        }
        let pad = match &self.state {
            State::Data { pad, .. } => *pad,
            _ => 0,
        };
        self.state = if pad > 0 {
            State::Pad {
                left: pad,
                then: Box::new(State::Header { have: 0 }),
            }
        } else {
            State::Header { have: 0 }
        };
        self.kept.clear();
        Ok(())
    }
}
