DROP TABLE sms_secrets;
DROP TABLE sms_blocked;
DROP TABLE sms_outbox;
DROP TABLE sms_inbound;
