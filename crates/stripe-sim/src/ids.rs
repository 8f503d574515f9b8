//! Stripe-looking object ids that encode a per-sim sequence number.
//!
//! Ids are derived, not stored: `{prefix}_1{seq:7 base62}{tag:10}{mix:6}`.
//! Deriving them keeps memory per object small (the scan benchmark holds a
//! million subscriptions), makes lookups O(1) by decoding the sequence, and
//! makes ids of one object kind sort in creation order, which is the
//! tie-breaker Stripe lists use after `created`.

use rand::Rng;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const SEQ_WIDTH: usize = 7;
const MIX_WIDTH: usize = 6;

/// Random base62 string of `len` characters.
pub(crate) fn random(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// `req_` id for the `Request-Id` header.
pub(crate) fn request_id() -> String {
    format!("req_{}", random(14))
}

fn push_base62(out: &mut String, mut value: u64, width: usize) {
    let mut buf = vec![b'0'; width];
    for slot in buf.iter_mut().rev() {
        *slot = ALPHABET[(value % 62) as usize];
        value /= 62;
    }
    out.extend(buf.iter().map(|&b| b as char));
}

fn decode_base62(text: &str) -> Option<u64> {
    text.bytes().try_fold(0u64, |acc, b| {
        let digit = ALPHABET.iter().position(|&a| a == b)? as u64;
        Some(acc * 62 + digit)
    })
}

/// splitmix64: a cheap bijective scrambler so the id tail looks random but
/// can be recomputed from the sequence number.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn salt(prefix: &str, tag: &str) -> u64 {
    prefix
        .bytes()
        .chain(tag.bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// Formats the id of object number `seq` of kind `prefix` in the sim `tag`.
pub(crate) fn format(prefix: &str, seq: u32, tag: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 2 + SEQ_WIDTH + tag.len() + MIX_WIDTH);
    out.push_str(prefix);
    out.push_str("_1");
    push_base62(&mut out, u64::from(seq), SEQ_WIDTH);
    out.push_str(tag);
    let tail = mix(u64::from(seq) ^ salt(prefix, tag)) % 62u64.pow(MIX_WIDTH as u32);
    push_base62(&mut out, tail, MIX_WIDTH);
    out
}

/// Decodes an id made by [`format`]; `None` for ids this sim never issued.
pub(crate) fn parse(prefix: &str, id: &str, tag: &str) -> Option<u32> {
    let rest = id.strip_prefix(prefix)?.strip_prefix("_1")?;
    let seq = u32::try_from(decode_base62(rest.get(..SEQ_WIDTH)?)?).ok()?;
    (format(prefix, seq, tag) == id).then_some(seq)
}

/// Short ids (`si_…`, `prod_…`): 14 characters after the prefix, like Stripe's.
pub(crate) fn format_short(prefix: &str, seq: u32, tag: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 15);
    out.push_str(prefix);
    out.push('_');
    push_base62(&mut out, u64::from(seq), SEQ_WIDTH);
    out.push_str(&tag[..7]);
    out
}

/// Decodes an id made by [`format_short`].
pub(crate) fn parse_short(prefix: &str, id: &str, tag: &str) -> Option<u32> {
    let rest = id.strip_prefix(prefix)?.strip_prefix('_')?;
    let seq = u32::try_from(decode_base62(rest.get(..SEQ_WIDTH)?)?).ok()?;
    (format_short(prefix, seq, tag) == id).then_some(seq)
}

/// Ids for objects identified by two sequence numbers (an active
/// entitlement is one customer × one feature): `{prefix}_{a:7}{b:7}{tag:10}`.
pub(crate) fn format_pair(prefix: &str, a: u32, b: u32, tag: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 25);
    out.push_str(prefix);
    out.push('_');
    push_base62(&mut out, u64::from(a), SEQ_WIDTH);
    push_base62(&mut out, u64::from(b), SEQ_WIDTH);
    out.push_str(tag);
    out
}

/// Decodes an id made by [`format_pair`].
pub(crate) fn parse_pair(prefix: &str, id: &str, tag: &str) -> Option<(u32, u32)> {
    let rest = id.strip_prefix(prefix)?.strip_prefix('_')?;
    let a = u32::try_from(decode_base62(rest.get(..SEQ_WIDTH)?)?).ok()?;
    let b = u32::try_from(decode_base62(rest.get(SEQ_WIDTH..2 * SEQ_WIDTH)?)?).ok()?;
    (format_pair(prefix, a, b, tag) == id).then_some((a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_sort_in_creation_order() {
        let tag = "AbCdEfGhIj";
        let ids: Vec<String> = [0u32, 1, 61, 62, 1_000_000, u32::MAX]
            .iter()
            .map(|&s| format("sub", s, tag))
            .collect();
        for (id, seq) in ids.iter().zip([0u32, 1, 61, 62, 1_000_000, u32::MAX]) {
            assert_eq!(id.len(), "sub_".len() + 24);
            assert_eq!(parse("sub", id, tag), Some(seq));
        }
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(parse("sub", &ids[1], "XXXXXXXXXX"), None);
        assert_eq!(parse("cus", &ids[1], tag), None);
        assert_eq!(parse("sub", "sub_nope", tag), None);
        let short = format_short("si", 5, tag);
        assert_eq!(short.len(), "si_".len() + 14);
        assert_eq!(parse_short("si", &short, tag), Some(5));
    }
}
