DROP INDEX quarantine_sender;
