//! Bytes received but not consumed yet, shared by the blocking and the
//! async request: what `read_line` read past the end of a line is kept here
//! and handed out first by the next read.

use std::cell::RefCell;

/// The received-but-unconsumed bytes of a request.
#[derive(Debug, Default)]
pub(crate) struct Pending(RefCell<Vec<u8>>);

impl Pending {
    /// Up to `max` (at least one) pending bytes, or `None` when none are.
    pub(crate) fn take(&self, max: usize) -> Option<Vec<u8>> {
        let mut pending = self.0.borrow_mut();
        if pending.is_empty() {
            return None;
        }
        let n = max.max(1).min(pending.len());
        Some(pending.drain(..n).collect())
    }

    /// The next complete line (with its `\n`), if one is pending.
    pub(crate) fn line(&self) -> Option<String> {
        let end = self.0.borrow().iter().position(|byte| *byte == b'\n')? + 1;
        Some(self.drain(end))
    }

    /// Adds bytes read after what is pending.
    pub(crate) fn push(&self, bytes: &[u8]) {
        self.0.borrow_mut().extend_from_slice(bytes);
    }

    /// Everything pending (a last line without `\n` at end of stream).
    pub(crate) fn rest(&self) -> String {
        let len = self.0.borrow().len();
        self.drain(len)
    }

    fn drain(&self, end: usize) -> String {
        let line: Vec<u8> = self.0.borrow_mut().drain(..end).collect();
        String::from_utf8_lossy(&line).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::Pending;

    #[test]
    fn lines_then_the_rest_then_bytes() {
        let pending = Pending::default();
        assert_eq!(pending.take(10), None);
        pending.push(b"one\ntwo\nthr");
        assert_eq!(pending.line().as_deref(), Some("one\n"));
        assert_eq!(pending.take(2).as_deref(), Some(&b"tw"[..]));
        assert_eq!(pending.line().as_deref(), Some("o\n"));
        assert_eq!(pending.line(), None);
        assert_eq!(pending.rest(), "thr");
        assert_eq!(pending.take(0), None);
    }
}
