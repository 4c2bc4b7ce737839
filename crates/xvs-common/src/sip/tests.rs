//! The scanner against the kernel's parser, written here as the kernel writes it (pointer
//! walks, backtracking), on messages made of SIP's parts and on any bytes.

extern crate std;

use std::{string::String, vec::Vec};

use proptest::prelude::*;

use super::*;

/// What `get_callid` answers for `data` (as the kernel's `ct_sip_get_header` and
/// `callid_len` walk it; without its skip of the first character after a folded line).
fn kernel_call_id(data: &[u8]) -> Option<&[u8]> {
    let mut from = 0;
    loop {
        match header(data, from) {
            Header::Value(at, len) => {
                let end = at + len;
                if len > CALL_ID_MAX || end == data.len() {
                    return None;
                }
                return matches!(data[end], b'\r' | b'\n').then(|| &data[at..end]);
            }
            Header::Empty(at) => from = at,
            Header::Missing => return None,
        }
    }
}

enum Header {
    Value(usize, usize),
    Empty(usize),
    Missing,
}

fn header(data: &[u8], from: usize) -> Header {
    let limit = data.len();
    let mut p = from;
    while p < limit {
        if data[p] != b'\r' && data[p] != b'\n' {
            p += 1;
            continue;
        }
        p += 1;
        if p >= limit {
            break;
        }
        if data[p - 1] == b'\r' && data[p] == b'\n' {
            p += 1;
            if p >= limit {
                break;
            }
        }
        if data[p] == b' ' || data[p] == b'\t' {
            p += 1;
            continue;
        }
        if limit - p >= 7 && data[p..p + 7].eq_ignore_ascii_case(b"call-id") {
            p += 7;
        } else if limit - p >= 2
            && data[p].eq_ignore_ascii_case(&b'i')
            && !data[p + 1].is_ascii_alphabetic()
        {
            p += 1;
        } else {
            p += 1;
            continue;
        }
        let Some(q) = skip_whitespace(data, p) else {
            break;
        };
        p = q;
        if p >= limit || data[p] != b':' {
            break;
        }
        p += 1;
        if p >= limit {
            break;
        }
        let Some(q) = skip_whitespace(data, p) else {
            break;
        };
        p = q;
        let len = callid_len(data, p);
        return if len == 0 {
            Header::Empty(p)
        } else {
            Header::Value(p, len)
        };
    }
    Header::Missing
}

fn skip_whitespace(data: &[u8], mut p: usize) -> Option<usize> {
    while p < data.len() {
        if data[p] == b' ' {
            p += 1;
            continue;
        }
        if data[p] != b'\r' && data[p] != b'\n' {
            break;
        }
        p = follow_continuation(data, p)?;
    }
    Some(p)
}

fn follow_continuation(data: &[u8], mut p: usize) -> Option<usize> {
    p += 1;
    if p >= data.len() {
        return None;
    }
    if data[p - 1] == b'\r' && data[p] == b'\n' {
        p += 1;
        if p >= data.len() {
            return None;
        }
    }
    if data[p] != b' ' && data[p] != b'\t' {
        return None;
    }
    while p < data.len() && (data[p] == b' ' || data[p] == b'\t') {
        p += 1;
    }
    Some(p)
}

fn word_len(data: &[u8], p: usize) -> usize {
    data[p.min(data.len())..]
        .iter()
        .take_while(|&&c| is_word_char(c))
        .count()
}

fn callid_len(data: &[u8], p: usize) -> usize {
    let len = word_len(data, p);
    let at = p + len;
    if len == 0 || at == data.len() || data[at] != b'@' {
        return len;
    }
    let domain = word_len(data, at + 1);
    if domain == 0 { 0 } else { len + 1 + domain }
}

fn scanned(data: &[u8]) -> Option<Vec<u8>> {
    call_id(data).map(|(_, call)| call.as_bytes().to_vec())
}

#[test]
fn a_request_s_call_id_is_found_in_either_form_and_any_case() {
    let invite = b"INVITE sip:bob@example.com SIP/2.0\r\n\
        Via: SIP/2.0/UDP pc33.example.com;branch=z9hG4bK776asdhds\r\n\
        To: Bob <sip:bob@example.com>\r\n\
        Call-ID: a84b4c76e66710@pc33.example.com\r\n\
        CSeq: 314159 INVITE\r\n\r\n";
    assert_eq!(
        scanned(invite).as_deref(),
        Some(&b"a84b4c76e66710@pc33.example.com"[..])
    );
    assert_eq!(
        scanned(b"SIP/2.0 200 OK\nf: x\ni :  3848276298220188511\n").as_deref(),
        Some(&b"3848276298220188511"[..])
    );
    assert_eq!(
        scanned(b"BYE x SIP/2.0\r\nCALL-ID:abc\r\n").as_deref(),
        Some(&b"abc"[..])
    );
    // The same text, the same hash, whatever surrounds it; a backup computes it from
    // the text alone.
    let a = call_id(b"X\r\nCall-ID: same@host\r\n").unwrap().0;
    assert_eq!(a, call_hash(b"same@host"));
    let b = call_id(b"Y z\nVia: v\ni:same@host\n\nbody").unwrap().0;
    assert_eq!(a, b);
    assert_ne!(a, call_id(b"X\r\nCall-ID: other@host\r\n").unwrap().0);
}

