//! The flags of one service (`--handler`, listeners, socket options,
//! limits) or `--config FILE`, shared by serving and `check`, and their
//! mapping to a [`ServiceSpec`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args};

use super::{parse_datagram_size, parse_duration, parse_setting};
use crate::net::{ListenAddr, ListenOptions, ListenSpec, MAX_UDP_PAYLOAD, parse_mode};
use crate::service::{DEFAULT_PER_SOURCE, MAX_CONNECTIONS, MAX_MEMORY_MIB, ServiceSpec};
use crate::wasm::ConnectionLimits;

/// The flags that describe what to serve: `--handler` with its listeners,
/// limits and settings, or `--config FILE`. Shared by serving and `check`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ServiceArgs {
    /// The handler component (.wasm) that serves every request. SIGHUP
    /// reloads it from the same path.
    #[arg(long, value_name = "PATH")]
    pub(crate) handler: Option<PathBuf>,

    /// Run the services of a configuration file (several handlers, each
    /// with its listeners, limits and settings) instead of --handler.
    #[arg(long, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Reload the handler whenever its file changes (new connections get
    /// the new version; connections in flight finish on the old one).
    #[arg(long)]
    pub(crate) watch: bool,

    /// A setting the handler reads through the `config` interface (e.g.
    /// --set greeting=hello). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub(crate) settings: Vec<(String, String)>,

    /// Serve TCP on [HOST:]PORT. A bare port binds 127.0.0.1 (loopback only);
    /// use 0.0.0.0:PORT or [::]:PORT for all interfaces, port 0 for any free
    /// port. Repeatable, like every listener flag.
    #[arg(long, value_name = "[HOST:]PORT", help_heading = "Listeners")]
    pub(crate) tcp: Vec<ListenAddr>,

    /// Serve UDP on [HOST:]PORT: each datagram is one request, and each
    /// write of the handler sends one datagram back to the sender.
    #[arg(long, value_name = "[HOST:]PORT", help_heading = "Listeners")]
    pub(crate) udp: Vec<ListenAddr>,

    /// Serve a Unix stream socket at PATH. A stale socket file is replaced;
    /// a live socket or another kind of file is refused. Removed at exit.
    #[arg(long, value_name = "PATH", help_heading = "Listeners")]
    pub(crate) unix: Vec<PathBuf>,

    /// Serve a Unix datagram socket at PATH. Replies go to the sender's
    /// bound path; an unbound sender gets no reply.
    #[arg(long = "unix-dgram", value_name = "PATH", help_heading = "Listeners")]
    pub(crate) unix_dgram: Vec<PathBuf>,

    /// Serve the already-bound socket inherited as descriptor N (what
    /// Python's socket.fromfd does); the transport is read from the socket.
    #[arg(long = "listen-fd", value_name = "N", help_heading = "Listeners")]
    pub(crate) listen_fd: Vec<i32>,

    /// inetd/xinetd "nowait" mode: serve the one connection on stdin and
    /// stdout, then exit (log with --access-log FILE: stderr goes nowhere
    /// when it is the socket too). A connected socket passed by systemd
    /// (Accept=yes) or --listen-fd is served the same way.
    #[arg(long, help_heading = "Listeners")]
    pub(crate) inetd: bool,

    /// Permissions of the Unix socket files, in octal (e.g. 660).
    #[arg(long, value_name = "MODE", value_parser = parse_mode, help_heading = "Socket options")]
    pub(crate) unix_mode: Option<u32>,

    /// Owner of the Unix socket files (a user name or uid), e.g. so that
    /// only www-data may connect (with --unix-mode 600).
    #[arg(long, value_name = "USER", value_parser = parse_owner, help_heading = "Socket options")]
    pub(crate) unix_owner: Option<u32>,

    /// Group of the Unix socket files (a group name or gid).
    #[arg(long, value_name = "GROUP", value_parser = crate::net::group, help_heading = "Socket options")]
    pub(crate) unix_group: Option<u32>,

    /// Listen backlog: connections the kernel queues while all
    /// --max-connections are busy.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1024,
        help_heading = "Socket options"
    )]
    pub(crate) backlog: i32,

    /// Set TCP_NODELAY on accepted TCP connections (small writes go out at
    /// once).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, help_heading = "Socket options")]
    pub(crate) tcp_nodelay: bool,

    /// Set SO_REUSEADDR on TCP and UDP sockets (restart without waiting out
    /// TIME_WAIT).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set, help_heading = "Socket options")]
    pub(crate) reuse_addr: bool,

    /// SO_RCVBUF of listening sockets, in bytes (default: the OS's).
    #[arg(long, value_name = "BYTES", help_heading = "Socket options")]
    pub(crate) recv_buffer: Option<usize>,

    /// The largest datagram served, in bytes; longer ones are dropped and
    /// logged.
    #[arg(long, value_name = "BYTES", default_value_t = MAX_UDP_PAYLOAD, value_parser = parse_datagram_size, help_heading = "Socket options")]
    pub(crate) max_datagram: usize,

    /// When a handler's read waits this long for a silent client, the read
    /// fails with `timed-out` (e.g. 30s; give a long one such as 30d to
    /// wait longer).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration, help_heading = "Limits")]
    pub(crate) idle_timeout: Duration,

    /// The idle timeout of a client that has sent nothing yet: a read that
    /// waits this long from the connection's start for its first byte fails
    /// with `timed-out`, so silent connections free their slots early
    /// (handlers that speak first are unaffected while they write).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration, help_heading = "Limits")]
    pub(crate) first_byte_timeout: Duration,

    /// How long a request goes on after its TCP client reset the
    /// connection (its reads and writes fail meanwhile) before it is ended
    /// and its instance, upstreams and subscriptions dropped. A client that
    /// only closes its side is not hung up: it may still read.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration, help_heading = "Limits")]
    pub(crate) hangup_grace: Duration,

    /// Serve datagrams (UDP, Unix datagram) with warm instances that are
    /// kept and reused, one datagram at a time each, instead of a fresh
    /// instance per datagram: several times faster, but a handler's memory
    /// and globals persist from one datagram (and sender) to the next.
    /// Stream connections always get a fresh instance.
    #[arg(long, help_heading = "Limits")]
    pub(crate) reuse_datagram_instances: bool,

    /// Requests (connections or datagrams) served at once; more clients wait
    /// (accepted, holding no instance) until one ends. Also sizes the
    /// instance pool and the waiting room.
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(*MAX_CONNECTIONS.start() as i64..=*MAX_CONNECTIONS.end() as i64), help_heading = "Limits")]
    pub(crate) max_connections: u32,

    /// Serve N requests (connections or datagrams), wait for them to finish,
    /// then exit 0, like socketserver's handle_request().
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_requests: Option<u64>,

    /// TCP connections one source (an IPv4 address, an IPv6 /64) may have
    /// at once, served or waiting; more are closed at once. With a full
    /// server, a newcomer from a less busy source makes room: the
    /// longest-idle connection of the busiest source is closed, and the
    /// freed slot goes to the source holding fewest.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_PER_SOURCE, value_parser = clap::value_parser!(u32).range(1..=*MAX_CONNECTIONS.end() as i64), help_heading = "Limits")]
    pub(crate) max_connections_per_source: u32,

    /// Linear memory one handler instance may grow to, in MiB; past it the
    /// guest's allocation fails (a Rust guest then aborts: its request ends).
    #[arg(long, value_name = "MIB", default_value_t = 64, value_parser = clap::value_parser!(u32).range(*MAX_MEMORY_MIB.start() as i64..=*MAX_MEMORY_MIB.end() as i64), help_heading = "Limits")]
    pub(crate) max_memory: u32,

    /// CPU time a request may use without waiting for its client (guest
    /// code, its start-up code and the host work it causes; the count
    /// restarts only when a read had to wait for the client), e.g. 1s,
    /// 200ms. Ends guests that spin or write forever.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration, help_heading = "Limits")]
    pub(crate) max_cpu: Duration,

    /// Longest a request may last from start to end, e.g. 10m (default: no
    /// limit).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Limits")]
    pub(crate) max_lifetime: Option<Duration>,

    /// Outbound connections and datagrams.
    #[command(flatten)]
    pub(crate) outbound: super::outbound_args::OutboundArgs,

    /// Shared state: buckets and channels.
    #[command(flatten)]
    pub(crate) state: super::state_args::StateArgs,

    /// Who may connect, how fast, through which load balancers.
    #[command(flatten)]
    pub(crate) access: super::access_args::AccessArgs,

    /// TLS for the TCP listeners.
    #[command(flatten)]
    pub(crate) tls: super::tls_args::TlsArgs,

    /// The service flags given explicitly on the command line (not left at
    /// their default), by clap id; filled in by [`Cli::parse_args`].
    #[arg(skip)]
    pub(crate) given: Vec<String>,
}

