//! The I/O shell: listening sockets, worker threads with their mio loops, signals.
//!
//! Everything that touches a socket or the clock lives here; the protocol and the broker
//! rules live in `protocol` and `broker`.

mod listen;
pub mod logging;
pub mod process;
mod transport;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use bytes::BytesMut;
use mio::{Poll, Waker};

use crate::broker::{Broker, ListenerSettings, Settings, Shared};
use crate::protocol::Connect;

pub use listen::{bind_listener, BoundSocket, ListenSpec};
pub use transport::{Listener, Stream};

/// A listening socket and the settings of clients that arrive through it.
pub struct BoundListener {
    pub settings: Arc<ListenerSettings>,
    /// Connections open through this listener, counted across all workers.
    pub active: Arc<AtomicUsize>,
}

/// Messages between worker shells (the cores talk through [`Shared`]).
pub enum Control {
    /// A connection whose session lives on the receiving worker.
    Adopt {
        stream: Stream,
        /// The listener's connection counter, released when the connection ends.
        active: Arc<AtomicUsize>,
        input: BytesMut,
        settings: Arc<ListenerSettings>,
        peer: String,
        connect: Box<Connect>,
    },
    /// A connected client the sending worker's core moved here (see `broker/placement.rs`).
    Migrate {
        stream: Stream,
        active: Arc<AtomicUsize>,
        input: BytesMut,
        migrant: crate::broker::placement::Migrant,
    },
    /// SIGHUP: new settings for the core and the listeners.
    Reload(Arc<Reload>),
    /// SIGUSR2: report this shard's subscriptions.
    DumpSubscriptions(Sender<Vec<crate::broker::SubscriptionLine>>),
}

/// What a configuration reload changes: the broker settings, and each listener's settings
/// (old, new) — the old `Arc` identifies the listener and the connections that came
/// through it.
pub struct Reload {
    pub settings: Arc<Settings>,
    pub listeners: Vec<(Arc<ListenerSettings>, Arc<ListenerSettings>)>,
}

/// What the workers share: their wakers and control channels, and the stop flag.
pub struct Runtime {
    wakers: Vec<Waker>,
    control: Vec<Mutex<Sender<Control>>>,
    pub stopping: AtomicBool,
    pub nodelay: bool,
}

impl Runtime {
    pub fn wake(&self, worker: u16) {
        if let Some(waker) = self.wakers.get(usize::from(worker)) {
            let _ = waker.wake();
        }
    }

    pub fn wake_all_but(&self, worker: u16) {
        for other in 0..self.wakers.len() {
            if other != usize::from(worker) {
                self.wake(other as u16);
            }
        }
    }

    pub fn send(&self, worker: u16, msg: Control) {
        if let Some(sender) = self.control.get(usize::from(worker)) {
            let sent = sender
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .send(msg)
                .is_ok();
            if sent {
                self.wake(worker);
            }
        }
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        for worker in 0..self.wakers.len() {
            self.wake(worker as u16);
        }
    }
}

/// How to run: the listeners, the broker settings and the number of worker threads.
pub struct ServerSpec {
    pub listeners: Vec<(ListenSpec, Arc<ListenerSettings>)>,
    pub settings: Arc<Settings>,
    pub threads: usize,
    pub nodelay: bool,
}

/// A running broker: its workers and the handle that stops them.
pub struct Server {
    runtime: Arc<Runtime>,
    workers: Vec<thread::JoinHandle<()>>,
    /// The addresses actually bound (port 0 resolved), for tests and logs.
    pub local_addrs: Vec<SocketAddr>,
    /// The current settings of each configured listener, in [`ServerSpec::listeners`] order.
    listener_settings: Vec<Arc<ListenerSettings>>,
}

impl Server {
    /// Binds every listener and starts the workers.
    pub fn start(spec: ServerSpec) -> io::Result<Server> {
        let threads = spec.threads.max(1);
        let mut sockets = Vec::new();
        let mut local_addrs = Vec::new();
        for (listen, settings) in &spec.listeners {
            let active = Arc::new(AtomicUsize::new(0));
            for socket in bind_listener(listen)? {
                local_addrs.extend(socket.local_addr());
                sockets.push((socket, settings.clone(), active.clone()));
            }
        }
        let shared = Shared::new(threads);
        let mut polls = Vec::new();
        let mut wakers = Vec::new();
        let mut senders = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..threads {
            let poll = Poll::new()?;
            wakers.push(worker::Worker::waker(&poll)?);
            polls.push(poll);
            let (tx, rx) = mpsc::channel();
            senders.push(Mutex::new(tx));
            receivers.push(rx);
        }
        let runtime = Arc::new(Runtime {
            wakers,
            control: senders,
            stopping: AtomicBool::new(false),
            nodelay: spec.nodelay,
        });
        let mut workers = Vec::new();
        for (index, (poll, control)) in polls.into_iter().zip(receivers).enumerate() {
            let mut listeners = Vec::new();
            for (socket, settings, active) in &sockets {
                let clone = Listener::from_std(socket)?;
                listeners.push((
                    clone,
                    BoundListener {
                        settings: settings.clone(),
                        active: active.clone(),
                    },
                ));
            }
            let broker = Broker::new(index as u16, spec.settings.clone(), shared.clone());
            let worker = worker::Worker::new(
                index as u16,
                poll,
                broker,
                listeners,
                control,
                runtime.clone(),
            )?;
            let handle = thread::Builder::new()
                .name(format!("midge-worker-{index}"))
                .spawn(move || worker.run())?;
            workers.push(handle);
        }
        Ok(Server {
            runtime,
            workers,
            local_addrs,
            listener_settings: spec.listeners.iter().map(|(_, s)| s.clone()).collect(),
        })
    }

    /// The current settings of each configured listener, in [`ServerSpec::listeners`] order.
    pub fn listener_settings(&self) -> &[Arc<ListenerSettings>] {
        &self.listener_settings
    }

    /// Hands new settings to every worker (SIGHUP). `listeners` must hold one entry per
    /// configured listener, in [`ServerSpec::listeners`] order.
    pub fn reload(&mut self, settings: Arc<Settings>, listeners: Vec<Arc<ListenerSettings>>) {
        let pairs = self
            .listener_settings
            .iter()
            .cloned()
            .zip(listeners.iter().cloned())
            .collect();
        let reload = Arc::new(Reload {
            settings,
            listeners: pairs,
        });
        for worker in 0..self.workers.len() {
            self.runtime
                .send(worker as u16, Control::Reload(reload.clone()));
        }
        self.listener_settings = listeners;
    }

    /// Every shard's subscriptions (SIGUSR2), gathered within `timeout`.
    pub fn subscriptions(
        &self,
        timeout: std::time::Duration,
    ) -> Vec<crate::broker::SubscriptionLine> {
        let (tx, rx): (Sender<_>, Receiver<_>) = mpsc::channel();
        for worker in 0..self.workers.len() {
            self.runtime
                .send(worker as u16, Control::DumpSubscriptions(tx.clone()));
        }
        drop(tx);
        let deadline = std::time::Instant::now() + timeout;
        let mut all = Vec::new();
        for _ in 0..self.workers.len() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(mut lines) => all.append(&mut lines),
                Err(_) => break,
            }
        }
        all
    }

    /// Asks every worker to stop (clients closed, wills sent).
    pub fn stop(&self) {
        self.runtime.stop();
    }

    /// Waits for the workers to finish.
    pub fn join(self) {
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}
