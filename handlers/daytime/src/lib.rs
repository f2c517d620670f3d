//! `daytime`: the Daytime Protocol (RFC 867). It answers with the current
//! date and time as one line of text (`Mon Nov 30 06:58:09 2026 UTC`), over
//! TCP (then closes) or as a reply to any UDP datagram.
//!
//! Build: `cargo build --release --target wasm32-wasip2 -p daytime`
//! Serve: `wasmserve --handler target/wasm32-wasip2/release/daytime.wasm --tcp 8013 --udp 8013`

use std::time::{SystemTime, UNIX_EPOCH};

use wasmserve_sdk::{Error, Request};

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

fn handle(request: Request) -> Result<(), Error> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|err| Error::Other(format!("clock before 1970: {err}")))?
        .as_secs();
    request.reply(format!("{}\r\n", daytime(seconds)).as_bytes())
}

/// `Mon Nov 30 06:58:09 2026 UTC` for `seconds` since 1970-01-01 UTC.
fn daytime(seconds: u64) -> String {
    let days = seconds / 86_400;
    let (year, month, day) = civil_from_days(days);
    let time = seconds % 86_400;
    format!(
        "{} {} {day:2} {:02}:{:02}:{:02} {year} UTC",
        WEEKDAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        time / 3600,
        time % 3600 / 60,
        time % 60,
    )
}

/// Year, month (1-12) and day (1-31) of a day count since 1970-01-01, by
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

wasmserve_sdk::export_handler!(handle);

#[cfg(test)]
mod tests {
    use super::daytime;

    #[test]
    fn formats_known_instants() {
        assert_eq!(daytime(0), "Thu Jan  1 00:00:00 1970 UTC");
        assert_eq!(daytime(951_782_400), "Tue Feb 29 00:00:00 2000 UTC");
        assert_eq!(daytime(1_796_021_889), "Mon Nov 30 06:58:09 2026 UTC");
    }
}
