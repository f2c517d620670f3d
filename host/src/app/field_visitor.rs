//! The visitor behind `log_format.rs`'s `PlainFields`:
//! writes each field as `name=value`, as tracing-subscriber's default
//! visitor does without colours, and escapes the terminal control
//! characters of messages and errors as it does.

use std::fmt::{self, Write as _};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;

/// Writes `fields` to `writer`, separated by spaces.
pub(super) fn record_fields<R: RecordFields>(writer: Writer<'_>, fields: R) -> fmt::Result {
    let mut visitor = PlainVisitor {
        writer,
        first: true,
        result: Ok(()),
    };
    fields.record(&mut visitor);
    visitor.result
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

    /// An integer field, written with `itoa`.
    fn integer(&mut self, field: &Field, value: impl itoa::Integer) {
        self.record(|this| {
            if this.begin(field)? {
                this.writer.write_str(itoa::Buffer::new().format(value))?;
            }
            Ok(())
        });
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
        self.integer(field, value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.integer(field, value);
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
