//! Refusals on the console: the status and stable code are the API's own (`api::error`, one
//! mapping for both), the message is in the user's language and names the form field. Each
//! refusal is logged (code only: a message may quote the user's input) and counted in
//! `lapor_rejected_total{reason}`; faults of the node are logged with their cause and shown
//! with a fixed text.

use actix_web::ResponseError as _;
use actix_web::http::StatusCode;

use super::i18n::Lang;
use crate::api::error::ApiError;
use crate::auth::AuthError;
use crate::domain::TransitionError;
use crate::metrics::Metrics;
use crate::tickets::TicketError;

/// A refusal to show in a page.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code (as the API's).
    pub code: &'static str,
    /// The field the form marks, if one.
    pub field: Option<&'static str>,
    /// What to tell the user.
    pub message: String,
}

impl Refusal {
    /// A refusal with the status and code of `api`, and `message`.
    fn from_api(api: &ApiError, field: Option<&'static str>, message: String) -> Self {
        Self {
            status: api.status_code(),
            code: api.code(),
            field,
            message,
        }
    }

    /// A refusal the console decides itself (a missing CSRF token, an unknown form value).
    #[must_use]
    pub const fn new(
        status: StatusCode,
        code: &'static str,
        field: Option<&'static str>,
        message: String,
    ) -> Self {
        Self {
            status,
            code,
            field,
            message,
        }
    }

    /// Logs and counts it (once, where the page is rendered).
    pub fn record(&self, metrics: &Metrics) {
        if self.status.is_server_error() {
            tracing::error!(
                error.code = self.code,
                status = self.status.as_u16(),
                "console request failed"
            );
        } else {
            tracing::info!(
                error.code = self.code,
                status = self.status.as_u16(),
                "console request refused"
            );
            metrics.count_rejection(self.code);
        }
    }

    /// The tickets wing's refusal `e`.
    #[must_use]
    pub fn ticket(lang: Lang, e: TicketError) -> Self {
        let (field, message) = ticket_text(lang, &e);
        if let TicketError::Db(cause) = &e {
            tracing::warn!(error.cause = %cause, "console: database error");
        }
        let api = ApiError::from(e);
        let message = message.unwrap_or_else(|| fault_text(lang, &api));
        Self::from_api(&api, field, message)
    }

    /// `auth`'s refusal `e`.
    #[must_use]
    pub fn auth(lang: Lang, e: AuthError) -> Self {
        let (field, message) = match &e {
            // `auth`'s rule texts are English; the field is named in the user's language.
            AuthError::Invalid { field, message } => (
                Some(*field),
                Some(match lang {
                    Lang::En => format!("{}: {message}", lang.field(field)),
                    Lang::Id => format!("{}: tidak memenuhi aturan ({message})", lang.field(field)),
                }),
            ),
            AuthError::UnknownOfficer(_) => (
                Some("username"),
                Some(
                    lang.t(
                        "Tidak ada petugas dengan nama itu.",
                        "No officer with that name.",
                    )
                    .to_owned(),
                ),
            ),
            AuthError::Db(_) => (None, None),
            _ => (
                None,
                Some(
                    lang.t(
                        "Nama pengguna atau kata sandi salah.",
                        "Wrong username or password.",
                    )
                    .to_owned(),
                ),
            ),
        };
        let api = ApiError::from(e);
        let message = message.unwrap_or_else(|| fault_text(lang, &api));
        Self::from_api(&api, field, message)
    }
}

fn fault_text(lang: Lang, api: &ApiError) -> String {
    if api.status_code() == StatusCode::SERVICE_UNAVAILABLE {
        lang.t(
            "Layanan sedang tidak tersedia; coba lagi sebentar lagi.",
            "The service is temporarily unavailable; try again shortly.",
        )
    } else {
        if let ApiError::Internal(cause) = api {
            tracing::error!(error.cause = %cause, "console: internal error");
        }
        lang.t(
            "Terjadi kesalahan di server.",
            "Something went wrong on the server.",
        )
    }
    .to_owned()
}

