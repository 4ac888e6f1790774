//! Templates of the node admin's pages: officer accounts (list, add, disable, new password,
//! role and agency) and the federation (peers with their queues, quarantined events).

use maud::{Markup, html};

use super::i18n::Lang;
use super::layout::{Site, notice};
use super::problem::Refusal;
use crate::auth::Officer;
use crate::federation::PeerStatus;
use crate::federation::quarantine::QuarantineRow;
use crate::tickets::agencies::AgencyInfo;

const ROLES: [&str; 4] = ["verifier", "liaison", "admin", "analyst"];

fn role_select(l: Lang, id: &str, current: Option<&str>) -> Markup {
    html! {
        select id=(id) name="role" {
            @for r in ROLES {
                option value=(r) selected[current == Some(r)] {
                    (crate::auth::model::parse_role(r).map_or(r, |role| l.role(role)))
                }
            }
        }
    }
}

fn agency_select(l: Lang, id: &str, agencies: &[AgencyInfo], current: Option<&str>) -> Markup {
    html! {
        select id=(id) name="agency" {
            option value="" { (l.t("– (bukan pejabat penghubung)", "– (not a liaison)")) }
            @for a in agencies { option value=(a.code) selected[current == Some(a.code.as_str())] { (a.code) " — " (a.name) } }
        }
    }
}

/// The accounts page.
#[must_use]
pub fn accounts(
    l: Lang,
    list: &[(Officer, bool)],
    agencies: &[AgencyInfo],
    csrf: &str,
    done: Option<&str>,
    refusal: Option<&Refusal>,
) -> Markup {
    html! {
        @if let Some(d) = done { (notice(true, d)) }
        @if let Some(r) = refusal { (notice(false, &r.message)) }
        table {
            thead { tr { th { (l.t("Nama pengguna", "Username")) } th { (l.t("Peran", "Role")) } th { (l.t("Instansi", "Agency")) } th { (l.t("Status", "Status")) } } }
            tbody {
                @for (o, disabled) in list {
                    tr {
                        td { (o.username) }
                        td { (l.role(o.role)) }
                        td { (o.agency.as_ref().map_or("–", |a| a.as_str())) }
                        td { @if *disabled { (l.t("Nonaktif", "Disabled")) } @else { (l.t("Aktif", "Active")) } }
                    }
                }
            }
        }
        section.actions {
            form method="post" action="/petugas/admin" {
                h2 { (l.t("Tambah petugas", "Add an officer")) }
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="op" value="add";
                label for="a-user" { (l.t("Nama pengguna", "Username")) }
                input #a-user type="text" name="username" required;
                label for="a-pass" { (l.t("Kata sandi awal (min. 12 karakter)", "Initial password (12+ characters)")) }
                input #a-pass type="password" name="password" required autocomplete="new-password";
                label for="a-role" { (l.t("Peran", "Role")) }
                (role_select(l, "a-role", None))
                label for="a-agency" { (l.t("Instansi", "Agency")) }
                (agency_select(l, "a-agency", agencies, None))
                button type="submit" { (l.t("Tambah", "Add")) }
            }
            form method="post" action="/petugas/admin" {
                h2 { (l.t("Ubah peran dan instansi", "Change role and agency")) }
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="op" value="role";
                label for="r-user" { (l.t("Nama pengguna", "Username")) }
                input #r-user type="text" name="username" required;
                label for="r-role" { (l.t("Peran", "Role")) }
                (role_select(l, "r-role", None))
                label for="r-agency" { (l.t("Instansi", "Agency")) }
                (agency_select(l, "r-agency", agencies, None))
                button type="submit" { (l.t("Simpan", "Save")) }
            }
            form method="post" action="/petugas/admin" {
                h2 { (l.t("Atur ulang kata sandi", "Reset a password")) }
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="op" value="reset";
                label for="p-user" { (l.t("Nama pengguna", "Username")) }
                input #p-user type="text" name="username" required;
                label for="p-pass" { (l.t("Kata sandi baru", "New password")) }
                input #p-pass type="password" name="password" required autocomplete="new-password";
                button type="submit" { (l.t("Atur ulang", "Reset")) }
            }
            form method="post" action="/petugas/admin" {
                h2 { (l.t("Nonaktifkan akun", "Disable an account")) }
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="op" value="disable";
                label for="d-user" { (l.t("Nama pengguna", "Username")) }
                input #d-user type="text" name="username" required;
                button.second type="submit" { (l.t("Nonaktifkan", "Disable")) }
            }
        }
    }
}

/// The federation page: peers and quarantined events.
#[must_use]
pub fn federation(
    l: Lang,
    site: &Site,
    peers: Option<&[PeerStatus]>,
    quarantine: &[QuarantineRow],
) -> Markup {
    html! {
        @match peers {
            None => p { (l.t("Node ini tidak tergabung dalam federasi.", "This node is not federated.")) },
            Some(peers) => {
                h2 { (l.t("Peer", "Peers")) }
                table #peers {
                    thead { tr {
                        th { "Node" } th { (l.t("Terjangkau", "Reachable")) } th { (l.t("Kontak terakhir", "Last contact")) }
                        th { (l.t("Antrean", "Queued")) } th { (l.t("Terkirim", "Delivered")) } th { (l.t("Ditolak", "Refused")) }
                        th { (l.t("Dikarantina", "Quarantined")) } th { (l.t("Galat terakhir", "Last error")) }
                    } }
                    tbody {
                        @for p in peers {
                            tr {
                                td { (p.node) " (" (p.role) ")" }
                                td { @if p.reachable { (l.t("ya", "yes")) } @else { strong { (l.t("tidak", "no")) } } }
                                td { (p.last_contact_ms.map_or_else(|| "–".to_owned(), |ms| site.at_ms(l, ms))) }
                                td { (p.outbox_depth) }
                                td { (p.delivered) }
                                td { (p.refused) }
                                td { (p.quarantined) }
                                td { (p.last_error.as_deref().unwrap_or("–")) }
                            }
                        }
                    }
                }
            },
        }
        h2 { (l.t("Karantina", "Quarantine")) }
        @if quarantine.is_empty() { p { (l.t("Tidak ada event yang dikarantina.", "No quarantined events.")) } }
        @else {
            table #karantina {
                thead { tr { th { (l.t("Diterima", "Received")) } th { (l.t("Dari", "From")) } th { (l.t("Asal · seq", "Origin · seq")) } th { (l.t("Alasan", "Reason")) } th { (l.t("Rincian", "Detail")) } } }
                tbody {
                    @for q in quarantine {
                        tr {
                            td { (site.at_ms(l, q.received_at_ms)) }
                            td { (q.received_from) }
                            td { (q.origin.as_deref().unwrap_or("–")) " · " (q.seq.map_or_else(|| "–".to_owned(), |s| s.to_string())) }
                            td { (q.reason) }
                            td { (q.detail) }
                        }
                    }
                }
            }
        }
    }
}
