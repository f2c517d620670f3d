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

/// A command's arguments (the name first) and the bytes it took.
pub(crate) type Parsed = (Vec<Vec<u8>>, usize);

/// The next complete command in `buffer` and the bytes it used; `Ok(None)`
/// when more bytes are needed.
pub(crate) fn parse(buffer: &[u8]) -> Result<Option<Parsed>, ProtocolError> {
    if buffer.is_empty() {
        return Ok(None);
    }
    if buffer[0] != b'*' {
        return Ok(inline(buffer));
    }
    let Some((count, mut at)) = number_line(buffer, 1)? else {
        return Ok(None);
    };
    if count > MAX_ARGS as i64 {
        return Err(ProtocolError("invalid multibulk length".into()));
    }
    let mut args = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
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
        if buffer.len() < start + len + 2 {
            return Ok(None);
        }
        args.push(buffer[start..start + len].to_vec());
        at = start + len + 2;
    }
    Ok(Some((args, at)))
}

/// A number ending in CRLF at `at`: the number and where the next line starts.
fn number_line(buffer: &[u8], at: usize) -> Result<Option<(i64, usize)>, ProtocolError> {
    let Some(end) = buffer[at.min(buffer.len())..]
        .windows(2)
        .position(|pair| pair == b"\r\n")
    else {
        if buffer.len() - at.min(buffer.len()) > 32 {
            return Err(ProtocolError("length line too long".into()));
        }
        return Ok(None);
    };
    let text = std::str::from_utf8(&buffer[at..at + end]).unwrap_or("");
    let number = text
        .parse::<i64>()
        .map_err(|_| ProtocolError(format!("invalid length {text:?}")))?;
    Ok(Some((number, at + end + 2)))
}

/// An inline command: a line of words.
fn inline(buffer: &[u8]) -> Option<Parsed> {
    let end = buffer.iter().position(|&b| b == b'\n')?;
    let line = &buffer[..end];
    let args = line
        .split(|b| b.is_ascii_whitespace())
        .filter(|word| !word.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    Some((args, end + 1))
}

/// Replies, appended to an output buffer (no allocation per reply).
pub(crate) struct Replies(pub(crate) Vec<u8>);

impl Replies {
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
        let (args, used) = parse(wire).ok().flatten().unwrap_or_default();
        assert_eq!(args, vec![b"ECHO".to_vec(), b"hi".to_vec()]);
        let (args, _) = parse(&wire[used..]).ok().flatten().unwrap_or_default();
        assert_eq!(args, vec![b"PING".to_vec()]);
        assert!(matches!(parse(&wire[..10]), Ok(None)));
        assert!(parse(b"*1\r\n$x\r\n").is_err());
    }
}
