//! Spot's "word creation": turning each event into one string word per
//! document, exactly as Apache Spot's master code did (`spot-reference.md` §2).
//!
//! The submodules hold one word creator per record kind ([`flow`], [`dns`],
//! [`proxy`]) and the domain parsing plus popularity list they share
//! ([`domain`]). This module holds the numeric helpers every creator uses.
//!
//! A word that cannot be built is the literal [`WORD_ERROR`]; such words never
//! enter a corpus and always score −1, so they are never reported.

pub mod dns;
pub mod domain;
pub mod flow;
pub mod proxy;

/// The word Spot emits when building a word fails.
pub const WORD_ERROR: &str = "word_error";

/// Spot's `EntropyCuts`: 20 right-hand bin ends, the last one +∞, so
/// [`bin`] on an entropy returns 0..=19.
pub const ENTROPY_CUTS: [f64; 20] = [0.0, 0.3, 0.6, 0.9, 1.2, 1.5, 1.8, 2.1, 2.4, 2.7, 3.0, 3.3, 3.6, 3.9, 4.2, 4.5, 4.8, 5.1, 5.4, f64::INFINITY];

/// Number of significant bits of `n` (0 for 0).
///
/// Spot's `ceilLog2(n + 1)` equals this for every n ≥ 0 (checked in the
/// reference for all n < 2^48), so the flow byte/packet bins use it directly
/// instead of going through floating-point logarithms.
pub fn bitlen(n: u64) -> u32 {
    64 - n.leading_zeros()
}

/// Spot's `logBaseXInt(x, 2)` for integers: 0 for x = 0, floor(log2 x) for
/// x ≥ 1. Negative inputs give 0, as Scala's `NaN.toInt` does.
pub fn floor_log2(x: i64) -> u32 {
    if x <= 0 { 0 } else { bitlen(x as u64) - 1 }
}

/// Spot's `bin(value, cuts)`: index of the first cut with `value <= cut`,
/// or −1 when there is none (only possible for NaN with [`ENTROPY_CUTS`]).
pub fn bin(value: f64, cuts: &[f64]) -> i32 {
    cuts.iter().position(|&c| value <= c).map_or(-1, |i| i as i32)
}

/// Shannon entropy in bits of the character distribution of `s` (0 for "").
///
/// Computed as Σ −p·log10(p)/log10(2), the way Spot computed it, so values on
/// a bin edge fall on the same side as in Spot as far as floating point allows.
/// Characters are Unicode scalar values (Spot used UTF-16 units; they differ
/// only for characters outside the BMP, which DNS names in presentation form
/// and URIs do not contain).
pub fn entropy(s: &str) -> f64 {
    let mut counts: Vec<(char, u32)> = Vec::new();
    let mut n = 0u32;
    for c in s.chars() {
        n += 1;
        match counts.iter_mut().find(|(ch, _)| *ch == c) {
            Some((_, k)) => *k += 1,
            None => counts.push((c, 1)),
        }
    }
    if n == 0 {
        return 0.0;
    }
    let log2 = 2f64.log10();
    let nf = f64::from(n);
    counts
        .iter()
        .map(|&(_, k)| {
            let p = f64::from(k) / nf;
            -p * p.log10() / log2
        })
        .sum()
}

/// Java's `String.split(char)` semantics: split on `sep`, then drop trailing
/// empty strings (and an input made only of separators gives no parts, while
/// "" gives one empty part). Spot's domain and content-type parsing depend on
/// this, e.g. `"a.com."` has 2 labels and `"/"` has no parts.
pub(crate) fn java_split(s: &str, sep: char) -> Vec<&str> {
    if s.is_empty() {
        return vec![""];
    }
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    parts
}

/// UTC hour of day (0..=23) of a nanosecond timestamp.
pub fn utc_hour(ts_ns: i64) -> u32 {
    let secs = ts_ns.div_euclid(1_000_000_000);
    (secs.rem_euclid(86_400) / 3600) as u32
}

