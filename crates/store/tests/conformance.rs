//! The backend conformance suite, once per backend.
// Tests: a failing unwrap is the report, and a test thread may sleep.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use prossimo_store::testsuite::*;

prossimo_store::conformance_cases!(
    ingest_and_read_back,
    duplicates_are_stored_once,
    merges_join_timelines_and_are_logged,
    refused_merges_keep_the_event,
    timeline_pages_and_filters,
    search_by_identifier_and_name,
    keys_bootstrap_and_revoke,
    sources_keep_the_pages_allowed_to_send,
    orders_net_refunds_follow_merges_and_refuse_unknown_currencies,
    computed_traits_merge_key_by_key,
    a_deferred_commit_defers_only_itself,
    names_taken_at_the_same_moment_conflict_cleanly;
    leases_are_exclusive,
    a_locked_store_fails_transiently_and_stores_nothing,
    customer_and_decision_writes_never_wait_for_each_other,
    concurrent_nodes_deduplicate_exactly,
);
