//! Unit tests of `connection.rs`.

use super::*;

/// tokio reports a socket it has just registered readable until a read
/// says otherwise; a guest's first wait must not return on that alone.
#[tokio::test]
async fn a_fresh_connection_is_not_readable_before_its_client_sends() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mut client =
        std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
    let (stream, _) = listener.accept().await.expect("accept");
    let conn = Connection::tcp(stream, ReadTimeouts::default(), Activity::new());
    let soon = std::time::Duration::from_millis(100);
    assert!(tokio::time::timeout(soon, conn.read_ready()).await.is_err());
    std::io::Write::write_all(&mut client, b"x").expect("send");
    assert!(
        tokio::time::timeout(soon * 10, conn.read_ready())
            .await
            .is_ok()
    );
    assert_eq!(conn.try_read(16).expect("read"), Some(b"x".to_vec()));
}
