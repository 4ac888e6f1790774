//! Queries on the projection tables, and the projection rebuild. Every write of a ticket row
//! also writes its difference to the national statistics (`hub::store`), in the same
//! transaction.

use diesel::prelude::*;

use super::codes::CodeBook;
use super::model::{AgencyRow, ContactRow, TicketRow};
use crate::db::DbConn;
use crate::db::schema::{agencies, follow_up_tokens, reporter_contacts, tickets};
use crate::domain::reference::Agency;
use crate::domain::{ProvinceCode, TicketId, TrackingCode, fold};
use crate::event_log::store::{self as log, LogError};
use crate::hub::cells::Cells;
use crate::hub::store as hub;

/// Inserts or updates the configured agencies.
#[tracing::instrument(name = "tickets.sync_agencies", skip_all, fields(agencies = list.len()))]
pub fn sync_agencies(conn: &mut DbConn, list: &[Agency]) -> QueryResult<()> {
    for a in list {
        let row = AgencyRow {
            code: a.code.to_string(),
            name: a.name.clone(),
            level: a.level.as_str().to_owned(),
            region: a.region.to_string(),
            owner_node: a.owner.to_string(),
        };
        let n = diesel::update(agencies::table.find(&row.code))
            .set(&row)
            .execute(conn)?;
        if n == 0 {
            diesel::insert_into(agencies::table)
                .values(&row)
                .execute(conn)?;
        }
    }
    Ok(())
}

/// One agency.
pub fn agency(conn: &mut DbConn, code: &str) -> QueryResult<Option<AgencyRow>> {
    crate::db::on_backend!(conn, c => agencies::table
        .find(code)
        .select(AgencyRow::as_select())
        .first(c)
        .optional())
}

/// All agencies, by code.
pub fn agencies(conn: &mut DbConn) -> QueryResult<Vec<AgencyRow>> {
    agencies::table
        .order(agencies::code.asc())
        .select(AgencyRow::as_select())
        .load(conn)
}

/// A ticket by id.
#[tracing::instrument(name = "tickets.by_id", skip_all)]
pub fn by_id(conn: &mut DbConn, id: &TicketId) -> QueryResult<Option<TicketRow>> {
    crate::db::on_backend!(conn, c => tickets::table
        .find(id.to_string())
        .select(TicketRow::as_select())
        .first(c)
        .optional())
}

/// A ticket by tracking code: a code of this node's province is turned back into its number
/// (`codes`), any other code (or one stored without a number) is looked up as it is.
#[tracing::instrument(name = "tickets.by_tracking_code", skip_all)]
pub fn by_tracking_code(
    conn: &mut DbConn,
    codes: &CodeBook,
    code: &TrackingCode,
) -> QueryResult<Option<TicketRow>> {
    if let Some(n) = codes.number(code).and_then(|n| i64::try_from(n).ok()) {
        let numbered = crate::db::on_backend!(conn, c => tickets::table
            .filter(tickets::code_number.eq(n))
            .filter(tickets::tracking_code.eq(code.as_str()))
            .select(TicketRow::as_select())
            .first(c)
            .optional())?;
        if numbered.is_some() {
            return Ok(numbered);
        }
    }
    crate::db::on_backend!(conn, c => tickets::table
        .filter(tickets::code_number.is_null())
        .filter(tickets::tracking_code.eq(code.as_str()))
        .select(TicketRow::as_select())
        .first(c)
        .optional())
}

/// Which of `numbers` are taken by stored tickets.
pub fn code_numbers_taken(
    conn: &mut DbConn,
    numbers: &[i64],
) -> QueryResult<std::collections::HashSet<i64>> {
    // One cached lookup each: a list of varying length would be parsed anew each time.
    let mut taken = std::collections::HashSet::new();
    for n in numbers {
        let found: Option<Option<i64>> = crate::db::on_backend!(conn, c => tickets::table
            .filter(tickets::code_number.eq(*n))
            .select(tickets::code_number)
            .first(c)
            .optional())?;
        taken.extend(found.flatten());
    }
    Ok(taken)
}