/// The words one ordinal bin away from `word` (one field at a time, ±1;
/// the hour wraps around midnight), for a word of record kind `kind`
/// (`flow`, `dns` or `proxy`); empty for a kind or word it cannot read.
///
/// Spot's bins are arbitrary cut points (`spot-reference.md` §7.2), so an
/// event one bin away from common behaviour is close to it, not novel. The
/// scorer uses these neighbours to give a word never seen in training a
/// smoothed probability instead of a flat 0 (see `score::BackoffWords`).
/// Categorical fields (ports, protocol, qtype, rcode, method, class...) are
/// never varied: a new port or query type stays novel.
pub fn adjacent_words(kind: &str, word: &str) -> Vec<String> {
    if word == WORD_ERROR {
        return Vec::new();
    }
    // (fields, which are ordinal, which of those is the hour).
    let (fields, ordinal, hour): (Vec<&str>, &[usize], usize) = match kind {
        // `[-1_]port_proto_hour_B_P`: read from the right, the prefix varies.
        "flow" => {
            let mut f: Vec<&str> = word.rsplitn(4, '_').collect();
            if f.len() != 4 {
                return Vec::new();
            }
            f.reverse();
            (f, &[1, 2, 3], 1)
        }
        // `class_framelen_hour_sublen_entbin_labels_qtype_rcode`.
        "dns" => (word.splitn(8, '_').collect(), &[1, 2, 3, 4, 5], 2),
        // `class_hour_method_entbin_ctype_uacount_urilen_respcode` (the
        // response code, last, may itself contain `_`).
        "proxy" => (word.splitn(8, '_').collect(), &[1, 3, 5, 6], 1),
        _ => return Vec::new(),
    };
    if kind != "flow" && fields.len() != 8 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(2 * ordinal.len());
    for &i in ordinal {
        let Ok(v) = fields[i].parse::<i64>() else { continue };
        let steps: [i64; 2] = if i == hour { [(v + 23) % 24, (v + 1) % 24] } else { [v - 1, v + 1] };
        for n in steps {
            // Bins start at 0 (entropy's "no cut" −1 aside, which has no lower neighbour).
            if n < 0 || n == v {
                continue;
            }
            let mut f = fields.clone();
            let text = n.to_string();
            f[i] = &text;
            out.push(f.join("_"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_of_abcdefg_matches_reference() {
        assert!((entropy("abcdefg") - 2.807354922057604).abs() < 1e-12);
        assert_eq!(entropy(""), 0.0);
        assert_eq!(entropy("aaaa"), 0.0);
        assert!((entropy("ab") - 1.0).abs() < 1e-12);
    }

    #[test]
    fn bitlen_matches_ceil_log2_of_n_plus_1() {
        assert_eq!(bitlen(0), 0);
        assert_eq!(bitlen(1), 1);
        assert_eq!(bitlen(2), 2);
        assert_eq!(bitlen(3), 2);
        assert_eq!(bitlen(4), 3);
        assert_eq!(bitlen(222), 8);
        assert_eq!(bitlen(1026), 11);
        assert_eq!(bitlen(10), 4);
        for n in 0u64..5000 {
            let spot = if n == 0 { 0 } else { ((n as f64 + 1.0).log10() / 2f64.log10()).ceil() as u32 };
            assert_eq!(bitlen(n), spot, "n = {n}");
        }
    }

    #[test]
    fn floor_log2_matches_spot_log_base_x_int() {
        assert_eq!(floor_log2(0), 0);
        assert_eq!(floor_log2(-5), 0);
        assert_eq!(floor_log2(1), 0);
        assert_eq!(floor_log2(213), 7);
        for x in 1i64..5000 {
            let spot = ((x as f64).log10() / 2f64.log10()) as u32;
            assert_eq!(floor_log2(x), spot, "x = {x}");
        }
    }

    #[test]
    fn bin_finds_first_cut_at_or_above() {
        assert_eq!(bin(0.0, &ENTROPY_CUTS), 0);
        assert_eq!(bin(0.1, &ENTROPY_CUTS), 1);
        assert_eq!(bin(2.807354922057604, &ENTROPY_CUTS), 10);
        assert_eq!(bin(100.0, &ENTROPY_CUTS), 19);
        assert_eq!(bin(f64::NAN, &ENTROPY_CUTS), -1);
        assert_eq!(bin(5.0, &[1.0, 2.0]), -1);
    }

    #[test]
    fn java_split_drops_trailing_empties() {
        assert_eq!(java_split("a.b.", '.'), vec!["a", "b"]);
        assert_eq!(java_split(".a", '.'), vec!["", "a"]);
        assert_eq!(java_split("", '.'), vec![""]);
        assert!(java_split("...", '.').is_empty());
        assert_eq!(java_split("a..b", '.'), vec!["a", "", "b"]);
    }

    #[test]
    fn utc_hour_handles_pre_epoch() {
        assert_eq!(utc_hour(0), 0);
        assert_eq!(utc_hour(13 * 3_600_000_000_000 + 5), 13);
        assert_eq!(utc_hour(-1), 23);
    }

    #[test]
    fn adjacent_words_vary_one_ordinal_field() {
        let mut f = adjacent_words("flow", "-1_443_TCP_0_12_4");
        f.sort();
        assert_eq!(
            f,
            ["-1_443_TCP_0_11_4", "-1_443_TCP_0_12_3", "-1_443_TCP_0_12_5", "-1_443_TCP_0_13_4", "-1_443_TCP_1_12_4", "-1_443_TCP_23_12_4"]
        );
        assert_eq!(adjacent_words("flow", "333333_TCP_5_0_1").len(), 5, "B = 0 has no lower bin");
        let d = adjacent_words("dns", "0_7_10_0_0_1_1_3");
        assert!(d.contains(&"0_8_10_0_0_1_1_3".to_string()));
        assert!(d.contains(&"0_7_9_0_0_1_1_3".to_string()));
        assert!(d.iter().all(|w| w.ends_with("_1_3")), "qtype and rcode stay: {d:?}");
        assert_eq!(d.len(), 8);
        let p = adjacent_words("proxy", "1_13_GET_10_text_3_5_unknown_response_code");
        assert!(p.contains(&"1_14_GET_10_text_3_5_unknown_response_code".to_string()));
        assert_eq!(p.len(), 8);
        assert!(adjacent_words("flow", "word_error").is_empty());
        assert!(adjacent_words("dns", "a_b").is_empty());
        assert!(adjacent_words("other", "1_2_3_4_5").is_empty());
    }
}
