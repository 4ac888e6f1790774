-- Back to one unique index over every tracking code (fails if two tickets share a code).
DROP INDEX tickets_unnumbered_code;
DROP INDEX tickets_code_number;
ALTER TABLE tickets ADD CONSTRAINT tickets_tracking_code_key UNIQUE (tracking_code);
ALTER TABLE tickets DROP COLUMN code_number;
DROP TABLE tracking_code_books;
