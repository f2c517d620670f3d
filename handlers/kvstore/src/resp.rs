//! RESP, the Redis protocol: commands in (arrays of bulk strings, or inline
//! lines as telnet users type them), replies out.

/// The largest bulk string a client may send (Redis's default is 512 MiB;
/// the host's value limit is far below).
pub(crate) const MAX_BULK: usize = 8 * 1024 * 1024;
/// The most arguments in one command.
const MAX_ARGS: usize = 64 * 1024;

/// A command that could not be read: the connection ends after the error.
#[derive(Debug)]
pub(crate) struct ProtocolError(pub(crate) String);

/// The next complete command in `buffer`: its arguments (the name first)
/// replace `args`, borrowed from `buffer` (no copy, no allocation once
/// `args` has grown), and the bytes it used are returned; `Ok(None)` when
/// more bytes are needed.
pub(crate) fn parse<'a>(
    buffer: &'a [u8],
    args: &mut Vec<&'a [u8]>,
) -> Result<Option<usize>, ProtocolError> {
    args.clear();
    if buffer.is_empty() {
        return Ok(None);
    }
    if buffer[0] != b'*' {
        return Ok(inline(buffer, args));
    }
    let Some((count, mut at)) = number_line(buffer, 1)? else {
        return Ok(None);
    };
    if count > MAX_ARGS as i64 {
        return Err(ProtocolError("invalid multibulk length".into()));
    }
    for _ in 0..count.max(0) {
        match buffer.get(at) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(other) => {
                return Err(ProtocolError(format!(
                    "expected '$', got '{}'",
                    char::from(*other)
                )));
            }
        }
        let Some((len, start)) = number_line(buffer, at + 1)? else {
            return Ok(None);
        };
        let len = usize::try_from(len)
            .ok()
            .filter(|len| *len <= MAX_BULK)
            .ok_or_else(|| ProtocolError("invalid bulk length".into()))?;
        // The argument and the CRLF after it must both have arrived.
        if buffer.len() < start + len + 2 {
            return Ok(None);
        }
        args.extend(buffer.get(start..start + len));
        at = start + len + 2;
    }
    Ok(Some(at))
}

/// A number ending in CRLF at `at`: the number and where the next line
/// starts. Read digit by digit (this runs twice per argument).
fn number_line(buffer: &[u8], at: usize) -> Result<Option<(i64, usize)>, ProtocolError> {
    let rest = buffer.get(at..).unwrap_or_default();
    let Some(end) = rest.iter().position(|&byte| byte == b'\r') else {
        if rest.len() > 32 {
            return Err(ProtocolError("length line too long".into()));
        }
        return Ok(None);
    };
    match rest.get(end + 1) {
        None => return Ok(None),
        Some(b'\n') => {}
        Some(_) => return Err(invalid_length(&rest[..end])),
    }
    let text = &rest[..end];
    let (negative, digits) = match text.split_first() {
        Some((b'-', digits)) => (true, digits),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 {
        return Err(invalid_length(text));
    }
    let mut number: i64 = 0;
    for &byte in digits {
        if !byte.is_ascii_digit() {
            return Err(invalid_length(text));
        }
        number = number * 10 + i64::from(byte - b'0');
    }
    Ok(Some((
        if negative { -number } else { number },
        at + end + 2,
    )))
}

fn invalid_length(text: &[u8]) -> ProtocolError {
    ProtocolError(format!(
        "invalid length {:?}",
        String::from_utf8_lossy(text)
    ))
}

/// An inline command: a line of words.
fn inline<'a>(buffer: &'a [u8], args: &mut Vec<&'a [u8]>) -> Option<usize> {
    let end = buffer.iter().position(|&b| b == b'\n')?;
    let line = &buffer[..end];
    args.extend(
        line.split(|b| b.is_ascii_whitespace())
            .filter(|word| !word.is_empty()),
    );
    Some(end + 1)
}

/// Replies, appended to an output buffer (no allocation per reply).
pub(crate) struct Replies(pub(crate) Vec<u8>);

/// Reply capacity kept between reads; a larger buffer (a long value's
/// reply) is given back.
const KEEP_CAPACITY: usize = 64 * 1024;

impl Replies {
    /// Empties the buffer once it was sent, keeping its capacity unless
    /// that is large.
    pub(crate) fn clear(&mut self) {
        self.0.clear();
        if self.0.capacity() > KEEP_CAPACITY {
            self.0 = Vec::new();
        }
    }

    /// `prefix`, the decimal `number`, CRLF.
    fn line(&mut self, prefix: u8, number: i64) {
        self.0.push(prefix);
        self.0
            .extend_from_slice(itoa::Buffer::new().format(number).as_bytes());
        self.0.extend_from_slice(b"\r\n");
    }

    pub(crate) fn simple(&mut self, text: &str) {
        self.0.push(b'+');
        self.0.extend_from_slice(text.as_bytes());
        self.0.extend_from_slice(b"\r\n");
    }

    /// An error line; a line break in `text` (a client's argument quoted
    /// back) becomes a space, as Redis does, so the reply stays one line.
    pub(crate) fn error(&mut self, text: &str) {
        self.0.push(b'-');
        self.0.extend(text.bytes().map(|byte| {
            if byte == b'\r' || byte == b'\n' {
                b' '
            } else {
                byte
            }
        }));
        self.0.extend_from_slice(b"\r\n");
    }

    pub(crate) fn integer(&mut self, value: i64) {
        self.line(b':', value);
    }

    pub(crate) fn bulk(&mut self, value: &[u8]) {
        self.line(b'$', value.len() as i64);
        self.0.extend_from_slice(value);
        self.0.extend_from_slice(b"\r\n");
    }

    pub(crate) fn nil(&mut self) {
        self.0.extend_from_slice(b"$-1\r\n");
    }

    pub(crate) fn array(&mut self, len: usize) {
        self.line(b'*', len as i64);
    }

    pub(crate) fn optional(&mut self, value: Option<&[u8]>) {
        match value {
            Some(value) => self.bulk(value),
            None => self.nil(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_quoting_a_line_break_stays_one_line() {
        let mut out = Replies(Vec::new());
        out.error("ERR unknown command 'a\r\nb'");
        assert_eq!(out.0, b"-ERR unknown command 'a  b'\r\n");
    }

    #[test]
    fn reads_arrays_inline_and_partial_commands() {
        let wire = b"*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nPING\r\n";
        let mut args = Vec::new();
        let used = parse(wire, &mut args).ok().flatten().unwrap_or_default();
        assert_eq!(args, [b"ECHO".as_slice(), b"hi"]);
        assert_eq!(parse(&wire[used..], &mut args).ok().flatten(), Some(6));
        assert_eq!(args, [b"PING".as_slice()]);
        assert!(matches!(parse(&wire[..10], &mut args), Ok(None)));
        assert!(parse(b"*1\r\n$x\r\n", &mut args).is_err());
        assert!(parse(b"*1\r\n$1x\r\n", &mut args).is_err());
        assert!(parse(b"*-1\r\n", &mut args).is_ok());
        assert_eq!(number_line(b"-12\r\n", 0).ok().flatten(), Some((-12, 5)));
    }
}