/// The ids of the [`ServiceArgs`] flags the user typed (or set through the
/// environment), as opposed to those left at their default.
pub(super) fn given_service_flags(matches: &ArgMatches) -> Vec<String> {
    let command = ServiceArgs::augment_args(clap::Command::new("service"));
    command
        .get_arguments()
        .map(|arg| arg.get_id().as_str())
        .filter(|id| {
            matches!(
                matches
                    .try_get_raw(id)
                    .ok()
                    .flatten()
                    .and(matches.value_source(id)),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        })
        .map(str::to_owned)
        .collect()
}

/// What the service flags describe.
#[derive(Debug)]
pub(crate) enum ServiceSource {
    /// One service, from `--handler` and the flags beside it.
    Flags(Box<ServiceSpec>),
    /// The services of a config file.
    File(PathBuf),
}

impl ServiceArgs {
    /// The service the flags describe (with the sockets systemd passed,
    /// `inherited`), or the config file to read. A usage error — a flag
    /// that `--config` makes meaningless, no `--handler` — is `Err` with
    /// the message.
    pub(crate) fn source(&self, inherited: &[i32]) -> Result<ServiceSource, String> {
        let Some(config) = &self.config else {
            let Some(handler) = &self.handler else {
                return Err("give --handler PATH (or --config FILE)".to_owned());
            };
            return Ok(ServiceSource::Flags(Box::new(
                self.spec(handler, inherited),
            )));
        };
        if let Some(flag) = self.given.iter().find(|id| *id != "config") {
            return Err(conflict_with_config(flag));
        }
        Ok(ServiceSource::File(config.clone()))
    }

    /// The one service the flags describe, serving `handler`.
    fn spec(&self, handler: &std::path::Path, inherited: &[i32]) -> ServiceSpec {
        let mut listen: Vec<ListenSpec> = Vec::new();
        listen.extend(self.tcp.iter().cloned().map(ListenSpec::Tcp));
        listen.extend(self.udp.iter().cloned().map(ListenSpec::Udp));
        listen.extend(self.unix.iter().cloned().map(ListenSpec::Unix));
        listen.extend(self.unix_dgram.iter().cloned().map(ListenSpec::UnixDgram));
        listen.extend(
            self.listen_fd
                .iter()
                .chain(inherited)
                .map(|fd| ListenSpec::Fd(*fd)),
        );
        if self.inetd {
            listen.push(ListenSpec::Fd(0));
        }
        ServiceSpec {
            listen,
            socket: ListenOptions {
                backlog: self.backlog,
                tcp_nodelay: self.tcp_nodelay,
                reuse_addr: self.reuse_addr,
                recv_buffer: self.recv_buffer,
                max_datagram: self.max_datagram,
                unix_mode: self.unix_mode,
                unix_owner: self.unix_owner,
                unix_group: self.unix_group,
            },
            max_connections: self.max_connections,
            max_connections_per_source: self.max_connections_per_source,
            limits: ConnectionLimits {
                max_memory_bytes: (self.max_memory as usize).saturating_mul(1024 * 1024),
                max_cpu: self.max_cpu,
                max_lifetime: self.max_lifetime,
                idle_timeout: Some(self.idle_timeout),
                first_byte_timeout: Some(self.first_byte_timeout),
                hangup_grace: self.hangup_grace,
            },
            settings: self.settings.iter().cloned().collect::<BTreeMap<_, _>>(),
            state: self.state.spec(),
            access: self.access.rules(),
            tls: self.tls.spec(),
            allow_connect: self.outbound.allow_connect.clone(),
            max_outbound: self.outbound.max_outbound,
            outbound_datagrams: self.outbound.datagram_budget(),
            connect_timeout: self.outbound.connect_timeout,
            watch: self.watch,
            reuse_datagram_instances: self.reuse_datagram_instances,
            ..ServiceSpec::for_handler(handler.to_owned())
        }
    }
}

/// A user name or uid, as its uid.
fn parse_owner(text: &str) -> Result<u32, String> {
    crate::net::user(text).map(|account| account.uid)
}

/// The usage error for service flag `id` given beside `--config`: where
/// the config file says the same thing.
fn conflict_with_config(id: &str) -> String {
    let flag = format!("--{}", id.replace('_', "-"));
    let instead = match id {
        "handler" => return "give either --config or --handler, not both".to_owned(),
        "max_requests" => return "--max-requests applies to --handler, not to --config".to_owned(),
        "tcp" | "udp" | "unix" | "unix_dgram" | "listen_fd" | "inetd" => {
            "listeners come from the config file's `listen` lists".to_owned()
        }
        "settings" => "give settings in the service's [service.settings] table".to_owned(),
        "allow_connect" => "write `allow_connect = [...]` in the service's table".to_owned(),
        id if let Some((_, key)) = super::tls_args::TLS_FLAGS
            .iter()
            .find(|(flag, _)| *flag == id) =>
        {
            format!("write `{key}` in the service's [service.tls] table")
        }
        id if super::access_args::ACCESS_FLAGS.contains(&id) => {
            format!("write `{id}` in the service's [service.access] table")
        }
        id if super::state_args::STATE_FLAGS.contains(&id) => {
            let key = match id {
                "state" => "backend",
                "share_bucket" => "shared_buckets",
                "share_topic" => "shared_topics",
                other => other,
            };
            format!("write `{key}` in the service's [service.state] table")
        }
        "watch" | "reuse_datagram_instances" => {
            format!("write `{id} = true` in the service's table")
        }
        "max_memory" => "write `max_memory_mib` in the service's [service.limits] table".to_owned(),
        "max_connections"
        | "max_connections_per_source"
        | "max_cpu"
        | "max_lifetime"
        | "idle_timeout"
        | "first_byte_timeout"
        | "hangup_grace"
        | "max_outbound"
        | "max_outbound_datagrams"
        | "max_outbound_datagram_bytes"
        | "connect_timeout" => {
            format!("write `{id}` in the service's [service.limits] table")
        }
        _ => format!("write `{id}` in the service's [service.socket] table"),
    };
    format!("{flag} cannot be used with --config: {instead}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::{CommandFactory, FromArgMatches};

    fn parse(args: &[&str]) -> Cli {
        let mut argv = vec!["wasmserve"];
        argv.extend(args);
        let matches = Cli::command()
            .try_get_matches_from(argv)
            .expect("valid flags");
        let mut cli = Cli::from_arg_matches(&matches).expect("valid flags");
        cli.service.given = given_service_flags(&matches);
        cli
    }

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_service_flag_is_refused_beside_config() {
        for (flag, value) in [
            ("--tcp", "1"),
            ("--max-cpu", "2s"),
            ("--max-memory", "8"),
            ("--idle-timeout", "1s"),
            ("--backlog", "4"),
            ("--set", "a=b"),
            ("--max-requests", "1"),
        ] {
            let cli = parse(&["--config", "w.toml", flag, value]);
            let err = cli.service.source(&[]).expect_err(flag);
            assert!(
                err.contains(flag) || err.contains("--max-requests"),
                "{flag}: {err}"
            );
        }
        let cli = parse(&["--config", "w.toml", "--watch"]);
        assert!(
            cli.service
                .source(&[])
                .expect_err("watch")
                .contains("watch = true")
        );
    }

    #[test]
    fn process_flags_are_allowed_beside_config() {
        let cli = parse(&["--config", "w.toml", "--drain-timeout", "1s", "--no-cache"]);
        assert!(matches!(
            cli.service.source(&[]),
            Ok(ServiceSource::File(_))
        ));
    }

    #[test]
    fn flags_describe_one_service() {
        let cli = parse(&[
            "--handler",
            "a/echo.wasm",
            "--tcp",
            "8100",
            "--unix",
            "/tmp/e",
            "--max-memory",
            "8",
        ]);
        let Ok(ServiceSource::Flags(spec)) = cli.service.source(&[3]) else {
            panic!("flags describe a service");
        };
        assert_eq!(spec.name, "echo.wasm");
        let listen: Vec<String> = spec.listen.iter().map(ToString::to_string).collect();
        assert_eq!(listen, ["tcp:127.0.0.1:8100", "unix:/tmp/e", "fd:3"]);
        assert_eq!(spec.limits.max_memory_bytes, 8 << 20);
    }
}
