//! Email delivery: `console.email` (and the notices valbox sends) is stored
//! before the call returns; with `--smtp-url`, the outbox thread of every
//! `serve` and `worker` sends what is due, at least once: an attempt is
//! claimed in the store (a compare-and-set on the attempt count, so two
//! nodes do not send the same attempt), failures are tried again with
//! exponential backoff (1 s, 2 s, 4 s, ... up to 10 min, [`MAX_ATTEMPTS`]
//! in all), a permanent refusal is recorded on the email at once. The
//! `Message-ID` stays the same on every attempt.

use super::{Service, ServiceResult};
use crate::schedule::now_ms;
use crate::store::{Delivery, OutgoingEmail};
use std::sync::Arc;
use std::time::Duration;

/// Attempts after which an email is given up on.
pub const MAX_ATTEMPTS: u32 = 10;

/// How long an attempt holds an email before another node may try it
/// (longer than the SMTP timeout).
const LEASE_MS: i64 = 60_000;

/// The wait before attempt `attempts + 1`.
fn backoff_ms(attempts: u32) -> i64 {
    (1_000i64 << attempts.min(10)).min(600_000)
}

impl Service {
    /// Starts the outbox thread when an SMTP server is configured.
    pub fn start_outbox(self: &Arc<Self>) -> ServiceResult<()> {
        if self.mailer.is_none() {
            return Ok(());
        }
        self.spawn_background("outbox", |service| {
            while !service.is_stopping() {
                match service.deliver_due_emails() {
                    Ok(0) => std::thread::sleep(Duration::from_millis(200)),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "the outbox could not read the store; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
        })
    }

    /// Sends every email that is due and that this node claims; how many it tried.
    fn deliver_due_emails(&self) -> ServiceResult<usize> {
        let Some(mailer) = &self.mailer else {
            return Ok(0);
        };
        let mut tried = 0;
        for email in self.store.due_emails(now_ms(), 50)? {
            if self.is_stopping() {
                break;
            }
            if !self.store.claim_email(&email, now_ms() + LEASE_MS)? {
                continue;
            }
            tried += 1;
            let delivery = self.attempt(mailer, &email);
            self.store.email_delivered(email.id, &delivery)?;
        }
        Ok(tried)
    }

    fn attempt(&self, mailer: &crate::mailer::Mailer, email: &OutgoingEmail) -> Delivery {
        let attempt = email.attempts + 1;
        match mailer.send(email) {
            Ok(()) => {
                self.metrics.emails.with_label_values(&["sent"]).inc();
                tracing::info!(email = email.id, message_id = %email.message_id, attempt, "email sent");
                Delivery::Sent
            }
            Err(error) if error.permanent || attempt >= MAX_ATTEMPTS => {
                self.metrics.emails.with_label_values(&["failed"]).inc();
                tracing::warn!(email = email.id, attempt, error = %error.message, "email not delivered");
                Delivery::Failed(error.message)
            }
            Err(error) => {
                self.metrics.emails.with_label_values(&["retried"]).inc();
                let retry_at = now_ms() + backoff_ms(attempt);
                tracing::info!(email = email.id, attempt, error = %error.message, "email will be tried again");
                Delivery::Retry(retry_at, error.message)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_up_to_ten_minutes() {
        assert_eq!(super::backoff_ms(1), 2_000);
        assert_eq!(super::backoff_ms(3), 8_000);
        assert_eq!(super::backoff_ms(9), 512_000);
        assert_eq!(super::backoff_ms(12), 600_000);
    }
}