/// The field and message of a ticket refusal; `None` as message for the node's own faults.
fn ticket_text(lang: Lang, e: &TicketError) -> (Option<&'static str>, Option<String>) {
    let t = |id: &'static str, en: &'static str| Some(lang.t(id, en).to_owned());
    match e {
        TicketError::Invalid { field, problem } => (
            Some(field),
            Some(format!("{}: {}", lang.field(field), lang.problem(problem))),
        ),
        TicketError::NotFound | TicketError::NoSuchTicket(_) => {
            (None, t("Tiket tidak ditemukan.", "No such ticket."))
        }
        TicketError::NotFiledHere(_) | TicketError::ReportHidden => (
            Some("code"),
            t(
                "Tidak ada laporan dengan kode ini yang dapat ditampilkan. Laporan rahasia dan \
                 tindak lanjut memerlukan token yang benar.",
                "No report with this code can be shown. Confidential reports and follow-ups \
                 need the right token.",
            ),
        ),
        TicketError::Held(_) => (
            None,
            t(
                "Node ini baru dipulihkan dari cadangan dan sedang mengambil kembali kejadiannya \
                 sendiri dari hub; coba lagi sebentar lagi.",
                "This node was restored from a backup and is fetching its own events back from \
                 the hub; try again shortly.",
            ),
        ),
        TicketError::TokenRequired => (
            Some("token"),
            t(
                "Tindakan ini memerlukan token tindak lanjut dari tanda terima.",
                "This action needs the follow-up token from the receipt.",
            ),
        ),
        TicketError::BadTrackingCode(_) => (
            Some("code"),
            t(
                "Kode pelacakan tidak sah (contoh: 53-K7QX-9F2M).",
                "Not a tracking code (for example 53-K7QX-9F2M).",
            ),
        ),
        TicketError::UnknownRegion(_) => (
            Some("region"),
            t("Wilayah tidak dikenal.", "Unknown region."),
        ),
        TicketError::UnknownAgency(_) => (
            Some("agency"),
            t("Instansi tidak dikenal.", "Unknown agency."),
        ),
        TicketError::AgencyUnavailable { agency, why } => (
            Some("agency"),
            Some(format!(
                "{}: {agency} {}",
                lang.field("agency"),
                lang.unavailable(why)
            )),
        ),
        TicketError::NotAllowed(_) => (
            None,
            t(
                "Peran Anda tidak dapat melakukan ini.",
                "Your role may not do this.",
            ),
        ),
        TicketError::OutOfScope(s) => (None, Some(lang.out_of_scope(*s).to_owned())),
        TicketError::Transition(tr) => (None, Some(transition_text(lang, tr))),
        TicketError::NoSuchEscalation(_) => {
            (None, t("Eskalasi tidak ditemukan.", "No such escalation."))
        }
        TicketError::AlreadyAcknowledged(by) => (
            None,
            Some(match lang {
                Lang::Id => format!("Eskalasi ini sudah ditanggapi oleh {by}."),
                Lang::En => format!("This escalation was already acknowledged by {by}."),
            }),
        ),
        TicketError::NotHandler(node) => (
            None,
            Some(match lang {
                Lang::Id => format!(
                    "Tiket ini sekarang ditangani node {node}; node ini tidak dapat mengubahnya."
                ),
                Lang::En => format!(
                    "This ticket is now handled by node {node}; this node cannot change it."
                ),
            }),
        ),
        TicketError::Stored(_)
        | TicketError::Db(_)
        | TicketError::Log(_)
        | TicketError::Keys(_)
        | TicketError::Encode(_) => (None, None),
    }
}

fn transition_text(lang: Lang, t: &TransitionError) -> String {
    match (lang, t) {
        (Lang::Id, TransitionError::IllegalStatus { change, status }) => format!(
            "Tindakan \u{201c}{}\u{201d} tidak dapat dilakukan pada laporan berstatus \u{201c}{}\u{201d}.",
            lang.action(change),
            lang.status(status)
        ),
        (Lang::En, TransitionError::IllegalStatus { change, status }) => format!(
            "\u{201c}{}\u{201d} is not possible on a report that is \u{201c}{}\u{201d}.",
            lang.action(change),
            lang.status(status)
        ),
        (_, TransitionError::Forbidden { .. }) => lang
            .t(
                "Peran Anda tidak dapat melakukan tindakan ini.",
                "Your role may not take this action.",
            )
            .to_owned(),
        (_, TransitionError::WrongAgency { .. }) => lang
            .t(
                "Tiket ini tidak diteruskan ke instansi Anda.",
                "This ticket is not dispatched to your agency.",
            )
            .to_owned(),
        (Lang::Id, _) => format!("Perubahan ditolak: {t}"),
        (Lang::En, _) => format!("Change refused: {t}"),
    }
}
