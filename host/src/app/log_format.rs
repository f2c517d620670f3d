//! The text log format without colours, written for less CPU per line: the
//! same lines as tracing-subscriber's default (`Full`) format, with the
//! fields and the timestamp written directly instead of through its styled
//! visitor. Every request creates a span (its fields formatted at once) and
//! ends with an access line; with the default formatter those two were
//! about a sixth of a datagram's CPU (bench/RESULTS.md).
//!
//! ```text
//! 2026-12-07T07:00:30.924214Z  INFO conn{id=1 peer=127.0.0.1:39892 transport="tcp" handler="echo.wasm" version="a40dc7f44ec6"}: wasmserve::access: served outcome="ok" duration_ms=0.695 bytes_in=3 bytes_out=3
//! ```
//!
//! As in the default format, a message is written with terminal control
//! characters escaped, strings are quoted as `{:?}` quotes them, and `%`
//! and `?` values as they format themselves.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// Formats fields as `name=value`, separated by spaces.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PlainFields;

thread_local! {
    /// Where a set of fields is written first: a span's fields are kept as
    /// a string, which is then allocated once at its size instead of
    /// growing field by field.
    static SCRATCH: RefCell<String> = const { RefCell::new(String::new()) };
}

/// The scratch string's capacity kept between uses.
const SCRATCH_KEPT: usize = 4096;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut text) => {
                text.clear();
                let recorded = record(Writer::new(&mut *text), fields);
                let written = writer.write_str(&text);
                if text.capacity() > SCRATCH_KEPT {
                    *text = String::new();
                }
                recorded.and(written)
            }
            // A field's own formatting logged a line: straight through.
            Err(_) => record(writer, fields),
        })
    }
}

fn record<R: RecordFields>(writer: Writer<'_>, fields: R) -> fmt::Result {
    let mut visitor = PlainVisitor {
        writer,
        first: true,
        result: Ok(()),
    };
    fields.record(&mut visitor);
    visitor.result
}

/// Timestamps as RFC 3339 in UTC with microseconds
/// (`2026-12-07T07:00:30.924214Z`), written in one piece.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct UtcMicros;

impl FormatTime for UtcMicros {
    fn format_time(&self, writer: &mut Writer<'_>) -> fmt::Result {
        write!(
            writer,
            "{}",
            humantime::format_rfc3339_micros(SystemTime::now())
        )
    }
}

struct PlainVisitor<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    /// The space before every field but the first.
    fn separate(&mut self) -> fmt::Result {
        if self.first {
            self.first = false;
            Ok(())
        } else {
            self.writer.write_char(' ')
        }
    }

    /// The separator and `name=` of a field that is not the message; false
    /// for a field to leave out (`log.*`, which the `log` bridge sets and
    /// the line already shows).
    fn begin(&mut self, field: &Field) -> Result<bool, fmt::Error> {
        let name = field.name();
        if name.starts_with("log.") {
            return Ok(false);
        }
        self.separate()?;
        self.writer
            .write_str(name.strip_prefix("r#").unwrap_or(name))?;
        self.writer.write_char('=')?;
        Ok(true)
    }

    fn record(&mut self, write: impl FnOnce(&mut Self) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = write(self);
        }
    }

    /// The message, with terminal control characters escaped.
    fn message(&mut self, message: &dyn fmt::Debug) -> fmt::Result {
        self.separate()?;
        write!(
            ControlEscaping {
                inner: &mut self.writer
            },
            "{message:?}"
        )
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(|this| {
            if this.begin(field)? {
                this.writer.write_str(itoa::Buffer::new().format(value))?;
            }
            Ok(())
        });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(|this| {
            if this.begin(field)? {
                this.writer.write_str(itoa::Buffer::new().format(value))?;
            }
            Ok(())
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(|this| {
            if this.begin(field)? {
                this.writer
                    .write_str(if value { "true" } else { "false" })?;
            }
            Ok(())
        });
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(|this| {
            if field.name() == "message" {
                return this.message(&format_args!("{value}"));
            }
            if !this.begin(field)? {
                return Ok(());
            }
            // `{:?}` would give the same text, one character at a time.
            if value.bytes().all(is_plain) {
                this.writer.write_char('"')?;
                this.writer.write_str(value)?;
                this.writer.write_char('"')
            } else {
                write!(this.writer, "{value:?}")
            }
        });
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.record(|this| {
            if !this.begin(field)? {
                return Ok(());
            }
            write!(
                ControlEscaping {
                    inner: &mut this.writer
                },
                "{value}"
            )?;
            if let Some(source) = value.source() {
                write!(this.writer, " {}.sources=[", field.name())?;
                let mut next = Some(source);
                let mut first = true;
                while let Some(error) = next {
                    if !first {
                        this.writer.write_str(", ")?;
                    }
                    first = false;
                    write!(
                        ControlEscaping {
                            inner: &mut this.writer
                        },
                        "{error}"
                    )?;
                    next = error.source();
                }
                this.writer.write_char(']')?;
            }
            Ok(())
        });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(|this| {
            if field.name() == "message" {
                return this.message(value);
            }
            if this.begin(field)? {
                write!(this.writer, "{value:?}")?;
            }
            Ok(())
        });
    }
}

/// A byte `{:?}` leaves as it is inside a string's quotes.
fn is_plain(byte: u8) -> bool {
    (0x20..0x7f).contains(&byte) && byte != b'"' && byte != b'\\'
}

/// Writes through to `inner`, with the characters a terminal would act on
/// (ESC, BEL, BS, FF, DEL and the C1 controls) written as escapes, as the
/// default format does for messages.
struct ControlEscaping<'a, W> {
    inner: &'a mut W,
}

