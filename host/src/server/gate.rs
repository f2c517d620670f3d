//! The gate in front of a service: which sources may connect at all
//! (`--allow-from`, `--deny-from`; deny wins), how fast one source may open
//! connections (`--max-connection-rate`, a token bucket per source), and
//! which sources may speak the PROXY protocol (`--proxy-protocol`). Checked
//! before anything else is spent on a connection; a refusal closes it at
//! once.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::net::{IpNet, canonical};

/// The most sources whose rate is tracked at once. A source whose bucket
/// has refilled is forgotten first (it is as if new); past this many busy
/// sources, new ones are refused until buckets refill.
const MAX_TRACKED_SOURCES: usize = 65_536;

/// How a service screens its sources, as configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AccessRules {
    /// When not empty, only these networks may connect.
    pub(crate) allow_from: Vec<IpNet>,
    /// These networks may never connect (wins over `allow_from`).
    pub(crate) deny_from: Vec<IpNet>,
    /// New connections per source per period; `None`: no limit.
    pub(crate) max_connection_rate: Option<ConnectionRate>,
    /// When not empty, every stream connection must begin with a PROXY
    /// protocol header and come from one of these networks (the load
    /// balancers); the client's address is the header's.
    pub(crate) proxy_from: Vec<IpNet>,
}

impl fmt::Display for AccessRules {
    /// `allow-from=10.0.0.0/8 deny-from=10.0.0.9/32 rate=10/s
    /// proxy-protocol=127.0.0.1/32`: what differs from the defaults.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets = |list: &[IpNet]| {
            list.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut parts = Vec::new();
        for (name, list) in [
            ("allow-from", &self.allow_from),
            ("deny-from", &self.deny_from),
            ("proxy-protocol", &self.proxy_from),
        ] {
            if !list.is_empty() {
                parts.push(format!("{name}={}", nets(list)));
            }
        }
        if let Some(rate) = self.max_connection_rate {
            parts.push(format!("rate={rate}"));
        }
        f.write_str(&parts.join(" "))
    }
}

impl AccessRules {
    /// Whether stream connections carry a PROXY protocol header.
    pub(crate) fn proxy_protocol(&self) -> bool {
        !self.proxy_from.is_empty()
    }
}

/// A rate: `count` connections per `period`, written `10/s`, `600/m`,
/// `1000/h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionRate {
    pub(crate) count: u32,
    pub(crate) period: Duration,
}

impl FromStr for ConnectionRate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let shape = "expected COUNT/s, COUNT/m or COUNT/h, e.g. 10/s";
        let (count, unit) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: {shape}"))?;
        let count = count
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|count| *count > 0)
            .ok_or_else(|| {
                format!("{text:?}: the count must be a whole number above 0; {shape}")
            })?;
        let period = match unit.trim() {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => return Err(format!("{text:?}: {shape}")),
        };
        Ok(Self { count, period })
    }
}

impl fmt::Display for ConnectionRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.period.as_secs() {
            60 => "m",
            3600 => "h",
            _ => "s",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// Why the gate closed a connection (the metrics' `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// In `--deny-from`, or not in a non-empty `--allow-from`.
    Denied,
    /// Over `--max-connection-rate`.
    Rate,
    /// Not from a `--proxy-protocol` network.
    UntrustedProxy,
    /// No valid PROXY header in time.
    BadProxyHeader,
    /// Over `--max-connections-per-source`.
    PerSource,
    /// Its TLS handshake failed or timed out.
    TlsHandshake,
    /// Served but idle on a full server: closed so that a newcomer from a
    /// less busy source gets its slot (the full-server rule).
    Evicted,
    /// Waiting for a slot when the service's waiting room was full: the
    /// source with the most waiting connections gave one up, so accepting
    /// goes on.
    Shed,
}

impl Refusal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::Rate => "rate",
            Self::UntrustedProxy => "untrusted_proxy",
            Self::BadProxyHeader => "bad_proxy_header",
            Self::PerSource => "per_source",
            Self::TlsHandshake => "tls_handshake",
            Self::Evicted => "evicted",
            Self::Shed => "shed",
        }
    }

    /// What the log line says.
    pub(crate) fn explain(self) -> &'static str {
        match self {
            Self::Denied => "its source is not allowed (--allow-from / --deny-from)",
            Self::Rate => "its source opens connections faster than --max-connection-rate",
            Self::UntrustedProxy => {
                "PROXY protocol is on and its source is not in --proxy-protocol"
            }
            Self::BadProxyHeader => "it did not begin with a valid PROXY protocol header",
            Self::PerSource => "its source has --max-connections-per-source connections already",
            Self::TlsHandshake => "its TLS handshake failed",
            Self::Evicted => {
                "the server is full: the longest-idle connection of the busiest source made room for a newcomer"
            }
            Self::Shed => {
                "the waiting room is full: the source with the most connections waiting for a slot gave one up"
            }
        }
    }
}

