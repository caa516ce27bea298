//! Table definitions shared by both backends (the migrations keep the column types compatible).

diesel::table! {
    secrets (id) {
        id -> Text,
        key_id -> Text,
        nonce -> Binary,
        ciphertext -> Binary,
        create_time -> BigInt,
        update_time -> BigInt,
        aad_version -> Integer,
    }
}

diesel::table! {
    credentials (id) {
        id -> Text,
        display_name -> Text,
        labels -> Text,
        kind -> Text,
        provider -> Text,
        principal -> Text,
        secret_id -> Text,
        create_time -> BigInt,
        rotate_time -> BigInt,
    }
}

diesel::table! {
    clusters (id) {
        id -> Text,
        display_name -> Text,
        labels -> Text,
        provider -> Text,
        region -> Text,
        vendor_cluster_id -> Text,
        state -> Text,
        endpoint -> Text,
        kube_system_uid -> Nullable<Text>,
        credential_id -> Nullable<Text>,
        access_secret_id -> Nullable<Text>,
        spec -> Nullable<Binary>,
        warnings -> Text,
        last_operation_id -> Nullable<Text>,
        version -> BigInt,
        create_time -> BigInt,
        update_time -> BigInt,
        kube_access -> Text,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        name -> Text,
        role -> Text,
        cluster_ids -> Text,
        secret_hash -> Text,
        expire_time -> Nullable<BigInt>,
        create_time -> BigInt,
        created_by -> Text,
        last_used_time -> Nullable<BigInt>,
        revoke_time -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        time -> BigInt,
        token_name -> Text,
        method -> Text,
        cluster_id -> Text,
        target -> Text,
        result_code -> Text,
        request_id -> Text,
        peer_address -> Text,
        message -> Text,
        call_count -> BigInt,
    }
}

diesel::table! {
    operations (id) {
        id -> Text,
        resource -> Text,
        cluster_id -> Text,
        kind -> Text,
        state -> Text,
        provider -> Text,
        request_id -> Nullable<Text>,
        requested_by -> Text,
        detail -> Text,
        lease_owner -> Nullable<Text>,
        lease_expire_time -> Nullable<BigInt>,
        next_run_time -> BigInt,
        version -> BigInt,
        create_time -> BigInt,
        update_time -> BigInt,
        request_token -> Text,
        request_hash -> Nullable<Text>,
    }
}

diesel::table! {
    registries (id) {
        id -> Text,
        display_name -> Text,
        labels -> Text,
        provider -> Text,
        endpoint -> Text,
        region -> Text,
        vendor_instance_id -> Text,
        credential_id -> Nullable<Text>,
        ca_pem -> Nullable<Text>,
        version -> BigInt,
        create_time -> BigInt,
        update_time -> BigInt,
    }
}

diesel::table! {
    pull_secrets (id) {
        id -> Text,
        registry_id -> Text,
        cluster_id -> Text,
        namespace -> Text,
        secret_name -> Text,
        service_account -> Text,
        registry_namespaces -> Text,
        vendor_credential_id -> Nullable<Text>,
        username -> Text,
        issue_time -> BigInt,
        expire_time -> Nullable<BigInt>,
        registry_credential_id -> Nullable<Text>,
        registry_credential_version -> BigInt,
        outcome -> Text,
        message -> Text,
        create_time -> BigInt,
        update_time -> BigInt,
    }
}

diesel::table! {
    replicas (id) {
        id -> Text,
        start_time -> BigInt,
        heartbeat_time -> BigInt,
        expire_time -> BigInt,
    }
}

diesel::table! {
    cluster_leases (cluster_id) {
        cluster_id -> Text,
        owner -> Text,
        expire_time -> BigInt,
        acquire_time -> BigInt,
    }
}

diesel::table! {
    cluster_status (cluster_id) {
        cluster_id -> Text,
        observed_by -> Text,
        status -> Text,
        observed_time -> BigInt,
    }
}

diesel::table! {
    agent_registrations (token_hash) {
        token_hash -> Text,
        cluster_id -> Text,
        create_time -> BigInt,
        expire_time -> BigInt,
        used_time -> Nullable<BigInt>,
        server_url -> Text,
        namespace -> Text,
        cluster_role -> Text,
        image -> Text,
    }
}

diesel::table! {
    agent_credentials (cluster_id) {
        cluster_id -> Text,
        credential_hash -> Text,
        kube_system_uid -> Text,
        create_time -> BigInt,
    }
}

diesel::table! {
    /// One row per (key, value) of each cluster's labels, kept by triggers from
    /// `clusters.labels`; read only by label filters.
    cluster_labels (key, value, cluster_id) {
        key -> Text,
        value -> Text,
        cluster_id -> Text,
    }
}

diesel::table! {
    /// Counts of writes, kept by triggers: `clusters` counts every insert, update and delete of
    /// a cluster row (on PostgreSQL, every statement that wrote some), by any writer.
    change_counts (name) {
        name -> Text,
        count -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(clusters, cluster_labels);
