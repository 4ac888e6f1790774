//! The SMS channel's follow-up: a report filed by SMS has no follow-up token the citizen could
//! type; the phone number it came from stands in for it. A report is the number's when its
//! reporter contact (kept at the origin, under the report's commitment) holds that number, so
//! an erased contact ends follow-up by SMS too.

use super::error::TicketError;
use super::handle::Tickets;
use super::input::Action;
use super::intake::TxHook;
use super::model::TicketRow;
use super::queries::row_id;
use super::store;
use crate::domain::{Actor, Event, TicketState, Timestamp, TrackingCode};

/// A report as its reporter's number sees it.
#[derive(Debug, Clone)]
pub struct PhoneView {
    /// The ticket.
    pub ticket: TicketRow,
    /// Its folded state (status and deadlines).
    pub state: TicketState,
}

impl Tickets {
    /// The report with tracking code `code` filed at this node from `phone` (compared as
    /// stored). Any other report — unknown code, filed elsewhere, another number's, erased —
    /// is the one refusal [`TicketError::ReportHidden`].
    pub fn find_by_phone(
        &self,
        code: &TrackingCode,
        phone: &str,
    ) -> Result<PhoneView, TicketError> {
        let mut c = self.db.read()?;
        let row = self
            .filed_here(&mut c, code)?
            .ok_or(TicketError::ReportHidden)?;
        let contact = store::contact(&mut c, &row_id(&row)?)?;
        if contact.and_then(|c| c.phone).as_deref() != Some(phone) {
            return Err(TicketError::ReportHidden);
        }
        let state = row.state()?;
        Ok(PhoneView { ticket: row, state })
    }

    /// A citizen's follow-up (reply, rating, reopen) by SMS on the report with tracking code
    /// `code`, from `phone`: found by [`Tickets::find_by_phone`], then taken as the citizen,
    /// with `hook` in the action's transaction.
    pub fn follow_up_by_phone(
        &self,
        code: &TrackingCode,
        phone: &str,
        action: Action,
        now: Timestamp,
        hook: Option<TxHook>,
    ) -> Result<(Event, TicketState), TicketError> {
        let found = self.find_by_phone(code, phone)?;
        self.act_with(
            &row_id(&found.ticket)?,
            &Actor::citizen(),
            action,
            now,
            hook,
        )
    }
}
