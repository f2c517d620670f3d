//! `LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]`: the longest
//! common subsequence of two strings, with Redis's dynamic programming and
//! its backtracking from the end, so the matches come out in Redis's order.

use wasmserve_sdk::kv;

use super::{Outcome, SYNTAX, key, option_integer};
use crate::resp::Replies;

/// The largest table (one `u32` per pair of positions) kvstore builds: 64
/// MiB would exceed a handler's memory, so larger inputs are refused.
const MAX_CELLS: usize = 4 * 1024 * 1024;

/// One run of matching bytes: its ranges in the two strings.
struct Match {
    a: (usize, usize),
    b: (usize, usize),
}

pub(super) fn lcs(data: &kv::Bucket, rest: &[&[u8]], out: &mut Replies) -> Outcome {
    let (mut len_only, mut indexes, mut with_lengths, mut min_length) = (false, false, false, 0);
    let mut options = rest[2..].iter();
    while let Some(option) = options.next() {
        match option.to_ascii_uppercase().as_slice() {
            b"LEN" => len_only = true,
            b"IDX" => indexes = true,
            b"WITHMATCHLEN" => with_lengths = true,
            b"MINMATCHLEN" => match option_integer(options.next()) {
                Ok(n) => min_length = usize::try_from(n).unwrap_or(0),
                Err(message) => {
                    out.error(message);
                    return Ok(());
                }
            },
            _ => {
                out.error(SYNTAX);
                return Ok(());
            }
        }
    }
    if len_only && indexes {
        out.error("ERR If you want both the length and indexes, please just use IDX.");
        return Ok(());
    }
    let a = data.get(&key(rest[0]))?.unwrap_or_default();
    let b = data.get(&key(rest[1]))?.unwrap_or_default();
    if (a.len() + 1).saturating_mul(b.len() + 1) > MAX_CELLS {
        out.error("ERR Insufficient memory, transient memory for LCS exceeds what kvstore allows");
        return Ok(());
    }
    let (common, matches) = longest_common(&a, &b, min_length);
    if indexes {
        out.array(4);
        out.bulk(b"matches");
        out.array(matches.len());
        for found in &matches {
            out.array(2 + usize::from(with_lengths));
            for (start, end) in [found.a, found.b] {
                out.array(2);
                out.integer(start as i64);
                out.integer(end as i64);
            }
            if with_lengths {
                out.integer((found.a.1 - found.a.0 + 1) as i64);
            }
        }
        out.bulk(b"len");
        out.integer(common.len() as i64);
    } else if len_only {
        out.integer(common.len() as i64);
    } else {
        out.bulk(&common);
    }
    Ok(())
}

/// The common subsequence and its runs of at least `min_length` bytes
/// (all of them when 0), last first.
fn longest_common(a: &[u8], b: &[u8], min_length: usize) -> (Vec<u8>, Vec<Match>) {
    let width = a.len() + 1;
    let mut table = vec![0u32; width * (b.len() + 1)];
    let at = |i: usize, j: usize| j * width + i;
    for j in 1..=b.len() {
        for i in 1..=a.len() {
            table[at(i, j)] = if a[i - 1] == b[j - 1] {
                table[at(i - 1, j - 1)] + 1
            } else {
                table[at(i - 1, j)].max(table[at(i, j - 1)])
            };
        }
    }
    let mut common = vec![0u8; table[at(a.len(), b.len())] as usize];
    let mut matches = Vec::new();
    let (mut i, mut j, mut index) = (a.len(), b.len(), common.len());
    // The current run, as Redis tracks it: `None` between runs.
    let mut run: Option<Match> = None;
    while i > 0 && j > 0 {
        let mut emit = false;
        if a[i - 1] == b[j - 1] {
            common[index - 1] = a[i - 1];
            match &mut run {
                None => {
                    run = Some(Match {
                        a: (i - 1, i - 1),
                        b: (j - 1, j - 1),
                    });
                }
                Some(current) if current.a.0 == i && current.b.0 == j => {
                    current.a.0 -= 1;
                    current.b.0 -= 1;
                }
                Some(_) => emit = true,
            }
            if run
                .as_ref()
                .is_some_and(|current| current.a.0 == 0 || current.b.0 == 0)
            {
                emit = true;
            }
            index -= 1;
            i -= 1;
            j -= 1;
        } else {
            if table[at(i - 1, j)] > table[at(i, j - 1)] {
                i -= 1;
            } else {
                j -= 1;
            }
            emit |= run.is_some();
        }
        if emit
            && let Some(found) = run.take()
            && (min_length == 0 || found.a.1 - found.a.0 + 1 >= min_length)
        {
            matches.push(found);
        }
    }
    (common, matches)
}
