//! Rows of the projection tables.

use diesel::prelude::*;

use crate::db::schema::{agencies, reporter_contacts, tickets};
use crate::domain::milestones::Milestones;
use crate::domain::ticket::TicketState;
use crate::domain::{AgencyCode, Created, EventId, Privacy, TicketId, Timestamp};

/// One ticket of the projection.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = tickets, treat_none_as_null = true, treat_none_as_default_value = false)]
pub struct TicketRow {
    /// Ticket id.
    pub id: String,
    /// Tracking code.
    pub tracking_code: String,
    /// Origin node.
    pub origin_node: String,
    /// Handling node.
    pub handling_node: String,
    /// Report kind.
    pub report_kind: String,
    /// Category.
    pub category: String,
    /// Title.
    pub title: String,
    /// Report text.
    pub body: String,
    /// Region code.
    pub region: String,
    /// Agency dispatched to.
    pub agency: Option<String>,
    /// Channel.
    pub channel: String,
    /// Anonymous flag.
    pub anonymous: bool,
    /// Confidential flag.
    pub confidential: bool,
    /// Status.
    pub status: String,
    /// Archive reason.
    pub archive_reason: Option<String>,
    /// Citizen rating.
    pub rating: Option<i32>,
    /// Filed at.
    pub created_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
    /// Verification deadline.
    pub verify_due_ms: i64,
    /// Response deadline.
    pub response_due_ms: Option<i64>,
    /// Auto-close time.
    pub auto_close_due_ms: Option<i64>,
    /// Reopen window end.
    pub reopen_until_ms: Option<i64>,
    /// Completion cap.
    pub overall_due_ms: i64,
    /// Breach bits.
    pub breaches: i32,
    /// Latest event id.
    pub head: String,
    /// Events folded.
    pub event_count: i32,
    /// The members of the folded state that have no column of their own, as JSON
    /// ([`TicketRow::state`] rebuilds the whole state from the columns and these).
    pub state: String,
    /// The number the tracking code was drawn from, for codes this node drew from its counter
    /// (`tickets::codes`); none for other nodes' codes.
    pub code_number: Option<i64>,
    /// When the SLA sweep next has something to do (`TicketState::next_due`); indexed, so a
    /// sweep reads only the tickets that are due.
    pub next_due_ms: Option<i64>,
}

fn enum_str<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

impl TicketRow {
    /// The row for a folded state.
    pub fn from_state(
        id: &TicketId,
        s: &TicketState,
        head: &EventId,
    ) -> Result<Self, serde_json::Error> {
        Self::laid_out(id, s, head.to_string())
    }

    fn laid_out(id: &TicketId, s: &TicketState, head: String) -> Result<Self, serde_json::Error> {
        let r = &s.report;
        Ok(Self {
            id: id.to_string(),
            tracking_code: r.tracking_code.to_string(),
            origin_node: s.origin.to_string(),
            handling_node: s.handler.to_string(),
            report_kind: enum_str(&r.report_kind),
            category: r.category.as_str().to_owned(),
            title: r.title.clone(),
            body: r.text.clone(),
            region: r.region.to_string(),
            agency: s.agency.as_ref().map(ToString::to_string),
            channel: enum_str(&r.channel),
            anonymous: r.privacy.anonymous,
            confidential: r.privacy.confidential,
            status: s.status.as_str().to_owned(),
            archive_reason: s.archive_reason.as_ref().map(enum_str),
            rating: s.rating.map(i32::from),
            created_at_ms: s.created_at.millis(),
            updated_at_ms: s.updated_at.millis(),
            verify_due_ms: r.verify_due.millis(),
            response_due_ms: s.response_due.map(crate::domain::Timestamp::millis),
            auto_close_due_ms: s.auto_close_due.map(crate::domain::Timestamp::millis),
            reopen_until_ms: s.reopen_until.map(crate::domain::Timestamp::millis),
            overall_due_ms: r.overall_due.millis(),
            breaches: i32::from(s.breaches),
            head,
            event_count: i32::try_from(s.events).unwrap_or(i32::MAX),
            state: serde_json::to_string(&StateRest {
                suggested_agency: r.suggested_agency.clone(),
                erased: s.erased,
                milestones: s.milestones.clone(),
            })?,
            code_number: None,
            next_due_ms: s.next_due().map(crate::domain::Timestamp::millis),
        })
    }

    /// [`TicketRow::from_state`] before the event that leads to `s` is stored: `head` is
    /// empty until the caller sets it to that event's id.
    pub fn without_head(id: &TicketId, s: &TicketState) -> Result<Self, serde_json::Error> {
        Self::laid_out(id, s, String::new())
    }

