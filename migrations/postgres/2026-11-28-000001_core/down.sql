DROP TABLE reporter_contacts;
DROP TABLE tickets;
DROP TABLE chain_heads;
DROP TABLE events;
DROP TABLE agencies;
