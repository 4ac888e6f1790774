DROP TABLE pull_cursors;
DROP TABLE quarantine;
DROP TABLE ticket_participants;
DROP TABLE peers;
DROP TABLE outbox;
