//! Sending stored emails through an SMTP server (`--smtp-url`) with
//! `lettre`: `smtp://host:port` (plain), `smtp://host:port?tls=required`
//! (STARTTLS), `smtps://user:password@host` (TLS); each email keeps the
//! `Message-ID` it was stored with, so a retried send is recognisable.

use crate::store::OutgoingEmail;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{Message, SmtpTransport, Transport};
use std::time::Duration;

/// Why an attempt to send failed, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError {
    /// The server refused it for good (a 5xx answer, a malformed address).
    pub permanent: bool,
    /// What went wrong.
    pub message: String,
}

/// An SMTP connection setting and the sender address.
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for `url`, sending as `from` (an address, maybe with a name).
    pub fn new(url: &str, from: &str) -> Result<Mailer, String> {
        let transport = SmtpTransport::from_url(url)
            .map_err(|e| format!("--smtp-url {:?}: {e}", crate::settings::mask_password(url)))?
            .timeout(Some(Duration::from_secs(10)))
            .build();
        let from = from
            .parse()
            .map_err(|e| format!("--email-from {from:?} is not an email address: {e}"))?;
        Ok(Mailer { transport, from })
    }

    /// The domain of the sender address, for `Message-ID`s.
    pub fn domain(&self) -> &str {
        self.from.email.domain()
    }

    /// Sends one email.
    pub fn send(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        let to: Mailbox = email.to_address.parse().map_err(|e| SendError {
            permanent: true,
            message: format!(
                "the recipient's address {:?} is not valid: {e}",
                email.to_address
            ),
        })?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(&email.subject)
            .message_id(Some(email.message_id.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(|e| SendError {
                permanent: true,
                message: format!("the message could not be built: {e}"),
            })?;
        self.transport
            .send(&message)
            .map(drop)
            .map_err(|e| SendError {
                permanent: e.is_permanent(),
                message: e.to_string(),
            })
    }
}
