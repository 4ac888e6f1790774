ALTER TABLE agencies DROP COLUMN dropped_by_roster;
