//! Who receives what (invariant 6, `docs/PROTOCOL.md`): the replication rules, each in one
//! place, used wherever it applies — by the outbox when it writes rows, by the inbox when it
//! stores what arrived, and by the feed when a member pulls.

use super::{Change, NodeId, TicketState};

/// Whether `change` may change a ticket's participants: it starts the ticket or hands it to
/// another node. Participants only accumulate — a node that once took part keeps receiving
/// the ticket's events.
#[must_use]
pub const fn changes_participants(change: &Change) -> bool {
    matches!(
        change,
        Change::Created(_) | Change::Dispatched { .. } | Change::NotOurAuthority { .. }
    )
}

/// The nodes that take part in a ticket in `state`: its origin and its handler.
#[must_use]
pub fn participants(state: &TicketState) -> [&NodeId; 2] {
    [&state.origin, &state.handler]
}

/// Whether `node` is entitled to a ticket's personal-data part (the reporter's contact and
/// the salt that opens its commitment): only the node that handles the ticket, to call the
/// reporter back; never the hub; never for an anonymous report.
#[must_use]
pub fn entitled_to_pii(node: &str, node_is_hub: bool, handler: &str, anonymous: bool) -> bool {
    !node_is_hub && !anonymous && node == handler
}

/// Whether a node that is neither the origin nor the handler any more must delete the
/// reporter's contact it holds: after `change` handed the ticket elsewhere.
#[must_use]
pub fn must_forget_contact(change: &Change, me: &NodeId, state: &TicketState) -> bool {
    matches!(
        change,
        Change::Dispatched { .. } | Change::NotOurAuthority { .. }
    ) && state.handler != *me
        && state.origin != *me
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn personal_data_goes_to_the_handler_only_never_the_hub_never_for_anonymous_reports() {
        assert!(entitled_to_pii("prov-31", false, "prov-31", false));
        assert!(!entitled_to_pii("prov-53", false, "prov-31", false));
        assert!(!entitled_to_pii("prov-31", false, "prov-31", true));
        assert!(!entitled_to_pii("hub", true, "hub", false));
    }
}