/// Which of `codes` are stored without a number (other nodes' codes, codes drawn at random
/// before numbering).
pub fn unnumbered_codes_taken(
    conn: &mut DbConn,
    codes: &[&str],
) -> QueryResult<std::collections::HashSet<String>> {
    let mut taken = std::collections::HashSet::new();
    for code in codes {
        let found: Option<String> = crate::db::on_backend!(conn, c => tickets::table
            .filter(tickets::code_number.is_null())
            .filter(tickets::tracking_code.eq(*code))
            .select(tickets::tracking_code)
            .first(c)
            .optional())?;
        taken.extend(found);
    }
    Ok(taken)
}

/// Inserts new ticket rows (`db::insert_rows!`), and adds them to the statistics.
pub fn insert_many(conn: &mut DbConn, rows: &[TicketRow]) -> QueryResult<()> {
    crate::db::insert_rows!(conn, tickets::table, rows, 100)?;
    let mut cells = Cells::default();
    for row in rows {
        cells.ticket(&stored_state(row)?, 1);
    }
    cells.prune();
    hub::apply(conn, &cells)
}

/// Inserts new ticket rows whose statistics the caller adds itself (the national data
/// generator, `hub::generate`, sums a whole batch's cells before writing them): on PostgreSQL
/// one `COPY tickets FROM STDIN` (binary) for all of `rows`, on SQLite one cached insert a row.
pub fn insert_many_counted_apart(conn: &mut DbConn, rows: &[TicketRow]) -> QueryResult<()> {
    match conn {
        DbConn::Pg(c) if !rows.is_empty() => diesel::copy_from(tickets::table)
            .from_insertable(rows)
            .execute(c)
            .map(|_| ()),
        _ => crate::db::insert_rows!(conn, tickets::table, rows, 100),
    }
}

/// Inserts a new ticket row, and adds it to the statistics.
pub fn insert(conn: &mut DbConn, row: &TicketRow) -> QueryResult<()> {
    crate::db::on_backend!(conn, c => diesel::insert_into(tickets::table)
        .values(row)
        .execute(c)
        .map(|_| ()))?;
    hub::ticket_changed(conn, None, &stored_state(row)?)
}

/// The folded state of a row about to be written (a row that does not decode is a fault of
/// this node, reported as a database error so the transaction rolls back).
fn stored_state(row: &TicketRow) -> QueryResult<crate::domain::TicketState> {
    row.state()
        .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
}

/// Sets a ticket's next SLA time (the sweep found nothing due before it).
pub fn set_next_due(conn: &mut DbConn, id: &str, next_due_ms: Option<i64>) -> QueryResult<()> {
    diesel::update(tickets::table.find(id))
        .set(tickets::next_due_ms.eq(next_due_ms))
        .execute(conn)
        .map(|_| ())
}

/// Updates a ticket row with a new folded state: only the columns a change can alter (the
/// key, tracking code and report columns stay, so their indexes are not touched).
///
/// The statistics follow in the same transaction: the stored row's cells are subtracted and
/// the new row's added (`hub::cells`).
pub fn update(conn: &mut DbConn, row: &TicketRow) -> QueryResult<()> {
    let old = match by_id_text(conn, &row.id)? {
        Some(o) => Some(stored_state(&o)?),
        None => None,
    };
    crate::db::on_backend!(conn, c => diesel::update(tickets::table.find(&row.id))
        .set(super::model::TicketChanges::of(row))
        .execute(c)
        .map(|_| ()))?;
    hub::ticket_changed(conn, old.as_ref(), &stored_state(row)?)
}

fn by_id_text(conn: &mut DbConn, id: &str) -> QueryResult<Option<TicketRow>> {
    crate::db::on_backend!(conn, c => tickets::table
        .find(id)
        .select(TicketRow::as_select())
        .first(c)
        .optional())
}

/// Stores many reporters' contacts (one statement per 100 rows).
pub fn insert_contacts(conn: &mut DbConn, rows: &[ContactRow]) -> QueryResult<()> {
    crate::db::insert_rows!(conn, reporter_contacts::table, rows, 100)
}