impl<W: fmt::Write> fmt::Write for ControlEscaping<'_, W> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        // C1 controls are U+0080..=U+009F, encoded as 0xC2 0x80..=0x9F.
        if !text
            .bytes()
            .any(|byte| matches!(byte, 0x1b | 0x07 | 0x08 | 0x0c | 0x7f | 0xc2))
        {
            return self.inner.write_str(text);
        }
        for ch in text.chars() {
            match ch {
                '\x1b' => self.inner.write_str("\\x1b")?,
                '\x07' => self.inner.write_str("\\x07")?,
                '\x08' => self.inner.write_str("\\x08")?,
                '\x0c' => self.inner.write_str("\\x0c")?,
                '\x7f' => self.inner.write_str("\\x7f")?,
                '\u{80}'..='\u{9f}' => write!(self.inner, "\\u{{{:x}}}", u32::from(ch))?,
                _ => self.inner.write_char(ch)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;

    use super::{PlainFields, UtcMicros};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            if let Ok(mut captured) = self.0.lock() {
                captured.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer \x1b[31mfailure")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner cause")]
    struct Inner;

    /// Every kind of field this project logs, in a span and an event.
    fn log_every_kind() {
        let peer: std::net::SocketAddr = ([127, 0, 0, 1], 39892).into();
        let span = tracing::info_span!(
            "conn",
            id = 7u64,
            peer = %peer,
            transport = "tcp",
            r#type = "quoted \"and\" \\ escaped\u{1b}",
        );
        let _entered = span.enter();
        let error = Outer(Inner);
        tracing::warn!(
            target: "wasmserve::access",
            outcome = "ok",
            duration_ms = 0.695,
            signed = -3i64,
            flag = true,
            elapsed = ?std::time::Duration::from_millis(12),
            error = &error as &(dyn std::error::Error + 'static),
            "served \x1b[2J text \u{9b} and \u{e9}"
        );
    }

    fn captured(
        with: impl FnOnce(Captured) -> Box<dyn tracing::Subscriber + Send + Sync>,
    ) -> String {
        let out = Captured::default();
        tracing::subscriber::with_default(with(out.clone()), log_every_kind);
        let bytes = out.0.lock().map(|bytes| bytes.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn lines_are_the_default_formats_lines() {
        let default = captured(|out| {
            Box::new(
                tracing_subscriber::fmt()
                    .with_writer(out)
                    .with_ansi(false)
                    .without_time()
                    .finish(),
            )
        });
        let plain = captured(|out| {
            Box::new(
                tracing_subscriber::fmt()
                    .with_writer(out)
                    .with_ansi(false)
                    .without_time()
                    .fmt_fields(PlainFields)
                    .finish(),
            )
        });
        assert!(
            default.contains("served \\x1b[2J text \\u{9b}"),
            "{default}"
        );
        assert_eq!(plain, default);
    }

    #[test]
    fn timestamps_have_the_default_shape() {
        let line = captured(|out| {
            Box::new(
                tracing_subscriber::fmt()
                    .with_writer(out)
                    .with_ansi(false)
                    .with_timer(UtcMicros)
                    .fmt_fields(PlainFields)
                    .finish(),
            )
        });
        let stamp = line.split(' ').next().unwrap_or_default();
        // 2026-12-07T07:00:30.924214Z
        assert_eq!(stamp.len(), 27, "{line}");
        assert_eq!(stamp.as_bytes().get(10), Some(&b'T'), "{line}");
        assert!(stamp.ends_with('Z'), "{line}");
    }
}
