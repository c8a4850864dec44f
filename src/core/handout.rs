//! Handing a message to the operator connections: a pushed code, or an activation
//! message (a card's activation code, a token's SMS part). Issuing decides and
//! stores; this is the one way out for what the core sends unasked. It reaches
//! client mode's connections through [`Outbound`], which start-up code sets once
//! the connections exist (CLI commands run without).

use std::sync::{Arc, OnceLock};

use otpgw_rules::records::Card;
use otpgw_rules::texts::{self, ReplyKind};
use otpgw_rules::vocab::Language;
use otpgw_rules::wording::Wording;
use serde_json::json;

use super::live::Live;
use super::ports::{AuditStore, NewEvent};
use super::{Clock, CoreError};

/// A message the core sends without being asked (a pushed code), handed to the
/// transport that holds the operator connections.
pub struct Push {
    pub to: String,
    pub text: String,
    /// The code whose delivery this message reports; `None` for an activation
    /// message, which is not a code record.
    pub code_id: Option<i64>,
    pub route: String,
    /// Epoch ms after which sending it is pointless (the code has expired).
    pub expires_at: i64,
    /// Claimed from the outbox: not to be sent from this epoch ms on.
    pub send_before: Option<i64>,
}

// The text holds a code: never print it.
crate::telemetry::debug_only!(Push { code_id, route });

/// The way out for pushed codes: client mode's operator connections.
pub trait Outbound: Send + Sync {
    /// The route serving this number (an MSISDN prefix, "" for the default
    /// route), or `None` when no connection serves it.
    fn route_for(&self, msisdn: &str) -> Option<String>;
    /// Whether a connection of this node serving `route` can send now.
    fn holds(&self, route: &str) -> bool;
    /// Queues the message; `false` when the queue is full.
    fn send(&self, push: Push) -> bool;
}

/// Whether an activation message went out.
#[derive(Debug, Clone, Copy)]
pub struct ActivationNotice {
    pub state: ActivationState,
    /// Epoch ms after which the code is void.
    pub expires_at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivationState {
    /// Queued on the operator connection serving the card's number.
    Sent,
    /// No operator connection serves the number: send again later
    /// (`POST /v1/cards/{id}/activation`).
    NoRoute,
    /// The outgoing queue was full: send again.
    QueueFull,
}

otpgw_rules::named!(ActivationState { Sent = "sent", NoRoute = "no_route", QueueFull = "queue_full" });

/// What an activation message carries; it decides the text and the audit event.
pub(super) struct ActivationSms<'a> {
    pub of: Activating,
    pub code: &'a str,
    pub ttl_secs: u64,
}

/// Whose activation an SMS carries a code for.
#[derive(Clone, Copy)]
pub(super) enum Activating {
    Card,
    /// The second part of this token's activation code.
    Token(i64),
}

pub(super) struct HandOut {
    outbound: OnceLock<Arc<dyn Outbound>>,
    audit: Arc<dyn AuditStore>,
    clock: Arc<dyn Clock>,
    language: Language,
    wording: Live<Wording>,
}

impl HandOut {
    pub(super) fn new(
        audit: Arc<dyn AuditStore>,
        clock: Arc<dyn Clock>,
        language: Language,
        wording: Live<Wording>,
    ) -> Self {
        Self {
            outbound: OnceLock::new(),
            audit,
            clock,
            language,
            wording,
        }
    }

    pub(super) fn connect(&self, outbound: Arc<dyn Outbound>) {
        let _ = self.outbound.set(outbound);
    }

    /// The operator connections, when client mode runs in this process.
    pub(super) fn outbound(&self) -> Option<&Arc<dyn Outbound>> {
        self.outbound.get()
    }

    /// A notice sent unasked to `to` about `card` (after a phone change): queued
    /// on the number's route until `deliver_by`, or `no_route` without one.
    pub(super) fn notice(
        &self,
        to: &str,
        kind: ReplyKind,
        card: &Card,
        deliver_by: i64,
    ) -> ActivationState {
        let Some((outbound, route)) = self
            .outbound()
            .and_then(|o| o.route_for(to).map(|r| (o, r)))
        else {
            return ActivationState::NoRoute;
        };
        let text = self.wording.get().render(
            kind,
            card.language.unwrap_or(self.language),
            &texts::Params {
                digits: &card.last4,
                ..texts::Params::default()
            },
            false,
        );
        let queued = outbound.send(Push {
            to: to.to_owned(),
            text,
            code_id: None,
            route,
            expires_at: deliver_by,
            send_before: None,
        });
        if queued {
            ActivationState::Sent
        } else {
            ActivationState::QueueFull
        }
    }

    /// An activation message to the card's phone through client mode's route for
    /// its number, and its audit event. Not in the reply outbox: it carries no code
    /// record, and the code it carries is already committed.
    pub(super) async fn activation(
        &self,
        card: &Card,
        sms: ActivationSms<'_>,
        expires_at: i64,
        actor: &str,
    ) -> Result<ActivationNotice, CoreError> {
        let route = self
            .outbound()
            .and_then(|o| o.route_for(&card.msisdn).map(|r| (o, r)));
        let (kind, event, mut detail) = match sms.of {
            Activating::Card => (ReplyKind::Activation, "activation_sent", json!({})),
            Activating::Token(token_id) => (
                ReplyKind::TokenActivation,
                "token_activation_sent",
                json!({ "token_id": token_id }),
            ),
        };
        let state = match route {
            None => ActivationState::NoRoute,
            Some((outbound, route)) => {
                let text = self.wording.get().render(
                    kind,
                    card.language.unwrap_or(self.language),
                    &texts::Params {
                        code: sms.code,
                        ttl_secs: sms.ttl_secs,
                        digits: &card.last4,
                        ..texts::Params::default()
                    },
                    false,
                );
                let queued = outbound.send(Push {
                    to: card.msisdn.clone(),
                    text,
                    code_id: None,
                    route,
                    expires_at,
                    send_before: None,
                });
                if queued {
                    ActivationState::Sent
                } else {
                    ActivationState::QueueFull
                }
            }
        };
        detail["state"] = state.as_str().into();
        detail["expires_at"] = expires_at.into();
        self.audit
            .audit(NewEvent {
                card_id: Some(card.id),
                kind: event,
                actor,
                detail,
                at: self.clock.now_ms(),
            })
            .await?;
        Ok(ActivationNotice { state, expires_at })
    }
}
