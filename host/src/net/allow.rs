//! Where a guest may connect: the operator's allow-list
//! (`--allow-connect`, `allow_connect = [...]`). Each entry is an address
//! or network and a port or port range: `127.0.0.1:6379`, `10.0.0.0/8:5432`,
//! `[::1]:8000-8100`, `db.internal:5432`. Host names are resolved once, at
//! start, and the addresses found are pinned: a later DNS answer cannot
//! widen the list.

use std::fmt;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::sync::Arc;

use super::IpNet;

/// One allow-list entry as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct AllowEntry {
    host: AllowHost,
    ports: RangeInclusive<u16>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum AllowHost {
    /// An address or a network.
    Net(IpNet),
    /// A name, resolved at start.
    Name(String),
}

/// One resolved rule: a network and a port range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AllowRule {
    net: IpNet,
    ports: RangeInclusive<u16>,
    /// The entry it came from, as written (a metrics label).
    label: Arc<str>,
}

impl fmt::Display for AllowEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

const SHAPE: &str = "expected HOST:PORT, HOST:LOW-HIGH, CIDR:PORT or [IPv6]:PORT, e.g. 127.0.0.1:6379, 10.0.0.0/8:5432, [::1]:8000-8100, db.internal:5432";

impl FromStr for AllowEntry {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (host, ports) = match text.strip_prefix('[') {
            Some(rest) => {
                let (host, ports) = rest
                    .split_once("]:")
                    .ok_or_else(|| format!("{text:?}: {SHAPE}"))?;
                (host, ports)
            }
            None => text
                .rsplit_once(':')
                .ok_or_else(|| format!("{text:?}: {SHAPE}"))?,
        };
        let port = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{text:?}: bad port {p:?}; {SHAPE}"))
        };
        let ports = match ports.split_once('-') {
            Some((low, high)) => port(low)?..=port(high)?,
            None => port(ports)?..=port(ports)?,
        };
        if ports.is_empty() {
            return Err(format!("{text:?}: the port range is empty"));
        }
        let host = match host.contains('/') || host.parse::<IpAddr>().is_ok() {
            true => AllowHost::Net(
                host.parse::<IpNet>()
                    .map_err(|err| format!("{text:?}: {err}"))?,
            ),
            false if !host.is_empty() && !host.contains(char::is_whitespace) => {
                AllowHost::Name(host.to_owned())
            }
            false => return Err(format!("{text:?}: {SHAPE}")),
        };
        Ok(Self {
            host,
            ports,
            text: text.to_owned(),
        })
    }
}

impl AllowEntry {
    /// The rules this entry grants: host names resolved now (blocking: call
    /// off the runtime), each address found pinned.
    pub(crate) fn resolve(&self) -> Result<Vec<AllowRule>, String> {
        match &self.host {
            AllowHost::Net(net) => Ok(vec![AllowRule {
                net: *net,
                ports: self.ports.clone(),
                label: self.text.as_str().into(),
            }]),
            AllowHost::Name(name) => {
                let found: Vec<SocketAddr> = (name.as_str(), *self.ports.start())
                    .to_socket_addrs()
                    .map_err(|err| {
                        format!("--allow-connect {self}: cannot resolve {name:?}: {err}")
                    })?
                    .collect();
                if found.is_empty() {
                    return Err(format!("--allow-connect {self}: {name:?} has no address"));
                }
                Ok(found
                    .into_iter()
                    .map(|addr| AllowRule {
                        net: IpNet::host(addr.ip()),
                        ports: self.ports.clone(),
                        label: self.text.as_str().into(),
                    })
                    .collect())
            }
        }
    }
}

impl AllowRule {
    /// The entry it came from, as written.
    pub(crate) fn label(&self) -> Arc<str> {
        Arc::clone(&self.label)
    }

    /// Whether `addr` falls in this rule.
    pub(crate) fn permits(&self, addr: SocketAddr) -> bool {
        self.ports.contains(&addr.port()) && self.net.contains(addr.ip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<AllowRule> {
        text.parse::<AllowEntry>()
            .and_then(|entry| entry.resolve())
            .unwrap_or_default()
    }

    fn permitted(text: &str, addr: &str) -> bool {
        let addr: SocketAddr = addr.parse().unwrap_or_else(|_| ([0, 0, 0, 0], 0).into());
        rules(text).iter().any(|rule| rule.permits(addr))
    }

    #[test]
    fn addresses_networks_and_port_ranges() {
        assert!(permitted("127.0.0.1:6379", "127.0.0.1:6379"));
        assert!(!permitted("127.0.0.1:6379", "127.0.0.1:6380"));
        assert!(!permitted("127.0.0.1:6379", "127.0.0.2:6379"));
        assert!(permitted("10.0.0.0/8:5432", "10.20.30.40:5432"));
        assert!(!permitted("10.0.0.0/8:5432", "11.0.0.1:5432"));
        assert!(permitted("127.0.0.1:8000-8100", "127.0.0.1:8050"));
        assert!(!permitted("127.0.0.1:8000-8100", "127.0.0.1:8101"));
        assert!(permitted("[::1]:80", "[::1]:80"));
        assert!(permitted("127.0.0.1:80", "[::ffff:127.0.0.1]:80"));
        assert!(permitted("0.0.0.0/0:443", "8.8.8.8:443"));
        assert!(permitted("localhost:9000", "127.0.0.1:9000"));
    }

    #[test]
    fn bad_entries_say_what_is_expected() {
        for bad in [
            "6379",
            "127.0.0.1:0",
            "127.0.0.1:9-1",
            "10.0.0.0/33:1",
            "[::1:80",
            "a b:1",
        ] {
            let err = bad.parse::<AllowEntry>().err().unwrap_or_default();
            assert!(!err.is_empty(), "{bad} parsed");
        }
    }
}
