-- The SQLite twin stores reporter_contacts and follow_up_tokens WITHOUT ROWID. PostgreSQL
-- tables are heaps with separate indexes either way: nothing changes here.
SELECT 1;
