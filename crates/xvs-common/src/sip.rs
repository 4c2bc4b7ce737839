//! The SIP persistence engine (`--pe sip`): a persistent UDP service's templates are
//! per call, not only per client network. As IPVS's `ip_vs_pe_sip`, the call is told by
//! the Call-ID header of each datagram that starts a connection (or, with `-o`, of every
//! datagram), found as the kernel's SIP helper finds it (`ct_sip_get_header`, `callid_len`,
//! `get_callid`); a datagram in which none is found is dropped, as IPVS drops it.
//!
//! The datapath feeds a datagram's bytes one at a time to a [`CallIdScanner`] (a BPF loop
//! cannot walk text with the kernel's backtracking pointers); what it finds is what the
//! kernel's parser finds, but for one case no SIP stack sends: the kernel skips the first
//! character after a folded line (a header value continued on the next line), the scanner
//! does not. The template's key carries the Call-ID's hash ([`with_call`]); its text is
//! kept beside it for the listing (`-L -c --persistent-conn`).

use crate::{ConnKey, FAMILY_V4};

/// The longest Call-ID IPVS keeps (`IP_VS_PEDATA_MAXLEN`): a longer one is no Call-ID.
pub const CALL_ID_MAX: usize = 255;

/// How many bytes of a datagram's payload the datapath looks through for the Call-ID (a
/// power of two: every datagram of a 1,500-byte link fits; a Call-ID past it is not found).
pub const CALL_SCAN_BYTES: usize = 2048;

/// How many calls' Call-IDs the listing can show at once (`XVS_CALLS`, allocated as
/// used): a call past them is kept and forwarded all the same, listed without its Call-ID.
pub const CALLS_KEPT: u32 = 1 << 16;

/// The persistence engine codes of [`crate::ServiceValue::pe`].
pub mod persistence_engine {
    pub const NONE: u8 = 0;
    pub const SIP: u8 = 1;
}

/// The marker in `ConnKey::_pad[0]` of a call's template (a plain template's is
/// [`crate::TEMPLATE_KEY`]).
pub const TEMPLATE_CALL_KEY: u8 = 2;

/// A Call-ID's text, kept for the listing beside its template (`XVS_CALLS`).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallId {
    pub len: u32,
    pub text: [u8; CALL_ID_MAX + 1],
}

impl Default for CallId {
    fn default() -> Self {
        CallId {
            len: 0,
            text: [0; CALL_ID_MAX + 1],
        }
    }
}

impl CallId {
    /// The text (empty if the length is out of range).
    pub fn as_bytes(&self) -> &[u8] {
        self.text.get(..self.len as usize).unwrap_or(&[])
    }
}

/// The template key `key` (a client's, as persistence makes it) made the key of the
/// call whose Call-ID hashes to `hash`: the hash goes where a template key has room (the
/// client port, the marker's second byte, and for IPv4 the address's unused twelve
/// bytes), so an IPv4 call is told by 64 bits of hash, an IPv6 call by 24. Two calls of
/// one client network whose hashes meet share one template, and so one real server.
#[inline(always)]
pub fn with_call(key: &mut ConnKey, hash: u64) {
    key.sport = hash as u16;
    key._pad = [TEMPLATE_CALL_KEY, (hash >> 16) as u8];
    if key.family == FAMILY_V4 {
        let bytes = hash.to_ne_bytes();
        let mut i = 0;
        while i < 8 {
            key.src[4 + i] = bytes[i];
            i += 1;
        }
    }
}

/// The hash of Call-ID `text` that its template's key carries ([`with_call`]): the one
/// [`CallIdScanner`] computes on the way (a backup computes it from a synced Call-ID).
pub fn call_hash(text: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET;
    for &byte in text {
        hash = fnv_step(hash, byte);
    }
    hash
}

#[inline(always)]
fn fnv_step(hash: u64, byte: u8) -> u64 {
    (hash ^ byte as u64).wrapping_mul(FNV_PRIME)
}

/// Whether `key` is a call's template key.
#[inline(always)]
pub fn is_call_key(key: &ConnKey) -> bool {
    key._pad[0] == TEMPLATE_CALL_KEY
}