    /// The folded state stored in the row: its columns, and what `state` holds besides. Rows
    /// written before `state` was narrowed hold the whole state there; only the members that
    /// have no column are read from it (the columns were always written from the same state).
    pub fn state(&self) -> Result<TicketState, serde_json::Error> {
        use serde::de::Error as _;
        let stored: serde_json::Value = serde_json::from_str(&self.state)?;
        let rest: StateRest = match stored.get("report") {
            Some(report) => StateRest {
                suggested_agency: serde_json::from_value(
                    report.get("suggested_agency").cloned().unwrap_or_default(),
                )?,
                // Absent in rows written before erasure existed.
                erased: stored
                    .get("erased")
                    .map(|v| serde_json::from_value(v.clone()))
                    .transpose()?
                    .unwrap_or(false),
                milestones: Milestones::default(),
            },
            None => serde_json::from_value(stored)?,
        };
        let ms = Timestamp::from_millis;
        let small = |name: &str, v: i32| {
            u8::try_from(v)
                .map_err(|_| serde_json::Error::custom(format!("{name} out of range: {v}")))
        };
        Ok(TicketState {
            report: Created {
                tracking_code: text(&self.tracking_code)?,
                report_kind: text(&self.report_kind)?,
                title: self.title.clone(),
                text: self.body.clone(),
                category: text(&self.category)?,
                region: text(&self.region)?,
                suggested_agency: rest.suggested_agency,
                channel: text(&self.channel)?,
                privacy: Privacy {
                    anonymous: self.anonymous,
                    confidential: self.confidential,
                },
                verify_due: ms(self.verify_due_ms),
                overall_due: ms(self.overall_due_ms),
            },
            origin: text(&self.origin_node)?,
            handler: text(&self.handling_node)?,
            status: text(&self.status)?,
            agency: self.agency.as_deref().map(text).transpose()?,
            archive_reason: self.archive_reason.as_deref().map(text).transpose()?,
            rating: self.rating.map(|r| small("rating", r)).transpose()?,
            created_at: ms(self.created_at_ms),
            updated_at: ms(self.updated_at_ms),
            response_due: self.response_due_ms.map(ms),
            auto_close_due: self.auto_close_due_ms.map(ms),
            reopen_until: self.reopen_until_ms.map(ms),
            breaches: small("breaches", self.breaches)?,
            events: u32::try_from(self.event_count).map_err(|_| {
                serde_json::Error::custom(format!("event count out of range: {}", self.event_count))
            })?,
            erased: rest.erased,
            milestones: rest.milestones,
        })
    }
}

/// The members of a folded state that have no column of their own: what the `state` column
/// holds (its other members would only repeat the columns, the report's text among them).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StateRest {
    /// The agency the citizen named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    suggested_agency: Option<AgencyCode>,
    /// The reporter's personal data has been erased.
    #[serde(default)]
    erased: bool,
    /// When it was verified, dispatched, answered, resolved (absent in rows written before
    /// the statistics: `rebuild` fills them).
    #[serde(default, skip_serializing_if = "is_default")]
    milestones: Milestones,
}

fn is_default(m: &Milestones) -> bool {
    *m == Milestones::default()
}

/// A value stored as a column's text, read with its JSON form's checks.
fn text<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, serde_json::Error> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
}

/// The columns of a ticket row that a change can alter.
#[derive(Debug, Clone, Copy, AsChangeset)]
#[diesel(table_name = tickets, treat_none_as_null = true)]
pub struct TicketChanges<'a> {
    handling_node: &'a str,
    agency: Option<&'a str>,
    status: &'a str,
    archive_reason: Option<&'a str>,
    rating: Option<i32>,
    updated_at_ms: i64,
    response_due_ms: Option<i64>,
    auto_close_due_ms: Option<i64>,
    reopen_until_ms: Option<i64>,
    breaches: i32,
    head: &'a str,
    event_count: i32,
    state: &'a str,
    next_due_ms: Option<i64>,
}

impl<'a> TicketChanges<'a> {
    /// The changeable columns of `row`.
    #[must_use]
    pub fn of(row: &'a TicketRow) -> Self {
        Self {
            handling_node: &row.handling_node,
            agency: row.agency.as_deref(),
            status: &row.status,
            archive_reason: row.archive_reason.as_deref(),
            rating: row.rating,
            updated_at_ms: row.updated_at_ms,
            response_due_ms: row.response_due_ms,
            auto_close_due_ms: row.auto_close_due_ms,
            reopen_until_ms: row.reopen_until_ms,
            breaches: row.breaches,
            head: &row.head,
            event_count: row.event_count,
            state: &row.state,
            next_due_ms: row.next_due_ms,
        }
    }
}

crate::db::sqlite_insert!(
    TicketRow,
    tickets {
        id,
        tracking_code,
        origin_node,
        handling_node,
        report_kind,
        category,
        title,
        body,
        region,
        agency,
        channel,
        anonymous,
        confidential,
        status,
        archive_reason,
        rating,
        created_at_ms,
        updated_at_ms,
        verify_due_ms,
        response_due_ms,
        auto_close_due_ms,
        reopen_until_ms,
        overall_due_ms,
        breaches,
        head,
        event_count,
        state,
        code_number,
        next_due_ms,
    }
);

/// Reporter contact (personal data).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = reporter_contacts, treat_none_as_default_value = false)]
pub struct ContactRow {
    /// Ticket id.
    pub ticket_id: String,
    /// Name.
    pub name: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Commitment salt (signed-log layer).
    pub salt: Option<String>,
    /// Stored at.
    pub stored_at_ms: i64,
}

crate::db::sqlite_insert!(
    ContactRow,
    reporter_contacts {
        ticket_id,
        name,
        phone,
        email,
        salt,
        stored_at_ms,
    }
);

/// An agency.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = agencies)]
pub struct AgencyRow {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Level.
    pub level: String,
    /// Region.
    pub region: String,
    /// Owning node.
    pub owner_node: String,
}
