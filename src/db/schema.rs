//! Table definitions, shared by both backends (kept in step with `migrations/`).

diesel::table! {
    agencies (code) {
        code -> Text,
        name -> Text,
        level -> Text,
        region -> Text,
        owner_node -> Text,
        disabled -> Bool,
        dropped_by_roster -> Nullable<BigInt>,
    }
}

diesel::table! {
    events (ticket, id) {
        id -> Text,
        origin -> Text,
        seq -> BigInt,
        prev -> Nullable<Text>,
        ticket -> Text,
        kind -> Text,
        at_ms -> BigInt,
        raw -> Text,
        key_id -> Nullable<Text>,
        sig -> Nullable<Text>,
        stored_at_ms -> BigInt,
    }
}

diesel::table! {
    chain_heads (origin) {
        origin -> Text,
        seq -> BigInt,
        last_id -> Text,
    }
}

diesel::table! {
    tickets (id) {
        id -> Text,
        tracking_code -> Text,
        origin_node -> Text,
        handling_node -> Text,
        report_kind -> Text,
        category -> Text,
        title -> Text,
        body -> Text,
        region -> Text,
        agency -> Nullable<Text>,
        channel -> Text,
        anonymous -> Bool,
        confidential -> Bool,
        status -> Text,
        archive_reason -> Nullable<Text>,
        rating -> Nullable<Integer>,
        created_at_ms -> BigInt,
        updated_at_ms -> BigInt,
        verify_due_ms -> BigInt,
        response_due_ms -> Nullable<BigInt>,
        auto_close_due_ms -> Nullable<BigInt>,
        reopen_until_ms -> Nullable<BigInt>,
        overall_due_ms -> BigInt,
        breaches -> Integer,
        head -> Text,
        event_count -> Integer,
        state -> Text,
        code_number -> Nullable<BigInt>,
        next_due_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    tracking_code_books (province) {
        province -> Text,
        secret -> Text,
        reserved_end -> BigInt,
    }
}

diesel::table! {
    reporter_contacts (ticket_id) {
        ticket_id -> Text,
        name -> Nullable<Text>,
        phone -> Nullable<Text>,
        email -> Nullable<Text>,
        salt -> Nullable<Text>,
        stored_at_ms -> BigInt,
    }
}

diesel::table! {
    officers (username) {
        username -> Text,
        password_hash -> Text,
        role -> Text,
        agency -> Nullable<Text>,
        disabled -> Bool,
        created_at_ms -> BigInt,
    }
}

diesel::table! {
    sessions (token_hash) {
        token_hash -> Text,
        username -> Text,
        created_at_ms -> BigInt,
        expires_at_ms -> BigInt,
        revoked -> Bool,
    }
}

diesel::table! {
    follow_up_tokens (ticket_id) {
        ticket_id -> Text,
        token_hash -> Text,
    }
}

diesel::table! {
    rosters (version) {
        version -> BigInt,
        body -> Text,
        received_from -> Text,
        received_at_ms -> BigInt,
    }
}

diesel::table! {
    node_keys (key_id) {
        key_id -> Text,
        origin -> Text,
        public_key -> Text,
        valid_from_ms -> BigInt,
        valid_until_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    key_statements (key_id) {
        key_id -> Text,
        node -> Text,
        retiring -> Text,
        valid_from_ms -> BigInt,
        statement -> Text,
        recorded_at_ms -> BigInt,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        destination -> Text,
        event_id -> Text,
        with_pii -> Bool,
        enqueued_at_ms -> BigInt,
        refused_reason -> Nullable<Text>,
        ticket -> Text,
        retry_at_ms -> Nullable<BigInt>,
        deferrals -> Integer,
    }
}

diesel::table! {
    peers (node_id) {
        node_id -> Text,
        failures -> Integer,
        next_attempt_ms -> BigInt,
        last_contact_ms -> Nullable<BigInt>,
        last_success_ms -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        delivered -> BigInt,
        rate_bytes_per_sec -> Nullable<BigInt>,
        bytes_per_event -> Nullable<BigInt>,
        recent_delivered -> BigInt,
        recent_since_ms -> Nullable<BigInt>,
    }
}

diesel::table! {
    ticket_participants (ticket, node) {
        ticket -> Text,
        node -> Text,
    }
}

diesel::table! {
    quarantine (id) {
        id -> BigInt,
        received_from -> Text,
        event_id -> Nullable<Text>,
        origin -> Nullable<Text>,
        seq -> Nullable<BigInt>,
        reason -> Text,
        detail -> Text,
        raw -> Text,
        received_at_ms -> BigInt,
    }
}

diesel::table! {
    pull_cursors (origin) {
        origin -> Text,
        after_seq -> BigInt,
    }
}

diesel::table! {
    sms_inbound (message_key) {
        message_key -> Text,
        received_at_ms -> BigInt,
        outcome -> Text,
    }
}

diesel::table! {
    sms_outbox (id) {
        id -> BigInt,
        ticket_id -> Nullable<Text>,
        event_id -> Nullable<Text>,
        phone -> Nullable<Text>,
        number_key -> Nullable<Text>,
        kind -> Text,
        body -> Text,
        state -> Text,
        attempts -> Integer,
        parts_sent -> Integer,
        next_at_ms -> BigInt,
        created_at_ms -> BigInt,
        done_at_ms -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    sms_blocked (phone) {
        phone -> Text,
        note -> Nullable<Text>,
        blocked_by -> Text,
        blocked_at_ms -> BigInt,
    }
}

diesel::table! {
    sms_secrets (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    stat_counts (rollup, period, province, regency, kind, category, channel, agency, status) {
        rollup -> Integer,
        period -> Text,
        province -> Text,
        regency -> Text,
        kind -> Text,
        category -> Text,
        channel -> Text,
        agency -> Text,
        status -> Text,
        n -> BigInt,
    }
}

diesel::table! {
    stat_sla (rollup, period, province, agency) {
        rollup -> Integer,
        period -> Text,
        province -> Text,
        agency -> Text,
        tickets -> BigInt,
        verified_on_time -> BigInt,
        verified_late -> BigInt,
        dispatched_on_time -> BigInt,
        dispatched_late -> BigInt,
        responded_on_time -> BigInt,
        responded_late -> BigInt,
        resolved_on_time -> BigInt,
        resolved_late -> BigInt,
        breach_verify -> BigInt,
        breach_response -> BigInt,
        breach_overall -> BigInt,
        rated -> BigInt,
        rating_sum -> BigInt,
    }
}

diesel::table! {
    stat_flows (rollup, period, origin, handler) {
        rollup -> Integer,
        period -> Text,
        origin -> Text,
        handler -> Text,
        dispatches -> BigInt,
        acted -> BigInt,
        returns -> BigInt,
        lat_0 -> BigInt,
        lat_1 -> BigInt,
        lat_2 -> BigInt,
        lat_3 -> BigInt,
        lat_4 -> BigInt,
        lat_5 -> BigInt,
        lat_6 -> BigInt,
        lat_7 -> BigInt,
        lat_8 -> BigInt,
        lat_9 -> BigInt,
        lat_10 -> BigInt,
    }
}

diesel::table! {
    node_status (node_id) {
        node_id -> Text,
        sent_at_ms -> BigInt,
        received_ms -> BigInt,
        version -> Text,
        head_seq -> BigInt,
        head_event -> Nullable<Text>,
        quarantined -> BigInt,
        status -> Text,
    }
}

diesel::table! {
    federation_alerts (kind, node_id) {
        kind -> Text,
        node_id -> Text,
        detail -> Text,
        since_ms -> BigInt,
    }
}

diesel::table! {
    sla_escalations (event_id) {
        event_id -> Text,
        ticket -> Text,
        agency -> Text,
        step -> Text,
        due_ms -> BigInt,
        breached_at_ms -> BigInt,
        acked_by -> Nullable<Text>,
        acked_at_ms -> Nullable<BigInt>,
    }
}

diesel::joinable!(tickets -> agencies (agency));
diesel::joinable!(sessions -> officers (username));
diesel::table! {
    work_leases (name) {
        name -> Text,
        owner -> Text,
        until_ms -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    tracking_code_books,
    node_keys,
    rosters,
    officers,
    sessions,
    follow_up_tokens,
    agencies,
    events,
    chain_heads,
    tickets,
    reporter_contacts,
    outbox,
    peers,
    ticket_participants,
    quarantine,
    pull_cursors,
    sms_inbound,
    sms_outbox,
    sms_blocked,
    sms_secrets,
    stat_counts,
    stat_sla,
    stat_flows,
    work_leases,
    node_status,
    federation_alerts,
    key_statements,
    sla_escalations
);