#[test]
fn no_call_id_where_the_kernel_finds_none() {
    for data in [
        // The first line is never a header.
        &b"Call-ID: abc\r\n"[..],
        // Other headers that start alike.
        b"M\r\nCall-Info: <x>\r\nIn-Reply-To: a@b\r\n",
        // The value must end its line.
        b"M\r\nCall-ID: abc def\r\n",
        b"M\r\nCall-ID: abc",
        // A domain after "@" is not optional: passed over, and nothing after.
        b"M\r\nCall-ID: abc@\r\n",
        // A compact "i" without its colon ends the search.
        b"M\r\ni-x: 1\r\nCall-ID: abc\r\n",
        // Tabs are not the kernel's spaces before the colon.
        b"M\r\nCall-ID\t: abc\r\n",
    ] {
        assert_eq!(scanned(data), None, "{:?}", String::from_utf8_lossy(data));
        assert_eq!(kernel_call_id(data), None);
    }
}

#[test]
fn an_empty_value_is_passed_over_and_the_next_header_counts() {
    let data = b"M\r\nCall-ID: ;x\r\nCall-ID: second\r\n";
    assert_eq!(scanned(data).as_deref(), Some(&b"second"[..]));
    assert_eq!(kernel_call_id(data), Some(&b"second"[..]));
}

#[test]
fn a_folded_line_is_whitespace() {
    let data = b"M\r\nCall-ID:\r\n   folded@host\r\n";
    assert_eq!(scanned(data).as_deref(), Some(&b"folded@host"[..]));
}

#[test]
fn a_call_id_of_255_bytes_is_one_and_of_256_none() {
    let long = |n: usize| {
        let mut data = b"M\r\nCall-ID: ".to_vec();
        data.extend(std::iter::repeat_n(b'a', n));
        data.extend(b"\r\n");
        data
    };
    assert_eq!(scanned(&long(255)).map(|c| c.len()), Some(255));
    assert_eq!(scanned(&long(256)), None);
    assert_eq!(kernel_call_id(&long(256)), None);
}

#[test]
fn a_call_id_past_the_bytes_looked_at_is_not_found() {
    let mut data = b"M\r\nX: ".to_vec();
    data.extend(std::iter::repeat_n(b'x', CALL_SCAN_BYTES));
    data.extend(b"\r\nCall-ID: late\r\n");
    assert_eq!(scanned(&data), None);
}

#[test]
fn a_call_s_key_differs_from_its_client_s_and_from_another_call_s() {
    let mut client = ConnKey {
        family: FAMILY_V4,
        _pad: [crate::TEMPLATE_KEY, 0],
        ..ConnKey::default()
    };
    client.src[..4].copy_from_slice(&[10, 0, 0, 0]);
    let (mut one, mut two) = (client, client);
    with_call(&mut one, 1);
    with_call(&mut two, 1 << 40);
    assert!(is_call_key(&one) && !is_call_key(&client));
    assert_ne!(one, client);
    assert_ne!(one, two);
    assert_eq!(one.src[..4], client.src[..4]);
}

/// Lines made of SIP's parts and near misses.
fn message() -> impl Strategy<Value = Vec<u8>> {
    let name = prop::sample::select(
        &[
            "Call-ID",
            "call-id",
            "CALL-Id",
            "i",
            "I",
            "Call-Info",
            "Call-Idx",
            "In-Reply-To",
            "Via",
            "c",
            "Ca",
            "i-x",
            " Call-ID",
            "",
        ][..],
    );
    let colon = prop::sample::select(
        &[
            ":", " :", ": ", ":  ", ":\t", "\t:", ":\r\n ", ":\n\t ", " \r\n :", ":\r\nX", "",
        ][..],
    );
    let value = "[a-z0-9@;= \t._<>!~-]{0,12}";
    let end = prop::sample::select(&["\r\n", "\n", "\r", "\r\n\r\n", ""][..]);
    let line = (name, colon, value, end).prop_map(|(n, c, v, e)| std::format!("{n}{c}{v}{e}"));
    prop::collection::vec(line, 0..8).prop_map(|lines| {
        let mut data = b"INVITE sip:a@b SIP/2.0\r\n".to_vec();
        for line in lines {
            data.extend(line.as_bytes());
        }
        data
    })
}

proptest! {
    #[test]
    fn the_scanner_finds_what_the_kernel_finds(data in message()) {
        let found = scanned(&data);
        prop_assert_eq!(found.as_deref(), kernel_call_id(&data));
    }

    #[test]
    fn on_any_bytes_too(data in prop::collection::vec(
        prop::sample::select(&b"\r\n \t:@iIcC-aldx;"[..]), 0..64)) {
        let found = scanned(&data);
        prop_assert_eq!(found.as_deref(), kernel_call_id(&data));
    }
}
