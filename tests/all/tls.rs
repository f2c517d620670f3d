//! TLS termination: real clients (a rustls client, `openssl s_client`,
//! `socat OPENSSL:`), certificates minted per test; bad certificates are
//! refused as they should be, handshakes that fail never reach a handler,
//! and SIGHUP swaps the certificate without dropping a connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::fixtures::{ECHO, WHOAMI};
use crate::pki::{Pki, tls_connect};
use crate::support::{Server, assert_one_line_error, first_line, pattern, rss_kib};

fn tls_server(handler: &str, pki: &Pki, extra: &[&str]) -> Server {
    let flags = pki.server_flags();
    let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
    args.extend_from_slice(extra);
    Server::start_with_metrics(handler, &args)
}

fn path(path: &std::path::Path) -> String {
    path.to_string_lossy().into_owned()
}

fn handshake_failures(server: &Server) -> u64 {
    let (_, body) = crate::observing::fetch_metrics(&server.addrs[1], None);
    body.lines()
        .find(|line| {
            line.starts_with("wasmserve_connections_closed_by_server_total")
                && line.contains("reason=\"tls_handshake\"")
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_rustls_client_gets_plaintext_through_and_the_handler_sees_what_tls_negotiated() {
    let pki = Pki::new();
    let server = tls_server(WHOAMI, &pki, &["--tls-alpn", "wasmserve-test"]);
    let config = pki.client_config(None, &["wasmserve-test"]);
    let line = first_line(tls_connect(config, &server.addrs[0], "localhost").expect("handshake"));
    for part in [
        "transport=tcp",
        "tls=TLSv1.3",
        "alpn=wasmserve-test",
        "sni=localhost",
        "client=-",
    ] {
        assert!(line.contains(part), "{part} missing from {line}");
    }
    // 1 MiB each way through an echo, both directions at once.
    let echo = tls_server(ECHO, &pki, &[]);
    let mut stream =
        tls_connect(pki.client_config(None, &[]), &echo.addrs[0], "localhost").expect("handshake");
    let data = pattern(1 << 20, 7);
    let mut back = vec![0u8; data.len()];
    for (chunk, out) in data.chunks(64 * 1024).zip(back.chunks_mut(64 * 1024)) {
        stream.write_all(chunk).expect("send");
        stream.read_exact(out).expect("receive");
    }
    assert!(back == data, "the echo came back different");
}

/// `openssl s_client` to `server`'s first listener as `localhost`,
/// trusting `pki`'s CA.
fn s_client(server: &Server, pki: &Pki) -> Command {
    let mut command = Command::new("openssl");
    command
        .args([
            "s_client",
            "-connect",
            &server.addrs[0],
            "-servername",
            "localhost",
        ])
        .args(["-CAfile", &path(&pki.ca_cert)]);
    command
}

#[test]
#[cfg_attr(
    wasmserve_no_openssl,
    ignore = "openssl is not installed (Debian package openssl)"
)]
fn openssl_s_client_talks_to_a_tls_service() {
    let pki = Pki::new();
    let server = tls_server(ECHO, &pki, &[]);
    let mut child = s_client(&server, &pki)
        .args(["-verify_return_error", "-quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_client");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"hello over openssl\n").expect("send");
    let mut line = String::new();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let _ = stdout.read_line(&mut line);
    drop(stdin);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(line, "hello over openssl\n");
}

#[test]
#[cfg_attr(
    wasmserve_no_socat,
    ignore = "socat is not installed (Debian package socat)"
)]
fn socat_openssl_talks_to_a_tls_service() {
    let pki = Pki::new();
    let server = tls_server(WHOAMI, &pki, &[]);
    let output = Command::new("socat")
        .arg("-")
        .arg(format!(
            "OPENSSL:{},cafile={},commonname=localhost",
            server.addrs[0],
            path(&pki.ca_cert)
        ))
        .stdin(Stdio::null())
        .output()
        .expect("socat");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("tls=TLSv1.3"), "{text}");
}

