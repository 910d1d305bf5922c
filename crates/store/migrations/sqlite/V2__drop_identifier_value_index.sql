-- Search by identifier prefix now runs per kind on the primary key (kind, value). The
-- separate index on value alone cost one extra random B-tree insert per new identifier,
-- a large share of the embedded writer's time at a million profiles (see BENCHMARKS.md).
DROP INDEX identifiers_value;
