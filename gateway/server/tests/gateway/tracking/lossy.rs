//! A UDP relay between one client and a server that drops and reorders
//! packets, to test what an unreliable path does to datagrams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// Packets passed untouched in each direction before loss starts, so the
/// QUIC handshake is not slowed down.
const CLEAN_START: u64 = 12;

pub struct LossyPath {
    pub addr: SocketAddr,
    pub dropped: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for LossyPath {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl LossyPath {
    /// Relays to `server`, dropping `drop_per_mille` of the packets and
    /// holding back one in ten by up to 20 ms, so later packets overtake it.
    pub async fn start(server: SocketAddr, drop_per_mille: u64) -> LossyPath {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind front"));
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.expect("bind back"));
        back.connect(server).await.expect("connect back");
        let addr = front.local_addr().expect("addr");
        let dropped = Arc::new(AtomicU64::new(0));
        let client: Arc<tokio::sync::OnceCell<SocketAddr>> = Arc::default();
        let upstream = {
            let (front, back, client, dropped) =
                (front.clone(), back.clone(), client.clone(), dropped.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                let mut fate = Fate::new(1, drop_per_mille, dropped);
                while let Ok((n, from)) = front.recv_from(&mut buf).await {
                    let _ = client.set(from);
                    let packet = buf[..n].to_vec();
                    let back = back.clone();
                    fate.deliver(packet, move |p| async move {
                        let _ = back.send(&p).await;
                    })
                    .await;
                }
            })
        };
        let downstream = {
            let (front, back, client, dropped) =
                (front.clone(), back.clone(), client.clone(), dropped.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                let mut fate = Fate::new(2, drop_per_mille, dropped);
                while let Ok(n) = back.recv(&mut buf).await {
                    let Some(&to) = client.get() else {
                        continue;
                    };
                    let packet = buf[..n].to_vec();
                    let front = front.clone();
                    fate.deliver(packet, move |p| async move {
                        let _ = front.send_to(&p, to).await;
                    })
                    .await;
                }
            })
        };
        LossyPath {
            addr,
            dropped,
            tasks: vec![upstream, downstream],
        }
    }
}

/// Decides each packet's fate with a small deterministic generator.
struct Fate {
    state: u64,
    seen: u64,
    drop_per_mille: u64,
    dropped: Arc<AtomicU64>,
}

impl Fate {
    fn new(seed: u64, drop_per_mille: u64, dropped: Arc<AtomicU64>) -> Self {
        Self {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            seen: 0,
            drop_per_mille,
            dropped,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    async fn deliver<F, Fut>(&mut self, packet: Vec<u8>, send: F)
    where
        F: FnOnce(Vec<u8>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send,
    {
        self.seen += 1;
        if self.seen <= CLEAN_START {
            return send(packet).await;
        }
        let roll = self.next() % 1000;
        if roll < self.drop_per_mille {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if roll.is_multiple_of(10) {
            let delay = Duration::from_millis(1 + self.next() % 20);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                send(packet).await;
            });
            return;
        }
        send(packet).await;
    }
}
