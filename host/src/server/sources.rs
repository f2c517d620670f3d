//! Connections per source address: the cap (`--max-connections-per-source`,
//! xinetd's `per_source`), the rule for a full server — the longest-idle
//! connection of the busiest source makes room — and the rule for a full
//! waiting room — the source with the most connections waiting gives one
//! up — so that one source, or many, can neither take every slot nor keep
//! other sources out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::gate::source_key;
use crate::wasm::Activity;

/// One connection of a source.
#[derive(Debug)]
struct Entry {
    /// Told to close the connection when it is evicted.
    evict: CancellationToken,
    /// When it last moved bytes.
    activity: Arc<Activity>,
    /// Whether it holds a slot (only those can make room).
    serving: bool,
}

/// Every stream connection of a service, by source (its address; an IPv6
/// client's /64, see [`source_key`]).
#[derive(Debug)]
pub(super) struct Sources {
    /// The most connections one source may have, serving or waiting.
    per_source: usize,
    /// The connections, by source, each under its id.
    by_source: Mutex<HashMap<IpAddr, HashMap<u64, Entry>>>,
}

/// A connection's place in [`Sources`]; leaving drops it.
#[derive(Debug)]
pub(super) struct Registration {
    sources: Arc<Sources>,
    source: IpAddr,
    id: u64,
}

impl Sources {
    pub(super) fn new(per_source: usize) -> Arc<Self> {
        Arc::new(Self {
            per_source: per_source.max(1),
            by_source: Mutex::new(HashMap::new()),
        })
    }

    /// Registers connection `id` from `source`, or refuses it (`None`) when
    /// the source has its `per_source` connections already; evicting it
    /// cancels `evict`.
    pub(super) fn register(
        self: &Arc<Self>,
        source: IpAddr,
        id: u64,
        activity: Arc<Activity>,
        evict: CancellationToken,
    ) -> Option<Registration> {
        let source = source_key(source);
        let mut by_source = self.by_source.lock().ok()?;
        let connections = by_source.entry(source).or_default();
        if connections.len() >= self.per_source {
            return None;
        }
        connections.insert(
            id,
            Entry {
                evict: evict.clone(),
                activity,
                serving: false,
            },
        );
        Some(Registration {
            sources: Arc::clone(self),
            source,
            id,
        })
    }

    /// The full-server rule, for a connection from `source` that found no
    /// free slot: when another source has more connections serving than
    /// `source` has in all, the longest-idle serving connection of the
    /// busiest source is evicted (its slot frees as it closes). Returns
    /// whether one was.
    pub(super) fn make_room_for(&self, source: IpAddr) -> bool {
        let source = source_key(source);
        let Ok(by_source) = self.by_source.lock() else {
            return false;
        };
        let ours = by_source.get(&source).map_or(0, HashMap::len);
        let busiest = by_source
            .iter()
            .filter(|(other, _)| **other != source)
            .map(|(_, conns)| {
                conns
                    .values()
                    .filter(|entry| entry.serving)
                    .collect::<Vec<_>>()
            })
            .max_by_key(Vec::len);
        let Some(busiest) = busiest.filter(|serving| serving.len() > ours) else {
            return false;
        };
        match busiest
            .iter()
            .filter(|entry| !entry.evict.is_cancelled())
            .min_by_key(|entry| entry.activity.last())
        {
            Some(victim) => {
                victim.evict.cancel();
                true
            }
            None => false,
        }
    }

    /// The waiting room is full: the source with the most connections
    /// waiting for a slot gives up its oldest waiting one (its task closes
    /// it), so the listener can take the next client. Returns whether one
    /// was.
    pub(super) fn shed_waiting(&self) -> bool {
        let Ok(by_source) = self.by_source.lock() else {
            return false;
        };
        let victim = by_source
            .values()
            .map(|conns| {
                conns
                    .iter()
                    .filter(|(_, entry)| !entry.serving && !entry.evict.is_cancelled())
                    .map(|(id, entry)| (*id, entry))
                    .collect::<Vec<_>>()
            })
            .max_by_key(Vec::len)
            .and_then(|waiting| waiting.into_iter().min_by_key(|(id, _)| *id));
        match victim {
            Some((_, entry)) => {
                entry.evict.cancel();
                true
            }
            None => false,
        }
    }

