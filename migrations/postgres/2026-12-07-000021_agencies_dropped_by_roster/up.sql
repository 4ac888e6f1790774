-- An agency the held roster listed and a later version no longer lists takes no new
-- dispatches: the version that dropped it (NULL while listed, or never roster-managed).
ALTER TABLE agencies ADD COLUMN dropped_by_roster BIGINT;