#[test]
fn clients_refuse_expired_wrong_host_and_untrusted_certificates_and_no_handler_runs() {
    let pki = Pki::new();
    for (name, pem) in [
        (
            "expired",
            pki.issue("expired", "localhost", &["localhost"], true),
        ),
        (
            "wrong host",
            pki.issue("other", "other.example", &["other.example"], false),
        ),
        (
            "untrusted",
            pki.untrusted("untrusted", "localhost", &["localhost"]),
        ),
    ] {
        let (cert, key) = (path(&pem.cert), path(&pem.key));
        let server = Server::start_with_metrics(WHOAMI, &["--tls-cert", &cert, "--tls-key", &key]);
        let refused = tls_connect(pki.client_config(None, &[]), &server.addrs[0], "localhost");
        let err = refused.err().map(|err| err.to_string()).unwrap_or_default();
        assert!(
            !err.is_empty(),
            "{name}: the client accepted the certificate"
        );
        // rustls's wording, spaces aside.
        let expected = match name {
            "expired" => "expired",
            "wrong host" => "notvalidforname",
            _ => "unknownissuer",
        };
        let squeezed = err.to_lowercase().replace(' ', "");
        assert!(squeezed.contains(expected), "{name}: {err}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while handshake_failures(&server) < 1 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(handshake_failures(&server), 1, "{name}");
        assert!(
            !server.log_text().contains("outcome=\"ok\""),
            "{name}: a handler ran"
        );
    }
}

#[test]
fn mutual_tls_lets_in_only_clients_the_ca_signed() {
    let pki = Pki::new();
    let ca = path(&pki.ca_cert);
    let server = tls_server(WHOAMI, &pki, &["--tls-client-ca", &ca]);
    let alice = pki.issue("alice", "alice", &["alice.example"], false);
    let line = first_line(
        tls_connect(
            pki.client_config(Some(&alice), &[]),
            &server.addrs[0],
            "localhost",
        )
        .expect("handshake"),
    );
    assert!(line.contains("client=CN=alice"), "{line}");
    // Without a certificate, or with one from another CA: no answer.
    let mallory = pki.untrusted("mallory", "mallory", &["mallory.example"]);
    for client in [None, Some(&mallory)] {
        let attempt = tls_connect(
            pki.client_config(client, &[]),
            &server.addrs[0],
            "localhost",
        );
        if let Ok(stream) = attempt {
            assert_eq!(
                first_line(stream),
                "",
                "served without a trusted certificate"
            );
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while handshake_failures(&server) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(handshake_failures(&server), 2);
}

#[test]
fn a_silent_or_plaintext_client_is_dropped_and_counted() {
    let pki = Pki::new();
    let server = tls_server(ECHO, &pki, &["--idle-timeout", "500ms"]);
    let started = Instant::now();
    let mut silent = TcpStream::connect(&server.addrs[0]).expect("connect");
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    assert_eq!(silent.read(&mut [0u8; 16]).unwrap_or(0), 0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let mut plain = TcpStream::connect(&server.addrs[0]).expect("connect");
    plain.write_all(b"GET / HTTP/1.0\r\n\r\n").expect("send");
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reply = Vec::new();
    let _ = plain.read_to_end(&mut reply);
    assert!(
        !reply.windows(3).any(|w| w == b"GET"),
        "the plaintext was echoed"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while handshake_failures(&server) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(handshake_failures(&server), 2);
    server.wait_for_log(&["connection refused", "TLS handshake"]);
}

#[test]
fn a_hundred_tls_clients_that_vanish_mid_connection_leave_no_memory_behind() {
    let pki = Pki::new();
    // Instance slots give their memory back (none kept resident), so what
    // stays is what the TLS side kept.
    let server = tls_server(ECHO, &pki, &["--keep-resident", "0"]);
    let config = pki.client_config(None, &[]);
    let echo_one = |stream: &mut crate::pki::TlsClient| {
        stream.write_all(b"x\n").expect("send");
        let mut back = [0u8; 2];
        stream.read_exact(&mut back).expect("receive");
    };
    let mut warm = tls_connect(config.clone(), &server.addrs[0], "localhost").expect("handshake");
    echo_one(&mut warm);
    drop(warm);
    server.wait_for_count("wasmserve::access", 1);
    let baseline = rss_kib(&server);
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let mut stream =
                tls_connect(config.clone(), &server.addrs[0], "localhost").expect("handshake");
            echo_one(&mut stream);
            stream
        })
        .collect();
    eprintln!(
        "100 open TLS connections: +{} KiB",
        rss_kib(&server).saturating_sub(baseline)
    );
    // Gone without a close_notify: relays and handlers must end anyway.
    drop(clients);
    server.wait_for_count("wasmserve::access", 101);
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(&server);
    assert!(
        after < baseline + 8 * 1024,
        "RSS {baseline} KiB, then {after} KiB"
    );
    let mut again = tls_connect(config, &server.addrs[0], "localhost").expect("handshake");
    echo_one(&mut again);
}

#[test]
fn sighup_swaps_the_certificate_and_keeps_open_connections() {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let pki = Pki::new();
    let first = pki.issue("live", "localhost", &["localhost", "127.0.0.1"], false);
    let (cert, key) = (path(&first.cert), path(&first.key));
    let server = Server::start(ECHO, &["--tls-cert", &cert, "--tls-key", &key]);
    let config = pki.client_config(None, &[]);
    let mut open = tls_connect(config.clone(), &server.addrs[0], "localhost").expect("handshake");
    let served = |stream: &mut crate::pki::TlsClient, text: &str| {
        stream
            .write_all(format!("{text}\n").as_bytes())
            .expect("send");
        let mut line = vec![0u8; text.len() + 1];
        stream.read_exact(&mut line).expect("receive");
        String::from_utf8_lossy(&line).into_owned()
    };
    assert_eq!(served(&mut open, "before"), "before\n");
    // Renew: new files in place, then SIGHUP.
    let renewed = pki.issue("renewed", "localhost", &["localhost", "127.0.0.1"], false);
    std::fs::copy(&renewed.cert, &first.cert).expect("copy cert");
    std::fs::copy(&renewed.key, &first.key).expect("copy key");
    server.signal("HUP");
    server.wait_for_log(&["TLS certificate and key re-read"]);
    let fresh = tls_connect(config, &server.addrs[0], "localhost").expect("handshake");
    let presented = fresh
        .conn
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.to_vec())
        .unwrap_or_default();
    let expected = CertificateDer::from_pem_file(&renewed.cert).expect("renewed cert");
    assert!(
        presented == expected.to_vec(),
        "the old certificate is still presented"
    );
    assert_eq!(served(&mut open, "after"), "after\n");
}

#[test]
fn bad_tls_files_are_one_line_errors() {
    let pki = Pki::new();
    let good = pki.issue("good", "localhost", &["localhost"], false);
    let (cert, key) = (path(&good.cert), path(&good.key));
    let missing = pki.dir.path().join("missing.pem");
    let missing = path(&missing);
    let other = pki.issue("other", "localhost", &["localhost"], false);
    let other_key = path(&other.key);
    for (cert, key, needles) in [
        (
            &missing,
            &key,
            ["--tls-cert", "missing.pem", "PEM"].as_slice(),
        ),
        // The key of another certificate.
        (&cert, &other_key, &["--tls-key", "certificate"]),
        // A certificate where the key should be.
        (&cert, &cert, &["--tls-key", "private key"]),
    ] {
        let args = [
            "--handler",
            ECHO,
            "--tcp",
            "0",
            "--tls-cert",
            cert,
            "--tls-key",
            key,
        ];
        assert_one_line_error(&args, needles);
    }
}

#[test]
#[cfg_attr(
    wasmserve_no_openssl,
    ignore = "openssl is not installed (Debian package openssl)"
)]
fn the_servers_cipher_order_wins_over_the_clients() {
    let pki = Pki::new();
    let server = tls_server(ECHO, &pki, &[]);
    // The client prefers ChaCha20; the server's order puts AES-GCM first.
    let output = s_client(&server, &pki)
        .arg("-tls1_3")
        .args([
            "-ciphersuites",
            "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
        ])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("openssl s_client");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        said.contains("Cipher is TLS_AES_128_GCM_SHA256"),
        "the client's first choice won:\n{said}"
    );
}