    /// Under pressure: up to `count` connections in service whose client
    /// has sent nothing at all and that have moved no byte for `silent_for`
    /// are evicted — the busiest sources' first, the longest idle first
    /// within them. Returns how many were.
    pub(super) fn evict_silent(&self, count: usize, silent_for: Duration) -> usize {
        let Ok(by_source) = self.by_source.lock() else {
            return 0;
        };
        let mut candidates: Vec<(usize, u64, &Entry)> = by_source
            .values()
            .flat_map(|conns| {
                let serving = conns.values().filter(|entry| entry.serving).count();
                conns.values().map(move |entry| (serving, entry))
            })
            .filter(|(_, entry)| {
                entry.serving
                    && !entry.evict.is_cancelled()
                    && entry.activity.bytes().0 == 0
                    && entry.activity.idle_for() >= silent_for
            })
            .map(|(serving, entry)| (serving, entry.activity.last(), entry))
            .collect();
        candidates.sort_by_key(|(serving, last, _)| (std::cmp::Reverse(*serving), *last));
        candidates
            .iter()
            .take(count)
            .map(|(_, _, entry)| entry.evict.cancel())
            .count()
    }
}

impl Registration {
    /// Marks the connection as holding a slot.
    pub(super) fn serving(&self) {
        if let Ok(mut by_source) = self.sources.by_source.lock()
            && let Some(entry) = by_source
                .get_mut(&self.source)
                .and_then(|conns| conns.get_mut(&self.id))
        {
            entry.serving = true;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Ok(mut by_source) = self.sources.by_source.lock()
            && let Some(conns) = by_source.get_mut(&self.source)
        {
            conns.remove(&self.id);
            if conns.is_empty() {
                by_source.remove(&self.source);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn a_source_gets_per_source_connections_and_no_more() {
        let sources = Sources::new(2);
        let a = sources.register(ip(1), 1, Activity::new(), CancellationToken::new());
        let b = sources.register(ip(1), 2, Activity::new(), CancellationToken::new());
        assert!(a.is_some() && b.is_some());
        assert!(
            sources
                .register(ip(1), 3, Activity::new(), CancellationToken::new())
                .is_none()
        );
        assert!(
            sources
                .register(ip(2), 4, Activity::new(), CancellationToken::new())
                .is_some()
        );
        drop(a);
        assert!(
            sources
                .register(ip(1), 5, Activity::new(), CancellationToken::new())
                .is_some()
        );
    }

    #[test]
    fn a_full_server_evicts_the_longest_idle_of_the_busiest_source() {
        let sources = Sources::new(10);
        let idle = Activity::new();
        let busy = Activity::new();
        let tokens: Vec<CancellationToken> = (0..3).map(|_| CancellationToken::new()).collect();
        let _held: Vec<Registration> = [(1, &idle), (2, &busy), (3, &busy)]
            .into_iter()
            .zip(&tokens)
            .map(|((id, activity), token)| {
                let registration = sources
                    .register(ip(1), id, Arc::clone(activity), token.clone())
                    .expect("room");
                registration.serving();
                registration
            })
            .collect();
        std::thread::sleep(std::time::Duration::from_millis(5));
        busy.touch();
        // The busiest source itself gets no eviction.
        assert!(!sources.make_room_for(ip(1)));
        let newcomer = sources
            .register(ip(2), 9, Activity::new(), CancellationToken::new())
            .expect("room");
        assert!(sources.make_room_for(ip(2)));
        assert!(tokens[0].is_cancelled(), "the idle one goes");
        assert!(!tokens[1].is_cancelled() && !tokens[2].is_cancelled());
        drop(newcomer);
    }
}
