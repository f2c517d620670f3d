//! Which listening sockets a reload keeps, binds and closes: the pure part
//! of [`super::Supervisor::apply`], tested on its own.

use super::spec::ServiceSpec;
use crate::net::ListenSpec;

/// A listening socket as a reload sees it: its spec, and for a spec with
/// port 0 (any free port, so two services' `tcp:0` are two sockets) the
/// service that owns it.
pub(super) type SocketKey = (String, ListenSpec);

pub(super) fn socket_key(service: &str, spec: &ListenSpec) -> SocketKey {
    let any_port = spec.inet_addr().is_some_and(|addr| addr.port() == 0);
    let owner = if any_port { service } else { "" };
    (owner.to_owned(), spec.clone())
}

pub(super) fn socket_keys(spec: &ServiceSpec) -> impl Iterator<Item = SocketKey> + '_ {
    spec.listen
        .iter()
        .map(|listen| socket_key(&spec.name, listen))
}

/// What applying a new set of listen specs does to the sockets of the
/// running ones.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct SocketPlan {
    /// Running and still wanted: handed over, never closed.
    pub(super) keep: Vec<SocketKey>,
    /// Wanted and not running: bound before anything changes.
    pub(super) bind: Vec<SocketKey>,
    /// Running and no longer wanted: closed once their service stops.
    pub(super) close: Vec<SocketKey>,
}

impl SocketPlan {
    pub(super) fn new(running: &[SocketKey], wanted: &[SocketKey]) -> Self {
        let mut plan = SocketPlan::default();
        for spec in wanted {
            let list = match running.contains(spec) {
                true => &mut plan.keep,
                false => &mut plan.bind,
            };
            if !list.contains(spec) {
                list.push(spec.clone());
            }
        }
        for spec in running {
            if !wanted.contains(spec) && !plan.close.contains(spec) {
                plan.close.push(spec.clone());
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(service: &str, texts: &[&str]) -> Vec<SocketKey> {
        texts
            .iter()
            .map(|t| socket_key(service, &t.parse().expect("valid")))
            .collect()
    }

    #[test]
    fn a_reload_keeps_adds_and_closes_sockets() {
        let running = keys("a", &["tcp:8100", "udp:8100", "unix:/tmp/a", "tcp:0"]);
        let wanted = keys("a", &["tcp:8100", "unix:/tmp/a", "tcp:8101", "tcp:0"]);
        let plan = SocketPlan::new(&running, &wanted);
        assert_eq!(
            plan,
            SocketPlan {
                keep: keys("a", &["tcp:8100", "unix:/tmp/a", "tcp:0"]),
                bind: keys("a", &["tcp:8101"]),
                close: keys("a", &["udp:8100"]),
            }
        );
    }

    #[test]
    fn each_service_gets_its_own_any_port_socket() {
        let mut wanted = keys("a", &["tcp:0", "udp:1"]);
        wanted.extend(keys("b", &["tcp:0"]));
        let plan = SocketPlan::new(&[], &wanted);
        assert_eq!(plan.bind.len(), 3, "{plan:?}");
        assert!(plan.keep.is_empty() && plan.close.is_empty());
    }
}