/// Stores `(ticket, token hash)` pairs of follow-up tokens (one statement per 200).
pub fn insert_follow_ups(conn: &mut DbConn, rows: &[(String, String)]) -> QueryResult<()> {
    let values: Vec<_> = rows
        .iter()
        .map(|(t, h)| {
            (
                follow_up_tokens::ticket_id.eq(t.clone()),
                follow_up_tokens::token_hash.eq(h.clone()),
            )
        })
        .collect();
    crate::db::insert_all!(conn, follow_up_tokens::table, values, 200)
}

/// The hash of a ticket's follow-up token.
pub fn follow_up_hash(conn: &mut DbConn, ticket: &TicketId) -> QueryResult<Option<String>> {
    follow_up_tokens::table
        .find(ticket.to_string())
        .select(follow_up_tokens::token_hash)
        .first(conn)
        .optional()
}

/// Deletes a reporter's contact and its salt (erasure).
pub fn delete_contact(conn: &mut DbConn, id: &TicketId) -> QueryResult<usize> {
    diesel::delete(reporter_contacts::table.find(id.to_string())).execute(conn)
}

/// A reporter's contact.
pub fn contact(conn: &mut DbConn, id: &TicketId) -> QueryResult<Option<ContactRow>> {
    crate::db::on_backend!(conn, c => reporter_contacts::table
        .find(id.to_string())
        .select(ContactRow::as_select())
        .first(c)
        .optional())
}

/// Tickets `handler` handles whose next SLA time (`next_due_ms`) is at or before `now_ms`, in
/// `(next_due_ms, id)` order after `after`: candidates for the SLA sweep (the domain decides
/// what is actually due). Read through the index on `(next_due_ms, id)`: only the due tickets
/// are read.
pub fn sweep_candidates(
    conn: &mut DbConn,
    handler: &str,
    now_ms: i64,
    after: Option<&(i64, String)>,
    limit: i64,
) -> QueryResult<Vec<TicketRow>> {
    let mut q = tickets::table
        .filter(tickets::next_due_ms.le(now_ms))
        .filter(tickets::handling_node.eq(handler))
        .into_boxed();
    if let Some((due, id)) = after {
        q = q.filter(
            tickets::next_due_ms.gt(*due).or(tickets::next_due_ms
                .eq(*due)
                .and(tickets::id.gt(id.clone()))),
        );
    }
    q.order((tickets::next_due_ms.asc(), tickets::id.asc()))
        .limit(limit)
        .select(TicketRow::as_select())
        .load(conn)
}

