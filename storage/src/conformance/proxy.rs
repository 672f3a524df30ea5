//! A TCP proxy a test can cut (every open connection is dropped and new
//! ones are closed at once, as when the database host goes away) and
//! restore: fault injection for the storage and gateway tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    /// `true` while cut.
    cut: watch::Sender<bool>,
    /// Open connections, aborted on cut.
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let (cut, cut_rx) = watch::channel(false);
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accept_conns = Arc::clone(&conns);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if *cut_rx.borrow() {
                    drop(client);
                    continue;
                }
                let conn = tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                let mut conns = accept_conns.lock().expect("conns");
                conns.retain(|c| !c.is_finished());
                conns.push(conn);
            }
        });
        Self {
            addr,
            cut,
            conns,
            accept,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn cut(&self) {
        self.cut.send_replace(true);
        for conn in self.conns.lock().expect("conns").drain(..) {
            conn.abort();
        }
    }

    pub fn restore(&self) {
        self.cut.send_replace(false);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