/// Where the scanner is (the kernel's parser, followed byte by byte).
mod scan {
    /// Looking for the end of a line.
    pub const LINE: u8 = 0;
    /// Just after a CR (an LF here belongs to it).
    pub const AFTER_CR: u8 = 1;
    /// At a line's first character.
    pub const LINE_START: u8 = 2;
    /// Inside "Call-ID" (`matched` characters of it so far).
    pub const NAME: u8 = 3;
    /// After a line's "i" (the compact form, if no letter follows).
    pub const COMPACT: u8 = 4;
    /// After the header's name, before its colon.
    pub const BEFORE_COLON: u8 = 5;
    /// After the colon, before the value.
    pub const AFTER_COLON: u8 = 6;
    /// Whitespace that went on to the next line: after its CR, after its line end, on
    /// the continuation line's leading blanks.
    pub const FOLD_CR: u8 = 7;
    pub const FOLD_LF: u8 = 8;
    pub const FOLD: u8 = 9;
    /// In the Call-ID's word, and after its "@".
    pub const WORD: u8 = 10;
    pub const DOMAIN: u8 = 11;
    /// Done: a Call-ID, or none in this datagram.
    pub const FOUND: u8 = 12;
    pub const NONE: u8 = 13;
}

/// The most steps a byte takes (see [`CallIdScanner::feed`]).
pub const STEPS_PER_BYTE: u32 = 4;

/// The header's long name, in lower case.
const CALL_ID_NAME: &[u8; 7] = b"call-id";

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Finds a datagram's Call-ID from its bytes fed one at a time ([`CallIdScanner::feed`],
/// then [`CallIdScanner::finish`] at the end of what there is), as the kernel's SIP
/// helper finds it: the first header line named `Call-ID` (any case) or `i` (not followed
/// by a letter), a colon after spaces, spaces, then a word of its characters, optionally
/// `@` and another; the value must end at a line end and be at most 255 bytes. A header
/// with no colon or a badly ended value ends the search with none; an empty value is
/// passed over.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallIdScanner {
    state: u8,
    /// The state whitespace that went on to the next line returns to.
    resume: u8,
    /// Characters of "Call-ID" matched, in [`scan::NAME`].
    matched: u8,
    _pad: u8,
    /// The domain's length so far, in [`scan::DOMAIN`].
    domain: u32,
    /// FNV-1a of the value so far.
    hash: u64,
}

impl Default for CallIdScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl CallIdScanner {
    /// A scanner at a datagram's first byte (the first line, a request or status line, is
    /// never a header).
    pub const fn new() -> Self {
        CallIdScanner {
            state: scan::LINE,
            resume: 0,
            matched: 0,
            _pad: 0,
            domain: 0,
            hash: FNV_OFFSET,
        }
    }

    /// Whether the scan is over (found, or none in this datagram): no more bytes needed.
    #[inline(always)]
    pub fn done(&self) -> bool {
        self.state >= scan::FOUND
    }

    /// The Call-ID's hash, if one was found (after [`CallIdScanner::finish`]).
    #[inline(always)]
    pub fn found(&self) -> Option<u64> {
        (self.state == scan::FOUND).then_some(self.hash)
    }

    /// Whether the scanner is passing over a line: until a CR or LF, bytes change
    /// nothing (the datapath skips them without a step each).
    #[inline(always)]
    pub fn passing_over_line(&self) -> bool {
        self.state == scan::LINE
    }

    /// Takes `byte` into the Call-ID if the scanner is in its word or domain and `byte`
    /// is one of their characters, with room for it: whether it did. (A run of them taken
    /// in one datapath step, tried, made the verifier's work twice as large.)
    #[inline(always)]
    fn take_word_char(&mut self, byte: u8, call: &mut CallId) -> bool {
        if (self.state == scan::WORD || self.state == scan::DOMAIN)
            && is_word_char(byte)
            && (call.len as usize) < CALL_ID_MAX
        {
            self.append(byte, call);
            self.domain += (self.state == scan::DOMAIN) as u32;
            true
        } else {
            false
        }
    }

    #[inline(always)]
    fn append(&mut self, byte: u8, call: &mut CallId) {
        call.text[call.len as usize & CALL_ID_MAX] = byte;
        call.len += 1;
        self.hash = fnv_step(self.hash, byte);
    }

    /// The end of the datagram (or of what is looked at): a value still open had no line
    /// end after it, so it is none, as is a search not ended.
    #[inline(always)]
    pub fn finish(&mut self) {
        if self.state != scan::FOUND {
            self.state = scan::NONE;
        }
    }

    /// Takes the next byte; the value's bytes go to `call` (its length counting them).
    /// A byte that ends one state may begin the next: each step says if it is looked at
    /// again (at most [`STEPS_PER_BYTE`] times: a fold's end, the colon's spaces' end, an
    /// empty value).
    #[inline(always)]
    pub fn feed(&mut self, byte: u8, call: &mut CallId) {
        let mut again = true;
        let mut steps = 0;
        while again && steps < STEPS_PER_BYTE {
            again = self.step(byte, call);
            steps += 1;
        }
    }