/// One source's token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The rules, and the buckets of the sources seen lately.
#[derive(Debug)]
pub(crate) struct Gate {
    rules: AccessRules,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl Gate {
    pub(crate) fn new(rules: AccessRules) -> Self {
        Self {
            rules,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn rules(&self) -> &AccessRules {
        &self.rules
    }

    /// Whether `source` may be served at all (the access lists).
    pub(crate) fn allows(&self, source: IpAddr) -> Result<(), Refusal> {
        let rules = &self.rules;
        let listed = |nets: &[IpNet]| nets.iter().any(|net| net.contains(source));
        if listed(&rules.deny_from) || (!rules.allow_from.is_empty() && !listed(&rules.allow_from))
        {
            return Err(Refusal::Denied);
        }
        Ok(())
    }

    /// Whether `peer` may send a PROXY header (it must, when they are on).
    pub(crate) fn trusts_proxy(&self, peer: IpAddr) -> Result<(), Refusal> {
        match self.rules.proxy_from.iter().any(|net| net.contains(peer)) {
            true => Ok(()),
            false => Err(Refusal::UntrustedProxy),
        }
    }

    /// Takes a token for a new connection from `source`: the access lists,
    /// then its rate.
    pub(crate) fn admit(&self, source: IpAddr) -> Result<(), Refusal> {
        self.allows(source)?;
        let Some(rate) = self.rules.max_connection_rate else {
            return Ok(());
        };
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let capacity = f64::from(rate.count);
        let per_second = capacity / rate.period.as_secs_f64();
        let refill = |bucket: &Bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            (bucket.tokens + elapsed * per_second).min(capacity)
        };
        let key = source_key(source);
        if !buckets.contains_key(&key) && buckets.len() >= MAX_TRACKED_SOURCES {
            buckets.retain(|_, bucket| refill(bucket) < capacity);
            if buckets.len() >= MAX_TRACKED_SOURCES {
                return Err(Refusal::Rate);
            }
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            updated: now,
        });
        bucket.tokens = refill(bucket);
        bucket.updated = now;
        if bucket.tokens < 1.0 {
            return Err(Refusal::Rate);
        }
        bucket.tokens -= 1.0;
        Ok(())
    }
}

/// The key a source is counted under — for its rate, its cap, the
/// full-server rule and the order of slots: its IPv4 address (an
/// IPv4-mapped IPv6 address is that IPv4 address), or its IPv6 /64 (one
/// site's prefix: an IPv6 client has billions of addresses).
pub(super) fn source_key(source: IpAddr) -> IpAddr {
    match canonical(source) {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & (u128::MAX << 64);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(allow: &[&str], deny: &[&str], rate: Option<&str>) -> Gate {
        let nets = |list: &[&str]| list.iter().filter_map(|net| net.parse().ok()).collect();
        Gate::new(AccessRules {
            allow_from: nets(allow),
            deny_from: nets(deny),
            max_connection_rate: rate.and_then(|rate| rate.parse().ok()),
            proxy_from: Vec::new(),
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]))
    }

    #[test]
    fn deny_wins_over_allow() {
        let gate = gate(&["127.0.0.0/8"], &["127.0.0.3"], None);
        assert_eq!(gate.admit(ip("127.0.0.2")), Ok(()));
        assert_eq!(gate.admit(ip("127.0.0.3")), Err(Refusal::Denied));
        assert_eq!(gate.admit(ip("10.0.0.1")), Err(Refusal::Denied));
        assert_eq!(gate.admit(ip("::ffff:127.0.0.3")), Err(Refusal::Denied));
    }

    #[test]
    fn each_source_has_its_own_bucket() {
        let gate = gate(&[], &[], Some("3/m"));
        for _ in 0..3 {
            assert_eq!(gate.admit(ip("127.0.0.2")), Ok(()));
        }
        assert_eq!(gate.admit(ip("127.0.0.2")), Err(Refusal::Rate));
        assert_eq!(gate.admit(ip("127.0.0.3")), Ok(()));
        // One IPv6 /64 is one source.
        for _ in 0..3 {
            assert_eq!(gate.admit(ip("2001:db8::1")), Ok(()));
        }
        assert_eq!(gate.admit(ip("2001:db8::2")), Err(Refusal::Rate));
    }

    #[test]
    fn rates_parse_and_print() {
        assert_eq!(
            "10/s".parse::<ConnectionRate>().map(|r| r.to_string()),
            Ok("10/s".into())
        );
        assert_eq!("600/m".parse::<ConnectionRate>().map(|r| r.count), Ok(600));
        for bad in ["10", "0/s", "x/s", "10/d", "-1/s"] {
            assert!(bad.parse::<ConnectionRate>().is_err(), "{bad}");
        }
    }
}