/// Every ticket row, by id (tests compare projections with this).
pub fn all(conn: &mut DbConn) -> QueryResult<Vec<TicketRow>> {
    tickets::table
        .order(tickets::id.asc())
        .select(TicketRow::as_select())
        .load(conn)
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rebuilt {
    /// Tickets written.
    pub tickets: usize,
    /// Events folded.
    pub events: usize,
    /// Events the fold refused.
    pub rejected: usize,
}

/// Why a rebuild failed.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    /// Reading or decoding the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Writing the projection failed.
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    /// No database connection.
    #[error(transparent)]
    Unavailable(#[from] crate::db::DbError),
    /// The folded state could not be encoded.
    #[error("ticket {0}: cannot encode state: {1}")]
    Encode(String, serde_json::Error),
    /// The SLA escalations could not be derived again.
    #[error("SLA escalations: {0}")]
    Escalations(String),
}

/// Replaces the `tickets` projection with the fold of the event log. Run it inside a
/// transaction: readers see the old projection until it commits. A code this node (of
/// `province`) drew from its counter gets its number back from the stored code book.
#[tracing::instrument(name = "tickets.rebuild", skip_all)]
pub fn rebuild(conn: &mut DbConn, province: &ProvinceCode) -> Result<Rebuilt, RebuildError> {
    let codes = CodeBook::open(conn, province)?;
    diesel::delete(tickets::table).execute(conn)?;
    hub::clear(conn)?;
    let mut done = Rebuilt::default();
    let mut batch = Vec::new();
    for id in log::ticket_ids(conn)? {
        let rows = log::for_ticket(
            conn,
            &TicketId::parse(&id).map_err(|e| LogError::Wire {
                id: id.clone(),
                cause: crate::event_log::wire::WireError::Field {
                    field: "ticket",
                    message: e.to_string(),
                },
            })?,
        )?;
        let events = rows
            .iter()
            .map(log::decode)
            .collect::<Result<Vec<_>, _>>()?;
        let folded = fold::fold(&events);
        done.events += events.len();
        done.rejected += folded.rejected.len();
        if let (Some(state), Some(head)) = (folded.state, folded.head) {
            let tid = events.first().map(|e| e.ticket).unwrap_or_default();
            let mut row = TicketRow::from_state(&tid, &state, &head)
                .map_err(|e| RebuildError::Encode(id.clone(), e))?;
            row.code_number = codes.stored_number(&state.report.tracking_code);
            batch.push(row);
            if batch.len() >= 500 {
                insert_many(conn, &std::mem::take(&mut batch))?;
            }
            done.tickets += 1;
        }
    }
    insert_many(conn, &batch)?;
    Ok(done)
}

diesel::define_sql_function! {
    /// SQL `lower(text)`, on both backends.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Inbox filters; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Status wire name.
    pub status: Option<String>,
    /// Agency code (a liaison's scope is forced here).
    pub agency: Option<String>,
    /// Only tickets with a recorded breach (`true`) or without (`false`).
    pub overdue: Option<bool>,
    /// Report kind wire name.
    pub kind: Option<String>,
    /// Province (2 digits, includes its regencies) or regency (4 digits).
    pub region: Option<String>,
    /// Case-insensitive text in title or body.
    pub text: Option<String>,
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// A page of tickets matching `filter`, newest first (ids are UUIDv7), after `cursor`.
#[tracing::instrument(name = "tickets.search", skip_all, fields(limit))]
pub fn search(
    conn: &mut DbConn,
    filter: &Filter,
    cursor: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<TicketRow>> {
    let mut q = tickets::table.select(TicketRow::as_select()).into_boxed();
    if let Some(s) = &filter.status {
        q = q.filter(tickets::status.eq(s.clone()));
    }
    if let Some(a) = &filter.agency {
        q = q.filter(tickets::agency.eq(a.clone()));
    }
    match filter.overdue {
        Some(true) => q = q.filter(tickets::breaches.ne(0)),
        Some(false) => q = q.filter(tickets::breaches.eq(0)),
        None => {}
    }
    if let Some(k) = &filter.kind {
        q = q.filter(tickets::report_kind.eq(k.clone()));
    }
    if let Some(r) = &filter.region {
        if r.len() == 2 {
            q = q.filter(
                tickets::region
                    .like(format!("{}%", like_escape(r)))
                    .escape('\\'),
            );
        } else {
            q = q.filter(tickets::region.eq(r.clone()));
        }
    }
    if let Some(t) = &filter.text {
        let pattern = format!("%{}%", like_escape(&t.to_lowercase()));
        q = q.filter(
            lower(tickets::title)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(tickets::body).like(pattern).escape('\\')),
        );
    }
    if let Some(c) = cursor {
        q = q.filter(tickets::id.lt(c.to_owned()));
    }
    q.order(tickets::id.desc()).limit(limit).load(conn)
}

/// Ticket counts grouped by one column.
pub fn count_by(conn: &mut DbConn, column: GroupColumn) -> QueryResult<Vec<(String, i64)>> {
    use diesel::dsl::count_star;
    match column {
        GroupColumn::Status => tickets::table
            .group_by(tickets::status)
            .select((tickets::status, count_star()))
            .load(conn),
        GroupColumn::Kind => tickets::table
            .group_by(tickets::report_kind)
            .select((tickets::report_kind, count_star()))
            .load(conn),
        GroupColumn::Category => tickets::table
            .group_by(tickets::category)
            .select((tickets::category, count_star()))
            .load(conn),
        GroupColumn::Agency => {
            let rows: Vec<(Option<String>, i64)> = tickets::table
                .filter(tickets::agency.is_not_null())
                .group_by(tickets::agency)
                .select((tickets::agency, count_star()))
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|(a, n)| (a.unwrap_or_default(), n))
                .collect())
        }
    }
}