    /// One step of [`CallIdScanner::feed`]: whether `byte` is to be looked at again (the
    /// datapath's loop steps, so that the verifier checks one step, not four).
    #[inline(always)]
    pub fn step(&mut self, byte: u8, call: &mut CallId) -> bool {
        let blank = byte == b' ' || byte == b'\t';
        match self.state {
            scan::LINE => {
                if byte == b'\r' {
                    self.state = scan::AFTER_CR;
                } else if byte == b'\n' {
                    self.state = scan::LINE_START;
                }
                false
            }
            scan::AFTER_CR => {
                self.state = scan::LINE_START;
                byte != b'\n'
            }
            scan::LINE_START => {
                // A continuation line, or a name that is not this header's: on to the
                // line's end (this byte passed over, as the kernel passes it).
                self.state = match byte | 0x20 {
                    b'c' if !blank => {
                        self.matched = 1;
                        scan::NAME
                    }
                    b'i' if !blank => scan::COMPACT,
                    _ => scan::LINE,
                };
                false
            }
            scan::NAME => {
                let i = self.matched as usize;
                if i < CALL_ID_NAME.len() && byte.to_ascii_lowercase() == CALL_ID_NAME[i] {
                    self.matched += 1;
                    if self.matched as usize == CALL_ID_NAME.len() {
                        self.state = scan::BEFORE_COLON;
                    }
                    false
                } else {
                    // Another header: this byte may end its line.
                    self.state = scan::LINE;
                    true
                }
            }
            scan::COMPACT => {
                if byte.is_ascii_alphabetic() {
                    self.state = scan::LINE;
                    false
                } else {
                    self.state = scan::BEFORE_COLON;
                    true
                }
            }
            scan::BEFORE_COLON | scan::AFTER_COLON => {
                let before = self.state == scan::BEFORE_COLON;
                match byte {
                    b' ' => false,
                    b'\r' | b'\n' => {
                        self.resume = self.state;
                        self.state = if byte == b'\r' {
                            scan::FOLD_CR
                        } else {
                            scan::FOLD_LF
                        };
                        false
                    }
                    b':' if before => {
                        self.state = scan::AFTER_COLON;
                        false
                    }
                    // The named header without its colon: the kernel's search ends.
                    _ if before => {
                        self.state = scan::NONE;
                        false
                    }
                    _ => {
                        self.state = scan::WORD;
                        self.hash = FNV_OFFSET;
                        call.len = 0;
                        true
                    }
                }
            }
            scan::FOLD_CR | scan::FOLD_LF => {
                self.state = if blank {
                    scan::FOLD
                } else if byte == b'\n' && self.state == scan::FOLD_CR {
                    scan::FOLD_LF
                } else {
                    // The line ended within the header: the kernel's search ends.
                    scan::NONE
                };
                false
            }
            scan::FOLD => {
                if blank {
                    false
                } else {
                    self.state = self.resume;
                    true
                }
            }
            scan::WORD | scan::DOMAIN => {
                let word = self.state == scan::WORD;
                if self.take_word_char(byte, call) {
                    false
                } else if is_word_char(byte) {
                    // One past the longest Call-ID.
                    self.state = scan::NONE;
                    false
                } else if word && byte == b'@' && call.len > 0 {
                    self.append(byte, call);
                    self.state = scan::DOMAIN;
                    self.domain = 0;
                    false
                } else if call.len == 0 || (!word && self.domain == 0) {
                    // No value (or a domain missing after "@"): passed over, the search
                    // goes on from here.
                    self.state = scan::LINE;
                    true
                } else {
                    // A value must end its line.
                    self.state = if byte == b'\r' || byte == b'\n' {
                        scan::FOUND
                    } else {
                        scan::NONE
                    };
                    false
                }
            }
            _ => false,
        }
    }
}

/// The characters of a Call-ID's words (the kernel's `iswordc`).
#[inline(always)]
fn is_word_char(c: u8) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            b'!' | b'"'
                | b'%'
                | b'('..=b'/'
                | b':'
                | b'<'
                | b'>'
                | b'?'
                | b'['..=b']'
                | b'_'
                | b'`'
                | b'{'
                | b'}'
                | b'~'
        )
}

/// A datagram's Call-ID (its hash and text) as the datapath finds it in its first
/// [`CALL_SCAN_BYTES`] bytes.
pub fn call_id(payload: &[u8]) -> Option<(u64, CallId)> {
    let mut scanner = CallIdScanner::new();
    let mut call = CallId::default();
    for &byte in payload.iter().take(CALL_SCAN_BYTES) {
        scanner.feed(byte, &mut call);
        if scanner.done() {
            break;
        }
    }
    scanner.finish();
    scanner.found().map(|hash| (hash, call))
}

#[cfg(test)]
mod tests;
