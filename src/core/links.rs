//! What operations may ask about the SMPP links, without reaching into the
//! transport: client mode's operator connections (their state, window and
//! counters) and the listener's bound sessions. The SMPP side implements
//! [`Links`]; HTTP (`/v1/connections`, `/readyz`, the console's health strip)
//! reads it.

/// Where one session of an operator connection stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Bound,
    BackingOff,
    Down,
}

otpgw_rules::named!(Phase { Connecting = "connecting", Bound = "bound", BackingOff = "backing_off", Down = "down" });

/// One session's state (a transceiver, or one of a transmitter/receiver pair).
#[derive(Debug, Clone)]
pub struct SessionStatus {
    /// `trx`, `tx` or `rx`.
    pub bind: &'static str,
    pub state: Phase,
    /// Epoch milliseconds since which it is in this state.
    pub since: i64,
    /// Why the last attempt or session ended, when it did.
    pub last_error: Option<String>,
}

/// Declares a connection's status record: here for the core, holding a [`Phase`],
/// and in `http::views` for the API, holding the phase's name with the attributes of
/// its schema. One list of fields, so the record and its view cannot drift apart.
macro_rules! connection_status {
    (
        $(#[$attr:meta])*
        pub struct $name:ident {
            $(#[$state_attr:meta])*
            state: $state:ty,
            sessions: $session:ty,
        }
    ) => {
        /// A connection as operations see it (`GET /v1/connections`, `otpgw status`).
        $(#[$attr])*
        pub struct $name {
            pub name: String,
            pub host: String,
            pub port: u16,
            pub routes: Vec<String>,
            pub priority: u32,
            /// `bound` when every session of it is bound; else the least ready one's state.
            $(#[$state_attr])*
            pub state: $state,
            pub since: i64,
            pub sessions: Vec<$session>,
            pub window: usize,
            pub window_in_use: usize,
            /// Configured segments per second (0 = not paced).
            pub tps: u32,
            /// Messages waiting for this connection in particular.
            pub queued: usize,
            pub submitted: u64,
            pub throttled: u64,
            pub failed: u64,
            pub receipts: u64,
            pub received: u64,
            /// Receipts that named no message of this connection (none, or one
            /// never answered with that id within 30 s).
            pub unmatched_receipts: u64,
            /// Codes the SMSC accepted with an empty message id: not tracked.
            pub untracked: u64,
        }
    };
}
pub(crate) use connection_status;

connection_status! {
    #[derive(Debug, Clone)]
    pub struct ConnectionStatus {
        state: Phase,
        sessions: SessionStatus,
    }
}

/// One session bound to this node's SMPP listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerBind {
    pub system_id: String,
    /// `trx`, `tx` or `rx`.
    pub bind_type: &'static str,
    /// The peer's address and port.
    pub address: String,
    /// Epoch milliseconds of the bind.
    pub since: i64,
    /// Our deliver_sm the peer has not answered yet.
    pub in_flight: usize,
}

pub trait Links: Send + Sync {
    /// Client mode's operator connections (empty without client mode).
    fn connections(&self) -> Vec<ConnectionStatus>;
    /// Routes with no bound connection that can send ("" = the default route).
    fn routes_down(&self) -> Vec<String>;
    /// Each configured route ("" = the default route) and the messages waiting on
    /// it (lanes included).
    fn route_queues(&self) -> Vec<(String, usize)>;
    /// Sessions bound to this node's SMPP listener.
    fn listener_sessions(&self) -> usize;
    /// Those sessions, oldest first.
    fn listener_binds(&self) -> Vec<ListenerBind>;
    /// Whether client mode runs (operator connections are configured).
    fn client_mode(&self) -> bool;
}