/// Columns statistics group by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupColumn {
    /// Status.
    Status,
    /// Report kind.
    Kind,
    /// Category.
    Category,
    /// Agency.
    Agency,
}

/// Ticket counts by (status, breach bits): the input of SLA compliance figures.
pub fn count_by_status_and_breaches(conn: &mut DbConn) -> QueryResult<Vec<(String, i32, i64)>> {
    use diesel::dsl::count_star;
    tickets::table
        .group_by((tickets::status, tickets::breaches))
        .select((tickets::status, tickets::breaches, count_star()))
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbError;

    /// Inserts on SQLite are looked up in the statement cache by their row type
    /// (`db::RowInsert`): rows whose `None` fields differ must still bind every column, in the
    /// same statement.
    /// A ticket row with every column set to a value no default gives, stored through the
    /// insert the writer uses and read back: each field lands in its own column.
    #[test]
    fn a_ticket_row_is_stored_column_for_column() {
        let (_dir, db) = crate::app::temp_database();
        let filled = |n: i64| TicketRow {
            id: TicketId::new().to_string(),
            tracking_code: format!("31-K7QX-9F{}M", n / 10 + 1),
            origin_node: "prov-31.lapor.test".into(),
            handling_node: "prov-32.lapor.test".into(),
            report_kind: "aspirasi".into(),
            category: "kesehatan".into(),
            title: format!("judul {n}"),
            body: format!("isi {n}"),
            region: "3171".into(),
            agency: Some("KEMENKES".into()),
            channel: "sms".into(),
            anonymous: true,
            confidential: true,
            status: "in_progress".into(),
            archive_reason: Some("duplicate".into()),
            rating: Some(4),
            created_at_ms: n + 1,
            updated_at_ms: n + 2,
            verify_due_ms: n + 3,
            response_due_ms: Some(n + 4),
            auto_close_due_ms: Some(n + 5),
            reopen_until_ms: Some(n + 6),
            overall_due_ms: n + 7,
            breaches: 3,
            head: "e".repeat(64),
            event_count: 9,
            // A valid rest of the state (the insert also adds the row to the statistics).
            state: format!("{{\"erased\":{}}}", n % 20 == 0),
            code_number: Some(n + 8),
            next_due_ms: Some(n + 9),
        };
        let rows = vec![filled(10), filled(20)];
        let stored = rows.clone();
        db.write(move |c| insert_many(c, &stored).map_err(DbError::from))
            .unwrap();
        let mut c = db.read().unwrap();
        for row in rows {
            let id = TicketId::parse(&row.id).unwrap();
            assert_eq!(by_id(&mut c, &id).unwrap(), Some(row));
        }
    }

    #[test]
    fn rows_with_different_missing_fields_are_stored_whole_one_after_another() {
        let (_dir, db) = crate::app::temp_database();
        let some = |s: &str| Some(s.to_owned());
        let rows: Vec<ContactRow> = [
            (None, some("+628111"), None, None),
            (
                some("Siti"),
                some("+628222"),
                some("siti@example.id"),
                some("ab"),
            ),
            (some("Budi"), None, None, some("cd")),
            (None, None, some("x@example.id"), None),
        ]
        .into_iter()
        .map(|(name, phone, email, salt)| ContactRow {
            ticket_id: TicketId::new().to_string(),
            name,
            phone,
            email,
            salt,
            stored_at_ms: 1,
        })
        .collect();
        // One statement per call, so each row meets the statement the one before prepared.
        for row in &rows {
            let row = row.clone();
            db.write(move |c| {
                insert_contacts(c, std::slice::from_ref(&row)).map_err(DbError::from)
            })
            .unwrap();
        }
        let mut c = db.read().unwrap();
        for row in rows {
            let id = TicketId::parse(&row.ticket_id).unwrap();
            assert_eq!(contact(&mut c, &id).unwrap(), Some(row));
        }
    }
}
