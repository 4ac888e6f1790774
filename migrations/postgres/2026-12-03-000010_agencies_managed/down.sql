ALTER TABLE agencies DROP COLUMN disabled;
