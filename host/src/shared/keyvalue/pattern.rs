//! Redis's glob patterns for `scan` (`KEYS`, `SCAN MATCH`): `*`, `?`,
//! `[abc]`, `[^a-z]`, `\` escapes, byte by byte. Matching keeps one
//! backtracking point (the last `*`), so it takes at most pattern × key
//! steps: a pattern of many stars against a long key cannot make the host
//! spin, as a recursive matcher would.

/// Whether `text` matches the glob `pattern`.
pub(crate) fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // After a `*`: where the pattern goes on, and the text position the star
    // has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() {
            if pattern[p] == b'*' {
                while p < pattern.len() && pattern[p] == b'*' {
                    p += 1;
                }
                if p == pattern.len() {
                    return true;
                }
                star = Some((p, t));
                continue;
            }
            if let Some(length) = element_matches(pattern, p, text[t]) {
                p += length;
                t += 1;
                continue;
            }
        }
        match star {
            Some((after, swallowed)) => {
                p = after;
                t = swallowed + 1;
                star = Some((after, swallowed + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

/// If the pattern element at `p` matches `byte`: the element's length.
fn element_matches(pattern: &[u8], p: usize, byte: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(1),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte).then_some(2),
        b'[' => class_matches(pattern, p, byte),
        other => (other == byte).then_some(1),
    }
}

/// A `[...]` class at `start`: whether it holds `byte`, and its length (an
/// unclosed class runs to the end of the pattern, as in Redis).
fn class_matches(pattern: &[u8], start: usize, byte: u8) -> Option<usize> {
    let mut i = start + 1;
    let negated = pattern.get(i) == Some(&b'^');
    if negated {
        i += 1;
    }
    let mut found = false;
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            found |= pattern[i + 1] == byte;
            i += 2;
        } else if pattern.get(i + 1) == Some(&b'-') && i + 2 < pattern.len() {
            let (low, high) = (pattern[i], pattern[i + 2]);
            let (low, high) = (low.min(high), low.max(high));
            found |= (low..=high).contains(&byte);
            i += 3;
        } else {
            found |= pattern[i] == byte;
            i += 1;
        }
    }
    let length = (i + 1).min(pattern.len()) - start;
    (found != negated).then_some(length)
}

#[cfg(test)]
mod tests {
    use super::glob_matches;

    fn matches(pattern: &str, text: &str) -> bool {
        glob_matches(pattern.as_bytes(), text.as_bytes())
    }

    #[test]
    fn globs_match_as_redis_does() {
        assert!(matches("*", ""));
        assert!(matches("foo*", "foobar"));
        assert!(!matches("foo*", "fo"));
        assert!(matches("h?llo", "hello"));
        assert!(matches("h[ae]llo", "hallo"));
        assert!(!matches("h[^e]llo", "hello"));
        assert!(matches("h[a-b]llo", "hbllo"));
        assert!(matches("h[b-a]llo", "hallo"));
        assert!(matches("a\\*b", "a*b"));
        assert!(!matches("a\\*b", "axb"));
        assert!(matches("*a*b*", "xxaxxbxx"));
        assert!(!matches("*a*b", "xxaxxbxx"));
        assert!(matches("key:[0-9]*", "key:42"));
    }

    #[test]
    fn many_stars_against_a_long_key_end_quickly() {
        let pattern = "a*".repeat(50) + "b";
        let text = "a".repeat(10_000);
        assert!(!matches(&pattern, &text));
    }
}
